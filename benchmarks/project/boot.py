import benchflows  # noqa: F401

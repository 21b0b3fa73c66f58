"""Running task attempts: the attempt itself, where it runs, and the warm worker processes.

Owns the task side of the engine: decode a task, run ``handle()``, capture its output and
classify the outcome (``attempts``); decide which worker takes which attempt (``placement``,
pure); supervise worker processes: deadlines, crashes, reload, shutdown (``worker_pool``, with
``worker_process``, ``failures`` and the worker's own main, ``worker``). ``WorkerPool`` and
``InlineRunner`` (``inline``) both implement ``runner.Runner``, what the engine asks of them.
May import ``zenaton``, ``errors``, ``models``, ``timing.retry`` and ``project``.
"""

"""Running task attempts: the attempt itself, where it runs, and the warm worker processes.

Owns the task side of the engine: decode a task, run ``handle()``, capture its output and
classify the outcome; supervise worker processes (deadlines, crashes, reload, shutdown).
May import ``zenaton``, ``errors``, ``models``, ``timing.retry`` and ``project``.
"""

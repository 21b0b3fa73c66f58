"""What clients do: dispatch, control requests (pause, resume, kill, retry, events, rewind),
and the views ``inspect`` and ``errors`` print.

Clients never write a journal: they create instances and post inbox items that the daemon
applies. May import ``models``, ``timing``, ``project``, ``store`` and ``engine.rewind_plan``
(the pure plan of a rewind), never the engine step itself.
"""

"""What clients do: dispatch, control requests (pause, resume, kill, retry, events, rewind),
and the views ``inspect`` and ``errors`` print.

- ``control``: ``Control`` (every request as a store write) and ``ClientRuntime`` (the SDK's
  runtime outside workflows);
- ``rewind_request``: a rewind's check and plan, its inbox item, and reading the daemon's answer;
- ``inspect_views``: an instance and its journal as data (``inspect``, ``errors``, ``--json``).

Clients never write a journal: they create instances and post inbox items that the daemon
applies. May import ``errors``, ``models``, ``project``, ``store``, ``instances``, ``timing`` and
``engine.rewind_plan`` (the pure plan of a rewind), never the engine step itself.
"""

"""The zenaton engine, installed as ``zenaton_runtime`` (the repository's ``runtime/`` folder).

Sub-packages, lowest first; each may import only those listed before it (and ``zenaton``),
as ``tests/test_layers.py`` checks:

- ``errors``, ``models``: the engine's errors and the records every layer passes around;
- ``project``: the user's project: configuration, loading, the codec, hot reload;
- ``replay``: the pure decision core: ``handle()`` against a journal, no I/O;
- ``store``: the store protocol, its typed batch ops and one module per backend;
- ``instances``: a job object turned into the records of a new instance;
- ``timing``: clocks, Wait fire times, cron schedules, retry rules (pure where it can be);
- ``pool``: running task attempts: in the caller's process or in warm worker processes;
- ``engine``: one engine step: activations, the decision applier, group commit;
- ``client``: what scripts and the CLI do: dispatch, control requests, inspect views
  (of the engine, only the pure plan of a rewind);
- ``check``: stored journals replayed against the project's current code, running nothing and
  writing nothing (``zenaton check``, ``zenaton export``);
- ``testing``: the testing kit behind ``zenaton.testing``: the engine in-process on a memory store
  with a fake clock;
- ``daemon``, ``pidlock``: the daemon's wiring (engine + pool + reload, its record in the
  store), one per store.

``docs/architecture.md`` describes each of them.
"""

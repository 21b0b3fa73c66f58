"""The testing kit behind ``zenaton.testing``: the real engine, in-process, for a test.

- ``environment``: ``WorkflowEnvironment``: an ``Engine`` on a memory store with a fake clock and
  an in-process runner; dispatch, advance the clock, send events, control instances;
- ``runs``: ``Run``, an instance as a test sees it (status, result, steps, properties step by
  step, journal), and ``Step``;
- ``mocks``: ``TaskMock``, a task class whose attempts run a stand-in instead of ``handle()``;
- ``journals``: ``replay``, an exported journal replayed against the current code.

Nothing here is a second engine: the environment drives the daemon's own ``Engine``, and
``replay`` rebuilds a run the engine's way (``check.replayer``). May import every other part
but ``daemon`` and ``pidlock``.
"""

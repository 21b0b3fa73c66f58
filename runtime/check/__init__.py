"""Replaying stored journals against the project's current code, without running anything.

What ``zenaton check``, ``zenaton export`` and ``zenaton.testing.replay`` stand on:

- ``document``: one instance's journal (and its archived runs) as a versioned JSON document,
  written by ``zenaton export`` and read back, checked, by the replays;
- ``replayer``: one instance's run rebuilt from its journal the engine's way
  (``replay.rebuild``), and the verdict: replays cleanly, would break (a non-determinism
  error, or the code failing where it did not), or still fails as it did;
- ``report``: every unfinished instance of an env (and the latest completed ones), or a set of
  export documents, judged and counted per workflow class; the store opened read-only.

No task runs and nothing is written: a replay only decides. May import ``errors``, ``models``,
``project``, ``replay``, ``store`` and ``timing``.
"""

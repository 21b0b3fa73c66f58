"""Time: clocks, when a Wait ends, cron schedules and retry delays.

Owns every computation of "when". Pure where it can be (``waits``, ``retry``): the caller
passes ``now``. May import ``zenaton``, ``errors``, ``models``, ``project``, ``store`` and
``instances`` (``schedules`` fires due schedules through the store protocol).
"""

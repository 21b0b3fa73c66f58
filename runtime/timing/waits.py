"""When a Wait ends, as the engine schedules it.

The computation is the SDK's (``zenaton/_wait_times.py``), so that what ``Wait.get_duration()``
and ``Wait.get_timestamp_or_duration()`` tell a user is what the engine does.
"""

from __future__ import annotations

from zenaton._wait_times import fire_at

__all__ = ["fire_at"]

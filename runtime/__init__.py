"""The zenaton engine: store, replay, task pool, daemon and control."""

"""The user's project: ``zenaton.toml`` and environment, importing it, its codec, hot reload.

Owns everything that knows where the user's code lives and how its objects become JSON.
May import ``zenaton`` and ``errors``; nothing else of the engine.
"""

"""The files ``zenaton init`` copies into a new project (package data, read with importlib.resources)."""

"""Zenaton SDK: workflows as code, run durably by the local zenaton runtime."""

from __future__ import annotations

__version__ = "0.1.0"

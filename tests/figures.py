"""Figures the reliability tests measure (crash loop, CLI fuzzing), for the closing note.

Tests ``record`` them; conftest.py prints them in the terminal summary (whatever ``-s``
says) and writes them to ``reliability-figures.json`` in pytest's base temp directory.
"""
from __future__ import annotations

from typing import Any

FIGURES: dict[str, dict[str, Any]] = {}


def record(name: str, figures: dict[str, Any]) -> None:
    FIGURES.setdefault(name, {}).update(figures)


def add(name: str, key: str, amount: int = 1) -> None:
    section = FIGURES.setdefault(name, {})
    section[key] = section.get(key, 0) + amount

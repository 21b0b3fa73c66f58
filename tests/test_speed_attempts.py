"""An attempt reports the task as handle() left it only when handle() changed it; a task that
encodes back to the attempt's data costs no second encoding of the task as it was found."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flowlib.props import Steady, Tally

from tests.harness import flow_project
from zenaton_runtime.pool.attempts import Attempt, run_attempt


def attempt_of(data: str, name: str) -> Attempt:
    return Attempt("t1", "i1", "dev", name, data, 0, None)


def test_a_task_that_changes_nothing_reports_no_task() -> None:
    project = flow_project()
    outcome = run_attempt(project, attempt_of(project.codec.encode(Steady("a"), "task"), "Steady"))
    assert outcome.ok and outcome.changed_task is None


def test_a_task_that_changes_its_attributes_reports_them() -> None:
    project = flow_project()
    outcome = run_attempt(project, attempt_of(project.codec.encode(Tally("a", 1), "task"), "Tally"))
    assert outcome.ok
    assert outcome.changed_task is not None
    assert vars(project.codec.decode(outcome.changed_task)) == {"label": "a", "count": 2}


def test_stored_text_in_another_layout_is_no_change(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same task, stored with other whitespace: handle() changed nothing, so nothing is
    reported, though its encoding differs from the stored text (found by decoding it again)."""
    project = flow_project()
    canonical = project.codec.encode(Steady("a"), "task")
    spaced = json.dumps(json.loads(canonical), indent=1)
    assert spaced != canonical
    decodes = count_decodes(project, monkeypatch)
    outcome = run_attempt(project, attempt_of(spaced, "Steady"))
    assert outcome.ok and outcome.changed_task is None
    assert len(decodes) == 2  # the attempt's task, then the task as handle() found it


def test_an_unchanged_task_is_decoded_once(monkeypatch: pytest.MonkeyPatch) -> None:
    project = flow_project()
    data = project.codec.encode(Steady("a"), "task")
    decodes = count_decodes(project, monkeypatch)
    outcome = run_attempt(project, attempt_of(data, "Steady"))
    assert outcome.ok and outcome.changed_task is None
    assert decodes == [data]


def count_decodes(project: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = project.codec.decode

    def decode(text: str) -> Any:
        seen.append(text)
        return real(text)

    monkeypatch.setattr(project.codec, "decode", decode)
    return seen

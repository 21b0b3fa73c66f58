"""SQLite rows and records: the column lists, and each row read back as its record."""

from __future__ import annotations

from typing import Any

from zenaton_runtime.models import Entry, InboxItem, InboxKind, Instance, InstanceStatus, Kind, TaskRecord, TaskStatus

INSTANCE_COLS = (
    "id, kind, name, version, custom_id, env, status, data, properties, error,"
    " parent_id, parent_position, created_at, updated_at"
)
TASK_COLS = "id, instance_id, position, name, data, status, retry_index, attempts, run_at, created_at"
JOURNAL_COLS = "instance_id, seq, type, position, name, data, properties, created_at"
INBOX_COLS = "id, instance_id, kind, name, data, created_at"
INSTANCE_MARKS = "?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,1"


def stored_value(member: Any, enum: Any) -> str:
    """The stored text of an enum member (or of a value that names one), cheaply for a member."""
    return str(member.value if type(member) is enum else enum(member).value)


# Stored text -> enum member by dict lookup: rows are read on every step, and Enum(value) is slow.
KINDS = {k.value: k for k in Kind}
INSTANCE_STATUSES = {s.value: s for s in InstanceStatus}
TASK_STATUSES = {s.value: s for s in TaskStatus}
ENTRIES = {e.value: e for e in Entry}
INBOX_KINDS = {k.value: k for k in InboxKind}


def instance_row(r: Any) -> Instance:
    return Instance(r[0], KINDS[r[1]], r[2], r[3], r[4], r[5], INSTANCE_STATUSES[r[6]], *r[7:14])


def task_row(r: Any) -> TaskRecord:
    return TaskRecord(r[0], r[1], r[2], r[3], r[4], TASK_STATUSES[r[5]], r[6], r[7], r[8], r[9])


def inbox_row(r: Any) -> InboxItem:
    """An inbox row; a kind this engine does not know (written by a newer one) reads as UNKNOWN."""
    kind = INBOX_KINDS.get(r[2])
    if kind is None:
        return InboxItem(r[0], r[1], InboxKind.UNKNOWN, r[3], r[4], r[5], unknown_kind=r[2])
    return InboxItem(r[0], r[1], kind, r[3], r[4], r[5])

"""The export document: one instance's journal, and the runs rewinds archived, as JSON.

Version 1, as ``zenaton export`` writes it::

    {"format": "zenaton-journal", "version": 1,
     "exported_at": 1733130000.0,            # epoch seconds
     "zenaton": "0.1.0",                      # the version that wrote it
     "instance": {"id", "kind", "name", "version", "custom_id", "env", "status",
                  "parent_id", "parent_position", "created_at", "updated_at",
                  "data": <the workflow (or task) as dispatched, the codec's JSON>,
                  "properties": <the codec's JSON, or null>, "error": <object, or null>},
     "journal": [{"seq", "type", "position", "name", "data", "properties", "created_at"}, ...],
     "archive": [{"run": 1, "archived_at": ..., "entries": [<journal entries>]}, ...]}

Stored texts (``data``, ``properties``, an entry's ``data`` and ``properties``) are embedded as
the JSON they hold, not as strings, so that a document reads (and diffs) well. Reading a document
back checks its format, its version and the type of every field: anything else is a
``DocumentError`` that names the file and what is wrong with it, on one line.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zenaton_runtime.errors import ZenatonError
from zenaton_runtime.models import ArchivedRun, Entry, Instance, InstanceStatus, JournalEntry, Kind

FORMAT = "zenaton-journal"
VERSION = 1


class DocumentError(ZenatonError):
    """An export document that cannot be read: not JSON, not an export, another version, damaged."""


@dataclass(frozen=True)
class Document:
    """An export document read back: the records it holds, and where it came from."""

    instance: Instance
    journal: list[JournalEntry]
    archive: list[ArchivedRun]
    source: str  # the file's path, or "<dict>"


# -- writing ---------------------------------------------------------------------------------


def export_document(
    instance: Instance, journal: list[JournalEntry], archive: list[ArchivedRun], *, exported_at: float, zenaton: str
) -> dict[str, Any]:
    """The document of one instance (version 1); raises DocumentError if a stored text is not JSON."""
    where = f"instance {instance.id}"
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": exported_at,
        "zenaton": zenaton,
        "instance": {
            "id": instance.id,
            "kind": instance.kind.value,
            "name": instance.name,
            "version": instance.version,
            "custom_id": instance.custom_id,
            "env": instance.env,
            "status": instance.status.value,
            "parent_id": instance.parent_id,
            "parent_position": instance.parent_position,
            "created_at": instance.created_at,
            "updated_at": instance.updated_at,
            "data": _embedded(instance.data, f"{where}: its data"),
            "properties": _embedded(instance.properties, f"{where}: its properties"),
            "error": _embedded(instance.error, f"{where}: its error"),
        },
        "journal": [_entry(entry, where) for entry in journal],
        "archive": [
            {"run": run.run, "archived_at": run.archived_at, "entries": [_entry(e, where) for e in run.entries]}
            for run in archive
        ],
    }


def _entry(entry: JournalEntry, where: str) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "type": entry.type.value,
        "position": entry.position,
        "name": entry.name,
        "data": _embedded(entry.data, f"{where}: journal entry {entry.seq}"),
        "properties": _embedded(entry.properties, f"{where}: journal entry {entry.seq}'s properties"),
        "created_at": entry.created_at,
    }


def _embedded(text: str | None, what: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        raise DocumentError(f"{what} is not JSON: the store is damaged") from None


# -- reading ---------------------------------------------------------------------------------


def read_document(source: str | os.PathLike[str] | dict[str, Any]) -> Document:
    """A document from a file (its path) or from the dict ``export_document`` returned."""
    if isinstance(source, dict):
        return parse_document(source, "<dict>")
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise DocumentError(f"cannot read {path}: {reason}") from None
    try:
        value = json.loads(text)
    except ValueError as error:
        raise DocumentError(f"{path} is not a zenaton journal export: not JSON ({error})") from None
    return parse_document(value, str(path))


def parse_document(value: Any, source: str) -> Document:
    """The records of a parsed document; DocumentError saying what is wrong with it."""
    if not isinstance(value, dict) or value.get("format") != FORMAT:
        raise DocumentError(f'{source} is not a zenaton journal export (no "format": "{FORMAT}")')
    version = value.get("version")
    if version != VERSION:
        newer = isinstance(version, int) and not isinstance(version, bool) and version > VERSION
        hint = "written by a newer zenaton; upgrade zenaton" if newer else "not a version zenaton wrote"
        raise DocumentError(
            f"{source}: export document version {version!r} is not supported (this zenaton reads version "
            f"{VERSION}; {hint})"
        )
    reader = _Reader(source)
    instance = reader.instance(reader.obj(value, "instance"))
    journal = [reader.entry(instance.id, e, f"journal[{i}]") for i, e in enumerate(reader.array(value, "journal"))]
    archive = []
    for i, run in enumerate(reader.array(value, "archive")):
        where = f"archive[{i}]"
        if not isinstance(run, dict):
            raise DocumentError(f"{source}: damaged export document: {where} is not an object")
        raw = reader.array(run, "entries", where)
        entries = tuple(reader.entry(instance.id, e, f"{where}.entries[{j}]") for j, e in enumerate(raw))
        number, archived_at = reader.integer(run, "run", where), reader.number(run, "archived_at", where)
        archive.append(ArchivedRun(instance.id, number, archived_at, entries))
    return Document(instance, journal, archive, source)


class _Reader:
    """Typed field reads of a document; each failure names the field and the file."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, key: str, wanted: str) -> DocumentError:
        field = f"{where}.{key}" if where else key
        return DocumentError(f"{self.source}: damaged export document: {field} is not {wanted}")

    def get(self, obj: dict[str, Any], key: str, where: str, types: tuple[type, ...], wanted: str) -> Any:
        value = obj.get(key)
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise self.fail(where, key, wanted)
        return value

    def obj(self, obj: dict[str, Any], key: str, where: str = "") -> dict[str, Any]:
        value: dict[str, Any] = self.get(obj, key, where, (dict,), "an object")
        return value

    def array(self, obj: dict[str, Any], key: str, where: str = "") -> list[Any]:
        value: list[Any] = self.get(obj, key, where, (list,), "a list")
        return value

    def text(self, obj: dict[str, Any], key: str, where: str) -> str:
        value: str = self.get(obj, key, where, (str,), "a string")
        return value

    def optional_text(self, obj: dict[str, Any], key: str, where: str) -> str | None:
        value: str | None = self.get(obj, key, where, (str, type(None)), "a string or null")
        return value

    def integer(self, obj: dict[str, Any], key: str, where: str) -> int:
        value: int = self.get(obj, key, where, (int,), "an integer")
        return value

    def optional_integer(self, obj: dict[str, Any], key: str, where: str) -> int | None:
        value: int | None = self.get(obj, key, where, (int, type(None)), "an integer or null")
        return value

    def number(self, obj: dict[str, Any], key: str, where: str) -> float:
        return float(self.get(obj, key, where, (int, float), "a number"))

    def enum(self, obj: dict[str, Any], key: str, where: str, enum: Any) -> Any:
        try:
            return enum(self.text(obj, key, where))
        except ValueError:
            names = ", ".join(member.value for member in enum)
            raise self.fail(where, key, f"one of {names}") from None

    def stored(self, obj: dict[str, Any], key: str, where: str, required: bool = False) -> str | None:
        """An embedded JSON value back as the text the store holds."""
        if key not in obj or (required and obj[key] is None):
            raise self.fail(where, key, "present")
        value = obj[key]
        return None if value is None else json.dumps(value, ensure_ascii=False)

    def instance(self, obj: dict[str, Any]) -> Instance:
        w = "instance"
        return Instance(
            id=self.text(obj, "id", w),
            kind=self.enum(obj, "kind", w, Kind),
            name=self.text(obj, "name", w),
            version=self.optional_text(obj, "version", w),
            custom_id=self.optional_text(obj, "custom_id", w),
            env=self.text(obj, "env", w),
            status=self.enum(obj, "status", w, InstanceStatus),
            data=self.stored(obj, "data", w, required=True) or "null",
            properties=self.stored(obj, "properties", w),
            error=self.stored(obj, "error", w),
            parent_id=self.optional_text(obj, "parent_id", w),
            parent_position=self.optional_integer(obj, "parent_position", w),
            created_at=self.number(obj, "created_at", w),
            updated_at=self.number(obj, "updated_at", w),
        )

    def entry(self, instance_id: str, obj: Any, where: str) -> JournalEntry:
        if not isinstance(obj, dict):
            raise DocumentError(f"{self.source}: damaged export document: {where} is not an object")
        return JournalEntry(
            instance_id=instance_id,
            seq=self.integer(obj, "seq", where),
            type=self.enum(obj, "type", where, Entry),
            position=self.optional_integer(obj, "position", where),
            name=self.optional_text(obj, "name", where),
            data=self.stored(obj, "data", where),
            properties=self.stored(obj, "properties", where),
            created_at=self.number(obj, "created_at", where),
        )

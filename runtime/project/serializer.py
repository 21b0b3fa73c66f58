"""The JSON codec of ARCHITECTURE section 7: JSON with type tags, never pickle.

Plain JSON stands for itself: None, bools, ints, strs, finite floats, lists, and dicts whose
keys are all str (none of them "$"). Other values are JSON objects tagged by "$": float
("v": "nan"/"inf"/"-inf"); list, tuple, set, frozenset ("v": [...]); dict ("v": {str: value}
or "items": [[key, value], ...]); bytes (base64), decimal, uuid, date ("v": str); datetime,
time ("v": naive ISO, "fold", "offset" in µs and "tzname", or "zone": a zoneinfo key);
timedelta ("v": [days, seconds, µs]); enum ("cls": "module:Qual.Name", "v": member name);
obj ("cls", "v": {attr: value}, "args" for exceptions); map, a dict subclass ("cls", "v" or
"items", "state"). A container or object reached twice carries "id": n where it is first
written and is {"$": "ref", "id": n} after that (so the JSON's key order must be kept).
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import enum
import functools
import importlib
import itertools
import json
import math
import sys
import uuid
import zoneinfo
from collections.abc import Callable
from typing import Any

from zenaton_runtime.errors import SerializationError

_HEAPTYPE = 1 << 9  # type flag of classes made by a class statement
_PRIVATE = ("_zenaton", "_context")
_STDLIB = frozenset(sys.stdlib_module_names) | frozenset(sys.builtin_module_names)
_CONTAINERS = frozenset({list, dict, tuple, set, frozenset})
# One encoder for every call: json.dumps with non-default options builds a new one each time.
_compact = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def properties_of(obj: Any) -> dict[str, Any]:
    """The object's attributes, without the engine's own (``_zenaton*``, ``_context*``)."""
    attrs = getattr(obj, "__dict__", None) or {}
    return {k: v for k, v in attrs.items() if not (type(k) is str and k.startswith(_PRIVATE))}


class _Refusal(Exception):
    """A value that cannot be stored; its path is collected while unwinding."""

    def __init__(self, type_name: str, reason: str = "") -> None:
        self.path: list[str] = []
        self.head, self.tail = f"cannot store a value of type '{type_name}' at ", f": {reason}" if reason else ""


# -- builtin scalar types, encoded and decoded by the codec itself ----------------------------


def _enc_clock(value: Any) -> dict[str, Any]:
    node: dict[str, Any] = {"$": type(value).__name__, "v": value.replace(tzinfo=None).isoformat()}
    if value.fold:
        node["fold"] = 1
    tz = value.tzinfo
    if type(tz) is dt.timezone:
        offset = tz.utcoffset(None)
        node["offset"] = offset // dt.timedelta(microseconds=1)
        if tz.tzname(None) != dt.timezone(offset).tzname(None):
            node["tzname"] = tz.tzname(None)
    elif isinstance(tz, zoneinfo.ZoneInfo) and tz.key:
        node["zone"] = tz.key
    elif tz is not None:
        raise _Refusal(
            type(value).__name__,
            f"its time zone {tz!r} is neither a fixed offset (datetime.timezone) nor a zoneinfo.ZoneInfo",
        )
    return node


def _dec_clock(cls: Any) -> Callable[[dict[str, Any]], Any]:
    def decode(node: dict[str, Any]) -> Any:
        tz: dt.tzinfo | None = None
        if "zone" in node:
            tz = zoneinfo.ZoneInfo(node["zone"])
        elif "offset" in node:
            offset = dt.timedelta(microseconds=node["offset"])
            tz = dt.timezone(offset, node["tzname"]) if "tzname" in node else dt.timezone(offset)
        return cls.fromisoformat(node["v"]).replace(tzinfo=tz, fold=node.get("fold", 0))

    return decode


_SIMPLE_ENCODERS: dict[type, Callable[[Any], dict[str, Any]]] = {
    bytes: lambda v: {"$": "bytes", "v": base64.b64encode(v).decode("ascii")},
    decimal.Decimal: lambda v: {"$": "decimal", "v": str(v)},
    uuid.UUID: lambda v: {"$": "uuid", "v": str(v)},
    dt.date: lambda v: {"$": "date", "v": v.isoformat()},
    dt.timedelta: lambda v: {"$": "timedelta", "v": [v.days, v.seconds, v.microseconds]},
    dt.datetime: _enc_clock,
    dt.time: _enc_clock,
}
_SIMPLE_DECODERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "float": lambda n: float({"nan": "nan", "inf": "inf", "-inf": "-inf"}[n["v"]]),
    "bytes": lambda n: base64.b64decode(n["v"], validate=True),
    "decimal": lambda n: decimal.Decimal(str(n["v"])),
    "uuid": lambda n: uuid.UUID(n["v"]),
    "date": lambda n: dt.date.fromisoformat(n["v"]),
    "timedelta": lambda n: dt.timedelta(*n["v"]),
    "datetime": _dec_clock(dt.datetime),
    "time": _dec_clock(dt.time),
}


def _inspect(tp: type, allowed: Callable[[str], bool]) -> tuple[str, str]:
    """(kind, "module:qualname") for a storable class, or ("", reason) for a refused one."""
    if not tp.__flags__ & _HEAPTYPE:
        return "", ""  # a built-in or extension type: functions, modules, sockets, locks ...
    module, qual = tp.__module__, tp.__qualname__
    name = f"{module}.{qual}"
    if not allowed(module):
        stdlib = module.partition(".")[0] in _STDLIB
        return "", "" if stdlib else f"class {name} is not in one of the project's modules"
    if "<locals>" in qual:
        return "", (
            f"class {name} is defined inside a function; define it at module level so it can be found again by name"
        )
    kind = "enum" if issubclass(tp, enum.Enum) else ""
    if not kind:
        base: Any = tp
        while base.__flags__ & _HEAPTYPE:
            base = base.__base__
        kind = {object: "obj", dict: "map"}.get(base, "exc" if issubclass(base, BaseException) else "")
        if not kind:
            return "", f"subclasses of the built-in type '{base.__name__}' cannot be stored"
        for klass in tp.__mro__:
            slots = klass.__dict__.get("__slots__", ())
            if any(s not in ("__dict__", "__weakref__") for s in ([slots] if isinstance(slots, str) else slots)):
                return "", f"class {name} keeps attributes in __slots__, which cannot be stored"
    found: Any = sys.modules.get(module)
    for part in qual.split("."):
        found = getattr(found, part, None)
    # a class replaced by reloading its module is still found under the same name
    if found is not tp and not (isinstance(found, type) and found.__module__ == module and found.__qualname__ == qual):
        return "", f"class {name} cannot be found again by its name"
    return kind, f"{module}:{qual}"


class _Encoder:
    """One pass of an encode call. A container met again is written as a reference to the id
    written where it was first met, or, without one yet, is added to ``shared`` for a new pass."""

    __slots__ = ("ids", "info", "numbers", "open", "shared")

    def __init__(self, info: Callable[[type], tuple[str, str]], shared: set[int]) -> None:
        self.info, self.shared = info, shared
        self.ids: dict[int, int] = {}  # id(container) -> its id in the output, 0 for none
        self.numbers = itertools.count(1)
        self.open: set[int] = set()  # tuples and frozensets being written

    def child(self, v: Any, where: str, key: Any = None) -> Any:
        try:
            return self.node(v)
        except _Refusal as e:
            e.path.append(where.format(key))
            raise

    def node(self, v: Any) -> Any:
        t = type(v)
        if t is str or t is int or t is bool or v is None:
            return v
        if t is float:
            return v if math.isfinite(v) else {"$": "float", "v": repr(v)}
        simple = _SIMPLE_ENCODERS.get(t)
        if simple is not None:
            return simple(v)
        kind, name = (t.__name__, "") if t in _CONTAINERS else self.info(t)
        if not kind:
            raise _Refusal(t.__name__, name)
        if kind == "enum":
            return {"$": "enum", "cls": name, "v": v.name}
        if not v and (kind == "tuple" or kind == "frozenset"):
            return {"$": kind, "v": []}  # possibly a shared singleton; nothing to share
        key = id(v)
        n = self.ids.get(key)
        fresh = n is None
        if not fresh:
            if not n:
                self.shared.add(key)  # met again, and written without an id: another pass
                return None
            if key not in self.open:
                return {"$": "ref", "id": n}
            n = 0  # a tuple met again inside itself (through a list): write an equal copy
        else:
            n = self.ids[key] = next(self.numbers) if key in self.shared else 0
            if kind == "tuple" or kind == "frozenset":
                self.open.add(key)
        str_keys = (kind == "dict" or kind == "map") and all(type(k) is str for k in v)
        if not n and (kind == "list" or (kind == "dict" and str_keys and "$" not in v)):
            return self.body(v, kind, str_keys)
        node: dict[str, Any] = {"$": "obj" if kind == "exc" else kind}
        if name:
            node["cls"] = name
        if n:
            node["id"] = n
        if kind == "exc":
            node["args"] = [self.child(x, ".args[{}]", i) for i, x in enumerate(v.args)]
        if kind != "obj" and kind != "exc":
            node["items" if kind in ("dict", "map") and not str_keys else "v"] = self.body(v, kind, str_keys)
        if kind == "obj" or kind == "exc" or (kind == "map" and getattr(v, "__dict__", None)):
            attrs = {k: self.child(x, ".{}", k) for k, x in properties_of(v).items()}
            node["state" if kind == "map" else "v"] = attrs
        if fresh:
            self.open.discard(key)
        return node

    def body(self, v: Any, kind: str, str_keys: bool) -> Any:
        if kind == "list" or kind == "tuple":
            return [self.child(x, "[{}]", i) for i, x in enumerate(v)]
        if kind == "set" or kind == "frozenset":
            return [self.child(x, "[<item>]") for x in v]
        if str_keys:
            return {k: self.child(x, "[{!r}]", k) for k, x in v.items()}
        return [[self.child(k, "[<key>]"), self.child(x, "[{!r}]", k)] for k, x in v.items()]


class _Decoder:
    """One decode call. Mutable containers are registered under their id before what they
    hold is read, so references back into them resolve."""

    __slots__ = ("resolve", "table")

    def __init__(self, resolve: Callable[[Any], type]) -> None:
        self.resolve = resolve
        self.table: dict[Any, Any] = {}  # id -> value read

    def keep(self, node: dict[str, Any], obj: Any) -> Any:
        if "id" in node:
            self.table[node["id"]] = obj
        return obj

    def value(self, node: Any) -> Any:
        t = type(node)
        if t is list:
            return [self.value(x) for x in node]
        if t is not dict:
            return node
        tag = node.get("$")
        if tag is None:
            return {k: self.value(x) for k, x in node.items()}
        if tag in _SIMPLE_DECODERS:
            return _SIMPLE_DECODERS[tag](node)
        if tag == "ref":
            if node["id"] not in self.table:  # written after its definition, unless keys were reordered
                raise SerializationError(f"stored value refers to id {node['id']!r} before defining it")
            return self.table[node["id"]]
        if tag == "tuple" or tag == "frozenset":
            items = [self.value(x) for x in node["v"]]
            return self.keep(node, tuple(items) if tag == "tuple" else frozenset(items))
        if tag == "list" or tag == "set":
            out = self.keep(node, [] if tag == "list" else set())
            (out.extend if tag == "list" else out.update)(self.value(x) for x in node["v"])  # one by one
            return out
        if tag == "dict":
            return self.fill(self.keep(node, {}), node)
        if tag not in ("enum", "obj", "map"):
            raise SerializationError(f"cannot read a stored value tagged {tag!r}")
        return self.instance(tag, node)

    def instance(self, tag: str, node: dict[str, Any]) -> Any:
        cls = self.resolve(node["cls"])
        if tag == "enum":
            if not issubclass(cls, enum.Enum) or node["v"] not in cls.__members__:
                raise SerializationError(f"{cls.__qualname__} has no enum member {node['v']!r}")
            return cls[node["v"]]
        if (tag == "map") != issubclass(cls, dict):
            raise SerializationError(f"stored class {cls.__qualname__} does not match its tag {tag!r}")
        made: Any = cls
        return self.populate(self.keep(node, made.__new__(made)), tag, node)

    def populate(self, obj: Any, tag: str, node: dict[str, Any]) -> Any:
        if tag == "map":
            self.fill(obj, node)
        if "args" in node:
            obj.args = tuple([self.value(x) for x in node["args"]])
        state = node.get("state" if tag == "map" else "v")
        if state:
            obj.__dict__.update({k: self.value(x) for k, x in state.items()})
        return obj

    def fill(self, out: dict[Any, Any], node: dict[str, Any]) -> dict[Any, Any]:
        pairs = node["v"].items() if "v" in node else ((self.value(k), x) for k, x in node["items"])
        for k, x in pairs:  # each key is read before its value, as they were written
            dict.__setitem__(out, k, self.value(x))
        return out


class Codec:
    """Encodes values to tagged JSON text and back; classes only from allowed modules."""

    def __init__(self, allowed_module: Callable[[str], bool]) -> None:
        self._allowed: Callable[[str], bool] = lambda m: (
            m == "zenaton" or m.startswith("zenaton.") or bool(allowed_module(m))
        )
        self._class_info = functools.lru_cache(maxsize=None)(lambda tp: _inspect(tp, self._allowed))

    def encode(self, value: Any, root: str = "value") -> str:
        """The value as JSON text; SerializationError names the path of what cannot be stored."""
        flat = self._flat(value)
        if flat is not None:
            return _compact(flat)
        shared: set[int] = set()  # containers reached more than once, found by earlier passes
        try:
            while True:
                known = len(shared)
                node = _Encoder(self._class_info, shared).node(value)
                if len(shared) == known:
                    break
        except _Refusal as e:
            raise SerializationError(e.head + root + "".join(reversed(e.path)) + e.tail) from None
        except RecursionError:
            raise SerializationError(f"cannot store the value at {root}: it is nested too deeply") from None
        return _compact(node)

    def _flat(self, value: Any) -> Any:
        """The node of a dict of scalars, or of an object of a plain class whose attributes are
        all scalars (the common case: properties, tasks), built without a full pass; else None."""
        t = type(value)
        if t is dict:
            if "$" in value or not all(type(k) is str for k in value):
                return None
            attrs = value
        elif t.__flags__ & _HEAPTYPE and t.__dict__.get("__slots__") is None:
            kind, name = self._class_info(t)  # type: ignore[arg-type]  # classes are hashable
            if kind != "obj":
                return None
            attrs = properties_of(value)
        else:
            return None
        for x in attrs.values():
            u = type(x)
            if not (u is str or u is int or u is bool or x is None or (u is float and math.isfinite(x))):
                return None
        return attrs if t is dict else {"$": "obj", "cls": name, "v": attrs}

    def decode(self, text: str) -> Any:
        """The value encoded in ``text``; SerializationError if it cannot be rebuilt."""
        try:
            value = json.loads(text)
        except Exception as exc:
            raise SerializationError(f"cannot read a stored value: {type(exc).__name__}: {exc}") from exc
        t = type(value)
        if t is str or t is int or t is bool or value is None or (t is float and math.isfinite(value)):
            return value  # a scalar stands for itself: nothing to rebuild
        return _guarded(lambda: _Decoder(self._resolve).value(value))

    def _resolve(self, name: Any) -> type:
        """The class named "module:Qual.Name", imported only if its module is allowed."""
        module, _, qual = name.partition(":")
        dotted = f"{module}.{qual}"
        if not self._allowed(module):
            raise SerializationError(
                f"refusing to load class {dotted}: module {module!r} is not one of the project's modules"
            )
        found: Any = importlib.import_module(module)
        for part in qual.split("."):  # classes and their nested classes only, never dunders
            ok = found is not None and not part.startswith("__")
            found = getattr(found, part, None) if ok else None
            found = found if isinstance(found, type) else None
        if found is None or found.__module__ != module or found.__qualname__ != qual:
            raise SerializationError(f"cannot load class {dotted}: no class of that name is defined there")
        cls: type = found
        return cls


def _guarded(read: Callable[[], Any]) -> Any:
    """Runs a read of stored text, turning any failure into a SerializationError."""
    try:
        return read()
    except SerializationError:
        raise
    except Exception as exc:
        raise SerializationError(f"cannot read a stored value: {type(exc).__name__}: {exc}") from exc


def display(text: str) -> Any:
    """Plain JSON-compatible data for an encoded value, for people and scripts; imports nothing."""
    if "$" not in text and "\\u0024" not in text:  # no tag: the JSON is the display, unless a float is not finite
        try:
            return json.loads(text, parse_float=_finite, parse_constant=_not_finite)
        except (_NotFinite, ValueError, RecursionError):
            pass  # read again below, as any stored text, to say what it holds or why it cannot be read
    return _guarded(lambda: _plain(_Viewer(type).value(json.loads(text)), set()))  # resolves no name


class _NotFinite(Exception):
    """A float JSON holds only as a word (NaN, Infinity, or too big: 1e400): shown as that word."""


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotFinite(text)
    return value


def _not_finite(text: str) -> float:
    raise _NotFinite(text)


def display_parsed(value: Any) -> Any:
    """``display`` of an encoded value already parsed from its JSON text (a part of a journal
    entry's data): the same result, without writing it out and reading it back."""
    t = type(value)
    if t is str or t is int or t is bool or value is None:
        return value
    return _guarded(lambda: _plain(_Viewer(type).value(value), set()))


class _Stand(dict):  # type: ignore[type-arg]
    """Display's stand-in for a stored object: its class name, items and attributes."""

    __slots__ = ("__dict__", "name")
    name: str
    __hash__ = object.__hash__  # type: ignore[assignment]  # stand-ins can be set items and dict keys, as objects can

    def __repr__(self) -> str:
        return f"<{self.name} object>"


class _Viewer(_Decoder):
    """A decoder that builds stand-ins instead of importing and instantiating classes."""

    def instance(self, tag: str, node: dict[str, Any]) -> Any:
        if tag == "enum":
            return f"{node['cls'].partition(':')[2]}.{node['v']}"
        stand = self.keep(node, _Stand())
        stand.name = node["cls"].replace(":", ".", 1)
        return self.populate(stand, tag, node)


def _plain(value: Any, active: set[int]) -> Any:
    """Decoded data as JSON-compatible data; a container inside itself becomes "<cycle>"."""
    t = type(value)
    if t is str or t is int or t is bool or value is None:
        return value
    if t is float:
        return value if math.isfinite(value) else repr(value)
    if t is dt.datetime or t is dt.date or t is dt.time:
        return value.isoformat()
    if t not in _CONTAINERS and t is not _Stand:
        return repr(value) if t is bytes else str(value)  # Decimal, UUID, timedelta
    if id(value) in active:
        return "<cycle>"
    active.add(id(value))
    if t is _Stand:
        out: Any = {"__class__": value.name, **_plain(dict(value), active), **_plain(vars(value), active)}
    elif t is dict:
        out = {k if type(k) is str else repr(k): _plain(x, active) for k, x in value.items()}
    else:
        out = [_plain(x, active) for x in value]
    active.discard(id(value))
    return out

"""The JSON codec of ARCHITECTURE section 7: JSON with type tags, never pickle.

Plain JSON stands for itself: None, bools, ints, strs, finite floats, lists, and dicts whose
keys are all str (none of them "$"). Other values are JSON objects tagged by "$":
  float ("v": "nan"/"inf"/"-inf"); list, tuple, set, frozenset ("v": [...]);
  dict ("v": {str: value} or "items": [[key, value], ...]); bytes (base64); decimal, uuid,
  date ("v": str); datetime, time ("v": naive ISO, optional "fold", and "offset" in µs with
  optional "tzname", or "zone": a zoneinfo key); timedelta ("v": [days, seconds, µs]);
  enum ("cls": "module:Qual.Name", "v": member name); obj ("cls", "v": {attr: value}, and
  "args" for exceptions); map, a dict subclass ("cls", "v"/"items", optional "state").
A container or object reached more than once carries "id": n where it first occurs, in
encoding order (which decoding follows), and is {"$": "ref", "id": n} everywhere else, so
shared and circular references survive. Decoding imports classes from allowed modules only.
"""
from __future__ import annotations

import base64
import datetime as dt
import decimal
import enum
import importlib
import json
import math
import sys
import uuid
import zoneinfo
from typing import Any, Callable

from .errors import SerializationError

_HEAPTYPE = 1 << 9  # type flag of classes made by a class statement
_PRIVATE = ("_zenaton", "_context")
_STDLIB = frozenset(sys.stdlib_module_names) | frozenset(sys.builtin_module_names)
_CONTAINERS = frozenset({list, dict, tuple, set, frozenset})


def properties_of(obj: Any) -> dict[str, Any]:
    """The object's attributes, without the engine's own (``_zenaton*``, ``_context*``)."""
    attrs = getattr(obj, "__dict__", None) or {}
    return {k: v for k, v in attrs.items() if not (type(k) is str and k.startswith(_PRIVATE))}


class _Refusal(Exception):
    """A value that cannot be stored; its path is collected while unwinding."""

    def __init__(self, type_name: str, reason: str = "") -> None:
        super().__init__(type_name)
        self.type_name, self.reason, self.path = type_name, reason, []

    def message(self, root: str) -> str:
        text = f"cannot store a value of type '{self.type_name}' at {root}{''.join(reversed(self.path))}"
        return f"{text}: {self.reason}" if self.reason else text


# -- builtin scalar types, encoded and decoded by the codec itself ----------------------------

def _enc_clock(value: Any) -> dict[str, Any]:
    node: dict[str, Any] = {"$": type(value).__name__, "v": value.replace(tzinfo=None).isoformat()}
    if value.fold:
        node["fold"] = 1
    tz = value.tzinfo
    if tz is None:
        return node
    if type(tz) is dt.timezone:
        offset = tz.utcoffset(None)
        node["offset"] = offset // dt.timedelta(microseconds=1)
        if tz.tzname(None) != dt.timezone(offset).tzname(None):
            node["tzname"] = tz.tzname(None)
    elif isinstance(tz, zoneinfo.ZoneInfo) and tz.key:
        node["zone"] = tz.key
    else:
        raise _Refusal(type(value).__name__, f"its time zone {tz!r} is neither a fixed offset "
                       "(datetime.timezone) nor a zoneinfo.ZoneInfo")
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


def _dec_float(node: dict[str, Any]) -> float:
    if node["v"] not in ("nan", "inf", "-inf"):
        raise ValueError(f"not a special float: {node['v']!r}")
    return float(node["v"])


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
    "float": _dec_float,
    "bytes": lambda n: base64.b64decode(n["v"], validate=True),
    "decimal": lambda n: decimal.Decimal(str(n["v"])),
    "uuid": lambda n: uuid.UUID(n["v"]),
    "date": lambda n: dt.date.fromisoformat(n["v"]),
    "timedelta": lambda n: dt.timedelta(*n["v"]),
    "datetime": _dec_clock(dt.datetime),
    "time": _dec_clock(dt.time),
}
_ATOMS = frozenset({type(None), bool, int, float, str, *_SIMPLE_ENCODERS})


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
        return "", (f"class {name} is defined inside a function; define it at module level "
                    "so it can be found again by name")
    kind = "enum" if issubclass(tp, enum.Enum) else ""
    if not kind:
        base = tp
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
    if found is not tp and not (isinstance(found, type) and found.__module__ == module
                                and found.__qualname__ == qual):
        return "", f"class {name} cannot be found again by its name"
    return kind, f"{module}:{qual}"


class _Encoder:
    """One encode call: builds the JSON tree, giving ids to shared containers."""

    __slots__ = ("info", "shared", "ids", "open")

    def __init__(self, info: Callable[[type], tuple[str, str]], shared: set[int]) -> None:
        self.info, self.shared = info, shared
        self.ids: dict[int, int] = {}
        self.open: set[int] = set()  # shared tuples and frozensets being written

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
        key, n = id(v), 0
        if key in self.shared:
            n = self.ids.get(key, 0)
            if not n:
                n = self.ids[key] = len(self.ids) + 1
            elif key in self.open:
                n = 0  # a tuple met again inside itself (through a list): write an equal copy
            else:
                return {"$": "ref", "id": n}
        str_keys = (kind == "dict" or kind == "map") and all(type(k) is str for k in v)
        if not n and (kind == "list" or (kind == "dict" and str_keys and "$" not in v)):
            return self.body(v, kind, str_keys)
        node: dict[str, Any] = {"$": "obj" if kind == "exc" else kind}
        if name:
            node["cls"] = name
        if n:
            node["id"] = n
            if kind == "tuple" or kind == "frozenset":
                self.open.add(key)
        if kind == "exc":
            node["args"] = [self.child(x, ".args[{}]", i) for i, x in enumerate(v.args)]
        if kind != "obj" and kind != "exc":
            node["items" if kind in ("dict", "map") and not str_keys else "v"] = self.body(v, kind, str_keys)
        if kind == "obj" or kind == "exc" or (kind == "map" and getattr(v, "__dict__", None)):
            attrs = {k: self.child(x, ".{}", k) for k, x in properties_of(v).items()}
            node["state" if kind == "map" else "v"] = attrs
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
    """One decode call: containers are registered before they are filled, for cycles."""

    __slots__ = ("resolve", "table")

    def __init__(self, resolve: Callable[[Any], type]) -> None:
        self.resolve = resolve
        self.table: dict[Any, Any] = {}

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
            return self.table[node["id"]]
        if tag == "tuple" or tag == "frozenset":
            items = [self.value(x) for x in node["v"]]
            return self.keep(node, tuple(items) if tag == "tuple" else frozenset(items))
        if tag == "list" or tag == "set":
            out = self.keep(node, [] if tag == "list" else set())
            add = out.append if tag == "list" else out.add
            for x in node["v"]:
                add(self.value(x))
            return out
        if tag == "dict":
            return self.fill(self.keep(node, {}), node)
        if tag not in ("enum", "obj", "map"):
            raise SerializationError(f"cannot read a stored value tagged {tag!r}")
        cls = self.resolve(node["cls"])
        if tag == "enum":
            if not issubclass(cls, enum.Enum) or node["v"] not in cls.__members__:
                raise SerializationError(f"{cls.__qualname__} has no enum member {node['v']!r}")
            return cls[node["v"]]
        if (tag == "map") != issubclass(cls, dict):
            raise SerializationError(f"stored class {cls.__qualname__} does not match its tag {tag!r}")
        obj = self.keep(node, cls.__new__(cls))
        if tag == "map":
            self.fill(obj, node)
        if "args" in node:
            obj.args = tuple([self.value(x) for x in node["args"]])
        state = node.get("state" if tag == "map" else "v")
        if state:
            obj.__dict__.update({k: self.value(x) for k, x in state.items()})
        return obj

    def fill(self, out: dict[Any, Any], node: dict[str, Any]) -> dict[Any, Any]:
        if "v" in node:
            for k, x in node["v"].items():
                dict.__setitem__(out, k, self.value(x))
        else:
            for k, x in node["items"]:
                key = self.value(k)  # the key first, as the encoder wrote it
                dict.__setitem__(out, key, self.value(x))
        return out


class Codec:
    """Encodes values to tagged JSON text and back; classes only from allowed modules."""

    def __init__(self, allowed_module: Callable[[str], bool]) -> None:
        self._allowed: Callable[[str], bool] = lambda m: (
            m == "zenaton" or m.startswith("zenaton.") or bool(allowed_module(m)))
        self._classes: dict[type, tuple[str, str]] = {}

    def encode(self, value: Any, root: str = "value") -> str:
        """The value as JSON text; SerializationError names the path of what cannot be stored."""
        try:
            node = _Encoder(self._class_info, self._shared(value)).node(value)
        except _Refusal as e:
            raise SerializationError(e.message(root)) from None
        except RecursionError:
            raise SerializationError(f"cannot store the value at {root}: it is nested too deeply") from None
        return json.dumps(node, ensure_ascii=False, separators=(",", ":"), allow_nan=False)

    def decode(self, text: str) -> Any:
        """The value encoded in ``text``; SerializationError if it cannot be rebuilt."""
        return _guarded(lambda: _Decoder(self._resolve).value(json.loads(text)))

    def _class_info(self, tp: type) -> tuple[str, str]:
        info = self._classes.get(tp)
        if info is None:
            info = self._classes[tp] = _inspect(tp, self._allowed)
        return info

    def _shared(self, value: Any) -> set[int]:
        """Ids of the containers and objects reached more than once."""
        seen: set[int] = set()
        shared: set[int] = set()
        stack = [value]
        push = stack.extend
        while stack:
            v = stack.pop()
            t = type(v)
            if t in _ATOMS:
                continue
            if t in _CONTAINERS:
                kind = t.__name__
                if not v and (t is tuple or t is frozenset):
                    continue  # empty ones may be interned singletons
            else:
                kind = self._class_info(t)[0]
                if not kind or kind == "enum":
                    continue  # members are stored by name; refusals are the encoder's job
            if id(v) in seen:
                shared.add(id(v))
                continue
            seen.add(id(v))
            if kind == "dict" or kind == "map":
                push(v.values())
            if kind != "obj" and kind != "exc":
                push(v)
            if kind == "obj" or kind == "exc" or kind == "map":
                push(properties_of(v).values())
            if kind == "exc":
                push(v.args)
        return shared

    def _resolve(self, name: Any) -> type:
        """The class named "module:Qual.Name", imported only if its module is allowed."""
        module, _, qual = name.partition(":") if type(name) is str else ("", "", "")
        if not module or not qual:
            raise SerializationError(f"malformed stored class name {name!r}")
        dotted = f"{module}.{qual}"
        if not self._allowed(module):
            raise SerializationError(
                f"refusing to load class {dotted}: module {module!r} is not one of the project's modules")
        try:
            found: Any = importlib.import_module(module)
        except Exception as exc:
            raise SerializationError(f"cannot load class {dotted}: {exc}") from exc
        for part in qual.split("."):
            found = None if part.startswith("__") else getattr(found, part, None)
            if not isinstance(found, type):
                raise SerializationError(f"cannot load class {dotted}: no such class")
        if found.__module__ != module or found.__qualname__ != qual:
            raise SerializationError(f"refusing to load class {dotted}: it is defined "
                                     f"elsewhere, as {found.__module__}.{found.__qualname__}")
        return found


def _guarded(read: Callable[[], Any]) -> Any:
    """Runs a read of stored text, turning any failure into a SerializationError."""
    try:
        return read()
    except SerializationError:
        raise
    except RecursionError:
        raise SerializationError("cannot read a stored value: it is nested too deeply") from None
    except Exception as exc:
        raise SerializationError(f"cannot read a stored value: {type(exc).__name__}: {exc}") from exc


def display(text: str) -> Any:
    """Plain JSON-compatible data for an encoded value, for people and scripts; imports nothing."""
    return _guarded(lambda: _Display().show(json.loads(text)))


class _Display:
    """Walks an encoded tree; a reference back into what is being shown becomes "<cycle>"."""

    def __init__(self) -> None:
        self.table: dict[Any, dict[str, Any]] = {}
        self.active: set[Any] = set()

    def show(self, node: Any) -> Any:
        t = type(node)
        if t is list:
            return [self.show(x) for x in node]
        if t is not dict:
            return node
        tag = node.get("$")
        if tag is None:
            return {k: self.show(x) for k, x in node.items()}
        if tag == "ref":
            return "<cycle>" if node["id"] in self.active else self.show(self.table[node["id"]])
        n = node.get("id")
        if n is not None:
            self.table[n] = node
            self.active.add(n)
        try:
            return self.tagged(tag, node)
        finally:
            self.active.discard(n)

    def tagged(self, tag: str, node: dict[str, Any]) -> Any:
        if tag in ("list", "tuple", "set", "frozenset"):
            return [self.show(x) for x in node["v"]]
        if tag == "float":
            return node["v"]
        if tag in _SIMPLE_DECODERS:
            try:
                value = _SIMPLE_DECODERS[tag](node)
            except Exception:  # e.g. a time zone this machine does not know
                return f"{node['v']}[{node['zone']}]" if "zone" in node else str(node["v"])
            if isinstance(value, (dt.date, dt.time)):
                return value.isoformat()
            return repr(value) if isinstance(value, bytes) else str(value)
        if tag == "enum":
            return f"{node['cls'].partition(':')[2]}.{node['v']}"
        out: dict[str, Any] = {} if tag == "dict" else {"__class__": node["cls"].replace(":", ".", 1)}
        if tag not in ("dict", "map", "obj"):
            raise SerializationError(f"cannot read a stored value tagged {tag!r}")
        out.update({"args": [self.show(x) for x in node["args"]]} if "args" in node else {})
        if tag == "obj":
            out.update({k: self.show(x) for k, x in node["v"].items()})
        elif "v" in node:
            out.update({k: self.show(x) for k, x in node["v"].items()})
        else:
            for k, x in node["items"]:
                key = self.show(k)  # also registers the definitions the key holds
                if type(k) is dict and k.get("$") == "tuple":
                    key = repr(tuple(key))
                out[key if isinstance(key, str) else repr(key)] = self.show(x)
        if "state" in node:
            out["__state__"] = {k: self.show(x) for k, x in node["state"].items()}
        return out

"""zenaton_runtime.project.serializer: tagged JSON round trips, sharing, cycles, refusals and display."""
from __future__ import annotations

import datetime as dt
import decimal
import fractions
import json
import math
import socket
import sys
import threading
import uuid
import zoneinfo
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zenaton_runtime.errors import SerializationError
from zenaton_runtime.project import serializer
from zenaton_runtime.project.serializer import Codec, display, properties_of
from tests import serializer_fixtures as fx
from zenaton._record import Record
from zenaton.contexts.task_context import TaskContext
from zenaton.tasks.wait import Wait

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
codec = Codec(lambda module: module == "tests" or module.startswith("tests."))


class NotInFixtures:
    """Module level in this test module, which the narrow codec below does not allow."""


def roundtrip(value: Any) -> Any:
    return codec.decode(codec.encode(value))


def same(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (1, 1.0 and True are not the same)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        pairs = zip(a.items(), b.items())
        return len(a) == len(b) and all(same(k, l) and same(x, y) for (k, x), (l, y) in pairs)
    if isinstance(a, (set, frozenset)):
        return len(a) == len(b) and all(any(same(x, y) for y in b) for x in a)
    if isinstance(a, decimal.Decimal):
        return str(a) == str(b)
    if isinstance(a, (dt.datetime, dt.time)):
        return a.isoformat() == b.isoformat() and a.fold == b.fold and repr(a.tzinfo) == repr(b.tzinfo)
    if isinstance(a, (fx.Point, fx.Holder)):
        return same(vars(a), vars(b))
    return bool(a == b)


# -- plain values stay plain ----------------------------------------------------------------

def test_plain_values_encode_as_plain_json() -> None:
    assert codec.encode(5) == "5"
    assert codec.encode([1, 2, 3]) == "[1,2,3]"
    assert codec.encode(None) == "null"
    value = {"name": "Ada", "tags": ["a", "b"], "score": 1.5, "ok": True, "n": None}
    assert json.loads(codec.encode(value)) == value


@pytest.mark.parametrize("value", [
    None, True, False, 0, -7, 2**100, 1.5, -0.0, 1e300, float("inf"), float("-inf"),
    "", "héllo ☃", [], (), (1,), (1, "a", None), {}, {"a": 1}, {1: "a", 2.5: "b", None: "c", False: "d"},
    {"$": "looks like a tag"}, {"$": "ref", "id": 0}, [{"$": "tuple", "v": []}],
    {(1, "x"): [1], frozenset({1, 2}): "f", fx.Color.RED: 1, dt.date(2020, 1, 2): 2},
    set(), {1, "a", (2, 3)}, frozenset(), frozenset({"x", 1}), b"", b"\x00\xffbytes",
    decimal.Decimal("1.10"), decimal.Decimal("-0"), decimal.Decimal("NaN"), decimal.Decimal("1E+300"),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    dt.date(1999, 12, 31), dt.timedelta(days=-3, seconds=5, microseconds=7), dt.timedelta(0),
    dt.datetime(2024, 3, 31, 2, 30, 0, 123456), dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
    dt.datetime(2024, 1, 1, 8, tzinfo=dt.timezone(dt.timedelta(hours=-5, microseconds=3))),
    dt.datetime(2024, 1, 1, 8, tzinfo=dt.timezone(dt.timedelta(hours=9), "JST")),
    dt.datetime(2024, 10, 27, 2, 30, tzinfo=PARIS, fold=1), dt.datetime(2024, 10, 27, 2, 30, fold=1),
    dt.time(23, 59, 59, 999999), dt.time(7, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    dt.time(7, 0, tzinfo=PARIS), [[1, [2, [3, (4, {5: {6}})]]]],
])
def test_supported_values_round_trip_with_their_types(value: Any) -> None:
    assert same(roundtrip(value), value)


def test_special_floats_round_trip() -> None:
    assert math.isnan(roundtrip(float("nan")))
    assert roundtrip([float("inf"), float("-inf")]) == [math.inf, -math.inf]
    assert math.copysign(1, roundtrip(-0.0)) == -1


def test_aware_datetimes_keep_their_zone() -> None:
    paris = roundtrip(dt.datetime(2024, 7, 1, 12, tzinfo=PARIS))
    assert paris.tzinfo is PARIS and paris.utcoffset() == dt.timedelta(hours=2)
    jst = roundtrip(dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=9), "JST")))
    assert jst.tzname() == "JST"
    assert roundtrip(dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)).tzinfo is dt.timezone.utc


# -- objects ---------------------------------------------------------------------------------

def test_project_objects_round_trip_by_module_and_qualified_name() -> None:
    value = [fx.Point(1, "a"), fx.Outer.Inner(fx.Point(2, 3)), fx.Frozen(1, (2, 3))]
    point, inner, frozen = roundtrip(value)
    assert type(point) is fx.Point and (point.x, point.y) == (1, "a")
    assert type(inner) is fx.Outer.Inner and inner.v.y == 3
    assert frozen == fx.Frozen(1, (2, 3))
    assert json.loads(codec.encode(value[1]))["cls"] == "tests.serializer_fixtures:Outer.Inner"


def test_decoding_does_not_call_init() -> None:
    obj = fx.NeedsArgs(5)
    before = fx.NeedsArgs.init_calls
    decoded = roundtrip(obj)
    assert fx.NeedsArgs.init_calls == before and decoded.a == 5


def test_workflows_tasks_and_events_round_trip() -> None:
    flow = fx.WelcomeFlow(Record(email="ada@example.com"))
    flow.sent.append(fx.SendWelcome("ada@example.com"))
    flow.last_event = fx.UserSignedUp("ada@example.com")
    decoded = roundtrip(flow)
    assert type(decoded) is fx.WelcomeFlow and decoded.user.email == "ada@example.com"
    assert type(decoded.sent[0]) is fx.SendWelcome and decoded.sent[0].to == "ada@example.com"
    assert type(decoded.last_event) is fx.UserSignedUp


def test_enum_members_decode_to_the_members_themselves() -> None:
    assert roundtrip([fx.Color.RED, fx.Color.GREEN, fx.Level.HIGH]) == [fx.Color.RED, fx.Color.GREEN, fx.Level.HIGH]
    assert roundtrip(fx.Level.LOW) is fx.Level.LOW


def test_exceptions_keep_args_and_attributes() -> None:
    error = roundtrip(fx.AppError("boom", 42))
    assert type(error) is fx.AppError and error.args == ("boom", 42) and error.code == 42


def test_dict_subclass_keeps_class_items_and_attributes() -> None:
    bag = fx.Bag({1: "one", "k": [1]})
    bag.note = "n"
    decoded = roundtrip(bag)
    assert type(decoded) is fx.Bag and dict(decoded) == {1: "one", "k": [1]} and decoded.note == "n"


def test_engine_private_attributes_are_not_stored() -> None:
    task = fx.SendWelcome("x")
    task.set_context(TaskContext(id="t1", retry_index=0))
    task._zenaton_runtime = threading.Lock()  # would be refused if it were stored
    assert properties_of(task) == {"to": "x"}
    decoded = roundtrip(task)
    assert vars(decoded) == {"to": "x"}
    decoded.set_context(TaskContext(id="t2", retry_index=1))  # not already set


def test_zenaton_classes_are_allowed_by_every_codec() -> None:
    strict = Codec(lambda module: False)
    wait = strict.decode(strict.encode(Wait(fx.UserSignedUp)))
    assert type(wait) is Wait and wait.event == "UserSignedUp"
    assert type(strict.decode(strict.encode(Record(a=1)))) is Record


# -- Record --------------------------------------------------------------------------------

def test_record_reads_and_writes_keys_as_attributes() -> None:
    user = Record({"email": "ada@example.com"})
    assert user.email == user["email"] == "ada@example.com"
    user.name = "Ada"
    assert user["name"] == "Ada"
    with pytest.raises(AttributeError):
        user.missing
    del user.name
    assert "name" not in user


def test_record_round_trips_as_a_record() -> None:
    user = roundtrip(Record(email="ada@example.com", address=Record(city="Paris")))
    assert type(user) is Record and type(user.address) is Record
    assert user.email == "ada@example.com" and user.address.city == "Paris"


# -- sharing and cycles -----------------------------------------------------------------------

def test_shared_references_decode_to_one_object() -> None:
    shared_list, shared_dict, point = [1], {"a": 1}, fx.Point(0, 0)
    d = roundtrip([shared_list, shared_list, shared_dict, {"x": shared_dict}, point, fx.Holder(p=point)])
    assert d[0] is d[1] and d[2] is d[3]["x"] and d[4] is d[5].p
    d[0].append(2)
    assert d[1] == [1, 2]


def test_list_and_dict_containing_themselves() -> None:
    items: list[Any] = [1]
    items.append(items)
    decoded = roundtrip(items)
    assert decoded[1] is decoded and decoded[0] == 1
    mapping: dict[str, Any] = {}
    mapping["me"] = mapping
    decoded_mapping = roundtrip(mapping)
    assert decoded_mapping["me"] is decoded_mapping


def test_objects_pointing_at_each_other() -> None:
    a, b = fx.Holder(name="a"), fx.Holder(name="b")
    a.other, b.other = b, a
    decoded = roundtrip(a)
    assert decoded.other.other is decoded and decoded.other.name == "b"


def test_set_holding_an_object_that_points_back_at_it() -> None:
    owner = fx.Holder()
    owner.members = {owner}
    decoded = roundtrip(owner)
    assert next(iter(decoded.members)) is decoded


def test_shared_values_carry_an_id_where_first_written() -> None:
    shared: list[Any] = [1]
    assert json.loads(codec.encode([shared, {"k": shared}])) == [
        {"$": "list", "id": 1, "v": [1]}, {"k": {"$": "ref", "id": 1}},
    ]
    assert codec.encode([(), ()]) == '[{"$":"tuple","v":[]},{"$":"tuple","v":[]}]'


def test_reference_before_its_definition_is_refused() -> None:
    payload = [{"$": "ref", "id": 1}, {"$": "list", "id": 1, "v": []}]
    with pytest.raises(SerializationError, match="before defining it"):
        codec.decode(json.dumps(payload))


def test_tuple_reached_from_inside_itself_through_a_list() -> None:
    inner: list[Any] = []
    outer = (inner, "x")
    inner.append(outer)
    decoded = roundtrip(outer)
    assert decoded[1] == "x" and decoded[0][0][0] is decoded[0]
    shared = roundtrip([outer, outer])
    assert shared[0] is shared[1]
    loop: list[Any] = []
    tail: list[Any] = []
    pair = (loop, tail)
    loop.append(pair)
    decoded = roundtrip([pair, tail])
    assert decoded[0][0][0][1] is decoded[0][1] is decoded[1]


# -- refusals ----------------------------------------------------------------------------------

def refusal(value: Any, root: str = "value", with_codec: Codec = codec) -> str:
    with pytest.raises(SerializationError) as info:
        with_codec.encode(value, root)
    return str(info.value)


def test_refusal_names_the_attribute_path() -> None:
    with socket.socket() as conn:
        message = refusal(fx.Holder(user=fx.Holder(conn=conn)))
    assert message == "cannot store a value of type 'socket' at value.user.conn"
    message = refusal(fx.Holder(items=[1, 2, {"k": lambda: 0}]))
    assert message == "cannot store a value of type 'function' at value.items[2]['k']"
    assert refusal({"a": [threading.Lock()]}, root="WelcomeFlow") == (
        "cannot store a value of type 'lock' at WelcomeFlow['a'][0]")


@pytest.mark.parametrize("value, type_name", [
    ((x for x in []), "generator"), (json, "module"), (fx.Point, "type"), (print, "builtin_function_or_method"),
    (fractions.Fraction(1, 3), "Fraction"), (1j, "complex"), (bytearray(b"x"), "bytearray"),
])
def test_unsupported_values_are_refused(value: Any, type_name: str) -> None:
    assert refusal([value]) == f"cannot store a value of type '{type_name}' at value[0]"


def test_refusals_inside_sets_keys_and_exception_args() -> None:
    assert refusal({1: {Record}}).endswith("at value[1][<item>]")
    assert refusal({(1, json): 1}) == "cannot store a value of type 'module' at value[<key>][1]"
    assert refusal(fx.AppError("x", json)).endswith("at value.args[1]")


def test_refusal_explains_classes_that_cannot_be_found_again() -> None:
    class Local:
        pass

    message = refusal(fx.Holder(thing=Local()))
    assert message.startswith("cannot store a value of type 'Local' at value.thing: class ")
    assert "<locals>" in message and "module level" in message
    narrow = Codec(lambda module: module == "tests.serializer_fixtures")
    assert refusal(NotInFixtures(), with_codec=narrow) == (
        "cannot store a value of type 'NotInFixtures' at value: class "
        "tests.test_serializer.NotInFixtures is not in one of the project's modules")
    assert "__slots__" in refusal(fx.Slotted())
    assert "built-in type 'str'" in refusal(fx.StrSub("s"))
    assert "time zone" in refusal({"when": dt.datetime(2024, 1, 1, tzinfo=fx.OddZone())})


# -- decoding refuses foreign classes ----------------------------------------------------------

@pytest.mark.parametrize("tag", ["obj", "enum", "map"])
@pytest.mark.parametrize("name", [
    "evil_never_imported:Thing", "os:system", "subprocess:Popen", "builtins:eval", "posix:system",
])
def test_decode_refuses_classes_outside_allowed_modules(tag: str, name: str) -> None:
    payload = json.dumps({"$": tag, "cls": name, "v": {}, "items": []})
    with pytest.raises(SerializationError, match="not one of the project's modules"):
        codec.decode(payload)
    assert "evil_never_imported" not in sys.modules


@pytest.mark.parametrize("payload", [
    {"$": "obj", "cls": "tests.serializer_fixtures:OrderedDict", "v": {}},  # imported there, defined elsewhere
    {"$": "obj", "cls": "tests.serializer_fixtures:Point.__init__", "v": {}},
    {"$": "obj", "cls": "tests.serializer_fixtures:Nope", "v": {}},
    {"$": "enum", "cls": "tests.serializer_fixtures:Point", "v": "RED"},
    {"$": "enum", "cls": "tests.serializer_fixtures:Color", "v": "BLUE"},
    {"$": "map", "cls": "tests.serializer_fixtures:Point", "v": {}},
    {"$": "no-such-tag", "v": 1},
    {"$": "ref", "id": 7},
    {"$": "decimal", "v": "not a number"},
    {"$": "float", "v": "1.5"},
])
def test_decode_refuses_bad_payloads(payload: Any) -> None:
    with pytest.raises(SerializationError):
        codec.decode(json.dumps(payload))


def test_decode_refuses_text_that_is_not_json() -> None:
    with pytest.raises(SerializationError):
        codec.decode("{not json")


# -- display ------------------------------------------------------------------------------------

def test_display_shows_plain_data() -> None:
    value = {
        "point": fx.Point(1, (2, 3)),
        "when": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
        "day": dt.date(2024, 1, 2),
        "price": decimal.Decimal("9.90"),
        "tags": {"a"},
        "keys": {1: "one", (1, 2): "pair"},
        "color": fx.Color.RED,
        "nan": float("nan"),
        "user": Record(email="e"),
    }
    shown = display(codec.encode(value))
    assert shown == {
        "point": {"__class__": "tests.serializer_fixtures.Point", "x": 1, "y": [2, 3]},
        "when": "2024-01-02T03:04:05+00:00",
        "day": "2024-01-02",
        "price": "9.90",
        "tags": ["a"],
        "keys": {"1": "one", "(1, 2)": "pair"},
        "color": "Color.RED",
        "nan": "nan",
        "user": {"__class__": "zenaton._record.Record", "email": "e"},
    }
    json.dumps(shown, allow_nan=False)


def test_display_marks_cycles_and_repeats_shared_values() -> None:
    a = fx.Holder(name="a")
    a.me = a
    shared = [1]
    assert display(codec.encode([a, shared, shared])) == [
        {"__class__": "tests.serializer_fixtures.Holder", "name": "a", "me": "<cycle>"}, [1], [1],
    ]


def test_display_imports_nothing() -> None:
    payload = json.dumps({"$": "obj", "cls": "evil_never_imported:Thing", "v": {"x": 1}})
    assert display(payload) == {"__class__": "evil_never_imported.Thing", "x": 1}
    assert "evil_never_imported" not in sys.modules


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4).filter(lambda k: k != "$"), inner, max_size=4),
    max_leaves=12,
)


@settings(deadline=None, max_examples=300)
@given(json_values)
def test_display_of_untagged_json_is_what_the_decoder_shows(value: Any) -> None:
    """Untagged JSON is shown as read (a quick path): the same as decoding it for display, floats
    JSON cannot hold (NaN, Infinity, as a hand-edited store may have them) included."""
    text = json.dumps(value)
    slow = serializer._plain(serializer._Viewer(type).value(json.loads(text)), set())
    assert display(text) == slow
    assert serializer.display_parsed(json.loads(text)) == slow
    json.dumps(display(text), allow_nan=False)  # NaN and Infinity are shown as words


def test_display_shows_floats_json_cannot_hold_as_words() -> None:
    assert display('{"big": 1e400, "small": -1e400, "nan": NaN, "x": [0.5]}') == {
        "big": "inf", "small": "-inf", "nan": "nan", "x": [0.5]}
    assert display('{"\\u0024": "obj", "cls": "m:C", "v": {"a": 1}}') == {"__class__": "m.C", "a": 1}


# -- property test --------------------------------------------------------------------------

fixed_offsets = st.builds(lambda m: dt.timezone(dt.timedelta(minutes=m)), st.integers(-23 * 60, 23 * 60))
zones = st.none() | fixed_offsets | st.timezones()
scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
    | st.binary(max_size=8) | st.decimals(allow_nan=False) | st.uuids() | st.dates()
    | st.datetimes(timezones=zones) | st.times(timezones=st.none() | fixed_offsets)
    | st.timedeltas() | st.sampled_from(list(fx.Color)) | st.sampled_from(list(fx.Level))
)
hashables = st.recursive(scalars, lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3),
                         max_leaves=6)
values = st.recursive(
    hashables,
    lambda inner: (
        st.lists(inner, max_size=4) | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=4), inner, max_size=4)
        | st.dictionaries(hashables, inner, max_size=4) | st.sets(hashables, max_size=4)
        | st.builds(fx.Point, inner, inner)
        | st.builds(Record, st.dictionaries(st.text(max_size=4), inner, max_size=3))
    ),
    max_leaves=20,
)


@settings(deadline=None, max_examples=300)
@given(values)
def test_any_supported_value_round_trips(value: Any) -> None:
    text = codec.encode(value)
    assert same(codec.decode(text), value)
    json.dumps(display(text))


@settings(deadline=None, max_examples=150)
@given(st.lists(values, min_size=1, max_size=4), st.lists(st.integers(0, 3), max_size=8))
def test_sharing_between_values_survives(pool: list[Any], picks: list[int]) -> None:
    value = [pool[i % len(pool)] for i in picks]
    decoded = roundtrip(value)
    assert same(decoded, value)
    for i, a in enumerate(value):
        for j, b in enumerate(value):
            if isinstance(a, (list, dict, set, fx.Point)):
                assert (decoded[i] is decoded[j]) == (a is b)


unsupported = st.sampled_from([
    (lambda: threading.Lock(), "lock"),
    (lambda: (lambda: None), "function"),
    (lambda: (i for i in ()), "generator"),
    (lambda: socket.socket(), "socket"),
])
steps = st.lists(
    st.one_of(
        st.tuples(st.just("list"), st.integers(0, 3)),
        st.tuples(st.just("dict"), st.text(max_size=5)),
        st.tuples(st.just("attr"), st.sampled_from(["x", "y"])),
    ),
    max_size=5,
)


@settings(deadline=None, max_examples=200)
@given(unsupported, steps, values)
def test_any_unsupported_value_is_refused_with_its_path(bad: Any, path: list[Any], filler: Any) -> None:
    make, type_name = bad
    leaf = make()
    try:
        value, where = leaf, ""
        for kind, key in reversed(path):  # build from the leaf outwards; the path reads root first
            if kind == "list":
                value, where = [filler] * key + [value], f"[{key}]{where}"
            elif kind == "dict":
                value, where = {key: value}, f"[{key!r}]{where}"
            else:
                other = "y" if key == "x" else "x"
                value, where = fx.Point(**{key: value, other: filler}), f".{key}{where}"
        with pytest.raises(SerializationError) as refused:
            codec.encode(value, "root")
        assert f"cannot store a value of type '{type_name}' at root{where}" in str(refused.value)
    finally:
        if isinstance(leaf, socket.socket):
            leaf.close()

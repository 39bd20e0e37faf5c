"""The speed-ups in shared/ accept exactly what the plain code accepts, with the same messages."""

from collections import OrderedDict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError, fields

from shared.hlc import HLC, HLCError, _parse_ms_strptime, parse_ms
from shared.records import KINDS, Text, WriteField, Writes

H = "2026-11-27T19:48:00.123Z-0000-9f86d081884c7d65"


def outcome(call, *args):
    try:
        return "ok", call(*args)
    except (ValueError, ValidationError) as exc:
        return type(exc).__name__, getattr(exc, "messages", str(exc))


digits = st.sampled_from(["0", "1", "2", "3", "5", "6", "9", "２"])


@given(st.tuples(*[st.text(digits, min_size=n, max_size=n) for n in (4, 2, 2, 2, 2, 2, 3)]))
def test_parse_ms_fast_path_agrees_with_strptime(parts):
    text = "{}-{}-{}T{}:{}:{}.{}Z".format(*parts)
    assert outcome(parse_ms, text) == outcome(_parse_ms_strptime, text)


@pytest.mark.parametrize("text", [
    "2026-02-29T00:00:00.000Z", "2024-02-29T00:00:00.000Z", "0000-01-01T00:00:00.000Z",
    "0001-01-01T00:00:00.000Z", "2026-11-27T23:59:60.000Z", "2026-11-27T23:60:00.000Z",
    "2026-1-1T1:1:1.1Z", "2026-11-27T19:48:00.123456Z", "2026-11-27T19:48:00.123Z\n", " 2026-11-27T19:48:00.123Z",
])
def test_parse_ms_edge_cases_agree_with_strptime(text):
    assert outcome(parse_ms, text) == outcome(_parse_ms_strptime, text)


def test_hlc_parse_cache_still_refuses_every_time():
    bad = H.replace("11-27", "02-30")
    for _ in range(2):
        with pytest.raises(HLCError, match="no valid date"):
            HLC.parse(bad)
    assert HLC.parse(H) is HLC.parse(H) and str(HLC.parse(H)) == H
    with pytest.raises(HLCError, match="must be a string, not list"):
        HLC.parse([H])  # unhashable: refused before the cache is asked


class Key(str):
    pass


PLAIN = fields.Dict(keys=Text(), values=WriteField())


@pytest.mark.parametrize("value", [
    {}, {"a": ["x", H]}, {"a": ("x", H), "b": [None, H]}, {"a": [{"lat": 1}, H]},
    {b"a": ["x", H]}, {Key("a"): ["x", H]}, {"a\x00": ["x", H]}, {1: ["x", H]}, {None: ["x", H]},
    {"a": None}, {"a": ["x"]}, {"a": ["x", H, H]}, {"a": "xy"}, {"a": ["x", H + " "]}, {"a": ["x", 5]},
    {"a": ["x", H], "b": ["x", "nope"], "c\x00": 1}, OrderedDict(a=["x", H]), [["a", ["x", H]]], "a", None,
])
def test_writes_accepts_what_a_dict_of_write_fields_accepts(value):
    assert outcome(Writes().deserialize, value) == outcome(PLAIN.deserialize, value)


def test_top_level_partial_still_refuses_nested_fields_left_out():
    kind = KINDS["event"]
    kind.validator.load({"description": "x"}, partial=kind.top_level)
    with pytest.raises(ValidationError) as caught:
        kind.validator.load({"location": {"source": "gps"}}, partial=kind.top_level)
    assert set(caught.value.messages["location"]) == {"lat", "lon"}


numbers = st.one_of(st.integers(-200, 200), st.floats(allow_nan=True, allow_infinity=True),
                    st.just(10**400), st.booleans(), st.none(), st.just("1"))
locations = st.dictionaries(
    st.sampled_from(["lat", "lon", "accuracy_m", "source", "alt", b"lat", 1]),
    st.one_of(numbers, st.sampled_from(["gps", "manual", "last_known", "GPS", "gps\x00"])),
)


@settings(max_examples=500)
@given(st.one_of(locations, st.none(), st.lists(st.integers(), max_size=2), st.text(max_size=3)))
def test_location_shortcut_agrees_with_the_schema(value):
    from shared.records import EventFields, Location, LocationSchema

    field = EventFields().fields["location"]
    assert isinstance(field, Location)
    for partial in (None, []):
        plain_field = fields.Nested(LocationSchema, allow_none=True)
        fast = outcome(lambda v: field.deserialize(v, "location", {}, partial=partial), value)
        plain = outcome(lambda v: plain_field.deserialize(v, "location", {}, partial=partial), value)
        assert fast == plain


@pytest.mark.parametrize("value", [
    {"lat": 30, "lon": 120, "source": "gps"}, {"lat": 30.5, "lon": -120.25, "accuracy_m": 5, "source": "manual"},
    {"lat": 90, "lon": 180, "accuracy_m": None, "source": "last_known"}, {"lat": 30.0, "lon": 120.0, "source": "gps"},
    {"lat": 90.1, "lon": 0, "source": "gps"}, {"lat": 0, "lon": 0, "accuracy_m": -1, "source": "gps"},
    {"lat": 0, "lon": 0, "accuracy_m": 1e300, "source": "gps"}, {"lat": 0, "lon": 0, "accuracy_m": float("inf"), "source": "gps"},
    {"lat": True, "lon": 0, "source": "gps"}, {"lon": 0, "source": "gps"}, {"lat": 0, "lon": 0, "source": "gps", "x": 1},
])
def test_location_shortcut_examples(value):
    from shared.records import EventFields, LocationSchema

    field = EventFields().fields["location"]
    assert outcome(field.deserialize, value) == outcome(fields.Nested(LocationSchema).deserialize, value)


# --- format_ms without strftime ------------------------------------------------------------------

from shared.hlc import _MAX_MS, _format_ms_datetime, format_ms  # noqa: E402


@settings(max_examples=1000)
@given(st.one_of(st.integers(0, _MAX_MS), st.integers(0, _MAX_MS // 1000).map(lambda s: s * 1000 + 999),
                 st.integers(0, _MAX_MS // 1000).map(lambda s: s * 1000)))
def test_format_ms_agrees_with_datetime(ms):
    assert format_ms(ms) == _format_ms_datetime(ms)


@pytest.mark.parametrize("ms", [0, 1, 999, 1000, 86_399_999, 86_400_000, 951_782_400_000, 1_764_272_880_123,
                                _MAX_MS, _MAX_MS - 1, -1, -86_400_001, _MAX_MS + 1, 10**15, True])
def test_format_ms_edges_agree_with_datetime(ms):
    assert outcome(format_ms, ms) == outcome(_format_ms_datetime, ms)


# --- merge of a new record ----------------------------------------------------------------------

from shared.merge import Merged, merge_record  # noqa: E402

writes = st.tuples(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=3)),
                   st.sampled_from([H, "2026-11-27T19:48:00.124Z-0000-9f86d081884c7d65"]))


@given(st.dictionaries(st.text(max_size=3), st.one_of(writes, writes.map(list))), st.booleans())
def test_merge_into_nothing_takes_every_remote_write(remote, append_only):
    # What the general loop gives with no local state: every write, as a tuple, all changed.
    expected = Merged({f: tuple(w) for f, w in remote.items()}, frozenset(remote), frozenset())
    for local in (None, {}):
        merged = merge_record(local, remote, append_only=append_only)
        assert merged == expected and list(merged.state) == list(remote)


# --- load_change: the fast path against ChangeSchema alone ----------------------------------------

import copy  # noqa: E402
import math  # noqa: E402

from shared.records import _load_change_fast, _load_change_plain, load_change  # noqa: E402
from tests.shared.test_records import VALID, new_id  # noqa: E402

LATER = "2026-11-27T19:48:05.000Z-0003-000000000000000b"
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


class Str(str):
    pass


# Every valid value of every kind's fields (so each field also meets the values of the others),
# and values that break one rule or another.
POOL = [value for _, values in VALID.values() for value in values.values()] + [
    None, True, False, 0, 1, -1, 2, 24 * 365 + 1, 10_001, 1.5, -0.5, 1e15, 1e300, math.nan, math.inf, -math.inf,
    10**400, "", " ", "x" * 41, "x" * 201, "x" * 501, "x" * 4001, "a\x00", "G-0101\n", "g", "G 0101", "-G", "é",
    "fire_hazard", "dispatch", "close", "nope", "low", "gps", Str("G-0101"), b"G-0101", [], (), [SHA] * 51,
    [SHA.upper()], [None], (SHA,), [SHA, 1], {}, {"lat": 30, "lon": 120, "source": "gps"},
    {"lat": 91, "lon": 0, "source": "gps"}, {"lat": 0, "lon": 0, "source": "gps", "x": 1}, {"lat": 0, "lon": 0},
    "2026-11-27T19:48:00.123Z", "2026-02-30T19:48:00.123Z", "2026-11-27T24:00:00.000Z", "0999-11-27T19:48:00.123Z",
    "2026-11-27T19:48:00.123", "2026-11-27T19:48:00Z", "２026-11-27T19:48:00.123Z", "2026-11-27", "2026-13-01",
    new_id(1), new_id(1).upper(), "{" + new_id(1) + "}", "urn:uuid:" + new_id(1), new_id(1).replace("-", ""),
    "110101199003074514", "11010119900307451X", "1101**********4514",
]
HLCS = [H, H, H, LATER, H + " ", "2026-02-30T19:48:00.123Z-0000-9f86d081884c7d65", 5, None, Str(H), H.upper()]
NAMES = sorted({name for kind in VALID for name in VALID[kind][1]} | {"colour", "", "grid\x00", "_deleted"})


@st.composite
def wire_changes(draw):
    """Mostly valid changes of every kind, with some values, writes, keys or top-level parts broken."""
    kind = draw(st.sampled_from(sorted(VALID)))
    bucket, values = VALID[kind]
    values = dict(values)
    for name in draw(st.lists(st.sampled_from(sorted(values)), max_size=len(values), unique=True)):
        del values[name]  # a push carries the fields it changed
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 1, 2, 3]))):
        name = draw(st.sampled_from(NAMES if draw(st.booleans()) else sorted(VALID[kind][1])))
        values[name] = draw(st.sampled_from(POOL))
    hlc = draw(st.sampled_from([H, LATER]))
    writes = {name: [value, hlc] for name, value in values.items()}
    if writes and draw(st.integers(0, 3)) == 0:  # one write broken: its timestamp or its shape
        name = draw(st.sampled_from(sorted(writes)))
        value, _ = writes[name]
        writes[name] = draw(st.sampled_from([
            (value, hlc), [value, hlc, 1], [value], value, [value, "nope"], [value, 5], [value, None],
            [value, Str(hlc)], [value, hlc + " "], [value, "2026-02-30T19:48:00.123Z-0000-9f86d081884c7d65"]]))
    if draw(st.integers(0, 9)) == 0:
        writes = {Str("grid") if draw(st.booleans()) else b"grid": [values.get("grid", "G-0101"), H], **writes}
    change = {"kind": kind, "id": new_id(draw(st.integers(0, 3))), "bucket": bucket, "fields": writes}
    if draw(st.integers(0, 4)) == 0:
        change[draw(st.sampled_from(["kind", "id", "bucket", "fields", "extra"]))] = draw(st.sampled_from(
            [None, 1, "", "event", "tenant", "nope", "ref", "grid:G-0101", "grid:G-0202", "grid:G 0101", "grid:",
             new_id(5), new_id(5).upper(), Str("event"), {}, {"grid": ["G-0101", H]}, []]))
    if draw(st.integers(0, 19)) == 0:
        del change[draw(st.sampled_from(["kind", "id", "bucket", "fields"]))]
    return change


def same_change(a, b):
    # Values compared by repr as well as ==, so 1 and 1.0 or NaN never pass for one another.
    return a == b and repr(a) == repr(b)


@settings(max_examples=3000, deadline=None)
@given(wire_changes())
def test_load_change_agrees_with_the_schema_alone(data):
    before = copy.deepcopy(data)
    fast, plain = outcome(load_change, data), outcome(_load_change_plain, copy.deepcopy(before))
    assert fast[0] == plain[0] and (same_change(fast[1], plain[1]) if fast[0] == "ok" else fast[1] == plain[1])
    assert data == before  # nothing mutated the input


@pytest.mark.parametrize("kind", sorted(VALID))
def test_the_fast_path_takes_the_plain_valid_changes(kind):
    bucket, values = VALID[kind]
    data = {"kind": kind, "id": new_id(7), "bucket": bucket, "fields": {n: [v, H] for n, v in values.items()}}
    fast = _load_change_fast(data)
    # Nested lists (checklist items, check answers, track) and ID numbers and days (tenant) go to the schema.
    if kind in ("checklist", "house_check", "patrol", "tenant"):
        assert fast is None
        slim = {n: w for n, w in data["fields"].items()
                if n not in ("items", "answers", "track", "id_number", "moved_in", "moved_out")}
        data = {**data, "fields": slim}
        fast = _load_change_fast(data)
    assert fast is not None and same_change(fast, _load_change_plain(data))


def test_the_fast_path_never_words_a_refusal():
    data = {"kind": "event", "id": new_id(7), "bucket": "grid:G-0101",
            "fields": {"urgent": ["yes", H], "colour": ["red", H]}}
    assert _load_change_fast(data) is None
    with pytest.raises(ValidationError) as caught:
        load_change(data)
    assert caught.value.messages == {"fields": {"colour": ["unknown field"], "urgent": ["must be true or false"]}}


def test_the_fast_path_knows_the_change_schema_it_stands_in_for():
    # _load_change_fast repeats ChangeSchema's four fields and check_values; a fifth field or another
    # hook would need it changed too.
    from shared.records import _CHANGE_KEYS, ChangeSchema

    assert set(ChangeSchema().load_fields) == _CHANGE_KEYS
    assert {name for hooks in ChangeSchema._hooks.values() for name, *_ in hooks} == {"check_values"}

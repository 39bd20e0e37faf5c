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

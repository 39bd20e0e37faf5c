"""The wire contract: load_change accepts every well-formed change, refuses the rest naming the field, and dump_change inverts it."""

import copy
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.hlc import HLC
from shared.records import (
    FIELD_KINDS, KINDS, REF_BUCKET, REFERENCE_KINDS, Change, ValidationError, bucket_grid, dump_change,
    grid_bucket, is_instant, load_change, uuid7,
)

H = "2026-11-27T19:48:00.123Z-0000-9f86d081884c7d65"
LATER = "2026-11-27T19:48:05.000Z-0003-000000000000000b"
NOW = "2026-11-27T19:48:00.123Z"
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
LOCATION = {"lat": 30.2741, "lon": 120.1551, "accuracy_m": 8.5, "source": "gps"}


def new_id(n: int) -> str:
    return uuid7(1_764_272_880_000 + n, bytes(range(n, n + 10)))


USER, EVENT, HOUSE = new_id(1), new_id(2), new_id(3)
PATROL, POINT = new_id(4), new_id(5)
DISPUTE = new_id(7)
PLACE = new_id(6)

# One record of every kind, setting every field the kind has.
VALID = {
    "grid": (REF_BUCKET, {
        "code": "G-0101", "name": "西湖网格 0101", "name_en": "West Lake grid 0101", "type": "base",
        "community": "Lingyin", "street": "Beishan", "district": "Xihu", "_deleted": False,
        "boundary": {"type": "Polygon", "coordinates": [[[120.1, 30.2], [120.2, 30.2], [120.2, 30.3], [120.1, 30.2]]]},
    }),
    "category": (REF_BUCKET, {
        "code": "fire_hazard", "name": "消防隐患", "name_en": None, "default_unit": "fire",
        "deadline_hours": 48, "urgent_deadline_hours": 4, "micro": False, "duplicate_radius_m": 50, "_deleted": False,
    }),
    "unit": (REF_BUCKET, {"code": "fire", "name": "消防大队", "name_en": "Fire brigade", "_deleted": False}),
    "checklist": (REF_BUCKET, {
        "code": "house.basic", "name": "出租房检查", "name_en": "Rental house check", "version": 2,
        "items": [{"code": "exits", "text": "通道畅通", "text_en": "Exits clear", "category": "fire_hazard"},
                  {"code": "wiring", "text": "电线规范", "text_en": None, "category": None}],
        "_deleted": False,
    }),
    "event": ("grid:G-0101", {
        "grid": "G-0101", "category": "fire_hazard", "description": "楼道堆放杂物", "location": {**LOCATION, "fix_at": NOW},
        "address": "Beishan Rd 12", "photos": [SHA], "urgent": True, "micro": False, "reporter": USER,
        "reported_at": NOW, "case_number": "20261127-0001", "patrol": PATROL, "no_location_reason": None,
        "_deleted": False,
    }),
    "case_action": ("grid:G-0101", {
        "event": EVENT, "action": "dispatch", "actor": USER, "unit": "fire", "deadline": "2026-11-29T19:48:00.000Z",
        "note": "请两日内清理", "photos": [], "stand_in": False, "duplicate_of": None,
    }),
    "rental_house": ("grid:G-0101", {
        "grid": "G-0101", "address": "Beishan Rd 12", "owner": "王", "owner_phone": "13800000000",
        "building_head": "李", "building_head_phone": "13900000000", "floors": 6, "rooms": 40,
        "location": {"lat": 30.27, "lon": 120.15, "accuracy_m": None, "source": "manual"},
        "risk_grade": "medium", "notes": None, "_deleted": False,
    }),
    "house_check": ("grid:G-0101", {
        "house": HOUSE, "worker": USER, "checked_at": NOW, "checklist": "house.basic", "checklist_version": 2,
        "answers": [{"item": "exits", "result": "fail", "note": "杂物"}, {"item": "wiring", "result": "na", "note": None}],
        "photos": [SHA], "residents_seen": 3, "patrol": PATROL,
    }),
    "tenant": ("grid:G-0101", {
        "house": HOUSE, "name": "张三", "phone": "13700000000", "room": "302", "id_number": "110101199003074514", "id_number_masked": "1101**********4514",
        "moved_in": "2026-01-05", "moved_out": None, "_deleted": False,
    }),
    "place_type": (REF_BUCKET, {
        "code": "small_shop", "name": "小商店", "name_en": "Small shop", "checklist": "place.small_shop",
        "check_every_days": {"A": 30, "B": 90, "C": 180}, "_deleted": False,
    }),
    "place": ("grid:G-0101", {
        "grid": "G-0101", "name": "好又多便利店", "type": "small_shop", "grade": "A", "address": "Beishan Rd 14",
        "location": LOCATION, "person_in_charge": "赵", "phone": "13600000000", "worker": USER, "notes": None,
        "_deleted": False,
    }),
    "place_check": ("grid:G-0101", {
        "place": PLACE, "worker": USER, "checked_at": NOW, "checklist": "place.small_shop", "checklist_version": 1,
        "answers": [{"item": "extinguisher", "result": "fail", "note": "过期"}], "photos": [SHA], "patrol": PATROL,
    }),
    "patrol": ("grid:G-0101", {
        "grid": "G-0101", "worker": USER, "started_at": NOW, "ended_at": "2026-11-27T20:48:00.000Z",
        "distance_m": 1234.5, "closed_by": "worker", "note": None,
    }),
    "track": ("grid:G-0101", {
        "patrol": PATROL, "worker": USER, "seq": 0, "start": NOW,
        "points": {"t": [0, 10012], "lat": [30270000, -41], "lon": [120150000, 35], "acc": [8, None],
                   "speed": [None, 14]},
    }),
    "fixed_point": ("grid:G-0101", {
        "grid": "G-0101", "name": "北山路口", "name_en": "Beishan crossing", "location": LOCATION, "radius_m": 30,
        "every_hours": 24, "_deleted": False,
    }),
    "point_visit": ("grid:G-0101", {
        "point": POINT, "worker": USER, "visited_at": NOW, "method": "check_in", "patrol": PATROL,
        "location": LOCATION, "photos": [SHA], "note": "GPS poor under the bridge",
    }),
    "patrol_plan": ("grid:G-0101", {
        "grid": "G-0101", "computed_at": NOW, "hours": [8, 9, 17], "rounds_per_day": 3, "busy_weekdays": [1, 5],
        "points": [POINT], "basis_events": 412, "summary": "早8-9点、傍晚5点多巡", "summary_en": None,
    }),
    "dispute_kind": (REF_BUCKET, {"code": "neighbours", "name": "邻里纠纷", "name_en": "Neighbours", "take_up_hours": 24,
                                  "_deleted": False}),
    "dispute": ("grid:G-0101", {
        "grid": "G-0101", "dispute_kind": "neighbours",
        "parties": [{"name": "张三", "phone": "13700000000", "role": "申请人"}, {"name": "李四", "phone": None, "role": None}],
        "parties_masked": [{"name": "张*", "phone": "137****0000", "role": "申请人"}],
        "place": "Beishan Rd 12", "location": LOCATION, "description": "楼上漏水", "reporter": USER, "reported_at": NOW,
        "patrol": PATROL, "_deleted": False,
    }),
    "dispute_action": ("grid:G-0101", {
        "dispute": DISPUTE, "action": "outcome", "actor": USER, "at": NOW, "note": "双方达成协议",
        "mediators": ["王调解"], "outcome": "referred", "referred_to": "区人民法院", "photos": [SHA],
    }),
}


def change(kind: str, bucket: str | None = None, **values) -> dict:
    """A wire change of kind with the given values (default: the VALID ones), each stamped H."""
    default_bucket, default_values = VALID[kind]
    return {
        "kind": kind,
        "id": new_id(100),
        "bucket": default_bucket if bucket is None else bucket,
        "fields": {name: [value, H] for name, value in (values or default_values).items()},
    }


def with_fields(kind: str, bucket: str | None = None, **overrides) -> dict:
    """A valid full change of kind, with some values replaced."""
    return change(kind, bucket, **{**VALID[kind][1], **overrides})


def replaced(data: dict, **top) -> dict:
    """A copy of a change with top-level keys replaced."""
    return {**copy.deepcopy(data), **top}


def without(data: dict, key: str) -> dict:
    data = copy.deepcopy(data)
    del data[key]
    return data


# --- valid changes ------------------------------------------------------------------------------

def test_every_kind_has_a_valid_example():
    assert set(VALID) == set(KINDS)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_valid_full_change_is_accepted_for_every_kind(kind):
    data = change(kind)
    assert set(data["fields"]) == KINDS[kind].fields  # the example sets every field
    assert KINDS[kind].required <= KINDS[kind].fields
    loaded = load_change(data)
    assert loaded == Change(kind, data["id"], data["bucket"], {name: (value, H) for name, (value, _) in data["fields"].items()})
    assert loaded.values == VALID[kind][1]
    assert loaded.max_hlc() == H


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_dump_inverts_load(kind):
    data = change(kind)
    before = copy.deepcopy(data)
    assert dump_change(load_change(data)) == before
    assert data == before


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_change_with_only_the_required_fields_is_accepted(kind):
    values = {name: VALID[kind][1][name] for name in KINDS[kind].required}
    assert load_change(change(kind, **values)).values == values


@given(st.data())
def test_any_subset_of_valid_writes_loads_and_dumps_back(data):
    kind = data.draw(st.sampled_from(sorted(KINDS)))
    bucket, all_values = VALID[kind]
    names = data.draw(st.sets(st.sampled_from(sorted(all_values)), min_size=1))
    stamps = st.sampled_from([H, LATER])
    wire = {"kind": kind, "id": new_id(7), "bucket": bucket,
            "fields": {name: [all_values[name], data.draw(stamps)] for name in sorted(names)}}
    loaded = load_change(wire)
    assert dump_change(loaded) == wire
    assert loaded.max_hlc() == max(hlc for _, hlc in wire["fields"].values())


def test_edit_without_grid_is_accepted_in_any_grid_bucket():
    assert load_change(change("event", "grid:G-0202", description="moved")).bucket == "grid:G-0202"


@pytest.mark.parametrize("kind", ["case_action", "house_check", "tenant", "place_check"])
def test_kinds_with_a_parent_are_accepted_in_any_grid_bucket(kind):
    assert load_change(change(kind, "grid:G-9999", **VALID[kind][1])).bucket == "grid:G-9999"


def test_location_accuracy_may_be_left_out():
    location = {"lat": 30, "lon": 120, "source": "last_known"}
    assert load_change(change("event", location=location)).values == {"location": location}


# --- refused changes ----------------------------------------------------------------------------

def messages_at(messages, path):
    """The error messages at path in a marshmallow error dict (fails the test when absent)."""
    node = messages
    for key in path:
        assert isinstance(node, dict) and key in node, f"no error at {path}: {messages}"
        node = node[key]
    return node


REFUSED = {
    # the envelope
    "unknown kind": (replaced(change("event"), kind="incident"), ("kind",), "unknown kind 'incident'"),
    "kind not a string": (replaced(change("event"), kind=7), ("kind",), "Not a valid string"),
    "id not a UUID": (replaced(change("event"), id="event-1"), ("id",), "is not a UUID"),
    "id as a number": (replaced(change("event"), id=12345), ("id",), "Not a valid string"),
    "id in uppercase": (replaced(change("event"), id=new_id(100).upper()), ("id",), "canonical form: " + new_id(100)),
    "id in braces": (replaced(change("event"), id="{" + new_id(100) + "}"), ("id",), "canonical form"),
    "id without hyphens": (replaced(change("event"), id=new_id(100).replace("-", "")), ("id",), "canonical form"),
    "missing id": (without(change("event"), "id"), ("id",), "Missing data"),
    "bucket not a bucket": (replaced(change("event"), bucket="grid G-0101"), ("bucket",), "must be 'ref' or"),
    "bucket with a trailing newline": (with_fields("event", "grid:G-0101\n", grid="G-0101\n"), ("bucket",), "must be 'ref' or"),
    "bucket of no grid": (replaced(change("event"), bucket="grid:"), ("bucket",), "must be 'ref' or"),
    "bucket not the event's grid": (change("event", "grid:G-0202"), ("bucket",), "must be 'grid:G-0101' for grid 'G-0101'"),
    "bucket not the patrol's grid": (change("patrol", "grid:G-0202"), ("bucket",), "must be 'grid:G-0101'"),
    "bucket not the house's grid": (change("rental_house", "grid:G-0202"), ("bucket",), "must be 'grid:G-0101'"),
    "reference kind in a grid bucket": (change("category", "grid:G-0101"), ("bucket",), "category records live in 'ref'"),
    "field kind in ref": (change("event", REF_BUCKET), ("bucket",), "event records live in a grid bucket"),
    "child kind in ref": (change("case_action", REF_BUCKET), ("bucket",), "case_action records live in a grid bucket"),
    "unknown field": (with_fields("event", colour="red"), ("fields", "colour"), "unknown field"),
    "tombstone on an append-only kind": (change("case_action", _deleted=True), ("fields", "_deleted"), "unknown field"),
    "empty fields": (replaced(change("event"), fields={}), ("fields",), "at least one field"),
    "fields not an object": (replaced(change("event"), fields=[["grid", "G-0101", H]]), ("fields",), "Not a valid mapping"),
    "missing fields": (without(change("event"), "fields"), ("fields",), "Missing data"),
    # writes
    "write is a bare value": (replaced(change("event"), fields={"description": "x"}), ("fields", "description", "value"), "[value, hlc] pair"),
    "write without hlc": (replaced(change("event"), fields={"description": ["x"]}), ("fields", "description", "value"), "[value, hlc] pair"),
    "write with three parts": (replaced(change("event"), fields={"description": ["x", H, H]}), ("fields", "description", "value"), "[value, hlc] pair"),
    "write as an object": (replaced(change("event"), fields={"description": {"value": "x", "hlc": H}}), ("fields", "description", "value"), "[value, hlc] pair"),
    "hlc not an hlc": (replaced(change("event"), fields={"description": ["x", "yesterday"]}), ("fields", "description", "value"), "is not an HLC timestamp"),
    "hlc with an uppercase node": (replaced(change("event"), fields={"description": ["x", H.upper()]}), ("fields", "description", "value"), "node"),
    "hlc with a trailing newline": (replaced(change("event"), fields={"description": ["x", H + "\n"]}), ("fields", "description", "value"), "node"),
    "hlc with full-width digits": (replaced(change("event"), fields={"description": ["x", "２０２６" + H[4:]]}), ("fields", "description", "value"), "wall time"),
    "hlc with an impossible date": (replaced(change("event"), fields={"description": ["x", H.replace("11-27", "02-30")]}), ("fields", "description", "value"), "no valid date"),
    "hlc as a number": (replaced(change("event"), fields={"description": ["x", 1764272880123]}), ("fields", "description", "value"), "must be a string"),
    # values: types
    "string for bool": (change("event", urgent="true"), ("fields", "urgent"), "true or false"),
    "1 for bool": (change("event", urgent=1), ("fields", "urgent"), "true or false"),
    "None for bool": (change("event", micro=None), ("fields", "micro"), "null"),
    "string for int": (change("category", deadline_hours="3"), ("fields", "deadline_hours"), "Not a valid integer"),
    "float for int": (change("category", deadline_hours=3.0), ("fields", "deadline_hours"), "Not a valid integer"),
    "fraction for int": (change("category", deadline_hours=2.5), ("fields", "deadline_hours"), "Not a valid integer"),
    "bool for int": (change("category", deadline_hours=True), ("fields", "deadline_hours"), "must be an integer"),
    "int out of range": (change("category", deadline_hours=0), ("fields", "deadline_hours"), "greater than or equal to 1"),
    "string for number": (change("patrol", distance_m="12"), ("fields", "distance_m"), "must be a number"),
    "bool for number": (change("patrol", distance_m=False), ("fields", "distance_m"), "must be a number"),
    "int for string": (change("event", description=5), ("fields", "description"), "Not a valid string"),
    "list for string": (change("event", description=["x"]), ("fields", "description"), "Not a valid string"),
    "not a choice": (change("case_action", action="approve"), ("fields", "action"), "Must be one of"),
    "code with a space": (change("event", category="fire hazard"), ("fields", "category"), "is not a code"),
    "code with a trailing newline": (change("event", category="fire_hazard\n"), ("fields", "category"), "is not a code"),
    "empty name": (change("unit", name=""), ("fields", "name"), "Length must be between 1"),
    "id field not a UUID": (change("event", reporter="user-1"), ("fields", "reporter"), "is not a UUID"),
    "photo not a digest": (change("event", photos=["photo.jpg"]), ("fields", "photos", 0), "SHA-256"),
    "photo digest with a newline": (change("event", photos=[SHA + "\n"]), ("fields", "photos", 0), "SHA-256"),
    "instant without milliseconds": (change("event", reported_at="2026-11-27T19:48:00Z"), ("fields", "reported_at"), "ISO 8601 UTC"),
    "instant with microseconds": (change("event", reported_at="2026-11-27T19:48:00.123456Z"), ("fields", "reported_at"), "ISO 8601 UTC"),
    "instant not zero-padded": (change("event", reported_at="2026-1-5T1:2:3.004Z"), ("fields", "reported_at"), "ISO 8601 UTC"),
    "instant with an offset": (change("event", reported_at="2026-11-27T19:48:00.123+08:00"), ("fields", "reported_at"), "ISO 8601 UTC"),
    "instant impossible": (change("event", reported_at="2026-02-30T19:48:00.123Z"), ("fields", "reported_at"), "ISO 8601 UTC"),
    "day impossible": (change("tenant", moved_in="2026-02-30"), ("fields", "moved_in"), "must be a date"),
    "day not zero-padded": (change("tenant", moved_in="2026-1-5"), ("fields", "moved_in"), "must be a date"),
    "day with a trailing newline": (change("tenant", moved_in="2026-01-05\n"), ("fields", "moved_in"), "must be a date"),
    # values: nested
    "location without lat and lon": (change("event", location={"source": "gps"}), ("fields", "location", "lat"), "Missing data"),
    "location latitude as string": (change("event", location={**LOCATION, "lat": "30.1"}), ("fields", "location", "lat"), "must be a number"),
    "location latitude out of range": (change("event", location={**LOCATION, "lat": 91}), ("fields", "location", "lat"), "less than or equal to 90"),
    "location bad source": (change("event", location={**LOCATION, "source": "wifi"}), ("fields", "location", "source"), "Must be one of"),
    "location fix time not an instant": (change("event", location={**LOCATION, "fix_at": "yesterday"}), ("fields", "location", "fix_at"), "ISO 8601 UTC"),
    "no-location reason not a choice": (change("event", no_location_reason="lazy"), ("fields", "no_location_reason"), "Must be one of"),
    "location not an object": (change("event", location=[30, 120]), ("fields", "location"), "Invalid input type"),
    "checklist item without text": (change("checklist", items=[{"code": "exits"}]), ("fields", "items", 0, "text"), "Missing data"),
    "checklist without items": (change("checklist", items=[]), ("fields", "items"), "Length must be between 1"),
    "check answer bad result": (change("house_check", answers=[{"item": "exits", "result": "ok"}]), ("fields", "answers", 0, "result"), "Must be one of"),
    "track points not packed": (change("track", points=[{"lat": 30, "lon": 120}]), ("fields", "points"), "Not a valid mapping"),
    "track time backwards": (change("track", points={"t": [-1], "lat": [0], "lon": [0], "acc": [None], "speed": [None]}), ("fields", "points"), "backwards"),
    "fixed point radius too small": (change("fixed_point", radius_m=1), ("fields", "radius_m"), "greater than or equal to 5"),
    "plan hour out of range": (change("patrol_plan", hours=[24]), ("fields", "hours", 0), "less than or equal to 23"),
    # NUL, which PostgreSQL cannot store
    "NUL in a string": (change("event", description="fire\x00"), ("fields", "description"), "NUL"),
    "NUL in a checklist item text": (change("checklist", items=[{"code": "exits", "text": "clear\x00"}]), ("fields", "items", 0, "text"), "NUL"),
    "NUL in a check answer note": (change("house_check", answers=[{"item": "exits", "result": "fail", "note": "\x00"}]), ("fields", "answers", 0, "note"), "NUL"),
    "NUL in a code": (change("unit", code="fire\x00"), ("fields", "code"), "NUL"),
    "NUL in the id": (replaced(change("event"), id=new_id(100) + "\x00"), ("id",), "NUL"),
    "NUL in a field name": (replaced(change("event"), fields={"desc\x00": ["x", H]}), ("fields", "desc\x00", "key"), "NUL"),
}


@pytest.mark.parametrize("data, path, fragment", list(REFUSED.values()), ids=list(REFUSED))
def test_invalid_change_is_refused_naming_the_field(data, path, fragment):
    with pytest.raises(ValidationError) as caught:
        load_change(data)
    found = messages_at(caught.value.messages, path)
    assert fragment in str(found), found


def test_several_bad_fields_are_all_named():
    with pytest.raises(ValidationError) as caught:
        load_change(change("event", urgent="yes", colour="red", description="\x00"))
    assert set(caught.value.messages["fields"]) == {"urgent", "colour", "description"}


@pytest.mark.parametrize("body", [None, [], "change", 7, [change("event")]])
def test_body_that_is_not_an_object_is_refused(body):
    with pytest.raises(ValidationError) as caught:
        load_change(body)
    assert caught.value.messages == {"_schema": ["a change must be a JSON object"]}


# --- ids ----------------------------------------------------------------------------------------

unix_ms = st.integers(0, (1 << 48) - 1)
random10 = st.binary(min_size=10, max_size=10)


@given(unix_ms, random10)
def test_uuid7_is_a_canonical_rfc_version_7_uuid_carrying_its_time(ms, random_bytes):
    text = uuid7(ms, random_bytes)
    parsed = uuid.UUID(text)
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    assert str(parsed) == text
    assert parsed.int >> 80 == ms


@given(unix_ms, unix_ms, random10, random10)
def test_uuid7_sorts_by_time(ms_a, ms_b, random_a, random_b):
    if ms_a != ms_b:
        assert (uuid7(ms_a, random_a) < uuid7(ms_b, random_b)) == (ms_a < ms_b)


def test_uuid7_matches_the_rfc_9562_example():
    # RFC 9562 appendix A.6: unix_ts_ms 0x017F22E279B0, rand_a 0xCC3, rand_b 0x18C4DC0C0C07398F
    assert uuid7(0x017F22E279B0, bytes.fromhex("0cc318c4dc0c0c07398f")) == "017f22e2-79b0-7cc3-98c4-dc0c0c07398f"


def test_uuid7_needs_ten_random_bytes():
    with pytest.raises(ValueError, match="10 random bytes"):
        uuid7(0, bytes(9))


def test_uuid7_is_accepted_as_a_record_id():
    assert load_change(replaced(change("event"), id=uuid7(2**47, bytes(10)))).id == uuid7(2**47, bytes(10))


@pytest.mark.parametrize("text", [
    NOW, "1970-01-01T00:00:00.000Z", "2024-02-29T23:59:59.999Z", "9999-12-31T23:59:59.999Z",
    "2026-02-29T00:00:00.000Z", "2026-11-27T24:00:00.000Z", "2026-11-27T19:48:00Z", "2026-11-27T19:48:00.123456Z",
    "2026-1-5T1:2:3.004Z", "2026-11-27T19:48:00.123+08:00", NOW + "\n", "２026-11-27T19:48:00.123Z", "",
])
def test_is_instant_is_what_an_instant_field_takes(text):
    try:
        load_change(change("event", reported_at=text))
        taken = True
    except ValidationError:
        taken = False
    assert is_instant(text) is taken


@pytest.mark.parametrize("value", [None, 1_764_272_880_123, b"2026-11-27T19:48:00.123Z", ["2026-11-27T19:48:00.123Z"]])
def test_is_instant_of_a_non_string_is_false(value):
    assert is_instant(value) is False


# --- kinds --------------------------------------------------------------------------------------

def test_event_requires_grid_category_description_reporter_and_time():
    assert KINDS["event"].required == {"grid", "category", "description", "reporter", "reported_at"}


def test_event_and_case_action_fields_are_the_contract():
    assert KINDS["event"].fields == {
        "grid", "category", "description", "location", "address", "photos", "urgent", "micro", "reporter",
        "reported_at", "case_number", "patrol", "no_location_reason", "_deleted",
    }
    assert {"event", "action", "actor", "unit", "deadline", "note", "photos"} <= KINDS["case_action"].fields


def test_reference_and_append_only_kinds():
    assert REFERENCE_KINDS == {"grid", "category", "unit", "checklist", "dispute_kind", "place_type"}
    assert FIELD_KINDS == {"event", "case_action", "rental_house", "house_check", "tenant", "place", "place_check",
                           "patrol", "track", "fixed_point", "point_visit", "patrol_plan", "dispute", "dispute_action"}
    assert {name for name, kind in KINDS.items() if kind.append_only} == {
        "case_action", "house_check", "place_check", "patrol", "track", "point_visit", "dispute_action"}


@pytest.mark.parametrize("kind, values, bucket", [
    ("grid", {"code": "G-0101"}, REF_BUCKET),
    ("event", {"grid": "G-0101"}, "grid:G-0101"),
    ("patrol", {"grid": "G-7"}, "grid:G-7"),
    ("event", {"description": "x"}, None),
    ("tenant", {"house": HOUSE}, None),
])
def test_bucket_of_follows_the_grid_or_leaves_it_to_the_parent(kind, values, bucket):
    assert KINDS[kind].bucket_of(values) == bucket


def test_grid_bucket_and_bucket_grid_are_inverse():
    assert grid_bucket("G-0101") == "grid:G-0101"
    assert bucket_grid(grid_bucket("G-0101")) == "G-0101"
    assert bucket_grid(REF_BUCKET) is None


def test_hlc_example_in_this_file_is_well_formed():
    assert str(HLC.parse(H)) == H and str(HLC.parse(LATER)) == LATER

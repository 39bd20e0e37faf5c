"""server/sync/wire.py's read_push gives what json.loads and load_change give for a push body, only faster.

On generated and byte-mutated bodies: whatever read_push returns has the keys and values json.loads
gives, each change it validated is the Change load_change makes of the plain value, it never raises,
and the plain valid changes of every kind do take the fast path. dumps/loads give back every value
json.loads reads from such bodies.
"""

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.sync.wire import dumps, loads, read_push
from shared.records import Change, ValidationError, load_change
from tests.shared.test_idcard import VALID as VALID_ID_NUMBERS
from tests.shared.test_records import H, LATER, NOW, SHA, VALID, new_id

NODE = "a0a0a0a0a0a0a0a0"
NESTED = {"checklist": "items", "grid": "boundary", "house_check": "answers", "track": "points", "dispute": "parties",
          "place_check": "answers", "place_type": "check_every_days"}  # go the plain way
ALSO_NESTED = {"dispute": "parties_masked"}  # a second nested field of a kind (the server's to write): left out too


def js(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def obj(pairs) -> str:
    """A JSON object written from (key, JSON text) pairs, duplicates and all."""
    return "{" + ",".join(f"{js(key)}:{text}" for key, text in pairs) + "}"


def parts(value):
    """The value and every list, tuple, dict and item inside it."""
    yield value
    if isinstance(value, (list, tuple)):
        for item in value:
            yield from parts(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from parts(item)


def finite(value) -> bool:
    return all(not isinstance(part, float) or math.isfinite(part) for part in parts(value))


def same(a, b) -> bool:
    """Equal and alike in repr, so 1, 1.0 and True (or -0.0 and 0.0) are told apart; NaN is itself."""
    return repr(a) == repr(b) and (a == b or any(part != part for part in parts(a)))


def same_change(fast: Change, plain: Change) -> bool:
    def whole(change):
        return change.kind, change.id, change.bucket, sorted(change.fields.items(), key=lambda item: item[0])

    return type(fast) is type(plain) is Change and same(whole(fast), whole(plain))


def check_round_trip(raw: bytes) -> None:
    """loads(dumps(v)) is v for every finite value json.loads reads from raw, and each part of it."""
    try:
        value = json.loads(raw)
    except ValueError:
        return
    for part in parts(value):
        if finite(part):
            assert same(loads(dumps(part)), part)


def check_law(raw: bytes):
    """read_push(raw) agrees with json.loads and load_change; what it returned (None: nothing to check)."""
    fast = read_push(raw)
    if fast is None:
        return None
    plain = json.loads(raw)
    assert type(plain) is dict and set(fast) == set(plain)
    for key in ("node", "sent_at"):
        if key in plain:
            assert same(fast[key], plain[key]), key
    assert type(plain["changes"]) is list and len(fast["changes"]) == len(plain["changes"])
    for index, (item, value) in enumerate(zip(fast["changes"], plain["changes"])):
        if isinstance(item, Change):
            try:
                loaded = load_change(value)
            except ValidationError as exc:
                pytest.fail(f"change {index} read fast, but load_change refuses it: {exc.messages}")
            assert same_change(item, loaded), index
        else:
            assert same(item, value), index
    return fast


# --- bodies of wire_changes(), written by json.dumps -----------------------------------------------

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


ABSENT = object()
ODD = [None, 0, 1, 1.0, True, False, "", 10**30, -0.0, 1e300, math.nan, math.inf, [], {}, {"a": 1},
       NOW + "\n", NODE.upper(), "\ud800", "😀"]


def encodable(change) -> bool:
    try:
        json.dumps(change)
    except (TypeError, ValueError):
        return False
    return True


@st.composite
def plain_bodies(draw):
    changes = draw(st.lists(wire_changes().filter(encodable), min_size=1, max_size=5))
    body = {"node": draw(st.sampled_from([NODE] * 4 + ODD)), "changes": changes}
    sent_at = draw(st.sampled_from([ABSENT, ABSENT, NOW, NOW] + ODD))
    if sent_at is not ABSENT:
        body["sent_at"] = sent_at
    return json.dumps(body, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(plain_bodies())
def test_read_push_agrees_with_json_and_load_change(raw):
    check_law(raw)
    check_round_trip(raw)


# --- bodies written by hand, then broken at the byte level ----------------------------------------

INSTANTS = [
    "2026-02-28T23:59:59.999Z", "2024-02-29T12:00:00.000Z", "2026-02-29T12:00:00.000Z", "2026-02-30T00:00:00.000Z",
    "2026-04-30T00:00:00.000Z", "2026-04-31T00:00:00.000Z", "2026-01-31T00:00:00.000Z", "2000-02-29T00:00:00.000Z",
    "2100-02-29T00:00:00.000Z", "1970-01-01T00:00:00.000Z", "1969-12-31T23:59:59.999Z", "9999-12-31T23:59:59.999Z",
    "0000-01-01T00:00:00.000Z", NOW + "\n", "２026-11-27T19:48:00.123Z", "2026-11-27T24:00:00.000Z",
    "2026-11-27T19:48:60.000Z", "2026-11-27t19:48:00.123z", "2026-11-27T19:48:00Z",
]
DAYS = ["2026-02-28", "2024-02-29", "2026-02-29", "2026-02-30", "2026-04-30", "2026-04-31", "1969-12-31",
        "0000-01-01", "9999-12-31", "2026-01-05\n", "２026-01-05", "2026-1-5", "20260105"]
HLCS = [H, LATER] + [t + "-0000-9f86d081884c7d65" for t in INSTANTS] + [
    H.upper(), H.replace("9f86", "9F86"), H.replace("-0000-", "-FFFF-"),
    "2026-12-31T23:59:59.999Z-ffff-ffffffffffffffff", H + "\n", H[:-1]]
IDS = [new_id(3), new_id(3).upper(), new_id(3)[:-1] + "A", "{" + new_id(3) + "}", new_id(3).replace("-", "")]
ID_NUMBERS = VALID_ID_NUMBERS + [
    "11010519491231002x", "110105194912310021", "110101199003074515", "１１０１０１199003074514", "110101199002304518"]
CODES = ["G-0101", "G-0101\n", "Ｇ-0101", "g" * 64, "g" * 65, "", "-G", "a.b_c-d", "G 0101"]
LOCATIONS = [
    '{"lat":30,"lon":120,"source":"gps"}', '{"lat":30.0,"lon":120.0,"source":"gps"}',
    '{"lat":90,"lon":-180,"accuracy_m":0,"source":"manual"}', '{"lat":90.0000001,"lon":0,"source":"gps"}',
    '{"lat":-0.0,"lon":1e-400,"source":"last_known"}', '{"lat":1e400,"lon":0,"source":"gps"}',
    '{"lat":true,"lon":0,"source":"gps"}', '{"lat":1,"lon":0,"accuracy_m":1e15,"source":"gps"}',
    '{"lat":1,"lon":0,"accuracy_m":1e16,"source":"gps"}',
    '{"lat":1,"lon":0,"accuracy_m":100000000000000000000000000000,"source":"gps"}',
    '{"lat":91,"lat":30,"lon":0,"source":"gps"}', '{"lat":30,"lat":91,"lon":0,"source":"gps"}',
    '{"lat":30,"lon":0,"source":"gps","source":"GPS"}', '{"lat":30,"lon":0}', '{"lat":30,"lon":0,"source":"gps","alt":1}',
    '{"lat":30,"lon":0,"source":"gps\\n"}', '{"lat":30,"lon":0,"source":"\\u0067ps"}', '{"lat":NaN,"lon":0,"source":"gps"}',
    '{"lat":30,"lon":0,"accuracy_m":null,"source":"gps"}', "null", "[]", "{}",
]
INTS = ["0", "1", "-1", "3", "3.0", "1e2", "-0", "true", "false", "200", "201", "8760", "8761", "10000", "10001",
        "100000", "100001", "100000000000000000000000000000", "4611686018427387904", "4611686018427387905",
        "9223372036854775808", "null", '"3"', "３"]
NUMBERS = ["0", "-0", "-0.0", "1234.5", "1e400", "-1e400", "1e-400", "-1e-400", "1e308", "1E2", "0.1", "-1",
           "100000000000000000000000000000", "4611686018427387904", "4611686018427387905", "true", "NaN",
           "Infinity", "-Infinity", "null", '"1"']
BOOLS = ["true", "false", "0", "1", "null", '"true"']
PHOTOS = [js(v) for v in ([], [SHA] * 50, [SHA] * 51, [SHA.upper()], [SHA, None], [SHA, SHA], None, SHA)]
LIMITS = {"name": 200, "name_en": 200, "community": 200, "street": 200, "district": 200, "owner": 200,
          "building_head": 200, "address": 500, "description": 4000, "note": 4000, "notes": 4000,
          "owner_phone": 40, "building_head_phone": 40, "phone": 40, "room": 40, "id_number_masked": 18}


def edges() -> dict[str, list[str]]:
    """JSON texts of values on and past the edges of each field's rules, by field name."""
    table = {name: [js(c * n) for c in ("x", "界", "😀", "é") for n in (0, 1, limit, limit + 1)]
             for name, limit in LIMITS.items()}
    for names, values in [
        (("code", "default_unit", "grid", "category", "unit", "checklist"), [js(v) for v in CODES]),
        (("reporter", "event", "actor", "duplicate_of", "house", "worker"), [js(v) for v in IDS]),
        (("reported_at", "deadline", "checked_at", "started_at", "ended_at"), [js(v) for v in INSTANTS]),
        (("moved_in", "moved_out"), [js(v) for v in DAYS]),
        (("deadline_hours", "duplicate_radius_m", "version", "floors", "rooms", "checklist_version",
          "residents_seen"), INTS),
        (("_deleted", "micro", "urgent", "stand_in"), BOOLS),
        (("distance_m",), NUMBERS), (("location",), LOCATIONS), (("photos",), PHOTOS),
        (("id_number",), [js(v) for v in ID_NUMBERS]),
        (("type",), [js(v) for v in ("base", "Base", "nope", None, "")]),
        (("action",), [js(v) for v in ("dispatch", "close", "Close", None, "")]),
        (("risk_grade",), [js(v) for v in ("low", "high", "LOW", None)]),
        (("items", "answers", "track"), ["[]", "{}", "1", "null"]),
    ]:
        for name in names:
            table.setdefault(name, []).extend(values)
    return table


EDGES = edges()
ANY_VALUES = ["null", "true", "0", "1.5", '""', "[]", "{}", "NaN", "1e400", '"\\u0000"', '"\\ud800"',
              "1.", ".5", "+1", "01", "True", "[1,]", '{"a":1,}', "'a'", "1 2"]
SENT_AT = [js(NOW), js(NOW), "null", "1", "1.0", "true", "1e400", "-0.0", "100000000000000000000000000000",
           '"\\ud800"', '"\\udc00\\ud800"', js(NOW + "\n"), "NaN", "[]", "{}", '{"a":1,"a":2}', '"\\u0000"']


@st.composite
def string_variants(draw, text: str) -> str:
    """JSON texts of a string, altered: a trailing newline, surrogates, control characters, escapes."""
    inner = js(text)[1:-1]
    first = text[0]
    return draw(st.sampled_from([
        js(text + "\n"), f'"{inner}\n"', f'"{inner}\\ud800"', f'"\\udc00{inner}"', f'"{inner}\\ud83d\\ude00"',
        f'"\\ud83d{inner}"', js(text + "\ud800"), f'"{inner}\x01"', f'"\t{inner}"', f'"{inner}\x7f"',
        f'"{inner}\\u0000"', f'"\\u{ord(first):04x}{js(text[1:])[1:-1]}"', f'"\\u{ord(first):04X}{js(text[1:])[1:-1]}"',
        f'"{inner}\\/"', js(text.upper()), js(" " + text), f'"{inner}\\x"',
    ]))


@st.composite
def value_texts(draw, name: str, valid) -> str:
    roll = draw(st.integers(0, 39))
    if roll < 30:
        return js(valid)
    if roll < 36 and name in EDGES:
        return draw(st.sampled_from(EDGES[name]))
    if roll < 39 and type(valid) is str:
        return draw(string_variants(valid))
    return draw(st.sampled_from(ANY_VALUES))


def write(value_text: str, hlc: str) -> str:
    return f"[{value_text},{js(hlc)}]"


@st.composite
def change_texts(draw) -> str:
    kind = draw(st.sampled_from(sorted(VALID)))
    bucket, values = VALID[kind]
    names = draw(st.lists(st.sampled_from(sorted(values)), min_size=1, max_size=len(values), unique=True))
    hlc = draw(st.sampled_from(HLCS)) if draw(st.integers(0, 4)) == 4 else H
    writes = [(name, write(draw(value_texts(name, values[name])), hlc)) for name in names]
    name = draw(st.sampled_from(names))
    other = write(draw(value_texts(name, values[name])), draw(st.sampled_from([H, LATER])))
    # Rolls count down: hypothesis draws 0 more often than its share, and the top rolls change nothing.
    roll = 11 - draw(st.integers(0, 11))
    if roll == 0:
        writes.append((name, other))
    elif roll == 1:
        writes.insert(0, (name, other))
    elif roll == 2:
        writes.append((draw(st.sampled_from(["colour", "", "grid", "code", "_deleted", "id_number_masked"])), other))
    elif roll == 3:
        value = js(values[name])
        writes[0] = (writes[0][0], draw(st.sampled_from(
            [value, f"[{value}]", f"[{value},{js(H)},1]", f'{{"0":{value}}}', f"[{value},null]", "[]"])))
    elif roll == 4:
        writes = []
    pairs = [("kind", js(kind)), ("id", js(new_id(draw(st.integers(0, 3))))), ("bucket", js(bucket)),
             ("fields", obj(writes))]
    roll = 13 - draw(st.integers(0, 13))
    if roll <= 1:
        other_kind = js(draw(st.sampled_from(sorted(VALID) + ["nope"])))
        pairs.insert(0 if roll == 0 else 4, ("kind", other_kind))
    elif roll == 2:
        pairs.append(("fields", draw(st.sampled_from(["{}", obj([(name, write(js(values[name]), LATER))])]))))
    elif roll == 3:
        pairs.append((draw(st.sampled_from(["extra", "Kind", "fields "])), "1"))
    elif roll == 4:
        del pairs[draw(st.integers(0, 3))]
    elif roll == 5:
        pairs = draw(st.permutations(pairs))
    elif roll == 6:
        pairs[1] = ("id", draw(st.sampled_from([js(v) for v in IDS])))
    elif roll == 7:
        pairs[2] = ("bucket", js(draw(st.sampled_from(["ref", "grid:G-0101", "grid:G-0202", "grid:", "grid:G-0101\n"]))))
    elif roll == 8:
        return draw(st.sampled_from(["null", "[]", '"x"', "1", "{}"]))
    return obj(pairs)


def ascii_escaped(text: str) -> str:
    out = []
    for char in text:
        code = ord(char)
        if code < 0x80:
            out.append(char)
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            high, low = divmod(code - 0x10000, 0x400)
            out.append(f"\\u{0xD800 + high:04x}\\u{0xDC00 + low:04x}")
    return "".join(out)


@st.composite
def mutated_bodies(draw) -> bytes:
    changes = "[" + ",".join(draw(st.lists(change_texts(), min_size=1, max_size=3))) + "]"
    pairs = [("node", js(NODE)), ("changes", changes)]
    if draw(st.booleans()):
        pairs.append(("sent_at", draw(st.sampled_from(SENT_AT))))
    roll = 15 - draw(st.integers(0, 15))
    if roll == 0:
        del pairs[0]
    elif roll == 1:
        pairs.insert(0, ("node", js("b0b0b0b0b0b0b0b0")))
    elif roll == 2:
        pairs.append((draw(st.sampled_from(["extra", "Node", "node\u0000"])), "1"))
    elif roll == 3:
        pairs[1] = ("changes", draw(st.sampled_from(["{}", "null", '"x"', "[]", "[" + changes + "]", changes[1:-1]])))
    elif roll == 4:
        pairs.insert(0, ("changes", "[]"))
    elif roll == 5:
        pairs[0] = ("node", draw(st.sampled_from(["100000000000000000000000000000", "1e400", "-0.0", "NaN", "true",
                                                  '"\\ud800"', js("\ud800"), '"a\x01"', "[1,2.0,true]", "1"])))
    elif roll == 6:
        pairs = draw(st.permutations(pairs))
    text = obj(pairs)
    roll = 29 - draw(st.integers(0, 29))
    if roll == 0:
        text = ascii_escaped(text)
    elif roll == 1:
        text = " \t\n\r" + text + "\r\n "
    elif roll == 2:
        text = draw(st.sampled_from(["\x0c", "\x0b", "\u00a0", "\ufeff", "\x00"])) + text
    elif roll == 3:
        text = text + draw(st.sampled_from(["\x0c", "\u00a0", "\x00", "x", "{}", ","]))
    if roll == 4:
        return b"\xef\xbb\xbf" + text.encode("utf-8", "surrogatepass")
    if roll == 5:
        return text.encode(draw(st.sampled_from(["utf-16", "utf-16-le", "utf-16-be", "utf-32"])), "surrogatepass")
    return text.encode("utf-8", "surrogatepass")


@settings(max_examples=400, deadline=None)
@given(mutated_bodies())
def test_read_push_agrees_on_mutated_bodies(raw):
    check_law(raw)
    check_round_trip(raw)


@settings(max_examples=1000, deadline=None)
@given(st.one_of(st.binary(max_size=200),
                 st.binary(max_size=60).map(lambda b: b'{"node":"x","changes":[' + b + b"]}"),
                 st.binary(max_size=60).map(lambda b: b'{"node":"x","changes":[{"kind":"unit","id":"'
                                            + new_id(1).encode() + b'","bucket":"ref","fields":{"name":' + b + b"}}]}")))
def test_read_push_never_raises_on_any_bytes(raw):
    check_law(raw)


# --- the fast path is taken -------------------------------------------------------------------------

def change_text(kind: str, hlc: str = H, **texts: str) -> str:
    """A full valid change of kind without its nested list, some values replaced by JSON texts."""
    bucket, values = VALID[kind]
    writes = {name: js(value) for name, value in values.items() if name not in (NESTED.get(kind), ALSO_NESTED.get(kind))}
    writes.update(texts)
    return obj([("kind", js(kind)), ("id", js(new_id(9))), ("bucket", js(bucket)),
                ("fields", obj([(name, write(text, hlc)) for name, text in writes.items()]))])


def body(*changes: str) -> bytes:
    return obj([("node", js(NODE)), ("changes", "[" + ",".join(changes) + "]")]).encode("utf-8", "surrogatepass")


@pytest.mark.parametrize("kind", sorted(VALID))
def test_the_plain_valid_changes_of_every_kind_go_fast(kind):
    full = obj([("kind", js(kind)), ("id", js(new_id(9))), ("bucket", js(VALID[kind][0])),
                ("fields", obj([(name, write(js(value), H)) for name, value in VALID[kind][1].items()]))])
    fast = check_law(body(full, change_text(kind)))
    assert fast is not None
    whole, without_nested = fast["changes"]
    assert isinstance(whole, Change) is (kind not in NESTED)
    assert isinstance(without_nested, Change)


@pytest.mark.parametrize("kind, hlc, texts, goes", [
    ("tenant", H, {"moved_in": js("2024-02-29")}, "fast"),
    ("tenant", H, {"moved_in": js("9999-12-31"), "moved_out": js("2026-02-28")}, "fast"),
    ("tenant", H, {"moved_in": js("2026-02-29")}, "refused"),
    ("tenant", H, {"moved_out": js("2026-04-31")}, "refused"),
    ("tenant", H, {"moved_in": js("1969-12-31")}, "fast"),
    ("tenant", H, {"moved_in": js("0000-01-01")}, "refused"),
    *[("tenant", H, {"id_number": js(number)}, "fast") for number in VALID_ID_NUMBERS],
    ("tenant", H, {"id_number": js("11010519491231002x")}, "refused"),
    ("tenant", H, {"id_number": js("110101199003074515")}, "refused"),
    ("tenant", H, {"phone": js("😀" * 40), "room": js("界" * 40)}, "fast"),
    ("tenant", H, {"phone": js("😀" * 41)}, "refused"),
    ("tenant", H, {"id_number_masked": js("界" * 18)}, "fast"),
    ("event", H, {"reported_at": js("2024-02-29T12:00:00.000Z")}, "fast"),
    ("event", H, {"reported_at": js("2026-01-31T00:00:00.000Z")}, "fast"),
    ("event", H, {"reported_at": js("1970-01-01T00:00:00.000Z")}, "fast"),
    ("event", H, {"reported_at": js("9999-12-31T23:59:59.999Z")}, "fast"),
    ("event", H, {"reported_at": js("2026-04-31T00:00:00.000Z")}, "refused"),
    ("event", H, {"reported_at": js("2100-02-29T00:00:00.000Z")}, "refused"),
    ("event", H, {"reported_at": js(NOW + "\n")}, "refused"),
    ("event", "2024-02-29T12:00:00.000Z-0000-9f86d081884c7d65", {}, "fast"),
    ("event", "2026-12-31T23:59:59.999Z-ffff-ffffffffffffffff", {}, "fast"),
    ("event", "2026-02-29T12:00:00.000Z-0000-9f86d081884c7d65", {}, "refused"),
    ("event", "2026-11-31T12:00:00.000Z-0000-9f86d081884c7d65", {}, "refused"),
    ("event", H.replace("9f86", "9F86"), {}, "refused"),
    ("event", H, {"location": '{"lat":30,"lon":120,"source":"gps"}'}, "fast"),
    ("event", H, {"location": '{"lat":30.0,"lon":-0.0,"accuracy_m":0,"source":"manual"}'}, "fast"),
    ("event", H, {"location": '{"lat":91,"lat":30,"lon":0,"source":"gps"}'}, "fast"),
    ("event", H, {"location": '{"lat":30,"lat":91,"lon":0,"source":"gps"}'}, "refused"),
    ("event", H, {"location": '{"lat":1e400,"lon":0,"source":"gps"}'}, "refused"),
    ("event", H, {"location": "null"}, "fast"),
    ("event", H, {"description": js("x" * 4000), "address": js("😀" * 500)}, "fast"),
    ("event", H, {"description": js("界" * 4001)}, "refused"),
    ("event", H, {"description": '"\\u697c\\u9053 \\ud83d\\ude00"'}, "fast"),
    ("event", H, {"description": '"\\ud800"'}, "plain"),
    ("event", H, {"description": js("\ud800")}, "plain"),
    ("event", H, {"reporter": js(new_id(1).upper())}, "refused"),
    ("event", H, {"grid": js("G-0101\n")}, "refused"),
    ("event", H, {"grid": js("G-0202")}, "refused"),
    ("event", H, {"urgent": "1"}, "refused"),
    ("event", H, {"photos": js([SHA] * 50)}, "fast"),
    ("event", H, {"photos": js([SHA] * 51)}, "refused"),
    ("rental_house", H, {"floors": "200", "rooms": "0"}, "fast"),
    ("rental_house", H, {"floors": "3.0"}, "refused"),
    ("rental_house", H, {"floors": "201"}, "refused"),
    ("rental_house", H, {"floors": "true"}, "refused"),
    ("rental_house", H, {"floors": "null", "risk_grade": "null"}, "fast"),
    ("rental_house", H, {"address": js("界" * 500)}, "fast"),
    ("rental_house", H, {"address": js("")}, "refused"),
    ("patrol", H, {"distance_m": "-0.0"}, "fast"),
    ("patrol", H, {"distance_m": "1e-400"}, "fast"),
    ("patrol", H, {"distance_m": "3"}, "fast"),
    ("patrol", H, {"distance_m": "1e400"}, "refused"),
    ("patrol", H, {"distance_m": "-1"}, "refused"),
    ("category", H, {"deadline_hours": "8760", "duplicate_radius_m": "100000"}, "fast"),
    ("category", H, {"deadline_hours": "8761"}, "refused"),
    ("category", H, {"deadline_hours": "100000000000000000000000000000"}, "refused"),
    ("grid", H, {"name": js("界" * 200), "name_en": js("😀" * 200)}, "fast"),
    ("grid", H, {"name": js("界" * 201)}, "refused"),
    ("grid", H, {"code": js("g" * 64)}, "fast"),
    ("grid", H, {"code": js("g" * 65)}, "refused"),
    ("grid", H, {"type": js("Base")}, "refused"),
    ("grid", H, {"_deleted": "0"}, "refused"),
    ("case_action", H, {"duplicate_of": "null", "unit": "null", "deadline": "null"}, "fast"),
    ("case_action", H, {"action": js("Close")}, "refused"),
    ("unit", H, {"name": '"\\u6d88\\u9632"'}, "fast"),
])
def test_edge_values_go_the_right_way(kind, hlc, texts, goes):
    fast = check_law(body(change_text(kind, hlc, **texts)))
    item = None if fast is None else fast["changes"][0]
    assert isinstance(item, Change) is (goes == "fast")
    if goes == "refused":
        with pytest.raises(ValidationError):
            load_change(json.loads(body(change_text(kind, hlc, **texts)))["changes"][0])


@pytest.mark.parametrize("raw", [
    b"\xef\xbb\xbf" + body(change_text("unit")),
    body(change_text("unit")).decode().encode("utf-16"),
    body(change_text("unit")).replace(b'"fire"', b'"fire\\u0000"'),
    body(change_text("unit")).replace(b'"kind":', b'"kind":"grid","kind":'),
    body(change_text("unit")).replace(b'"kind":"unit"', b'"kind":"unit","kind":"grid"'),
    body(change_text("unit")).replace(b'"fields":', b'"fields":{},"fields":'),
    body(change_text("unit")).replace(b'"name":', b'"name":["x","' + H.encode() + b'"],"name":'),
    body(change_text("unit")).replace(b'"name":', b'"name":[1,"' + H.encode() + b'"],"name":'),
    body(change_text("unit")).replace(b'"node":', b'"node":1,"node":'),
    body(change_text("unit")).replace(b'"node":"a0a0a0a0a0a0a0a0",', b""),
    body(change_text("unit")).replace(b"\xe6\xb6\x88", b"\xed\xa0\x80"),
    body(change_text("unit")).replace(b"\xe6\xb6\x88", b"\x1f"),
    body(change_text("unit")).replace(b"\xe6\xb6\x88", b"\xed\xa0\xbd\xed\xb8\x80"),
    body(change_text("unit")).replace(b"\xe6\xb6\x88", b"\xc0\xaf"),
    body(change_text("unit")).replace(b"\xe6\xb6\x88", b"\xf4\x90\x80\x80"),
    body(change_text("unit")).replace(b'"changes":[', b'"changes":[[' + b"[" * 500 + b"]" * 500 + b"],"),
    body(change_text("unit"))[:-1] + b',"extra":1}',
    body(change_text("unit"))[:-1] + b',"sent_at":100000000000000000000000000000}',
    body(change_text("unit"))[:-1] + b',"sent_at":-0.0}',
    body(change_text("unit"))[:-1] + b',"sent_at":1e400}',
    body(),
    b'{"node":"x","changes":{}}',
    b'{"node":"x","changes":[{}]}',
    body(change_text("event", location='{"lat":30,"lon":120,"source":"gps","source":"gps\\u0000"}')),
])
def test_broken_bodies_keep_the_law(raw):
    check_law(raw)


@pytest.mark.parametrize("kind", sorted(NESTED))
def test_null_for_a_nested_list_goes_the_plain_way(kind):
    check_law(body(change_text(kind, **{NESTED[kind]: "null"})))


def test_a_kind_whose_schema_has_hooks_goes_the_plain_way():
    # A schema hook is a rule no msgspec type says (here: no urgent event); only load_change runs it.
    from marshmallow import validates_schema

    from server.sync.wire import _KindReader
    from shared.records import EventFields, Kind

    class NoUrgentEvents(EventFields):
        @validates_schema
        def not_urgent(self, data, **kwargs):
            if data.get("urgent"):
                raise ValidationError("no urgent events")

    bucket, values = VALID["event"]
    writes = json.dumps({name: [value, H] for name, value in values.items()}).encode()
    for schema, goes_fast in ((EventFields, True), (NoUrgentEvents, False)):
        reader = _KindReader(Kind("event", schema))
        assert (reader.change(new_id(9), bucket, reader.decoder.decode(writes)) is not None) is goes_fast


@pytest.mark.parametrize("raw", [
    b'{"node":' + b"[" * 100_000 + b"]" * 100_000 + b',"changes":[]}',
    b'{"node":"x","changes":[' + b"[" * 100_000 + b"]" * 100_000 + b"]}",
])
def test_read_push_does_not_raise_on_deep_nesting(raw):
    assert read_push(raw) is None


# --- the JSON columns -------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [
    "\ud800", "x\udc00", ["\udc00\ud800", 1], {"\ud800": "\ud83d"}, 2**64, 2**64 + 1, -(2**63) - 1, 10**30,
    [10**30, -(10**40)], -0.0, 1e308, 5e-324, 1e-400, "😀", "\x00", {"a": {"a": [None, True, False, 0, 1.0]}},
])
def test_loads_reads_back_odd_values(value):
    assert same(loads(dumps(value)), value)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_never_reach_the_columns(value):
    """msgspec writes NaN and the infinities as null, which is why none may reach dumps: load_change refuses them."""
    with pytest.raises(ValidationError):
        load_change({"kind": "rental_house", "id": "0190f2a4-0000-7000-8000-000000000000", "bucket": "grid:G-0101",
                     "fields": {"location": [{"lat": value, "lon": 120, "source": "gps"}, H]}})
    assert dumps([1, value]) == "[1,null]"

"""The HLC never goes backwards, never falls behind physical time, passes every timestamp it absorbs, and sorts as text."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.hlc import MAX_COUNTER, HLC, ClockDriftError, HLCError, Clock, format_ms, is_hlc, parse_ms

A = "000000000000000a"  # the local node in every table
B = "000000000000000b"
C = "0123456789abcdef"
T0 = 1_764_272_880_000  # 2025-11-27T19:48:00.000Z
MAX_MS = 253402300799999  # 9999-12-31T23:59:59.999Z


class FakePhysical:
    """A physical clock that the test sets, in Unix milliseconds."""

    def __init__(self, ms: int = 0):
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


# --- SEND/RECV history tables -----------------------------------------------------------------
# Each step is ("PHYS", ms): set the physical clock; ("OFFSET", ms): set the clock's offset;
# ("SEND", expected): now(); ("RECV", remote, expected): update(remote). Expected values are the
# (wall_ms, counter) of the local node's timestamp.

HISTORIES = {
    "physical clock ahead resets the counter": [
        ("PHYS", 1000),
        ("SEND", (1000, 0)),
        ("SEND", (1000, 1)),
        ("PHYS", 1005),
        ("SEND", (1005, 0)),
        ("RECV", HLC(1003, 7, B), (1005, 1)),
        ("PHYS", 1010),
        ("RECV", HLC(1008, 3, B), (1010, 0)),
        ("RECV", HLC(900, MAX_COUNTER, B), (1010, 1)),
    ],
    "remote ahead is adopted and then ticked": [
        ("PHYS", 1000),
        ("SEND", (1000, 0)),
        ("RECV", HLC(2000, 5, B), (2000, 6)),
        ("SEND", (2000, 7)),
        ("PHYS", 1500),
        ("SEND", (2000, 8)),
        ("RECV", HLC(1999, 9, B), (2000, 9)),
        ("PHYS", 2000),
        ("SEND", (2000, 10)),
        ("PHYS", 2001),
        ("SEND", (2001, 0)),
    ],
    "remote ahead at the physical time takes the remote counter": [
        ("PHYS", 1000),
        ("SEND", (1000, 0)),
        ("PHYS", 3000),
        ("RECV", HLC(3000, 4, B), (3000, 5)),
        ("SEND", (3000, 6)),
    ],
    "equal walls take the larger counter plus one": [
        ("PHYS", 1000),
        ("SEND", (1000, 0)),
        ("SEND", (1000, 1)),
        ("RECV", HLC(1000, 5, B), (1000, 6)),
        ("RECV", HLC(1000, 2, C), (1000, 7)),
        ("RECV", HLC(1000, 7, B), (1000, 8)),
        ("RECV", HLC(1000, 8, A), (1000, 9)),
        ("SEND", (1000, 10)),
    ],
    "physical clock going backwards does not move the clock back": [
        ("PHYS", 5000),
        ("SEND", (5000, 0)),
        ("PHYS", 4000),
        ("SEND", (5000, 1)),
        ("RECV", HLC(4500, 0, B), (5000, 2)),
        ("PHYS", 0),
        ("SEND", (5000, 3)),
    ],
    "counter overflow on send moves wall time one ms forward": [
        ("PHYS", 1000),
        ("RECV", HLC(1000, MAX_COUNTER - 1, B), (1000, MAX_COUNTER)),
        ("SEND", (1001, 0)),
        ("SEND", (1001, 1)),
        ("PHYS", 1001),
        ("SEND", (1001, 2)),
        ("PHYS", 1002),
        ("SEND", (1002, 0)),
    ],
    "counter overflow on receive moves wall time one ms forward": [
        ("PHYS", 1000),
        ("RECV", HLC(3000, MAX_COUNTER, B), (3001, 0)),
        ("RECV", HLC(3001, MAX_COUNTER, B), (3002, 0)),
        ("SEND", (3002, 1)),
    ],
    "counter overflow on receive with equal walls": [
        ("PHYS", 1000),
        ("SEND", (1000, 0)),
        ("RECV", HLC(1000, MAX_COUNTER, B), (1001, 0)),
    ],
    "offset_ms corrects the physical clock": [
        ("PHYS", 10_000),
        ("OFFSET", 2_000),
        ("SEND", (12_000, 0)),
        ("RECV", HLC(11_000, 3, B), (12_000, 1)),
        ("PHYS", 10_001),
        ("RECV", HLC(11_000, 3, B), (12_001, 0)),
    ],
    "a negative offset never moves issued time back": [
        ("PHYS", 10_000),
        ("SEND", (10_000, 0)),
        ("OFFSET", -5_000),  # the server found this clock 5 s fast
        ("SEND", (10_000, 1)),
        ("PHYS", 15_000),
        ("SEND", (10_000, 2)),
        ("PHYS", 15_001),
        ("SEND", (10_001, 0)),
        ("RECV", HLC(10_001, 0, B), (10_001, 1)),
    ],
}


@pytest.mark.parametrize("steps", list(HISTORIES.values()), ids=list(HISTORIES))
def test_send_recv_history(steps):
    physical = FakePhysical()
    clock = Clock(A, physical)
    for number, step in enumerate(steps):
        op = step[0]
        if op == "PHYS":
            physical.ms = step[1]
            continue
        if op == "OFFSET":
            clock.offset_ms = step[1]
            continue
        got = clock.now() if op == "SEND" else clock.update(step[1])
        wall, counter = step[-1]
        assert got == HLC(wall, counter, A), f"step {number}: {step}"
        assert clock.last == got


def test_update_accepts_the_string_form():
    clock = Clock(A, FakePhysical(1000))
    assert clock.update(str(HLC(2000, 3, B))) == HLC(2000, 4, A)


def test_clock_restarted_from_last_continues_after_it():
    clock = Clock(A, FakePhysical(1000), last=HLC(5000, 7, A))
    assert clock.now() == HLC(5000, 8, A)


def test_clock_refuses_a_bad_node():
    with pytest.raises(HLCError, match="node"):
        Clock("9F86D081884C7D65", FakePhysical())
    with pytest.raises(HLCError, match="node"):
        Clock("9f86d081884c7d65\n", FakePhysical())


# --- string form --------------------------------------------------------------------------------

nodes = st.sampled_from([A, B, C]) | st.text("0123456789abcdef", min_size=16, max_size=16)
walls = st.sampled_from([0, 999, 1000, T0, T0 + 1, MAX_MS]) | st.integers(0, MAX_MS)
counters = st.sampled_from([0, 1, 0xFF, MAX_COUNTER]) | st.integers(0, MAX_COUNTER)
hlcs = st.builds(HLC, walls, counters, nodes)


@given(hlcs)
def test_string_form_round_trips(hlc):
    text = str(hlc)
    assert len(text) == len("2026-11-27T19:48:00.123Z-0000-9f86d081884c7d65")
    assert HLC.parse(text) == hlc
    assert is_hlc(text)


@given(hlcs, hlcs)
def test_string_order_is_hlc_order(a, b):
    assert (str(a) < str(b)) == (a < b)
    assert (str(a) == str(b)) == (a == b)


@given(st.integers(-10**11, MAX_MS))
def test_format_ms_and_parse_ms_round_trip(ms):
    assert parse_ms(format_ms(ms)) == ms


@pytest.mark.parametrize("text, ms", [
    ("1970-01-01T00:00:00.000Z", 0),
    ("1970-01-01T00:00:00.001Z", 1),
    ("2025-11-27T19:48:00.000Z", T0),
    ("9999-12-31T23:59:59.999Z", MAX_MS),
    ("1969-12-31T23:59:59.500Z", -500),
])
def test_parse_ms_reads_utc_milliseconds(text, ms):
    assert parse_ms(text) == ms
    assert format_ms(ms) == text


GOOD = "2026-11-27T19:48:00.123Z-0000-9f86d081884c7d65"


@pytest.mark.parametrize("value, fragment", [
    (GOOD.replace("9f86d081884c7d65", "9F86D081884C7D65"), "node '9F86D081884C7D65'"),
    (GOOD.replace("9f86d081884c7d65", "9f86d081884c7d6"), "node"),
    (GOOD.replace("9f86d081884c7d65", "9f86d081884c7d6x"), "node"),
    (GOOD + "\n", "node"),
    (GOOD.replace("-0000-", "-00000-"), "counter '00000'"),
    (GOOD.replace("-0000-", "-000G-"), "counter"),
    (GOOD.replace(".123Z", "Z"), "wall time"),
    (GOOD.replace(".123Z", ".123"), "wall time"),
    (GOOD.replace("T", " "), "wall time"),
    ("２０２６" + GOOD[4:], "wall time"),  # full-width digits would sort after every real timestamp
    (GOOD.replace("2026-11-27", "2026-02-30"), "no valid date"),
    (GOOD.replace("2026-11-27", "2026-13-01"), "no valid date"),
    (GOOD.replace("19:48", "24:48"), "no valid date"),
    (GOOD.replace("2026", "1969"), "out of range"),
    (GOOD.replace("2026", "0999"), "out of range"),
    ("", "joined by '-'"),
    ("yesterday", "joined by '-'"),
    (1764272880000, "must be a string, not int"),
    (None, "must be a string, not NoneType"),
    ([GOOD], "must be a string, not list"),
    (GOOD.encode(), "must be a string, not bytes"),
])
def test_parse_errors_name_the_problem(value, fragment):
    with pytest.raises(HLCError) as caught:
        HLC.parse(value)
    assert fragment in str(caught.value)
    assert not is_hlc(value)


def _parses(text: object) -> bool:
    """is_hlc the whole way: HLC's own parse, without its cache or the fast path."""
    if not isinstance(text, str):
        return False
    try:
        HLC._parse(text)
    except HLCError:
        return False
    return True


# A character of the form's alphabet, or one near it (full-width digits, upper-case hex, a newline).
_NEAR = st.sampled_from(list("0123456789abcdefABCDEFxz-:.TZ ２\n"))


@st.composite
def near_hlcs(draw):
    """A canonical HLC string with a few characters replaced, inserted or dropped (mostly not an HLC any more)."""
    text = list(str(draw(hlcs)))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(text)))
        edit = draw(st.sampled_from(["replace", "insert", "drop"]))
        if edit == "insert" or at == len(text):
            text.insert(at, draw(_NEAR))
        elif edit == "replace":
            text[at] = draw(_NEAR)
        else:
            del text[at]
    return "".join(text)


@given(near_hlcs() | st.text(max_size=60) | st.builds(lambda d, t: f"{d}T{t}Z-0000-{A}",
       st.text("0123456789-", min_size=10, max_size=10), st.text("0123456789:.", min_size=12, max_size=12)))
def test_is_hlc_fast_path_agrees_with_parse(text):
    """Law: the fast path of is_hlc accepts exactly what HLC.parse accepts (dates like 2026-02-30, hour 24 included)."""
    assert is_hlc(text) == _parses(text)


@pytest.mark.parametrize("text", [GOOD, GOOD.replace("2026-11-27", "2024-02-29"), GOOD.replace("2026", "1970"),
                                  GOOD.replace("2026-11-27T19:48:00.123", "9999-12-31T23:59:59.999")])
def test_is_hlc_accepts_the_edges_of_the_range(text):
    assert is_hlc(text) and _parses(text)


@pytest.mark.parametrize("args, fragment", [
    ((-1, 0, A), "wall time"),
    ((MAX_MS + 1, 0, A), "wall time"),
    ((0, -1, A), "counter"),
    ((0, MAX_COUNTER + 1, A), "counter"),
    ((0, 0, "abc"), "node"),
    ((0, 0, A.upper()), "node"),
])
def test_hlc_constructor_refuses_out_of_range_parts(args, fragment):
    with pytest.raises(HLCError, match=fragment):
        HLC(*args)


# --- drift --------------------------------------------------------------------------------------

def test_remote_too_far_ahead_raises_and_leaves_the_clock_alone():
    physical = FakePhysical(T0)
    clock = Clock(A, physical, max_drift_ms=60_000)
    before = clock.now()
    remote = HLC(T0 + 60_001, 0, B)
    with pytest.raises(ClockDriftError) as caught:
        clock.update(remote)
    assert caught.value.remote == remote
    assert caught.value.physical_ms == T0
    assert caught.value.max_drift_ms == 60_000
    assert "60001 ms ahead" in str(caught.value)
    assert clock.last == before
    assert clock.now() == HLC(T0, before.counter + 1, A)


def test_remote_given_as_string_too_far_ahead_carries_the_parsed_hlc():
    clock = Clock(A, FakePhysical(T0), max_drift_ms=1_000)
    with pytest.raises(ClockDriftError) as caught:
        clock.update(str(HLC(T0 + 5_000, 2, B)))
    assert caught.value.remote == HLC(T0 + 5_000, 2, B)


def test_remote_exactly_at_the_drift_limit_is_accepted():
    clock = Clock(A, FakePhysical(T0), max_drift_ms=60_000)
    assert clock.update(HLC(T0 + 60_000, 3, B)) == HLC(T0 + 60_000, 4, A)


def test_drift_is_measured_against_the_corrected_physical_clock():
    clock = Clock(A, FakePhysical(T0), max_drift_ms=1_000, offset_ms=-10_000)
    with pytest.raises(ClockDriftError) as caught:
        clock.update(HLC(T0, 0, B))
    assert caught.value.physical_ms == T0 - 10_000
    clock.offset_ms = -1_000
    assert clock.update(HLC(T0, 0, B)) == HLC(T0, 1, A)


def test_without_max_drift_any_remote_is_absorbed():
    clock = Clock(A, FakePhysical(T0))
    assert clock.update(HLC(T0 + 86_400_000, 0, B)) == HLC(T0 + 86_400_000, 1, A)


def test_check_drift_alone_uses_the_given_physical_time():
    clock = Clock(A, FakePhysical(0), max_drift_ms=100)
    clock.check_drift(HLC(T0 + 100, 0, B), physical_ms=T0)
    with pytest.raises(ClockDriftError):
        clock.check_drift(str(HLC(T0 + 101, 0, B)), physical_ms=T0)


def test_clock_drift_error_is_an_hlc_error():
    assert issubclass(ClockDriftError, HLCError)
    assert issubclass(HLCError, ValueError)


# --- properties over random histories -----------------------------------------------------------

operations = st.lists(
    st.one_of(
        st.tuples(st.just("advance"), st.integers(-3_000, 3_000)),
        st.tuples(st.just("offset"), st.integers(-2_000, 2_000)),
        st.tuples(st.just("now")),
        st.tuples(
            st.just("update"),
            st.integers(-5_000, 5_000),  # remote wall relative to the physical clock
            st.sampled_from([0, 1, MAX_COUNTER - 1, MAX_COUNTER]) | st.integers(0, MAX_COUNTER),
            st.sampled_from([A, B, C]),
        ),
    ),
    max_size=60,
)


@given(operations, st.sampled_from([None, 0, 2_000]))
def test_clock_is_monotonic_never_behind_physical_and_passes_what_it_absorbs(ops, max_drift_ms):
    physical = FakePhysical(T0)
    clock = Clock(A, physical, max_drift_ms=max_drift_ms)
    previous = clock.last
    for op in ops:
        if op[0] == "advance":
            physical.ms += op[1]
            continue
        if op[0] == "offset":
            clock.offset_ms = op[1]
            continue
        corrected = physical.ms + clock.offset_ms
        if op[0] == "now":
            got = clock.now()
        else:
            remote = HLC(corrected + op[1], op[2], op[3])
            try:
                got = clock.update(remote)
            except ClockDriftError as exc:
                assert max_drift_ms is not None and remote.wall_ms - corrected > max_drift_ms
                assert exc.physical_ms == corrected
                assert clock.last == previous
                continue
            assert max_drift_ms is None or remote.wall_ms - corrected <= max_drift_ms
            assert got > remote
        assert got > previous
        assert got.wall_ms >= corrected
        assert got.node == A
        assert clock.last == got
        previous = got


def test_rewind_steps_back_to_the_given_timestamp_and_offset():
    """rewind is the one way back: the next now() follows the rewound state, not the old one."""
    physical = [5_000]
    clock = Clock("a" * 16, lambda: physical[0])
    clock.update(HLC(9_000_000, 3, "b" * 16))
    clock.rewind(HLC(4_000, 2, "a" * 16), offset_ms=-100)
    assert clock.last == HLC(4_000, 2, "a" * 16)
    assert clock.now() == HLC(4_900, 0, "a" * 16)

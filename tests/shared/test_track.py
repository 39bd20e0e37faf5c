"""The packed track form: lossless up to its rounding, checked at the wire, and the rules points keep."""

from hypothesis import given, settings, strategies as st

from shared.records import ValidationError, load_change
from shared.track import (MAX_POINTS, MAX_SPEED_MPS, Point, distance_m, flags, length_m, pack, packed_error,
                          refusal, unpack)

START = 1_796_000_000_000


@st.composite
def tracks(draw, max_size=60):
    count = draw(st.integers(1, max_size))
    t, points = START, []
    for _ in range(count):
        t += draw(st.integers(0, 60_000))
        points.append(Point(t, draw(st.floats(-90, 90)), draw(st.floats(-180, 180)),
                            draw(st.none() | st.floats(0, 5000)), draw(st.none() | st.floats(0, 100))))
    return points


@settings(max_examples=100)  # each example is up to 60 points of five draws: 500 of them took a minute
@given(tracks())
def test_unpacking_gives_the_points_rounded_and_packing_them_again_gives_the_same_columns(points):
    packed = pack(points, START)
    assert packed_error(packed) is None
    again = unpack(packed, START)
    assert [p.at_ms for p in again] == [p.at_ms for p in points]
    for before, after in zip(points, again):
        assert abs(before.lat - after.lat) <= 5e-7 + 1e-12 and abs(before.lon - after.lon) <= 5e-7 + 1e-12
        assert (after.accuracy_m is None) == (before.accuracy_m is None)
        if before.accuracy_m is not None:
            assert before.accuracy_m <= after.accuracy_m <= before.accuracy_m + 1  # rounded up: never surer
    assert pack(again, START) == packed


def test_a_day_of_points_at_10_s_costs_about_20_bytes_a_point():
    import json
    points = [Point(START + i * 10_000, 31.23 + i * 1e-5, 121.47 - i * 7e-6, 8.0, 1.2) for i in range(MAX_POINTS)]
    size = len(json.dumps(pack(points, START), separators=(",", ":")))
    assert size / MAX_POINTS < 25, size / MAX_POINTS


def test_bad_columns_are_named():
    good = pack([Point(START, 31.2, 121.4, 5.0, None), Point(START + 10_000, 31.2001, 121.4, None, 1.0)], START)
    assert packed_error({**good, "t": [0, -1]}) == "t must not run backwards"
    assert "one length" in packed_error({**good, "lat": [1]})
    assert "integers" in packed_error({**good, "lon": [1.5, 2]})
    assert "outside" in packed_error({**good, "lat": [91_000_000, 0]})
    assert "acc" in packed_error({**good, "acc": [-1, None]})
    assert "speed" in packed_error({**good, "speed": [True, None]})
    assert "packed track" in packed_error({"t": [0]})
    assert "1 to" in packed_error({name: [] for name in good})


def _track_change(points):
    worker = "0190d1e4-0000-7000-8000-000000000001"
    hlc = "2026-12-06T08:00:00.000Z-0000-9f86d081884c7d65"
    return {"kind": "track", "id": "0190d1e4-0000-7000-8000-0000000000aa", "bucket": "grid:G-0101",
            "fields": {"patrol": ["0190d1e4-0000-7000-8000-0000000000bb", hlc], "worker": [worker, hlc],
                       "seq": [0, hlc], "start": ["2026-12-06T08:00:00.000Z", hlc], "points": [points, hlc]}}


def test_the_wire_takes_packed_points_and_names_what_is_wrong():
    good = pack([Point(START, 31.2, 121.4, 5.0, None)], START)
    assert load_change(_track_change(good)).kind == "track"
    try:
        load_change(_track_change({**good, "t": [-5]}))
    except ValidationError as exc:
        assert exc.messages == {"fields": {"points": ["t must not run backwards"]}}
    else:
        raise AssertionError("a backwards time passed the wire")


def test_flags_and_refusals():
    a = Point(START, 31.2, 121.4, 5.0)
    near = Point(START + 10_000, 31.2005, 121.4, 80.0)  # ~55 m in 10 s, poor fix
    jump = Point(START + 10_000, 31.3, 121.4, 5.0)  # ~11 km in 10 s
    future = Point(START + 3_600_000, 31.2, 121.4, 5.0)
    assert flags(a, near, START, 60_000) == {"poor_accuracy"}
    assert flags(a, jump, START, 60_000) == {"too_fast"}
    assert flags(a, future, START, 60_000) == {"future"}
    assert refusal([a, near], START, 60_000) is None
    assert "faster than" in refusal([a, jump], START, 60_000)
    assert "ahead of the server's clock" in refusal([a, future], START, 60_000)
    assert distance_m(a, jump) > MAX_SPEED_MPS * 10


def test_length_leaves_out_poor_fixes():
    a = Point(START, 31.2, 121.4, 5.0)
    b = Point(START + 10_000, 31.2009, 121.4, 5.0)  # ~100 m north
    wild = Point(START + 5_000, 31.25, 121.4, 900.0)
    assert abs(length_m([a, b]) - 100.0) < 1.0
    assert abs(length_m([a, wild, b]) - length_m([a, b])) < 1e-9

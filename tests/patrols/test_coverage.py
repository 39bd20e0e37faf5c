"""Coverage on hand-drawn grids and tracks with known answers, and against a plain-Python reading of the rule.

server/patrols/geometry.py: a grid's cells are the 50 m squares whose centre lies inside its
boundary; a cell is covered when its centre lies within 25 m of a good track point or of a leg
between two good points at most 2 minutes apart. Then the same on the store (server/patrols/coverage.py):
a day, a week (the union of its days), the cache and its signature, a grid without a boundary.
"""

from __future__ import annotations

import math
from hypothesis import given, settings, strategies as st

from server.patrols import geometry
from server.patrols.geometry import CELL_M, REACH_M, Projection, cells_of, covered
from shared.track import Point

LAT0, LON0 = 30.0, 120.0
P = Projection(LAT0, LON0)
T0 = 1_796_000_000_000


def deg(x: float, y: float) -> list[float]:
    """A [lon, lat] position x metres east and y metres north of (LAT0, LON0)."""
    lat, lon = P.latlon(x, y)
    return [lon, lat]


def polygon(*rings) -> dict:
    return {"type": "Polygon", "coordinates": [[deg(x, y) for x, y in ring] + [deg(*ring[0])] for ring in rings]}


SQUARE = polygon([(-100, -100), (100, -100), (100, 100), (-100, 100)])  # 200 m x 200 m: 16 cells


def track(*xy, every_ms: int = 10_000, accuracy: float | None = 5.0) -> list[Point]:
    points = []
    for n, (x, y) in enumerate(xy):
        lon, lat = deg(x, y)
        points.append(Point(T0 + n * every_ms, lat, lon, accuracy))
    return points


def line(x0, y0, x1, y1, step=10.0) -> list[tuple[float, float]]:
    """Points every `step` m from (x0, y0) to (x1, y1), walked at a fix every 10 s."""
    count = max(1, math.ceil(math.hypot(x1 - x0, y1 - y0) / step))
    return [(x0 + (x1 - x0) * n / count, y0 + (y1 - y0) * n / count) for n in range(count + 1)]


def centres(cells) -> set[tuple[int, int]]:
    return {(round(x), round(y)) for x, y in zip(cells.xs, cells.ys)}


def covered_centres(cells, tracks) -> set[tuple[int, int]]:
    flags = covered(cells, tracks)
    return {(round(x), round(y)) for x, y, hit in zip(cells.xs, cells.ys, flags) if hit}


def test_a_square_of_200_m_has_16_cells_centred_on_its_25_m_grid():
    cells = cells_of(SQUARE)
    assert cells.count == 16
    assert centres(cells) == {(x, y) for x in (-75, -25, 25, 75) for y in (-75, -25, 25, 75)}


def test_a_concave_grid_and_a_grid_with_a_hole_count_only_the_cells_inside():
    ell = polygon([(-100, -100), (100, -100), (100, 0), (0, 0), (0, 100), (-100, 100)])
    assert cells_of(ell).count == 12  # 16 less the north-east quarter's 4
    holed = polygon([(-100, -100), (100, -100), (100, 100), (-100, 100)], [(-50, -50), (50, -50), (50, 50), (-50, 50)])
    assert centres(cells_of(holed)) == centres(cells_of(SQUARE)) - {(-25, -25), (-25, 25), (25, -25), (25, 25)}


def test_no_boundary_no_cells():
    assert cells_of(None) is None
    assert cells_of({}) is None


def test_a_walk_along_one_row_of_centres_covers_that_row_only():
    cells = cells_of(SQUARE)
    walk = track(*line(-120, 30, 120, 30))  # 5 m north of the row y=25; 45 m from y=75, 55 m from y=-25
    assert covered_centres(cells, [walk]) == {(x, 25) for x in (-75, -25, 25, 75)}


def test_a_leg_covers_the_cells_it_passes_between_its_two_points():
    cells = cells_of(SQUARE)
    # Two fixes only, 100 s apart, at the square's west and east edges: the leg between them covers the row.
    walk = track((-110, -20), (110, -20), every_ms=100_000)
    assert covered_centres(cells, [walk]) == {(x, -25) for x in (-75, -25, 25, 75)}


def test_a_gap_longer_than_two_minutes_draws_no_leg():
    cells = cells_of(SQUARE)
    walk = track((-80, -70), (80, -70), every_ms=geometry.MAX_GAP_MS + 1_000)
    assert covered_centres(cells, [walk]) == {(-75, -75), (75, -75)}  # the two points' own cells only


def test_fixes_of_poor_accuracy_count_for_nothing():
    cells = cells_of(SQUARE)
    good = track(*line(-80, 75, 80, 75))
    poor = track(*line(-80, -75, 80, -75), accuracy=80.0)
    assert covered_centres(cells, [good, poor]) == {(x, 75) for x in (-75, -25, 25, 75)}
    unknown = track(*line(-80, -75, 80, -75), accuracy=None)  # no accuracy given: taken as good
    assert len(covered_centres(cells, [unknown])) == 4


def test_the_reach_is_25_m_from_the_centre():
    cells = cells_of(SQUARE)
    assert covered_centres(cells, [track((-75 - 24.9, -75))]) == {(-75, -75)}  # west of the square
    assert covered_centres(cells, [track((-75 - 25.1, -75))]) == set()
    diagonal = 25 / math.sqrt(2)
    assert covered_centres(cells, [track((-75 - diagonal + 0.1, -75 - diagonal + 0.1))]) == {(-75, -75)}
    assert covered_centres(cells, [track((-75 - diagonal - 0.1, -75 - diagonal - 0.1))]) == set()
    assert covered_centres(cells, [track((-50, -50))]) == set()  # 35 m from the four cells around it


def test_a_track_outside_the_grid_covers_what_it_passes_within_reach():
    cells = cells_of(SQUARE)
    outside = track(*line(-120, 110, 120, 110))  # 10 m outside the north edge: 35 m from the row y=75
    assert covered_centres(cells, [outside]) == set()
    edge = track(*line(-120, 95, 120, 95))
    assert covered_centres(cells, [edge]) == {(x, 75) for x in (-75, -25, 25, 75)}


def test_whole_square_swept_in_rows_50_m_apart_is_covered():
    cells = cells_of(SQUARE)
    path = []
    for n, y in enumerate((-75, -25, 25, 75)):
        path += line(-90, y, 90, y) if n % 2 == 0 else line(90, y, -90, y)
    flags = covered(cells, [track(*path)])
    assert flags.all()


def _plain(cells, tracks) -> set[tuple[int, int]]:
    """The rule read plainly: distance from each centre to each good point and each good leg."""

    def to_segment(px, py, ax, ay, bx, by):
        dx, dy = bx - ax, by - ay
        length = dx * dx + dy * dy
        t = 0.0 if length == 0 else max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / length))
        return math.hypot(px - (ax + t * dx), py - (ay + t * dy))

    parts = []
    for points in tracks:
        last = None
        for point in points:
            if point.accuracy_m is not None and point.accuracy_m > 50:
                continue
            here = P.xy(point.lat, point.lon)
            parts.append((*here, *here))
            if last is not None and point.at_ms - last[0] <= geometry.MAX_GAP_MS:
                parts.append((*last[1], *here))
            last = (point.at_ms, here)
    return {(round(x), round(y)) for x, y in zip(cells.xs, cells.ys)
            if any(to_segment(x, y, *part) <= REACH_M for part in parts)}


coordinate = st.floats(-150, 150, allow_nan=False)


@settings(max_examples=60)
@given(st.lists(st.tuples(coordinate, coordinate, st.sampled_from([5.0, 5.0, 5.0, 80.0]),
                          st.sampled_from([10_000, 10_000, 200_000])), min_size=1, max_size=25))
def test_coverage_equals_a_plain_reading_of_the_rule(fixes):
    cells = cells_of(SQUARE)
    at, points = T0, []
    for x, y, accuracy, gap in fixes:
        lon, lat = deg(x, y)
        points.append(Point(at, lat, lon, accuracy))
        at += gap
    found = covered_centres(cells, [points])
    plain = _plain(cells, [points])
    # Only a centre within a micrometre of the reach could differ (float rounding on either side).
    differing = found ^ plain
    assert not differing or all(
        abs(min(math.hypot(cx - px, cy - py) for px, py in [P.xy(p.lat, p.lon) for p in points]) - REACH_M) < 1e-3
        for cx, cy in differing), differing


def test_the_cells_bits_pack_and_unpack():
    import numpy as np

    flags = np.array([True, False, True, True, False, False, False, True, True, False, True])
    assert geometry.unpack_bits(geometry.pack_bits(flags), flags.size).tolist() == flags.tolist()


def test_the_projection_is_exact_to_centimetres_at_grid_scale():
    from shared.track import distance_m

    projection = Projection(22.54, 114.06)
    a, b = Point(0, 22.54, 114.06), Point(0, 22.555, 114.075)  # about 2.3 km apart
    ax, ay = projection.xy(a.lat, a.lon)
    bx, by = projection.xy(b.lat, b.lon)
    assert abs(math.hypot(bx - ax, by - ay) - distance_m(a, b)) < 0.5


def test_cell_size_and_reach_are_as_documented():
    assert (CELL_M, REACH_M, geometry.MAX_GAP_MS) == (50.0, 25.0, 120_000)

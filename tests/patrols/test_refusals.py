"""What the server refuses of a pushed track batch (server/patrols/checks.py, asked by server/sync/apply.py).

A point ahead of the server's clock by more than the HLC drift limit, a jump faster than the
contract's speed limit (shared/track.py ``refusal``), and a point more than 50 km outside the box of
the grid's boundary (when the grid has one) each refuse the whole batch, code ``bad_track``, with
the reason; nothing of it is stored. On both engines, through the sync API as a tablet pushes.
"""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import func, select

from server.clock import server_clock
from server.db import db
from server.models import Record
from server.patrols.checks import FAR_OUTSIDE_M
from shared.hlc import format_ms
from shared.records import uuid7
from shared.track import MAX_SPEED_MPS, Point, pack

from .conftest import Tablet, box_polygon, set_boundary, user, walk

KM_LAT = 1 / 111.195  # degrees of latitude in a km


def _changes(tablet: Tablet, worker: str, points: list[Point], grid: str = "G-0101",
             patrol_id: str | None = None) -> list[dict]:
    """A new patrol (unless given) and one track record of the points, as the tablet pushes them."""
    hlc = tablet.hlc()
    changes = []
    if patrol_id is None:
        patrol_id = uuid7(points[0].at_ms, secrets.token_bytes(10))
        changes.append({"kind": "patrol", "id": patrol_id, "bucket": f"grid:{grid}", "fields": {
            "grid": [grid, hlc], "worker": [worker, hlc], "started_at": [format_ms(points[0].at_ms), hlc]}})
    changes.append({"kind": "track", "id": uuid7(points[0].at_ms, secrets.token_bytes(10)), "bucket": f"grid:{grid}",
                    "fields": {"patrol": [patrol_id, hlc], "worker": [worker, hlc], "seq": [0, hlc],
                               "start": [format_ms(points[0].at_ms), hlc],
                               "points": [pack(points, points[0].at_ms), hlc]}})
    return changes


def _tracks() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(Record).where(Record.kind == "track"))


@pytest.fixture
def tablet(pages):
    return Tablet(pages, "worker1")


def test_a_good_track_is_applied_and_pulled(tablet):
    now = server_clock().physical_ms()
    points = walk(now - 600_000, (22.5420, 114.0560), (22.5440, 114.0590), 60)
    results = tablet.push(*_changes(tablet, user("worker1").id, points))
    assert [r["status"] for r in results] == ["applied", "applied"], results
    assert _tracks() == 1
    again = tablet.push(*_changes(tablet, user("worker1").id, points, patrol_id=results[0]["id"]))
    assert again[0]["status"] == "applied"  # a second batch of the same patrol


def test_a_point_ahead_of_the_clock_beyond_the_drift_limit_refuses_the_batch(tablet, app):
    drift_ms = app.config["GRIDPATROL_MAX_DRIFT_SECONDS"] * 1000
    now = server_clock().physical_ms()
    points = walk(now - 60_000, (22.5420, 114.0560), (22.5421, 114.0561), 5)
    points.append(Point(now + drift_ms + 120_000, 22.5421, 114.0561, 5.0))
    patrol, track = tablet.push(*_changes(tablet, user("worker1").id, points))
    assert patrol["status"] == "applied"
    assert track["status"] == "rejected" and track["code"] == "bad_track"
    assert "point 5" in track["reason"] and "ahead of the server's clock" in track["reason"]
    assert _tracks() == 0
    # Within the limit it passes: a tablet whose clock runs a little ahead.
    near = points[:-1] + [Point(now + drift_ms - 60_000, 22.5421, 114.0561, 5.0)]
    _patrol, track = tablet.push(*_changes(tablet, user("worker1").id, near))
    assert track["status"] == "applied", track


def test_a_jump_faster_than_the_speed_limit_refuses_the_batch(tablet):
    now = server_clock().physical_ms()
    points = walk(now - 600_000, (22.5420, 114.0560), (22.5440, 114.0590), 20)
    far = points[9]._replace(lat=points[9].lat + 2 * KM_LAT)  # 2 km in 10 s: 200 m/s
    points[9] = far
    _patrol, track = tablet.push(*_changes(tablet, user("worker1").id, points))
    assert track["status"] == "rejected" and track["code"] == "bad_track"
    assert f"faster than {MAX_SPEED_MPS:g} m/s" in track["reason"]
    assert _tracks() == 0


def test_a_point_far_outside_the_grids_boundary_refuses_the_batch(tablet):
    set_boundary("G-0101", box_polygon())
    now = server_clock().physical_ms()
    north = 22.5455  # the box's north edge
    # 49 km north of the box: a long way out, but within the limit.
    near = walk(now - 7_200_000, (north + 49 * KM_LAT, 114.0575), (north + 49 * KM_LAT, 114.0576), 3)
    _patrol, track = tablet.push(*_changes(tablet, user("worker1").id, near))
    assert track["status"] == "applied", track
    # 51 km north: refused, with the reason.
    far = walk(now - 3_600_000, (north + 51 * KM_LAT, 114.0575), (north + 51 * KM_LAT, 114.0576), 3)
    _patrol, track = tablet.push(*_changes(tablet, user("worker1").id, far))
    assert track["status"] == "rejected" and track["code"] == "bad_track"
    assert f"more than {FAR_OUTSIDE_M / 1000:g} km outside the boundary of grid G-0101" in track["reason"]
    # Latitude and longitude swapped: thousands of km off.
    swapped = [Point(now - 60_000, 114.0575 - 90, 22.5431, 5.0)]
    _patrol, track = tablet.push(*_changes(tablet, user("worker1").id, swapped))
    assert track["status"] == "rejected" and track["code"] == "bad_track"
    assert _tracks() == 1


def test_a_grid_without_a_boundary_takes_any_position(tablet):
    set_boundary("G-0101", None)
    now = server_clock().physical_ms()
    points = walk(now - 60_000, (31.2304, 121.4737), (31.2305, 121.4738), 3)  # Shanghai, far from the demo
    _patrol, track = tablet.push(*_changes(tablet, user("worker1").id, points))
    assert track["status"] == "applied", track


def test_a_replayed_track_is_stale_not_judged_again(tablet):
    now = server_clock().physical_ms()
    points = walk(now - 60_000, (22.5420, 114.0560), (22.5421, 114.0561), 3)
    changes = _changes(tablet, user("worker1").id, points)
    assert [r["status"] for r in tablet.push(*changes)] == ["applied", "applied"]
    set_boundary("G-0101", box_polygon((10.0, 10.0, 10.1, 10.1)))  # the outline moved far away since
    assert [r["status"] for r in tablet.push(*changes)] == ["stale", "stale"]

"""Helpers for the patrol tests: the page fixtures of tests/pages, a tablet on the sync API, patrols and tracks."""

from __future__ import annotations

import secrets

import pytest

from server.admin import demo as demo_data
from server.clock import server_clock
from server.db import db
from server.models import Record
from server.sync import apply
from shared.hlc import format_ms
from shared.records import uuid7
from shared.track import Point, pack

from ..houses.conftest import Tablet  # noqa: F401 (used by the tests)
from ..pages.conftest import FreshContextClient, csrf_token, log_in, pages, user  # noqa: F401 (fixtures)

# A 600 m x 500 m box around the demo's G-0101 events (22.5431, 114.0579).
BOX = (22.5410, 114.0545, 22.5455, 114.0605)  # south, west, north, east


def box_polygon(box=BOX) -> dict:
    """A GeoJSON Polygon of a (south, west, north, east) box."""
    south, west, north, east = box
    return {"type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north], [west, north],
                                                [west, south]]]}


def set_boundary(grid: str, boundary: dict | None) -> None:
    """Give a demo grid an outline (or take it away), as an admin's edit would."""
    results = apply.write_as_server([apply.stamp("grid", demo_data.ref_id("grid", grid), {"boundary": boundary})])
    assert results[0].status in ("applied", "stale"), results


def walk(start_ms: int, start: tuple[float, float], end: tuple[float, float], count: int, every_ms: int = 10_000,
         accuracy: float | None = 6.0) -> list[Point]:
    """count fixes every every_ms on the straight line from start to end (lat, lon)."""
    return [Point(start_ms + n * every_ms, start[0] + (end[0] - start[0]) * n / max(1, count - 1),
                  start[1] + (end[1] - start[1]) * n / max(1, count - 1), accuracy, 1.2) for n in range(count)]


def write_patrol(username: str, grid: str, points: list[Point], *, ended: bool = True, batch: int = 1000) -> str:
    """A patrol with its track records, written by the server as if synced from the worker's tablet; its id."""
    worker = user(username).id
    start, end = points[0].at_ms, points[-1].at_ms
    patrol_id = uuid7(start, secrets.token_bytes(10))
    values = {"grid": grid, "worker": worker, "started_at": format_ms(start)}
    if ended:
        values.update(ended_at=format_ms(end), closed_by="worker")
    changes = [apply.stamp("patrol", patrol_id, values)]
    for seq, at in enumerate(range(0, len(points), batch)):
        part = points[at:at + batch]
        changes.append(apply.stamp("track", uuid7(part[0].at_ms, secrets.token_bytes(10)), {
            "patrol": patrol_id, "worker": worker, "seq": seq, "start": format_ms(part[0].at_ms),
            "points": pack(part, part[0].at_ms)}, bucket=f"grid:{grid}"))
    results = apply.write_as_server(changes)
    assert all(r.status == "applied" for r in results), results
    return patrol_id


def write_point(grid: str, name: str, lat: float, lon: float, radius_m: int = 30, every_hours: int = 24) -> str:
    """A fixed point, written by the server; its id."""
    point_id = uuid7(server_clock().physical_ms(), secrets.token_bytes(10))
    results = apply.write_as_server([apply.stamp("fixed_point", point_id, {
        "grid": grid, "name": name, "radius_m": radius_m, "every_hours": every_hours,
        "location": {"lat": lat, "lon": lon, "accuracy_m": None, "source": "manual"}})])
    assert results[0].status == "applied", results
    return point_id


def write_visit(point_id: str, username: str, at_ms: int, patrol: str | None = None) -> str:
    """A visit of a fixed point (method track), written by the server; its id."""
    record = db.session.get(Record, point_id)
    visit_id = uuid7(at_ms, secrets.token_bytes(10))
    values = {"point": point_id, "worker": user(username).id, "visited_at": format_ms(at_ms), "method": "track"}
    if patrol:
        values["patrol"] = patrol
    results = apply.write_as_server([apply.stamp("point_visit", visit_id, values, bucket=record.bucket)])
    assert results[0].status == "applied", results
    return visit_id


@pytest.fixture
def supervisor(pages):
    """The page client, logged in as supervisor1."""
    log_in(pages, "supervisor1")
    return pages

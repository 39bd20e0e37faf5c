"""The demo's patrols: grid outlines, fixed points, a day of simulated patrols with tracks, visits, events, plans.

Called by server/admin/demo.py when it loads the whole demo (``flask demo load``, so ``make run``),
after the users and the other samples. Five of the six demo grids get an outline (G-0302 keeps none,
so the coverage page shows "no boundary, no coverage"); each gets two or three fixed points. Each
demo worker walked one patrol in the hours before the load and one the day before, in their grid,
at a walker's pace with a fix every 10 s (a few fixes of poor accuracy among them), sent as packed
``track`` records of up to 360 points; the tablet's ``point_visit`` records are made where a track
passed within a point's radius (one point of each grid is left unvisited). A few closed events of the
past weeks in G-0102 give its plan some history; then every grid's plan is written.
"""

from __future__ import annotations

import math
import random
import secrets
import uuid
from datetime import datetime

from flask import current_app

from shared.hlc import HLC, format_ms
from shared.records import KINDS, load_change, uuid7
from shared.track import Point, distance_m, length_m, pack

from ..clock import server_clock
from ..config import parse_offset
from ..models import User
from ..sync import apply
from . import plan

NAMESPACE = uuid.UUID("5d1e7c0b-9a8f-4f0e-8b3c-1e2d3c4b5a69")
# Outlines: (south, west, north, east) boxes with one corner cut, lon/lat rings.
BOXES = {
    "G-0101": (22.5410, 114.0545, 22.5455, 114.0605),
    "G-0102": (22.5410, 114.0605, 22.5455, 114.0665),
    "G-0201": (22.5455, 114.0605, 22.5520, 114.0680),
    "G-0202": (22.5455, 114.0530, 22.5520, 114.0605),
    "G-0301": (22.5350, 114.0545, 22.5410, 114.0620),
}
FIXED_POINTS = {  # grid: (name, English name, lat, lon, radius m, every hours)
    "G-0101": [("东湖路口", "Donghu crossing", 22.5436, 114.0590, 30, 24),
               ("3栋楼道", "Building 3 stairwell", 22.5431, 114.0579, 25, 12),
               ("东湖村12号", "No. 12 Donghu village", 22.5418, 114.0560, 30, 24)],
    "G-0102": [("东湖菜市场", "Donghu market", 22.5432, 114.0630, 40, 24),
               ("东湖路88号", "No. 88 Donghu road", 22.5445, 114.0650, 30, 168)],
    "G-0201": [("青石村5巷", "Qingshi lane 5", 22.5502, 114.0651, 30, 24),
               ("青石小学门口", "Qingshi school gate", 22.5470, 114.0620, 40, 12),
               ("青石河堤", "Qingshi riverbank", 22.5512, 114.0670, 50, 168)],
    "G-0202": [("青石公园", "Qingshi park", 22.5490, 114.0560, 50, 24)],
    "G-0301": [("西山地铁口", "Xishan metro exit", 22.5380, 114.0580, 40, 24)],
    "G-0302": [("西山卫生站", "Xishan clinic", 22.5330, 114.0650, 30, 24)],
}
PATROLS = [  # worker, grid, starts hours before the load, lasts hours, sweep (rows or columns), days before
    ("worker1", "G-0101", 3.5, 2.0, "rows", 0),
    ("worker2", "G-0101", 5.0, 1.5, "columns", 0),
    ("worker3", "G-0201", 4.0, 2.0, "rows", 0),
    ("worker1", "G-0101", 28.0, 1.5, "columns", 1),
    ("worker3", "G-0201", 27.0, 1.5, "columns", 1),
]
SPEED_MPS = 1.2
EVERY_MS = 10_000
BATCH = 360
POINTS_SET_DAYS = 3
HISTORY = [(19, 2), (20, 3), (8, 1), (21, 1)]  # G-0102's past events: (hour, events a week)


def _stamp_at(ms: int, kind: str, record_id: str, values: dict):
    """A server change stamped at an earlier time (the server's node), as if written then."""
    hlc = str(HLC(ms, 0, server_clock().node))
    return load_change({"kind": kind, "id": record_id, "bucket": KINDS[kind].bucket_of(values),
                        "fields": {name: [value, hlc] for name, value in values.items()}})


def demo_id(kind: str, key: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{kind}:{key}"))


def _ring(box) -> list[list[float]]:
    south, west, north, east = box
    cut_lat, cut_lon = south + (north - south) * 0.25, east - (east - west) * 0.2
    return [[west, south], [cut_lon, south], [east, cut_lat], [east, north], [west, north], [west, south]]


def _sweep(box, how: str, spacing_m: float = 110.0) -> list[tuple[float, float]]:
    """Waypoints (lat, lon) of a lawnmower walk across the box, 40 m inside its edges."""
    south, west, north, east = box
    m_lat = 111_195.0
    m_lon = m_lat * math.cos(math.radians((south + north) / 2))
    inset_lat, inset_lon = 40 / m_lat, 40 / m_lon
    s, w, n, e = south + inset_lat, west + inset_lon, north - inset_lat, east - inset_lon
    points = []
    if how == "rows":
        rows = max(2, int((n - s) * m_lat / spacing_m) + 1)
        for i in range(rows):
            lat = s + (n - s) * i / (rows - 1)
            points += [(lat, w), (lat, e)] if i % 2 == 0 else [(lat, e), (lat, w)]
    else:
        columns = max(2, int((e - w) * m_lon / spacing_m) + 1)
        for i in range(columns):
            lon = w + (e - w) * i / (columns - 1)
            points += [(s, lon), (n, lon)] if i % 2 == 0 else [(n, lon), (s, lon)]
    return points


def _walk(waypoints, start_ms: int, duration_ms: int, rng: random.Random) -> list[Point]:
    """Fixes every EVERY_MS along the waypoints (round and round) at SPEED_MPS, jittered; a few poor ones."""
    legs = [(a, b, distance_m(Point(0, *a), Point(0, *b))) for a, b in zip(waypoints, waypoints[1:])]
    legs += [(waypoints[-1], waypoints[0], distance_m(Point(0, *waypoints[-1]), Point(0, *waypoints[0])))]
    total = sum(length for _a, _b, length in legs)
    points = []
    for n in range(duration_ms // EVERY_MS + 1):
        along = (n * EVERY_MS / 1000 * SPEED_MPS) % total
        for a, b, length in legs:
            if along <= length:
                f = along / length if length else 0.0
                lat, lon = a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f
                break
            along -= length
        poor = n % 97 == 50
        jitter = 0.0004 if poor else 0.00002
        points.append(Point(start_ms + n * EVERY_MS, lat + rng.uniform(-jitter, jitter),
                            lon + rng.uniform(-jitter, jitter), 80.0 if poor else float(rng.randint(4, 12)),
                            round(SPEED_MPS + rng.uniform(-0.3, 0.3), 1)))
    return points


def changes(users: dict[str, User], now_ms: int) -> list:
    """Every demo change: outlines, fixed points, patrols, tracks, visits, events on the way, G-0102's history."""
    rng = random.Random(17)
    found = []
    for code, box in BOXES.items():
        found.append(apply.stamp("grid", _grid_id(code), {"boundary": {"type": "Polygon", "coordinates": [_ring(box)]}}))
    point_ids = {}
    for code, points in FIXED_POINTS.items():
        for name, name_en, lat, lon, radius, every in points:
            point_ids[(code, name)] = demo_id("fixed_point", f"{code}:{name}")
            # Set three days before the load, so that the days shown have their windows due.
            found.append(_stamp_at(now_ms - POINTS_SET_DAYS * 86_400_000, "fixed_point", point_ids[(code, name)], {
                "grid": code, "name": name, "name_en": name_en, "radius_m": radius, "every_hours": every,
                "location": {"lat": lat, "lon": lon, "accuracy_m": None, "source": "manual"}}))
    for n, (username, code, before_h, hours, how, _days) in enumerate(PATROLS):
        worker = users[username].id
        start = now_ms - int(before_h * 3_600_000)
        end = start + int(hours * 3_600_000)
        patrol_id = uuid7(start, secrets.token_bytes(10))
        bucket = f"grid:{code}"
        points = _walk(_sweep(BOXES[code], how), start, end - start, rng)
        found.append(apply.stamp("patrol", patrol_id, {
            "grid": code, "worker": worker, "started_at": format_ms(start), "ended_at": format_ms(end),
            "distance_m": round(length_m(points), 1), "closed_by": "worker"}))
        for seq, at in enumerate(range(0, len(points), BATCH)):
            batch = points[at:at + BATCH]
            found.append(apply.stamp("track", uuid7(batch[0].at_ms, secrets.token_bytes(10)), {
                "patrol": patrol_id, "worker": worker, "seq": seq, "start": format_ms(batch[0].at_ms),
                "points": pack(batch, batch[0].at_ms)}, bucket=bucket))
        skipped = FIXED_POINTS[code][-1][0] if n % 2 == 0 else None  # one point of the grid left unvisited
        for name, _en, lat, lon, radius, _every in FIXED_POINTS[code]:
            if name == skipped:
                continue
            here = Point(0, lat, lon)
            near = next((p for p in points if p.accuracy_m <= 50 and distance_m(p, here) <= radius), None)
            if near is not None:
                found.append(apply.stamp("point_visit", uuid7(near.at_ms, secrets.token_bytes(10)), {
                    "point": point_ids[(code, name)], "worker": worker, "visited_at": format_ms(near.at_ms),
                    "method": "track", "patrol": patrol_id,
                    "location": {"lat": near.lat, "lon": near.lon, "accuracy_m": near.accuracy_m, "source": "gps"}},
                    bucket=bucket))
        if n == 0:  # an event reported on worker1's patrol, naming it
            at = points[len(points) // 3]
            found.append(apply.stamp("event", uuid7(at.at_ms, secrets.token_bytes(10)), {
                "grid": code, "category": "illegal_parking", "description": "巡查发现消防通道口车辆乱停放",
                "urgent": False, "micro": True, "photos": [], "reporter": worker, "patrol": patrol_id,
                "reported_at": format_ms(at.at_ms),
                "location": {"lat": at.lat, "lon": at.lon, "accuracy_m": at.accuracy_m, "source": "gps"}}))
    found += _history(users, now_ms, rng)
    return found


def _history(users: dict[str, User], now_ms: int, rng: random.Random) -> list:
    """G-0102's closed events of the past 8 weeks, mostly in the evening: its plan has a rhythm to follow."""
    zone = parse_offset(current_app.config["GRIDPATROL_UTC_OFFSET"])
    today = datetime.fromtimestamp(now_ms / 1000, zone).replace(hour=0, minute=0, second=0, microsecond=0)
    found = []
    for week in range(1, 9):
        for hour, count in HISTORY:
            for k in range(count):
                day = today.replace(hour=hour, minute=rng.randint(0, 59)).timestamp() - (week * 7 - k * 2) * 86_400
                at = int(day * 1000)
                event_id = uuid7(at, secrets.token_bytes(10))
                found.append(apply.stamp("event", event_id, {
                    "grid": "G-0102", "category": rng.choice(["street_vendor", "garbage", "illegal_parking"]),
                    "description": "夜间巡查发现（示例历史）", "urgent": False, "micro": True, "photos": [],
                    "reporter": users["worker2"].id, "reported_at": format_ms(at),
                    "location": {"lat": 22.5432 + rng.uniform(-0.001, 0.001), "lon": 114.0635 + rng.uniform(-0.002, 0.002),
                                 "accuracy_m": 8.0, "source": "gps"}}))
                found.append(apply.stamp("case_action", uuid7(at + 3_600_000, secrets.token_bytes(10)), {
                    "event": event_id, "action": "close", "actor": users["supervisor1"].id,
                    "note": "已现场处理"}, bucket="grid:G-0102"))
    return found


def _grid_id(code: str) -> str:
    from ..admin.demo import ref_id

    return ref_id("grid", code)


def load(users: dict[str, User]) -> None:
    """Add the demo's patrols to a store that holds the demo (its grids and users), then write every grid's plan."""
    now_ms = server_clock().physical_ms()
    results = apply.write_as_server(changes(users, now_ms))
    refused = [r for r in results if r.status == "rejected"]
    if refused:
        raise RuntimeError(f"demo patrol change refused: {refused[0].reason}")
    zone = parse_offset(current_app.config["GRIDPATROL_UTC_OFFSET"])
    plan.write_plans(sorted(set(BOXES) | set(FIXED_POINTS)), datetime.fromtimestamp(now_ms / 1000, zone).date(),
                     zone, now_ms)

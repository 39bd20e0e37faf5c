"""A patrol's track: points packed by columns for the wire and the store, and the rules points keep.

A worker's day at one point every 10 s is about 3,000 points. Sent as records of one point each,
the record's envelope (kind, id, bucket, an HLC per field) would cost more than the points. So a
tablet sends a patrol's points in ``track`` records (shared/records.py) of up to `MAX_POINTS`
points, packed by columns::

    {"t":     [0, 10012, 9988, ...],   ms after the record's ``start``: the first from start, each
                                       next one from the point before (never negative)
     "lat":   [31230416, -41, 12, ...] micro-degrees (1e-6 degree, about 0.11 m): the first whole,
     "lon":   [121473701, 35, -8, ...]  each next one as its difference from the point before
     "acc":   [8, 12, null, ...],      the fix's horizontal accuracy in whole metres, rounded up;
                                       null where the fix gave none
     "speed": [14, null, ...]}         the speed the GPS reported, in 0.1 m/s; null where none

Differences of neighbouring points are small numbers, so a point costs about 20 bytes of JSON
instead of the 80 or so of ``{"lat": 31.230416, "lon": 121.473701, "at": "…Z", ...}``, and the
form stays plain JSON (readable in the store, a jsonb column in PostgreSQL, no codec to install).
Positions are kept to 1e-6 degree: `pack` rounds, so ``unpack(pack(points))`` gives the points
rounded, and packing those again gives the same record (tests/shared/test_track.py proves both).

What the points must keep (`packed_error`, checked at the wire; `refusal`, by the server against
its clock): the columns have one length; times never run backwards; every position is a position.
A batch with a point beyond the clock-drift limit or a jump faster than `MAX_SPEED_MPS` is refused
with the reason. The tablet flags such points (`flags`) and keeps them, but does not send them;
a point of poor accuracy is sent and marked (`POOR_ACCURACY_M`), never dropped.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, NamedTuple, Sequence

__all__ = [
    "Point", "MAX_POINTS", "POOR_ACCURACY_M", "MAX_SPEED_MPS", "COLUMNS", "pack", "unpack", "packed_error",
    "distance_m", "length_m", "flags", "refusal", "SENDABLE",
]

MAX_POINTS = 1000
POOR_ACCURACY_M = 50.0  # a fix less sure than this is kept and marked "poor accuracy"
MAX_SPEED_MPS = 70.0  # 252 km/h: faster than anything a worker rides; a jump beyond is a bad fix
COLUMNS = ("t", "lat", "lon", "acc", "speed")
_MICRO = 1_000_000
_MAX_SPAN_MS = 7 * 24 * 3600 * 1000  # a batch spans at most a week
_EARTH_RADIUS_M = 6_371_008.8
# The flags that keep a point on the tablet; the others are sent with it.
SENDABLE = frozenset({"poor_accuracy"})


class Point(NamedTuple):
    """One fix: when (Unix ms), where (degrees), how sure (metres) and how fast (m/s), as the GPS said."""

    at_ms: int
    lat: float
    lon: float
    accuracy_m: float | None = None
    speed_mps: float | None = None


def _int(value: Any) -> bool:
    return type(value) is int


def pack(points: Sequence[Point], start_ms: int) -> dict[str, list]:
    """The packed columns of points (in time order, 1 to MAX_POINTS, none before start_ms)."""
    if not 1 <= len(points) <= MAX_POINTS:
        raise ValueError(f"a track record holds 1 to {MAX_POINTS} points, not {len(points)}")
    columns: dict[str, list] = {name: [] for name in COLUMNS}
    last_t, last_lat, last_lon = start_ms, 0, 0
    for point in points:
        lat, lon = round(point.lat * _MICRO), round(point.lon * _MICRO)
        if point.at_ms < last_t:
            raise ValueError("points must be in time order, none before the record's start")
        columns["t"].append(point.at_ms - last_t)
        columns["lat"].append(lat - last_lat)
        columns["lon"].append(lon - last_lon)
        columns["acc"].append(None if point.accuracy_m is None else math.ceil(point.accuracy_m))
        columns["speed"].append(None if point.speed_mps is None else round(point.speed_mps * 10))
        last_t, last_lat, last_lon = point.at_ms, lat, lon
    return columns


def unpack(packed: dict[str, list], start_ms: int) -> list[Point]:
    """The points of packed columns (which `packed_error` has passed)."""
    points = []
    t, lat, lon = start_ms, 0, 0
    for dt, dlat, dlon, acc, speed in zip(*(packed[name] for name in COLUMNS)):
        t, lat, lon = t + dt, lat + dlat, lon + dlon
        points.append(Point(t, lat / _MICRO, lon / _MICRO, None if acc is None else float(acc),
                            None if speed is None else speed / 10))
    return points


def packed_error(value: Any) -> str | None:
    """Why a value is not packed track columns; None when it is."""
    if not isinstance(value, dict) or set(value) != set(COLUMNS):
        return "must be packed track columns {t, lat, lon, acc, speed} (shared/track.py)"
    lengths = {len(column) if isinstance(column, list) else -1 for column in value.values()}
    if len(lengths) != 1 or -1 in lengths:
        return "the columns t, lat, lon, acc and speed must be lists of one length"
    count = lengths.pop()
    if not 1 <= count <= MAX_POINTS:
        return f"a track record holds 1 to {MAX_POINTS} points"
    span = lat = lon = 0
    for dt, dlat, dlon, acc, speed in zip(*(value[name] for name in COLUMNS)):
        if not (_int(dt) and _int(dlat) and _int(dlon)):
            return "t, lat and lon must be integers"
        if dt < 0:
            return "t must not run backwards"
        span, lat, lon = span + dt, lat + dlat, lon + dlon
        if not (-90 * _MICRO <= lat <= 90 * _MICRO and -180 * _MICRO <= lon <= 180 * _MICRO):
            return "a position is outside -90..90, -180..180 degrees"
        if acc is not None and not (_int(acc) and 0 <= acc <= 1_000_000):
            return "acc must be whole metres, 0 to 1,000,000, or null"
        if speed is not None and not (_int(speed) and 0 <= speed <= 100_000):
            return "speed must be in 0.1 m/s, 0 to 100,000, or null"
    if span > _MAX_SPAN_MS:
        return "a track record spans at most a week"
    return None


def distance_m(a: Point, b: Point) -> float:
    """The great-circle distance between two points, in metres (haversine)."""
    phi1, phi2 = math.radians(a.lat), math.radians(b.lat)
    dphi, dlambda = phi2 - phi1, math.radians(b.lon - a.lon)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * _EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def length_m(points: Iterable[Point], *, skip_poor: bool = True) -> float:
    """A track's length: the sum of its legs, leaving out fixes of poor accuracy (they zigzag)."""
    total, last = 0.0, None
    for point in points:
        if skip_poor and point.accuracy_m is not None and point.accuracy_m > POOR_ACCURACY_M:
            continue
        if last is not None:
            total += distance_m(last, point)
        last = point
    return total


def _too_fast(previous: Point | None, point: Point) -> bool:
    if previous is None:
        return False
    seconds = (point.at_ms - previous.at_ms) / 1000
    metres = distance_m(previous, point)
    return metres > MAX_SPEED_MPS * max(seconds, 1.0)


def flags(previous: Point | None, point: Point, now_ms: int, max_drift_ms: int) -> frozenset[str]:
    """What is wrong with a point, given the last good one before it: ``poor_accuracy``, ``future``, ``too_fast``.

    Only ``poor_accuracy`` points are sent (`SENDABLE`); the others stay on the tablet, flagged.
    """
    found = set()
    if point.accuracy_m is not None and point.accuracy_m > POOR_ACCURACY_M:
        found.add("poor_accuracy")
    if point.at_ms > now_ms + max_drift_ms:
        found.add("future")
    if _too_fast(previous, point):
        found.add("too_fast")
    return frozenset(found)


def refusal(points: Sequence[Point], now_ms: int, max_drift_ms: int) -> str | None:
    """Why the server refuses a batch of points: a point beyond the drift limit, or an impossible jump."""
    previous = None
    for index, point in enumerate(points):
        if point.at_ms > now_ms + max_drift_ms:
            return f"point {index} is {point.at_ms - now_ms} ms ahead of the server's clock; at most {max_drift_ms} ms is allowed"
        if _too_fast(previous, point):
            return f"point {index} is a jump faster than {MAX_SPEED_MPS:g} m/s from the point before"
        previous = point
    return None

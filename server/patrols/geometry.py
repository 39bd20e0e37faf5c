"""Geometry at grid scale: a local metric projection, a grid's 50 m cells, and which cells a track passed near.

**The projection.** Positions are WGS 84 degrees; distances and cells are computed in metres on an
equirectangular projection centred on the grid (the centre of its boundary's box):
``x = R·Δλ·cos φ0``, ``y = R·Δφ``. At grid scale that is as good as any: the scale along x drifts
with cos φ, so over 2.5 km north or south of the centre at 30° latitude it is off by 0.02 %
(tan φ0·Δφ), 0.5 m on a 2.5 km grid, and at 50 km by 0.5 %; nothing here needs better.

**Cells.** A grid's cells are the squares of ``CELL_M`` (50 m) laid from the south-west corner of its
boundary's box whose centre lies inside the boundary polygon (holes excluded). A grid without a
boundary has no cells, and so no coverage.

**Coverage.** A cell is covered when its centre lies within ``REACH_M`` (25 m) of a good track point
or of a leg between two good points that follow each other in one patrol. Good: not of poor
accuracy (shared/track.py, ``POOR_ACCURACY_M``: such fixes zigzag). A leg between points more than
``MAX_GAP_MS`` (2 minutes) apart is not drawn: the worker was out of fix, and a straight line
between the two would claim streets nobody walked. The distance is exact (GEOS ``dwithin`` on the
projected legs), not a buffered polygon's approximation of it.

shapely (already a server dependency for the boundaries' check, server/admin/service.py) does the
point-in-polygon and the distances, vectorised over the cells with numpy.
tests/patrols/test_coverage.py holds them to a plain-Python reading of these rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, NamedTuple, Sequence

import numpy as np
import shapely

from shared.track import POOR_ACCURACY_M, Point

EARTH_RADIUS_M = 6_371_008.8  # as shared/track.py's haversine
CELL_M = 50.0
REACH_M = 25.0
MAX_GAP_MS = 120_000
MAX_CELLS = 1_000_000  # a boundary of more than 2,500 km² is no grid: no cells rather than a memory blow-up
_M_PER_DEGREE = EARTH_RADIUS_M * math.pi / 180


class Projection:
    """The equirectangular projection around (lat0, lon0): degrees to metres east (x) and north (y)."""

    def __init__(self, lat0: float, lon0: float):
        self.lat0, self.lon0 = lat0, lon0
        self.kx = _M_PER_DEGREE * math.cos(math.radians(lat0))
        self.ky = _M_PER_DEGREE

    def xy(self, lat: float, lon: float) -> tuple[float, float]:
        """One position in metres."""
        return (lon - self.lon0) * self.kx, (lat - self.lat0) * self.ky

    def xy_array(self, lats: Any, lons: Any) -> tuple[np.ndarray, np.ndarray]:
        """Many positions in metres (numpy arrays)."""
        return ((np.asarray(lons, dtype=float) - self.lon0) * self.kx,
                (np.asarray(lats, dtype=float) - self.lat0) * self.ky)

    def latlon(self, x: float, y: float) -> tuple[float, float]:
        """Metres back to degrees."""
        return self.lat0 + y / self.ky, self.lon0 + x / self.kx


def boundary_box(boundary: dict | None) -> tuple[float, float, float, float] | None:
    """(south, west, north, east) of a GeoJSON Polygon's outer ring, in degrees; None without one."""
    rings = (boundary or {}).get("coordinates") or []
    if not rings or not rings[0]:
        return None
    lons = [p[0] for p in rings[0]]
    lats = [p[1] for p in rings[0]]
    return min(lats), min(lons), max(lats), max(lons)


def far_outside(lat: float, lon: float, box: tuple[float, float, float, float], margin_m: float) -> bool:
    """Whether a position lies more than ``margin_m`` outside a (south, west, north, east) box.

    The margin in longitude is taken at the box's latitude farthest from the equator (where a degree of
    longitude is shortest), so the test never refuses a point nearer than the margin.
    """
    south, west, north, east = box
    dlat = margin_m / _M_PER_DEGREE
    cos = max(math.cos(math.radians(max(abs(south), abs(north)))), 1e-6)
    dlon = margin_m / (_M_PER_DEGREE * cos)
    return not (south - dlat <= lat <= north + dlat and west - dlon <= lon <= east + dlon)


@dataclass(frozen=True)
class Cells:
    """A grid's cells: the projection they are laid in, their centres (metres) and the polygon (metres)."""

    projection: Projection
    xs: np.ndarray
    ys: np.ndarray
    polygon: Any  # shapely Polygon in metres

    @property
    def count(self) -> int:
        return int(self.xs.size)

    def centres_latlon(self) -> list[tuple[float, float]]:
        """The cells' centres in degrees (for the map)."""
        return [self.projection.latlon(float(x), float(y)) for x, y in zip(self.xs, self.ys)]


def cells_of(boundary: dict | None, cell_m: float = CELL_M) -> Cells | None:
    """The cells of a grid's boundary (a GeoJSON Polygon); None without a boundary, or for one too large."""
    box = boundary_box(boundary)
    if box is None:
        return None
    south, west, north, east = box
    projection = Projection((south + north) / 2, (west + east) / 2)
    rings = []
    for ring in boundary["coordinates"]:
        xs, ys = projection.xy_array([p[1] for p in ring], [p[0] for p in ring])
        rings.append(np.column_stack([xs, ys]))
    polygon = shapely.Polygon(rings[0], rings[1:])
    if not polygon.is_valid:
        polygon = shapely.make_valid(polygon)
    min_x, min_y, max_x, max_y = polygon.bounds
    columns = max(1, math.ceil((max_x - min_x) / cell_m))
    rows = max(1, math.ceil((max_y - min_y) / cell_m))
    if columns * rows > MAX_CELLS:
        return None
    cx = min_x + (np.arange(columns) + 0.5) * cell_m
    cy = min_y + (np.arange(rows) + 0.5) * cell_m
    gx, gy = np.meshgrid(cx, cy)  # row by row, south to north, west to east within a row
    gx, gy = gx.ravel(), gy.ravel()
    shapely.prepare(polygon)
    inside = shapely.contains_xy(polygon, gx, gy)
    return Cells(projection, gx[inside], gy[inside], polygon)


class TrackArrays(NamedTuple):
    """A track's points as numpy columns: times (ms), degrees, accuracy in metres (NaN where the fix gave none)."""

    t: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    acc: np.ndarray

    def within(self, start_ms: int, end_ms: int) -> "TrackArrays":
        """The points within [start_ms, end_ms)."""
        keep = (self.t >= start_ms) & (self.t < end_ms)
        return TrackArrays(self.t[keep], self.lat[keep], self.lon[keep], self.acc[keep])


def arrays_of(points: "TrackArrays | Sequence[Point]") -> TrackArrays:
    """A track as columns (a list of shared.track Points, or columns already)."""
    if isinstance(points, TrackArrays):
        return points
    return TrackArrays(np.array([p.at_ms for p in points], dtype=np.int64), np.array([p.lat for p in points], dtype=float),
                       np.array([p.lon for p in points], dtype=float),
                       np.array([p.accuracy_m for p in points], dtype=float))


def good(point: Point) -> bool:
    """A fix that counts: its accuracy is known to be no worse than POOR_ACCURACY_M, or unknown."""
    return point.accuracy_m is None or point.accuracy_m <= POOR_ACCURACY_M


def runs(points: Sequence[Point], max_gap_ms: int = MAX_GAP_MS) -> list[list[Point]]:
    """A patrol's good points (in time order) cut into runs wherever two follow each other more than max_gap_ms apart."""
    found: list[list[Point]] = []
    last = None
    for point in points:
        if not good(point):
            continue
        if last is None or point.at_ms - last.at_ms > max_gap_ms:
            found.append([])
        found[-1].append(point)
        last = point
    return found


def track_geometry(projection: Projection, tracks: Iterable["TrackArrays | Sequence[Point]"]):
    """The good legs and lone good points of the tracks, in metres, as one shapely geometry (None if none).

    Vectorised: a track's good points are projected at once, cut into runs where the time between two
    exceeds MAX_GAP_MS, and each run of two or more made one LineString (a run of one, a Point).
    """
    parts: list = []
    for track in tracks:
        a = arrays_of(track)
        keep = np.isnan(a.acc) | (a.acc <= POOR_ACCURACY_M)
        t = a.t[keep]
        if not t.size:
            continue
        xs, ys = projection.xy_array(a.lat[keep], a.lon[keep])
        starts = np.zeros(t.size, dtype=np.int64)
        starts[1:] = np.diff(t) > MAX_GAP_MS
        run = np.cumsum(starts)
        single = np.bincount(run)[run] == 1
        if single.any():
            parts.extend(shapely.points(xs[single], ys[single]))
        if (~single).any():
            _, ids = np.unique(run[~single], return_inverse=True)
            parts.extend(shapely.linestrings(xs[~single], ys[~single], indices=ids))
    if not parts:
        return None
    return shapely.GeometryCollection(parts) if len(parts) > 1 else parts[0]


def covered(cells: Cells, tracks: Iterable["TrackArrays | Sequence[Point]"], reach_m: float = REACH_M) -> np.ndarray:
    """Which cells (a bool per cell, in the cells' order) the tracks passed within reach_m of."""
    result = np.zeros(cells.count, dtype=bool)
    geometry = track_geometry(cells.projection, tracks)
    if geometry is None or not cells.count:
        return result
    # Only cells in the tracks' box widened by the reach can be near them.
    min_x, min_y, max_x, max_y = geometry.bounds
    near = ((cells.xs >= min_x - reach_m) & (cells.xs <= max_x + reach_m)
            & (cells.ys >= min_y - reach_m) & (cells.ys <= max_y + reach_m))
    if not near.any():
        return result
    shapely.prepare(geometry)
    points = shapely.points(cells.xs[near], cells.ys[near])
    result[near] = shapely.dwithin(geometry, points, reach_m)
    return result


def pack_bits(flags: np.ndarray) -> bytes:
    """A bool array as bytes (8 cells a byte), for the coverage cache."""
    return np.packbits(flags.astype(bool)).tobytes()


def unpack_bits(data: bytes, count: int) -> np.ndarray:
    """The bool array `pack_bits` packed, of ``count`` cells."""
    return np.unpackbits(np.frombuffer(data, dtype=np.uint8), count=count).astype(bool)

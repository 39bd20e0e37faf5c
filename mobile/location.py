"""Where the tablet is: a GPS fix on Android, the last known position elsewhere.

The report form asks a `LocationProvider` for ``current()`` and gets a
`LocationReading` or None. Nothing here blocks: GPS fixes arrive in the
background (plyer calls back on its own thread) and ``current()`` only reads
the latest one.

Hazard: a stale fix presented as fresh. A GPS fix older than ``max_age_s`` is
not "gps" any more; the provider answers None and the form falls back to the
last known position, labelled ``last_known``, so the record says honestly
where its position came from (design.md: ``source: gps|manual|last_known``).

Hazard: importing plyer on a desktop. plyer is imported only inside
`PlyerLocation.start`, so the rest of the app (and every test) runs without it.

A manual position is picked on a map (issue 13): the worker's grids drawn from
their GeoJSON boundaries (`grid_outline`), over tiles of an MBTiles file when
one is configured (`MBTiles`), projected in Web Mercator (`to_pixels`,
`from_pixels`, `fit_view`), the projection of every slippy-map tile set.

Hazard: a map that goes online. The tablet may have no network for days, and
the tests none to tile servers: tiles come only from the local MBTiles file,
read-only; nothing here or in the map widget opens a network connection.
Without a file the map is a plain background with the grids' outlines.

Hazard: a tile file that is not one. The path comes from the settings: it is
checked (a regular file, an SQLite database with a ``tiles`` table) before it
is used, opened read-only, and a broken tile is left out, never fatal.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence

from shared.hlc import format_ms, parse_ms

__all__ = ["LocationReading", "LocationProvider", "PlyerLocation", "DesktopLocation", "NO_READING",
           "LAST_LOCATION_KEY", "reading_from", "on_android", "TrackReplay", "SimulatedWalk", "track_provider",
           "TILE_PX", "to_pixels", "from_pixels", "GridOutline", "grid_outline", "fit_view", "MBTiles",
           "MapTilesError"]

log = logging.getLogger(__name__)

SOURCES = ("gps", "last_known", "manual")
LAST_LOCATION_KEY = "last_location"  # the store meta key of the last known position


@dataclass(frozen=True)
class LocationReading:
    """A position in WGS 84 degrees, its accuracy in metres, and where it came from.

    ``source`` is "gps", "last_known" or "manual"; a reading with ``source`` None
    (and lat/lon None) means "no position known".
    """

    lat: float | None
    lon: float | None
    accuracy_m: float | None = None
    source: str | None = None
    at_ms: int | None = None  # when the fix was taken (Unix ms), when known
    speed_mps: float | None = None  # the speed the GPS reported, where it gives one (a patrol's track keeps it)

    @property
    def known(self) -> bool:
        """Whether the reading holds a position."""
        return self.lat is not None and self.lon is not None

    def as_record(self) -> dict[str, Any] | None:
        """The event's ``location`` field: {lat, lon, accuracy_m, source, fix_at}, or None when unknown.

        ``fix_at``, when the fix was taken, only for a fix (GPS, last known): a typed position has none.
        """
        if not self.known:
            return None
        record = {"lat": float(self.lat), "lon": float(self.lon),  # type: ignore[arg-type]
                  "accuracy_m": None if self.accuracy_m is None else float(self.accuracy_m),
                  "source": self.source or "manual"}
        if record["source"] != "manual" and isinstance(self.at_ms, int) and not isinstance(self.at_ms, bool):
            record["fix_at"] = format_ms(self.at_ms)
        return record

    def problem(self) -> str | None:
        """Why this reading cannot go into a record ("invalid"), or None when it can."""
        if not self.known:
            return None
        for value, bound in ((self.lat, 90), (self.lon, 180)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or abs(value) > bound:
                return "invalid"
        if self.accuracy_m is not None and (
                isinstance(self.accuracy_m, bool) or not isinstance(self.accuracy_m, (int, float))
                or not math.isfinite(self.accuracy_m) or self.accuracy_m < 0):
            return "invalid"
        if self.source not in SOURCES:
            return "invalid"
        return None


NO_READING = LocationReading(None, None, None, None)


def reading_from(data: Any) -> LocationReading | None:
    """A reading from its stored dict form (meta), or None when the data is not one."""
    if not isinstance(data, Mapping):
        return None
    at_ms = data.get("at_ms")
    if at_ms is None and isinstance(data.get("fix_at"), str):  # an event's location (shared/records.py)
        try:
            at_ms = parse_ms(data["fix_at"])
        except (ValueError, OverflowError):
            at_ms = None
    try:
        reading = LocationReading(data.get("lat"), data.get("lon"), data.get("accuracy_m"), data.get("source"),
                                  at_ms)
    except TypeError:
        return None
    return reading if reading.known and reading.problem() is None else None


class LocationProvider(Protocol):
    """Anything that can say where the tablet is now."""

    def current(self) -> LocationReading | None:
        """The current position, or None when there is no fresh fix."""
        ...


class DesktopLocation:
    """No GPS: answers the last known position kept in the store's meta, as ``last_known``, or None."""

    def __init__(self, store: Any):
        self.store = store

    def current(self) -> LocationReading | None:
        """The last position the app remembered, labelled last_known."""
        reading = reading_from(self.store.setting(LAST_LOCATION_KEY))
        if reading is None:
            return None
        return LocationReading(reading.lat, reading.lon, reading.accuracy_m, "last_known", reading.at_ms)


class PlyerLocation:
    """GPS through plyer (Android): keeps the latest fix; ``current()`` answers it while it is fresh."""

    def __init__(self, *, max_age_s: float = 120.0, min_time_ms: int = 1000, min_distance_m: float = 1.0,
                 clock: Callable[[], float] = time.time):
        self.max_age_s = max_age_s
        self.min_time_ms = min_time_ms
        self.min_distance_m = min_distance_m
        self.clock = clock
        self.status: str | None = None  # the last status plyer reported, e.g. "provider-disabled"
        self._latest: LocationReading | None = None
        self._lock = threading.Lock()
        self._started = False

    def start(self) -> bool:
        """Start listening for fixes; False when this platform has no GPS plyer can use."""
        if self._started:
            return True
        try:
            from plyer import gps  # lazily: plyer is for Android; desktops and tests never import it
            gps.configure(on_location=self._on_location, on_status=self._on_status)
            gps.start(minTime=self.min_time_ms, minDistance=self.min_distance_m)
        except (ImportError, NotImplementedError, AttributeError, OSError) as exc:
            self.status = f"unavailable: {type(exc).__name__}"
            return False
        self._started = True
        return True

    def stop(self) -> None:
        """Stop listening (the app pauses); the latest fix is kept until it grows stale."""
        if not self._started:
            return
        try:
            from plyer import gps
            gps.stop()
        except (ImportError, NotImplementedError, AttributeError, OSError):
            log.warning("GPS: could not stop listening", exc_info=True)  # the app pauses all the same
        self._started = False

    def _on_location(self, **kwargs: Any) -> None:
        """plyer's callback (its thread): keep the fix."""
        try:
            lat, lon = float(kwargs["lat"]), float(kwargs["lon"])
        except (KeyError, TypeError, ValueError):
            log.warning("GPS: ignoring a fix without a usable position: %r", kwargs)
            return
        accuracy = kwargs.get("accuracy")
        try:
            accuracy_m = float(accuracy) if accuracy is not None else None
        except (TypeError, ValueError):
            accuracy_m = None
        speed = kwargs.get("speed")
        try:
            speed_mps = float(speed) if speed is not None and float(speed) >= 0 else None
        except (TypeError, ValueError):
            speed_mps = None
        if speed_mps is not None and not math.isfinite(speed_mps):
            speed_mps = None
        reading = LocationReading(lat, lon, accuracy_m, "gps", int(self.clock() * 1000), speed_mps)
        if reading.problem() is None:
            with self._lock:
                self._latest = reading

    def _on_status(self, stype: str, status: Any) -> None:
        """plyer's status callback: remember it for the form to explain a missing fix."""
        self.status = f"{stype}: {status}"

    def current(self) -> LocationReading | None:
        """The latest fix if it is younger than max_age_s, else None."""
        with self._lock:
            latest = self._latest
        if latest is None or latest.at_ms is None:
            return None
        if self.clock() * 1000 - latest.at_ms > self.max_age_s * 1000:
            return None
        return latest


def on_android() -> bool:
    """Whether the app runs on Android (python-for-android sets ANDROID_ARGUMENT)."""
    import os
    return "ANDROID_ARGUMENT" in os.environ or "ANDROID_PRIVATE" in os.environ


def reading_dict(reading: LocationReading) -> dict[str, Any]:
    """The stored form of a reading (meta)."""
    return asdict(reading)


# --- a GPS without a GPS: recorded and simulated tracks (patrols on a desktop, tests, demos) ------------------

class TrackReplay:
    """A recorded track played back against a clock: each fix at its offset from the replay's start, as "gps".

    ``points`` are (seconds after the start, lat, lon, accuracy_m or None, speed_mps or None). ``current()``
    answers the latest point whose time has come, so a caller polling once a second sees what a GPS
    giving those fixes would have given; after the last point it keeps answering the last one.
    """

    def __init__(self, points: Any, clock_ms: Callable[[], int], *, start_ms: int | None = None):
        self.points = sorted((float(p[0]), float(p[1]), float(p[2]),
                              None if len(p) < 4 or p[3] is None else float(p[3]),
                              None if len(p) < 5 or p[4] is None else float(p[4])) for p in points)
        if not self.points:
            raise ValueError("a track to replay needs at least one point")
        self.clock_ms = clock_ms
        self.start_ms = clock_ms() if start_ms is None else start_ms

    @classmethod
    def from_file(cls, path: Any, clock_ms: Callable[[], int], **kwargs: Any) -> "TrackReplay":
        """A replay of a file of points: lines ``seconds,lat,lon[,accuracy_m[,speed_mps]]`` ('#' starts a comment)."""
        points = []
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                line = line.split("#", 1)[0].strip()
                if line:
                    cells = [cell.strip() for cell in line.split(",")]
                    points.append([float(c) if c else None for c in cells[:5]])
        return cls(points, clock_ms, **kwargs)

    def current(self) -> LocationReading | None:
        """The latest fix whose time has come, or None before the first."""
        elapsed_s = (self.clock_ms() - self.start_ms) / 1000
        latest = None
        for point in self.points:
            if point[0] > elapsed_s:
                break
            latest = point
        if latest is None:
            return None
        t, lat, lon, acc, speed = latest
        return LocationReading(lat, lon, acc, "gps", self.start_ms + round(t * 1000), speed)


class SimulatedWalk:
    """A worker walking along waypoints (lat, lon) at ``speed_mps``, one fix a second, looping at the end.

    For demos and the GUI test: a patrol on a desktop records a believable track without a GPS.
    """

    def __init__(self, waypoints: Any, clock_ms: Callable[[], int], *, speed_mps: float = 1.3,
                 accuracy_m: float = 6.0, start_ms: int | None = None):
        self.waypoints = [(float(lat), float(lon)) for lat, lon in waypoints]
        if len(self.waypoints) < 2:
            raise ValueError("a walk needs at least two waypoints")
        self.clock_ms, self.speed_mps, self.accuracy_m = clock_ms, speed_mps, accuracy_m
        self.start_ms = clock_ms() if start_ms is None else start_ms
        self.legs = [_metres(a, b) for a, b in zip(self.waypoints, self.waypoints[1:])]

    def current(self) -> LocationReading | None:
        """Where the walker is at the last whole second."""
        elapsed_ms = max(0, self.clock_ms() - self.start_ms) // 1000 * 1000
        along = (elapsed_ms / 1000 * self.speed_mps) % max(sum(self.legs), 1e-9)
        for (a, b), leg in zip(zip(self.waypoints, self.waypoints[1:]), self.legs):
            if along <= leg or leg == 0:
                share = along / leg if leg else 0.0
                lat, lon = a[0] + (b[0] - a[0]) * share, a[1] + (b[1] - a[1]) * share
                break
            along -= leg
        else:
            lat, lon = self.waypoints[-1]
        return LocationReading(lat, lon, self.accuracy_m, "gps", self.start_ms + elapsed_ms, self.speed_mps)


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Haversine distance in metres between two (lat, lon)."""
    phi1, phi2 = math.radians(a[0]), math.radians(b[0])
    h = (math.sin((phi2 - phi1) / 2) ** 2
         + math.cos(phi1) * math.cos(phi2) * math.sin(math.radians(b[1] - a[1]) / 2) ** 2)
    return 2 * 6_371_008.8 * math.asin(min(1.0, math.sqrt(h)))


# Around the demo's events in G-0101 (server/admin/demo.py), a loop of about 600 m: what GRIDPATROL_TRACK=walk walks.
DEMO_WALK = ((22.5426, 114.0568), (22.5438, 114.0568), (22.5438, 114.0592), (22.5426, 114.0592), (22.5426, 114.0568))


def track_provider(spec: str, clock_ms: Callable[[], int]) -> Any:
    """A desktop's GPS from GRIDPATROL_TRACK: ``walk`` (a simulated walk) or the path of a file of points."""
    if spec.strip() == "walk":
        return SimulatedWalk(DEMO_WALK, clock_ms)
    return TrackReplay.from_file(spec, clock_ms)


# --- a map to pick a position on (issue 13): Web Mercator, grid outlines, MBTiles ---------------------------------

TILE_PX = 256  # the side of a map tile, in pixels, at every zoom
MAX_LAT = 85.05112878  # Web Mercator's edge: the map is a square up to here
MIN_ZOOM, MAX_ZOOM = 2, 20


def to_pixels(lat: float, lon: float, zoom: int) -> tuple[float, float]:
    """A position's place on the whole world map at ``zoom``, in pixels: x east from 180° W, y south from the top."""
    size = TILE_PX * 2 ** zoom
    lat = max(-MAX_LAT, min(MAX_LAT, lat))
    sin = math.sin(math.radians(lat))
    x = (lon + 180.0) / 360.0 * size
    y = (0.5 - math.log((1 + sin) / (1 - sin)) / (4 * math.pi)) * size
    return x, y


def from_pixels(x: float, y: float, zoom: int) -> tuple[float, float]:
    """The position (lat, lon) at world-map pixel (x, y) at ``zoom``: the inverse of `to_pixels`."""
    size = TILE_PX * 2 ** zoom
    lon = x / size * 360.0 - 180.0
    lat = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * y / size))))
    return lat, lon


@dataclass(frozen=True)
class GridOutline:
    """A grid's outline to draw: its code, its name, and its rings of (lat, lon) (the first the outer edge)."""

    code: str
    name: str | None
    rings: tuple[tuple[tuple[float, float], ...], ...]


def grid_outline(code: str, name: str | None, boundary: Any) -> GridOutline | None:
    """The outline of a grid from its ``boundary`` (a GeoJSON Polygon of [lon, lat]), or None without a usable one.

    The wire already checks a boundary (shared/records.py); this checks again, since it is drawn
    from whatever the replica holds: a ring of fewer than three finite positions in range is left out.
    """
    if not isinstance(boundary, Mapping) or boundary.get("type") != "Polygon":
        return None
    rings = []
    for ring in boundary.get("coordinates") or ():
        points = []
        for point in ring if isinstance(ring, list) else ():
            if isinstance(point, list) and len(point) >= 2 and all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in point[:2]) \
                    and abs(point[0]) <= 180 and abs(point[1]) <= 90:
                points.append((float(point[1]), float(point[0])))
        if len(points) >= 3:
            rings.append(tuple(points))
    return GridOutline(code, name, tuple(rings)) if rings else None


def fit_view(points: Sequence[tuple[float, float]], width_px: float, height_px: float, *,
             max_zoom: int = 18, margin: float = 0.1) -> tuple[float, float, int]:
    """The centre (lat, lon) and the largest zoom (≤ max_zoom) at which every point fits the view with a margin.

    Without points, the whole world at the smallest zoom.
    """
    if not points:
        return 0.0, 0.0, MIN_ZOOM
    lats = [p[0] for p in points]
    lons = [p[1] for p in points]
    usable_w, usable_h = max(1.0, width_px * (1 - 2 * margin)), max(1.0, height_px * (1 - 2 * margin))
    zoom = MIN_ZOOM
    for candidate in range(max(MIN_ZOOM, min(max_zoom, MAX_ZOOM)), MIN_ZOOM - 1, -1):
        x0, y0 = to_pixels(max(lats), min(lons), candidate)
        x1, y1 = to_pixels(min(lats), max(lons), candidate)
        if x1 - x0 <= usable_w and y1 - y0 <= usable_h:
            zoom = candidate
            break
    cx, cy = [(a + b) / 2 for a, b in zip(to_pixels(max(lats), min(lons), zoom), to_pixels(min(lats), max(lons), zoom))]
    lat, lon = from_pixels(cx, cy, zoom)
    return lat, lon, zoom


class MapTilesError(ValueError):
    """A configured tile file that cannot be used; ``code``: ``not_found`` or ``not_mbtiles``."""

    def __init__(self, code: str, detail: str = ""):
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code


class MBTiles:
    """Map tiles from an MBTiles file (an SQLite database), read-only: ``tiles(zoom_level, tile_column, tile_row,
    tile_data)``, rows counted from the south (TMS), where the map counts from the north (XYZ).

    Opened only after the path is checked; raises MapTilesError. One connection, used from the UI thread
    (the map asks for a handful of small tiles per frame it redraws, each a keyed lookup).
    """

    def __init__(self, path: str | Path):
        text = str(path)
        if not text or "\x00" in text:
            raise MapTilesError("not_found", "no path")
        file = Path(text).expanduser()
        if not file.is_file():
            raise MapTilesError("not_found", text)
        try:
            # mode=ro: never written, never created; immutable is not claimed (the file may be replaced).
            self._db = sqlite3.connect(f"{file.resolve().as_uri()}?mode=ro", uri=True)
            row = self._db.execute("SELECT MIN(zoom_level), MAX(zoom_level) FROM tiles").fetchone()
        except sqlite3.Error as exc:
            self.close()
            raise MapTilesError("not_mbtiles", f"{text}: {exc}") from None
        if row is None or not all(isinstance(z, int) for z in row):
            self.close()
            raise MapTilesError("not_mbtiles", f"{text}: no tiles")
        self.path = str(file)
        self.min_zoom, self.max_zoom = max(0, row[0]), min(MAX_ZOOM, row[1])

    def bounds(self) -> tuple[tuple[float, float], tuple[float, float]] | None:
        """The (lat, lon) of the north-west and south-east corners of the tiles at the file's smallest zoom."""
        try:
            row = self._db.execute("SELECT MIN(tile_column), MAX(tile_column), MIN(tile_row), MAX(tile_row) "
                                   "FROM tiles WHERE zoom_level = ?", (self.min_zoom,)).fetchone()
        except (sqlite3.Error, AttributeError):
            return None
        if row is None or not all(isinstance(v, int) for v in row):
            return None
        west, east, south_row, north_row = row
        top = 2 ** self.min_zoom - 1 - north_row  # TMS rows count from the south
        bottom = 2 ** self.min_zoom - 1 - south_row
        return (from_pixels(west * TILE_PX, top * TILE_PX, self.min_zoom),
                from_pixels((east + 1) * TILE_PX, (bottom + 1) * TILE_PX, self.min_zoom))

    def tile(self, zoom: int, x: int, y: int) -> bytes | None:
        """The image bytes of tile (x, y) at ``zoom`` in the map's (XYZ) numbering, or None when the file lacks it."""
        count = 2 ** zoom
        if not (0 <= x < count and 0 <= y < count) or self._db is None:
            return None
        try:
            row = self._db.execute(
                "SELECT tile_data FROM tiles WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?",
                (zoom, x, count - 1 - y)).fetchone()
        except sqlite3.Error:
            log.warning("map tiles: could not read tile %s/%s/%s of %s", zoom, x, y, self.path, exc_info=True)
            return None
        return bytes(row[0]) if row and isinstance(row[0], (bytes, memoryview)) else None

    def close(self) -> None:
        """Close the file."""
        db, self._db = getattr(self, "_db", None), None
        if db is not None:
            db.close()

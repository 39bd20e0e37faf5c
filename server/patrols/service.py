"""Patrols as the pages read them: patrols of a period, their tracks, fixed points and their visits, events on the way.

Everything is read from the ``records`` table (patrol, track, fixed_point, point_visit, event) and the
``cases`` table; the coverage cache is server/patrols/coverage.py's. Times are Unix ms (UTC); days are
the district's (``GRIDPATROL_UTC_OFFSET``).

**Which patrols a period holds.** Those whose time overlaps it: started before its end, and ended
after its start (a patrol not yet ended counts until ``OPEN_PATROL_MS`` after its start, or now if
earlier). A patrol is found by its ``started_at`` (one range on its JSON), so one that started up to
``OPEN_PATROL_MS`` before the period is looked at too. Points are cut to the period.

**Visits.** A fixed point is visited when a ``point_visit`` record says so: the tablet writes one when
its track passes within the point's radius (``method: track``) or on a check-in with a photo
(``check_in``). The server does not infer visits from tracks: the pages and the tablet count the same.

**On schedule.** A point to be visited every ``every_hours`` is due once in each window of that
length, laid from the start of the period: a window that has ended (by the period's end, or now) is
due, and met when a visit falls in it; a window still running, or one that began before the point
was set (the earliest timestamp of its fields' writes), counts only once it is met. So a point
with ``every_hours: 24`` must have a visit each day, one with 12 one each half day, and one with 168
is not yet due on a Tuesday's day view unless it was visited. The share on schedule is met / due.

**Events on the way.** The events whose ``patrol`` is one of the patrols shown, and the events the
patrol's worker reported during it (between its start and its end), read from the cases table by
reporter and time and then from their records for ``patrol``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable, Sequence

from sqlalchemy import func, select

from shared.hlc import HLC, HLCError, format_ms, parse_ms
from shared.records import REF_BUCKET, grid_bucket
from shared.track import Point, length_m, unpack

from ..db import db
from ..models import CaseRow, Record
from . import geometry

OPEN_PATROL_MS = 24 * 3_600_000  # a patrol never ended (a tablet lost) counts for at most a day
DAY_MS = 86_400_000
_CHUNK = 500  # ids per IN (…)


class BadQuery(ValueError):
    """A query argument the pages cannot use; args[0] names it, args[1] says why."""


# --- periods ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Period:
    """District days ``first`` to ``last`` (inclusive) as [start_ms, end_ms); ``kind`` day or week."""

    kind: str
    first: date
    last: date
    start_ms: int
    end_ms: int

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]


def day_start_ms(day: date, zone: timezone) -> int:
    """The first millisecond of a district day."""
    return int(datetime(day.year, day.month, day.day, tzinfo=zone).timestamp() * 1000)


def period_of(kind: str, day: date, zone: timezone) -> Period:
    """The day, or its Monday-to-Sunday week."""
    if kind == "week":
        first = day - timedelta(days=day.weekday())
        last = first + timedelta(days=6)
    elif kind == "day":
        first = last = day
    else:
        raise BadQuery("period", "must be day or week")
    return Period(kind, first, last, day_start_ms(first, zone), day_start_ms(last + timedelta(days=1), zone))


def parse_day(text: str | None) -> date:
    """A YYYY-MM-DD day of the years 2000-2099; BadQuery for anything else."""
    if not isinstance(text, str) or len(text) != 10 or not text.isascii():
        raise BadQuery("day", "must be a day as YYYY-MM-DD")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise BadQuery("day", "must be a day as YYYY-MM-DD") from None
    if not 2000 <= day.year <= 2099:
        raise BadQuery("day", "must be a day between the years 2000 and 2099")
    return day


def district_day(ms: int, zone: timezone) -> date:
    """The district day of an instant."""
    return datetime.fromtimestamp(ms / 1000, zone).date()


# --- grids -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Grid:
    """A grid as the patrol pages need it: its values and the feed position of its record (for the cache)."""

    code: str
    values: dict
    position: int

    @property
    def boundary(self) -> dict | None:
        return self.values.get("boundary") or None


def load_grids() -> dict[str, Grid]:
    """The grids that are not deleted, by code."""
    found = {}
    for values, position in db.session.execute(select(Record.field_values, Record.position).where(
            Record.bucket == REF_BUCKET, Record.kind == "grid")):
        if values.get("code") and not values.get("_deleted"):
            found[values["code"]] = Grid(values["code"], values, position)
    return found


# --- patrols and tracks ----------------------------------------------------------------------------

@dataclass
class Patrol:
    """One patrol record, with its times in ms."""

    id: str
    grid: str
    worker: str
    started_ms: int
    ended_ms: int | None
    distance_m: float | None
    closed_by: str | None
    note: str | None

    def until_ms(self, now_ms: int) -> int:
        """When the patrol ended; one never ended counts until OPEN_PATROL_MS after its start, or now if earlier."""
        if self.ended_ms is not None:
            return max(self.ended_ms, self.started_ms)
        return min(self.started_ms + OPEN_PATROL_MS, max(now_ms, self.started_ms))

    def time_within(self, start_ms: int, end_ms: int, now_ms: int) -> int:
        """The patrol's time within [start_ms, end_ms), in ms."""
        return max(0, min(self.until_ms(now_ms), end_ms) - max(self.started_ms, start_ms))


def _patrol(record_id: str, values: dict) -> Patrol | None:
    try:
        started = parse_ms(values["started_at"])
        ended = parse_ms(values["ended_at"]) if values.get("ended_at") else None
    except (KeyError, TypeError, ValueError):
        return None
    return Patrol(record_id, values.get("grid") or "", values.get("worker") or "", started, ended,
                  values.get("distance_m"), values.get("closed_by"), values.get("note"))


def patrols_between(start_ms: int, end_ms: int, now_ms: int, *, grids: Iterable[str] | None = None,
                    worker: str | None = None) -> list[Patrol]:
    """The patrols whose time overlaps [start_ms, end_ms) (in these grids, of this worker), by start."""
    started = Record.field_values["started_at"].as_string()
    conditions = [Record.kind == "patrol", started >= format_ms(max(0, start_ms - OPEN_PATROL_MS)),
                  started < format_ms(end_ms)]
    if grids is not None:
        conditions.append(Record.bucket.in_(sorted(grid_bucket(g) for g in grids)))
    if worker is not None:
        conditions.append(Record.field_values["worker"].as_string() == worker)
    found = []
    for record_id, values in db.session.execute(select(Record.id, Record.field_values).where(*conditions)):
        patrol = _patrol(record_id, values)
        if patrol is not None and patrol.started_ms < end_ms and patrol.until_ms(now_ms) > start_ms:
            found.append(patrol)
    return sorted(found, key=lambda p: (p.started_ms, p.id))


def _chunks(ids: Sequence[str]) -> Iterable[list[str]]:
    ids = sorted(set(ids))
    for at in range(0, len(ids), _CHUNK):
        yield ids[at:at + _CHUNK]


def track_meta(patrol_ids: Sequence[str]) -> dict[str, tuple[int, int]]:
    """(how many track records, their last feed position) per patrol that has any."""
    found = {}
    for chunk in _chunks(patrol_ids):
        for parent, count, last in db.session.execute(
                select(Record.parent_id, func.count(), func.max(Record.position))
                .where(Record.kind == "track", Record.parent_id.in_(chunk)).group_by(Record.parent_id)):
            found[parent] = (int(count), int(last))
    return found


def tracks_of(patrol_ids: Sequence[str]) -> dict[str, list[Point]]:
    """Each patrol's points, its track records unpacked in ``seq`` order, then by time."""
    batches: dict[str, list[tuple[int, list[Point]]]] = {}
    for chunk in _chunks(patrol_ids):
        for parent, values in db.session.execute(select(Record.parent_id, Record.field_values).where(
                Record.kind == "track", Record.parent_id.in_(chunk))):
            try:
                points = unpack(values["points"], parse_ms(values["start"]))
            except (KeyError, TypeError, ValueError):
                continue
            batches.setdefault(parent, []).append((values.get("seq", 0), points))
    found = {}
    for parent, parts in batches.items():
        points = [p for _seq, batch in sorted(parts, key=lambda part: part[0]) for p in batch]
        points.sort(key=lambda p: p.at_ms)  # a batch out of seq order still draws a line in time order
        found[parent] = points
    return found


def track_arrays(patrol_ids: Sequence[str]) -> dict[str, geometry.TrackArrays]:
    """Each patrol's points as numpy columns (geometry.TrackArrays), in time order: what coverage reads.

    Speed: unpacking into shared.track Points costs a microsecond and more a point (a district-day is over a
    million); the packed columns are differences, so a cumulative sum gives the same values at once.
    """
    import numpy as np

    batches: dict[str, list[tuple[int, geometry.TrackArrays]]] = {}
    for chunk in _chunks(patrol_ids):
        for parent, values in db.session.execute(select(Record.parent_id, Record.field_values).where(
                Record.kind == "track", Record.parent_id.in_(chunk))):
            try:
                packed, start = values["points"], parse_ms(values["start"])
                columns = geometry.TrackArrays(
                    start + np.cumsum(np.asarray(packed["t"], dtype=np.int64)),
                    np.cumsum(np.asarray(packed["lat"], dtype=np.int64)) / 1_000_000,
                    np.cumsum(np.asarray(packed["lon"], dtype=np.int64)) / 1_000_000,
                    np.asarray(packed["acc"], dtype=float))
            except (KeyError, TypeError, ValueError):
                continue
            batches.setdefault(parent, []).append((values.get("seq", 0), columns))
    found = {}
    for parent, parts in batches.items():
        parts.sort(key=lambda part: part[0])
        t = np.concatenate([p.t for _s, p in parts])
        order = np.argsort(t, kind="stable")
        found[parent] = geometry.TrackArrays(t[order], np.concatenate([p.lat for _s, p in parts])[order],
                                             np.concatenate([p.lon for _s, p in parts])[order],
                                             np.concatenate([p.acc for _s, p in parts])[order])
    return found


def cut(points: Sequence[Point], start_ms: int, end_ms: int) -> list[Point]:
    """The points within [start_ms, end_ms)."""
    return [p for p in points if start_ms <= p.at_ms < end_ms]


# --- fixed points and visits -----------------------------------------------------------------------

@dataclass
class FixedPoint:
    """A fixed patrol point (定点) of a grid."""

    id: str
    grid: str
    name: str
    name_en: str | None
    lat: float
    lon: float
    radius_m: int
    every_hours: int
    position: int = 0
    created_ms: int = 0  # the earliest write of its fields: it is due from then on


def _created_ms(hlcs: dict) -> int:
    walls = []
    for text in (hlcs or {}).values():
        try:
            walls.append(HLC.parse(text).wall_ms)
        except (HLCError, TypeError):
            continue
    return min(walls, default=0)


def fixed_points(grids: Iterable[str] | None = None) -> list[FixedPoint]:
    """The fixed points that are not deleted (in these grids), by grid and name."""
    conditions = [Record.kind == "fixed_point"]
    if grids is not None:
        conditions.append(Record.bucket.in_(sorted(grid_bucket(g) for g in grids)))
    found = []
    for record_id, values, hlcs, position in db.session.execute(
            select(Record.id, Record.field_values, Record.field_hlcs, Record.position).where(*conditions)):
        if values.get("_deleted") or not values.get("location"):
            continue
        found.append(FixedPoint(record_id, values["grid"], values["name"], values.get("name_en"),
                                values["location"]["lat"], values["location"]["lon"], values["radius_m"],
                                values["every_hours"], position, _created_ms(hlcs)))
    return sorted(found, key=lambda p: (p.grid, p.name, p.id))


def fixed_point(point_id: str) -> FixedPoint | None:
    """One fixed point by id (deleted ones too: the form may bring one back), or None."""
    record = db.session.get(Record, point_id)
    if record is None or record.kind != "fixed_point":
        return None
    values = record.field_values
    return FixedPoint(record.id, values["grid"], values["name"], values.get("name_en"), values["location"]["lat"],
                      values["location"]["lon"], values["radius_m"], values["every_hours"], record.position,
                      _created_ms(record.field_hlcs))


@dataclass(frozen=True)
class Visit:
    point: str
    worker: str
    at_ms: int
    method: str
    patrol: str | None


def visits_of(point_ids: Sequence[str], start_ms: int, end_ms: int) -> dict[str, list[Visit]]:
    """The visits of each point within [start_ms, end_ms), in time order."""
    visited = Record.field_values["visited_at"].as_string()
    found: dict[str, list[Visit]] = {}
    for chunk in _chunks(point_ids):
        for values in db.session.scalars(select(Record.field_values).where(
                Record.kind == "point_visit", Record.parent_id.in_(chunk),
                visited >= format_ms(start_ms), visited < format_ms(end_ms))):
            try:
                at = parse_ms(values["visited_at"])
            except (KeyError, TypeError, ValueError):
                continue
            found.setdefault(values["point"], []).append(
                Visit(values["point"], values.get("worker") or "", at, values.get("method") or "",
                      values.get("patrol")))
    for visits in found.values():
        visits.sort(key=lambda v: v.at_ms)
    return found


def last_visits(point_ids: Sequence[str]) -> dict[str, int]:
    """Each point's latest visit (ms), over all time."""
    visited = Record.field_values["visited_at"].as_string()
    found = {}
    for chunk in _chunks(point_ids):
        for parent, last in db.session.execute(select(Record.parent_id, func.max(visited)).where(
                Record.kind == "point_visit", Record.parent_id.in_(chunk)).group_by(Record.parent_id)):
            try:
                found[parent] = parse_ms(last)
            except (TypeError, ValueError):
                continue
    return found


@dataclass(frozen=True)
class Schedule:
    """A point's windows within a period: how many were due, how many of those met; the windows themselves."""

    due: int
    met: int
    windows: tuple[tuple[int, int, bool], ...] = ()  # (start ms, end ms, met) of each window counted

    @property
    def rate(self) -> float | None:
        return self.met / self.due if self.due else None


def schedule(every_hours: int, visit_ms: Sequence[int], start_ms: int, end_ms: int, now_ms: int,
             since_ms: int = 0) -> Schedule:
    """The module's rule "On schedule": windows of every_hours from start_ms; ended ones due, running ones if met.

    A window that began before ``since_ms`` (the point's creation) counts only if it is met.
    """
    step = every_hours * 3_600_000
    horizon = min(end_ms, now_ms)
    due = met = 0
    windows = []
    at = start_ms
    while at < end_ms and at < now_ms:
        until = at + step
        hit = any(at <= v < until for v in visit_ms)
        if (until <= horizon and at >= since_ms) or hit:
            due += 1
            met += hit
            windows.append((at, min(until, end_ms), hit))
        at = until
    return Schedule(due, met, tuple(windows))


def point_schedule(point: FixedPoint, visits: Sequence[Visit], start_ms: int, end_ms: int, now_ms: int) -> Schedule:
    """A point's schedule over a period (windows begun before the point was set count only if met)."""
    return schedule(point.every_hours, [v.at_ms for v in visits], start_ms, end_ms, now_ms, point.created_ms)


# --- events on the way -----------------------------------------------------------------------------

@dataclass
class EventOnTheWay:
    id: str
    patrol: str
    number: str | None
    category: str
    status: str
    reported_ms: int
    lat: float | None
    lon: float | None
    description: str


def events_on_the_way(patrols: Sequence[Patrol], now_ms: int) -> list[EventOnTheWay]:
    """The module's rule "Events on the way", for the patrols given."""
    if not patrols:
        return []
    by_id = {p.id: p for p in patrols}
    workers = sorted({p.worker for p in patrols})
    start = min(p.started_ms for p in patrols) - DAY_MS  # an event may name its patrol and be reported a bit off it
    end = max(p.until_ms(now_ms) for p in patrols) + DAY_MS
    rows = db.session.execute(select(CaseRow.event_id, CaseRow.reporter, CaseRow.reported_ms, CaseRow.case_number,
                                     CaseRow.category, CaseRow.status, CaseRow.lat, CaseRow.lon)
                              .where(CaseRow.reported_ms >= start, CaseRow.reported_ms < end,
                                     CaseRow.reporter.in_(workers), CaseRow.deleted.is_(False))).all()
    values = {}
    for chunk in _chunks([r[0] for r in rows]):
        values.update(db.session.execute(select(Record.id, Record.field_values).where(Record.id.in_(chunk))).all())
    found = []
    for event_id, reporter, reported, number, category, status, lat, lon in rows:
        named = (values.get(event_id) or {}).get("patrol")
        patrol = by_id.get(named) if named else None
        if patrol is None:
            patrol = next((p for p in patrols if p.worker == reporter and reported is not None
                           and p.started_ms <= reported <= p.until_ms(now_ms)), None)
        if patrol is None:
            continue
        found.append(EventOnTheWay(event_id, patrol.id, number, category, status, reported or 0, lat, lon,
                                   (values.get(event_id) or {}).get("description") or ""))
    return sorted(found, key=lambda e: (e.reported_ms, e.id))


# --- the map -------------------------------------------------------------------------------------

MAX_MAP_POINTS = 60_000  # points drawn in one answer: beyond, each track is thinned evenly


def _lines(points: Sequence[Point], stride: int) -> list[list[list[float]]]:
    lines = []
    for run in geometry.runs(points):
        kept = run[::stride]
        if kept[-1] is not run[-1]:
            kept.append(run[-1])
        lines.append([[round(p.lon, 6), round(p.lat, 6)] for p in kept])
    return lines


@dataclass
class MapData:
    """What the map page shows: the patrols with their tracks, the fixed points with their visits, the events."""

    patrols: list[Patrol]
    tracks: dict[str, list[Point]]
    points: list[FixedPoint]
    visits: dict[str, list[Visit]]
    schedules: dict[str, Schedule]
    events: list[EventOnTheWay]
    grids: list[Grid] = field(default_factory=list)


def map_data(period: Period, now_ms: int, grids: dict[str, Grid], *, grid: str | None,
             worker: str | None) -> MapData:
    """The patrols of the period (in the grid, of the worker), their tracks, the grid's fixed points and events."""
    shown = [grid] if grid else None
    patrols = patrols_between(period.start_ms, period.end_ms, now_ms, grids=shown, worker=worker)
    tracks = {pid: cut(points, period.start_ms, period.end_ms)
              for pid, points in tracks_of([p.id for p in patrols]).items()}
    point_grids = shown if shown else sorted({p.grid for p in patrols})
    points = fixed_points(point_grids)
    visits = visits_of([p.id for p in points], period.start_ms, period.end_ms)
    if worker:  # the worker's visits only, as the worker's tracks only
        visits = {k: [v for v in vs if v.worker == worker] for k, vs in visits.items()}
    schedules = {p.id: point_schedule(p, visits.get(p.id, []), period.start_ms, period.end_ms, now_ms)
                 for p in points}
    outlines = [grids[g] for g in (shown or sorted({p.grid for p in patrols})) if g in grids]
    return MapData(patrols, tracks, points, visits, schedules, events_on_the_way(patrols, now_ms), outlines)


def geojson(data: MapData, names: dict[str, str], labels: dict[str, Any]) -> dict[str, Any]:
    """The map's GeoJSON FeatureCollection: outlines, tracks (one MultiLineString per patrol), points, events.

    Each feature's ``properties.kind`` says what it is (grid, track, fixed_point, event); ``labels``
    gives the words the script shows (their language is the page's), and every event's link.
    """
    features: list[dict[str, Any]] = []
    for grid in data.grids:
        if grid.boundary:
            features.append({"type": "Feature", "geometry": grid.boundary,
                             "properties": {"kind": "grid", "code": grid.code,
                                            "name": labels["grid_name"](grid.values)}})
    total = sum(len(points) for points in data.tracks.values())
    stride = max(1, -(-total // MAX_MAP_POINTS))
    workers = sorted({p.worker for p in data.patrols})
    for patrol in data.patrols:
        points = data.tracks.get(patrol.id) or []
        lines = _lines(points, stride) if points else []
        features.append({"type": "Feature",
                         "geometry": {"type": "MultiLineString", "coordinates": lines} if lines else None,
                         "properties": {"kind": "track", "patrol": patrol.id, "worker": patrol.worker,
                                        "colour": workers.index(patrol.worker) if patrol.worker in workers else 0,
                                        "worker_name": names.get(patrol.worker, patrol.worker[:8]),
                                        "started": labels["time"](patrol.started_ms),
                                        "ended": labels["time"](patrol.ended_ms) if patrol.ended_ms else "",
                                        "points": len(points),
                                        "distance_m": round(length_m(points)) if points else 0}})
    for point in data.points:
        visits = data.visits.get(point.id, [])
        plan = data.schedules.get(point.id)
        features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [point.lon, point.lat]},
                         "properties": {"kind": "fixed_point", "id": point.id, "name": labels["point_name"](point),
                                        "radius_m": point.radius_m, "every_hours": point.every_hours,
                                        "visited": bool(visits), "visits": [labels["time"](v.at_ms) for v in visits],
                                        "due": plan.due if plan else 0, "met": plan.met if plan else 0}})
    for event in data.events:
        if event.lat is None or event.lon is None:
            continue
        features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [event.lon, event.lat]},
                         "properties": {"kind": "event", "id": event.id, "patrol": event.patrol,
                                        "number": event.number or "", "category": labels["category"](event.category),
                                        "reported": labels["time"](event.reported_ms), "href": labels["href"](event.id),
                                        "description": event.description[:120]}})
    return {"type": "FeatureCollection", "features": features,
            "thinned": stride > 1, "stride": stride}


# --- fixed points written on the pages ---------------------------------------------------------------

class PointRefused(ValueError):
    """A fixed point the store refused, or placed far outside its grid; args[0] says why."""


def save_fixed_point(user, point_id: str | None, values: dict[str, Any], grids: dict[str, Grid]) -> str:
    """Create (point_id None) or edit a fixed point as a server write on behalf of the user, audited; its id.

    The same path as a push (server/sync/apply.py: validation, the role check of shared/roles.py
    MANAGED_KINDS, the merge), as the case pages' actions take. A point more than FAR_OUTSIDE_M outside
    the box of its grid's boundary is refused (a swapped latitude and longitude), as a track point is.
    """
    import secrets

    from shared.records import dump_change, uuid7

    from .. import audit
    from ..clock import server_clock
    from ..sync import apply
    from .checks import FAR_OUTSIDE_M
    from .geometry import boundary_box, far_outside

    grid = grids.get(values["grid"])
    if grid is None:
        raise PointRefused("unknown grid")
    box = boundary_box(grid.boundary)
    location = values["location"]
    if box is not None and far_outside(location["lat"], location["lon"], box, FAR_OUTSIDE_M):
        raise PointRefused(f"more than {FAR_OUTSIDE_M / 1000:g} km outside the grid's boundary")
    before = None
    if point_id is None:
        point_id = uuid7(server_clock().physical_ms(), secrets.token_bytes(10))
    else:
        record = db.session.get(Record, point_id)
        before = dict(record.field_values) if record is not None else None
        if before is not None:  # write only what changed: an unchanged field keeps its timestamp
            values = {k: v for k, v in values.items()
                      if (bool(before.get(k)) != v if k == "_deleted" else before.get(k) != v)}
            if not values:
                return point_id
    change = apply.stamp("fixed_point", point_id, values, bucket=grid_bucket(grid.code))
    changes, rejected = apply.validate_batch(user, [dump_change(change)])
    [result] = apply.apply_changes(user, changes, rejected)
    if result.status == "rejected":
        raise PointRefused(result.reason or "rejected")
    if result.status == "applied":
        action = "create" if before is None else ("delete" if values.get("_deleted") else "edit")
        old, new = audit.changes(before or {}, {**(before or {}), **values})
        audit.record(action, "fixed_point", point_id, before=old if before else None, after=new, actor=user,
                     commit=True)
    return point_id

"""Patrols (巡): the track recorder, its recovery after a kill, the packing into track records, fixed points.

No Kivy here: the recorder takes its store, its location provider and its clock as arguments, and a test
drives it tick by tick with a simulated walk (tests/mobile/test_patrol.py). The Kivy glue
(mobile/ui/screens/patrol.py) only calls `PatrolPresenter.tick` about once a second and shows the view.

The recording rule
------------------
Each tick asks the provider for its latest fix. The fix becomes a track point when all of these hold:

* it is a GPS fix (source ``gps``; a last known or typed position is no track) newer than the last
  sendable point kept, and not the fix seen at the tick before;
* the interval has passed (``patrol_interval_s``, default 10 s): since the last point kept, by the fix's
  time *and* by the recorder's clock, so a GPS whose fixes claim a time ahead cannot flood the store;
* the worker moved: a fix within ``still_m`` (8 m), or within half its own accuracy when that is larger (up
  to 25 m: GPS noise is no walk), of the last point kept is left out until ``still_s`` (60 s) have passed.
  A worker standing still writes one point a minute, a walking one a point every interval.

A kept point is judged by shared/track.py's `flags` against the last sendable point before it:
``poor_accuracy`` (accuracy over 50 m) is kept, marked and sent; ``future`` (beyond the clock-drift limit
the server allows) and ``too_fast`` (a jump over 70 m/s) are kept on the tablet, marked, and never sent,
since the server would refuse the whole batch. Nothing is dropped silently: the view counts them.

Hazard: a kill, a flat battery, a restart. Every kept point is committed to the store at once
(`Store.add_track_point`, WAL with synchronous=FULL), with the open patrol's marker in meta
(``patrol_open``: id, grid, worker, started, last sign of life). At start-up `PatrolRecorder.recover`
finds it: when the app was gone at most ``patrol_resume_minutes`` (default 15) the patrol resumes where it
was; else it is closed as it stood, ``closed_by`` ``recovery``, ``ended_at`` the last sign of life (the
last point, or the heartbeat written every 30 s while no point is kept), its distance from what was
recorded.

Packing
-------
Points travel in ``track`` records (append-only, shared/records.py) of packed columns (shared/track.py
`pack`). The sendable points not yet sent are sealed into one record, with the next ``seq``, when there
are ``batch_points`` (100) of them or the oldest is ``batch_max_age_s`` (30 min) old, whichever first,
and whatever is left when the patrol stops or is recovered. The record and the points' mark ("sealed in
batch seq") are one transaction (`Store.commit_patrol`), so no point is sent twice or lost. A day of
walking at 10 s is at most 2,880 points: 29 records, ~25 bytes a point on the wire with the envelope
(tests/mobile/test_patrol.py measures it; docs/field-app.md, "Patrols").
Not at each sync: background sync runs every minute, which would make records of six points whose
envelope outweighs them.

Fixed points (定点巡查)
-----------------------
A fixed point is due when nobody has visited it for ``every_hours`` (or ever). A kept point with no flag
at all (not poor, so the position is good to 50 m) within a due point's ``radius_m`` writes a
``point_visit`` with method ``track``; a point just visited is no longer due, so a worker walking past
again does not write another. Where GPS is poor the worker checks in with a photo (method ``check_in``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

from shared.hlc import DEFAULT_MAX_DRIFT_S, format_ms, parse_ms
from shared.records import ValidationError, grid_bucket
from shared.track import MAX_POINTS, POOR_ACCURACY_M, SENDABLE, Point, distance_m, flags, pack

from .limits import NOTE_MAX, PHOTOS_MAX
from .presenters import InputError, ReportPresenter, _check_text, _PhotoForm

__all__ = [
    "RecorderSettings", "PatrolRecorder", "Running", "Kept", "OPEN_KEY", "open_patrol_id", "moved", "keeps",
    "is_due", "FixedPointRow", "PlanView", "LiveView", "PatrolView", "PatrolSummary", "PatrolPresenter", "recorder_of",
    "local_day_start_ms",
]

log = logging.getLogger(__name__)

OPEN_KEY = "patrol_open"  # store meta: the open patrol {id, grid, worker, started_ms, alive_ms}
SERVER_MAX_DRIFT_MS = DEFAULT_MAX_DRIFT_S * 1000  # the server's default drift limit: a point beyond is "future"


@dataclass(frozen=True)
class RecorderSettings:
    """The recording rule's numbers (see the module's essay)."""

    interval_s: float = 10.0
    still_m: float = 8.0
    still_s: float = 60.0
    resume_within_s: float = 15 * 60.0
    batch_points: int = 100
    batch_max_age_s: float = 30 * 60.0
    max_drift_ms: int = SERVER_MAX_DRIFT_MS
    heartbeat_s: float = 30.0

    @classmethod
    def of(cls, settings: Any, **overrides: Any) -> "RecorderSettings":
        """The rule for the app's settings (AppCore.settings: patrol_interval_s, patrol_resume_minutes)."""
        return cls(interval_s=float(getattr(settings, "patrol_interval_s", 10)),
                   resume_within_s=60.0 * getattr(settings, "patrol_resume_minutes", 15), **overrides)


# --- the rule, as pure functions ----------------------------------------------------------------------

def moved(last: Point, fix: Point, settings: RecorderSettings) -> bool:
    """Whether fix is further from last than GPS noise: still_m, or half the fix's accuracy when larger (at most 25 m)."""
    noise = max(settings.still_m, min(fix.accuracy_m or 0.0, POOR_ACCURACY_M) / 2)
    return distance_m(last, fix) >= noise


def keeps(last: Point | None, last_kept_clock_ms: int | None, fix: Point, now_ms: int,
          settings: RecorderSettings) -> bool:
    """Whether the recording rule keeps fix, given the last sendable point kept and when (recorder's clock) the
    last point of any kind was kept."""
    interval_ms = settings.interval_s * 1000 - 500  # fixes come about once a second: 9.5 s is "10 s"
    if last_kept_clock_ms is not None and now_ms - last_kept_clock_ms < interval_ms:
        return False
    if last is None:
        return True
    if fix.at_ms <= last.at_ms:
        return False  # an older fix cannot follow in a packed track
    waited = fix.at_ms - last.at_ms
    if waited < interval_ms:
        return False
    return waited >= settings.still_s * 1000 or moved(last, fix, settings)


def is_due(last_visit_ms: int | None, every_hours: int, now_ms: int) -> bool:
    """Whether a fixed point waits for a visit: never visited, or its last visit is every_hours old or older."""
    return last_visit_ms is None or now_ms - last_visit_ms >= every_hours * 3_600_000


def local_day_start_ms(now_ms: int) -> int:
    """Midnight of the tablet's local day holding now_ms, in Unix ms ("today" on Home)."""
    local = datetime.fromtimestamp(now_ms / 1000, timezone.utc).astimezone()
    return int(local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp() * 1000)


def open_patrol_id(store: Any, worker: str | None = None) -> str | None:
    """The id of the patrol running on this tablet (of this worker, when given), or None.

    Events and house checks made meanwhile carry it as their ``patrol``.
    """
    marker = store.setting(OPEN_KEY)
    if not isinstance(marker, dict) or not isinstance(marker.get("id"), str):
        return None
    if worker is not None and marker.get("worker") != worker:
        return None
    return marker["id"]


def _ms(instant: Any) -> int | None:
    try:
        return parse_ms(instant) if isinstance(instant, str) else None
    except (ValueError, OverflowError, OSError):
        return None


# --- the recorder ---------------------------------------------------------------------------------------

@dataclass
class Running:
    """The open patrol as the recorder holds it in memory; rebuilt from the store after a restart."""

    patrol_id: str
    grid: str
    worker: str
    started_ms: int
    alive_ms: int
    points: int = 0  # kept, of every kind
    flagged: int = 0  # kept but not sent (future, too_fast)
    poor: int = 0  # kept, sent, marked poor accuracy
    last_good: Point | None = None  # the last sendable point kept
    last_for_distance: Point | None = None  # the last sendable point of good accuracy
    last_kept_clock_ms: int | None = None
    distance_m: float = 0.0
    unsealed: list[tuple[int, Point]] = field(default_factory=list)  # sendable, not yet in a track record
    next_seq: int = 0
    last_fix_ms: int | None = None  # the fix seen at the last tick (not kept twice)

    def marker(self) -> dict[str, Any]:
        """The meta form (OPEN_KEY)."""
        return {"id": self.patrol_id, "grid": self.grid, "worker": self.worker, "started_ms": self.started_ms,
                "alive_ms": self.alive_ms}


@dataclass(frozen=True)
class Kept:
    """What one tick kept: the point, its flags, and the fixed points its passing visited."""

    point: Point
    flags: frozenset[str]
    visits: tuple[str, ...] = ()


class PatrolRecorder:
    """Records the open patrol's track into the store, point by point; recovers it after a kill.

    ``provider.current()`` answers a LocationReading (mobile/location.py) or None; ``now_ms()`` is the
    corrected device clock (AppCore.now_ms); ``offset_ms()`` the correction, added to a fix's own time
    (read from the raw device clock by the GPS). Not thread-safe: the UI thread's ticks drive it.
    """

    def __init__(self, store: Any, provider: Any, now_ms: Callable[[], int], *,
                 settings: RecorderSettings = RecorderSettings(), offset_ms: Callable[[], int] = lambda: 0):
        self.store, self.provider, self.now_ms = store, provider, now_ms
        self.settings, self.offset_ms = settings, offset_ms
        self._points_cache: tuple[int, list[tuple[str, str, dict[str, Any]]], dict[str, int]] | None = None
        self.running: Running | None = self._load()

    # --- state ----------------------------------------------------------------------------------------

    @property
    def patrol_id(self) -> str | None:
        """The open patrol's id, or None."""
        return self.running.patrol_id if self.running else None

    def _load(self) -> Running | None:
        marker = self.store.setting(OPEN_KEY)
        if not isinstance(marker, dict) or not isinstance(marker.get("id"), str):
            return None
        running = Running(marker["id"], str(marker.get("grid")), str(marker.get("worker")),
                          int(marker.get("started_ms") or 0), int(marker.get("alive_ms") or 0))
        for n, values, marks, batch in self.store.track_points(running.patrol_id):
            self._count(running, n, Point(*values), marks)
            if batch is not None:
                running.unsealed = [(m, p) for m, p in running.unsealed if m != n]
                running.next_seq = max(running.next_seq, batch + 1)
        return running

    @staticmethod
    def _count(running: Running, n: int, point: Point, marks: frozenset[str]) -> None:
        running.points += 1
        if marks - SENDABLE:
            running.flagged += 1
            return
        if "poor_accuracy" in marks:
            running.poor += 1
        elif running.last_for_distance is not None:
            running.distance_m += distance_m(running.last_for_distance, point)
        if "poor_accuracy" not in marks:
            running.last_for_distance = point
        running.last_good = point
        running.unsealed.append((n, point))

    # --- start, tick, stop ----------------------------------------------------------------------------

    def start(self, grid: str, worker: str) -> str:
        """Open a patrol of the grid: its record (started_at) and the open marker, in one commit; answers its id."""
        if self.running is not None:
            raise RuntimeError("a patrol is already running")
        now = self.now_ms()
        patrol_id = self.store.new_id()
        running = Running(patrol_id, grid, worker, now, now)
        self.store.commit_patrol([("patrol", patrol_id, {"grid": grid, "worker": worker,
                                                         "started_at": format_ms(now)}, grid_bucket(grid))],
                                 meta={OPEN_KEY: running.marker()})
        self.running = running
        return patrol_id

    def tick(self) -> Kept | None:
        """Read the provider once; keep its fix when the rule says so (committed at once). None: nothing kept."""
        running = self.running
        if running is None:
            return None
        now = self.now_ms()
        reading = self.provider.current() if self.provider is not None else None
        kept = None
        fix = self._fix(reading)
        if fix is not None and fix.at_ms != running.last_fix_ms:
            running.last_fix_ms = fix.at_ms
            if keeps(running.last_good, running.last_kept_clock_ms, fix, now, self.settings):
                kept = self._keep(running, fix, now)
        if kept is None and now - running.alive_ms >= self.settings.heartbeat_s * 1000:
            running.alive_ms = now
            self.store.save_setting(OPEN_KEY, running.marker())
        writes, sealed = self._seal(running, now)
        if writes:
            self.store.commit_patrol(writes, patrol=running.patrol_id, sealed=sealed)
            self._sealed(running, sealed)
        return kept

    def _fix(self, reading: Any) -> Point | None:
        if reading is None or getattr(reading, "source", None) != "gps" or not reading.known \
                or reading.problem() is not None or reading.at_ms is None:
            return None
        return Point(int(reading.at_ms) + int(self.offset_ms()), float(reading.lat), float(reading.lon),
                     reading.accuracy_m, getattr(reading, "speed_mps", None))

    def _keep(self, running: Running, fix: Point, now: int) -> Kept:
        marks = flags(running.last_good, fix, now, self.settings.max_drift_ms)
        running.alive_ms = now
        n = self.store.add_track_point(running.patrol_id, fix, marks, meta={OPEN_KEY: running.marker()})
        running.last_kept_clock_ms = now
        self._count(running, n, fix, marks)
        visits: tuple[str, ...] = ()
        if not marks:
            visits = self._visit_by_track(running, fix, now)
        return Kept(fix, marks, visits)

    def stop(self, closed_by: str = "worker", ended_ms: int | None = None) -> str | None:
        """Close the open patrol: seal what is left, write ended_at, distance_m, closed_by; one commit."""
        running = self.running
        if running is None:
            return None
        end = self.now_ms() if ended_ms is None else ended_ms
        writes, sealed = self._seal(running, end, force=True)
        writes.append(("patrol", running.patrol_id, {
            "ended_at": format_ms(max(end, running.started_ms)), "distance_m": round(running.distance_m, 1),
            "closed_by": closed_by}, grid_bucket(running.grid)))
        self.store.commit_patrol(writes, patrol=running.patrol_id, sealed=sealed, meta={OPEN_KEY: None})
        self._sealed(running, sealed)
        self.running = None
        return running.patrol_id

    def recover(self) -> str | None:
        """At start-up: resume the open patrol ("resumed") or close it as it stood ("recovered"); None: none open."""
        running = self.running
        if running is None:
            return None
        now = self.now_ms()
        last_point = running.last_good.at_ms if running.last_good and running.last_good.at_ms <= now else 0
        last = max(running.alive_ms, last_point, running.started_ms)
        if now - last <= self.settings.resume_within_s * 1000:
            running.alive_ms = now
            self.store.save_setting(OPEN_KEY, running.marker())
            return "resumed"
        self.stop("recovery", ended_ms=last)
        return "recovered"

    # --- packing --------------------------------------------------------------------------------------

    def _seal(self, running: Running, now: int, *, force: bool = False) -> tuple[list, dict[int, list[int]]]:
        """The track records due for the unsealed points (full batches, or an old one; with force all that is left),
        and which points each seals. Nothing changes until `_sealed`, after the commit."""
        size = max(1, min(self.settings.batch_points, MAX_POINTS))
        max_age_ms = self.settings.batch_max_age_s * 1000
        writes: list = []
        sealed: dict[int, list[int]] = {}
        rest, seq = running.unsealed, running.next_seq
        while rest and (force or len(rest) >= size or now - rest[0][1].at_ms >= max_age_ms):
            batch, rest = rest[:size], rest[size:]
            points = [point for _n, point in batch]
            writes.append(("track", self.store.new_id(), {
                "patrol": running.patrol_id, "worker": running.worker, "seq": seq,
                "start": format_ms(points[0].at_ms), "points": pack(points, points[0].at_ms)},
                grid_bucket(running.grid)))
            sealed[seq] = [n for n, _point in batch]
            seq += 1
        return writes, sealed

    @staticmethod
    def _sealed(running: Running, sealed: dict[int, list[int]]) -> None:
        """After the commit: the sealed points leave the unsealed list, the next record takes the next seq."""
        if not sealed:
            return
        gone = {n for ns in sealed.values() for n in ns}
        running.unsealed = [(n, point) for n, point in running.unsealed if n not in gone]
        running.next_seq = max(sealed) + 1

    # --- fixed points -----------------------------------------------------------------------------------

    def _visit_by_track(self, running: Running, fix: Point, now: int) -> tuple[str, ...]:
        points, last_visits = self._fixed_points(now)
        visited = []
        for point_id, bucket, values in points:
            location = values.get("location") or {}
            try:
                centre = Point(fix.at_ms, float(location["lat"]), float(location["lon"]))
                radius, every = float(values["radius_m"]), int(values["every_hours"])
            except (KeyError, TypeError, ValueError):
                continue
            if distance_m(centre, fix) > radius or not is_due(last_visits.get(point_id), every, fix.at_ms):
                continue
            visit = {"point": point_id, "worker": running.worker, "visited_at": format_ms(fix.at_ms),
                     "method": "track", "patrol": running.patrol_id,
                     "location": {"lat": fix.lat, "lon": fix.lon, "accuracy_m": fix.accuracy_m, "source": "gps"}}
            try:
                self.store.create("point_visit", visit, bucket)
            except ValidationError:
                log.warning("patrol: could not record the visit of fixed point %s", point_id, exc_info=True)
                continue
            last_visits[point_id] = fix.at_ms
            visited.append(point_id)
        return tuple(visited)

    def _fixed_points(self, now: int) -> tuple[list[tuple[str, str, dict[str, Any]]], dict[str, int]]:
        """The live fixed points and their last visits, read again at most once a minute (and after a sync)."""
        if self._points_cache is None or now - self._points_cache[0] >= 60_000 or now < self._points_cache[0]:
            points = [(rid, bucket, {n: w[0] for n, w in state.items()})
                      for rid, bucket, state in self.store.states("fixed_point")]
            self._points_cache = (now, points, last_visits(self.store, [rid for rid, _b, _v in points]))
        return self._points_cache[1], self._points_cache[2]

    def forget_cache(self) -> None:
        """Read the fixed points and visits again at the next point (after a sync or a check-in)."""
        self._points_cache = None


def last_visits(store: Any, point_ids: Sequence[str]) -> dict[str, int]:
    """The time (Unix ms) of each fixed point's latest visit, by anyone."""
    latest: dict[str, int] = {}
    for point_id, _rid, state in store.children("point_visit", "point", point_ids, include_deleted=False):
        at = _ms(state.get("visited_at", (None,))[0])
        if at is not None and at > latest.get(point_id, -1):
            latest[point_id] = at
    return latest


def recorder_of(core: Any) -> PatrolRecorder:
    """The app's one recorder (kept on the AppCore: every screen and tick share it)."""
    recorder = core.cache.get("patrol.recorder")
    if recorder is None or recorder.store is not core.store:
        recorder = PatrolRecorder(core.store, core.location_provider, core.now_ms,
                                  settings=RecorderSettings.of(core.settings),
                                  offset_ms=lambda: core.store.clock.offset_ms)
        core.cache["patrol.recorder"] = recorder
    return recorder


# --- what the screens show ------------------------------------------------------------------------------

@dataclass(frozen=True)
class FixedPointRow:
    """A fixed point of the worker's grids: due now, or when it was last visited."""

    point_id: str
    grid: str | None
    name: str
    name_en: str | None
    radius_m: int | None
    every_hours: int | None
    last_visit_ms: int | None
    due: bool
    visited_today: bool


@dataclass(frozen=True)
class PlanView:
    """A grid's suggested patrol schedule from the server (patrol_plan); summary in both languages as sent."""

    grid: str
    hours: list[int]
    rounds_per_day: int | None
    busy_weekdays: list[int]
    points: list[str]  # names of the fixed points most in need, first first
    summary: str | None
    summary_en: str | None
    computed_at: str | None


@dataclass(frozen=True)
class PatrolSummary:
    """Today's patrolling, for Home: patrols, time, distance, fixed points due and visited, the plans."""

    running: bool
    patrols: int
    seconds: int
    distance_m: float
    due: int
    visited_today: int
    plans: list[PlanView]


@dataclass(frozen=True)
class LiveView:
    """The open patrol's figures as they move (read from the recorder, no store query): for a once-a-second redraw."""

    running: bool
    patrol_id: str | None = None
    grid: str | None = None
    started_ms: int | None = None
    elapsed_s: int = 0
    distance_m: float = 0.0
    points: int = 0
    flagged: int = 0
    poor: int = 0
    fix: Any = None  # the provider's latest LocationReading, or None


@dataclass(frozen=True)
class PatrolView:
    """The patrol screen: the open patrol (if any), today's figures, the fixed points, the worker's grids."""

    live: LiveView
    summary: PatrolSummary
    rows: list[FixedPointRow]
    grids: list[Any]


class PatrolPresenter(_PhotoForm):
    """The patrol screen's and Home's data and actions: start, tick, stop, check in at a fixed point.

    A photo form (mobile/presenters.py): a check-in's photos are taken with ``add_photo`` as the report's are.
    """

    @property
    def recorder(self) -> PatrolRecorder:
        """The app's one recorder."""
        return recorder_of(self.core)

    # --- actions ----------------------------------------------------------------------------------------

    def start(self, grid: Any) -> str:
        """Start a patrol of one of the worker's grids; InputError when one runs, or the grid is not the worker's."""
        me = self.core.user_id
        if not me:
            raise InputError("user", "not_logged_in")
        if self.recorder.running is not None:
            raise InputError("patrol", "running")
        if not isinstance(grid, str) or grid not in {g.code for g in self.core.grids()}:
            raise InputError("grid", "unknown" if grid else "required")
        self.recorder.settings = RecorderSettings.of(self.core.settings)
        return self.recorder.start(grid, me)

    def tick(self) -> Kept | None:
        """One beat of the recorder (the UI calls it about once a second)."""
        recorder = self.recorder
        if recorder.running is None:
            return None
        recorder.settings = RecorderSettings.of(self.core.settings)
        return recorder.tick()

    def stop(self) -> str | None:
        """Stop the open patrol (closed_by worker)."""
        return self.recorder.stop("worker")

    def recover(self) -> str | None:
        """At start-up: "resumed", "recovered" (closed with closed_by recovery) or None."""
        self.recorder.settings = RecorderSettings.of(self.core.settings)
        return self.recorder.recover()

    def check_in(self, point_id: str, photos: Sequence[str], note: Any = None) -> str:
        """Mark a fixed point visited by a check-in with at least one photo (for where GPS is poor); answers its id."""
        me = self.core.user_id
        if not me:
            raise InputError("user", "not_logged_in")
        point = self.core.store.get("fixed_point", point_id) if isinstance(point_id, str) else None
        if point is None or point.deleted:
            raise InputError("point", "not_found")
        hashes = list(dict.fromkeys(photos or ()))
        if not hashes:
            raise InputError("photos", "required")
        if len(hashes) > PHOTOS_MAX:
            raise InputError("photos", "too_many")
        for sha in hashes:
            if not isinstance(sha, str) or self.core.photos.get(sha) is None:
                raise InputError("photos", "unknown", str(sha)[:64])
        text = _check_text("note", note, NOTE_MAX, required=False)
        values: dict[str, Any] = {"point": point_id, "worker": me, "visited_at": format_ms(self.core.now_ms()),
                                  "method": "check_in", "photos": hashes}
        patrol = self.recorder.patrol_id
        if patrol:
            values["patrol"] = patrol
        reading = ReportPresenter(self.core).location()
        if reading.known and reading.problem() is None:
            values["location"] = reading.as_record()
        if text:
            values["note"] = text
        try:
            change = self.core.store.create("point_visit", values, point.bucket)
        except ValidationError as exc:
            raise InputError("form", "invalid", str(exc.messages)[:300]) from None
        self._unsaved.difference_update(hashes)
        self.recorder.forget_cache()
        return change.id

    # --- views ------------------------------------------------------------------------------------------

    def fixed_points(self) -> list[FixedPointRow]:
        """The live fixed points of the worker's grids: due ones first (by name), then the others."""
        grids = {g.code for g in self.core.grids()}
        now = self.core.now_ms()
        today = local_day_start_ms(now)
        points = [(rid, {n: w[0] for n, w in state.items()}) for rid, _b, state in self.core.store.states("fixed_point")]
        points = [(rid, values) for rid, values in points if values.get("grid") in grids]
        latest = last_visits(self.core.store, [rid for rid, _v in points])
        rows = []
        for rid, values in points:
            every = values.get("every_hours") if isinstance(values.get("every_hours"), int) else None
            last = latest.get(rid)
            rows.append(FixedPointRow(
                rid, values.get("grid"), str(values.get("name") or rid[-6:]),
                values.get("name_en") if isinstance(values.get("name_en"), str) else None,
                values.get("radius_m") if isinstance(values.get("radius_m"), int) else None, every, last,
                is_due(last, every or 24, now), last is not None and last >= today))
        return sorted(rows, key=lambda row: (not row.due, row.name, row.point_id))

    def plans(self) -> list[PlanView]:
        """The newest patrol plan of each of the worker's grids that has one."""
        grids = {g.code for g in self.core.grids()}
        newest: dict[str, dict[str, Any]] = {}
        for _rid, _b, state in self.core.store.states("patrol_plan"):
            values = {n: w[0] for n, w in state.items()}
            grid = values.get("grid")
            if grid in grids and str(values.get("computed_at") or "") >= str(newest.get(grid, {}).get("computed_at") or ""):
                newest[grid] = values
        names = {rid: str({n: w[0] for n, w in state.items()}.get("name") or "")
                 for rid, _b, state in self.core.store.states("fixed_point")}

        def ints(value: Any) -> list[int]:
            return [v for v in value if isinstance(v, int)] if isinstance(value, list) else []

        return [PlanView(grid, ints(v.get("hours")),
                         v.get("rounds_per_day") if isinstance(v.get("rounds_per_day"), int) else None,
                         ints(v.get("busy_weekdays")),
                         [names[p] for p in v.get("points") or [] if p in names and names[p]],
                         v.get("summary") if isinstance(v.get("summary"), str) else None,
                         v.get("summary_en") if isinstance(v.get("summary_en"), str) else None,
                         v.get("computed_at") if isinstance(v.get("computed_at"), str) else None)
                for grid, v in sorted(newest.items())]

    def summary(self, rows: list[FixedPointRow] | None = None) -> PatrolSummary:
        """Today's patrols of this worker (time, distance), fixed points due and visited today, the plans."""
        me = self.core.user_id
        now = self.core.now_ms()
        today = local_day_start_ms(now)
        running = self.recorder.running
        patrols, seconds, metres = 0, 0, 0.0
        for rid, _b, state in (self.core.store.states("patrol", where=("worker", me)) if me else []):
            values = {n: w[0] for n, w in state.items()}
            started = _ms(values.get("started_at"))
            if started is None or started < today:
                continue
            patrols += 1
            if running is not None and rid == running.patrol_id:
                seconds += max(0, now - started) // 1000
                metres += running.distance_m
                continue
            ended = _ms(values.get("ended_at"))
            seconds += max(0, (ended if ended is not None else started) - started) // 1000
            if isinstance(values.get("distance_m"), (int, float)):
                metres += float(values["distance_m"])
        rows = self.fixed_points() if rows is None else rows
        return PatrolSummary(running is not None, patrols, int(seconds), round(metres, 1),
                             sum(1 for r in rows if r.due), sum(1 for r in rows if r.visited_today), self.plans())

    def live(self) -> LiveView:
        """The open patrol's figures and the latest fix (no store query)."""
        running = self.recorder.running
        provider = self.core.location_provider
        fix = provider.current() if provider is not None else None
        if running is None:
            return LiveView(False, fix=fix)
        return LiveView(True, running.patrol_id, running.grid, running.started_ms,
                        max(0, self.core.now_ms() - running.started_ms) // 1000, round(running.distance_m, 1),
                        running.points, running.flagged, running.poor, fix)

    def view(self) -> PatrolView:
        """Everything the patrol screen shows (local reads only)."""
        rows = self.fixed_points()
        return PatrolView(self.live(), self.summary(rows), rows, self.core.grids())

"""Patrols on the tablet (mobile/patrol.py): the track recorder with a simulated GPS and a manual clock,
its resume and recovery after a kill, the packing into track records, fixed points, and the sync of it all.

Every test drives a real AppCore (a real SQLite store in a temporary folder) logged in to the in-memory
FakeServer; the GPS is a script the test moves (`Gps`), the clock a ManualClock shared by tablet and GPS.
"""

from __future__ import annotations

import gzip
import json
import math
import random

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from mobile.houses import HousesPresenter
from mobile.location import LocationReading, SimulatedWalk
from mobile.patrol import (OPEN_KEY, SERVER_MAX_DRIFT_MS, PatrolPresenter, PatrolRecorder, RecorderSettings, is_due,
                           keeps, local_day_start_ms, recorder_of)
from mobile.presenters import InputError, ReportPresenter
from mobile.sync import synchronize
from shared.hlc import format_ms, parse_ms
from shared.records import dump_change
from shared.track import MAX_POINTS, Point, length_m, pack, unpack
from tests.photos.helpers import make_jpeg

from .core_helpers import GRID, WORKER, logged_in, put
from .fakes import T0, ManualClock

LAT, LON = 22.5430, 114.0580
M_PER_DEG_LAT = 111_195.0  # metres in a degree of latitude (the haversine's sphere)


def north(metres: float) -> float:
    """Degrees of latitude for metres northwards."""
    return metres / M_PER_DEG_LAT


class Gps:
    """A GPS the test moves: ``fix`` sets the latest reading, stamped with the clock unless given a time."""

    def __init__(self, clock):
        self.clock = clock
        self.reading: LocationReading | None = None

    def fix(self, lat: float, lon: float = LON, accuracy: float | None = 5.0, speed: float | None = None,
            at_ms: int | None = None, source: str = "gps") -> None:
        self.reading = LocationReading(lat, lon, accuracy, source, self.clock() if at_ms is None else at_ms, speed)

    def current(self):
        return self.reading


@pytest.fixture
def gps(clock):
    return Gps(clock)


@pytest.fixture
def core(tmp_path, fake, clock, gps):
    """An AppCore logged in as WORKER (grids G-0101 and G-0102), its GPS the test's."""
    opened = logged_in(tmp_path / "app", fake, clock, location_provider=gps)
    yield opened
    opened.close()


def walk(presenter, gps, clock, seconds: int, *, speed: float = 1.3, start_lat: float = LAT, step_s: int = 1,
         accuracy: float | None = 5.0) -> float:
    """Walk north at speed for seconds, a fix and a tick each step; answers the latitude reached."""
    lat = start_lat
    for _ in range(seconds // step_s):
        clock.advance(step_s * 1000)
        lat += north(speed * step_s)
        gps.fix(lat, accuracy=accuracy, speed=speed)
        presenter.tick()
    return lat


def stored(core, patrol_id):
    """The patrol's kept points: (n, Point, flags, batch)."""
    return [(n, Point(*values), marks, batch) for n, values, marks, batch in core.store.track_points(patrol_id)]


def tracks(core, patrol_id):
    """The patrol's track records, by seq: (seq, their points unpacked)."""
    rows = [record.values for record in core.store.query("track") if record.values["patrol"] == patrol_id]
    return [(v["seq"], unpack(v["points"], parse_ms(v["start"]))) for v in sorted(rows, key=lambda v: v["seq"])]


def rounded(point: Point) -> Point:
    """A point as the wire keeps it (shared/track.py: micro-degrees, whole metres up, 0.1 m/s)."""
    return unpack(pack([point], point.at_ms), point.at_ms)[0]


# --- the recording rule -------------------------------------------------------------------------------

def test_a_walk_keeps_a_point_every_interval_and_nothing_is_sent_before_its_batch_is_full(core, gps, clock):
    patrol = PatrolPresenter(core)
    patrol_id = patrol.start(GRID)
    gps.fix(LAT)
    patrol.tick()
    walk(patrol, gps, clock, 120)
    points = stored(core, patrol_id)
    assert len(points) == 13  # the first fix, then one every 10 s for 120 s
    gaps = {b[1].at_ms - a[1].at_ms for a, b in zip(points, points[1:])}
    assert gaps == {10_000}
    assert all(not marks and batch is None for _n, _p, marks, batch in points)
    assert points[-1][1].speed_mps == 1.3
    assert tracks(core, patrol_id) == []  # 13 < 100 points, and younger than 30 minutes
    live = patrol.view().live
    assert live.running and live.points == 13 and live.distance_m == pytest.approx(156, abs=1)


@pytest.mark.parametrize("interval", [5, 30])
def test_the_interval_comes_from_the_settings(core, gps, clock, interval):
    core.save_settings(patrol_interval_s=interval)
    patrol = PatrolPresenter(core)
    patrol_id = patrol.start(GRID)
    walk(patrol, gps, clock, 120, speed=2.0)  # brisk: 10 m in 5 s, more than the 8 m of GPS noise
    points = stored(core, patrol_id)
    assert {b[1].at_ms - a[1].at_ms for a, b in zip(points, points[1:])} == {interval * 1000}


def test_standing_still_writes_a_point_a_minute_however_often_the_gps_moves_a_little(core, gps, clock):
    patrol = PatrolPresenter(core)
    patrol_id = patrol.start(GRID)
    for second in range(300):  # five minutes on one spot, the fix wandering by up to 3 m
        clock.advance(1000)
        gps.fix(LAT + north(3 * math.sin(second / 7)), accuracy=6)
        patrol.tick()
    times = [p.at_ms for _n, p, _m, _b in stored(core, patrol_id)]
    assert len(times) == 5  # the first, then one each minute
    assert {b - a for a, b in zip(times, times[1:])} == {60_000}


def test_a_fix_that_is_no_gps_fix_is_no_track_point(core, gps, clock):
    patrol = PatrolPresenter(core)
    patrol_id = patrol.start(GRID)
    for source in ("last_known", "manual"):
        clock.advance(20_000)
        gps.fix(LAT, source=source)
        patrol.tick()
    gps.reading = None
    clock.advance(20_000)
    patrol.tick()
    assert stored(core, patrol_id) == []


def test_a_point_of_poor_accuracy_is_kept_marked_and_sent_but_not_counted_in_the_distance(core, gps, clock):
    patrol = PatrolPresenter(core)
    patrol_id = patrol.start(GRID)
    lat = walk(patrol, gps, clock, 30)
    # Indoors, ±80 m, for two minutes: a point each time the fix moves 25 m (GPS noise that big is no walk).
    lat = walk(patrol, gps, clock, 120, start_lat=lat, accuracy=80.0)
    walk(patrol, gps, clock, 30, start_lat=lat)
    points = stored(core, patrol_id)
    poor = [p for _n, p, marks, _b in points if marks == {"poor_accuracy"}]
    assert len(poor) == 6 and all(p.accuracy_m == 80 for p in poor)
    assert {round((b.at_ms - a.at_ms) / 1000) for a, b in zip(poor, poor[1:])} == {20}  # 25 m at 1.3 m/s
    assert patrol.view().live.poor == 6
    patrol.stop()
    [(seq, sent)] = tracks(core, patrol_id)
    assert seq == 0 and sent == [rounded(p) for _n, p, _m, _b in points]  # the poor ones included
    record = core.store.get("patrol", patrol_id).values
    assert record["distance_m"] == pytest.approx(length_m([p for _n, p, _m, _b in points]), abs=0.1)


def test_future_and_too_fast_points_are_kept_and_marked_on_the_tablet_and_never_sent(core, gps, clock):
    patrol = PatrolPresenter(core)
    patrol_id = patrol.start(GRID)
    lat = walk(patrol, gps, clock, 20)
    clock.advance(10_000)
    gps.fix(lat, at_ms=clock() + 3_600_000)  # a fix an hour ahead of the clock
    assert patrol.tick().flags == {"future"}
    clock.advance(10_000)
    gps.fix(lat + north(5_000))  # 5 km in 20 s
    assert patrol.tick().flags == {"too_fast"}
    lat = walk(patrol, gps, clock, 30, start_lat=lat)  # the walk goes on from the last good point
    points = stored(core, patrol_id)
    marks = [m for _n, _p, m, _b in points]
    assert marks.count(frozenset({"future"})) == 1 and marks.count(frozenset({"too_fast"})) == 1
    assert patrol.view().live.flagged == 2
    patrol.stop()
    sent = [p for _seq, batch in tracks(core, patrol_id) for p in batch]
    good = [rounded(p) for _n, p, m, _b in points if not m]
    assert sent == good and len(good) == len(points) - 2
    flagged = [b for _n, _p, m, b in points if m]
    assert flagged == [None, None]  # kept here, in no track record


def test_the_first_point_and_the_rule_as_a_table():
    settings = RecorderSettings()
    here = Point(T0, LAT, LON, 5.0)
    table = [
        # last kept, last kept by the clock, fix, now: kept?
        (None, None, here, T0, True),
        (here, T0, here._replace(at_ms=T0 + 9_000, lat=LAT + north(20)), T0 + 9_000, False),  # too soon
        (here, T0, here._replace(at_ms=T0 + 10_000, lat=LAT + north(20)), T0 + 10_000, True),
        (here, T0, here._replace(at_ms=T0 + 30_000, lat=LAT + north(5)), T0 + 30_000, False),  # still
        (here, T0, here._replace(at_ms=T0 + 60_000, lat=LAT + north(5)), T0 + 60_000, True),  # a minute
        (here, T0, here._replace(at_ms=T0 + 30_000, lat=LAT + north(15), accuracy_m=40), T0 + 30_000, False),  # noise
        (here, T0, here._replace(at_ms=T0 + 30_000, lat=LAT + north(25), accuracy_m=40), T0 + 30_000, True),
        (here, T0, here._replace(at_ms=T0 - 1_000, lat=LAT + north(30)), T0 + 30_000, False),  # older fix
    ]
    assert [keeps(last, kept_ms, fix, now, settings) for last, kept_ms, fix, now, _ in table] == [
        row[-1] for row in table]


# --- kill, resume, recovery ---------------------------------------------------------------------------

def test_a_patrol_resumes_when_the_app_comes_back_within_the_resume_setting(tmp_path, fake, clock, gps):
    core = logged_in(tmp_path / "app", fake, clock, location_provider=gps)
    patrol = PatrolPresenter(core)
    patrol_id = patrol.start(GRID)
    lat = walk(patrol, gps, clock, 60)
    before = stored(core, patrol_id)
    core.store.close()  # killed: no stop, no clean close of anything else

    clock.advance(5 * 60_000)  # back five minutes later
    again = logged_in(tmp_path / "app", fake, clock, location_provider=gps)
    try:
        patrol = PatrolPresenter(again)
        assert patrol.recover() == "resumed"
        live = patrol.live()
        assert live.running and live.patrol_id == patrol_id and live.points == len(before)
        lat = walk(patrol, gps, clock, 60, start_lat=lat)
        after = stored(again, patrol_id)
        assert after[:len(before)] == before and [n for n, *_ in after] == list(range(len(after)))
        patrol.stop()
        record = again.store.get("patrol", patrol_id).values
        assert record["closed_by"] == "worker" and again.store.setting(OPEN_KEY) is None
        assert [p for _s, batch in tracks(again, patrol_id) for p in batch] == [rounded(p) for _n, p, _m, _b in after]
    finally:
        again.close()


def test_an_open_patrol_found_too_late_is_closed_as_it_stood_by_recovery(tmp_path, fake, clock, gps):
    core = logged_in(tmp_path / "app", fake, clock, location_provider=gps)
    patrol = PatrolPresenter(core)
    patrol_id = patrol.start(GRID)
    walk(patrol, gps, clock, 40)
    last_point = stored(core, patrol_id)[-1][1]
    gps.reading = None  # the GPS goes quiet; the app lives on for two more minutes (heartbeats)
    for _ in range(120):
        clock.advance(1000)
        patrol.tick()
    alive = core.store.setting(OPEN_KEY)["alive_ms"]
    assert alive > last_point.at_ms
    core.store.close()

    clock.advance(3 * 3_600_000)  # the tablet restarts hours later
    again = logged_in(tmp_path / "app", fake, clock, location_provider=gps)
    try:
        assert PatrolPresenter(again).recover() == "recovered"
        record = again.store.get("patrol", patrol_id).values
        assert record["closed_by"] == "recovery"
        assert record["ended_at"] == format_ms(alive)  # the last sign of life, not the restart
        assert record["distance_m"] == pytest.approx(39, abs=0.5)  # points at 1, 11, 21, 31 s, at 1.3 m/s
        assert again.store.setting(OPEN_KEY) is None and not PatrolPresenter(again).view().live.running
        assert [p for _s, batch in tracks(again, patrol_id) for p in batch] == [
            rounded(p) for _n, p, _m, _b in stored(again, patrol_id)]
        assert PatrolPresenter(again).recover() is None
    finally:
        again.close()


def test_the_resume_window_is_a_setting(tmp_path, fake, clock, gps):
    core = logged_in(tmp_path / "app", fake, clock, location_provider=gps)
    core.save_settings(patrol_resume_minutes=2)
    patrol = PatrolPresenter(core)
    patrol.start(GRID)
    walk(patrol, gps, clock, 20)
    core.store.close()
    clock.advance(5 * 60_000)
    again = logged_in(tmp_path / "app", fake, clock, location_provider=gps)
    try:
        assert PatrolPresenter(again).recover() == "recovered"
    finally:
        again.close()


def test_one_patrol_at_a_time_in_one_of_the_workers_grids(core):
    patrol = PatrolPresenter(core)
    with pytest.raises(InputError) as caught:
        patrol.start("G-9999")
    assert caught.value.code == "unknown"
    patrol.start(GRID)
    with pytest.raises(InputError) as caught:
        patrol.start(GRID)
    assert caught.value.code == "running"


class Noisy:
    """A real GPS's wobble on a simulated walk (seeded): ±3 m of position, 4-15 m accuracy, the speed varying."""

    def __init__(self, walker):
        self.walker, self.random = walker, random.Random(17)

    def current(self):
        reading = self.walker.current()
        r = self.random
        return LocationReading(reading.lat + north(r.gauss(0, 3)), reading.lon + north(r.gauss(0, 3)),
                               round(r.uniform(4, 15), 1), "gps", reading.at_ms, round(r.uniform(1.0, 1.6), 2))


# --- packing --------------------------------------------------------------------------------------------

def test_a_day_at_ten_seconds_packs_into_29_records_at_about_23_bytes_a_point(tmp_path, fake, clock, capsys):
    # Round a block (right-angled corners: at an acute one two fixes 10 s apart may be within 8 m, and one is left out).
    walker = SimulatedWalk([(LAT, LON), (LAT + north(900), LON), (LAT + north(900), LON + 0.009), (LAT, LON + 0.009),
                            (LAT, LON)], clock, speed_mps=1.3, accuracy_m=6.0)
    core = logged_in(tmp_path / "app", fake, clock, location_provider=Noisy(walker))
    try:
        patrol = PatrolPresenter(core)
        patrol_id = patrol.start(GRID)
        walker.start_ms = clock()
        for _ in range(8 * 360):  # eight hours, a fix and a tick every 10 s
            clock.advance(10_000)
            patrol.tick()
        patrol.stop()
        points = [p for _n, p, _m, _b in stored(core, patrol_id)]
        # 2,880 fixes; the rule leaves out the few that GPS noise put within 8 m of the point before.
        assert 2600 < len(points) <= 2880
        records = [r for r in core.store.query("track") if r.values["patrol"] == patrol_id]
        assert len(records) == math.ceil(len(points) / 100) <= 29
        assert sorted(r.values["seq"] for r in records) == list(range(len(records)))
        assert all(len(r.values["points"]["t"]) <= min(100, MAX_POINTS) for r in records)
        sent = [p for _s, batch in tracks(core, patrol_id) for p in batch]
        assert sent == [rounded(p) for p in points]

        changes = core.store.pending_changes(10_000).changes
        track_changes = [c for c in changes if c.kind == "track"]
        wire = [json.dumps(dump_change(c), ensure_ascii=False, separators=(",", ":")).encode() for c in track_changes]
        columns = sum(len(json.dumps(r.values["points"], separators=(",", ":"))) for r in records)
        per_point = sum(map(len, wire)) / len(points)
        gzipped = len(gzip.compress(b"[" + b",".join(wire) + b"]")) / len(points)
        naive = len(json.dumps([{"lat": p.lat, "lon": p.lon, "at": format_ms(p.at_ms), "accuracy_m": p.accuracy_m,
                                 "speed_mps": p.speed_mps} for p in points], separators=(",", ":"))) / len(points)
        with capsys.disabled():
            print(f"\n  a day at 10 s: {len(points)} points in {len(records)} track records; on the wire "
                  f"{per_point:.1f} B/point with the envelope ({columns / len(points):.1f} of columns), "
                  f"{gzipped:.1f} B/point gzipped; a point as a JSON object would be {naive:.0f} B")
        assert per_point < 30 and gzipped < 12
    finally:
        core.close()


def test_a_full_batch_is_sealed_while_walking_and_an_old_one_after_half_an_hour(core, gps, clock):
    patrol = PatrolPresenter(core)
    patrol_id = patrol.start(GRID)
    lat = walk(patrol, gps, clock, 1000, step_s=10)  # 100 points
    assert [seq for seq, _b in tracks(core, patrol_id)] == [0]
    walk(patrol, gps, clock, 40 * 60, step_s=60, speed=0.3, start_lat=lat)  # slow: a point a minute
    sealed = tracks(core, patrol_id)
    assert [seq for seq, _b in sealed] == [0, 1] and len(sealed[1][1]) == 31
    assert all(batch is not None for _n, _p, _m, batch in stored(core, patrol_id)[:131])


# --- fixed points -------------------------------------------------------------------------------------

def fixed_point(fake, name: str, lat: float, lon: float = LON, radius: int = 30, every: int = 4, grid: str = GRID):
    return put(fake, "fixed_point", {"grid": grid, "name": name, "name_en": f"{name} (en)",
                                     "location": {"lat": lat, "lon": lon, "accuracy_m": None, "source": "manual"},
                                     "radius_m": radius, "every_hours": every}, f"grid:{grid}")


def test_the_track_visits_a_due_fixed_point_within_its_radius_once(core, fake, gps, clock):
    near = fixed_point(fake, "东湖小学门口", LAT + north(60))
    far = fixed_point(fake, "菜市场", LAT + north(60), LON + 0.002)  # ~200 m east of the walk
    synchronize(core.store, fake, photos=core.photos)
    patrol = PatrolPresenter(core)
    assert {r.name for r in patrol.fixed_points() if r.due} == {"东湖小学门口", "菜市场"}
    patrol_id = patrol.start(GRID)
    gps.fix(LAT)
    patrol.tick()
    lat = walk(patrol, gps, clock, 100)  # passes the school at 60 m
    walk(patrol, gps, clock, 100, speed=-1.3, start_lat=lat)  # and back past it
    visits = [r.values for r in core.store.query("point_visit")]
    assert len(visits) == 1
    [visit] = visits
    assert (visit["point"], visit["method"], visit["patrol"], visit["worker"]) == (near, "track", patrol_id, WORKER)
    assert abs(visit["location"]["lat"] - (LAT + north(60))) * M_PER_DEG_LAT <= 30
    rows = {r.point_id: r for r in patrol.fixed_points()}
    assert not rows[near].due and rows[near].visited_today and rows[far].due
    summary = patrol.summary()
    assert (summary.due, summary.visited_today) == (1, 1)


def test_a_fix_of_poor_accuracy_within_the_radius_is_no_visit(core, fake, gps, clock):
    fixed_point(fake, "桥下", LAT + north(40))
    synchronize(core.store, fake, photos=core.photos)
    patrol = PatrolPresenter(core)
    patrol.start(GRID)
    walk(patrol, gps, clock, 100, accuracy=60.0)
    assert core.store.query("point_visit") == []


def test_a_point_visited_within_every_hours_is_not_due_and_the_track_leaves_it(core, fake, gps, clock):
    point = fixed_point(fake, "东湖小学门口", LAT + north(30), every=4)
    put(fake, "point_visit", {"point": point, "worker": "0193b5c8-0000-7000-8000-0000000000bb",
                              "visited_at": format_ms(clock() - 3_600_000), "method": "track"}, f"grid:{GRID}")
    synchronize(core.store, fake, photos=core.photos)
    patrol = PatrolPresenter(core)
    assert not patrol.fixed_points()[0].due
    patrol.start(GRID)
    walk(patrol, gps, clock, 60)
    assert len(core.store.query("point_visit")) == 1  # the colleague's only
    assert is_due(clock() - 4 * 3_600_000, 4, clock()) and not is_due(clock() - 3_599_000 * 4, 4, clock())


def test_a_check_in_needs_a_photo_and_names_its_patrol(core, fake, gps, clock):
    point = fixed_point(fake, "地下车库入口", LAT)
    synchronize(core.store, fake, photos=core.photos)
    patrol = PatrolPresenter(core)
    with pytest.raises(InputError) as caught:
        patrol.check_in(point, [])
    assert (caught.value.field, caught.value.code) == ("photos", "required")
    with pytest.raises(InputError):
        patrol.check_in("0193b5c8-0000-7000-8000-00000000dead", ["0" * 64])
    patrol_id = patrol.start(GRID)
    gps.fix(LAT, accuracy=120)  # underground: no usable fix
    sha = patrol.add_photo(make_jpeg(64, 48, noise=True, seed=5))
    visit_id = patrol.check_in(point, [sha], note="信号差，拍照打卡")
    visit = core.store.get("point_visit", visit_id).values
    assert (visit["method"], visit["patrol"], visit["photos"], visit["note"]) == (
        "check_in", patrol_id, [sha], "信号差，拍照打卡")
    assert visit["location"]["accuracy_m"] == 120
    assert not patrol.fixed_points()[0].due


# --- what a patrol touches ----------------------------------------------------------------------------

def test_events_and_house_checks_made_during_a_patrol_carry_its_id(core, fake, gps, clock):
    put(fake, "checklist", {"code": "rental_house", "name": "出租屋安全检查", "version": 1,
                            "items": [{"code": "extinguisher", "text": "配备有效灭火器"}]}, "ref")
    house = put(fake, "rental_house", {"grid": GRID, "address": "东湖村18号"}, f"grid:{GRID}")
    synchronize(core.store, fake, photos=core.photos)
    report = ReportPresenter(core)
    before = report.save(grid=GRID, category="fire_hazard", description="巡查前", no_location_reason="indoors")
    patrol = PatrolPresenter(core)
    patrol_id = patrol.start(GRID)
    during = report.save(grid=GRID, category="fire_hazard", description="巡查中发现", no_location_reason="indoors")
    check = HousesPresenter(core).save_check(house, {"extinguisher": ("pass", None)}, residents_seen=2)
    patrol.stop()
    after = report.save(grid=GRID, category="fire_hazard", description="巡查后", no_location_reason="indoors")
    assert core.store.get("event", during).values["patrol"] == patrol_id
    assert core.store.get("house_check", check).values["patrol"] == patrol_id
    assert "patrol" not in core.store.get("event", before).values
    assert "patrol" not in core.store.get("event", after).values


def test_a_patrol_its_track_and_visits_sync_and_the_plan_and_points_come_down(core, fake, gps, clock):
    point = fixed_point(fake, "东湖小学门口", LAT + north(30))
    put(fake, "patrol_plan", {"grid": GRID, "computed_at": format_ms(clock() - 60_000), "hours": [8, 17, 20],
                              "rounds_per_day": 3, "busy_weekdays": [5, 6], "points": [point], "basis_events": 42,
                              "summary": "傍晚事件多，建议17时、20时加巡", "summary_en": "Busy evenings: patrol at 17 and 20"},
        f"grid:{GRID}")
    assert synchronize(core.store, fake, photos=core.photos).ok
    patrol = PatrolPresenter(core)
    [plan] = patrol.plans()
    assert (plan.grid, plan.hours, plan.rounds_per_day, plan.points) == (GRID, [8, 17, 20], 3, ["东湖小学门口"])
    assert plan.summary.startswith("傍晚") and plan.summary_en.startswith("Busy")
    patrol_id = patrol.start(GRID)
    walk(patrol, gps, clock, 300)
    patrol.stop()
    local = [p for _n, p, _m, _b in stored(core, patrol_id)]
    report = synchronize(core.store, fake, photos=core.photos)
    assert report.ok and not report.rejected and core.store.counts().unsynced == 0
    kinds = {kind for kind, _id in fake.records}
    assert {"patrol", "track", "point_visit"} <= kinds
    on_server = {key: state for key, state in fake.records.items() if key[0] == "track"}
    points = [p for state in sorted(on_server.values(), key=lambda s: s["seq"][0])
              for p in unpack(state["points"][0], parse_ms(state["start"][0]))]
    assert points == [rounded(p) for p in local]
    patrol_on_server = fake.records[("patrol", patrol_id)]
    assert patrol_on_server["closed_by"][0] == "worker" and patrol_on_server["distance_m"][0] > 350
    summary = patrol.summary()
    assert summary.patrols == 1 and summary.seconds == 300 and summary.distance_m == pytest.approx(377, abs=1)
    assert summary.visited_today == 1 and summary.plans == [plan]


def test_the_recorder_is_one_per_app_and_today_is_the_local_day(core):
    assert recorder_of(core) is recorder_of(core) is PatrolPresenter(core).recorder
    start = local_day_start_ms(T0)
    assert start <= T0 < start + 86_400_000 + 3_600_000


# --- a GPS without a GPS (desktop demos and the GUI test) -----------------------------------------------

def test_a_recorded_track_replays_against_the_clock(tmp_path, clock):
    from mobile.location import TrackReplay, track_provider

    path = tmp_path / "walk.csv"
    path.write_text("# seconds,lat,lon,accuracy_m,speed_mps\n0,22.5430,114.0580,5,1.2\n10,22.5431,114.0580,,\n"
                    "20,22.5432,114.0580,70\n", encoding="utf-8")
    replay = TrackReplay.from_file(path, clock)
    seen = []
    for _ in range(4):
        reading = replay.current()
        seen.append((reading.at_ms - T0, reading.lat, reading.accuracy_m, reading.speed_mps, reading.source))
        clock.advance(10_000)
    assert seen == [(0, 22.5430, 5.0, 1.2, "gps"), (10_000, 22.5431, None, None, "gps"),
                    (20_000, 22.5432, 70.0, None, "gps"), (20_000, 22.5432, 70.0, None, "gps")]
    assert isinstance(track_provider(str(path), clock), TrackReplay)
    assert isinstance(track_provider("walk", clock), SimulatedWalk)


def test_a_simulated_walk_goes_at_its_speed_and_loops(clock):
    walker = SimulatedWalk([(LAT, LON), (LAT + north(100), LON)], clock, speed_mps=2.0)
    clock.advance(30_500)
    reading = walker.current()
    assert reading.at_ms == T0 + 30_000 and (reading.lat - LAT) * M_PER_DEG_LAT == pytest.approx(60, abs=0.01)
    clock.advance(40_000)  # 70 s: 140 m along a 100 m walk, looped
    assert (walker.current().lat - LAT) * M_PER_DEG_LAT == pytest.approx(40, abs=0.01)


CHILD = """
import sys
from mobile.app_core import AppCore
from mobile.location import SimulatedWalk
from mobile.patrol import PatrolPresenter
from tests.mobile.fakes import ManualClock

clock = ManualClock(int(sys.argv[2]))
walk = SimulatedWalk([(22.543, 114.058), (22.56, 114.058)], clock, speed_mps=1.3)
core = AppCore(sys.argv[1], location_provider=walk, now_ms=clock)
patrol = PatrolPresenter(core)
assert patrol.recover() == "resumed"
while True:
    clock.advance(10_000)
    kept = patrol.tick()
    if kept is not None:
        print(kept.point.at_ms, flush=True)  # printed after the commit: the point is on disk
"""


def test_a_recording_killed_with_sigkill_loses_no_point_it_kept(tmp_path, fake, clock, gps):
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    core = logged_in(tmp_path / "app", fake, clock, location_provider=gps)
    patrol_id = PatrolPresenter(core).start(GRID)
    core.close()
    repo = Path(__file__).resolve().parents[2]
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / "app"), str(clock())],
                             stdout=subprocess.PIPE, text=True, cwd=repo,
                             env={**os.environ, "PYTHONPATH": str(repo)})
    try:
        printed = [int(child.stdout.readline()) for _ in range(20)]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    clock.ms = printed[-1] + 60_000
    again = logged_in(tmp_path / "app", fake, clock, location_provider=gps)
    try:
        kept = [p.at_ms for _n, p, _m, _b in stored(again, patrol_id)]
        assert kept[:20] == printed  # every point the child said it kept (and perhaps one it had no time to say)
        assert PatrolPresenter(again).recover() == "resumed"
        PatrolPresenter(again).stop()
        assert [p for _s, batch in tracks(again, patrol_id) for p in batch][:20] == [
            rounded(p) for _n, p, _m, _b in stored(again, patrol_id)][:20]
    finally:
        again.close()


# --- the law: the tablet never sends a batch the server would refuse, and never loses a kept point ---------

@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 40_000),  # ms to the next fix
                          st.one_of(st.floats(-30, 60), st.sampled_from([5_000.0, -8_000.0])),  # metres north
                          st.one_of(st.none(), st.floats(2, 150)),  # accuracy
                          st.sampled_from([0, 0, 0, 0, 3_600_000])),  # a fix from the future, now and then
                min_size=1, max_size=40))
def test_whatever_the_gps_says_every_sealed_batch_passes_the_servers_rules(steps):
    import tempfile
    from pathlib import Path

    from mobile.store import Store
    from shared.track import SENDABLE, refusal

    clock = ManualClock(T0)
    gps = Gps(clock)
    with tempfile.TemporaryDirectory() as folder, Store(Path(folder) / "t.db", physical=clock) as store:
        recorder = PatrolRecorder(store, gps, clock, settings=RecorderSettings(batch_points=7))
        patrol_id = recorder.start(GRID, WORKER)
        lat = LAT
        for wait, metres, accuracy, ahead in steps:
            clock.advance(wait)
            lat = min(80.0, max(-80.0, lat + north(metres)))
            gps.fix(lat, accuracy=accuracy, at_ms=clock() + ahead)
            recorder.tick()
        recorder.stop()
        kept = store.track_points(patrol_id)
        batches = {}
        for _n, values, marks, batch in kept:
            assert (batch is not None) == (marks <= SENDABLE)  # sent exactly when sendable
            if batch is not None:
                batches.setdefault(batch, []).append(Point(*values))
        records = {r.values["seq"]: r.values for r in store.query("track")}
        assert sorted(records) == sorted(batches) == list(range(len(batches)))
        for seq, values in records.items():
            points = unpack(values["points"], parse_ms(values["start"]))
            assert points == [rounded(p) for p in batches[seq]]
            assert refusal(points, clock(), SERVER_MAX_DRIFT_MS) is None

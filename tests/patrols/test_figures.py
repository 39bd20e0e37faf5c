"""Fixed points on schedule, and the coverage figures on the store: a day, a week, the cache, a late track."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from sqlalchemy import func, select

from server.db import db
from server.models import PatrolCoverage
from server.patrols import coverage, service
from server.patrols.service import schedule

from .conftest import box_polygon, set_boundary, walk, write_patrol, write_point, write_visit

ZONE = timezone(timedelta(hours=8))
H = 3_600_000


def ms(day: date, hour: float) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=ZONE).timestamp() * 1000 + hour * H)


MONDAY = date(2026, 11, 30)
DAY = service.period_of("day", MONDAY, ZONE)
WEEK = service.period_of("week", MONDAY, ZONE)
LATER = ms(MONDAY, 24 * 30)  # "now", a month on


def test_a_daily_point_must_have_a_visit_each_day():
    visited = schedule(24, [ms(MONDAY, 10)], DAY.start_ms, DAY.end_ms, LATER)
    assert (visited.due, visited.met, visited.rate) == (1, 1, 1.0)
    missed = schedule(24, [], DAY.start_ms, DAY.end_ms, LATER)
    assert (missed.due, missed.met, missed.rate) == (1, 0, 0.0)
    outside = schedule(24, [ms(MONDAY, -1), ms(MONDAY, 24)], DAY.start_ms, DAY.end_ms, LATER)
    assert (outside.due, outside.met) == (1, 0)  # the evening before and the midnight after are other days
    visits = [ms(MONDAY + timedelta(days=n), 9) for n in range(7) if n != 3]  # every day but Thursday
    week = schedule(24, visits, WEEK.start_ms, WEEK.end_ms, LATER)
    assert (week.due, week.met) == (7, 6) and [w[2] for w in week.windows] == [True, True, True, False, True, True, True]
    twice = schedule(24, [ms(MONDAY, 9), ms(MONDAY, 15)], DAY.start_ms, DAY.end_ms, LATER)
    assert (twice.due, twice.met) == (1, 1)  # two visits in one window meet it once


def test_a_half_day_point_is_due_twice_a_day_and_a_weekly_one_not_yet_on_a_day():
    morning = schedule(12, [ms(MONDAY, 9)], DAY.start_ms, DAY.end_ms, LATER)
    assert (morning.due, morning.met) == (2, 1)
    weekly = schedule(168, [], DAY.start_ms, DAY.end_ms, LATER)
    assert (weekly.due, weekly.met) == (0, 0) and weekly.rate is None
    weekly = schedule(168, [ms(MONDAY, 9)], DAY.start_ms, DAY.end_ms, LATER)
    assert (weekly.due, weekly.met) == (1, 1)  # a running window counts once it is met
    assert (schedule(168, [], WEEK.start_ms, WEEK.end_ms, LATER).due) == 1


def test_today_counts_the_windows_that_have_ended_by_now():
    now = ms(MONDAY, 14)
    assert (schedule(24, [], DAY.start_ms, DAY.end_ms, now).due) == 0  # the day is not over
    assert (schedule(24, [ms(MONDAY, 9)], DAY.start_ms, DAY.end_ms, now).met) == 1
    half = schedule(12, [], DAY.start_ms, DAY.end_ms, now)
    assert (half.due, half.met) == (1, 0)  # the morning window ended at noon, unmet


def test_windows_before_a_point_was_set_count_only_if_met():
    since = ms(MONDAY, 24 * 3 + 8)  # set on Thursday morning
    week = schedule(24, [], WEEK.start_ms, WEEK.end_ms, LATER, since)
    assert (week.due, week.met) == (3, 0)  # Friday to Sunday
    week = schedule(24, [ms(MONDAY, 10)], WEEK.start_ms, WEEK.end_ms, LATER, since)
    assert (week.due, week.met) == (4, 1)  # a visit before it was set still counts where it fell


def _zone_now():
    from flask import current_app

    from server.clock import server_clock
    from server.config import parse_offset

    return parse_offset(current_app.config["GRIDPATROL_UTC_OFFSET"]), server_clock().physical_ms()


# A 200 m x 200 m square south-west of the demo's G-0101 events: 16 cells, its rows of centres at 25 m, 75 m … north.
SOUTH, WEST = 22.5400, 114.0500
DLAT, DLON = 200 / 111_195, 200 / (111_195 * 0.92362)  # cos(22.54°)


def _square_row(row: int, start_ms: int) -> list:
    """A walk along row `row` (0 south … 3 north) of the square's cell centres, west to east, 10 m a fix."""
    lat = SOUTH + DLAT * (row * 50 + 25) / 200
    return walk(start_ms, (lat, WEST - DLON * 0.05), (lat, WEST + DLON * 1.05), 23)


def test_coverage_of_a_day_and_of_a_week_on_the_store(demo):
    zone, now = _zone_now()
    today = service.district_day(now, zone)
    yesterday = today - timedelta(days=1)
    set_boundary("G-0101", box_polygon((SOUTH, WEST, SOUTH + DLAT, WEST + DLON)))
    set_boundary("G-0102", None)
    start_today = service.day_start_ms(today, zone)
    start_yesterday = service.day_start_ms(yesterday, zone)
    write_patrol("worker1", "G-0101", _square_row(0, start_yesterday + 9 * H))
    write_patrol("worker2", "G-0101", _square_row(0, start_yesterday + 10 * H))  # the same row again
    first_today = start_today + 1_000  # just after midnight (within the drift limit even at 00:00)
    write_patrol("worker1", "G-0101", _square_row(2, first_today))
    grids = service.load_grids()
    days = {}
    for day in (yesterday, today):
        [row, none] = coverage.coverage(grids, ["G-0101", "G-0102"], service.period_of("day", day, zone), zone, now)
        days[day] = row
        assert none.cells is None and none.rate is None  # no boundary, no coverage
    assert days[yesterday].cells == 16 and days[yesterday].covered == 4 and days[yesterday].rate == 0.25
    assert days[yesterday].patrols == 2 and days[yesterday].workers == 2
    assert days[yesterday].patrol_ms == 2 * 22 * 10_000  # two walks of 22 legs of 10 s
    assert days[today].covered == 4
    # Both days in one period: each cell once.
    both = service.Period("week", yesterday, today, start_yesterday, start_today + service.DAY_MS)
    [row, _none] = coverage.coverage(grids, ["G-0101", "G-0102"], both, zone, now)
    assert (row.covered, row.cells, row.patrols) == (8, 16, 3)
    total = coverage.total([row, _none])
    assert total.cells == 16 and total.rate == 0.5


def test_the_cache_is_used_until_a_late_track_or_a_new_boundary_changes_the_day(demo):
    zone, now = _zone_now()
    yesterday = service.district_day(now, zone) - timedelta(days=1)
    start = service.day_start_ms(yesterday, zone)
    set_boundary("G-0101", box_polygon((SOUTH, WEST, SOUTH + DLAT, WEST + DLON)))
    write_patrol("worker1", "G-0101", _square_row(1, start + 9 * H))
    grids = service.load_grids()
    period = service.period_of("day", yesterday, zone)
    first = coverage.day_cells(grids, ["G-0101"], [yesterday], zone, now,
                               service.patrols_between(period.start_ms, period.end_ms, now))
    assert first[("G-0101", yesterday)].cached is False and first[("G-0101", yesterday)].bits.sum() == 4
    again = coverage.day_cells(grids, ["G-0101"], [yesterday], zone, now,
                               service.patrols_between(period.start_ms, period.end_ms, now))
    assert again[("G-0101", yesterday)].cached is True and again[("G-0101", yesterday)].bits.sum() == 4
    # A tablet offline since yesterday syncs its patrol today: yesterday's coverage is computed again.
    write_patrol("worker2", "G-0101", _square_row(3, start + 15 * H))
    [row] = coverage.coverage(grids, ["G-0101"], period, zone, now)
    assert row.covered == 8
    assert db.session.scalar(select(func.count()).select_from(PatrolCoverage)) == 1
    stored = db.session.get(PatrolCoverage, ("G-0101", yesterday.isoformat()))
    assert stored.covered == 8 and stored.cells == 16
    # A new outline (the whole square's west half): computed again on the new cells.
    set_boundary("G-0101", box_polygon((SOUTH, WEST, SOUTH + DLAT, WEST + DLON / 2)))
    [row] = coverage.coverage(service.load_grids(), ["G-0101"], period, zone, now)
    assert (row.covered, row.cells) == (4, 8)


def test_fixed_points_on_schedule_on_the_store(demo):
    zone, now = _zone_now()
    yesterday = service.district_day(now, zone) - timedelta(days=1)
    start = service.day_start_ms(yesterday, zone)
    daily = write_point("G-0101", "每日", 22.5436, 114.0590, every_hours=24)
    half = write_point("G-0101", "半日", 22.5431, 114.0579, every_hours=12)
    # Both were just set: yesterday's windows began before that, and count only where met.
    write_visit(daily, "worker1", start + 10 * H)
    write_visit(half, "worker1", start + 10 * H)
    period = service.period_of("day", yesterday, zone)
    [row] = coverage.coverage(service.load_grids(), ["G-0101"], period, zone, now)
    assert (row.points_due, row.points_met) == (2, 2)
    page_points = service.map_data(period, now, service.load_grids(), grid="G-0101", worker=None)
    assert {p.name: (page_points.schedules[p.id].due, page_points.schedules[p.id].met)
            for p in page_points.points} == {"每日": (1, 1), "半日": (1, 1)}

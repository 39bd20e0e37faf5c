"""The frequency plan (server/patrols/plan.py) on made-up histories with known answers, and as records for tablets."""

from __future__ import annotations

import secrets
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import select

from server.clock import server_clock
from server.db import db
from server.models import Record
from server.patrols import plan
from server.patrols.plan import PointNeed, suggest
from server.sync import apply
from shared.hlc import format_ms
from shared.records import uuid7

from .conftest import user, write_point, write_visit

ZONE = timezone(timedelta(hours=8))
NOW = int(datetime(2026, 12, 6, 12, 0, tzinfo=ZONE).timestamp() * 1000)


def at(day: date, hour: int, minute: int = 15) -> int:
    return int(datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZONE).timestamp() * 1000)


def history(per_hour: dict[int, int], days: int = 56, weekday: int | None = None) -> list[int]:
    """Events: per_hour[h] events at hour h, spread over the last `days` days (or all on one weekday, 1-7)."""
    found = []
    first = date(2026, 12, 6) - timedelta(days=days - 1)
    candidates = [first + timedelta(days=n) for n in range(days)]
    if weekday is not None:
        candidates = [d for d in candidates if d.isoweekday() == weekday]
    for hour, count in per_hour.items():
        for n in range(count):
            found.append(at(candidates[n % len(candidates)], hour, n % 60))
    return found


def test_the_evening_grid_gets_its_evening_hours_one_round_and_no_busy_day():
    # 60 events in 56 days: 30 at 19 h, 20 at 20 h, 10 at 8 h. Each of those hours holds at least 1.5/24 = 6.25 %.
    events = history({19: 30, 20: 20, 8: 10})
    found = suggest("G-1", events, 56, ZONE, NOW)
    assert found.hours == [8, 19, 20]
    assert found.rounds_per_day == 1  # 60 / 56 = 1.07 events a day: one round per 2
    assert found.basis_events == 60 and not found.default
    assert found.busy_weekdays == []  # spread evenly over the weekdays
    assert found.summary(english=False).startswith("建议巡查时段：8–9时、19–21时；每天 1 轮")
    assert found.summary(english=True).startswith("Patrol at 08:00–09:00, 19:00–21:00; 1 round a day")


def test_an_hour_just_below_the_threshold_is_left_out():
    # 96 events: 6 at 10 h is exactly 6.25 % (in); 5 at 11 h is 5.2 % (out); the rest at 14 h.
    found = suggest("G-1", history({10: 6, 11: 5, 14: 85}), 56, ZONE, NOW)
    assert found.hours == [10, 14]


def test_at_most_eight_hours_the_busiest():
    # 6 hours of 10 events each and 4 of 12: 108 events, every one of those hours above 1.5/24 (6.25 %);
    # the 8 busiest are kept.
    per_hour = {h: 10 for h in range(6, 12)} | {h: 12 for h in (18, 19, 20, 21)}
    found = suggest("G-1", history(per_hour), 56, ZONE, NOW)
    assert found.hours == [6, 7, 8, 9, 18, 19, 20, 21]  # the four of 20, then ties broken by the earlier hour


def test_rounds_grow_with_events_a_day_and_stop_at_four():
    assert suggest("G-1", history({9: 300}), 56, ZONE, NOW).rounds_per_day == 3  # 5.36 a day / 2, rounded up
    assert suggest("G-1", history({9: 224}), 56, ZONE, NOW).rounds_per_day == 2  # exactly 4 a day: 2
    assert suggest("G-1", history({9: 2000}), 56, ZONE, NOW).rounds_per_day == plan.MAX_ROUNDS


def test_few_events_give_the_default_hours_and_one_round():
    found = suggest("G-1", history({22: 9}), 56, ZONE, NOW)
    assert found.default and found.hours == list(plan.DEFAULT_HOURS) and found.rounds_per_day == 1
    assert found.busy_weekdays == []
    assert "事件太少" in found.summary(english=False) and "default hours" in found.summary(english=True)
    assert suggest("G-1", [], 56, ZONE, NOW).hours == list(plan.DEFAULT_HOURS)


def test_busy_weekdays_are_those_above_one_and_a_quarter_of_an_even_share():
    events = history({9: 28}) + history({20: 12}, weekday=6)  # 40 events; Saturdays hold 4 + 12 = 16
    found = suggest("G-1", events, 56, ZONE, NOW)
    assert found.busy_weekdays == [6]
    assert "周六" in found.summary(english=False) and "Sat" in found.summary(english=True)


def test_fixed_points_most_in_need_come_first():
    hour = 3_600_000
    points = [PointNeed("a", "按时的", None, 24, NOW - 2 * hour, 0),  # visited 2 h ago, nothing missed: not listed
              PointNeed("b", "超期一天", None, 24, NOW - 48 * hour, 1),  # need 2
              PointNeed("c", "从未巡查", None, 24, None, 0),  # never: first
              PointNeed("d", "超期半天", None, 12, NOW - 18 * hour, 0),  # need 1.5
              PointNeed("e", "常漏巡", None, 24, NOW - 3 * hour, 9)]  # not overdue, but missed 9 windows
    found = suggest("G-1", [], 56, ZONE, NOW, points)
    assert found.points == ["c", "b", "d", "e"]
    assert "优先定点：从未巡查、超期一天、超期半天、常漏巡" in found.summary(english=False)


def test_the_basis_is_the_last_8_weeks_and_the_season_a_year_ago():
    recent, season = plan.basis_periods(date(2026, 12, 6), ZONE)
    assert (recent.first, recent.last) == (date(2026, 10, 12), date(2026, 12, 6))
    assert (season.first, season.last) == (date(2025, 12, 1), date(2026, 2, 28))  # winter 2025-26
    _recent, season = plan.basis_periods(date(2027, 1, 20), ZONE)
    assert (season.first, season.last) == (date(2025, 12, 1), date(2026, 2, 28))  # January: the same winter a year ago
    _recent, season = plan.basis_periods(date(2026, 7, 1), ZONE)
    assert (season.first, season.last) == (date(2025, 6, 1), date(2025, 8, 31))


def _event(grid: str, reported_ms: int) -> None:
    apply.write_as_server([apply.stamp("event", uuid7(reported_ms, secrets.token_bytes(10)), {
        "grid": grid, "category": "garbage", "description": "历史事件", "urgent": False, "micro": True,
        "photos": [], "reporter": user("worker1").id, "reported_at": format_ms(reported_ms)})])


def test_flask_patrols_plan_writes_each_grids_plan_for_the_tablets(app, demo):
    now = server_clock().physical_ms()
    zone = timezone(timedelta(hours=8))
    today = datetime.fromtimestamp(now / 1000, zone).date()
    for n in range(24):  # G-0102: 24 events at 21 h over the last 24 days (none in the future)
        day = today - timedelta(days=n + 1)
        _event("G-0102", int(datetime(day.year, day.month, day.day, 21, 5, tzinfo=zone).timestamp() * 1000))
    point = write_point("G-0101", "东湖路口", 22.5436, 114.0590)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["patrols", "plan"])
    assert result.exit_code == 0, result.output
    assert "Wrote 6 patrol plans" in result.output
    db.session.rollback()
    plans = {r.field_values["grid"]: r for r in db.session.scalars(select(Record).where(Record.kind == "patrol_plan"))}
    assert sorted(plans) == ["G-0101", "G-0102", "G-0201", "G-0202", "G-0301", "G-0302"]
    evening = plans["G-0102"]
    assert evening.bucket == "grid:G-0102" and evening.id == plan.plan_id("G-0102")
    values = evening.field_values
    assert values["hours"] == [21] and values["basis_events"] == 24 and values["rounds_per_day"] == 1
    assert values["summary"].startswith("建议巡查时段：21–22时") and values["summary_en"].startswith("Patrol at 21:00")
    assert plans["G-0101"].field_values["points"] == [point]  # never visited
    # Run again after a visit: the same record is written over; the point is no longer overdue.
    write_visit(point, "worker1", now - 60_000)
    assert runner.invoke(args=["patrols", "plan", "--grid", "G-0101"]).exit_code == 0
    db.session.rollback()
    again = db.session.scalars(select(Record).where(Record.kind == "patrol_plan")).all()
    assert len(again) == 6
    assert next(r for r in again if r.id == plan.plan_id("G-0101")).field_values["points"] == []
    assert runner.invoke(args=["patrols", "plan", "--grid", "G-9999"]).exit_code != 0


def test_a_worker_pulls_the_plan_of_their_grid_and_may_not_write_one(pages, app):
    from .conftest import Tablet

    assert app.test_cli_runner().invoke(args=["patrols", "plan"]).exit_code == 0
    tablet = Tablet(pages, "worker1")
    changes, _text = tablet.pull_all()
    pulled = [c for c in changes if c["kind"] == "patrol_plan"]
    assert [c["bucket"] for c in pulled] == ["grid:G-0101"]
    hlc = tablet.hlc()
    [result] = tablet.push({"kind": "patrol_plan", "id": plan.plan_id("G-0101"), "bucket": "grid:G-0101",
                            "fields": {"grid": ["G-0101", hlc], "computed_at": [format_ms(NOW), hlc], "hours": [[3], hlc]}})
    assert result["status"] == "rejected" and result["code"] == "role_may_not"

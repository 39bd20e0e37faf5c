"""The frequency plan (巡查频次建议): when to patrol a grid, how often, and which fixed points first.

**The rule** (`suggest`, a pure function of the event times; tests/patrols/test_plan.py runs it on
made-up histories with known answers):

1. *Basis.* The grid's events of the last ``BASIS_WEEKS`` (8) weeks, and those of the current
   season one year earlier (the season's three months: winter is December to February, as the
   statistics count it): the recent rhythm and the season's. Events are the cases the statistics
   count (server/stats/service.py ``cohort``: not deleted, not duplicates), by the time reported, in
   the district's time.
2. *Hours.* Each hour of the day gets its share of the basis events. The patrol hours are those whose
   share is at least ``HOUR_FACTOR`` (1.5) times an even share (1/24), the busiest ``MAX_HOURS`` (8)
   of them at most. With fewer than ``MIN_EVENTS`` (10) events the shares say nothing, and the hours
   are ``DEFAULT_HOURS`` (9, 10, 15 and 16 o'clock).
3. *Rounds per day.* One round for every ``EVENTS_PER_ROUND`` (2) events a day the basis holds
   (events / the basis's days), rounded up, at least 1 and at most ``MAX_ROUNDS`` (4).
4. *Busy weekdays.* The weekdays (1 = Monday … 7 = Sunday) whose share of the basis events is at
   least ``WEEKDAY_FACTOR`` (1.25) times an even share (1/7); none with fewer than MIN_EVENTS.
5. *Fixed points most in need.* Each point's need is the hours since its last visit over its
   ``every_hours`` (never visited: the most in need); those with a need of at least 1 (overdue) come
   first, most overdue first, then by the windows missed in the last 4 weeks (since the point was set,
   if later: service.py, "On schedule"); at most
   ``PLAN_POINTS`` (10) of them.

`write_plans` writes each grid's plan as its ``patrol_plan`` record (one per grid, its id derived from
the grid's code, so each run writes over the last) into the grid's bucket, as the server: tablets
pull it with the grid's other records. ``flask --app server patrols plan`` runs it (a daily cron job);
the demo runs it once.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Iterable, Sequence

from sqlalchemy import select

from shared.hlc import format_ms
from shared.records import grid_bucket

from ..db import db
from ..models import CaseRow
from ..stats import service as stats
from . import service

BASIS_WEEKS = 8
MIN_EVENTS = 10
HOUR_FACTOR = 1.5
MAX_HOURS = 8
DEFAULT_HOURS = (9, 10, 15, 16)
EVENTS_PER_ROUND = 2.0
MAX_ROUNDS = 4
WEEKDAY_FACTOR = 1.25
PLAN_POINTS = 10
MISSED_WEEKS = 4
NAMESPACE = uuid.UUID("3b0f6a52-8d0e-4c57-9d3e-2f6e0c1a7b44")
WEEKDAYS_ZH = "一二三四五六日"
WEEKDAYS_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class PointNeed:
    """A fixed point as the plan weighs it."""

    id: str
    name: str
    name_en: str | None
    every_hours: int
    last_visit_ms: int | None
    missed: int  # windows missed over the last MISSED_WEEKS weeks

    def need(self, now_ms: int) -> float:
        """Hours since the last visit over every_hours; never visited: infinite."""
        if self.last_visit_ms is None:
            return math.inf
        return max(0, now_ms - self.last_visit_ms) / 3_600_000 / self.every_hours


@dataclass
class Plan:
    """A grid's suggested schedule, as its patrol_plan record carries it."""

    grid: str
    hours: list[int]
    rounds_per_day: int
    busy_weekdays: list[int]
    points: list[str]
    basis_events: int
    basis_days: int
    default: bool  # too few events: the default hours
    point_names: list[tuple[str, str | None]] = field(default_factory=list)

    def summary(self, english: bool) -> str:
        """The plan in one sentence, in Chinese or English (the record carries both)."""
        hours = hour_ranges(self.hours, english)
        if english:
            text = f"Patrol at {hours}; {self.rounds_per_day} round{'s' if self.rounds_per_day != 1 else ''} a day"
            if self.busy_weekdays:
                text += "; busiest on " + ", ".join(WEEKDAYS_EN[d - 1] for d in self.busy_weekdays)
            if self.point_names:
                text += "; fixed points first: " + ", ".join(en or zh for zh, en in self.point_names[:5])
            basis = f"{self.basis_events} events of the last {BASIS_WEEKS} weeks and of this season a year ago"
            return text + (f" (default hours: only {basis})." if self.default else f" (from {basis}).")
        text = f"建议巡查时段：{hours}；每天 {self.rounds_per_day} 轮"
        if self.busy_weekdays:
            text += "；重点日：" + "、".join("周" + WEEKDAYS_ZH[d - 1] for d in self.busy_weekdays)
        if self.point_names:
            text += "；优先定点：" + "、".join(zh for zh, _en in self.point_names[:5])
        basis = f"近{BASIS_WEEKS}周及去年同季 {self.basis_events} 起事件"
        return text + (f"（事件太少，按默认时段：{basis}）。" if self.default else f"（依据：{basis}）。")


def hour_ranges(hours: Sequence[int], english: bool) -> str:
    """9, 10, 15, 16 as "09–11, 15–17" (each range up to the end of its last hour)."""
    ranges, start, last = [], None, None
    for hour in sorted(hours):
        if start is None:
            start = last = hour
        elif hour == last + 1:
            last = hour
        else:
            ranges.append((start, last))
            start = last = hour
    if start is not None:
        ranges.append((start, last))
    if english:
        return ", ".join(f"{a:02d}:00–{b + 1:02d}:00" for a, b in ranges)
    return "、".join(f"{a}–{b + 1}时" for a, b in ranges)


def suggest(grid: str, reported_ms: Sequence[int], basis_days: int, zone: timezone, now_ms: int,
            points: Sequence[PointNeed] = ()) -> Plan:
    """The module's rule, on the basis events' report times (ms) over ``basis_days`` days."""
    count = len(reported_ms)
    hours = [0] * 24
    weekdays = [0] * 7
    for ms in reported_ms:
        at = datetime.fromtimestamp(ms / 1000, zone)
        hours[at.hour] += 1
        weekdays[at.weekday()] += 1
    default = count < MIN_EVENTS
    if default:
        chosen = list(DEFAULT_HOURS)
        busy: list[int] = []
    else:
        above = [h for h in range(24) if hours[h] / count >= HOUR_FACTOR / 24]
        chosen = sorted(sorted(above, key=lambda h: (-hours[h], h))[:MAX_HOURS])
        busy = [d + 1 for d in range(7) if weekdays[d] / count >= WEEKDAY_FACTOR / 7]
    per_day = count / basis_days if basis_days else 0.0
    rounds = min(MAX_ROUNDS, max(1, math.ceil(per_day / EVENTS_PER_ROUND - 1e-9)))
    ranked = sorted(points, key=lambda p: (-(p.need(now_ms) >= 1), -min(p.need(now_ms), 1e12), -p.missed, p.name,
                                           p.id))
    chosen_points = [p for p in ranked if p.need(now_ms) >= 1 or p.missed][:PLAN_POINTS]
    return Plan(grid, chosen, rounds, busy, [p.id for p in chosen_points], count, basis_days, default,
                [(p.name, p.name_en) for p in chosen_points])


# --- the basis, from the cases table ----------------------------------------------------------------

def basis_periods(today: date, zone: timezone) -> list[stats.Period]:
    """The last BASIS_WEEKS weeks up to today, and the current season's three months a year earlier."""
    recent = stats.Period.of_days(today - timedelta(days=BASIS_WEEKS * 7 - 1), today, zone)
    season = stats.SEASONS[today.month]
    months = [m for m, s in stats.SEASONS.items() if s == season]  # winter: 12, 1, 2
    # The season a year ago: winter 2026-27's is December 2025 to February 2026.
    year = today.year - 1
    if season == "winter" and today.month == 12:
        first = date(year, 12, 1)
    elif season == "winter":
        first = date(year - 1, 12, 1)
    else:
        first = date(year, min(months), 1)
    last = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    for _ in range(2):
        last = (last.replace(day=28) + timedelta(days=4)).replace(day=1)
    last_year = stats.Period.of_days(first, last - timedelta(days=1), zone)
    return [recent, last_year]


def basis_events(periods: Sequence[stats.Period], grids: Iterable[str] | None = None) -> dict[str, list[int]]:
    """The report times of the cohort's events in each period, by grid (one query per period)."""
    found: dict[str, list[int]] = {}
    for period in periods:
        statement = select(CaseRow.grid, CaseRow.reported_ms).where(*stats.cohort(period, grids))
        for grid, reported in db.session.execute(statement.execution_options(yield_per=5000)):
            found.setdefault(grid, []).append(reported)
    return found


def point_needs(points: Sequence[service.FixedPoint], now_ms: int) -> list[PointNeed]:
    """Each point's last visit and the windows it missed over the last MISSED_WEEKS weeks."""
    start = now_ms - MISSED_WEEKS * 7 * service.DAY_MS
    last = service.last_visits([p.id for p in points])
    visits = service.visits_of([p.id for p in points], start, now_ms)
    needs = []
    for point in points:
        plan = service.point_schedule(point, visits.get(point.id, []), start, now_ms, now_ms)
        needs.append(PointNeed(point.id, point.name, point.name_en, point.every_hours, last.get(point.id),
                               plan.due - plan.met))
    return needs


def plans(grids: Iterable[str], today: date, zone: timezone, now_ms: int) -> dict[str, Plan]:
    """The plan of each grid, from the cases table and the fixed points."""
    codes = sorted(set(grids))
    periods = basis_periods(today, zone)
    days = sum((p.last - p.first).days + 1 for p in periods)
    events = basis_events(periods, codes)
    points = service.fixed_points(codes)
    needs = {p.id: n for p, n in zip(points, point_needs(points, now_ms))}
    return {code: suggest(code, events.get(code, []), days, zone, now_ms,
                          [needs[p.id] for p in points if p.grid == code]) for code in codes}


def plan_id(grid: str) -> str:
    """The id of a grid's patrol_plan record: one per grid, the same on every run."""
    return str(uuid.uuid5(NAMESPACE, f"patrol_plan:{grid}"))


def changes_of(found: dict[str, Plan], now_ms: int) -> list:
    """The plans as server-stamped patrol_plan changes."""
    from ..sync import apply

    return [apply.stamp("patrol_plan", plan_id(code), {
        "grid": code, "computed_at": format_ms(now_ms), "hours": plan.hours, "rounds_per_day": plan.rounds_per_day,
        "busy_weekdays": plan.busy_weekdays, "points": plan.points, "basis_events": plan.basis_events,
        "summary": plan.summary(english=False), "summary_en": plan.summary(english=True)},
        bucket=grid_bucket(code)) for code, plan in sorted(found.items())]


def write_plans(grids: Iterable[str], today: date, zone: timezone, now_ms: int) -> dict[str, Plan]:
    """Compute each grid's plan and write it as the server (apply.write_as_server); the plans written."""
    from ..sync import apply

    found = plans(grids, today, zone, now_ms)
    results = apply.write_as_server(changes_of(found, now_ms))
    refused = [r for r in results if r.status == "rejected"]
    if refused:
        raise RuntimeError(f"patrol plans refused: {refused[0].reason}")
    return found


def stored_plans(grids: Iterable[str]) -> dict[str, dict]:
    """The patrol_plan records stored for the grids (what tablets have), by grid."""
    from ..models import Record

    ids = {plan_id(code): code for code in grids}
    found = {}
    for at in range(0, len(ids), 500):
        chunk = sorted(ids)[at:at + 500]
        for record_id, values in db.session.execute(select(Record.id, Record.field_values).where(
                Record.id.in_(chunk))):
            found[ids[record_id]] = values
    return found

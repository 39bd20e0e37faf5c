"""The figures a district runs on, in the weekly layout of 数字化城管 platforms, from the cases table.

**The cohort.** For a period [from, to) the figures count the cases whose event was *reported* in
the period, not deleted and not marked duplicate, each in its state now (server/sync/casebook.py
keeps that state per case). A group is a district, street, community, grid, unit, category or
reporting worker. Grouped by unit, a case counts for the unit it is dispatched to now, which for a
closed case is the unit that held it last (a case a unit sent back as not theirs counts for no unit
until it is dispatched again).

**The figures** (``FIGURES``, each the number of cases of the cohort that):

- ``reported`` 受理: are in it;
- ``dispatched`` 派遣: were dispatched at least once;
- ``due`` 应结案: are closed (handled on the spot included), or whose deadline has passed at the end
  of the period or now, whichever is earlier;
- ``closed`` 结案: are closed, however;
- ``closed_on_time`` 按期结案: closed no later than the deadline in force when they closed; handled
  on the spot, and closed without ever having had a deadline, count as on time;
- ``reworked`` 返工: had at least one applied failed verification;
- ``extended`` 延期: had at least one granted extension;
- ``supervised`` 督办: are under deadline supervision;
- ``overdue_open``: are open and past their deadline now.

Rates (``RATES``) divide by ``due``: closure = closed / due, on time = closed_on_time / due, rework =
reworked / due, extension = extended / due; None where ``due`` is 0.

**How.** One SQL statement per table: the cohort, grouped by grid, unit, category or reporter, with
one ``SUM(CASE …)`` per figure, served by ``ix_cases_reported``. Streets, communities and the
district are sums of their grids, resolved from the reference data when read, as the queue does.
`tests/stats/test_figures.py` proves that the SQL figures equal a plain-Python reading of the
definitions above over the folded cases, for random case histories.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable, Iterator, Mapping

from sqlalchemy import and_, case, func, or_, select


from ..db import db
from ..models import CaseRow
from ..reference import Reference, names_of_users

FIGURES = ("reported", "dispatched", "due", "closed", "closed_on_time", "reworked", "extended", "supervised",
           "overdue_open")
RATES = {"closure_rate": "closed", "on_time_rate": "closed_on_time", "rework_rate": "reworked",
         "extension_rate": "extended"}
GROUPS = ("district", "street", "community", "grid", "unit", "category", "reporter")
PLACE_LEVELS = ("district", "street", "community", "grid")  # each drills into the next
NONE_KEY = ""  # the group of cases without a unit (or a place the reference data no longer knows)
_DAY_MS = 86_400_000


class BadQuery(ValueError):
    """A period or a group the figures cannot be asked for; args[0] says which, args[1] why."""


@dataclass(frozen=True)
class Period:
    """[start, end) in Unix ms, from district days ``first`` to ``last`` (inclusive)."""

    first: date
    last: date
    start_ms: int
    end_ms: int

    @classmethod
    def of_days(cls, first: date, last: date, zone: timezone) -> "Period":
        """The period from the start of ``first`` to the end of ``last``, in the district's time."""
        if last < first:
            raise BadQuery("to", "must not be before from")
        start = datetime(first.year, first.month, first.day, tzinfo=zone)
        end = datetime(last.year, last.month, last.day, tzinfo=zone) + timedelta(days=1)
        return cls(first, last, int(start.timestamp() * 1000), int(end.timestamp() * 1000))


def parse_day(name: str, text: str | None) -> date:
    """A YYYY-MM-DD day; BadQuery otherwise (the input reaches nothing before this check)."""
    if not isinstance(text, str) or len(text) != 10 or not text.isascii():
        raise BadQuery(name, "must be a day as YYYY-MM-DD")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise BadQuery(name, "must be a day as YYYY-MM-DD") from None
    if not 1900 <= day.year <= 2099:
        raise BadQuery(name, "must be a day between the years 1900 and 2099")
    return day


def week_of(day: date) -> tuple[date, date]:
    """The Monday-to-Sunday week of a day, the platforms' weekly report."""
    monday = day - timedelta(days=day.weekday())
    return monday, monday + timedelta(days=6)


@dataclass
class Row:
    """One group's figures: ``key`` its code (or user id), ``name`` what the pages show."""

    key: str
    name: str
    figures: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FIGURES, 0))

    def add(self, figures: Mapping[str, int]) -> None:
        """Add another group's figures to this one's (a grid's to its street's)."""
        for name in FIGURES:
            self.figures[name] += figures[name]

    @property
    def rates(self) -> dict[str, float | None]:
        """closure, on time, rework and extension rates over ``due``; None where nothing is due."""
        due = self.figures["due"]
        return {rate: (self.figures[figure] / due if due else None) for rate, figure in RATES.items()}

    def as_dict(self) -> dict[str, Any]:
        """The row as the JSON API answers it."""
        return {"key": self.key, "name": self.name, **self.figures, **self.rates}


@dataclass
class Table:
    """A statistics table: its rows, sorted as the pages show them, and the total over all of them."""

    group: str
    period: Period
    rows: list[Row]
    total: Row


def _figure_columns(period: Period, now_ms: int) -> list:
    horizon = min(period.end_ms, now_ms)
    closed = CaseRow.status == "closed"
    has_deadline = CaseRow.deadline_ms.is_not(None)

    def count(condition):
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    return [
        func.count(),
        count(CaseRow.dispatched_ms.is_not(None)),
        count(or_(closed, and_(has_deadline, CaseRow.deadline_ms < horizon))),
        count(closed),
        count(and_(closed, or_(CaseRow.resolution == "handled_on_spot", CaseRow.deadline_ms.is_(None),
                               CaseRow.closed_ms <= CaseRow.deadline_ms))),
        count(CaseRow.failures > 0),
        count(CaseRow.extensions > 0),
        count(CaseRow.supervised.is_(True)),
        count(and_(CaseRow.open.is_(True), has_deadline, CaseRow.deadline_ms < now_ms)),
    ]


def cohort(period: Period, grids: Iterable[str] | None = None) -> list:
    """The SQL conditions of the cohort: reported in the period, not deleted, not a duplicate (in these grids)."""
    conditions = [CaseRow.reported_ms >= period.start_ms, CaseRow.reported_ms < period.end_ms,
                  CaseRow.deleted.is_(False),
                  or_(CaseRow.resolution.is_(None), CaseRow.resolution != "duplicate")]
    if grids is not None:
        conditions.append(CaseRow.grid.in_(sorted(grids)))
    return conditions


_KEY_COLUMNS = {"grid": CaseRow.grid, "unit": CaseRow.unit, "category": CaseRow.category,
                "reporter": CaseRow.reporter}


def grouped(key: str, period: Period, now_ms: int, grids: Iterable[str] | None = None) -> dict[str, dict[str, int]]:
    """The figures by grid, unit, category or reporter, over the cohort (in these grids): one statement."""
    column = _KEY_COLUMNS[key]
    rows = db.session.execute(select(column, *_figure_columns(period, now_ms))
                              .where(*cohort(period, grids)).group_by(column)).all()
    return {(found[0] or NONE_KEY): dict(zip(FIGURES, map(int, found[1:]))) for found in rows}


def grids_within(reference: Reference, street: str | None = None, community: str | None = None) -> list[str] | None:
    """The grid codes of a street or a community; None for the whole district."""
    if not street and not community:
        return None
    return [code for code, grid in reference.grids.items()
            if (not street or grid.get("street") == street) and (not community or grid.get("community") == community)]


def table(group: str, period: Period, now_ms: int, reference: Reference, *, street: str | None = None,
          community: str | None = None) -> Table:
    """The figures of the cohort by ``group`` (GROUPS), within a street or a community if given."""
    if group not in GROUPS:
        raise BadQuery("group", "must be one of " + ", ".join(GROUPS))
    grids = grids_within(reference, street, community)
    rows: dict[str, Row] = {}
    if group in PLACE_LEVELS:
        for code, figures in grouped("grid", period, now_ms, grids).items():
            place = reference.grid(code)
            key = code if group == "grid" else (place.get(group) or NONE_KEY)
            name = (place.get("name") or code) if group == "grid" else key
            rows.setdefault(key, Row(key, name)).add(figures)
    else:
        found = grouped(group, period, now_ms, grids)
        names = (names_of_users(found) if group == "reporter"
                 else {code: (reference.units if group == "unit" else reference.categories).get(code, {}).get("name")
                       for code in found})
        for key, figures in found.items():
            rows[key] = Row(key, names.get(key) or key)
            rows[key].add(figures)
    total = Row("*", "")
    for row in rows.values():
        total.add(row.figures)
    ordered = sorted(rows.values(), key=lambda r: (r.key == NONE_KEY, -r.figures["reported"], r.key))
    return Table(group, period, ordered, total)


# --- the field work behind the figures ----------------------------------------------------------

SEASONS = {12: "winter", 1: "winter", 2: "winter", 3: "spring", 4: "spring", 5: "spring",
           6: "summer", 7: "summer", 8: "summer", 9: "autumn", 10: "autumn", 11: "autumn"}


@dataclass(frozen=True)
class Timing:
    """Hours from report to a step, over the cases that took it: how many, the mean and the 90th percentile."""

    count: int
    mean_hours: float | None
    p90_hours: float | None


def _timing(durations_ms: list[int]) -> Timing:
    if not durations_ms:
        return Timing(0, None, None)
    ordered = sorted(durations_ms)
    p90 = ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]  # nearest rank
    return Timing(len(ordered), sum(ordered) / len(ordered) / 3_600_000, p90 / 3_600_000)


@dataclass(frozen=True)
class Rhythm:
    """When events happen, for the patrol frequency: by week, by season, by hour of day; and how fast they move."""

    by_week: list[tuple[date, int]]
    by_season: dict[str, int]
    by_hour: list[int]
    to_dispatch: Timing
    to_close: Timing


def rhythm(period: Period, zone: timezone, grids: Iterable[str] | None = None) -> Rhythm:
    """Events of the cohort by week, season and hour (district time), and the times to dispatch and to close.

    Streams the cohort's four times in chunks; memory holds only the counters and the durations.
    """
    weeks: dict[date, int] = {}
    seasons = dict.fromkeys(("spring", "summer", "autumn", "winter"), 0)
    hours = [0] * 24
    to_dispatch: list[int] = []
    to_close: list[int] = []
    statement = (select(CaseRow.reported_ms, CaseRow.dispatched_ms, CaseRow.closed_ms)
                 .where(*cohort(period, grids)).execution_options(yield_per=5000))
    for reported, dispatched, closed in db.session.execute(statement):
        at = datetime.fromtimestamp(reported / 1000, zone)
        monday = week_of(at.date())[0]
        weeks[monday] = weeks.get(monday, 0) + 1
        seasons[SEASONS[at.month]] += 1
        hours[at.hour] += 1
        if dispatched is not None and dispatched >= reported:
            to_dispatch.append(dispatched - reported)
        if closed is not None and closed >= reported:
            to_close.append(closed - reported)
    return Rhythm(sorted(weeks.items()), seasons, hours, _timing(to_dispatch), _timing(to_close))


# --- assessment ----------------------------------------------------------------------------------

def assessed_cases(unit: str | None, period: Period) -> list[CaseRow]:
    """The cohort's cases counted in a unit's assessment (more than three failed verifications), newest first."""
    conditions = [*cohort(period), CaseRow.assessment.is_(True)]
    if unit:
        conditions.append(CaseRow.assessment_unit == unit)
    return db.session.scalars(select(CaseRow).where(*conditions)
                              .order_by(CaseRow.reported_ms.desc(), CaseRow.event_id)).all()


def month_period(text: str | None, today: date, zone: timezone) -> Period:
    """The calendar month YYYY-MM (this month by default), as a Period."""
    if text:
        if len(text) != 7 or not text.isascii():
            raise BadQuery("month", "must be a month as YYYY-MM")
        first = parse_day("month", text + "-01")
    else:
        first = today.replace(day=1)
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return Period.of_days(first, following - timedelta(days=1), zone)


def csv_rows(result: Table, labels: Mapping[str, str]) -> Iterator[list[Any]]:
    """The table as CSV rows: a heading row (``labels`` names each figure and rate), the rows, the total."""
    yield [labels.get("name", "name"), *(labels.get(f, f) for f in FIGURES), *(labels.get(r, r) for r in RATES)]
    for row in [*result.rows, result.total]:
        rates = row.rates
        yield [row.name if row is not result.total else labels.get("total", "total"),
               *(row.figures[f] for f in FIGURES),
               *("" if rates[r] is None else f"{rates[r]:.4f}" for r in RATES)]


# --- open cases by age, for the map ----------------------------------------------------------------

AGE_BANDS = ((3, "#16a34a"), (7, "#ca8a04"), (30, "#ea580c"), (None, "#b91c1c"))  # days open, up to; colour


def open_cases_by_age(now_ms: int, grids: Iterable[str] | None = None, limit: int = 2000) -> list[dict[str, Any]]:
    """The open cases with a position (the oldest first, at most ``limit``), each with its age band (AGE_BANDS)."""
    conditions = [CaseRow.open.is_(True), CaseRow.lat.is_not(None), CaseRow.lon.is_not(None),
                  CaseRow.reported_ms.is_not(None)]
    if grids is not None:
        conditions.append(CaseRow.grid.in_(sorted(grids)))
    rows = db.session.execute(select(CaseRow.event_id, CaseRow.case_number, CaseRow.lat, CaseRow.lon,
                                     CaseRow.reported_ms).where(*conditions)
                              .order_by(CaseRow.reported_ms).limit(limit)).all()
    found = []
    for event_id, number, lat, lon, reported in rows:
        days = max(0, now_ms - reported) / _DAY_MS
        band = next(i for i, (upto, _colour) in enumerate(AGE_BANDS) if upto is None or days <= upto)
        found.append({"id": event_id, "number": number, "lat": lat, "lon": lon, "days": int(days), "band": band})
    return found

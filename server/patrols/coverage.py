"""Coverage per grid and day or week, with the fixed points on schedule and the patrol time.

**Coverage** (覆盖率) of a grid in a period: the share of the grid's 50 m cells that a track passed
within 25 m of (server/patrols/geometry.py says exactly which cells, which points and which legs).
A week's is the share of cells passed on any of its days, not the mean of the days. A grid without a
boundary has no cells: "no boundary, no coverage".

**Patrol time**: the time of the grid's patrols within the period (service.py, ``Patrol.time_within``),
added up: two workers patrolling the same hour count two hours. **Fixed points on schedule**: over
the grid's points, the windows met / the windows due (service.py, "On schedule").

**The cache.** Each grid-day's covered cells are kept in ``patrol_coverage`` with a signature of what
they were computed from: the grid record's feed position (its boundary), the rules' constants, and
the count and last feed position of the track records of the patrols that overlap the day. A track
arriving late (a tablet offline for days) changes the signature of the days it covers, so that day
is computed again at its next reading; nothing else is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timezone
from typing import Iterable

import numpy as np
from sqlalchemy import select, tuple_
from sqlalchemy.exc import IntegrityError, OperationalError

from ..db import db
from ..models import PatrolCoverage, utcnow
from . import geometry, service
from .service import Grid, Patrol, Period

log = logging.getLogger(__name__)
RULES = f"v1/{geometry.CELL_M:g}/{geometry.REACH_M:g}/{geometry.MAX_GAP_MS}"


@dataclass
class GridCoverage:
    """One grid's figures for a period."""

    grid: str
    cells: int | None  # None: no boundary, no coverage
    covered: int
    patrols: int
    patrol_ms: int
    workers: int
    points_due: int
    points_met: int

    @property
    def rate(self) -> float | None:
        return self.covered / self.cells if self.cells else None

    @property
    def schedule_rate(self) -> float | None:
        return self.points_met / self.points_due if self.points_due else None


@dataclass
class DayCells:
    """A grid-day's covered cells (a bool per cell), and whether it came from the cache."""

    cells: int
    bits: np.ndarray
    cached: bool


def _signature(grid: Grid, patrols: list[Patrol], meta: dict[str, tuple[int, int]]) -> str:
    count = sum(meta.get(p.id, (0, 0))[0] for p in patrols)
    last = max((meta.get(p.id, (0, 0))[1] for p in patrols), default=0)
    return f"{RULES}:{grid.position}:{count}:{last}"


def day_cells(grids: dict[str, Grid], codes: Iterable[str], days: list[date], zone: timezone, now_ms: int,
              patrols: list[Patrol]) -> dict[tuple[str, date], DayCells]:
    """The covered cells of each grid-day (grids with a boundary), from the cache where its signature holds."""
    with_boundary = [c for c in codes if c in grids and grids[c].boundary]
    if not with_boundary or not days:
        return {}
    meta = service.track_meta([p.id for p in patrols])
    spans = {day: (service.day_start_ms(day, zone), service.day_start_ms(day, zone) + service.DAY_MS) for day in days}
    wanted: dict[tuple[str, date], tuple[str, list[Patrol]]] = {}
    for code in with_boundary:
        mine = [p for p in patrols if p.grid == code]
        for day in days:
            start, end = spans[day]
            overlapping = [p for p in mine if p.started_ms < end and p.until_ms(now_ms) > start]
            wanted[(code, day)] = (_signature(grids[code], overlapping, meta), overlapping)
    cached = {}
    keys = [(code, day.isoformat()) for code, day in wanted]
    for at in range(0, len(keys), 400):
        for row in db.session.scalars(select(PatrolCoverage).where(
                tuple_(PatrolCoverage.grid, PatrolCoverage.day).in_(keys[at:at + 400]))):
            cached[(row.grid, row.day)] = row
    found: dict[tuple[str, date], DayCells] = {}
    stale = []
    for (code, day), (signature, overlapping) in wanted.items():
        row = cached.get((code, day.isoformat()))
        if row is not None and row.signature == signature:
            found[(code, day)] = DayCells(row.cells, geometry.unpack_bits(row.bits, row.cells), True)
        else:
            stale.append((code, day, signature, overlapping, row))
    if not stale:
        return found
    cells_by_grid = {code: geometry.cells_of(grids[code].boundary) for code in {s[0] for s in stale}}
    tracks = service.track_arrays(sorted({p.id for s in stale for p in s[3] if meta.get(p.id)}))
    rows = []
    for code, day, signature, overlapping, row in stale:
        cells = cells_by_grid[code]
        if cells is None:  # a boundary too large to lay cells in
            continue
        start, end = spans[day]
        day_tracks = [tracks[p.id].within(start, end) for p in overlapping if p.id in tracks]
        bits = geometry.covered(cells, day_tracks)
        found[(code, day)] = DayCells(cells.count, bits, False)
        rows.append((row, {"grid": code, "day": day.isoformat(), "cells": cells.count, "covered": int(bits.sum()),
                           "bits": geometry.pack_bits(bits), "signature": signature}))
    _keep(rows)
    return found


def _keep(rows: list[tuple[PatrolCoverage | None, dict]]) -> None:
    """Write computed grid-days to the cache (over the rows read, else new), in a transaction of their own.

    A race with another reader computing the same day is harmless: the later write fails on the key, or
    writes the same, and is let go.
    """
    if not rows:
        return
    try:
        for row, values in rows:
            if row is None:
                db.session.add(PatrolCoverage(**values, computed_at=utcnow()))
            else:
                for name, value in values.items():
                    setattr(row, name, value)
                row.computed_at = utcnow()
        db.session.commit()
    except (IntegrityError, OperationalError) as exc:  # another request wrote the same day first; it will do
        db.session.rollback()
        log.info("coverage cache not written: %s", exc.__class__.__name__)


def coverage(grids: dict[str, Grid], codes: list[str], period: Period, zone: timezone, now_ms: int) -> list[GridCoverage]:
    """The coverage, patrol time and fixed points on schedule of each grid (codes) over the period."""
    patrols = service.patrols_between(period.start_ms, period.end_ms, now_ms, grids=codes)
    days = [d for d in period.days if service.day_start_ms(d, zone) < now_ms]  # no cells for days to come
    cells = day_cells(grids, codes, days, zone, now_ms, patrols)
    points = service.fixed_points(codes)
    visits = service.visits_of([p.id for p in points], period.start_ms, period.end_ms)
    rows = []
    for code in codes:
        grid = grids.get(code)
        mine = [p for p in patrols if p.grid == code]
        count, covered = None, 0
        if grid is not None and grid.boundary:
            union = None
            for day in days:
                found = cells.get((code, day))
                if found is None:
                    continue
                count = found.cells
                union = found.bits if union is None else (union | found.bits)
            if count is None:  # no day yet (a period to come): the cells, none covered
                laid = geometry.cells_of(grid.boundary)
                count = laid.count if laid is not None else None
            covered = int(union.sum()) if union is not None else 0
        due = met = 0
        for point in (p for p in points if p.grid == code):
            plan = service.point_schedule(point, visits.get(point.id, []), period.start_ms, period.end_ms, now_ms)
            due, met = due + plan.due, met + plan.met
        rows.append(GridCoverage(code, count, covered, len(mine),
                                 sum(p.time_within(period.start_ms, period.end_ms, now_ms) for p in mine),
                                 len({p.worker for p in mine}), due, met))
    return rows


def total(rows: list[GridCoverage]) -> GridCoverage:
    """The figures of all rows together (coverage over all their cells)."""
    with_cells = [r for r in rows if r.cells]
    return GridCoverage("*", sum(r.cells for r in with_cells) if with_cells else None,
                        sum(r.covered for r in with_cells), sum(r.patrols for r in rows),
                        sum(r.patrol_ms for r in rows), sum(r.workers for r in rows),
                        sum(r.points_due for r in rows), sum(r.points_met for r in rows))

"""The queue as a file: CSV, XLSX or GeoJSON, with the queue's filters, streamed from the cases table.

One statement, read in chunks (``yield_per``), joined to each case's event record for its words; the
rows go out as they are read, so an export of a whole district keeps memory flat.
"""

from __future__ import annotations

from typing import Any, Iterator

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from ..db import db
from ..exports import point
from ..models import CaseRow, Record, User
from ..reference import Reference
from ..web.labels import RESOLUTION_LABELS, STATUS_LABELS, name_of
from ..web.times import local_time
from .service import QueueFilters, queue_conditions, status_condition

COLUMNS = [_l("Case number"), _l("Status"), _l("How closed"), _l("Category"), _l("Grid"), _l("Community"),
           _l("Street"), _l("Unit"), _l("Urgent"), _l("Reported"), _l("Deadline"), _l("Closed"),
           _l("Failed verifications"), _l("Supervised (督办)"), _l("Description"), _l("Address"), _l("Latitude"),
           _l("Longitude")]
_CHUNK = 2000


def _found(user: User, filters: QueueFilters, reference: Reference, now_ms: int) -> Iterator[tuple[CaseRow, dict]]:
    status = status_condition(filters.status)
    statement = (select(CaseRow, Record.field_values).join(Record, Record.id == CaseRow.event_id)
                 .where(*queue_conditions(user, filters, reference, now_ms), *([] if status is None else [status]))
                 .order_by(CaseRow.reported_ms, CaseRow.event_id).execution_options(yield_per=_CHUNK))
    for row, values in db.session.execute(statement):
        yield row, values


def _values(row: CaseRow, event: dict, reference: Reference) -> list[Any]:
    grid = reference.grid(row.grid)
    return [row.case_number, str(STATUS_LABELS.get(row.status, row.status)),
            str(RESOLUTION_LABELS[row.resolution]) if row.resolution in RESOLUTION_LABELS else "",
            name_of(reference.category(row.category), row.category), name_of(grid, row.grid),
            grid.get("community"), grid.get("street"),
            name_of(reference.units.get(row.unit), row.unit) if row.unit else "", row.urgent,
            local_time(row.reported_ms), local_time(row.deadline_ms), local_time(row.closed_ms), row.failures,
            row.supervised, event.get("description"), event.get("address"), row.lat, row.lon]


def table_rows(user: User, filters: QueueFilters, reference: Reference, now_ms: int) -> Iterator[list[Any]]:
    """The heading, then one row per case the user may see that the filters keep, oldest first."""
    yield [str(name) for name in COLUMNS]
    for row, event in _found(user, filters, reference, now_ms):
        yield _values(row, event, reference)


def features(user: User, filters: QueueFilters, reference: Reference, now_ms: int) -> Iterator[dict[str, Any]]:
    """One GeoJSON Feature per case (no geometry where the report had no position)."""
    keys = ["case_number", "status", "resolution", "category", "grid", "community", "street", "unit", "urgent",
            "reported", "deadline", "closed", "failed_verifications", "supervised", "description", "address"]
    for row, event in _found(user, filters, reference, now_ms):
        values = _values(row, event, reference)
        yield point(row.lon, row.lat, {"id": row.event_id, **dict(zip(keys, values[:16]))})

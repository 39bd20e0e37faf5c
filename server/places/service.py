"""Key places (重点单位, 三小场所) for the supervisor pages: per grid, with grade, last check, schedule, hazards.

A key place is a ``place`` record of a grid bucket; its type is a ``place_type`` reference record
(small shop, small workshop, small venue, key unit, or one an admin adds) that names the checklist
its places are checked against and how often a place of each grade must be checked. Its checks
are ``place_check`` records, read by the machinery the rental houses use (server/houses/checks.py),
and its schedule (never checked, overdue, due, ok, unscheduled) is shared/checks.py's rule, the
one the tablet shows.

Who sees them: supervisors and admins (``PAGES["places"]`` in shared/roles.py).

Scaling note: the list reads the places of the place, type and grade filters and the search in
SQL, then their checks by bucket (by id when few), and works out each one's schedule in Python,
because a place's status depends on its latest check and on the clock: the status filter and the
status counts need every place of the filters. A district has hundreds to a few thousand key
places, each checked every month to half-year. If that grows, a per-place summary (latest check,
due moment) kept by `apply_changes` in a table of its own would let SQL page by status.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field
from typing import Any, Mapping

from sqlalchemy import false, or_, select

from shared.checks import PLACES, STATUS_ORDER, STATUSES, Schedule, interval_days, schedule
from shared.records import REF_BUCKET, ValidationError, dump_change, grid_bucket, uuid7

from .. import audit
from ..clock import server_clock
from ..db import db
from ..houses.checks import Check, Hazard, attach_checks, check_records, load_checklists
from ..models import Record
from ..reference import Reference
from ..sync import apply

__all__ = ["Place", "PlaceFilters", "PlacePage", "STATUS_FILTERS", "load_place_types", "list_places", "get_place",
           "photos_of", "Check", "Hazard", "PlaceError", "save_place"]

# The status filter: one status, or every place that needs a check (never, overdue, due).
STATUS_FILTERS = (*STATUSES, "needs_check")


@dataclass
class Place:
    """A key place with its checks (newest first) and where it stands on its schedule."""

    id: str
    bucket: str
    values: Mapping[str, Any]
    checks: list[Check] = field(default_factory=list)
    schedule: Schedule = Schedule("unscheduled", None, None)

    @property
    def grid(self) -> str | None:
        """The place's grid code."""
        return self.values.get("grid")

    @property
    def last_check(self) -> Check | None:
        """The check with the latest checked_at, or None."""
        return self.checks[0] if self.checks else None

    @property
    def open_hazards(self) -> list[Hazard]:
        """The failed items of the last check."""
        return self.last_check.hazards if self.last_check else []


@dataclass(frozen=True)
class PlaceFilters:
    """What the place list shows; None means "any"."""

    grid: str | None = None
    community: str | None = None
    street: str | None = None
    type: str | None = None
    grade: str | None = None
    status: str | None = None  # one of STATUS_FILTERS
    hazards: bool = False  # only places whose last check failed an item


@dataclass(frozen=True)
class PlacePage:
    """One page of the place list, how many pass the filters, and the status counts before the status filter."""

    places: list[Place]
    total: int
    page: int
    pages: int
    per_page: int
    counts: dict[str, int]


def load_place_types() -> dict[str, dict]:
    """Every place type by code, deleted ones too (a place may still name one); ``_deleted`` says which."""
    found = {}
    for record in db.session.scalars(select(Record).where(Record.bucket == REF_BUCKET, Record.kind == "place_type")):
        values = record.field_values
        if values.get("code"):
            found[values["code"]] = values
    return found


def _live(record) -> Any:
    deleted = record.field_values["_deleted"].as_boolean()
    return or_(deleted.is_(None), deleted == false())


def _text(record, name: str) -> Any:
    return record.field_values[name].as_string()


def _grids(filters: PlaceFilters, reference: Reference) -> set[str] | None:
    if not (filters.grid or filters.community or filters.street):
        return None
    codes = {filters.grid} if filters.grid else set(reference.grids)
    return {code for code in codes
            if (not filters.community or reference.grid(code).get("community") == filters.community)
            and (not filters.street or reference.grid(code).get("street") == filters.street)}


def _scheduled(place: Place, types: Mapping[str, dict], now_ms: int) -> None:
    every = interval_days(types.get(place.values.get("type"), {}).get("check_every_days"), place.values.get("grade"))
    last = place.last_check.checked_at if place.last_check else None
    place.schedule = schedule(last, every, now_ms)


def _passes(place: Place, filters: PlaceFilters) -> bool:
    status = place.schedule.status
    return ((filters.status is None or status == filters.status
             or (filters.status == "needs_check" and place.schedule.needs_check))
            and (not filters.hazards or bool(place.open_hazards)))


def list_places(filters: PlaceFilters, reference: Reference, now_ms: int, *, query: str = "", page: int = 1,
                per_page: int | None = 20, english: bool = False) -> PlacePage:
    """A page of the places passing the filters, by grid, then most pressing status, then name.

    ``query`` finds a part of the name, address or person in charge. ``per_page`` None: all of them (exports).
    """
    statement = select(Record).where(Record.kind == "place", _live(Record))
    grids = _grids(filters, reference)
    buckets = None if grids is None else sorted(grid_bucket(code) for code in grids)
    if buckets is not None:
        statement = statement.where(Record.bucket.in_(buckets))
    if filters.type:
        statement = statement.where(_text(Record, "type") == filters.type)
    if filters.grade:
        statement = statement.where(_text(Record, "grade") == filters.grade)
    query = query.strip()
    if query:
        statement = statement.where(or_(*(_text(Record, name).icontains(query, autoescape=True)
                                          for name in ("name", "address", "person_in_charge"))))
    found = {r.id: Place(r.id, r.bucket, r.field_values) for r in db.session.scalars(statement)}
    attach_checks(PLACES, found, check_records(PLACES, found, buckets), english)
    types = load_place_types()
    for place in found.values():
        _scheduled(place, types, now_ms)
    counts = {status: 0 for status in STATUSES}
    for place in found.values():
        if not filters.hazards or place.open_hazards:
            counts[place.schedule.status] += 1
    chosen = sorted((p for p in found.values() if _passes(p, filters)),
                    key=lambda p: (p.grid or "", STATUS_ORDER[p.schedule.status], p.values.get("name") or "", p.id))
    if per_page is None:
        return PlacePage(chosen, len(chosen), 1, 1, max(1, len(chosen)), counts)
    pages = max(1, math.ceil(len(chosen) / max(1, per_page)))
    page = min(max(1, page), pages)
    start = (page - 1) * per_page
    return PlacePage(chosen[start:start + per_page], len(chosen), page, pages, per_page, counts)


def get_place(place_id: str, now_ms: int, english: bool = False) -> Place | None:
    """One place with its checks and schedule; None when missing or deleted."""
    record = db.session.get(Record, place_id)
    if record is None or record.kind != "place" or record.field_values.get("_deleted"):
        return None
    place = Place(record.id, record.bucket, record.field_values)
    attach_checks(PLACES, {place.id: place}, check_records(PLACES, {place.id: place}), english, load_checklists())
    _scheduled(place, load_place_types(), now_ms)
    return place


def photos_of(place: Place) -> list[str]:
    """Every photo hash of the place's checks, each once."""
    found: list[str] = []
    for check in place.checks:
        found.extend(p for p in check.values.get("photos") or [] if isinstance(p, str))
    return list(dict.fromkeys(found))


# --- writing (the pages) ------------------------------------------------------------------------

class PlaceError(ValueError):
    """A place the pages refuse to write, with the reason."""


def save_place(user, values: Mapping[str, Any], place_id: str | None = None) -> str:
    """Create a place, or change one, as ``user`` through the sync API's path (validation, roles, merge); audited.

    Only the fields that changed are written. A place keeps its grid: its checks live in its grid's bucket.
    """
    before: dict[str, Any] = {}
    if place_id is not None:
        record = db.session.get(Record, place_id)
        if record is None or record.kind != "place" or record.field_values.get("_deleted"):
            raise PlaceError("no such place")
        before = dict(record.field_values)
        if values.get("grid") != before.get("grid"):
            raise PlaceError("a place keeps its grid")
    else:
        place_id = uuid7(server_clock().physical_ms(), secrets.token_bytes(10))
    written = {k: v for k, v in values.items() if before.get(k) != v and not (k not in before and v is None)}
    if not written:
        return place_id
    try:
        change = apply.stamp("place", place_id, {**written, "grid": values["grid"]} if not before else written,
                             bucket=grid_bucket(values["grid"]))
    except ValidationError as exc:  # the form's checks missed a rule of the record kind
        raise PlaceError(str(exc.messages)) from None
    changes, rejected = apply.validate_batch(user, [dump_change(change)])
    [result] = apply.apply_changes(user, changes, rejected)
    if result.status != "applied":
        raise PlaceError(result.reason or result.status)
    audit.record("edit" if before else "create", "place", place_id, actor=user, commit=True,
                 before={k: before.get(k) for k in written} if before else None, after=written)
    return place_id

"""Civil disputes (民事纠纷) for the supervisor pages: find them, read one, record mediation steps.

A dispute is a ``dispute`` record and the append-only ``dispute_action`` records that name it;
its state is `shared.dispute.fold_dispute`, the fold the tablet runs too. The kinds of dispute
and the hours within which one must be taken up are reference data (``dispute_kind``).

Who sees what: supervisors and admins every dispute (shared/roles.py ``PAGES["disputes"]``); grid
workers use the tablet, units get 403. The parties (names, phones) are sealed at rest
(server/privacy.py); lists show them masked (张*, 138****5678), the dispute page in full to the
roles that mediate (shared/dispute.py ``PARTY_ROLES``), and the views audit every full view.

Writing: a page's step is a ``dispute_action`` stamped with the server's HLC and applied through
`server.sync.apply.apply_changes` as the logged-in user, the sync API's path (role check, author
check, merge), so it reaches tablets like any other record. The page checks first that the step
applies to the dispute as it stands (`shared.dispute.available_steps`).

Scaling note: the list filters (place, kind, status, overdue), counts, orders and pages in SQL on the
``disputes`` table, a cache of the fold kept by the write path (server/disputes/book.py, as ``cases``
is by server/sync/casebook.py); only a page's disputes are read and folded, and only their parties
unsealed. The rates are counted per grid in SQL (`rates_by_grid`). `load_disputes` (every dispute of
some grids, folded) is what the tests hold the table to. tests/disputes/test_scale.py measures the list and the rates with 2,000 disputes and 3,000 steps
(SQLite, a busy shared machine): the open list 0.17 s, the overdue filter 0.07 s, the rates 0.12 s
(0.55 s, 0.93 s and 0.76 s when they folded every dispute of the place per request).
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from sqlalchemy import and_, case, false, func, or_, select

from shared.dispute import (OPEN_STATUSES, STATUSES, Action, DisputeRates, DisputeState, available_steps,
                            fold_dispute, mask_parties)
from shared.records import REF_BUCKET, dump_change, grid_bucket, uuid7

from .. import audit, privacy
from ..clock import server_clock
from ..db import db
from ..models import DisputeRow, Record, User
from ..reference import Reference
from ..sync import apply

__all__ = ["STATUS_FILTERS", "Dispute", "DisputeFilters", "DisputePage", "StepDoesNotApply", "load_kinds",
           "place_grids", "list_disputes", "load_disputes", "rates_by_grid", "get_dispute", "record_step",
           "report_dispute"]

STATUS_FILTERS = ("open", *STATUSES, "all")
_CHUNK = 500


class StepDoesNotApply(ValueError):
    """The step does not apply to the dispute as it stands (a stale page)."""


@dataclass(frozen=True)
class Dispute:
    """One dispute: its values without the parties, the parties masked, and its folded state.

    ``parties`` holds them in full only when read for a viewer who may see them (`get_dispute`).
    """

    id: str
    bucket: str
    values: Mapping[str, Any]
    masked: list[dict[str, Any]]
    state: DisputeState
    parties: list[dict[str, Any]] | None = None
    steps: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # dispute_action id -> values
    devices: Mapping[str, str | None] = field(default_factory=dict)  # record id -> the device that pushed it

    @property
    def grid(self) -> str | None:
        """The dispute's grid code."""
        return self.values.get("grid")

    @property
    def kind(self) -> str | None:
        """The dispute's kind code."""
        return self.values.get("dispute_kind")


@dataclass(frozen=True)
class DisputeFilters:
    """What the list shows; None means "any"."""

    status: str = "open"
    kind: str | None = None
    grid: str | None = None
    community: str | None = None
    street: str | None = None
    overdue: bool = False


@dataclass(frozen=True)
class DisputePage:
    """One page of the list and how many disputes pass the filters."""

    disputes: list[Dispute]
    total: int
    page: int
    pages: int
    per_page: int


def load_kinds() -> dict[str, dict]:
    """The dispute kinds that are not deleted, by code."""
    found = {}
    for values in db.session.scalars(select(Record.field_values).where(Record.bucket == REF_BUCKET,
                                                                       Record.kind == "dispute_kind")):
        if values.get("code") and not values.get("_deleted"):
            found[values["code"]] = values
    return found


def place_grids(filters: DisputeFilters, reference: Reference) -> set[str] | None:
    """The grid codes the street, community and grid filters leave; None when none is set."""
    if not (filters.grid or filters.community or filters.street):
        return None
    codes = {filters.grid} if filters.grid else set(reference.grids)
    return {code for code in codes
            if (not filters.community or reference.grid(code).get("community") == filters.community)
            and (not filters.street or reference.grid(code).get("street") == filters.street)}


def _live() -> Any:
    deleted = Record.field_values["_deleted"].as_boolean()
    return or_(deleted.is_(None), deleted == false())


def _steps_of(ids: list[str]) -> dict[str, list[Record]]:
    """The dispute_action records of the given disputes, by dispute id (read by parent, in chunks)."""
    found: dict[str, list[Record]] = {rid: [] for rid in ids}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start:start + _CHUNK]
        for record in db.session.scalars(select(Record).where(Record.parent_id.in_(chunk),
                                                              Record.kind == "dispute_action")):
            found.setdefault(record.parent_id, []).append(record)
    return found


def _action(record: Record) -> Action:
    return Action.from_state(record.id, record.state())


def _masked(stored: Any) -> list[dict[str, Any]]:
    return mask_parties(privacy.unseal_value(stored, "parties"))


def _dispute(record: Record, steps: list[Record], kinds: Mapping[str, dict], now_ms: int,
             parties: list[dict[str, Any]] | None = None) -> Dispute:
    values = {k: v for k, v in record.field_values.items() if k != "parties"}
    state = fold_dispute(values, [_action(s) for s in steps], kind=kinds.get(values.get("dispute_kind")),
                         now=now_ms)
    return Dispute(record.id, record.bucket, values, _masked(record.field_values.get("parties")), state, parties,
                   {s.id: s.field_values for s in steps},
                   {r.id: r.device_id for r in (record, *steps)})


def load_disputes(grids: Iterable[str] | None, now_ms: int, *, kind: str | None = None) -> list[Dispute]:
    """The disputes (not deleted) of the given grids (None: every grid), folded at now_ms, newest first."""
    statement = select(Record).where(Record.kind == "dispute", _live())
    if grids is not None:
        statement = statement.where(Record.bucket.in_(sorted(grid_bucket(code) for code in grids)))
    if kind:
        statement = statement.where(Record.field_values["dispute_kind"].as_string() == kind)
    records = db.session.scalars(statement).all()
    steps = _steps_of([r.id for r in records])
    kinds = load_kinds()
    found = [_dispute(r, steps.get(r.id, []), kinds, now_ms) for r in records]
    found.sort(key=lambda d: (d.values.get("reported_at") or "", d.id), reverse=True)
    return found


def _overdue(now_ms: int) -> Any:
    """SQL: the row's dispute is not taken up and past its take-up deadline at now_ms."""
    return and_(DisputeRow.taken_up_ms.is_(None), DisputeRow.deadline_ms.is_not(None), DisputeRow.deadline_ms < now_ms)


def _conditions(filters: DisputeFilters, reference: Reference, now_ms: int) -> list:
    """SQL: the disputes table's rows that pass the filters."""
    found = [DisputeRow.deleted.is_(False)]
    grids = place_grids(filters, reference)
    if grids is not None:
        found.append(DisputeRow.grid.in_(sorted(grids)))
    if filters.kind:
        found.append(DisputeRow.kind == filters.kind)
    if filters.status == "open":
        found.append(DisputeRow.status.in_(OPEN_STATUSES))
    elif filters.status != "all":
        found.append(DisputeRow.status == filters.status)
    if filters.overdue:
        found.append(_overdue(now_ms))
    return found


def _load(ids: list[str], now_ms: int) -> list[Dispute]:
    """The disputes of the given ids (records and steps), folded at now_ms, in the order given."""
    records = {r.id: r for r in db.session.scalars(select(Record).where(Record.id.in_(ids)))} if ids else {}
    steps = _steps_of(ids)
    kinds = load_kinds()
    return [_dispute(records[rid], steps.get(rid, []), kinds, now_ms) for rid in ids if rid in records]


def list_disputes(filters: DisputeFilters, reference: Reference, now_ms: int, *, page: int = 1,
                  per_page: int | None = 20) -> DisputePage:
    """A page of the disputes passing the filters: overdue first, then newest first. per_page None: all.

    Filtered, counted, ordered and paged in SQL on the disputes table (server/disputes/book.py); only the
    page's disputes are read and folded (for their timeline's state and their masked parties).
    """
    conditions = _conditions(filters, reference, now_ms)
    total = db.session.scalar(select(func.count()).select_from(DisputeRow).where(*conditions)) or 0
    statement = (select(DisputeRow.dispute_id).where(*conditions)
                 .order_by(case((_overdue(now_ms), 0), else_=1), DisputeRow.reported_ms.desc().nulls_last(),
                           DisputeRow.dispute_id.desc()))
    if per_page is None:
        return DisputePage(_load(list(db.session.scalars(statement)), now_ms), total, 1, 1, max(1, total))
    pages = max(1, math.ceil(total / max(1, per_page)))
    page = min(max(1, page), pages)
    ids = list(db.session.scalars(statement.limit(per_page).offset((page - 1) * per_page)))
    return DisputePage(_load(ids, now_ms), total, page, pages, per_page)


def rates_by_grid(now_ms: int, *, grids: Iterable[str] | None = None, start_ms: int | None = None,
                  end_ms: int | None = None) -> dict[str, DisputeRates]:
    """The counts of the two rates per grid, in SQL, of the disputes (not deleted) reported in [start_ms, end_ms).

    The counts are shared/dispute.py's (`dispute_rates`): mediated = a session or an outcome, concluded = an
    outcome, settled = the outcome ``settled``; tests/disputes/test_pages.py holds the two equal.
    """
    ones = lambda condition: func.sum(case((condition, 1), else_=0))  # noqa: E731
    statement = (select(DisputeRow.grid, func.count(), ones(DisputeRow.mediated.is_(True)),
                        ones(DisputeRow.outcome.is_not(None)), ones(DisputeRow.outcome == "settled"),
                        ones(_overdue(now_ms)))
                 .where(DisputeRow.deleted.is_(False)).group_by(DisputeRow.grid))
    if grids is not None:
        statement = statement.where(DisputeRow.grid.in_(sorted(grids)))
    if start_ms is not None:
        statement = statement.where(DisputeRow.reported_ms >= start_ms)
    if end_ms is not None:
        statement = statement.where(DisputeRow.reported_ms < end_ms)
    return {grid: DisputeRates(int(n), int(m or 0), int(c or 0), int(st or 0), int(o or 0))
            for grid, n, m, c, st, o in db.session.execute(statement)}


def get_dispute(viewer: User, dispute_id: str, now_ms: int) -> Dispute | None:
    """One dispute with its steps, its parties in full when ``viewer`` may see them; None when missing or deleted."""
    record = db.session.get(Record, dispute_id)
    if record is None or record.kind != "dispute" or record.field_values.get("_deleted"):
        return None
    steps = _steps_of([record.id]).get(record.id, [])
    parties = None
    if privacy.may_see_parties(viewer):
        opened = privacy.unseal_value(record.field_values.get("parties"), "parties")
        parties = [p for p in opened if isinstance(p, dict)] if isinstance(opened, list) else []
    return _dispute(record, steps, load_kinds(), now_ms, parties)


def _new_id() -> str:
    return uuid7(server_clock().physical_ms(), secrets.token_bytes(10))


def _apply(user: User, kind: str, record_id: str, values: dict[str, Any], bucket: str) -> apply.Result:
    change = apply.stamp(kind, record_id, values, bucket=bucket)
    # The same path as a push: validation, the role and author checks and the merge are the sync API's.
    changes, rejected = apply.validate_batch(user, [dump_change(change)])
    [result] = apply.apply_changes(user, changes, rejected)
    return result


def record_step(user: User, dispute: Dispute, action: str, *, note: str | None = None, at: str | None = None,
                mediators: list[str] | None = None, outcome: str | None = None,
                referred_to: str | None = None) -> apply.Result:
    """Record a mediation step as a server-stamped dispute_action, applied as the user; audited when applied.

    Raises StepDoesNotApply when the step would not apply to the dispute as it stands.
    """
    if action not in available_steps(dispute.state):
        raise StepDoesNotApply(action)
    values = {"dispute": dispute.id, "action": action, "actor": user.id, "note": note, "at": at,
              "mediators": mediators or None, "outcome": outcome if action == "outcome" else None,
              "referred_to": referred_to if action == "outcome" and outcome == "referred" else None}
    values = {k: v for k, v in values.items() if v not in (None, "", [])}
    result = _apply(user, "dispute_action", _new_id(), values, dispute.bucket)
    if result.status == "applied":
        audit.record(action, "dispute", dispute.id, actor=user, commit=True,
                     before={"status": dispute.state.status, "outcome": dispute.state.outcome},
                     after={k: v for k, v in values.items() if k not in ("dispute", "actor")})
    return result


def report_dispute(user: User, *, grid: str, dispute_kind: str, parties: list[dict[str, Any]], description: str,
                   place: str | None, reported_at: str) -> tuple[str, apply.Result]:
    """A dispute reported on the pages (a walk-in to the office), in the user's name; (its id, the Result)."""
    record_id = _new_id()
    values = {"grid": grid, "dispute_kind": dispute_kind, "parties": parties, "description": description,
              "place": place or None, "reporter": user.id, "reported_at": reported_at}
    result = _apply(user, "dispute", record_id, {k: v for k, v in values.items() if v is not None}, grid_bucket(grid))
    if result.status == "applied":  # who reported what, never the parties themselves
        audit.record("report", "dispute", record_id, actor=user, commit=True,
                     after={"grid": grid, "dispute_kind": dispute_kind, "parties": len(parties)})
    return record_id, result

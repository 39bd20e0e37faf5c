"""Cases for the supervisor and unit pages: fold, filter, order, page, and record actions.

The pages never store a case's status. A case is an event plus its
``case_action`` records, and its state is `shared.case.fold_case` over them,
the same fold the tablet runs. This module is the service the views call:
`list_cases` for the queue, `get_case` and `nearby_cases` for the case page,
`record_action` for every button. It is plain functions over the store, so
tests and the CLI can call it without a request.

Who sees what (``visible_to``): supervisors and admins every case; a unit
user only the cases whose folded state names their unit (dispatched to them,
or last re-dispatched to them); a grid worker none (workers use the tablet).

Writing: a page's action is a ``case_action`` record stamped with the
server's HLC and applied through `server.sync.apply.apply_changes` with the
logged-in user, so the role check is the sync API's (shared/roles.py) and
the record syncs to tablets like any other. The page checks first that the
action applies to the case as it stands (`available_actions`), so a stale
page does not write an action the fold would only mark superseded; an action
that races another one is still recorded, and the fold shows it superseded.

Scaling note. Each request folds every case from its records: two queries
(events, case actions) and one fold per event. That is milliseconds for the
demo and fine for a few thousand open cases. Past that, keep a materialised
``cases`` table (event id, status, unit, deadline, urgent, grid, category,
failures, supervised, feed position of the last action folded), updated in
the same transaction as `apply_changes` by re-folding only the events a batch
touched, and filter and page it in SQL. The fold stays the single source of
the rules; the table is a cache of its output that can be rebuilt from the
records at any time.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from sqlalchemy import select

from shared import case as rules
from shared.case import STATUSES, Action, CaseState, fold_case, queue_key
from shared.hlc import HLC, HLCError, format_ms, parse_ms
from shared.records import dump_change, uuid7
from shared.roles import may_stand_in, may_take, reads_every_grid

from ..clock import server_clock
from ..db import db
from ..models import Record, User
from ..photos.service import blob_store, keep_photos, send_photo, send_thumbnail
from ..reference import Reference, load_reference
from ..sync import apply

# The pages' buttons, in the order they show, and the case action each records. Who may press one
# is shared/roles.py's to say, and whether it applies now the fold's (shared/case.available_actions).
# "verify" is a verification in the reporter's place; its verdict picks verify_pass or verify_fail.
PAGE_ACTIONS = {
    "dispatch": "dispatch", "rectify": "rectify", "close": "close", "return": "return", "extend": "extend",
    "comment": "comment", "supervise": "supervise", "verify": "verify_pass", "mark_duplicate": "mark_duplicate",
}
STATUS_FILTERS = ("open", *STATUSES, "all")
EARTH_RADIUS_M = 6_371_008.8


class CaseNotFound(LookupError):
    """No such case, or not one this user may see."""


class ActionNotAllowed(PermissionError):
    """The user's role may not take this action on the pages."""


class ActionDoesNotApply(ValueError):
    """The action does not apply to the case as it stands (a stale page)."""


class DeadlineNotAhead(ValueError):
    """A dispatch or an extension whose deadline is not in the future."""


@dataclass(frozen=True)
class Case:
    """One case: the event record, its actions by id, and the folded state."""

    id: str
    bucket: str
    event: Mapping[str, Any]
    actions: Mapping[str, Mapping[str, Any]]
    state: CaseState
    created_hlc: str = ""  # the earliest write of the event
    devices: Mapping[str, str | None] = field(default_factory=dict)  # record id -> the device that pushed it

    @property
    def grid(self) -> str | None:
        """The event's grid code."""
        return self.event.get("grid")

    @property
    def category(self) -> str | None:
        """The event's category code."""
        return self.event.get("category")


@dataclass(frozen=True)
class QueueFilters:
    """What the queue shows; empty strings and None mean "any"."""

    status: str = "open"
    grid: str | None = None
    community: str | None = None
    street: str | None = None
    category: str | None = None
    unit: str | None = None
    urgent: bool = False
    overdue: bool = False


@dataclass(frozen=True)
class QueuePage:
    """One page of the queue, with counts per status over the other filters."""

    cases: list[Case]
    counts: dict[str, int]
    total: int
    page: int
    pages: int
    per_page: int


# --- reading ----------------------------------------------------------------------------------

def _fold(event: Record, actions: Iterable[Record], reference: Reference, now_ms: int) -> Case:
    values = event.field_values
    folded = fold_case(values, [Action.from_state(a.id, a.state()) for a in actions],
                       now_ms=now_ms, category=reference.category(values.get("category")))
    return Case(event.id, event.bucket, values, {a.id: a.field_values for a in actions}, folded,
                min(event.field_hlcs.values(), default=""),
                {record.id: record.device_id for record in (event, *actions)})


def load_cases(reference: Reference, now_ms: int) -> list[Case]:
    """Every case that is not deleted, folded (see the scaling note above)."""
    events = db.session.scalars(select(Record).where(Record.kind == "event")).all()
    by_event: dict[str, list[Record]] = {}
    for action in db.session.scalars(select(Record).where(Record.kind == "case_action")):
        by_event.setdefault(action.field_values.get("event"), []).append(action)
    return [_fold(event, by_event.get(event.id, []), reference, now_ms)
            for event in events if not event.field_values.get("_deleted")]


def load_case(event_id: str, reference: Reference, now_ms: int) -> Case | None:
    """One case, folded; None when there is no such event or it was deleted."""
    event = db.session.get(Record, event_id)
    if event is None or event.kind != "event" or event.field_values.get("_deleted"):
        return None
    # A case's actions live in its event's bucket (shared/records.py: parent), which is indexed.
    actions = [a for a in db.session.scalars(
        select(Record).where(Record.bucket == event.bucket, Record.kind == "case_action"))
        if a.field_values.get("event") == event.id]
    return _fold(event, actions, reference, now_ms)


def visible_to(user: User, case: Case) -> bool:
    """Whether the user may see the case on the pages."""
    if reads_every_grid(user.role):
        return True
    if user.role == "unit":
        return bool(user.unit) and case.state.unit == user.unit
    return False


def get_case(user: User, event_id: str, now_ms: int | None = None,
             reference: Reference | None = None) -> Case:
    """The case as the user may see it; raises CaseNotFound otherwise."""
    reference = reference or load_reference()
    now_ms = server_clock().physical_ms() if now_ms is None else now_ms
    case = load_case(event_id, reference, now_ms)
    if case is None or not visible_to(user, case):
        raise CaseNotFound(event_id)
    return case


def _matches(case: Case, filters: QueueFilters, reference: Reference) -> bool:
    grid = reference.grid(case.grid)
    state = case.state
    return ((not filters.grid or case.grid == filters.grid)
            and (not filters.community or grid.get("community") == filters.community)
            and (not filters.street or grid.get("street") == filters.street)
            and (not filters.category or case.category == filters.category)
            and (not filters.unit or state.unit == filters.unit)
            and (not filters.urgent or state.urgent)
            and (not filters.overdue or state.overdue))


def _in_status(case: Case, status: str) -> bool:
    if status == "all":
        return True
    if status == "open":
        return case.state.is_open
    return case.state.status == status


def list_cases(user: User, filters: QueueFilters, page: int = 1, per_page: int = 20,
               now_ms: int | None = None, reference: Reference | None = None) -> QueuePage:
    """The user's queue: filtered, urgent first then by deadline (queue_key), paged, with status counts."""
    reference = reference or load_reference()
    now_ms = server_clock().physical_ms() if now_ms is None else now_ms
    candidates = [c for c in load_cases(reference, now_ms)
                  if visible_to(user, c) and _matches(c, filters, reference)]
    counts = {status: sum(_in_status(c, status) for c in candidates) for status in STATUS_FILTERS}
    chosen = [c for c in candidates if _in_status(c, filters.status)]
    # queue_key, then the id: two cases with equal keys keep one order from page to page.
    chosen.sort(key=lambda c: (queue_key(c.state, c.event), c.id))
    per_page = max(1, per_page)
    pages = max(1, math.ceil(len(chosen) / per_page))
    page = min(max(1, page), pages)
    start = (page - 1) * per_page
    return QueuePage(chosen[start:start + per_page], counts, len(chosen), page, pages, per_page)


def distance_m(a: Mapping[str, Any], b: Mapping[str, Any]) -> float:
    """The great-circle distance in metres between two locations ({lat, lon})."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a["lat"], a["lon"], b["lat"], b["lon"]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def nearby_cases(user: User, case: Case, now_ms: int | None = None,
                 reference: Reference | None = None) -> list[tuple[Case, float]]:
    """Open cases in the same category within the category's duplicate radius, nearest first."""
    reference = reference or load_reference()
    radius = reference.category(case.category).get("duplicate_radius_m") or 0
    here = case.event.get("location")
    if radius <= 0 or not isinstance(here, Mapping):
        return []
    now_ms = server_clock().physical_ms() if now_ms is None else now_ms
    found = []
    for other in load_cases(reference, now_ms):
        there = other.event.get("location")
        if (other.id == case.id or other.category != case.category or not other.state.is_open
                or not isinstance(there, Mapping) or not visible_to(user, other)):
            continue
        metres = distance_m(here, there)
        if metres <= radius:
            found.append((other, metres))
    return sorted(found, key=lambda pair: (pair[1], pair[0].id))


def node_of(hlc: str) -> str | None:
    """The node id of an HLC timestamp, or None when it is malformed."""
    try:
        return HLC.parse(hlc).node
    except HLCError:
        return None


def wall_ms_of(hlc: str) -> int | None:
    """The wall time of an HLC timestamp, or None when it is malformed."""
    try:
        return HLC.parse(hlc).wall_ms
    except HLCError:
        return None


def photo_holdings(shas: Iterable[str]) -> list[tuple[str, bool]]:
    """Each photo hash with whether the server holds the whole, verified photo."""
    blobs = blob_store()
    return [(sha, blobs.has(sha)) for sha in shas]


def photos_of(case: Case) -> list[str]:
    """Every photo hash of the case: the event's, then each action's, each once."""
    found = list(case.event.get("photos") or [])
    for values in case.actions.values():
        found.extend(values.get("photos") or [])
    return list(dict.fromkeys(found))


def photo_response(sha: str, thumb: bool = False):
    """A response with the photo or its thumbnail, or None when the server does not hold it.

    The caller has checked that the user may see a case that refers to the photo.
    """
    if not blob_store().has(sha):
        return None
    return send_thumbnail(sha) if thumb else send_photo(sha)


# --- writing ----------------------------------------------------------------------------------

def may_press(user: User, action: str) -> bool:
    """Whether the user's role may take a page action at all (on some case, in some state)."""
    recorded = PAGE_ACTIONS.get(action)
    return recorded is not None and may_take(user.role, recorded) and (action != "verify" or may_stand_in(user.role))


def available_actions(user: User, case: Case) -> list[str]:
    """The page actions the user may take on the case as it stands, in the order buttons show."""
    if not visible_to(user, case):
        return []
    offered = rules.available_actions(case.state, user.role, actor=user.id, reporter=case.event.get("reporter"))
    return [action for action, recorded in PAGE_ACTIONS.items() if recorded in offered and may_press(user, action)]


def suggested_deadline(reference: Reference, case: Case, now_ms: int) -> str | None:
    """The default deadline for a dispatch: now plus the category's deadline hours."""
    hours = reference.category(case.category).get("deadline_hours")
    if not isinstance(hours, int) or isinstance(hours, bool) or hours <= 0:
        return None
    return format_ms(now_ms + hours * 3_600_000)


def record_action(user: User, case: Case, action: str, *, unit: str | None = None,
                  deadline: str | None = None, note: str | None = None,
                  duplicate_of: str | None = None, photos: Iterable[bytes] = ()) -> apply.Result:
    """Record a page action as a server-stamped case_action, applied as the user; returns its Result.

    ``action`` is any page action but ``verify``, which carries a verdict
    and goes through `record_verification`. Raises ActionNotAllowed for a role
    that may not, ActionDoesNotApply for a case in the wrong state,
    DeadlineNotAhead for a deadline that is not in the future. ``photos``
    are whole images already checked by the form; they are kept in the blob
    store by their SHA-256 (verified again there) and the action lists those.
    """
    if action == "verify" or not may_press(user, action):
        raise ActionNotAllowed(action)
    if action not in available_actions(user, case):
        raise ActionDoesNotApply(action)
    if deadline is not None and parse_ms(deadline) <= server_clock().physical_ms():
        raise DeadlineNotAhead(deadline)
    values = {"action": PAGE_ACTIONS[action], "unit": unit, "deadline": deadline, "note": note,
              "duplicate_of": duplicate_of, "photos": keep_photos(photos, user.id) or None}
    return _write(user, case, values)


def record_verification(user: User, case: Case, passed: bool, note: str | None = None) -> apply.Result:
    """Record a supervisor's verification in the reporter's place (stand_in)."""
    if not may_press(user, "verify"):
        raise ActionNotAllowed("verify")
    if "verify" not in available_actions(user, case):
        raise ActionDoesNotApply("verify")
    return _write(user, case, {"action": "verify_pass" if passed else "verify_fail", "note": note,
                               "stand_in": True})


def _write(user: User, case: Case, values: dict[str, Any]) -> apply.Result:
    clock = server_clock()
    record_id = uuid7(clock.physical_ms(), secrets.token_bytes(10))
    values = {"event": case.id, "actor": user.id, **{k: v for k, v in values.items() if v not in (None, "")}}
    change = apply.stamp("case_action", record_id, values, bucket=case.bucket)
    # The same path as a push: validation, the role check and the merge are the sync API's.
    changes, rejected = apply.validate_batch(user, [dump_change(change)])
    [result] = apply.apply_changes(user, changes, rejected)
    return result

"""Cases for the supervisor and unit pages: find, read, and record actions.

A case is an event plus its ``case_action`` records, and its state is
`shared.case.fold_case` over them, the same fold the tablet runs. The store
keeps that fold's output per case in the ``cases`` table
(server/sync/casebook.py), written in the transaction of every write, so the
queue filters, orders (urgent first, then deadline), pages, counts and searches
in SQL (`list_cases`) and never folds. The case page (`get_case`) reads one
event and its actions by their parent and folds them, for the timeline.

Who sees what (``visible_to``): supervisors and admins every case; a unit
user only the cases dispatched to their unit now; a grid worker none
(workers use the tablet).

Writing: a page's action is a ``case_action`` record stamped with the
server's HLC and applied through `server.sync.apply.apply_changes` with the
logged-in user, so the role check is the sync API's (shared/roles.py) and
the record syncs to tablets like any other. The page checks first that the
action applies to the case as it stands (`available_actions`), so a stale
page does not write an action the fold would only mark superseded; an action
that races another one is still recorded, and the fold shows it superseded.
What an action must carry as evidence (a close's note, a request's reason) is
shared/case.py's ``EVIDENCE``, checked by the forms and again at the write.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field, fields
from typing import Any, Iterable, Mapping

from sqlalchemy import and_, false, func, select

from shared import case as rules
from shared.case import OPEN_STATUSES, STATUSES, Action, CaseState, fold_case
from shared.hlc import HLC, HLCError, format_ms, parse_ms
from shared.records import dump_change, uuid7
from shared.roles import may_stand_in, may_take, reads_every_grid

from .. import audit
from ..clock import server_clock
from ..db import db
from ..models import CaseRow, Record, User
from ..photos.service import blob_store, keep_photos, send_photo, send_thumbnail
from ..reference import Reference, load_reference
from ..sync import apply, casebook
from . import search

# The pages' buttons, in the order they show, and the case action each records. Who may press one
# is shared/roles.py's to say, and whether it applies now the fold's (shared/case.available_actions).
# "verify" is a verification in the reporter's place; its verdict picks verify_pass or verify_fail.
PAGE_ACTIONS = {
    "dispatch": "dispatch", "rectify": "rectify", "close": "close", "return": "return", "extend": "extend",
    "grant_extension": "grant_extension", "refuse_extension": "refuse_extension",
    "request_extension": "request_extension", "send_back": "send_back",
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


class MissingEvidence(ValueError):
    """An action without what it must carry (shared/case.py, EVIDENCE): args[0] names the fields."""


@dataclass(frozen=True)
class Case:
    """One case: the event record, its actions by id, and the folded state.

    On the case page ``actions`` holds every action and ``state`` the fold with its timeline; in
    the queue a case is read from the cases table, with its event's values and no timeline.
    """

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

    @property
    def number(self) -> str | None:
        """The case number the server gave the event when it arrived (server/sync/casebook.py)."""
        return self.event.get("case_number")


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
    supervised: bool = False  # under deadline supervision (督办)
    resolution: str | None = None  # how a closed case was closed (RESOLUTIONS)
    q: str | None = None  # words of the description or the address, or a case number


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


def load_case(event_id: str, reference: Reference, now_ms: int) -> Case | None:
    """One case, folded with its timeline; None when there is no such event or it was deleted."""
    event = db.session.get(Record, event_id)
    if event is None or event.kind != "event" or event.field_values.get("_deleted"):
        return None
    # kind || '': the parent's index, not the kind's (server/sync/casebook.py, "Hazard: a planner …").
    actions = db.session.scalars(select(Record).where(Record.parent_id == event.id,
                                                      Record.kind.concat("") == "case_action")).all()
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


def _instant(ms: int | None) -> str | None:
    return None if ms is None else format_ms(ms)


def state_of(row: CaseRow, now_ms: int) -> CaseState:
    """A case's state as the cases table keeps it (no timeline), overdue as of now."""
    deadline = _instant(row.deadline_ms)
    return CaseState(
        status=row.status, resolution=row.resolution, unit=row.unit, deadline=deadline,
        failed_verifications=row.failures, supervised=row.supervised, assessment_flag=row.assessment,
        assessment_unit=row.assessment_unit, urgent=row.urgent, micro=row.micro, duplicate_of=row.duplicate_of,
        closed_at=_instant(row.closed_ms), extensions=row.extensions,
        extension_asked=_instant(row.extension_asked_ms), sent_back=row.sent_back,
        overdue=bool(row.open and row.deadline_ms is not None and now_ms > row.deadline_ms),
    )


def _cases_of(rows: list[CaseRow], now_ms: int) -> list[Case]:
    """Cases for a list: each row with its event's values (one query), in the rows' order."""
    events = {record.id: record for record in db.session.scalars(
        select(Record).where(Record.id.in_([row.event_id for row in rows])))} if rows else {}
    return [Case(row.event_id, row.bucket, events[row.event_id].field_values, {}, state_of(row, now_ms))
            for row in rows if row.event_id in events]


def _like(text: str) -> str:
    """A LIKE pattern that finds text anywhere, its wildcards taken literally (escape \\)."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def queue_conditions(user: User, filters: QueueFilters, reference: Reference, now_ms: int) -> list:
    """The SQL conditions of the filters, but the status; None in the list: nothing can match."""
    conditions: list = [CaseRow.deleted.is_(False)]
    if not reads_every_grid(user.role):
        conditions.append(CaseRow.unit == user.unit if user.role == "unit" and user.unit else false())
    grids = place_grids(filters, reference)
    if grids is not None:
        conditions.append(CaseRow.grid.in_(grids) if grids else false())
    if filters.category:
        conditions.append(CaseRow.category == filters.category)
    if filters.unit:
        conditions.append(CaseRow.unit == filters.unit)
    if filters.urgent:
        conditions.append(CaseRow.urgent.is_(True))
    if filters.supervised:
        conditions.append(CaseRow.supervised.is_(True))
    if filters.overdue:
        conditions.append(and_(CaseRow.open.is_(True), CaseRow.deadline_ms < now_ms))
    if filters.resolution:
        conditions.append(CaseRow.resolution == filters.resolution)
    words = (filters.q or "").strip().casefold().split()[:5]
    if words:
        mark = search.catch_up()
        conditions.extend(_word_condition(word, mark) for word in words)
    return conditions


def _word_condition(word: str, mark: int | None):
    """A case's search text contains the word (its LIKE wildcards taken literally), served by the trigram index
    of search.py (both engines), caught up to ``mark``."""
    return search.word_condition(word, _like(word), mark)


def status_condition(status: str):
    if status == "open":
        return CaseRow.open.is_(True)
    if status in STATUSES:
        return CaseRow.status == status
    return None  # all


def place_grids(filters: QueueFilters, reference: Reference) -> list[str] | None:
    """The grids the place filters (community, street, grid) leave; None when none is given."""
    if filters.community or filters.street:
        return [code for code, grid in reference.grids.items()
                if (not filters.community or grid.get("community") == filters.community)
                and (not filters.street or grid.get("street") == filters.street)
                and (not filters.grid or code == filters.grid)]
    return [filters.grid] if filters.grid else None


# The filters case_counts answers for; every other filter's "any" is falsy (None, "", False).
_COUNTED_BY_PLACE = frozenset({"status", "grid", "community", "street"})


def _only_place(filters: QueueFilters) -> bool:
    """Whether no filter but the place (and the status, which the counts are per) is set."""
    return not any((getattr(filters, f.name) or "").strip() if f.name == "q" else getattr(filters, f.name)
                   for f in fields(filters) if f.name not in _COUNTED_BY_PLACE)


def _status_counts(user: User, filters: QueueFilters, reference: Reference, conditions: list) -> dict[str, int]:
    """The live cases per status that the filters but the status hold.

    From case_counts (server/sync/casebook.py) when only the place filters the cases the user sees: a
    sum over the grids, whatever the store's size. Otherwise counted in SQL, per grid and status and
    summed here, over what the other filters' indexes find (a unit's cases, a category's, a search's
    matches) or the table. (Grouped by status alone, SQLite walked ix_cases_status_queue for its order.
    The covering ix_cases_grid_status that served these counts went in migration 0014: every push wrote
    it for every new event, for counts that case_counts now answers in the common case.)
    """
    if reads_every_grid(user.role) and _only_place(filters):
        return casebook.status_counts(db.session.connection(), place_grids(filters, reference))
    by_status: dict[str, int] = {}
    for status_name, count in db.session.execute(
            select(CaseRow.status, func.count()).where(*conditions).group_by(CaseRow.grid, CaseRow.status)):
        by_status[status_name] = by_status.get(status_name, 0) + count
    return by_status


def list_cases(user: User, filters: QueueFilters, page: int = 1, per_page: int = 20,
               now_ms: int | None = None, reference: Reference | None = None) -> QueuePage:
    """The user's queue: filtered, urgent first, then by deadline (none last), then reported; paged;
    with counts per status over the other filters. All in SQL, on the cases table."""
    reference = reference or load_reference()
    now_ms = server_clock().physical_ms() if now_ms is None else now_ms
    conditions = queue_conditions(user, filters, reference, now_ms)
    by_status = _status_counts(user, filters, reference, conditions)
    counts = {status: by_status.get(status, 0) for status in STATUSES}
    counts["open"] = sum(counts[status] for status in OPEN_STATUSES)
    counts["all"] = sum(by_status.values())
    total = counts.get(filters.status, counts["all"])
    per_page = max(1, per_page)
    pages = max(1, math.ceil(total / per_page))
    page = min(max(1, page), pages)
    status = status_condition(filters.status)
    rows = db.session.scalars(
        select(CaseRow).where(*conditions, *([] if status is None else [status]))
        # queue_key's order (shared/case.py), then the id: equal keys keep one order from page to page.
        .order_by(CaseRow.urgent.desc(), CaseRow.due_sort, CaseRow.reported_ms, CaseRow.event_id)
        .limit(per_page).offset((page - 1) * per_page)).all()
    return QueuePage(_cases_of(rows, now_ms), counts, total, page, pages, per_page)


def find_by_number(user: User, number: str) -> str | None:
    """The event id of the case with this number, if the user may see it."""
    conditions = queue_conditions(user, QueueFilters(), Reference(), 0)
    return db.session.scalar(select(CaseRow.event_id).where(CaseRow.case_number == number.strip(), *conditions))


def distance_m(a: Mapping[str, Any], b: Mapping[str, Any]) -> float:
    """The great-circle distance in metres between two locations ({lat, lon})."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a["lat"], a["lon"], b["lat"], b["lon"]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def nearby_cases(user: User, case: Case, now_ms: int | None = None,
                 reference: Reference | None = None) -> list[tuple[Case, float]]:
    """Open cases in the same category within the category's duplicate radius, nearest first.

    The cases table finds the candidates in a box around the case (SQL), the great circle decides.
    """
    reference = reference or load_reference()
    radius = reference.category(case.category).get("duplicate_radius_m") or 0
    here = case.event.get("location")
    if radius <= 0 or not isinstance(here, Mapping):
        return []
    now_ms = server_clock().physical_ms() if now_ms is None else now_ms
    dlat = math.degrees(radius / EARTH_RADIUS_M)
    dlon = dlat / max(0.01, math.cos(math.radians(here["lat"])))
    conditions = queue_conditions(user, QueueFilters(category=case.category), reference, now_ms)
    rows = db.session.scalars(select(CaseRow).where(
        *conditions, CaseRow.open.is_(True), CaseRow.event_id != case.id,
        CaseRow.lat.between(here["lat"] - dlat, here["lat"] + dlat),
        CaseRow.lon.between(here["lon"] - dlon, here["lon"] + dlon)).limit(200)).all()
    found = []
    for other in _cases_of(rows, now_ms):
        there = other.event.get("location")
        if isinstance(there, Mapping):
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


def _hours(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def suggested_deadline(reference: Reference, case: Case, now_ms: int) -> str | None:
    """The default deadline for a dispatch: now plus the category's deadline hours (its urgent hours for
    an urgent event, where it has them), as the fold computes one an action does not carry."""
    category = reference.category(case.category)
    hours = _hours(category.get("urgent_deadline_hours")) if case.state.urgent else None
    hours = hours or _hours(category.get("deadline_hours"))
    return None if hours is None else format_ms(now_ms + hours * 3_600_000)


def record_action(user: User, case: Case, action: str, *, unit: str | None = None,
                  deadline: str | None = None, note: str | None = None,
                  duplicate_of: str | None = None, photos: Iterable[bytes] = ()) -> apply.Result:
    """Record a page action as a server-stamped case_action, applied as the user; returns its Result.

    ``action`` is any page action but ``verify``, which carries a verdict
    and goes through `record_verification`. Raises ActionNotAllowed for a role
    that may not, ActionDoesNotApply for a case in the wrong state,
    DeadlineNotAhead for a deadline that is not in the future (or, asking for
    more time, not after the one in force), MissingEvidence for an action
    without its note or photos. ``photos``
    are whole images already checked by the form; they are kept in the blob
    store by their SHA-256 (verified again there) and the action lists those.
    """
    if action == "verify" or not may_press(user, action):
        raise ActionNotAllowed(action)
    if action not in available_actions(user, case):
        raise ActionDoesNotApply(action)
    if deadline is not None and parse_ms(deadline) <= server_clock().physical_ms():
        raise DeadlineNotAhead(deadline)
    if (action == "request_extension" and deadline is not None and case.state.deadline is not None
            and parse_ms(deadline) <= parse_ms(case.state.deadline)):
        raise DeadlineNotAhead(deadline)
    values = {"action": PAGE_ACTIONS[action], "unit": unit, "deadline": deadline, "note": note,
              "duplicate_of": duplicate_of}
    missing = rules.missing_evidence({**values, "photos": list(photos)})
    if missing:
        raise MissingEvidence(missing)
    values["photos"] = keep_photos(photos, user.id) or None
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
    if result.status == "applied":  # every supervisor's and unit's action on the pages, in the audit log
        state = case.state
        audit.record(values["action"], "case", case.number or case.id, actor=user, commit=True,
                     before={"status": state.status, "unit": state.unit, "deadline": state.deadline},
                     after={k: v for k, v in values.items() if k not in ("event", "actor")})
    return result

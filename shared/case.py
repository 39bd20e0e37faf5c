"""The status of a case: a fold of its case actions in HLC order (巡 → 拨 → 办 → 督).

A case is an event with its workflow. Nobody writes a case's status: every step
(dispatch, rectify, verify, return, close …) is an append-only ``case_action``
record, made on a tablet or a web page, and the status is computed from the
event and all of its actions by `fold_case`. The tablet and the server run the
same fold over the same records, so they show the same status.

Properties (``tests/shared/test_case.py`` proves them with hypothesis):

* **Deterministic and order-free.** The actions are sorted by ``(hlc, id)``
  inside the fold and duplicates of one id are dropped, so any replica that
  holds the same actions, received in any order and any number of times,
  computes the same state.
* **Total.** No set of actions makes the fold raise: an unknown action, a
  malformed timestamp or a missing field is recorded as not applied, with a
  reason, never thrown.
* **Nothing is dropped.** Every action appears in the timeline exactly once.
  One that no longer applies stays there with ``applied=False`` and a reason.
* **Prefix-stable.** An action later in HLC order never changes how an earlier
  one was judged, so the timeline a supervisor has read stays true.
* **Closed is absorbing.** After a case closes only comments still apply.

Hazard: offline concurrency. Two people act on one case without seeing each
other: a supervisor closes a case in the office while a worker, offline,
verifies it as failed. HLC order decides who acted first, and the later action
is kept and marked "superseded: case already closed". Reasons starting with
``superseded:`` mean "someone acted first"; ``refused:`` means the action could
never apply (wrong person, no unit, not a micro event, bad timestamp).

Hazard: counting failures twice. "More than three failed verifications" sends
the case to the unit's assessment and puts it under deadline supervision
(督办). The count is of *applied* ``verify_fail`` actions, each id once, so a
replayed push or a fail on a case that was not rectified never counts. The
fourth failure, and only the fourth, sets the new supervision deadline.

Hazard: reference data changes under old cases. A deadline the action does not
carry is computed from the category's ``deadline_hours``; an admin who changes
that figure changes the fallback deadline of every case folded afterwards.
Pages and tablets should therefore write the deadline into the action when they
know it; the fallback is for actions that name none.

Hazard: permission. The fold knows only the records. It checks what they can
prove (the verifier is the event's reporter) and trusts ``stand_in``: the
server refuses, at push, a ``stand_in`` from anyone who is not a supervisor,
and every other action from a role that may not take it (design.md,
principle 5). Roles change over time; folding by today's roles would rewrite
yesterday's history.

Time: nothing here reads a clock. The time of an action is the wall time of
its HLC; "now", for ``overdue``, is passed in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from collections.abc import Callable, Iterable, Mapping  # abc, not typing: isinstance against typing.Mapping is slow
from typing import Any

from . import steps
from .hlc import HLC, HLCError, format_ms, parse_ms
from .records import UUID_PATTERN
from .roles import ACTIONS_BY_ROLE, may_stand_in

__all__ = [
    "STATUSES", "OPEN_STATUSES", "RESOLUTIONS", "REASONS", "FAILURES_BEFORE_SUPERVISION",
    "Action", "TimelineEntry", "CaseState", "fold_case", "INERT_ACTIONS", "is_overdue", "queue_key",
    "awaiting_verification", "available_actions", "EVIDENCE", "missing_evidence",
]

STATUSES = ("reported", "dispatched", "rectified", "returned", "closed")
OPEN_STATUSES = STATUSES[:-1]
# How a closed case was closed.
RESOLUTIONS = ("verified", "handled_on_spot", "closed", "duplicate")
# "More than three": the fourth failed verification triggers supervision.
FAILURES_BEFORE_SUPERVISION = 3

_HOUR_MS = 3_600_000
_MAX_MS = steps.MAX_MS
_UUID = re.compile(UUID_PATTERN.pattern.strip("^$"), re.IGNORECASE)  # a record id anywhere in a note
# Why an action found the case in the wrong state, by the status it found.
_FOUND = {
    "reported": "superseded: case not dispatched yet",
    "dispatched": "superseded: case not rectified yet",
    "rectified": "superseded: case already rectified, awaiting verification",
    "returned": "superseded: case returned, not rectified again yet",
    "closed": "superseded: case already closed",
}
SUPERSEDED_DISPATCHED = "superseded: case already dispatched"
REFUSED_UNKNOWN = "refused: unknown action"
REFUSED_TIMESTAMP = "refused: malformed timestamp"
REFUSED_VERIFIER = "refused: only the reporter, or a supervisor standing in, verifies"
REFUSED_NO_UNIT = "refused: dispatch names no unit"
REFUSED_NO_DEADLINE = "refused: extend gives no deadline"
REFUSED_NOT_MICRO = "refused: not a micro event"
REFUSED_ON_SPOT = "refused: only the reporter handles a micro event on the spot"
REFUSED_NO_REASON = "refused: gives no reason"
REFUSED_DEADLINE_NOT_LATER = "refused: the deadline asked for is not later than the one in force"
SUPERSEDED_NO_REQUEST = "superseded: no extension asked for"
# Every reason a timeline entry can give, for pages that translate them.
REASONS = (*_FOUND.values(), SUPERSEDED_DISPATCHED, REFUSED_UNKNOWN, REFUSED_TIMESTAMP, REFUSED_VERIFIER,
           REFUSED_NO_UNIT, REFUSED_NO_DEADLINE, REFUSED_NOT_MICRO, REFUSED_ON_SPOT, REFUSED_NO_REASON,
           REFUSED_DEADLINE_NOT_LATER, SUPERSEDED_NO_REQUEST)
# What an action must carry as evidence before a page or a tablet sends it (and the server accepts
# it from a push). Not a rule of the fold: actions recorded before the rule still fold as they did.
EVIDENCE: dict[str, frozenset[str]] = {
    "close": frozenset({"note"}),
    "handle_on_spot": frozenset({"note", "photos"}),
    "send_back": frozenset({"note"}),
    "request_extension": frozenset({"note", "deadline"}),
}


@dataclass(frozen=True)
class Action:
    """One case action: its record id, the HLC of its creation and its plain field values."""

    id: str
    hlc: str
    values: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @classmethod
    def from_state(cls, id: str, state: Mapping[str, tuple[Any, str]]) -> "Action":
        """An Action from a stored record state (field -> (value, hlc)), stamped by its ``action`` write."""
        writes = {name: write for name, write in state.items() if isinstance(write, (tuple, list)) and len(write) == 2}
        stamps = [write[1] for write in writes.values() if isinstance(write[1], str)]
        stamp = writes.get("action", (None, None))[1]
        if not isinstance(stamp, str):
            stamp = min(stamps, default="")
        return cls(id, stamp, {name: write[0] for name, write in writes.items()})


@dataclass(frozen=True)
class TimelineEntry:
    """One action as the fold judged it.

    ``applied`` is False for an action that no longer applied, with ``reason``
    saying why; ``stand_in`` marks a verification by a supervisor in the
    reporter's place; ``status`` is the case's status after this entry.
    """

    action_id: str
    hlc: str
    action: str
    actor: str | None
    applied: bool
    status: str
    reason: str | None = None
    stand_in: bool = False


@dataclass(frozen=True)
class CaseState:
    """The folded state of one case.

    ``status`` is one of STATUSES; a closed case has a ``resolution`` from
    RESOLUTIONS and ``closed_at``. ``deadline`` and ``closed_at`` are ISO 8601
    UTC with milliseconds. ``supervised`` is 督办 (by a ``supervise`` action or
    by the fourth failed verification); ``assessment_flag`` marks the case for
    the performance assessment of ``assessment_unit``, the unit that held it at
    the fourth failure. ``overdue`` is only ever True when the fold was given
    ``now_ms``. ``extensions`` counts the deadlines moved by a granted extension (or a supervisor's
    ``extend``); ``extension_asked`` is the deadline a unit asked for while its request is pending;
    ``sent_back`` counts the times a unit sent the case back as not theirs (it counts against no
    one).
    """

    status: str = "reported"
    resolution: str | None = None
    unit: str | None = None
    deadline: str | None = None
    failed_verifications: int = 0
    supervised: bool = False
    assessment_flag: bool = False
    assessment_unit: str | None = None
    urgent: bool = False
    micro: bool = False
    duplicate_of: str | None = None
    closed_at: str | None = None
    overdue: bool = False
    timeline: tuple[TimelineEntry, ...] = ()
    extensions: int = 0
    extension_asked: str | None = None
    sent_back: int = 0

    @property
    def is_open(self) -> bool:
        """Whether the case is not closed."""
        return self.status != "closed"


# --- reading actions, which may be anything ---------------------------------------------------

@dataclass(frozen=True)
class _Step:
    """An action read defensively: every field is of the type the rules expect, or None."""

    id: str
    hlc: str
    wall_ms: int | None
    action: str
    actor: str | None
    unit: str | None
    deadline: str | None
    note: str | None
    stand_in: bool
    duplicate_of: str | None


_text, _instant, _format = steps.text, steps.instant, steps.format_instant


def _read(action: Any) -> _Step:
    raw_id = getattr(action, "id", None)
    raw_hlc = getattr(action, "hlc", None)
    values = getattr(action, "values", None)
    if not isinstance(values, Mapping):
        values = {}
    hlc = raw_hlc if isinstance(raw_hlc, str) else ""
    try:
        wall_ms: int | None = HLC.parse(hlc).wall_ms
    except HLCError:
        wall_ms = None
    name = values.get("action")
    return _Step(
        id=raw_id if isinstance(raw_id, str) else repr(raw_id),
        hlc=hlc,
        wall_ms=wall_ms,
        action=name if isinstance(name, str) else repr(name),
        actor=_text(values.get("actor")),
        unit=_text(values.get("unit")),
        deadline=_instant(values.get("deadline")),
        note=_text(values.get("note")),
        stand_in=values.get("stand_in") is True,
        duplicate_of=_text(values.get("duplicate_of")),
    )


def _ordered(actions: Iterable[Action]) -> list[_Step]:
    """One step per action id, sorted by (hlc, id) (shared/steps.py, `ordered`)."""
    return steps.ordered(actions, _read)


# --- the rules --------------------------------------------------------------------------------

@dataclass
class _Case:
    """The state while folding; mutable, never leaves this module."""

    reporter: str | None
    micro: bool
    deadline_hours: int | None
    status: str = "reported"
    resolution: str | None = None
    unit: str | None = None
    deadline: str | None = None
    failed: int = 0
    supervised: bool = False
    assessment_flag: bool = False
    assessment_unit: str | None = None
    duplicate_of: str | None = None
    closed_at: str | None = None
    extensions: int = 0
    extension_asked: str | None = None
    sent_back: int = 0
    urgent: bool = False
    urgent_hours: int | None = None

    @classmethod
    def from_state(cls, state: CaseState, reporter: str | None) -> "_Case":
        """The fold's working state again, from a folded CaseState and the event's reporter."""
        return cls(reporter=_text(reporter), micro=state.micro, deadline_hours=None, status=state.status,
                   resolution=state.resolution, unit=state.unit, deadline=state.deadline,
                   failed=state.failed_verifications, supervised=state.supervised,
                   assessment_flag=state.assessment_flag, assessment_unit=state.assessment_unit,
                   duplicate_of=state.duplicate_of, closed_at=state.closed_at, extensions=state.extensions,
                   extension_asked=state.extension_asked, sent_back=state.sent_back, urgent=state.urgent)

    def new_deadline(self, step: _Step) -> str | None:
        """The action's deadline; else the category's hours (its urgent hours for an urgent event)
        from the action's time; else unchanged."""
        if step.deadline:
            return step.deadline
        hours = self.urgent_hours if self.urgent and self.urgent_hours is not None else self.deadline_hours
        if hours is not None and step.wall_ms is not None:
            computed = _format(step.wall_ms + hours * _HOUR_MS)
            if computed is not None:
                return computed
        return self.deadline

    def close(self, step: _Step, resolution: str) -> None:
        self.status, self.resolution, self.extension_asked = "closed", resolution, None
        self.closed_at = format_ms(step.wall_ms) if step.wall_ms is not None else None

    def is_reporter(self, step: _Step) -> bool:
        return self.reporter is not None and step.actor == self.reporter

    def is_verifier(self, step: _Step) -> bool:
        return step.stand_in or self.is_reporter(step)


# Each rule applies the step and returns None, or returns why it does not apply.
# The fold has already refused unknown actions and bad timestamps, kept comments
# and superseded everything on a closed case.

def _dispatch(case: _Case, step: _Step) -> str | None:
    # A second dispatch before rectification reassigns the case (a unit that
    # refuses it, a wrong unit); after rectification it would erase the work.
    if case.status not in ("reported", "dispatched", "returned"):
        return _FOUND[case.status]
    if step.unit is None:
        return REFUSED_NO_UNIT
    case.unit, case.deadline, case.status = step.unit, case.new_deadline(step), "dispatched"
    case.extension_asked = None  # a request was the previous unit's
    return None


def _rectify(case: _Case, step: _Step) -> str | None:
    if case.status not in ("dispatched", "returned"):
        return _FOUND[case.status]
    case.status = "rectified"
    return None


def _verify(case: _Case, step: _Step) -> str | None:
    # Who comes before when: a wrong verifier is wrong in any order.
    if not case.is_verifier(step):
        return REFUSED_VERIFIER
    if case.status != "rectified":
        return _FOUND[case.status]
    if step.action == "verify_pass":
        case.close(step, "verified")
        return None
    case.status, case.failed = "returned", case.failed + 1
    if case.failed == FAILURES_BEFORE_SUPERVISION + 1:
        case.supervised = case.assessment_flag = True
        case.assessment_unit = case.unit
        case.deadline = case.new_deadline(step)
    elif step.deadline:
        case.deadline = step.deadline
    return None


def _return(case: _Case, step: _Step) -> str | None:
    if case.status != "rectified":
        return _FOUND[case.status]
    case.status = "returned"
    return None


def _close(case: _Case, step: _Step) -> str | None:
    case.close(step, "closed")
    return None


def _extend(case: _Case, step: _Step) -> str | None:
    # A supervisor moving the deadline on their own: counted as a granted extension.
    if case.status == "reported":
        return _FOUND[case.status]
    if step.deadline is None:
        return REFUSED_NO_DEADLINE
    case.deadline, case.extension_asked = step.deadline, None
    case.extensions += 1
    return None


def _send_back(case: _Case, step: _Step) -> str | None:
    # 退回: the unit says the case is not theirs. It goes back to the supervisor's queue to be
    # dispatched again; nobody's deadline runs meanwhile and no one's assessment counts it.
    if case.status != "dispatched":
        return _FOUND[case.status]
    if step.note is None:
        return REFUSED_NO_REASON
    case.status, case.unit, case.deadline, case.extension_asked = "reported", None, None, None
    case.sent_back += 1
    return None


def _request_extension(case: _Case, step: _Step) -> str | None:
    # 申请延期: only asks. The deadline moves when a supervisor grants it.
    if case.status not in ("dispatched", "returned"):
        return _FOUND[case.status]
    if step.note is None:
        return REFUSED_NO_REASON
    if step.deadline is None:
        return REFUSED_NO_DEADLINE
    if case.deadline is not None and step.deadline <= case.deadline:
        return REFUSED_DEADLINE_NOT_LATER
    case.extension_asked = step.deadline
    return None


def _answer_extension(case: _Case, step: _Step) -> str | None:
    if case.extension_asked is None:
        return SUPERSEDED_NO_REQUEST
    if step.action == "grant_extension":
        # The supervisor may grant a different deadline than the one asked for.
        case.deadline = step.deadline or case.extension_asked
        case.extensions += 1
    case.extension_asked = None
    return None


def _handle_on_spot(case: _Case, step: _Step) -> str | None:
    if not case.micro:
        return REFUSED_NOT_MICRO
    if not case.is_reporter(step):
        return REFUSED_ON_SPOT
    if case.status != "reported":
        return SUPERSEDED_DISPATCHED
    case.close(step, "handled_on_spot")
    return None


def _mark_duplicate(case: _Case, step: _Step) -> str | None:
    # The action's own field; actions recorded before it existed named the case in the note.
    found = _UUID.search(step.note or "")
    case.duplicate_of = step.duplicate_of or (found.group(0).lower() if found else None)
    case.close(step, "duplicate")
    return None


def _supervise(case: _Case, step: _Step) -> str | None:
    case.supervised = True
    case.deadline = case.new_deadline(step)
    return None


def _comment(case: _Case, step: _Step) -> str | None:
    return None


_RULES: dict[str, Callable[[_Case, _Step], str | None]] = {  # in the order buttons show them
    "dispatch": _dispatch,
    "rectify": _rectify,
    "verify_pass": _verify,
    "verify_fail": _verify,
    "close": _close,
    "return": _return,
    "extend": _extend,
    "comment": _comment,
    "handle_on_spot": _handle_on_spot,
    "mark_duplicate": _mark_duplicate,
    "supervise": _supervise,
    "send_back": _send_back,
    "request_extension": _request_extension,
    "grant_extension": _answer_extension,
    "refuse_extension": _answer_extension,
}


_ACTION_ORDER = tuple(_RULES)
# Actions that change nothing of a case's state but its timeline, wherever they fall in its history
# (a comment: `_judge` applies it before any check, its rule changes nothing). A store may skip
# folding a case again for a new one of these (server/sync/casebook.py); tests/shared/test_case.py
# proves the law on any history.
INERT_ACTIONS = frozenset(name for name, rule in _RULES.items() if rule is _comment)


def _judge(case: _Case, step: _Step) -> str | None:
    """Apply one step; None when it applied, else the reason it did not. Order of checks matters."""
    rule = _RULES.get(step.action)
    if rule is None:
        return REFUSED_UNKNOWN
    if step.wall_ms is None:
        return REFUSED_TIMESTAMP
    if step.action == "comment":
        return None
    if case.status == "closed":
        return _FOUND["closed"]
    return rule(case, step)


def _now_ms(now: int | str | None) -> int | None:
    if now is None:
        return None
    if isinstance(now, bool) or not isinstance(now, (int, str)):
        raise TypeError(f"now must be Unix milliseconds or an ISO 8601 UTC string, not {type(now).__name__}")
    return parse_ms(now) if isinstance(now, str) else now


def _deadline_hours(category: Mapping[str, Any] | None, name: str = "deadline_hours") -> int | None:
    hours = category.get(name) if isinstance(category, Mapping) else None
    return hours if isinstance(hours, int) and not isinstance(hours, bool) and hours > 0 else None


def fold_case(
    event: Mapping[str, Any],
    actions: Iterable[Action],
    *,
    now_ms: int | str | None = None,
    category: Mapping[str, Any] | None = None,
) -> CaseState:
    """Fold an event's case actions, in (hlc, id) order, into the case's state.

    ``event`` holds the event record's plain values; the fold reads
    ``reporter``, ``urgent`` and ``micro`` (only ``True`` counts as true).
    ``category`` is the event category's plain values; only ``deadline_hours``
    and ``urgent_deadline_hours`` (for an urgent event) are read, for
    deadlines an action does not carry. ``now_ms``, Unix
    milliseconds or an ISO 8601 UTC string, is needed only for ``overdue``; a
    malformed ``now_ms`` raises (it is the caller's mistake, not the data's).

    The rules, per action (any action but ``comment`` on a closed case is
    superseded; an action that does not apply changes nothing):

    ==============  =====================================  ====================================
    action          applies when                           effect
    ==============  =====================================  ====================================
    dispatch        reported, dispatched or returned;      dispatched; unit; new deadline
                    names a unit                           (re-dispatch reassigns)
    rectify         dispatched or returned                 rectified
    verify_pass     rectified; by the reporter or a        closed (verified)
                    ``stand_in``
    verify_fail     as verify_pass                         returned; one more failure; the 4th
                                                           flags the unit's assessment, sets
                                                           supervised and a new deadline
    return          rectified                              returned (not a failed verification)
    close           open                                   closed (closed)
    extend          dispatched, rectified or returned;     deadline; one more extension
                    gives a deadline
    send_back       dispatched; gives a reason (note)      reported again, no unit, no deadline
                                                           (退回: not the unit's case)
    request_        dispatched or returned; a reason and   the deadline asked for is pending
    extension       a deadline later than the one in force
    grant_          an extension is pending                deadline (the action's, else the one
    extension                                              asked for); one more extension
    refuse_         an extension is pending                nothing pending
    extension
    handle_on_spot  reported; micro event; by the reporter closed (handled_on_spot)
    mark_duplicate  open                                   closed (duplicate); duplicate_of is
                                                           the action's duplicate_of, else the
                                                           first UUID in its note
    supervise       open                                   supervised; new deadline
    comment         always                                 nothing
    ==============  =====================================  ====================================

    A new deadline is the action's ``deadline``; else the category's
    ``deadline_hours`` (``urgent_deadline_hours`` for an urgent event, where
    the category has them) after the action's HLC wall time; else the deadline
    stays as it was. A dispatch or a close drops a pending extension request. A ``verify_fail`` other than the 4th changes the deadline
    only when it carries one.

    Speed: a case with no actions (most of a push: new events) is its event's first state, which only
    ``urgent`` and ``micro`` decide (the reporter and the category are read by rules, and no rule ran).
    That fold is run once per pair and kept (`_first_state`), not run again per event; it is the
    same fold, so no rule is written twice.
    """
    if type(actions) in (list, tuple) and not actions and (now_ms is None or type(now_ms) is int):
        # now_ms is only checked (a malformed one raises below), never needed: no deadline, never overdue.
        urgent = micro = False
        if isinstance(event, Mapping):
            urgent, micro = event.get("urgent") is True, event.get("micro") is True
        return _first_state(urgent, micro)
    return _fold(event, actions, now_ms=now_ms, category=category)


def _fold(event: Any, actions: Iterable[Action], *, now_ms: int | str | None = None,
          category: Mapping[str, Any] | None = None) -> CaseState:
    """fold_case, every time (fold_case's docstring has the rules)."""
    event = event if isinstance(event, Mapping) else {}
    case = _Case(
        reporter=_text(event.get("reporter")),
        micro=event.get("micro") is True,
        deadline_hours=_deadline_hours(category),
        urgent=event.get("urgent") is True,
        urgent_hours=_deadline_hours(category, "urgent_deadline_hours"),
    )
    now = _now_ms(now_ms)
    timeline = []
    for step in _ordered(actions):
        reason = _judge(case, step)
        timeline.append(TimelineEntry(
            action_id=step.id,
            hlc=step.hlc,
            action=step.action,
            actor=step.actor,
            applied=reason is None,
            status=case.status,
            reason=reason,
            stand_in=step.action in ("verify_pass", "verify_fail") and case.is_verifier(step)
            and not case.is_reporter(step),
        ))
    state = CaseState(
        status=case.status,
        resolution=case.resolution,
        unit=case.unit,
        deadline=case.deadline,
        failed_verifications=case.failed,
        supervised=case.supervised,
        assessment_flag=case.assessment_flag,
        assessment_unit=case.assessment_unit,
        urgent=event.get("urgent") is True,
        micro=case.micro,
        duplicate_of=case.duplicate_of,
        closed_at=case.closed_at,
        timeline=tuple(timeline),
        extensions=case.extensions,
        extension_asked=case.extension_asked,
        sent_back=case.sent_back,
    )
    if now is not None and is_overdue(state, now):
        state = replace(state, overdue=True)
    return state


_FIRST_STATES: dict[tuple[bool, bool], CaseState] = {}


def _first_state(urgent: bool, micro: bool) -> CaseState:
    """The fold of an event with these ``urgent`` and ``micro`` and no action (a frozen CaseState: shared)."""
    state = _FIRST_STATES.get((urgent, micro))
    if state is None:
        state = _FIRST_STATES[urgent, micro] = _fold({"urgent": urgent, "micro": micro}, [])
    return state


def is_overdue(state: CaseState, now_ms: int | str) -> bool:
    """Whether an open case is past its deadline at now_ms (Unix ms or ISO 8601 UTC)."""
    now, deadline = _now_ms(now_ms), _instant(state.deadline)
    if now is None or state.status == "closed" or deadline is None:
        return False
    return now > parse_ms(deadline)


def queue_key(state: CaseState, event: Mapping[str, Any]) -> tuple:
    """A sort key for work queues: urgent first, then earliest deadline (none last), then earliest reported."""
    reported_at = _instant(event.get("reported_at")) if isinstance(event, Mapping) else None
    # Both times are in the canonical fixed-width form, so text order is time order.
    return (not state.urgent, state.deadline is None, state.deadline or "", reported_at or "")


def available_actions(state: CaseState, role: str, *, actor: str | None,
                      reporter: str | None) -> tuple[str, ...]:
    """The case actions ``actor``, of ``role``, may take on the case as it stands, in the fold's order of rules.

    An action is offered when the role may push it (shared/roles.py) and the fold would apply it
    now: each candidate is dry-run through the fold's own rules (`_judge`) on the folded state, as
    a well-formed action (a dispatch names a unit, an extension gives a deadline, every action a
    note, a verification by a role that may stand in does) stamped after every action folded so far. So a page or a tablet
    offers exactly what folding the action in would apply, and the rules stay written once, in
    `_RULES`. ``reporter`` is the event's reporter (the fold's verifier and on-the-spot handler).
    """
    offered = []
    for name in sorted(ACTIONS_BY_ROLE.get(role, ()), key=_ACTION_ORDER.index):
        candidate = _Step(id="", hlc="", wall_ms=0, action=name, actor=_text(actor),
                          unit="unit" if name == "dispatch" else None,
                          deadline=format_ms(_MAX_MS) if name in ("extend", "request_extension") else None,
                          note="note",
                          stand_in=name in ("verify_pass", "verify_fail") and may_stand_in(role),
                          duplicate_of=None)
        if _judge(_Case.from_state(state, reporter), candidate) is None:
            offered.append(name)
    return tuple(offered)


def awaiting_verification(state: CaseState, event: Mapping[str, Any], user_id: str) -> bool:
    """Whether the case waits for user_id, its reporter, to verify the rectification."""
    reporter = event.get("reporter") if isinstance(event, Mapping) else None
    return bool(user_id) and "verify_pass" in available_actions(state, "worker", actor=user_id, reporter=reporter)


def missing_evidence(values: Mapping[str, Any]) -> tuple[str, ...]:
    """The evidence fields (EVIDENCE) a case action's values lack, sorted; () when it has them all."""
    needed = EVIDENCE.get(values.get("action"), frozenset()) if isinstance(values, Mapping) else frozenset()
    return tuple(sorted(name for name in needed if values.get(name) in (None, "", [], ())))

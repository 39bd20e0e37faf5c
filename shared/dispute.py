"""The state of a civil dispute (民事纠纷): a fold of its mediation steps, and the two rates the district counts.

The seed document asks that disputes be mediated in time, with a mediation rate of 100 % and a
success rate of at least 95 % (part 3, item 5). A dispute is a ``dispute`` record (parties, kind,
place, description, reporter); every step taken on it is an append-only ``dispute_action``:

* ``accept`` (受理): someone takes the dispute up;
* ``session`` (调解): a mediation session (who mediated, when, a note);
* ``outcome`` (调解结果): settled, partly settled, not settled, or referred to another body;
* ``follow_up`` (回访): a visit after the outcome;
* ``comment``: a note, any time.

Nobody writes a dispute's status: `fold_dispute` computes it, on the tablet and on the server
alike, exactly as shared/case.py does for cases, and it keeps that module's laws
(``tests/shared/test_dispute.py`` proves them with hypothesis):

* **Deterministic and order-free.** Steps are sorted by ``(hlc, id)`` and duplicates of one id
  dropped (the lesser ``(hlc, values)`` stands), so replicas holding the same steps agree.
* **Total.** Nothing makes the fold raise: an unknown action, a bad timestamp or a missing field
  is a step not applied, with a reason.
* **Nothing is dropped.** Every step is in the timeline exactly once.
* **Prefix-stable.** A later step never changes how an earlier one was judged.
* **Closed is absorbing.** After an outcome only follow-ups and comments apply; a second outcome
  is kept, marked ``superseded: dispute already concluded``.

Statuses: ``reported → accepted → mediating → concluded``. A session or an outcome on a dispute
nobody accepted yet takes it up too (a worker who mediates on the spot need not press two
buttons). ``taken_up_at`` is the time of the first applied accept, session or outcome.

Hazard: deadlines that move under old disputes. "Not taken up within the time the admin sets" is
``take_up_hours`` of the dispute's kind (``dispute_kind``, reference data), counted from the
dispute's ``reported_at``. An admin who changes the hours changes every open dispute's deadline;
that is the intent (the figure is a policy, not a promise made to someone).

Hazard: the step's time. A step's ``at`` (a session held yesterday, typed today) is when it
happened and is what the timeline shows; the fold orders by HLC, never by ``at``, since ``at`` is
whatever a person typed. Taking up is dated by ``at`` where it is given, else by the HLC.

**The two rates** (`dispute_rates`), over the disputes of a grid, a community or a street
(deleted ones left out):

* mediation rate = disputes *mediated* ÷ disputes reported, goal 100 %. Mediated: the dispute has
  an applied session or an applied outcome (being accepted alone is not mediation).
* success rate = disputes *settled* ÷ disputes mediated with an outcome, goal ≥ 95 %. Every
  outcome counts in the divisor (a referral or a partial settlement is not a success); only
  ``settled`` counts above it.

A rate whose divisor is zero is None ("nothing to count"), neither good nor bad. Rates of a larger
place are counted from its disputes, never averaged from its grids' rates.

Time: nothing here reads a clock; ``now`` is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from . import steps
from .case import Action
from .hlc import HLC, HLCError, format_ms, parse_ms
from .records import DISPUTE_ACTIONS, DISPUTE_OUTCOMES

__all__ = [
    "STATUSES", "OPEN_STATUSES", "OUTCOMES", "PARTY_ROLES", "REASONS", "MEDIATION_GOAL", "SUCCESS_GOAL", "Action",
    "DisputeEntry", "DisputeState", "DisputeRates", "fold_dispute", "available_steps", "dispute_rates",
    "below_mediation_goal", "below_success_goal", "take_up_deadline", "mask_name", "mask_phone", "mask_parties",
]

STATUSES = ("reported", "accepted", "mediating", "concluded")
OPEN_STATUSES = STATUSES[:-1]
OUTCOMES = tuple(DISPUTE_OUTCOMES)
MEDIATION_GOAL = 1.0
SUCCESS_GOAL = 0.95
# Who is shown a dispute's parties (names, phones) in full: the roles that mediate. A worker pulls only
# their own grids' disputes; a unit reads no dispute at all. Everyone else, and every list, gets them
# masked (`mask_parties`). Pages audit each full view (server/disputes/views.py).
PARTY_ROLES = frozenset({"worker", "supervisor", "admin"})

_HOUR_MS = 3_600_000
_MAX_MS = steps.MAX_MS

SUPERSEDED_CONCLUDED = "superseded: dispute already concluded"
SUPERSEDED_ACCEPTED = "superseded: dispute already taken up"
SUPERSEDED_NOT_CONCLUDED = "superseded: no outcome yet to follow up"
REFUSED_UNKNOWN = "refused: unknown action"
REFUSED_TIMESTAMP = "refused: malformed timestamp"
REFUSED_NO_OUTCOME = "refused: gives no outcome"
REFUSED_NO_BODY = "refused: a referral names no body"
REASONS = (SUPERSEDED_CONCLUDED, SUPERSEDED_ACCEPTED, SUPERSEDED_NOT_CONCLUDED, REFUSED_UNKNOWN,
           REFUSED_TIMESTAMP, REFUSED_NO_OUTCOME, REFUSED_NO_BODY)


@dataclass(frozen=True)
class DisputeEntry:
    """One step as the fold judged it; ``status`` is the dispute's status after it."""

    action_id: str
    hlc: str
    action: str
    actor: str | None
    at: str | None  # when it happened: the step's ``at``, else its HLC's wall time
    applied: bool
    status: str
    reason: str | None = None
    outcome: str | None = None
    note: str | None = None
    mediators: tuple[str, ...] = ()
    referred_to: str | None = None


@dataclass(frozen=True)
class DisputeState:
    """The folded state of one dispute.

    ``deadline`` is when it must be taken up (None: the kind gives no hours or the dispute no valid
    ``reported_at``); ``overdue`` is only True when the fold was given ``now`` and the dispute is
    still not taken up after its deadline; ``late`` marks one taken up after it.
    """

    status: str = "reported"
    outcome: str | None = None
    referred_to: str | None = None
    taken_up_at: str | None = None
    concluded_at: str | None = None
    deadline: str | None = None
    sessions: int = 0
    follow_ups: int = 0
    overdue: bool = False
    late: bool = False
    timeline: tuple[DisputeEntry, ...] = ()

    @property
    def is_open(self) -> bool:
        """Whether no outcome was reached yet."""
        return self.status != "concluded"

    @property
    def mediated(self) -> bool:
        """Whether the dispute had a mediation step: an applied session or outcome."""
        return self.sessions > 0 or self.outcome is not None

    @property
    def settled(self) -> bool:
        """Whether its outcome is ``settled``."""
        return self.outcome == "settled"


# --- reading steps, which may be anything ------------------------------------------------------

@dataclass(frozen=True)
class _Step:
    id: str
    hlc: str
    wall_ms: int | None
    action: str
    actor: str | None
    at: str | None
    note: str | None
    outcome: str | None
    referred_to: str | None
    mediators: tuple[str, ...] = field(default=())


_text, _instant = steps.text, steps.instant


def _read(action: Any) -> _Step:
    raw_id, raw_hlc = getattr(action, "id", None), getattr(action, "hlc", None)
    values = getattr(action, "values", None)
    values = values if isinstance(values, Mapping) else {}
    hlc = raw_hlc if isinstance(raw_hlc, str) else ""
    try:
        wall_ms: int | None = HLC.parse(hlc).wall_ms
    except HLCError:
        wall_ms = None
    name = values.get("action")
    mediators = values.get("mediators")
    return _Step(
        id=raw_id if isinstance(raw_id, str) else repr(raw_id), hlc=hlc, wall_ms=wall_ms,
        action=name if isinstance(name, str) else repr(name), actor=_text(values.get("actor")),
        at=_instant(values.get("at")), note=_text(values.get("note")),
        outcome=values.get("outcome") if values.get("outcome") in OUTCOMES else None,
        referred_to=_text(values.get("referred_to")),
        mediators=tuple(m for m in mediators if isinstance(m, str)) if isinstance(mediators, (list, tuple)) else (),
    )


def _ordered(actions: Iterable[Any]) -> list[_Step]:
    """One step per id, sorted by (hlc, id) (shared/steps.py, `ordered`)."""
    return steps.ordered(actions, _read)


# --- the rules ---------------------------------------------------------------------------------

@dataclass
class _Dispute:
    """The state while folding; mutable, never leaves this module."""

    status: str = "reported"
    outcome: str | None = None
    referred_to: str | None = None
    taken_up_at: str | None = None
    concluded_at: str | None = None
    sessions: int = 0
    follow_ups: int = 0

    def take_up(self, step: _Step) -> None:
        if self.taken_up_at is None:
            self.taken_up_at = step.at or (format_ms(step.wall_ms) if step.wall_ms is not None else None)


def _accept(d: _Dispute, step: _Step) -> str | None:
    if d.status != "reported":
        return SUPERSEDED_ACCEPTED
    d.status = "accepted"
    d.take_up(step)
    return None


def _session(d: _Dispute, step: _Step) -> str | None:
    d.status = "mediating"
    d.sessions += 1
    d.take_up(step)
    return None


def _outcome(d: _Dispute, step: _Step) -> str | None:
    if step.outcome is None:
        return REFUSED_NO_OUTCOME
    if step.outcome == "referred" and step.referred_to is None:
        return REFUSED_NO_BODY
    d.take_up(step)
    d.status, d.outcome, d.referred_to = "concluded", step.outcome, step.referred_to
    d.concluded_at = step.at or (format_ms(step.wall_ms) if step.wall_ms is not None else None)
    return None


def _follow_up(d: _Dispute, step: _Step) -> str | None:
    if d.status != "concluded":
        return SUPERSEDED_NOT_CONCLUDED
    d.follow_ups += 1
    return None


_RULES: dict[str, Callable[[_Dispute, _Step], str | None]] = {  # in the order buttons show them
    "accept": _accept,
    "session": _session,
    "outcome": _outcome,
    "follow_up": _follow_up,
    "comment": lambda d, step: None,
}
assert tuple(_RULES) == tuple(DISPUTE_ACTIONS)


def _judge(d: _Dispute, step: _Step) -> str | None:
    """Apply one step; None when it applied, else why not. The order of the checks matters."""
    rule = _RULES.get(step.action)
    if rule is None:
        return REFUSED_UNKNOWN
    if step.wall_ms is None:
        return REFUSED_TIMESTAMP
    if d.status == "concluded" and step.action not in ("follow_up", "comment"):
        return SUPERSEDED_CONCLUDED
    return rule(d, step)


def _now_ms(now: int | str | None) -> int | None:
    if now is None:
        return None
    if isinstance(now, bool) or not isinstance(now, (int, str)):
        raise TypeError(f"now must be Unix milliseconds or an ISO 8601 UTC string, not {type(now).__name__}")
    return parse_ms(now) if isinstance(now, str) else now


def take_up_deadline(dispute: Mapping[str, Any], kind: Mapping[str, Any] | None) -> str | None:
    """When the dispute must be taken up: its ``reported_at`` plus its kind's ``take_up_hours``; None if unknown."""
    reported = _instant(dispute.get("reported_at")) if isinstance(dispute, Mapping) else None
    hours = kind.get("take_up_hours") if isinstance(kind, Mapping) else None
    if reported is None or not isinstance(hours, int) or isinstance(hours, bool) or hours <= 0:
        return None
    ms = parse_ms(reported) + hours * _HOUR_MS
    return format_ms(ms) if ms <= _MAX_MS else None


def fold_dispute(dispute: Mapping[str, Any], actions: Iterable[Any], *, kind: Mapping[str, Any] | None = None,
                 now: int | str | None = None) -> DisputeState:
    """Fold a dispute's steps, in (hlc, id) order, into its state.

    ``dispute`` is the dispute record's plain values (``reported_at`` is read), ``kind`` its
    dispute_kind's (``take_up_hours``), ``now`` Unix ms or ISO 8601 UTC, needed only for
    ``overdue`` (a malformed ``now`` raises: the caller's mistake, not the data's).

    ==========  ========================================  =========================================
    step        applies when                              effect
    ==========  ========================================  =========================================
    accept      reported                                  accepted; taken up
    session     not concluded                             mediating; one more session; taken up
    outcome     not concluded; gives an outcome; a        concluded with the outcome; taken up
                referral names its body (referred_to)
    follow_up   concluded                                 one more follow-up
    comment     always                                    nothing
    ==========  ========================================  =========================================
    """
    dispute = dispute if isinstance(dispute, Mapping) else {}
    now_ms = _now_ms(now)
    d = _Dispute()
    timeline = []
    for step in _ordered(actions):
        reason = _judge(d, step)
        timeline.append(DisputeEntry(
            action_id=step.id, hlc=step.hlc, action=step.action, actor=step.actor,
            at=step.at or (format_ms(step.wall_ms) if step.wall_ms is not None else None),
            applied=reason is None, status=d.status, reason=reason,
            outcome=step.outcome if step.action == "outcome" else None, note=step.note,
            mediators=step.mediators, referred_to=step.referred_to if step.action == "outcome" else None))
    deadline = take_up_deadline(dispute, kind)
    overdue = (now_ms is not None and deadline is not None and d.taken_up_at is None
               and now_ms > parse_ms(deadline))
    late = deadline is not None and d.taken_up_at is not None and d.taken_up_at > deadline
    return DisputeState(status=d.status, outcome=d.outcome, referred_to=d.referred_to, taken_up_at=d.taken_up_at,
                        concluded_at=d.concluded_at, deadline=deadline, sessions=d.sessions,
                        follow_ups=d.follow_ups, overdue=overdue, late=late, timeline=tuple(timeline))


def available_steps(state: DisputeState) -> tuple[str, ...]:
    """The steps that would apply now (the buttons a page or a tablet shows), in the rules' order.

    Each is dry-run through the fold's own rules on the state, as a well-formed step (an outcome
    that names one, a referral its body), so the rules stay written once, in `_RULES`.
    """
    offered = []
    for name in _RULES:
        d = _Dispute(status=state.status, outcome=state.outcome, referred_to=state.referred_to,
                     taken_up_at=state.taken_up_at, concluded_at=state.concluded_at, sessions=state.sessions,
                     follow_ups=state.follow_ups)
        step = _Step(id="", hlc="", wall_ms=0, action=name, actor=None, at=None, note="note",
                     outcome="settled" if name == "outcome" else None, referred_to=None)
        if _judge(d, step) is None:
            offered.append(name)
    return tuple(offered)


# --- the two rates -----------------------------------------------------------------------------

@dataclass(frozen=True)
class DisputeRates:
    """The counts of a group of disputes and its two rates (None when the divisor is zero)."""

    reported: int = 0
    mediated: int = 0
    concluded: int = 0  # mediated with an outcome
    settled: int = 0
    open_overdue: int = 0

    @property
    def mediation_rate(self) -> float | None:
        """Disputes mediated ÷ disputes reported (goal 100 %)."""
        return self.mediated / self.reported if self.reported else None

    @property
    def success_rate(self) -> float | None:
        """Disputes settled ÷ disputes mediated with an outcome (goal ≥ 95 %)."""
        return self.settled / self.concluded if self.concluded else None

    def __add__(self, other: "DisputeRates") -> "DisputeRates":
        return DisputeRates(self.reported + other.reported, self.mediated + other.mediated,
                            self.concluded + other.concluded, self.settled + other.settled,
                            self.open_overdue + other.open_overdue)


def dispute_rates(states: Iterable[DisputeState]) -> DisputeRates:
    """The counts and rates of the given disputes' states (the caller leaves deleted disputes out)."""
    reported = mediated = concluded = settled = overdue = 0
    for state in states:
        reported += 1
        mediated += state.mediated
        concluded += state.outcome is not None
        settled += state.settled
        overdue += state.overdue
    return DisputeRates(reported, mediated, concluded, settled, overdue)


def below_mediation_goal(rate: float | None) -> bool:
    """Whether a mediation rate is under 100 % (nothing to count is not below)."""
    return rate is not None and rate < MEDIATION_GOAL


def below_success_goal(rate: float | None) -> bool:
    """Whether a success rate is under 95 % (nothing to count is not below)."""
    return rate is not None and rate < SUCCESS_GOAL


# --- masking the parties -------------------------------------------------------------------------

def mask_name(name: Any) -> str:
    """A person's name with all but its first character masked: 张* , 欧阳** ; "" for none."""
    text = name.strip() if isinstance(name, str) else ""
    return text[:1] + "*" * (len(text) - 1) if text else ""


def mask_phone(phone: Any) -> str | None:
    """A phone number with its middle masked: 138****5678; a short one keeps only its last two characters."""
    text = phone.strip() if isinstance(phone, str) else ""
    if not text:
        return None
    if len(text) >= 11:
        return text[:3] + "*" * (len(text) - 7) + text[-4:]
    return "*" * max(0, len(text) - 2) + text[-2:]


def mask_parties(parties: Any) -> list[dict[str, Any]]:
    """The parties as lists show them: names and phones masked, roles kept; anything malformed left out."""
    masked = []
    for party in parties if isinstance(parties, (list, tuple)) else ():
        if isinstance(party, Mapping):
            masked.append({"name": mask_name(party.get("name")) or "*", "phone": mask_phone(party.get("phone")),
                           "role": party.get("role") if isinstance(party.get("role"), str) else None})
    return masked

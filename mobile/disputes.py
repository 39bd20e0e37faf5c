"""Civil disputes (矛盾纠纷) on the tablet: the disputes of the worker's grids, report one, record mediation steps.

Plain Python over mobile/store.py, like the other presenters: no Kivy, no network, every write
saved at once and synced later. Screens call these and show what they return; they return codes
(status "mediating", outcome "settled", step "session"), not translated words.

* The state is `shared.dispute.fold_dispute`, the fold the server runs: the tablet and the pages
  show the same status, and the same steps are offered (`available_steps`).
* Overdue is "not taken up within the kind's take-up hours", read from the synced ``dispute_kind``
  records, counted at the tablet's clock: it shows offline.
* Parties (names, phones) are personal data. A worker of the grid pulls them in full, to mediate
  (server/privacy.py); lists show them masked (张*, 138****5678), the dispute screen in full.
  A tablet whose role may not see them holds ``parties_masked`` instead, and shows that.
* A step is a new ``dispute_action`` in the dispute's bucket, by this worker (the server holds
  the actor to the pushing user); it is history, never edited.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from shared.dispute import DisputeState, available_steps, fold_dispute, mask_parties
from shared.hlc import format_ms, parse_ms
from shared.records import DISPUTE_OUTCOMES, ValidationError, grid_bucket
from shared.case import Action

from .presenters import InputError, refusal_of, sync_state
from .store import Record

__all__ = ["KindChoice", "DisputeRow", "StepRow", "DisputeView", "DisputesPresenter", "MAX_PARTIES"]

MAX_PARTIES = 20
_PHONE = re.compile(r"^[0-9+\- ]{3,40}$")


@dataclass(frozen=True)
class KindChoice:
    """A kind of dispute the worker may pick, with the hours within which one must be taken up."""

    code: str
    name: str
    name_en: str | None
    take_up_hours: int | None


@dataclass(frozen=True)
class DisputeRow:
    id: str
    grid: str
    kind: str
    kind_name: str
    kind_name_en: str | None
    parties: list[dict[str, Any]]  # masked
    description: str
    reported_at: str
    status: str
    outcome: str | None
    overdue: bool
    deadline: str | None
    sync_state: str = "synced"  # synced | local | refused
    refusal: Any = None


@dataclass(frozen=True)
class StepRow:
    """One step of the timeline, as the fold judged it."""

    id: str
    action: str
    at: str | None
    mine: bool
    applied: bool
    reason: str | None
    outcome: str | None
    referred_to: str | None
    mediators: tuple[str, ...]
    note: str | None
    synced: bool


@dataclass(frozen=True)
class DisputeView:
    id: str
    grid: str
    kind: str
    kind_name: str
    kind_name_en: str | None
    parties: list[dict[str, Any]]  # in full when this tablet holds them, else masked
    parties_full: bool
    place: str | None
    description: str
    reported_at: str
    state: DisputeState
    steps: list[StepRow]
    offered: tuple[str, ...]
    sync_state: str = "synced"
    refusal: Any = None


class DisputesPresenter:
    """The dispute screens' logic. ``core`` gives ``.store`` and ``.user`` (mobile/app_core.py's AppCore)."""

    def __init__(self, core: Any):
        self.core = core

    @property
    def store(self):
        return self.core.store

    # --- reference data -----------------------------------------------------------------------

    def kinds(self) -> list[KindChoice]:
        """The dispute kinds synced from the server, by code."""
        found = []
        for record in self.store.query("dispute_kind"):
            values = record.values
            if isinstance(values.get("code"), str):
                hours = values.get("take_up_hours")
                found.append(KindChoice(values["code"], values.get("name") or values["code"], values.get("name_en"),
                                        hours if isinstance(hours, int) and not isinstance(hours, bool) else None))
        return sorted(found, key=lambda k: k.code)

    def _kinds(self) -> dict[str, dict[str, Any]]:
        return {r.values["code"]: r.values for r in self.store.query("dispute_kind")
                if isinstance(r.values.get("code"), str)}

    # --- reading ------------------------------------------------------------------------------

    def _now(self) -> int:
        return self.store.physical_ms()

    def _fold(self, record: Record, steps: list[tuple[str, dict]], kinds: Mapping[str, dict]) -> DisputeState:
        return fold_dispute(record.values, [Action.from_state(rid, state) for rid, state in steps],
                            kind=kinds.get(record.values.get("dispute_kind")), now=self._now())

    def _steps(self, dispute_ids: Sequence[str]) -> dict[str, list[tuple[str, dict]]]:
        found: dict[str, list[tuple[str, dict]]] = {rid: [] for rid in dispute_ids}
        for parent, rid, state in self.store.children("dispute_action", "dispute", dispute_ids):
            found.setdefault(parent, []).append((rid, state))
        return found

    def rows(self) -> list[DisputeRow]:
        """The disputes on this tablet (its grids): overdue first, then open ones, newest first within each."""
        records = self.store.query("dispute")
        steps = self._steps([r.id for r in records])
        kinds = self._kinds()
        refused = self.store.refusals("dispute")
        rows = []
        for record in records:
            values = record.values
            state = self._fold(record, steps.get(record.id, []), kinds)
            kind = kinds.get(values.get("dispute_kind"), {})
            rows.append(DisputeRow(record.id, values.get("grid", ""), values.get("dispute_kind", ""),
                                   kind.get("name") or values.get("dispute_kind", ""), kind.get("name_en"),
                                   mask_parties(_parties(record)[0]), values.get("description", ""),
                                   values.get("reported_at", ""), state.status, state.outcome, state.overdue,
                                   state.deadline, *_standing(record, refused)))
        rows.sort(key=lambda r: r.reported_at, reverse=True)
        rows.sort(key=lambda r: (not r.overdue, r.status == "concluded"))
        return rows

    def view(self, dispute_id: str) -> DisputeView:
        """One dispute: its parties (in full when held), its state, its timeline and the steps that apply now."""
        record = self.store.get("dispute", dispute_id)
        if record is None or record.deleted:
            raise InputError("dispute", "not_found")
        held = self._steps([dispute_id]).get(dispute_id, [])
        kinds = self._kinds()
        state = self._fold(record, held, kinds)
        pending = self.store.pending_ids("dispute_action")
        me = (self.core.user or {}).get("id")
        by_id = {rid: {name: write[0] for name, write in s.items()} for rid, s in held}
        steps = [StepRow(e.action_id, e.action, e.at, by_id.get(e.action_id, {}).get("actor") == me, e.applied,
                         e.reason, e.outcome, e.referred_to, e.mediators, e.note, e.action_id not in pending)
                 for e in state.timeline]
        parties, full = _parties(record)
        values = record.values
        kind = kinds.get(values.get("dispute_kind"), {})
        return DisputeView(dispute_id, values.get("grid", ""), values.get("dispute_kind", ""),
                           kind.get("name") or values.get("dispute_kind", ""), kind.get("name_en"),
                           parties if full else mask_parties(parties), full, values.get("place"),
                           values.get("description", ""), values.get("reported_at", ""), state, steps,
                           available_steps(state), *_standing(record, self.store.refusals("dispute")))

    # --- writes -------------------------------------------------------------------------------

    def _user_id(self) -> str:
        user = self.core.user
        if not user:
            raise InputError("user", "not_logged_in")
        return user["id"]

    def report(self, *, grid: str, kind: str, parties: Sequence[Mapping[str, Any]], description: str,
               place: str | None = None, location: Mapping[str, Any] | None = None) -> str:
        """Report a dispute in one of the worker's grids; returns its id. Nothing is written when input is wrong.

        ``parties`` are {name, phone?, role?}; rows with neither name nor phone are dropped (empty form lines);
        one with a phone but no name is refused, as is a phone that is not digits.
        """
        if not grid:
            raise InputError("grid", "required")
        if kind not in self._kinds():
            raise InputError("dispute_kind", "required")
        cleaned = []
        for index, party in enumerate(parties):
            name = str(party.get("name") or "").strip()
            phone = str(party.get("phone") or "").strip()
            role = str(party.get("role") or "").strip()
            if not name and not phone:
                continue
            if not name:
                raise InputError(f"parties.{index}.name", "required")
            if phone and not _PHONE.match(phone):
                raise InputError(f"parties.{index}.phone", "invalid")
            cleaned.append({"name": name[:100], "phone": phone or None, "role": role[:40] or None})
        if not cleaned:
            raise InputError("parties", "required")
        if len(cleaned) > MAX_PARTIES:
            raise InputError("parties", "too_many")
        if not (description or "").strip():
            raise InputError("description", "required")
        values: dict[str, Any] = {"grid": grid, "dispute_kind": kind, "parties": cleaned,
                                  "description": description.strip(), "reporter": self._user_id(),
                                  "reported_at": format_ms(self._now())}
        if place and place.strip():
            values["place"] = place.strip()
        if location:
            values["location"] = dict(location)
        return self._create("dispute", values, grid_bucket(grid))

    def step(self, dispute_id: str, action: str, *, note: str | None = None, mediators: Sequence[str] = (),
             outcome: str | None = None, referred_to: str | None = None) -> str:
        """Record a mediation step that applies now; returns its id. A session and a follow-up need a note."""
        record = self.store.get("dispute", dispute_id)
        if record is None or record.deleted:
            raise InputError("dispute", "not_found")
        if action not in self.view(dispute_id).offered:
            raise InputError("action", "does_not_apply")
        note = (note or "").strip() or None
        if action in ("session", "follow_up", "comment") and not note:
            raise InputError("note", "required")
        values: dict[str, Any] = {"dispute": dispute_id, "action": action, "actor": self._user_id(),
                                  "at": format_ms(self._now())}
        if note:
            values["note"] = note
        names = [m.strip() for m in mediators if isinstance(m, str) and m.strip()]
        if names:
            values["mediators"] = names[:20]
        if action == "outcome":
            if outcome not in DISPUTE_OUTCOMES:
                raise InputError("outcome", "required")
            values["outcome"] = outcome
            if outcome == "referred":
                if not (referred_to or "").strip():
                    raise InputError("referred_to", "required")
                values["referred_to"] = referred_to.strip()
        return self._create("dispute_action", values, record.bucket)

    def _create(self, kind: str, values: Mapping[str, Any], bucket: str) -> str:
        try:
            return self.store.create(kind, values, bucket).id
        except ValidationError as exc:  # a rule the checks above do not know yet: say which field
            raise InputError(_first_field(exc.messages), "invalid", str(exc.messages)) from None


def _standing(record: Record, refused: Mapping[tuple[str, str], Any]) -> tuple[str, Any]:
    """A record's sync state and refusal (presenters.sync_state), from the store's refusals."""
    refusal = refusal_of(refused.get((record.kind, record.id)))
    return sync_state(not record.synced, refusal), refusal


def _first_field(messages: Any) -> str:
    while isinstance(messages, Mapping) and messages:
        key = next(iter(messages))
        if key != "fields":
            return str(key)
        messages = messages[key]
    return "fields"


def _parties(record: Record) -> tuple[list[dict[str, Any]], bool]:
    """The parties this tablet holds and whether in full: whichever of parties / parties_masked was written later."""
    plain, masked = record.state.get("parties"), record.state.get("parties_masked")
    if plain and isinstance(plain[0], list) and (masked is None or plain[1] >= masked[1]):
        return [p for p in plain[0] if isinstance(p, dict)], True
    if masked and isinstance(masked[0], list):
        return [p for p in masked[0] if isinstance(p, dict)], False
    return [], False


def overdue_hours(view: DisputeView, now_ms: int) -> int | None:
    """How many whole hours past its take-up deadline an overdue dispute is; None when it is not overdue."""
    if not view.state.overdue or view.state.deadline is None:
        return None
    return max(0, (now_ms - parse_ms(view.state.deadline)) // 3_600_000)

"""Rental houses on the tablet: find a house, check it, turn a failed item into an event, register tenants.

Plain Python over mobile/store.py, like the other presenters (mobile/presenters.py): no Kivy, no
network, every write saved at once and synced later. Screens call these and show what they return;
they return codes (result "fail", risk grade "high"), not translated labels.

The rules, in the words of domain.md:

The check machinery (checklists, checks, hazards, a failed item as an event) is mobile/checks.py's,
shared with the key places (mobile/places.py); this module adds what only houses have: residents
seen at a check, tenants and the registration rate.

* A check answers every item of the *current* checklist (the one with the highest version of its
  code) and records which version it answered, because admins change checklists over time. It is
  history: once saved, it is never edited (house_check is append-only on both sides).
* The open hazards of a house are the failed items of its latest check; a later check that passes
  the item closes it.
* A failed item becomes an event in one tap: the category the checklist suggests for that item,
  the check's photos, the house's grid and location, and the item's text as the description.
* A tenant's resident ID number is checked on the tablet with the rule the server applies
  (shared/idcard.py, GB 11643), so a typo is caught while the tenant is still at the door. It is
  normalised first: spaces dropped, a lower-case x made upper-case.

Hazard: resident ID numbers are personal data. A tablet whose role may not see them receives
``id_number_masked`` from the server instead of ``id_number`` (server/privacy.py); one the worker
typed stays on this tablet. Lists show the masked form either way; whichever of the two fields was
written later is the one shown.

Registration rate (暂住人口登记率, goal 95 %): the rule of shared/houses.py, the one the supervisor
pages use, counted on the tablet's local date.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

from shared.checks import HOUSES
from shared.hlc import HLC, HLCError
from shared.houses import living_there, registration_rate
from shared.records import ValidationError
from shared.idcard import mask_resident_id, resident_id_error, resident_id_problem

from .checks import (RESULTS, CheckMachinery, ChecklistItemView, ChecklistView, EventDraft, Hazard,  # noqa: F401
                     first_field, standing)
from .presenters import InputError
from .store import Record

__all__ = [
    "HouseRow", "HouseView", "CheckRow", "Hazard", "TenantRow", "ChecklistView",
    "ChecklistItemView", "EventDraft", "HousesPresenter", "normalise_resident_id",
]

@dataclass(frozen=True)
class CheckRow:
    id: str
    checked_at: str
    worker: str
    checklist: str
    checklist_version: int
    failed: list[str]  # item codes
    residents_seen: int | None
    photos: list[str]
    synced: bool
    sync_state: str = "synced"  # synced | local | refused
    refusal: Any = None  # presenters.Refusal, when refused


@dataclass(frozen=True)
class TenantRow:
    id: str
    name: str
    room: str | None
    phone: str | None
    id_number_shown: str | None  # always masked on lists
    moved_in: str | None
    moved_out: str | None
    synced: bool
    current: bool  # still living there: no moved_out, or one after today (`living_there`)
    sync_state: str = "synced"  # synced | local | refused
    refusal: Any = None  # presenters.Refusal, when refused
    undoable: bool = False  # moved out on this tablet within UNDO_MOVE_OUT_MINUTES: "撤销搬离" is offered


@dataclass(frozen=True)
class HouseRow:
    id: str
    grid: str
    address: str
    owner: str | None
    risk_grade: str | None
    last_check_at: str | None
    open_hazards: int
    tenants: int  # current tenants: the residents registered
    residents_seen: int | None
    rate: float | None
    synced: bool
    sync_state: str = "synced"  # synced | local | refused
    refusal: Any = None  # presenters.Refusal, when refused


@dataclass(frozen=True)
class HouseView:
    id: str
    values: dict[str, Any]
    checks: list[CheckRow]  # newest first
    hazards: list[Hazard]
    tenants: list[TenantRow]  # current ones first, then by name
    rate: float | None
    synced: bool
    sync_state: str = "synced"  # synced | local | refused
    refusal: Any = None  # presenters.Refusal, when refused


UNDO_MOVE_OUT_MINUTES = 10  # how long a move-out made on this tablet can be taken back with one tap


def normalise_resident_id(text: str) -> str:
    """What a worker typed, as the wire wants it: no spaces, an upper-case X."""
    return re.sub(r"\s+", "", text).upper()


def _shown_id(record: Record) -> str | None:
    """The masked ID number, from whichever of id_number / id_number_masked was written later."""
    plain, masked = record.state.get("id_number"), record.state.get("id_number_masked")
    if plain and plain[0] is not None and (masked is None or plain[1] >= masked[1]):
        return mask_resident_id(plain[0])
    return masked[0] if masked else None


class HousesPresenter:
    """The rental-house screens' logic. ``core`` gives ``.store``, ``.photos`` and ``.user``
    (mobile/app_core.py's AppCore, or anything shaped like it in tests)."""

    HOUSE_CHECKLIST = "rental_house"  # the code of the rental houses' checklist (the demo's and the admins')

    def __init__(self, core: Any):
        self.core = core
        self.checks = CheckMachinery(core, HOUSES)

    @property
    def store(self):
        return self.core.store

    # --- reference data -----------------------------------------------------------------------

    def checklist(self, code: str | None = None) -> ChecklistView | None:
        """The current checklist of ``code`` (the rental houses' when None); None if none synced."""
        return self.checks.checklist(code or self.HOUSE_CHECKLIST)

    def checklist_for(self, house_id: str) -> ChecklistView | None:
        """The checklist a check of the house answers (the check screen asks each subject)."""
        return self.checklist()

    # --- lists --------------------------------------------------------------------------------

    def houses(self, search: str = "") -> list[HouseRow]:
        """The houses on this tablet (its grids), by address; ``search`` matches address, owner or building head."""
        needle = search.strip().casefold()
        checks = self._latest_checks()
        tenants = self._current_tenant_counts(self._today())
        rows = []
        refused = self.store.refusals("rental_house")
        for record in self.store.query("rental_house"):
            values = record.values
            text = " ".join(str(values.get(k) or "") for k in ("address", "owner", "building_head")).casefold()
            if needle and needle not in text:
                continue
            latest = checks.get(record.id)
            seen = latest.values.get("residents_seen") if latest else None
            count = tenants.get(record.id, 0)
            failed = [a for a in latest.values.get("answers", ()) if a.get("result") == "fail"] if latest else []
            rows.append(HouseRow(record.id, values.get("grid", ""), values.get("address", ""), values.get("owner"),
                                 values.get("risk_grade"), latest.values.get("checked_at") if latest else None,
                                 len(failed), count, seen, registration_rate(count, seen), record.synced,
                                 *_standing(record, refused)))
        rows.sort(key=lambda row: row.address)
        return rows

    def _latest_checks(self) -> dict[str, Record]:
        return self.checks.latest_checks()

    def _current_tenant_counts(self, today: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for tenant in self.store.query("tenant"):
            values = tenant.values
            if living_there(values.get("moved_out"), today):
                counts[values.get("house")] = counts.get(values.get("house"), 0) + 1
        return counts

    def house(self, house_id: str) -> HouseView:
        """One house: its values, its checks (newest first), its open hazards and its tenants."""
        record = self.store.get("rental_house", house_id)
        if record is None or record.deleted:
            raise InputError("house", "not_found")
        checks = self.checks.checks_of(house_id)
        hazards = self.checks.hazards(checks[0] if checks else None)
        today = self._today()
        refused = self.store.refusals()
        tenants = [TenantRow(t.id, t.values.get("name", ""), t.values.get("room"), t.values.get("phone"),
                             _shown_id(t), t.values.get("moved_in"), t.values.get("moved_out"), t.synced,
                             living_there(t.values.get("moved_out"), today), *_standing(t, refused),
                             undoable=self._undoable(t))
                   for t in self.store.query("tenant") if t.values.get("house") == house_id]
        tenants.sort(key=lambda t: (not t.current, t.name))
        current = sum(1 for t in tenants if t.current)
        seen = checks[0].values.get("residents_seen") if checks else None
        return HouseView(house_id, record.values,
                         [_check_row(c, refused) for c in checks], hazards, tenants,
                         registration_rate(current, seen), record.synced, *_standing(record, refused))

    # --- writes -------------------------------------------------------------------------------

    def _today(self) -> str:
        """Today on this tablet (its local date, by the store's clock), as an ISO date."""
        return datetime.fromtimestamp(self.store.physical_ms() / 1000, timezone.utc).astimezone().date().isoformat()

    def save_check(self, house_id: str, answers: Mapping[str, tuple[str, str | None]], *,
                   residents_seen: int | None, photos: Sequence[str] = (), checklist: str | None = None) -> str:
        """File a check of the house against the current checklist; returns its id.

        ``answers`` maps every item code to (result, note), result one of pass/fail/na. Every item
        must be answered and a failed item needs a note: a hazard with no words is no use to the
        unit that fixes it. Nothing is written when something is missing.
        """
        def check_seen() -> None:
            if residents_seen is not None and (not isinstance(residents_seen, int) or residents_seen < 0):
                raise InputError("residents_seen", "invalid")

        return self.checks.save_check(house_id, self.checklist(checklist), answers, photos=photos,
                                      extra={"residents_seen": residents_seen}, check_extra=check_seen)

    def event_draft(self, check_id: str, item_code: str) -> EventDraft:
        """A failed item as an event to report: category suggested, photos carried over, the house's place."""
        return self.checks.event_draft(check_id, item_code)

    def same_number(self, id_number: str, exclude: str | None = None) -> list[tuple[str, str, str]]:
        """Tenants on this tablet, living there today, already registered under this ID number:
        (house id, house address, tenant name).

        Only numbers the tablet holds in full are compared: those its role pulls in full, and those typed
        here. A role that pulls masked numbers finds none of the others here, on purpose; the server flags
        the pair for everyone (server/houses/service.py ``same_numbers``). A masked number keeps 8 of the 18
        characters (4403**********0022: province and city, the last three of the sequence and the check
        character), so about one number in 11,000 of the same city shares it: in a grid of a few thousand
        tenants a match would often name a stranger. No hash comes down either: the server's index digests
        are keyed with its own key (server/houses/index.py), and an unkeyed one sent to tablets would give
        the numbers away: beside the masked form, what is hidden is a county (100 codes) and a birth date,
        a few million guesses.
        """
        number = normalise_resident_id(id_number or "")
        if not number:
            return []
        today = self._today()
        found = []
        for tenant_id, _bucket, state in self.store.states("tenant"):
            values = {name: write[0] for name, write in state.items()}
            if tenant_id == exclude or values.get("id_number") != number or not living_there(values.get("moved_out"), today):
                continue
            house = self.store.get("rental_house", values.get("house") or "")
            found.append((values.get("house") or "", (house.values.get("address") if house else "") or "",
                          values.get("name") or ""))
        return found

    def register_tenant(self, house_id: str, *, name: str, id_number: str | None = None, phone: str | None = None,
                        room: str | None = None, moved_in: str | None = None, confirm_same_number: bool = False) -> str:
        """Register a tenant of the house; returns the tenant's id. A wrong ID number is refused here,
        with the rule's reason in ``detail``, and nothing is written. A number already registered on this
        tablet (`same_number`) is InputError("id_number", "same_number", where) until ``confirm_same_number``:
        the worker decides, and the server keeps both records and flags the pair."""
        house = self.store.get("rental_house", house_id)
        if house is None or house.deleted:
            raise InputError("house", "not_found")
        if not (name or "").strip():
            raise InputError("name", "required")
        values: dict[str, Any] = {"house": house_id, "name": name.strip()}
        if id_number is not None and id_number.strip():
            number = normalise_resident_id(id_number)
            problem = resident_id_problem(number)
            if problem:  # the code says what to fix; the detail is the server's own words
                raise InputError("id_number", f"resident_id_{problem}", resident_id_error(number))
            values["id_number"] = number
            same = self.same_number(number)
            if same and not confirm_same_number:
                raise InputError("id_number", "same_number", "; ".join(f"{address} {who}" for _h, address, who in same))
        for key, value in (("phone", phone), ("room", room), ("moved_in", moved_in)):
            if value is not None and str(value).strip():
                values[key] = str(value).strip()
        return self._write_new("tenant", values, bucket=house.bucket)

    def move_out(self, tenant_id: str, day: str | None = None) -> None:
        """Record that the tenant moved out (today when no day is given)."""
        tenant = self.store.get("tenant", tenant_id)
        if tenant is None or tenant.deleted:
            raise InputError("tenant", "not_found")
        day = day or self._today()  # the day the rate counts by: the tenant leaves it at once
        moved_in = tenant.values.get("moved_in")
        if moved_in and day < moved_in:
            raise InputError("moved_out", "before_moved_in")
        self._write("tenant", tenant_id, {"moved_out": day})

    def _undoable(self, tenant: Record) -> bool:
        """Whether the tenant's move-out was written on this tablet less than UNDO_MOVE_OUT_MINUTES ago."""
        write = tenant.state.get("moved_out")
        if not write or write[0] is None:
            return False
        try:
            stamp = HLC.parse(write[1])
        except HLCError:
            return False
        return stamp.node == self.store.node and \
            0 <= self.store.physical_ms() - stamp.wall_ms <= UNDO_MOVE_OUT_MINUTES * 60_000

    def undo_move_out(self, tenant_id: str) -> None:
        """Take back a move-out made here a moment ago (a tap on the wrong row): the tenant lives there again.

        A later write of its own (moved_out: null), so it syncs like any edit and wins over the move-out.
        """
        tenant = self.store.get("tenant", tenant_id)
        if tenant is None or tenant.deleted:
            raise InputError("tenant", "not_found")
        if not self._undoable(tenant):
            raise InputError("moved_out", "not_undoable")
        self._write("tenant", tenant_id, {"moved_out": None})

    def _write_new(self, kind: str, values: Mapping[str, Any], *, bucket: str) -> str:
        return self.checks.write_new(kind, values, bucket=bucket)

    def _write(self, kind: str, record_id: str, values: Mapping[str, Any]) -> None:
        try:
            self.store.write(kind, record_id, values)
        except ValidationError as exc:
            raise InputError(first_field(exc.messages), "invalid", str(exc.messages)) from None


_standing = standing


def _check_row(check: Record, refused: Mapping[tuple[str, str], Any] | None = None) -> CheckRow:
    values = check.values
    return CheckRow(check.id, values.get("checked_at", ""), values.get("worker", ""), values.get("checklist", ""),
                    values.get("checklist_version", 0),
                    [a["item"] for a in values.get("answers", ()) if a.get("result") == "fail"],
                    values.get("residents_seen"), list(values.get("photos", ())), check.synced,
                    *_standing(check, refused or {}))

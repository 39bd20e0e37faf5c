"""Rental houses on the tablet: find a house, check it, turn a failed item into an event, register tenants.

Plain Python over mobile/store.py, like the other presenters (mobile/presenters.py): no Kivy, no
network, every write saved at once and synced later. Screens call these and show what they return;
they return codes (result "fail", risk grade "high"), not translated labels.

The rules, in the words of domain.md:

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
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

from shared.hlc import format_ms
from shared.houses import living_there, registration_rate
from shared.idcard import mask_resident_id, resident_id_error, resident_id_problem
from shared.records import ValidationError

from .presenters import InputError, _open_patrol
from .store import Record

__all__ = [
    "HouseRow", "HouseView", "CheckRow", "Hazard", "TenantRow", "ChecklistView",
    "ChecklistItemView", "EventDraft", "HousesPresenter", "normalise_resident_id",
]

RESULTS = ("pass", "fail", "na")


@dataclass(frozen=True)
class ChecklistItemView:
    code: str
    text: str
    text_en: str | None
    category: str | None  # the event category suggested when the item fails
    hazard: str | None = None  # what a failed item is, in words; None: say the passing condition
    hazard_en: str | None = None

    @classmethod
    def of(cls, item: Mapping[str, Any]) -> "ChecklistItemView":
        """The view of a checklist record's item."""
        return cls(item["code"], item["text"], item.get("text_en"), item.get("category"), item.get("hazard"),
                   item.get("hazard_en"))


@dataclass(frozen=True)
class ChecklistView:
    code: str
    version: int
    name: str
    name_en: str | None
    items: list[ChecklistItemView]


@dataclass(frozen=True)
class Hazard:
    """A failed item of a house's latest check."""

    check_id: str
    item: str
    text: str
    text_en: str | None
    category: str | None
    note: str | None
    checked_at: str
    photos: list[str]


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


@dataclass(frozen=True)
class EventDraft:
    """What the report screen is filled with when a failed item becomes an event."""

    grid: str
    category: str | None
    description: str
    photos: list[str] = field(default_factory=list)
    location: dict[str, Any] | None = None


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

    def __init__(self, core: Any):
        self.core = core

    @property
    def store(self):
        return self.core.store

    # --- reference data -----------------------------------------------------------------------

    def checklist(self, code: str | None = None) -> ChecklistView | None:
        """The current checklist: the highest version of ``code`` (any code when None); None if none synced."""
        best: Record | None = None
        for record in self.store.query("checklist"):
            values = record.values
            if code is not None and values.get("code") != code:
                continue
            if best is None or values.get("version", 0) > best.values.get("version", 0):
                best = record
        if best is None:
            return None
        values = best.values
        return ChecklistView(values["code"], values["version"], values["name"], values.get("name_en"),
                             [ChecklistItemView.of(i) for i in values["items"]])

    def _checklist_items(self) -> dict[tuple[str, int, str], ChecklistItemView]:
        """Every item of every checklist version held, by (checklist code, version, item code): a check is read
        against the version it was made with."""
        return {(record.values["code"], record.values["version"], item["code"]): ChecklistItemView.of(item)
                for record in self.store.query("checklist") for item in record.values.get("items", ())}

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
        latest: dict[str, Record] = {}
        for check in self.store.query("house_check"):
            house = check.values.get("house")
            held = latest.get(house)
            if held is None or _check_key(check) > _check_key(held):
                latest[house] = check
        return latest

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
        checks = sorted((c for c in self.store.query("house_check") if c.values.get("house") == house_id),
                        key=_check_key, reverse=True)
        items = self._checklist_items()
        hazards = []
        if checks:
            latest = checks[0].values
            for answer in latest.get("answers", ()):
                if answer.get("result") != "fail":
                    continue
                item = items.get((latest["checklist"], latest.get("checklist_version"), answer["item"]))
                hazards.append(Hazard(checks[0].id, answer["item"],
                                      (item.hazard or item.text) if item else answer["item"],
                                      (item.hazard_en or item.text_en) if item else None,
                                      item.category if item else None,
                                      answer.get("note"), latest["checked_at"], list(latest.get("photos", ()))))
        today = self._today()
        refused = self.store.refusals()
        tenants = [TenantRow(t.id, t.values.get("name", ""), t.values.get("room"), t.values.get("phone"),
                             _shown_id(t), t.values.get("moved_in"), t.values.get("moved_out"), t.synced,
                             living_there(t.values.get("moved_out"), today), *_standing(t, refused))
                   for t in self.store.query("tenant") if t.values.get("house") == house_id]
        tenants.sort(key=lambda t: (not t.current, t.name))
        current = sum(1 for t in tenants if t.current)
        seen = checks[0].values.get("residents_seen") if checks else None
        return HouseView(house_id, record.values,
                         [_check_row(c, refused) for c in checks], hazards, tenants,
                         registration_rate(current, seen), record.synced, *_standing(record, refused))

    # --- writes -------------------------------------------------------------------------------

    def _user_id(self) -> str:
        user = self.core.user
        if not user:
            raise InputError("user", "not_logged_in")
        return user["id"]

    def _now(self) -> str:
        return format_ms(self.store.physical_ms())

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
        house = self.store.get("rental_house", house_id)
        if house is None or house.deleted:
            raise InputError("house", "not_found")
        current = self.checklist(checklist)
        if current is None:
            raise InputError("checklist", "not_synced")
        codes = [item.code for item in current.items]
        for code in codes:
            if code not in answers:
                raise InputError(f"answers.{code}", "required")
            result, note = answers[code]
            if result not in RESULTS:
                raise InputError(f"answers.{code}", "invalid")
            if result == "fail" and not (note or "").strip():
                raise InputError(f"answers.{code}", "note_required")
        unknown = sorted(set(answers) - set(codes))
        if unknown:
            raise InputError(f"answers.{unknown[0]}", "not_in_checklist")
        if residents_seen is not None and (not isinstance(residents_seen, int) or residents_seen < 0):
            raise InputError("residents_seen", "invalid")
        values = {
            "house": house_id, "worker": self._user_id(), "checked_at": self._now(),
            "checklist": current.code, "checklist_version": current.version,
            "answers": [{"item": code, "result": answers[code][0], "note": (answers[code][1] or "").strip() or None}
                        for code in codes],
            "photos": list(photos), "residents_seen": residents_seen,
        }
        patrol = _open_patrol(self.core, values["worker"])
        if patrol:
            values["patrol"] = patrol  # made on a patrol (issue 17)
        return self._write_new("house_check", values, bucket=house.bucket)

    def event_draft(self, check_id: str, item_code: str) -> EventDraft:
        """A failed item as an event to report: category suggested, photos carried over, the house's place."""
        check = self.store.get("house_check", check_id)
        if check is None:
            raise InputError("check", "not_found")
        values = check.values
        answer = next((a for a in values.get("answers", ()) if a.get("item") == item_code), None)
        if answer is None or answer.get("result") != "fail":
            raise InputError("item", "not_failed")
        house = self.store.get("rental_house", values["house"])
        house_values = house.values if house else {}
        item = self._checklist_items().get((values["checklist"], values.get("checklist_version"), item_code))
        text = (item.hazard or item.text) if item else item_code  # the hazard's words, where the checklist has them
        address = house_values.get("address", "")
        # The checklist's words are Chinese, and so is the description: Chinese punctuation.
        description = f"{address}：{text}" + (f"（{answer['note']}）" if answer.get("note") else "")
        return EventDraft(house_values.get("grid", ""), item.category if item else None, description,
                          list(values.get("photos", ())), house_values.get("location"))

    def register_tenant(self, house_id: str, *, name: str, id_number: str | None = None, phone: str | None = None,
                        room: str | None = None, moved_in: str | None = None) -> str:
        """Register a tenant of the house; returns the tenant's id. A wrong ID number is refused here,
        with the rule's reason in ``detail``, and nothing is written."""
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

    def _write_new(self, kind: str, values: Mapping[str, Any], *, bucket: str) -> str:
        try:
            return self.store.create(kind, values, bucket).id
        except ValidationError as exc:  # a rule the checks above do not know yet: say which field
            raise InputError(_first_field(exc.messages), "invalid", str(exc.messages)) from None

    def _write(self, kind: str, record_id: str, values: Mapping[str, Any]) -> None:
        try:
            self.store.write(kind, record_id, values)
        except ValidationError as exc:
            raise InputError(_first_field(exc.messages), "invalid", str(exc.messages)) from None


def _check_key(check: Record) -> tuple[str, str]:
    return check.values.get("checked_at", ""), check.id


def _standing(record: Record, refused: Mapping[tuple[str, str], Any]) -> tuple[str, Any]:
    """A record's sync state and refusal (presenters.sync_state), from the store's refusals."""
    from .presenters import refusal_of, sync_state

    refusal = refusal_of(refused.get((record.kind, record.id)))
    return sync_state(not record.synced, refusal), refusal


def _check_row(check: Record, refused: Mapping[tuple[str, str], Any] | None = None) -> CheckRow:
    values = check.values
    return CheckRow(check.id, values.get("checked_at", ""), values.get("worker", ""), values.get("checklist", ""),
                    values.get("checklist_version", 0),
                    [a["item"] for a in values.get("answers", ()) if a.get("result") == "fail"],
                    values.get("residents_seen"), list(values.get("photos", ())), check.synced,
                    *_standing(check, refused or {}))


def _first_field(messages: Any) -> str:
    while isinstance(messages, Mapping) and messages:
        key = next(iter(messages))
        if key != "fields":
            return str(key)
        messages = messages[key]
    return "fields"

"""Key places (重点单位, 三小场所) on the tablet: which are due for a check, a place, its check, hazard to event.

Plain Python over mobile/store.py, like mobile/houses.py: no Kivy, every write saved at once and
synced later; screens get codes (status "overdue", grade "A"), not words. The check itself (its
checklist, answers, notes on failed items, hazards, a failed item as an event in one tap) is
mobile/checks.py's machinery, the one rental houses use; a place is checked against its type's
checklist (``place_type.checklist``).

**Schedule.** How often a place must be checked follows its grade, as its type says
(``place_type.check_every_days``); where a place stands (never checked, overdue, due, ok,
unscheduled) is shared/checks.py's rule, the one the supervisor pages show, counted on the tablet's
clock. Places that need a check come first, the most pressing first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from shared.checks import PLACES, STATUS_ORDER, Schedule, interval_days, schedule

from .checks import CheckMachinery, ChecklistView, EventDraft, Hazard, standing
from .houses import CheckRow, _check_row
from .store import Record

__all__ = ["PlaceRow", "PlaceView", "PlacesPresenter"]


@dataclass(frozen=True)
class PlaceRow:
    id: str
    grid: str
    name: str
    type: str
    type_name: str
    type_name_en: str | None
    grade: str | None
    address: str | None
    last_check_at: str | None
    open_hazards: int
    status: str  # never | overdue | due | ok | unscheduled (shared/checks.py)
    due_ms: int | None
    every_days: int | None
    mine: bool  # the worker of this tablet is responsible for it
    synced: bool
    sync_state: str = "synced"
    refusal: Any = None

    @property
    def needs_check(self) -> bool:
        """Whether it is never checked, overdue or due."""
        return Schedule(self.status, self.due_ms, self.every_days).needs_check


@dataclass(frozen=True)
class PlaceView:
    id: str
    values: dict[str, Any]
    type_name: str
    type_name_en: str | None
    schedule: Schedule
    checks: list[CheckRow]  # newest first
    hazards: list[Hazard]
    synced: bool
    sync_state: str = "synced"
    refusal: Any = None


class PlacesPresenter:
    """The key-place screens' logic. ``core`` gives ``.store``, ``.photos`` and ``.user``."""

    def __init__(self, core: Any):
        self.core = core
        self.checks = CheckMachinery(core, PLACES)

    @property
    def store(self):
        return self.core.store

    def place_types(self) -> dict[str, Mapping[str, Any]]:
        """The place types held, by code (deleted ones too: a place may still name one)."""
        return {r.values.get("code"): r.values for r in self.store.query("place_type", include_deleted=True)}

    def _schedule(self, values: Mapping[str, Any], latest: Record | None, types: Mapping[str, Mapping[str, Any]],
                  now_ms: int) -> Schedule:
        every = interval_days((types.get(values.get("type")) or {}).get("check_every_days"), values.get("grade"))
        return schedule(latest.values.get("checked_at") if latest else None, every, now_ms)

    def places(self, search: str = "", *, needs_check: bool = False) -> list[PlaceRow]:
        """The places on this tablet (its grids), the most pressing first; ``search`` matches name, address or
        person in charge; ``needs_check`` keeps those never checked, overdue or due."""
        needle = search.strip().casefold()
        latest = self.checks.latest_checks()
        types = self.place_types()
        now_ms = self.store.physical_ms()
        me = (self.core.user or {}).get("id")
        refused = self.store.refusals("place")
        rows = []
        for record in self.store.query("place"):
            values = record.values
            text = " ".join(str(values.get(k) or "") for k in ("name", "address", "person_in_charge")).casefold()
            if needle and needle not in text:
                continue
            check = latest.get(record.id)
            found = self._schedule(values, check, types, now_ms)
            if needs_check and not found.needs_check:
                continue
            kind = types.get(values.get("type")) or {}
            failed = [a for a in check.values.get("answers", ()) if a.get("result") == "fail"] if check else []
            rows.append(PlaceRow(record.id, values.get("grid", ""), values.get("name", ""), values.get("type", ""),
                                 kind.get("name") or values.get("type", ""), kind.get("name_en"), values.get("grade"),
                                 values.get("address"), check.values.get("checked_at") if check else None,
                                 len(failed), found.status, found.due_ms, found.every_days,
                                 bool(me) and values.get("worker") == me, record.synced, *standing(record, refused)))
        rows.sort(key=lambda row: (STATUS_ORDER[row.status], row.due_ms or 0, row.name, row.id))
        return rows

    def place(self, place_id: str) -> PlaceView:
        """One place: its values, type, schedule, checks (newest first) and open hazards."""
        record = self.checks.live_place(place_id)
        checks = self.checks.checks_of(place_id)
        types = self.place_types()
        kind = types.get(record.values.get("type")) or {}
        refused = self.store.refusals()
        return PlaceView(place_id, record.values, kind.get("name") or record.values.get("type", ""),
                         kind.get("name_en"),
                         self._schedule(record.values, checks[0] if checks else None, types, self.store.physical_ms()),
                         [_check_row(c, refused) for c in checks], self.checks.hazards(checks[0] if checks else None),
                         record.synced, *standing(record, refused))

    def checklist_for(self, place_id: str) -> ChecklistView | None:
        """The current version of the checklist of the place's type; None when the type names none or none synced."""
        place = self.checks.live_place(place_id)
        code = (self.place_types().get(place.values.get("type")) or {}).get("checklist")
        return self.checks.checklist(code) if code else None

    def save_check(self, place_id: str, answers: Mapping[str, tuple[str, str | None]], *,
                   photos: Sequence[str] = ()) -> str:
        """File a check of the place against its type's current checklist; returns its id (mobile/checks.py's rules)."""
        self.checks.live_place(place_id)
        return self.checks.save_check(place_id, self.checklist_for(place_id), answers, photos=photos)

    def event_draft(self, check_id: str, item_code: str) -> EventDraft:
        """A failed item as an event to report: category suggested, photos carried over, the place's grid and spot."""
        return self.checks.event_draft(check_id, item_code)



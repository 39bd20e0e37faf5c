"""Checks on the tablet, for every checked place: rental houses (mobile/houses.py) and key places (mobile/places.py).

Plain Python over mobile/store.py, no Kivy. `CheckMachinery` is parametrised by the checked kind
(shared/checks.py's `HOUSES` or `PLACES`) and holds what both share:

* A check answers every item of the *current* checklist (the highest version of its code) and
  records which version it answered, because admins change checklists over time. It is history:
  once saved, never edited (house_check and place_check are append-only on both sides).
* Every item must be answered, and a failed item needs a note: a hazard with no words is no use to
  the unit that fixes it. Nothing is written when something is missing.
* The open hazards of a place are the failed items of its latest check, worded by the checklist
  version that check answered (shared/checks.py); a later check that passes the item closes it.
* A failed item becomes an event in one tap (`event_draft`): the category the checklist suggests,
  the check's photos, the place's grid and location, and the place's label and the hazard's words
  as the description.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from shared.checks import RESULTS, CheckedKind, check_key, event_description, failed_items
from shared.hlc import format_ms
from shared.records import ValidationError

from .presenters import InputError, _open_patrol
from .store import Record

__all__ = ["RESULTS", "ChecklistItemView", "ChecklistView", "Hazard", "EventDraft", "CheckMachinery", "first_field",
           "standing", "sort_key"]


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
    """A failed item of a place's latest check."""

    check_id: str
    item: str
    text: str
    text_en: str | None
    category: str | None
    note: str | None
    checked_at: str
    photos: list[str]


@dataclass(frozen=True)
class EventDraft:
    """What the report screen is filled with when a failed item becomes an event."""

    grid: str
    category: str | None
    description: str
    photos: list[str] = field(default_factory=list)
    location: dict[str, Any] | None = None


def sort_key(check: Record) -> tuple[str, str]:
    """The order of checks (shared/checks.py): by checked_at, then id."""
    return check_key(check.values, check.id)


def standing(record: Record, refused: Mapping[tuple[str, str], Any]) -> tuple[str, Any]:
    """A record's sync state and refusal (presenters.sync_state), from the store's refusals."""
    from .presenters import refusal_of, sync_state

    refusal = refusal_of(refused.get((record.kind, record.id)))
    return sync_state(not record.synced, refusal), refusal


def first_field(messages: Any) -> str:
    """The first field a ValidationError's messages name."""
    while isinstance(messages, Mapping) and messages:
        key = next(iter(messages))
        if key != "fields":
            return str(key)
        messages = messages[key]
    return "fields"


class CheckMachinery:
    """Checklists, checks, hazards and hazard-to-event for one checked kind. ``core`` gives ``.store`` and
    ``.user`` (mobile/app_core.py's AppCore, or anything shaped like it in tests)."""

    def __init__(self, core: Any, subject: CheckedKind):
        self.core = core
        self.subject = subject

    @property
    def store(self):
        return self.core.store

    # --- checklists ------------------------------------------------------------------------------

    def checklist(self, code: str | None) -> ChecklistView | None:
        """The current checklist: the highest version of ``code``; None if none synced."""
        best: Record | None = None
        for record in self.store.query("checklist"):
            values = record.values
            if values.get("code") != code:
                continue
            if best is None or values.get("version", 0) > best.values.get("version", 0):
                best = record
        if best is None:
            return None
        values = best.values
        return ChecklistView(values["code"], values["version"], values["name"], values.get("name_en"),
                             [ChecklistItemView.of(i) for i in values["items"]])

    def checklist_records(self) -> dict[tuple[str, int], Mapping[str, Any]]:
        """Every checklist version held, by (code, version): a check is read against the version it was made with."""
        return {(r.values.get("code"), r.values.get("version")): r.values for r in self.store.query("checklist")}

    # --- reading checks ----------------------------------------------------------------------------

    def latest_checks(self) -> dict[str, Record]:
        """The latest check of each place, by place id."""
        latest: dict[str, Record] = {}
        for check in self.store.query(self.subject.check_kind):
            place = check.values.get(self.subject.link)
            held = latest.get(place)
            if held is None or sort_key(check) > sort_key(held):
                latest[place] = check
        return latest

    def checks_of(self, place_id: str) -> list[Record]:
        """A place's checks, newest first."""
        return sorted((c for c in self.store.query(self.subject.check_kind)
                       if c.values.get(self.subject.link) == place_id), key=sort_key, reverse=True)

    def hazards(self, latest: Record | None,
                checklists: Mapping[tuple[str, int], Mapping[str, Any]] | None = None) -> list[Hazard]:
        """The failed items of a place's latest check, as the place screen shows them."""
        if latest is None:
            return []
        values = latest.values
        checklists = self.checklist_records() if checklists is None else checklists
        checklist = checklists.get((values.get("checklist"), values.get("checklist_version")))
        return [Hazard(latest.id, f.item, f.text, f.text_en, f.category, f.note, values.get("checked_at", ""),
                       list(values.get("photos", ()))) for f in failed_items(values, checklist)]

    # --- writing -----------------------------------------------------------------------------------

    def live_place(self, place_id: str) -> Record:
        """The place, or InputError(<link>, not_found)."""
        place = self.store.get(self.subject.kind, place_id)
        if place is None or place.deleted:
            raise InputError(self.subject.link, "not_found")
        return place

    def save_check(self, place_id: str, checklist: ChecklistView | None,
                   answers: Mapping[str, tuple[str, str | None]], *, photos: Sequence[str] = (),
                   extra: Mapping[str, Any] | None = None, check_extra: Callable[[], None] | None = None) -> str:
        """File a check of the place against ``checklist``; returns its id.

        ``answers`` maps every item code to (result, note), result one of pass/fail/na. ``extra``: the
        kind's own fields (a house check's residents seen), checked by ``check_extra`` after the answers.
        """
        place = self.live_place(place_id)
        if checklist is None:
            raise InputError("checklist", "not_synced")
        codes = [item.code for item in checklist.items]
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
        if check_extra is not None:
            check_extra()
        values = {
            self.subject.link: place_id, "worker": self.user_id(), "checked_at": self.now(),
            "checklist": checklist.code, "checklist_version": checklist.version,
            "answers": [{"item": code, "result": answers[code][0], "note": (answers[code][1] or "").strip() or None}
                        for code in codes],
            "photos": list(photos), **(extra or {}),
        }
        patrol = _open_patrol(self.core, values["worker"])
        if patrol:
            values["patrol"] = patrol  # made on a patrol (issue 17): house and place checks alike
        return self.write_new(self.subject.check_kind, values, bucket=place.bucket)

    def event_draft(self, check_id: str, item_code: str) -> EventDraft:
        """A failed item as an event to report: category suggested, photos carried over, the place's grid and spot."""
        check = self.store.get(self.subject.check_kind, check_id)
        if check is None:
            raise InputError("check", "not_found")
        values = check.values
        answer = next((a for a in values.get("answers", ()) if a.get("item") == item_code), None)
        if answer is None or answer.get("result") != "fail":
            raise InputError("item", "not_failed")
        place = self.store.get(self.subject.kind, values.get(self.subject.link, ""))
        place_values = place.values if place else {}
        checklist = self.checklist_records().get((values.get("checklist"), values.get("checklist_version")))
        failed = next(f for f in failed_items(values, checklist) if f.item == item_code)
        # The checklist's words are Chinese, and so is the description: Chinese punctuation.
        description = event_description(self.subject.label(place_values), failed.text, answer.get("note"))
        return EventDraft(place_values.get("grid", ""), failed.category, description,
                          list(values.get("photos", ())), place_values.get("location"))

    # --- helpers -----------------------------------------------------------------------------------

    def user_id(self) -> str:
        user = self.core.user
        if not user:
            raise InputError("user", "not_logged_in")
        return user["id"]

    def now(self) -> str:
        return format_ms(self.store.physical_ms())

    def write_new(self, kind: str, values: Mapping[str, Any], *, bucket: str) -> str:
        try:
            return self.store.create(kind, values, bucket).id
        except ValidationError as exc:  # a rule the checks above do not know yet: say which field
            raise InputError(first_field(exc.messages), "invalid", str(exc.messages)) from None

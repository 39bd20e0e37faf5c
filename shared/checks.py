"""Checked places: rental houses and key places checked against a checklist, their hazards and their schedule.

A **checked place** is a field record that workers check on the tablet against a checklist: a rental
house (``rental_house``, checked by ``house_check``) or a key place (``place``, 重点单位 and 三小场所,
checked by ``place_check``). `SUBJECTS` names, per kind, what the machinery needs to know: which kind
holds its checks and which field of a check names it. Everything else is one rule for both:

* **Hazards.** A check answers each item of a checklist version pass, fail or n.a. The hazards of a
  check are its failed items, worded as the checklist's ``hazard`` (电线私拉乱接) when it has one, else
  its passing condition; the open hazards of a place are those of its latest check (`failed_items`).
* **Hazard to event.** A failed item becomes an event whose category is the one the item suggests and
  whose description is the place's label and the hazard's words, with the worker's note
  (`event_description`), in Chinese punctuation like the checklists.
* **Schedule.** A place must be checked at least every N days, N set by the admin per place type and
  grade (``place_type.check_every_days``, e.g. ``{"A": 30, "B": 90, "C": 180}``). From the last check
  and N, `schedule` says where a place stands at a time ``now``:

  ========== ====================================================================
  ``never``       no check yet (and an interval is set): as pressing as overdue
  ``overdue``     ``now`` is after the last check plus N days
  ``due``         ``now`` is within the due window before that: min(7 days, N / 4)
  ``ok``          checked recently enough
  ``unscheduled`` no interval: the type has no entry for the grade, or no grade
  ========== ====================================================================

  The due moment is the last check plus N days, to the millisecond; a status only moves
  ``ok → due → overdue`` as time passes without a check, and a check at ``now`` makes it ``ok``
  (the window is a quarter of N at most, so a fresh check is never due at once).

Hazard: clocks. ``checked_at`` is the tablet's time. A check stamped in the future (a fast clock)
counts from its stamp: the place is ``ok`` until its due moment, as if checked then. The latest
check is the one with the greatest ``checked_at`` (then id), the order the tablet and the pages share.

Pure: no I/O and no clock reads; the caller passes ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from .hlc import parse_ms

__all__ = [
    "CheckedKind", "SUBJECTS", "HOUSES", "PLACES", "RESULTS", "FailedItem", "failed_items", "event_description",
    "STATUSES", "NEEDS_CHECK", "DAY_MS", "Schedule", "schedule", "interval_days", "due_window_ms", "latest",
    "check_key", "STATUS_ORDER",
]

RESULTS = ("pass", "fail", "na")
DAY_MS = 86_400_000
MAX_DUE_WINDOW_MS = 7 * DAY_MS
STATUSES = ("never", "overdue", "due", "ok", "unscheduled")
STATUS_ORDER = {status: n for n, status in enumerate(STATUSES)}  # most pressing first
NEEDS_CHECK = frozenset({"never", "overdue", "due"})


@dataclass(frozen=True)
class CheckedKind:
    """A kind of checked place: its record kind, its checks' kind and the field of a check that names it."""

    kind: str  # rental_house | place
    check_kind: str  # house_check | place_check
    link: str  # house | place: the check's field holding the place's id

    def label(self, values: Mapping[str, Any]) -> str:
        """How an event names the place: a house by its address, a key place by its name (and address)."""
        if self.kind == "rental_house":
            return str(values.get("address") or "")
        name, address = values.get("name") or "", values.get("address") or ""
        return f"{name}（{address}）" if name and address else str(name or address)


HOUSES = CheckedKind("rental_house", "house_check", "house")
PLACES = CheckedKind("place", "place_check", "place")
SUBJECTS: dict[str, CheckedKind] = {s.kind: s for s in (HOUSES, PLACES)}


# --- hazards ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FailedItem:
    """A failed item of a check, worded from the checklist version the check answered."""

    item: str
    text: str  # the hazard's words (中文), else the passing condition, else the item's code
    text_en: str | None
    category: str | None  # the event category the checklist suggests
    note: str | None

    def words(self, english: bool) -> str:
        """The hazard's words in the language asked, Chinese when there is no English."""
        return (self.text_en or self.text) if english else self.text


def failed_items(check: Mapping[str, Any], checklist: Mapping[str, Any] | None) -> list[FailedItem]:
    """The failed answers of a check, worded from ``checklist`` (the version it answered; None: not held)."""
    items = {item.get("code"): item for item in ((checklist or {}).get("items") or []) if isinstance(item, Mapping)}
    found = []
    for answer in check.get("answers") or []:
        if not isinstance(answer, Mapping) or answer.get("result") != "fail":
            continue
        item = items.get(answer.get("item"), {})
        text = item.get("hazard") or item.get("text") or str(answer.get("item"))
        text_en = item.get("hazard_en") or item.get("text_en")
        found.append(FailedItem(str(answer.get("item")), text, text_en, item.get("category"), answer.get("note")))
    return found


def event_description(label: str, hazard: str, note: str | None) -> str:
    """An event's description from a failed item: "东湖村12号：电线私拉乱接（三楼私拉电线）"."""
    return f"{label}：{hazard}" + (f"（{note}）" if note else "")


def check_key(values: Mapping[str, Any], record_id: str) -> tuple[str, str]:
    """The order of checks: by ``checked_at``, then id; the greatest is the latest."""
    return str(values.get("checked_at") or ""), record_id


def latest(checks: Iterable[tuple[str, Mapping[str, Any]]]) -> tuple[str, Mapping[str, Any]] | None:
    """The latest of (id, values) checks, or None."""
    best = None
    for record_id, values in checks:
        if best is None or check_key(values, record_id) > check_key(best[1], best[0]):
            best = (record_id, values)
    return best


# --- the schedule ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Schedule:
    """Where a place stands: its status, its due moment (ms; None when never checked or unscheduled)
    and its interval in days (None when unscheduled)."""

    status: str
    due_ms: int | None
    every_days: int | None

    @property
    def needs_check(self) -> bool:
        """Whether it shows among the places to check (never, overdue or due)."""
        return self.status in NEEDS_CHECK


def interval_days(check_every_days: Any, grade: Any) -> int | None:
    """The days between checks for a grade, from a place type's ``check_every_days``; None when not set."""
    if not isinstance(check_every_days, Mapping) or not isinstance(grade, str):
        return None
    days = check_every_days.get(grade)
    return days if isinstance(days, int) and not isinstance(days, bool) and days > 0 else None


def due_window_ms(every_days: int) -> int:
    """How long before its due moment a place counts as due: a quarter of its interval, at most 7 days."""
    return min(MAX_DUE_WINDOW_MS, every_days * DAY_MS // 4)


def schedule(last_checked_at: str | None, every_days: int | None, now_ms: int) -> Schedule:
    """Where a place stands at ``now_ms``, from its latest check's ``checked_at`` and its interval (module doc)."""
    if every_days is None or every_days <= 0:
        return Schedule("unscheduled", None, None)
    last_ms = _ms(last_checked_at)
    if last_ms is None:
        return Schedule("never", None, every_days)
    due_ms = last_ms + every_days * DAY_MS
    if now_ms > due_ms:
        status = "overdue"
    elif now_ms >= due_ms - due_window_ms(every_days):
        status = "due"
    else:
        status = "ok"
    return Schedule(status, due_ms, every_days)


def _ms(instant: str | None) -> int | None:
    if not instant:
        return None
    try:
        return parse_ms(instant)
    except (ValueError, OverflowError, OSError):
        return None

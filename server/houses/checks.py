"""The checks of checked places, for the pages: one machinery for rental houses and key places.

A checked place (shared/checks.py's `SUBJECTS`: ``rental_house`` with ``house_check``, ``place``
with ``place_check``) has append-only checks in its bucket that name it. This module reads them for
a set of places, words their failed items from the checklist version each check answered, and
says where each place stands on its schedule. server/houses/service.py and
server/places/service.py build their pages on it.

Scaling note: the checks of a page of places are read by bucket and by the places' ids (when
there are few), as the house list always did; a page never reads another grid's checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from sqlalchemy import select

from shared.checks import CheckedKind, FailedItem, failed_items
from shared.records import REF_BUCKET

from ..db import db
from ..models import Record

__all__ = ["Hazard", "Check", "load_checklists", "hazards_of", "check_of", "check_records", "attach_checks",
           "MANY_IDS"]

MANY_IDS = 500  # above this many places, their checks are found by bucket, not by an IN of ids


@dataclass(frozen=True)
class Hazard:
    """A failed item of a check: the checklist item's code and text, the worker's note, the suggested category."""

    item: str
    text: str
    note: str | None
    category: str | None


@dataclass(frozen=True)
class Check:
    """One check of a checked place, with its failed items."""

    id: str
    values: Mapping[str, Any]
    hazards: list[Hazard]
    device_id: str | None = None  # the device whose push recorded it; None: written by the server

    @property
    def checked_at(self) -> str:
        """When the worker made the check (ISO 8601 UTC)."""
        return self.values.get("checked_at") or ""

    @property
    def residents_seen(self) -> int | None:
        """How many residents the worker met, when counted (house checks)."""
        return self.values.get("residents_seen")


def load_checklists() -> dict[tuple[str, int], dict]:
    """Every version of every checklist, by (code, version): a check is read against the version it was made with."""
    found = {}
    for record in db.session.scalars(select(Record).where(Record.bucket == REF_BUCKET, Record.kind == "checklist")):
        values = record.field_values
        if values.get("code") and isinstance(values.get("version"), int):
            found[(values["code"], values["version"])] = values
    return found


def hazards_of(values: Mapping[str, Any], checklists: Mapping[tuple[str, int], dict], english: bool) -> list[Hazard]:
    """A check's failed items in the page's language (shared/checks.py words them)."""
    checklist = checklists.get((values.get("checklist"), values.get("checklist_version")))
    return [_hazard(item, english) for item in failed_items(values, checklist)]


def _hazard(item: FailedItem, english: bool) -> Hazard:
    return Hazard(item.item, item.words(english), item.note, item.category)


def check_of(record: Record, checklists: Mapping[tuple[str, int], dict], english: bool) -> Check:
    """A check record as the pages show it."""
    values = record.field_values
    return Check(record.id, values, hazards_of(values, checklists, english), record.device_id)


def check_records(subject: CheckedKind, places: Mapping[str, Any], buckets: Iterable[str] | None = None,
                  *, bucket_of=lambda place: place.bucket) -> Iterable[Record]:
    """The check records that may belong to these places: of their buckets, and by their ids when few."""
    link = Record.field_values[subject.link].as_string()
    statement = select(Record).where(Record.kind == subject.check_kind)
    if len(places) <= MANY_IDS:
        statement = statement.where(Record.bucket.in_(sorted({bucket_of(p) for p in places.values()})),
                                    link.in_(sorted(places)))
    elif buckets is not None:
        statement = statement.where(Record.bucket.in_(sorted(buckets)))
    return db.session.scalars(statement)


def attach_checks(subject: CheckedKind, places: Mapping[str, Any], records: Iterable[Record], english: bool,
                  checklists: Mapping[tuple[str, int], dict] | None = None) -> None:
    """Give each place (anything with a ``checks`` list) its checks from the records, newest first."""
    checklists = load_checklists() if checklists is None else checklists
    for record in records:
        if record.kind != subject.check_kind:
            continue
        place = places.get(record.field_values.get(subject.link))
        if place is not None:
            place.checks.append(check_of(record, checklists, english))
    for place in places.values():
        place.checks.sort(key=lambda c: (c.checked_at, c.id), reverse=True)

"""Rental houses (出租屋) for the supervisor pages: their checks, hazards, tenants and registration rate.

A house is a ``rental_house`` record with the ``house_check`` records
(append-only) and ``tenant`` records that name it. This module reads them
from the store, the way `server.cases.service` reads cases, and answers what
the pages ask: the houses with their last check and its open hazards, a
house's history, the tenants, and the registration rate.

Who sees what: supervisors and admins every house and tenant (``PAGES["houses"]``
in shared/roles.py); grid workers use the tablet, and rectifying units act on cases, not on
residents' registers, so both get 403. A tenant's ID number is shown as
`server.privacy.shown_id_number` decides for the viewer: in full only to a
role an admin allowed, masked to everyone else.

**The registration rate** (暂住人口登记率, goal ≥ 95 %) is shared/houses.py's rule, the
one the tablet shows too, counted on the district's date.

Scaling note: as for cases, each request reads every house, check and tenant
(one query) and computes in Python: milliseconds for the demo, fine for some
thousands of houses. Beyond that, a per-house summary table maintained by
`apply_changes` would serve the lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, Iterable, Mapping

from sqlalchemy import select

from shared.houses import REGISTRATION_GOAL, below_goal, combined_rate, living_there, registration_rate
from shared.records import REF_BUCKET

from .. import privacy
from ..reference import Reference
from ..db import db
from ..models import Record, User

__all__ = [  # the rate's rules, for the views, beside this module's own names
    "REGISTRATION_GOAL", "below_goal", "combined_rate", "registration_rate", "House", "HouseFilters", "RateRow",
    "Check", "Hazard", "Tenant", "load_houses", "get_house", "matches", "rate_rows", "photos_of", "tenant_rows",
]

_KINDS = ("rental_house", "house_check", "tenant")


# --- what the pages show ---------------------------------------------------------------------

@dataclass(frozen=True)
class Hazard:
    """A failed item of a check: the checklist item's code and text, the worker's note, the suggested category."""

    item: str
    text: str
    note: str | None
    category: str | None


@dataclass(frozen=True)
class Check:
    """One house check, with its failed items."""

    id: str
    values: Mapping[str, Any]
    hazards: list[Hazard]
    device_id: str | None = None  # the device whose push recorded it; None: written by the server

    @property
    def checked_at(self) -> str:
        """When the worker checked the house (ISO 8601 UTC)."""
        return self.values.get("checked_at") or ""

    @property
    def residents_seen(self) -> int | None:
        """How many residents the worker met, when counted."""
        return self.values.get("residents_seen")


@dataclass(frozen=True)
class Tenant:
    """A tenant as the viewer may see them: ``id_shown`` is the full number only when ``id_full``."""

    id: str
    house_id: str
    values: Mapping[str, Any]  # without id_number
    id_shown: str | None
    id_full: bool
    moved_out: bool


@dataclass
class House:
    """A rental house with its checks (newest first) and tenants."""

    id: str
    bucket: str
    values: Mapping[str, Any]
    checks: list[Check] = field(default_factory=list)
    tenants: list[Tenant] = field(default_factory=list)

    @property
    def grid(self) -> str | None:
        """The house's grid code."""
        return self.values.get("grid")

    @property
    def last_check(self) -> Check | None:
        """The check with the latest checked_at, or None."""
        return self.checks[0] if self.checks else None

    @property
    def open_hazards(self) -> list[Hazard]:
        """The failed items of the last check."""
        return self.last_check.hazards if self.last_check else []

    @property
    def registered(self) -> int:
        """Tenants who have not moved out."""
        return sum(not t.moved_out for t in self.tenants)

    @property
    def seen(self) -> int | None:
        """Residents seen at the last check, when it counted them."""
        return self.last_check.residents_seen if self.last_check else None

    @property
    def rate(self) -> float | None:
        """The house's registration rate, or None when it is not counted."""
        return registration_rate(self.registered, self.seen)


@dataclass(frozen=True)
class HouseFilters:
    """What the house list shows; None means "any"."""

    grid: str | None = None
    community: str | None = None
    street: str | None = None
    hazards: bool = False  # only houses whose last check failed an item
    below_goal: bool = False  # only houses under 95 %


@dataclass(frozen=True)
class RateRow:
    """The registration rate of a grid, a community or the district."""

    key: str
    houses: int
    counted: int
    registered: int
    seen: int
    rate: float | None

    @property
    def below_goal(self) -> bool:
        """Whether the rate is under the goal."""
        return below_goal(self.rate)


# --- reading -------------------------------------------------------------------------------------

def load_checklists() -> dict[str, dict]:
    """Checklists that are not deleted, by code."""
    found = {}
    for record in db.session.scalars(select(Record).where(Record.bucket == REF_BUCKET, Record.kind == "checklist")):
        values = record.field_values
        if not values.get("_deleted") and values.get("code"):
            found[values["code"]] = values
    return found


def _hazards(values: Mapping[str, Any], checklists: Mapping[str, dict], english: bool) -> list[Hazard]:
    items = {item.get("code"): item for item in (checklists.get(values.get("checklist"), {}).get("items") or [])}
    hazards = []
    for answer in values.get("answers") or []:
        if answer.get("result") != "fail":
            continue
        item = items.get(answer.get("item"), {})
        text = (english and item.get("text_en")) or item.get("text") or answer.get("item")
        hazards.append(Hazard(answer.get("item"), text, answer.get("note"), item.get("category")))
    return hazards


def _moved_out(values: Mapping[str, Any], today: date) -> bool:
    return not living_there(values.get("moved_out"), today.isoformat())


def load_houses(viewer: User, today: date, english: bool = False) -> list[House]:
    """Every house that is not deleted, with its checks and its tenants as ``viewer`` may see them."""
    checklists = load_checklists()
    houses: dict[str, House] = {}
    checks: list[Record] = []
    tenants: list[Record] = []
    for record in db.session.scalars(select(Record).where(Record.kind.in_(_KINDS))):
        if record.kind == "rental_house":
            if not record.field_values.get("_deleted"):
                houses[record.id] = House(record.id, record.bucket, record.field_values)
        else:
            (checks if record.kind == "house_check" else tenants).append(record)
    for record in checks:
        house = houses.get(record.field_values.get("house"))
        if house is not None:
            house.checks.append(Check(record.id, record.field_values,
                                      _hazards(record.field_values, checklists, english), record.device_id))
    for record in tenants:
        values = record.field_values
        house = houses.get(values.get("house"))
        if house is None or values.get("_deleted"):
            continue
        shown, full = privacy.shown_id_number(values.get("id_number"), viewer)
        house.tenants.append(Tenant(record.id, house.id, {k: v for k, v in values.items() if k != "id_number"},
                                    shown, full, _moved_out(values, today)))
    for house in houses.values():
        house.checks.sort(key=lambda c: (c.checked_at, c.id), reverse=True)
        house.tenants.sort(key=lambda t: (t.moved_out, t.values.get("room") or "", t.values.get("name") or "", t.id))
    return sorted(houses.values(), key=lambda h: (h.grid or "", h.values.get("address") or "", h.id))


def get_house(viewer: User, house_id: str, today: date, english: bool = False) -> House | None:
    """One house, or None when there is no such house or it was deleted."""
    for house in load_houses(viewer, today, english):  # see the scaling note
        if house.id == house_id:
            return house
    return None


def matches(house: House, filters: HouseFilters, reference: Reference) -> bool:
    """Whether the house passes the filters."""
    grid = reference.grid(house.grid)
    return ((not filters.grid or house.grid == filters.grid)
            and (not filters.community or grid.get("community") == filters.community)
            and (not filters.street or grid.get("street") == filters.street)
            and (not filters.hazards or bool(house.open_hazards))
            and (not filters.below_goal or below_goal(house.rate)))


def rate_rows(houses: Iterable[House], key) -> list[RateRow]:
    """The registration rate per group of houses (``key(house)`` names the group), sorted by name."""
    groups: dict[str, list[House]] = {}
    for house in houses:
        groups.setdefault(key(house) or "", []).append(house)
    rows = []
    for name, members in sorted(groups.items()):
        registered, seen, rate = combined_rate((h.registered, h.seen) for h in members)
        rows.append(RateRow(name, len(members), sum(h.rate is not None for h in members), registered, seen, rate))
    return rows


def photos_of(house: House) -> list[str]:
    """Every photo hash of the house's checks, each once."""
    found: list[str] = []
    for check in house.checks:
        found.extend(p for p in check.values.get("photos") or [] if isinstance(p, str))
    return list(dict.fromkeys(found))


def tenant_rows(houses: Iterable[House], *, current_only: bool = True) -> list[tuple[House, Tenant]]:
    """Every tenant with their house, by house then room; moved-out tenants only when asked."""
    return [(house, tenant) for house in houses for tenant in house.tenants
            if not (current_only and tenant.moved_out)]

"""Rental houses (出租屋) for the supervisor pages: their checks, hazards, tenants and registration rate.

A house is a ``rental_house`` record with the ``house_check`` records
(append-only) and ``tenant`` records that name it. This module reads them
from the store, the way `server.cases.service` reads cases, and answers what
the pages ask: the houses with their last check and its open hazards, a
house's history, the tenants, and the registration rate.

A rental house is one kind of checked place (shared/checks.py): its checks are
read and worded by server/houses/checks.py, which the key places
(server/places) use too.

Who sees what: supervisors and admins every house and tenant (``PAGES["houses"]``
in shared/roles.py); grid workers use the tablet, and rectifying units act on cases, not on
residents' registers, so both get 403. A tenant's ID number is shown as
`server.privacy.shown_id_number` decides for the viewer: in full only to a
role an admin allowed, masked to everyone else.

**The registration rate** (暂住人口登记率, goal ≥ 95 %) is shared/houses.py's rule, the
one the tablet shows too, counted on the district's date.

Scaling note: a house page reads its house by id and then only the checks and
tenants of its bucket that name it, and unseals only those tenants' numbers.
The house list and the tenant list filter (the place filters become grid
buckets), search, count and page in SQL (LIMIT/OFFSET), and only a page's
tenants are unsealed. A tenant search by name or ID number goes through keyed
hashes in ``tenant_index`` (server/houses/index.py, docs/privacy.md); an address
search is a LIKE over the houses. Still computed in Python: the house list's
hazard and below-goal filters (each house's last check and tenants, read for
the houses of the place filters, no number unsealed) and the registration page
(every house, check and tenant in one query, no number unsealed). Those would
want a per-house summary (last check, open hazards, registered, seen) kept by
`apply_changes`. bench/houses_bench.py measures the lists on 100,000 tenants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any, Iterable, Mapping

from sqlalchemy import case, false, func, or_, select
from sqlalchemy.orm import aliased

from shared.houses import REGISTRATION_GOAL, below_goal, combined_rate, living_there, registration_rate
from shared.records import grid_bucket

from .. import privacy
from ..reference import Reference
from ..db import db
from ..models import Record, TenantIndex, User
from . import index
from .checks import MANY_IDS, Check, Hazard, check_of, load_checklists

__all__ = [  # the rate's rules, for the views, beside this module's own names
    "REGISTRATION_GOAL", "below_goal", "combined_rate", "registration_rate", "House", "HouseFilters", "RateRow",
    "Check", "Hazard", "Tenant", "HousePage", "TenantPage", "load_houses", "get_house", "list_houses",
    "list_tenants", "matches", "place_grids", "rate_rows", "photos_of",
]

# --- what the pages show ---------------------------------------------------------------------

@dataclass(frozen=True)
class Tenant:
    """A tenant as the viewer may see them: ``id_shown`` is the full number only when ``id_full``."""

    id: str
    house_id: str
    values: Mapping[str, Any]  # without id_number
    id_shown: str | None
    id_full: bool
    moved_out: bool
    # Other tenant records with the same ID number (the index's digests, server/houses/index.py): where, who,
    # whether they still live there. The server keeps both records and flags the pair; it refuses no sync.
    same_number: tuple = ()


@dataclass(frozen=True)
class SameNumber:
    """Another tenant record holding the same ID number: its house (id, address), name, and moved out or not."""

    tenant_id: str
    house_id: str
    address: str
    name: str
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


@dataclass(frozen=True)
class HousePage:
    """One page of the house list and how many houses pass the filters."""

    houses: list[House]
    total: int
    page: int
    pages: int
    per_page: int


@dataclass(frozen=True)
class TenantPage:
    """One page of the tenant list, (house, tenant) rows, and how many tenants pass the filters."""

    rows: list[tuple[House, Tenant]]
    total: int
    page: int
    pages: int
    per_page: int


# --- reading -------------------------------------------------------------------------------------

_CHILD_KINDS = ("house_check", "tenant")
_MANY_IDS = MANY_IDS  # above this many houses, their children are found by bucket, not by an IN of house ids


def _moved_out(values: Mapping[str, Any], today: date) -> bool:
    return not living_there(values.get("moved_out"), today.isoformat())


def _live(record) -> Any:
    """SQL: the record (a Record or an alias of it) is not deleted."""
    deleted = record.field_values["_deleted"].as_boolean()
    return or_(deleted.is_(None), deleted == false())


def _text(record, name: str) -> Any:
    """SQL: a field of the record as text (NULL when missing)."""
    return record.field_values[name].as_string()


def _tenant(record: Record, house_id: str, today: date, viewer: Any = None, reveal: bool = False) -> Tenant:
    """A tenant for the pages; its ID number is unsealed only when ``reveal`` (for ``viewer``)."""
    values = record.field_values
    shown, full = privacy.shown_id_number(values.get("id_number"), viewer) if reveal else (None, False)
    return Tenant(record.id, house_id, {k: v for k, v in values.items() if k != "id_number"}, shown, full,
                  _moved_out(values, today))


def _fill(houses: Mapping[str, House], children: Iterable[Record], today: date, english: bool,
          viewer: Any = None, reveal: bool = False) -> None:
    """Give the houses their checks (newest first) and tenants (current first, by room) from child records."""
    checklists = load_checklists()
    for record in children:
        values = record.field_values
        house = houses.get(values.get("house"))
        if house is None:
            continue
        if record.kind == "house_check":
            house.checks.append(check_of(record, checklists, english))
        elif record.kind == "tenant" and not values.get("_deleted"):
            house.tenants.append(_tenant(record, house.id, today, viewer, reveal))
    for house in houses.values():
        house.checks.sort(key=lambda c: (c.checked_at, c.id), reverse=True)
        house.tenants.sort(key=lambda t: (t.moved_out, t.values.get("room") or "", t.values.get("name") or "", t.id))


def _children_of(houses: Mapping[str, House], buckets: Iterable[str] | None = None) -> Iterable[Record]:
    """The checks and tenants that may belong to these houses: of their buckets, and by house id when few."""
    statement = select(Record).where(Record.kind.in_(_CHILD_KINDS))
    if len(houses) <= _MANY_IDS:
        statement = statement.where(Record.bucket.in_(sorted({h.bucket for h in houses.values()})),
                                    _text(Record, "house").in_(sorted(houses)))
    elif buckets is not None:
        statement = statement.where(Record.bucket.in_(sorted(buckets)))
    return db.session.scalars(statement)


def load_houses(today: date, english: bool = False) -> list[House]:
    """Every house that is not deleted, with its checks and tenants, no ID number unsealed (the rates)."""
    houses = {r.id: House(r.id, r.bucket, r.field_values)
              for r in db.session.scalars(select(Record).where(Record.kind == "rental_house", _live(Record)))}
    _fill(houses, _children_of(houses), today, english)
    return sorted(houses.values(), key=lambda h: (h.grid or "", h.values.get("address") or "", h.id))


def get_house(viewer: User, house_id: str, today: date, english: bool = False) -> House | None:
    """One house with its checks and tenants, only its own tenants unsealed; None when missing or deleted.

    Reads the house by id, then its checks and tenants: the records of its bucket whose ``house`` is it.
    """
    record = db.session.get(Record, house_id)
    if record is None or record.kind != "rental_house" or record.field_values.get("_deleted"):
        return None
    house = House(record.id, record.bucket, record.field_values)
    children = db.session.scalars(select(Record).where(
        Record.bucket == record.bucket, Record.kind.in_(_CHILD_KINDS), _text(Record, "house") == house_id))
    _fill({house.id: house}, children, today, english, viewer, reveal=True)
    house.tenants[:] = _with_same_numbers(house.tenants, today)
    return house


def same_numbers(tenant_ids: list[str], today: date) -> dict[str, list[SameNumber]]:
    """For each tenant, the other tenant records with the same ID number, found by the index's digest.

    Neither number is unsealed: equal numbers have equal digests (server/houses/index.py).
    """
    if not tenant_ids:
        return {}
    index.catch_up()
    own = dict(db.session.execute(select(TenantIndex.tenant_id, TenantIndex.id_hash).where(
        TenantIndex.tenant_id.in_(tenant_ids), TenantIndex.id_hash.is_not(None))).all())
    if not own:
        return {}
    others = db.session.execute(select(TenantIndex.tenant_id, TenantIndex.id_hash).where(
        TenantIndex.id_hash.in_(set(own.values())), TenantIndex.tenant_id.not_in(list(own)))).all()
    records = {r.id: r for r in db.session.scalars(select(Record).where(
        Record.id.in_([tenant for tenant, _h in others])))}
    houses = {r.id: r for r in db.session.scalars(select(Record).where(Record.id.in_(
        {r.field_values.get("house") for r in records.values() if r.field_values.get("house")})))}
    found: dict[str, list[SameNumber]] = {}
    for tenant, digest in others:
        record = records.get(tenant)
        if record is None or record.field_values.get("_deleted"):
            continue
        values = record.field_values
        home = houses.get(values.get("house"))
        same = SameNumber(tenant, values.get("house") or "", (home.field_values.get("address") if home else "") or "",
                          values.get("name") or "", _moved_out(values, today))
        for mine, mine_digest in own.items():
            if mine_digest == digest:
                found.setdefault(mine, []).append(same)
    return found


def _with_same_numbers(tenants: list[Tenant], today: date) -> list[Tenant]:
    found = same_numbers([t.id for t in tenants], today)
    return [replace(t, same_number=tuple(sorted(found.get(t.id, ()), key=lambda s: (s.moved_out, s.address))))
            for t in tenants]


def place_grids(filters: HouseFilters, reference: Reference) -> set[str] | None:
    """The grid codes the street, community and grid filters leave; None when none is set."""
    if not (filters.grid or filters.community or filters.street):
        return None
    codes = {filters.grid} if filters.grid else set(reference.grids)
    return {code for code in codes
            if (not filters.community or reference.grid(code).get("community") == filters.community)
            and (not filters.street or reference.grid(code).get("street") == filters.street)}


def _paged(total: int, page: int, per_page: int | None) -> tuple[int, int, int]:
    """(page, pages, offset) with the page clamped into range; one page of everything when per_page is None."""
    if per_page is None:
        return 1, 1, 0
    pages = max(1, math.ceil(total / max(1, per_page)))
    page = min(max(1, page), pages)
    return page, pages, (page - 1) * per_page


def matches(house: House, filters: HouseFilters, reference: Reference) -> bool:
    """Whether a house (with its checks and tenants) passes the filters."""
    grids = place_grids(filters, reference)
    return ((grids is None or house.grid in grids)
            and (not filters.hazards or bool(house.open_hazards))
            and (not filters.below_goal or below_goal(house.rate)))


def list_houses(filters: HouseFilters, reference: Reference, today: date, *, query: str = "", page: int = 1,
                per_page: int = 20, english: bool = False) -> HousePage:
    """A page of the houses passing the filters, searched by address or owner, by grid then address.

    The place filters, the search, the count and the page are SQL; only the page's houses get their
    checks and tenants (no ID number unsealed). The hazard and below-goal filters need each house's
    last check and tenants, so with them the houses of the place filters are read whole and paged here.
    """
    statement = select(Record).where(Record.kind == "rental_house", _live(Record))
    grids = place_grids(filters, reference)
    buckets = None if grids is None else {grid_bucket(code) for code in grids}
    if buckets is not None:
        statement = statement.where(Record.bucket.in_(sorted(buckets)))
    query = query.strip()
    if query:
        statement = statement.where(or_(_text(Record, "address").icontains(query, autoescape=True),
                                        _text(Record, "owner").icontains(query, autoescape=True)))
    order = (_text(Record, "grid"), _text(Record, "address"), Record.id)
    if filters.hazards or filters.below_goal:
        found = {r.id: House(r.id, r.bucket, r.field_values) for r in db.session.scalars(statement.order_by(*order))}
        _fill(found, _children_of(found, buckets), today, english)
        chosen = [h for h in found.values() if matches(h, filters, reference)]
        page, pages, start = _paged(len(chosen), page, per_page)
        return HousePage(chosen[start:start + per_page], len(chosen), page, pages, per_page)
    total = db.session.scalar(select(func.count()).select_from(statement.subquery()))
    page, pages, start = _paged(total, page, per_page)
    rows = db.session.scalars(statement.order_by(*order).limit(per_page).offset(start))
    found = {r.id: House(r.id, r.bucket, r.field_values) for r in rows}
    _fill(found, _children_of(found), today, english)
    return HousePage(list(found.values()), total, page, pages, per_page)


def list_tenants(viewer: User, filters: HouseFilters, reference: Reference, today: date, *, query: str = "",
                 current_only: bool = True, page: int = 1, per_page: int | None = 20) -> TenantPage:
    """A page of tenants with their houses, by house then room, their ID numbers as ``viewer`` may see them.

    Filtered by the place filters, paged and counted in SQL; ``query`` finds a tenant by the address of
    their house (a part of it), their full name, or their ID number as the viewer's role may search it
    (server/houses/index.py). Only the tenants of the page are unsealed. ``per_page`` None: every row
    (the CSV export).
    """
    tenant, house = aliased(Record, name="tenant"), aliased(Record, name="house")
    query = query.strip()
    # With a search, kind || '' keeps the planner off ix_records_kind: the index's few ids are the narrow part.
    is_tenant = tenant.kind.concat("") == "tenant" if query else tenant.kind == "tenant"
    statement = (select(tenant, house).join(house, house.id == _text(tenant, "house"))
                 .where(is_tenant, house.kind == "rental_house", _live(tenant), _live(house)))
    grids = place_grids(filters, reference)
    if grids is not None:  # a tenant lives in its house's bucket: both sides narrowed by the bucket index
        buckets = sorted(grid_bucket(code) for code in grids)
        statement = statement.where(tenant.bucket.in_(buckets), house.bucket.in_(buckets))
    moved_out = _text(tenant, "moved_out")
    living = or_(moved_out.is_(None), moved_out == "", moved_out > today.isoformat())
    if current_only:
        statement = statement.where(living)
    if query:
        index.catch_up()
        by_index = index.query_conditions(query, privacy.may_see_id_numbers(viewer))
        # The tenants of the houses whose address holds the query, through the index's house column:
        # the scan is over houses, not over every tenant joined to its house.
        addressed = select(Record.id).where(Record.kind == "rental_house",
                                            _text(Record, "address").icontains(query, autoescape=True))
        statement = statement.where(tenant.id.in_(select(TenantIndex.tenant_id).where(
            or_(TenantIndex.house_id.in_(addressed), *by_index))))
    total = db.session.scalar(select(func.count()).select_from(statement.with_only_columns(tenant.id).subquery()))
    page, pages, start = _paged(total, page, per_page)
    statement = statement.order_by(_text(house, "grid"), _text(house, "address"), house.id,
                                   case((living, 0), else_=1), _text(tenant, "room"), _text(tenant, "name"),
                                   tenant.id)
    if per_page is not None:
        statement = statement.limit(per_page).offset(start)
    houses: dict[str, House] = {}
    rows = []
    for tenant_record, house_record in db.session.execute(statement):
        owner = houses.setdefault(house_record.id, House(house_record.id, house_record.bucket,
                                                         house_record.field_values))
        rows.append((owner, _tenant(tenant_record, owner.id, today, viewer, reveal=True)))
    return TenantPage(rows, total, page, pages, per_page or max(1, total))


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

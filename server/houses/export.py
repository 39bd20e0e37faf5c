"""The tenant list as CSV, for the spreadsheets a district office keeps.

UTF-8 with a byte-order mark and formula-safe cells (server/exports.py). ID numbers appear as the
viewer may see them (server/privacy.py), exactly as on the page.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator

from flask_babel import lazy_gettext as _l

from ..exports import point, stream_csv
from ..reference import Reference
from .service import House, Tenant

COLUMNS = [  # (header, value of (house, tenant, grid))
    (_l("Address"), lambda h, t, g: h.values.get("address")),
    (_l("Grid"), lambda h, t, g: h.grid),
    (_l("Community"), lambda h, t, g: g.get("community")),
    (_l("Street"), lambda h, t, g: g.get("street")),
    (_l("Room"), lambda h, t, g: t.values.get("room")),
    (_l("Name"), lambda h, t, g: t.values.get("name")),
    (_l("Phone"), lambda h, t, g: t.values.get("phone")),
    (_l("ID number"), lambda h, t, g: t.id_shown),
    (_l("Moved in"), lambda h, t, g: t.values.get("moved_in")),
    (_l("Moved out"), lambda h, t, g: t.values.get("moved_out")),
]


def tenant_rows(rows: Iterable[tuple[House, Tenant]], reference: Reference) -> Iterator[list[Any]]:
    """The heading (in the page's language), then one row per (house, tenant)."""
    yield [str(header) for header, _value in COLUMNS]
    for house, tenant in rows:
        grid = reference.grid(house.grid)
        yield [value(house, tenant, grid) for _header, value in COLUMNS]


def tenants_csv(rows: Iterable[tuple[House, Tenant]], reference: Reference) -> str:
    """The CSV text of (house, tenant) rows, headers in the page's language."""
    return "".join(stream_csv(tenant_rows(rows, reference)))


HOUSE_COLUMNS = [  # (header, value of (house, grid))
    (_l("Address"), lambda h, g: h.values.get("address")),
    (_l("Grid"), lambda h, g: h.grid),
    (_l("Community"), lambda h, g: g.get("community")),
    (_l("Street"), lambda h, g: g.get("street")),
    (_l("Owner"), lambda h, g: h.values.get("owner")),
    (_l("Risk grade"), lambda h, g: h.values.get("risk_grade")),
    (_l("Last check"), lambda h, g: h.last_check.values.get("checked_at") if h.last_check else None),
    (_l("Open hazards"), lambda h, g: "；".join(z.text for z in h.open_hazards)),
    (_l("Registered tenants"), lambda h, g: h.registered),
]


def house_rows(houses: Iterable[House], reference: Reference) -> Iterator[list[Any]]:
    """The heading, then one row per house: place, owner, risk, last check, open hazards, registered tenants."""
    yield [str(header) for header, _value in HOUSE_COLUMNS]
    for house in houses:
        grid = reference.grid(house.grid)
        yield [value(house, grid) for _header, value in HOUSE_COLUMNS]


def house_features(houses: Iterable[House], reference: Reference) -> Iterator[dict[str, Any]]:
    """One GeoJSON Feature per house (no geometry without a location); no tenant's personal data."""
    keys = ["address", "grid", "community", "street", "owner", "risk_grade", "last_check", "open_hazards",
            "registered_tenants"]
    for house in houses:
        grid = reference.grid(house.grid)
        where = house.values.get("location") or {}
        values = [value(house, grid) for _header, value in HOUSE_COLUMNS]
        yield point(where.get("lon"), where.get("lat"), {"id": house.id, **dict(zip(keys, values))})

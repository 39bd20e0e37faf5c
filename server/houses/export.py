"""The tenant list as CSV, for the spreadsheets a district office keeps.

UTF-8 with a byte-order mark and formula-safe cells (server/exports.py). ID numbers appear as the
viewer may see them (server/privacy.py), exactly as on the page.
"""

from __future__ import annotations

from typing import Iterable

from flask_babel import lazy_gettext as _l

from ..exports import stream_csv
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


def tenants_csv(rows: Iterable[tuple[House, Tenant]], reference: Reference) -> str:
    """The CSV text of (house, tenant) rows, headers in the page's language."""
    def lines():
        yield [str(header) for header, _value in COLUMNS]
        for house, tenant in rows:
            grid = reference.grid(house.grid)
            yield [value(house, tenant, grid) for _header, value in COLUMNS]
    return "".join(stream_csv(lines()))


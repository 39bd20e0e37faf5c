"""The key places as CSV, XLSX or GeoJSON, beside the other exports (server/exports.py writes the files).

One row per place: where it is, its type and grade, who is in charge and who is responsible,
its last check, its schedule and its open hazards, in the page's language.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping

from flask_babel import lazy_gettext as _l

from shared.hlc import format_ms

from ..exports import point
from ..reference import Reference
from ..web.labels import name_of
from .service import Place

COLUMNS = [  # (header, key of the GeoJSON property, value of (place, grid, types, names))
    (_l("Place name"), "name", lambda p, g, t, n: p.values.get("name")),
    (_l("Type"), "type", lambda p, g, t, n: name_of(t.get(p.values.get("type") or ""), p.values.get("type"))),
    (_l("Grade"), "grade", lambda p, g, t, n: p.values.get("grade")),
    (_l("Address"), "address", lambda p, g, t, n: p.values.get("address")),
    (_l("Grid"), "grid", lambda p, g, t, n: p.grid),
    (_l("Community"), "community", lambda p, g, t, n: g.get("community")),
    (_l("Street"), "street", lambda p, g, t, n: g.get("street")),
    (_l("Person in charge"), "person_in_charge", lambda p, g, t, n: p.values.get("person_in_charge")),
    (_l("Phone"), "phone", lambda p, g, t, n: p.values.get("phone")),
    (_l("Responsible worker"), "worker", lambda p, g, t, n: n.get(p.values.get("worker") or "")),
    (_l("Last check"), "last_check", lambda p, g, t, n: p.last_check.checked_at if p.last_check else None),
    (_l("Check status"), "status", lambda p, g, t, n: p.schedule.status),
    (_l("Due"), "due", lambda p, g, t, n: format_ms(p.schedule.due_ms) if p.schedule.due_ms is not None else None),
    (_l("Open hazards"), "open_hazards", lambda p, g, t, n: "；".join(z.text for z in p.open_hazards)),
]


def place_rows(places: Iterable[Place], reference: Reference, types: Mapping[str, dict],
               names: Mapping[str, str]) -> Iterator[list[Any]]:
    """The heading (in the page's language), then one row per place."""
    yield [str(header) for header, _key, _value in COLUMNS]
    for place in places:
        grid = reference.grid(place.grid)
        yield [value(place, grid, types, names) for _header, _key, value in COLUMNS]


def place_features(places: Iterable[Place], reference: Reference, types: Mapping[str, dict],
                   names: Mapping[str, str]) -> Iterator[dict[str, Any]]:
    """One GeoJSON Feature per place (no geometry without a location)."""
    for place in places:
        grid = reference.grid(place.grid)
        where = place.values.get("location") or {}
        yield point(where.get("lon"), where.get("lat"),
                    {"id": place.id, **{key: value(place, grid, types, names) for _h, key, value in COLUMNS}})

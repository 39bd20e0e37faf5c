"""Reference data as the pages read it: grids, categories and units by code, and people's names.

Reference records (bucket ``ref``) are written by admins and pulled by every tablet; the pages
read them here, once per request, to show names instead of codes and to group by place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from sqlalchemy import select

from shared.records import REF_BUCKET

from .db import db
from .models import Device, Record, User


@dataclass(frozen=True)
class Reference:
    """The reference data the pages show: grids, categories and units by code."""

    grids: dict[str, dict] = field(default_factory=dict)
    categories: dict[str, dict] = field(default_factory=dict)
    units: dict[str, dict] = field(default_factory=dict)

    def grid(self, code: str | None) -> dict:
        """The grid's values, or an empty mapping for an unknown code."""
        return self.grids.get(code or "", {})

    def category(self, code: str | None) -> dict:
        """The category's values, or an empty mapping for an unknown code."""
        return self.categories.get(code or "", {})

    def places(self) -> dict[str, list[str]]:
        """The communities and streets of the grids, sorted, for the pages' filters."""
        grids = self.grids.values()
        return {"communities": sorted({g["community"] for g in grids}),
                "streets": sorted({g["street"] for g in grids})}


def load_reference() -> Reference:
    """Grids, categories and units that are not deleted, by code."""
    found: dict[str, dict[str, dict]] = {"grid": {}, "category": {}, "unit": {}}
    rows = db.session.scalars(
        select(Record).where(Record.bucket == REF_BUCKET, Record.kind.in_(tuple(found)))
    )
    for record in rows:
        values = record.field_values
        if values.get("_deleted") or not values.get("code"):
            continue
        found[record.kind][values["code"]] = values
    return Reference(found["grid"], found["category"], found["unit"])


def names_of_users(ids: Iterable[str | None]) -> dict[str, str]:
    """User names by id, for the ids given."""
    wanted = sorted({i for i in ids if i})
    if not wanted:
        return {}
    return dict(db.session.execute(select(User.id, User.name).where(User.id.in_(wanted))).all())


def device_names(ids: Iterable[str | None]) -> dict[str, str]:
    """Device names by id, for the ids given."""
    wanted = sorted({i for i in ids if i})
    if not wanted:
        return {}
    return dict(db.session.execute(select(Device.id, Device.name).where(Device.id.in_(wanted))).all())

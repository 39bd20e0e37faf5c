"""What the admin pages do, as functions the views (and tests) call: each change is audited.

Users and devices are SQL rows (server/accounts.py); reference data (grids, categories, units,
checklists) are records in the ``ref`` bucket, written through the server's own write path
(`server.sync.apply.write_as_server`), so an admin's edit syncs to every tablet like any change.
Every function here writes its audit line (server/audit.py) in the same transaction as its change,
or right after the record write commits.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select

from shared.records import KINDS, REF_BUCKET, ValidationError

from .. import accounts, audit
from ..db import db
from ..errors import describe
from ..models import Device, DeviceCode, Record, Setting, User, utcnow
from ..sync import apply

NAMESPACE = uuid.UUID("6f1c1a4e-2b1d-4f0e-9a51-6c7a1f0b9e21")  # the demo's: the same code, the same record
REFERENCE_KINDS = ("grid", "category", "unit", "checklist")


class AdminError(ValueError):
    """A request the admin pages refuse, with a message for the page."""


def ref_id(kind: str, code: str) -> str:
    """The stable id of a reference record (a checklist version's code is ``<code>@<version>``)."""
    return str(uuid.uuid5(NAMESPACE, f"{kind}:{code}"))


# --- users -------------------------------------------------------------------------------------

def user_values(user: User) -> dict[str, Any]:
    """What the audit log keeps of a user (never the password hash)."""
    return {"username": user.username, "name": user.name, "role": user.role, "unit": user.unit,
            "grids": user.grid_codes, "active": bool(user.active)}


def create_user(username: str, password: str, *, name: str, role: str, unit: str | None,
                grids: list[str], by: User) -> User:
    """A new user, with the rules for new passwords; commits and audits."""
    try:
        accounts.check_new_password(username, password)
        user = accounts.create_user(username, password, name=name, role=role, grids=[], unit=unit or None)
        accounts.assign_grids(user, grids, by=by.username)
    except accounts.AccountError as exc:
        db.session.rollback()
        raise AdminError(str(exc)) from None
    audit.record("create", "user", username, after=user_values(user))
    db.session.commit()
    return user


def edit_user(user: User, *, name: str, role: str, unit: str | None, grids: list[str], by: User) -> None:
    """Change a user's name, role, unit and grids (grid history kept); commits and audits the difference."""
    if role == "unit" and not unit:
        raise AdminError("a unit user needs the code of their unit")
    before = user_values(user)
    user.name, user.role, user.unit = name, role, unit or None
    accounts.assign_grids(user, grids, by=by.username)
    old, new = audit.changes(before, user_values(user))
    if old or new:
        audit.record("edit", "user", user.username, before=old, after=new)
    db.session.commit()


def deactivate_user(user: User, by: User) -> None:
    """Stop a user from logging in and syncing (never deleted: history names them); commits and audits."""
    if user.id == by.id:
        raise AdminError("you cannot deactivate yourself")
    accounts.deactivate(user)
    audit.record("deactivate", "user", user.username, before={"active": True}, after={"active": False})
    db.session.commit()


def reactivate_user(user: User) -> None:
    """Let a deactivated user log in again; commits and audits."""
    user.active = True
    audit.record("reactivate", "user", user.username, before={"active": False}, after={"active": True})
    db.session.commit()


def reset_password(user: User, password: str) -> None:
    """Give a user a new password (the rules for new passwords) and end their page sessions; commits and audits."""
    try:
        accounts.check_new_password(user.username, password)
    except accounts.AccountError as exc:
        raise AdminError(str(exc)) from None
    accounts.set_password(user, password)
    audit.record("reset_password", "user", user.username)
    db.session.commit()


# --- devices -----------------------------------------------------------------------------------

def revoke_device(device: Device) -> None:
    """Stop a device's token at once: its next sync answers 401 (reason device_revoked); commits and audits."""
    if device.revoked_at is not None:
        return
    accounts.revoke_device(device)
    audit.record("revoke", "device", device.id, before={"revoked": False}, after={"revoked": True},
                 note=f"{device.name} ({device.user.username})")
    db.session.commit()


def provision_code(user: User, admin) -> tuple[DeviceCode, str]:
    """A one-time code that provisions a tablet for the user (accounts.issue_device_code); commits and audits.

    The audit line names the user and the expiry, never the code.
    """
    try:
        row, code = accounts.issue_device_code(user, by=getattr(admin, "username", None) or "cli")
    except accounts.AccountError as exc:
        raise AdminError(str(exc)) from None
    audit.record("provision_code", "device", None, after={"user": user.username, "expires_at": row.expires_at},
                 actor=admin)
    db.session.commit()
    return row, code


def provisioning_link(server_url: str, code: str) -> str:
    """What the QR code carries: the server's address and the code, as the app reads them (mobile/app_core.py)."""
    return "gridpatrol://provision?" + urlencode({"server": server_url.rstrip("/"), "code": code})


def qr_svg_data_uri(text: str) -> str:
    """A QR code of the text as an SVG data URI (the pages' CSP allows data: images, not inline scripts)."""
    import segno

    return segno.make(text, error="m").svg_data_uri(scale=6, border=2)


# --- reference data ----------------------------------------------------------------------------

def reference_records(kind: str) -> list[Record]:
    """The reference records of a kind, deleted ones too, by code (and version for checklists)."""
    rows = db.session.scalars(select(Record).where(Record.bucket == REF_BUCKET, Record.kind == kind))
    return sorted(rows, key=lambda r: (str(r.field_values.get("code")), r.field_values.get("version") or 0))


def find_reference(kind: str, code: str) -> Record | None:
    """The record of a grid, category or unit by code (the newest version of a checklist)."""
    found = [r for r in reference_records(kind) if r.field_values.get("code") == code]
    return found[-1] if found else None


def save_reference(kind: str, code: str, values: dict[str, Any], *, create: bool) -> Record:
    """Create or edit a grid, category or unit through the server's write path; audits before and after.

    The values are checked by the kind's own schema (shared/records.py) before anything is written,
    so the page names the field that is wrong. Fields left out are left as they are.
    """
    existing = find_reference(kind, code)
    if create and existing is not None:
        raise AdminError(f"{code!r} already exists")
    if not create and existing is None:
        raise AdminError(f"no {kind} {code!r}")
    record_id = existing.id if existing is not None else ref_id(kind, code)
    before = dict(existing.field_values) if existing is not None else {}
    wanted = {**values, "code": code}
    written = {name: value for name, value in wanted.items() if before.get(name) != value or existing is None}
    if written:
        _write(kind, record_id, written)
    old, new = audit.changes(before, {**before, **wanted})
    if existing is None or old or new:
        audit.record("create" if existing is None else "edit", kind, code, before=old or None, after=new,
                     commit=True)
    return db.session.get(Record, record_id)


def delete_reference(kind: str, code: str) -> None:
    """Mark a grid, category or unit deleted (a tombstone that syncs); audits."""
    existing = find_reference(kind, code)
    if existing is None:
        raise AdminError(f"no {kind} {code!r}")
    _write(kind, existing.id, {"_deleted": True})
    audit.record("delete", kind, code, before={"_deleted": False}, after={"_deleted": True}, commit=True)


def new_checklist_version(code: str, *, name: str, name_en: str | None, items: list[dict]) -> Record:
    """A new version of a checklist as a new record; the versions before it stay, with the checks made on them.

    The app fills a check against the highest version it holds and records that version, so a
    check made on version 1 keeps pointing at version 1's items.
    """
    records = [r for r in reference_records("checklist") if r.field_values.get("code") == code]
    version = max((r.field_values.get("version") or 0 for r in records), default=0) + 1
    values = {"code": code, "name": name, "name_en": name_en or None, "version": version, "items": items}
    record_id = ref_id("checklist", f"{code}@{version}")
    _write("checklist", record_id, values)
    before = records[-1].field_values if records else None
    audit.record("new_version", "checklist", f"{code} v{version}",
                 before={"version": before.get("version"), "items": before.get("items")} if before else None,
                 after={"version": version, "items": items}, commit=True)
    return db.session.get(Record, record_id)


DISTRICT_SETTING = "district_boundary"  # the settings row: the district's outline, a GeoJSON Polygon


def district_outline() -> dict | None:
    """The district's outline (a GeoJSON Polygon) an admin set, or None: then grids are not checked against it."""
    row = db.session.get(Setting, DISTRICT_SETTING)
    return row.value if row is not None and row.value else None


def set_district_outline(text: str, admin) -> dict | None:
    """Set (GeoJSON text) or clear (blank) the district's outline; commits and audits.

    Grids saved afterwards must lie inside it; grids already stored are not judged again.
    """
    before = district_outline()
    outline = parse_boundary(text) if text.strip() else None
    row = db.session.get(Setting, DISTRICT_SETTING) or Setting(name=DISTRICT_SETTING)
    row.value, row.updated_at, row.updated_by = outline, utcnow(), getattr(admin, "username", None) or "cli"
    db.session.add(row)
    audit.record("edit", "setting", DISTRICT_SETTING, before={"set": before is not None},
                 after={"set": outline is not None, "points": len(outline["coordinates"][0]) if outline else 0},
                 actor=admin)
    db.session.commit()
    return outline


# A boundary drawn by hand along the district's edge may cross it by a hair: about 1 m is forgiven.
_DISTRICT_TOLERANCE_DEG = 1e-5


def parse_boundary(text: str, within: dict | None = None) -> dict:
    """A grid boundary from GeoJSON text: a Polygon (or a Feature or FeatureCollection of one), closed and simple,
    and inside the polygon ``within`` (the district's outline) when one is given.

    shapely checks what a list of points cannot say about itself: a ring that crosses itself (a
    bow tie) or a hole outside its shell is not a boundary a worker can be inside of.
    """
    import json

    from shapely.geometry import shape
    from shapely.validation import explain_validity

    try:
        data = json.loads(text)
    except ValueError:
        raise AdminError("the file is not GeoJSON (not valid JSON)") from None
    if isinstance(data, dict) and data.get("type") == "FeatureCollection":
        features = data.get("features") or []
        if len(features) != 1:
            raise AdminError("the FeatureCollection must hold exactly one polygon")
        data = features[0]
    if isinstance(data, dict) and data.get("type") == "Feature":
        data = data.get("geometry")
    if not isinstance(data, dict) or data.get("type") != "Polygon":
        raise AdminError("the boundary must be one GeoJSON Polygon")
    geometry = {"type": "Polygon", "coordinates": data.get("coordinates")}
    from shared.records import GridFields

    errors = GridFields().validate({"boundary": geometry}, partial=True)
    if errors:
        raise AdminError(describe(errors))
    polygon = shape(geometry)
    if not polygon.is_valid:
        raise AdminError(f"the polygon is not simple: {explain_validity(polygon)}")
    if polygon.area == 0:
        raise AdminError("the polygon has no area")
    if within is not None and not polygon.within(shape(within).buffer(_DISTRICT_TOLERANCE_DEG)):
        raise AdminError("the boundary reaches outside the district's outline (set on the grids page)")
    return geometry


def _write(kind: str, record_id: str, values: dict[str, Any]) -> None:
    try:
        change = apply.stamp(kind, record_id, values)
    except ValidationError as exc:
        raise AdminError(describe(exc.messages)) from None
    result = apply.write_as_server([change])[0]
    if result.status == "rejected":
        raise AdminError(result.reason or "refused")


def kind_fields(kind: str) -> frozenset[str]:
    """The fields a reference kind has (shared/records.py)."""
    return KINDS[kind].fields

"""Who may see a photo: those who may see a live record that refers to it and whose author could attach it.

A record's author could attach a photo when the author sent its bytes (``photo_uploads``, noted
by server/photos/service.py for a tablet's upload and for a page's). Naming a hash is not enough:
a worker who pushed a record of their grid listing the hash of another grid's photo would
otherwise be served its bytes. The author is the kind's author field (shared/records.py), which
the server holds to the pushing user, so nobody can borrow another's uploads either.

A worker, when a record of one of their grids refers to it; a supervisor or an admin, when any
record does; a unit user, when it belongs to a case (the event or one of its case actions) that
was ever dispatched to their unit, since they need the evidence to rectify and keep seeing the
evidence of work they did. A tombstoned record grants nothing. A photo that no record refers to
yet is served to nobody.

Hazard: finding the records that refer to a photo. Photos are a list inside each record's JSON,
with no index of their own; the lookup narrows by kind (and by bucket for a worker) and matches
the hash as text, then checks the list itself. A page that knows the record it shows passes
``?record=<id>``, which makes the check one primary-key read. If that ever is not enough, a table
of photo references written by `server.sync.apply.apply_changes` would make it an index lookup
everywhere.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from sqlalchemy import String, cast, select

from shared.records import KINDS, grid_bucket, is_uuid
from shared.roles import reads_every_grid

from ..db import db
from ..models import PhotoUpload, Record, User

# The kinds with a `photos` field, from the record model: a new kind with photos is served without an edit here.
PHOTO_KINDS = tuple(sorted(name for name, kind in KINDS.items() if "photos" in kind.fields))


def photo_hashes(values: Mapping[str, Any]) -> list[str]:
    """The photo hashes a record's values list (text items of its ``photos``)."""
    photos = values.get("photos")
    return [p for p in photos if isinstance(p, str)] if isinstance(photos, list) else []


def referring_records(sha256: str, buckets: Iterable[str] | None = None) -> list[Record]:
    """The live records of the kinds with photos (PHOTO_KINDS) that attach the photo: they list its hash and
    their author sent its bytes."""
    query = select(Record).where(Record.kind.in_(PHOTO_KINDS),
                                 cast(Record.field_values, String).contains(sha256, autoescape=True))
    if buckets is not None:
        query = query.where(Record.bucket.in_(list(buckets)))
    return _attaching(sha256, db.session.scalars(query).all())


def _attaching(sha256: str, records: Iterable[Record]) -> list[Record]:
    """Of the records, the live ones that list the photo and whose author sent its bytes."""
    listing = [r for r in records if sha256 in photo_hashes(r.field_values) and not r.field_values.get("_deleted")]
    if not listing:
        return []
    uploaders = set(db.session.scalars(select(PhotoUpload.user_id).where(PhotoUpload.sha256 == sha256)))
    return [r for r in listing if r.field_values.get(KINDS[r.kind].author) in uploaders]


def _dispatched_to(unit: str | None, events: set[str]) -> bool:
    """Whether any of the events was ever dispatched to the unit."""
    if not unit or not events:
        return False
    actions = db.session.scalars(
        select(Record.field_values).where(Record.kind == "case_action",
                                          Record.field_values["event"].as_string().in_(sorted(events)))
    ).all()
    return any(a.get("action") == "dispatch" and a.get("unit") == unit for a in actions)


def _may_see_records(user: User, records: list[Record]) -> bool:
    if reads_every_grid(user.role):
        return bool(records)
    if user.role == "worker":
        mine = {grid_bucket(code) for code in user.grid_codes}
        return any(r.bucket in mine for r in records)
    if user.role == "unit":
        events = {r.id if r.kind == "event" else r.field_values.get("event") for r in records
                  if r.kind in ("event", "case_action")}
        return _dispatched_to(user.unit, {e for e in events if isinstance(e, str)})
    return False


def may_see(user: User, sha256: str, record_id: str | None = None) -> bool:
    """Whether the user may see a record that refers to the photo (only ``record_id``, when given)."""
    if record_id is not None:
        if not is_uuid(record_id):
            return False
        record = db.session.get(Record, record_id)
        if record is None or record.kind not in PHOTO_KINDS:
            return False
        return _may_see_records(user, _attaching(sha256, [record]))
    buckets = [grid_bucket(code) for code in user.grid_codes] if user.role == "worker" else None
    return _may_see_records(user, referring_records(sha256, buckets))



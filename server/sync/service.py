"""The sync service: a push and a pull, as the views call them and the benchmark measures them.

`push` checks the batch's limits and the device's clock, then applies the changes
(server/sync/apply.py); `pull` serves one page of change-only records from the user's buckets
(server/sync/feed.py), with personal values shown as the user may see them (server/privacy.py).
Both answer with the JSON bytes of the answer: the views only read the request and send these.

Hazard: a device clock far ahead. A push whose latest timestamp is more than the allowed drift
ahead of the server's clock is refused whole with ``clock_skew`` and the server's time, before
anything is written; the tablet corrects its offset and re-stamps only what was never
acknowledged (design.md, Clock skew). The skew is recorded on the device for admins.
"""

from __future__ import annotations

import re
from typing import Any, Callable, NamedTuple

from flask import current_app
from sqlalchemy import select

from shared.hlc import ClockDriftError, format_ms, parse_ms
from shared.records import REF_BUCKET, grid_bucket
from shared.roles import readable_grids, reads_every_grid

from .. import accounts, audit, privacy
from ..clock import server_clock
from ..db import db
from ..errors import ApiError
from ..models import Device, Record, User
from . import apply, feed, wire


def push(user: User | accounts.CallerUser, device: Device | accounts.CallerDevice, body: dict[str, Any]) -> bytes:
    """Apply a loaded push body as the user of the device; the answer's JSON. Commits.

    Raises ApiError 413 for too many changes, 409 ``clock_skew`` for a clock too far ahead.
    """
    limit = current_app.config["GRIDPATROL_MAX_PUSH_CHANGES"]
    if len(body["changes"]) > limit:
        raise ApiError(413, f"a push may carry at most {limit} changes, this one has {len(body['changes'])}")
    clock = server_clock()
    if body.get("sent_at"):
        note_skew(device, parse_ms(body["sent_at"]) - clock.physical_ms())
    accounts.touch(device)
    writer = apply.writer_of(user)
    changes, rejected = apply.validate_batch(writer, body["changes"])
    latest = apply.max_hlc(c for c in changes if c is not None)
    if latest is not None:
        try:
            clock.update(latest)
        except ClockDriftError as exc:
            note_skew(device, exc.remote.wall_ms - exc.physical_ms)
            db.session.commit()
            raise ApiError(409, f"this device's clock is ahead of the server's: {exc}", code="clock_skew",
                           details={"server_time": format_ms(exc.physical_ms)}) from None
    results = apply.apply_changes(writer, changes, rejected, device=device.id)
    refused = [result.reason or "" for result in results if result.status == "rejected"]
    if refused:  # for the admins' list of devices; a second, small commit only when something was refused
        accounts.note_refusals(device, refused)
        db.session.commit()
    # Speed: the answer as schemas.PushAnswer().dump would give it (every value is already a str, in
    # the schema's key order), written by msgspec, without marshmallow's per-field dump of 500 results.
    return wire.encode({"results": results, "hlc": str(clock.now())})


def note_skew(device: Device | accounts.CallerDevice, skew_ms: int) -> None:
    """Record how far the device's clock is off, when that moved by a second or more.

    Each push measures it anew, a few milliseconds apart (the network's delay); writing each of those
    would update the device's row on every push for nothing an admin could see.
    """
    if device.clock_skew_ms is None or abs(skew_ms - device.clock_skew_ms) >= 1000:
        accounts.set_device(device, clock_skew_ms=skew_ms)


def pull(user: User | accounts.CallerUser, device: Device | accounts.CallerDevice, cursors: dict[str, str],
         limit: int | None, max_bytes: int | None = None) -> bytes:
    """One page of the user's changes after their cursors, as the answer's JSON; 400 for a foreign cursor.

    ``max_bytes``: the page's byte budget (the client's, for a bad link): see `pull_changes`.
    """
    config = current_app.config
    limit = min(limit or config["GRIDPATROL_DEFAULT_PULL_LIMIT"], config["GRIDPATROL_MAX_PULL_LIMIT"])
    if accounts.touch(device) or device in db.session.dirty:  # dirty: a new app version (api.device_required)
        db.session.commit()
    try:
        answer = pull_changes(user, cursors, limit, as_json=True, max_bytes=max_bytes)
    except ValueError as exc:
        raise ApiError(400, str(exc), code="invalid") from None
    answer["hlc"] = str(server_clock().now())
    return page_json(answer)


def readable_buckets(user: User) -> list[str]:
    """The buckets a user pulls: reference data, then their grids (supervisors and admins: every grid)."""
    every: list[str] = []
    if reads_every_grid(user.role):
        grids = db.session.scalars(select(Record.field_values).where(Record.kind == "grid")).all()
        every = [values["code"] for values in grids if not values.get("_deleted")]
    codes = readable_grids(user.role, user.grid_codes, every)
    return [REF_BUCKET] + [grid_bucket(code) for code in codes]


def record_change(record: Record, viewer: User | None = None) -> dict[str, Any]:
    """A stored record (or a row of its columns) in the wire form of a change: its whole state.

    Personal values are shown as ``viewer`` may see them (server/privacy.py); None is the
    server itself.
    """
    if record.kind in privacy.PERSONAL_KINDS:
        shown = privacy.shown_fields(record.kind, record.field_values, record.field_hlcs, viewer)
    else:
        hlcs = record.field_hlcs
        shown = {name: [value, hlcs[name]] for name, value in record.field_values.items()}
    return {"kind": record.kind, "id": record.id, "bucket": record.bucket, "fields": shown}


class _PulledRow(NamedTuple):
    """A records row as pull_changes serves it, its JSON columns decoded."""

    kind: str
    id: str
    bucket: str
    field_values: dict
    field_hlcs: dict
    position: int


def _decoded(row: Any) -> _PulledRow:
    """A row of feed.bucket_page with its JSON decoded as the column type would decode it."""
    kind, rid, bucket, values, hlcs, position = row
    return _PulledRow(kind, rid, bucket, feed.loads(values), feed.loads(hlcs), position)


def pull_changes(user: User | accounts.CallerUser, cursors: dict[str, str], limit: int, *, as_json: bool = False,
                 max_bytes: int | None = None) -> dict[str, Any]:
    """One page of changes in the user's buckets after their cursors.

    Buckets are served in order, ``ref`` first, so a device learns the
    categories before the events that use them. A bucket missing from
    ``cursors`` starts from zero; a bucket the user may no longer read is
    not served and not returned.

    ``as_json``: ``changes`` holds each change as its JSON (bytes, wire.encode), made as soon as
    the record is read, so that a page never holds its 500 decoded records at once; else each change as a dict.

    ``max_bytes``: a byte budget for the page, counted on the JSON of its changes (uncompressed): no
    change is added once the changes served reach it, but the first is always served, however large,
    so a page always moves. A bucket's cursor is the position of its last change served, as with
    ``limit``, and ``more`` is true whenever a change was left for the next page.
    """
    changes: list[Any] = []
    answer_cursors: dict[str, str] = {}
    more = False
    full = False  # the byte budget is spent: later buckets are only asked whether they hold more
    size = 0
    plain_serve = _served_json(user) if as_json else (lambda row: record_change(_decoded(row), user))
    sealed = privacy.SEALED_FIELDS
    # By kind with sealed fields, whether the user is served them opened: asked at the page's first record of
    # the kind (a query of the settings for ID numbers), so a page without one, most pulls, asks nothing.
    opened: dict[str, bool] = {}
    full_views: dict[str, list[str]] = {}  # by kind, the records served with a sealed value opened: audited

    def serve(row):
        kind = row[0]
        if kind in sealed:
            if kind not in opened:
                opened[kind] = privacy.full_view(kind, user)
            if opened[kind] and _holds(row[3], sealed[kind]):
                full_views.setdefault(kind, []).append(row[1])
        return plain_serve(row)

    for bucket in readable_buckets(user):
        after = _parse_cursor(cursors.get(bucket))
        answer_cursors[bucket] = str(after)
        room = 0 if full else limit - len(changes)
        if max_bytes is None:
            rows = feed.bucket_page(bucket, after, room + 1)
            if len(rows) > room:
                rows = rows[:room]
                more = True
            changes.extend(map(serve, rows))
            if rows:
                answer_cursors[bucket] = str(rows[-1][5])
            continue
        # With a byte budget the page usually ends long before the limit (256 KiB is about 290 events of the 500
        # asked for), and every row read past its end was read, converted and decoded for nothing (on
        # PostgreSQL its JSON is printed by the database too). So the rows are read a few at a time: a first
        # few, then as many as the budget left looks like holding at the size of the changes so far, and so on,
        # each read from the last row read, until the budget is spent, the limit reached or the bucket ends;
        # one row more than the page takes is read to know whether there is more.
        served = 0
        ask = min(room + 1, _FIRST_ROWS)
        while ask > 0:
            rows = feed.bucket_page(bucket, after, ask)
            for row in rows:
                if served == room or full:
                    more = True
                    break
                change = serve(row)
                changes.append(change)
                served += 1
                after = row[5]
                answer_cursors[bucket] = str(after)
                # The comma between two changes counts too; the rest of the answer is a few hundred bytes.
                size += 1 + len(change if as_json else wire.encode(change))
                if size >= max_bytes:
                    full = True
            else:
                if len(rows) < ask:
                    break  # the bucket ends here
                # Full or at the limit: one row more says whether there is more. Else the rows the budget left
                # looks like holding at this page's size per change, an eighth more, and the one to look past.
                left = max_bytes - size
                ask = 1 if full or served == room else \
                    min(room - served, -(-left * served // size) * 9 // 8 + 1) + 1
                continue
            break
    db.session.rollback()  # end the read transaction; nothing was written
    for kind, ids in full_views.items():
        # A pull that carries full ID numbers (or a dispute's parties) is a view of them, as on the pages
        # (docs/privacy.md): one line per kind and page, naming the records, never the values.
        audit.record(_PULL_VIEWS.get(kind, "view_" + kind), kind, None, after={"records": len(ids)},
                     note="pull: " + ", ".join(ids[:20]) + (" …" if len(ids) > 20 else ""), actor=user)
    if full_views:
        db.session.commit()
    return {"changes": changes, "cursors": answer_cursors, "more": more}


_PULL_VIEWS = {"tenant": "view_id_numbers", "dispute": "view_parties"}  # as the pages name the same views
_FIRST_ROWS = 32  # rows read first from a bucket for a page with a byte budget (see pull_changes)


def _holds(values: Any, names: tuple[str, ...]) -> bool:
    """Whether a record's values column, as the page read it (JSON text, or already a dict), has one of the fields."""
    if isinstance(values, dict):
        return any(name in values for name in names)
    text = values.decode("utf-8", "replace") if isinstance(values, (bytes, bytearray)) else str(values)
    return any(f'"{name}"' in text for name in names)


def _served_json(user: User) -> Callable[[Any], bytes]:
    """A function from a pulled row to the JSON of its change, as record_change gives it, for user."""
    encode, loads, personal = wire.encode, feed.loads, privacy.PERSONAL_KINDS

    def served(row) -> bytes:
        kind, rid, bucket, values, hlcs, _ = row
        if kind in personal:
            return encode(record_change(_decoded(row), user))
        hlcs, values = loads(hlcs), loads(values)
        # {name: [value, hlc]} built by C loops (a pair is written as a JSON array, a tuple as a list).
        return encode({"kind": kind, "id": rid, "bucket": bucket,
                       "fields": dict(zip(values, zip(values.values(), map(hlcs.__getitem__, values))))})

    return served


_CURSOR = re.compile(r"0|[1-9][0-9]{0,18}")  # a feed position as this server writes it
_MAX_POSITION = 2**63 - 1  # BIGINT


def _parse_cursor(cursor: Any) -> int:
    """A cursor this server gave (the canonical digits of a feed position), or 0 for none; ValueError else."""
    if cursor in (None, ""):
        return 0
    if not isinstance(cursor, str) or _CURSOR.fullmatch(cursor) is None or int(cursor) > _MAX_POSITION:
        raise ValueError(f"cursor {str(cursor)[:40]!r} is not one this server gave")
    return int(cursor)


def page_json(answer: dict[str, Any]) -> bytes:
    """The JSON of a pull answer whose changes are already encoded, one by one (wire.encode).

    Speed: each record's decoded values are garbage as soon as it is encoded, instead of living until
    the whole page is, which had the garbage collector walk them again and again; and msgspec writes
    JSON several times faster than json. The page is ``wire.encode(answer)`` of the decoded answer
    (tests/server/test_speed_pull.py).
    """
    rest = {key: value for key, value in answer.items() if key != "changes"}
    if next(iter(answer)) != "changes" or not rest:
        raise ValueError("a pull answer is changes first, then cursors, more, hlc")
    return b'{"changes":[' + b",".join(answer["changes"]) + b"]," + wire.encode(rest)[1:]

"""The central case store: apply pushed changes, serve change-only pulls.

This is the service layer the sync API, the pages and the CLI all call. Views
only load, call and dump.

Applying a batch (`apply_changes`) happens in one transaction:

1. validate every change (shared/records.py) and check it against the user's
   role and grids; a bad change is rejected on its own, with a reason, and
   never fails the batch;
2. take the feed lock (the single ``feed`` row), so writers queue here;
3. read the records the batch touches, merge each change into them through
   shared/merge.py, and note which changed;
4. write the changed records with fresh feed positions, raise the feed, and
   commit. Only then does the caller answer.

Hazard: a pull that skips a commit. With plain sequences, a transaction that
took position 7 can commit after another reader has already seen position 8,
and a cursor at 8 never sees 7. Here positions are taken under the feed lock
and the lock is held until commit, so they become visible in the order they
were handed out: a reader that sees position n sees every position below it.
The price is that pushes are serialised while they write; a push of 500
changes holds the lock for milliseconds.

Hazard: replays. A tablet retries a push whose answer it lost. Merge is
idempotent, so the replay changes nothing and every change comes back `stale`.
"""

from __future__ import annotations

import json
from itertools import chain
from operator import itemgetter
from typing import Any, Callable, Iterable, NamedTuple

import msgspec
from marshmallow import ValidationError
from sqlalchemy import Text, cast, select

from shared.case import Action, fold_case
from shared.hlc import HLC
from shared.merge import merge_record
from shared.records import KINDS, REF_BUCKET, Change, bucket_grid, grid_bucket, load_change

from server import privacy

from server.sync import wire
from server.db import db
from server.models import Record, User

# What each role may do to a case (the case_action's `action`).
ACTIONS_BY_ROLE = {
    "worker": {"verify_pass", "verify_fail", "handle_on_spot", "comment"},
    "unit": {"rectify", "comment"},
    "supervisor": {"dispatch", "close", "return", "extend", "comment", "mark_duplicate", "supervise",
                   "verify_pass", "verify_fail"},
    "admin": {"dispatch", "rectify", "verify_pass", "verify_fail", "close", "return", "extend", "comment",
              "handle_on_spot", "mark_duplicate", "supervise"},
}


class Result(msgspec.Struct, frozen=True, omit_defaults=True):
    """What became of one pushed change; msgspec writes it as its wire form (no reason: none written)."""

    kind: str
    id: str
    status: str  # applied | stale | rejected
    reason: str | None = None


def describe(messages: Any, prefix: str = "") -> str:
    """Flatten marshmallow messages into one line that names each field."""
    if isinstance(messages, dict):
        return "; ".join(describe(value, f"{prefix}{key}." if key != "_schema" else prefix)
                         for key, value in messages.items())
    if isinstance(messages, list):
        return "; ".join(describe(m, prefix) if not isinstance(m, str) else f"{prefix.rstrip('.')}: {m}"
                         if prefix else m for m in messages)
    return f"{prefix.rstrip('.')}: {messages}" if prefix else str(messages)


def readable_buckets(user: User) -> list[str]:
    """The buckets a user pulls: reference data, then their grids (supervisors and admins: every grid)."""
    if user.role in ("supervisor", "admin"):
        grids = db.session.scalars(
            select(Record.field_values).where(Record.kind == "grid")
        ).all()
        codes = sorted({values["code"] for values in grids if not values.get("_deleted")})
    elif user.role == "worker":
        codes = user.grid_codes
    else:
        codes = []
    return [REF_BUCKET] + [grid_bucket(code) for code in codes]


_STAMP = itemgetter(1)  # the HLC of a (value, hlc) write


class Writer(NamedTuple):
    """Who pushes a batch, read from the user once: ORM attributes cost more than the checks."""

    id: str
    role: str
    unit: str | None
    grids: frozenset[str]


def writer_of(user: User | Writer | None) -> Writer | None:
    """The Writer of a user (None: the server itself)."""
    if user is None or isinstance(user, Writer):
        return user
    return Writer(user.id, user.role, user.unit, frozenset(user.grid_codes))


def _may_write_bucket(writer: Writer | None, bucket: str) -> bool:
    """Whether the writer may write records in the bucket."""
    if writer is None:  # the server itself
        return True
    if bucket == REF_BUCKET:
        return writer.role == "admin"
    if writer.role in ("supervisor", "admin", "unit"):
        return True
    return bucket_grid(bucket) in writer.grids


def authorize(user: User | Writer, change: Change) -> str | None:
    """Why the user may not push this change, or None when they may.

    For any kind but case_action the answer depends on the user, the kind and the bucket alone;
    validate_batch asks once per (kind, bucket). A rule that reads a change's values must keep that.
    """
    writer = writer_of(user)
    kind = KINDS[change.kind]
    if not _may_write_bucket(writer, change.bucket):
        if change.bucket == REF_BUCKET:
            return "forbidden: only admins change reference data"
        return f"forbidden: {change.bucket} is not one of your grids"
    if change.kind == "case_action":
        values = change.values
        action = values.get("action")
        if action is not None and action not in ACTIONS_BY_ROLE[writer.role]:
            return f"forbidden: a {writer.role} may not {action}"
        actor = values.get("actor")
        if actor is not None and actor != writer.id:
            return "forbidden: actor must be the pushing user"
        # The fold trusts stand_in (shared/case.py, "Hazard: permission"): only here can it be refused.
        if values.get("stand_in") is True and writer.role not in ("supervisor", "admin"):
            return "forbidden: only a supervisor verifies in the reporter's place"
    elif writer.role == "unit" and not kind.reference:
        return f"forbidden: a unit user may not write {change.kind} records"
    return None


def max_hlc(changes: Iterable[Change]) -> HLC | None:
    """The latest timestamp of any write in the changes."""
    latest = max(map(_STAMP, chain.from_iterable(change.fields.values() for change in changes)), default=None)
    return HLC.parse(latest) if latest else None


def validate_batch(user: User | Writer, raw_changes: list[Any]) -> tuple[list[Change | None], dict[int, Result]]:
    """Load and authorise each change; rejected ones get their Result by index.

    A change may come already loaded, as a Change (server/wire.py read it from the body).
    """
    changes: list[Change | None] = []
    rejected: dict[int, Result] = {}
    writer = writer_of(user)
    # Speed: but for a case action, what authorize() says depends on the kind and the bucket alone.
    verdicts: dict[tuple[str, str], str | None] = {}
    for index, raw in enumerate(raw_changes):
        if type(raw) is Change:
            if raw.kind == "case_action":
                reason = authorize(writer, raw)
            else:
                key = (raw.kind, raw.bucket)
                reason = verdicts[key] if key in verdicts else verdicts.setdefault(key, authorize(writer, raw))
            if reason:
                rejected[index] = Result(raw.kind, raw.id, "rejected", reason)
                changes.append(None)
            else:
                changes.append(raw)
            continue
        try:
            change = load_change(raw)
        except ValidationError as exc:
            kind = raw.get("kind") if isinstance(raw, dict) and isinstance(raw.get("kind"), str) else ""
            rid = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else ""
            rejected[index] = Result(kind[:32], rid[:64], "rejected", f"invalid: {describe(exc.messages)}")
            changes.append(None)
            continue
        reason = authorize(writer, change)
        if reason:
            rejected[index] = Result(change.kind, change.id, "rejected", reason)
            changes.append(None)
            continue
        changes.append(change)
    return changes, rejected


def _lock_feed() -> int:
    """Take the feed lock for the rest of the transaction; return the last position."""
    # One statement, straight to the driver: it runs once per push, and SQLAlchemy's update() and
    # select() cost more than the lock itself. (RETURNING: PostgreSQL, and SQLite since 3.35.)
    return db.session.connection().exec_driver_sql(
        "UPDATE feed SET position = position WHERE id = 1 RETURNING position").scalar_one()


def apply_changes(user: User | Writer | None, changes: list[Change | None],
                  rejected: dict[int, Result] | None = None) -> list[Result]:
    """Merge validated changes into the store in one transaction; one Result per change, in order.

    ``changes`` holds None where a change was already rejected (its Result is
    in ``rejected``). ``user`` None is the server itself. Commits before
    returning.
    """
    rejected = dict(rejected or {})
    results: list[Result | None] = [rejected.get(i) for i in range(len(changes))]
    last_position = _lock_feed()
    writer = writer_of(user)

    ids = {c.id for c in changes if c is not None}
    parent_ids = {c.values[KINDS[c.kind].parent[0]] for c in changes
                  if c is not None and KINDS[c.kind].parent and KINDS[c.kind].parent[0] in c.fields}
    states = _held_states(sorted(ids | parent_ids))
    held = frozenset(states)
    dirty: dict[str, None] = {}  # ordered set of ids to write
    case_units: dict[str, str | None] = {}  # event id -> the unit its case is dispatched to now

    personal = privacy.PERSONAL_KINDS
    for index, change in enumerate(changes):
        if change is None:
            continue
        kind = KINDS[change.kind]
        if change.kind in personal:
            sealed = privacy.seal_change(change)
            if isinstance(sealed, str):
                results[index] = Result(change.kind, change.id, "rejected", sealed)
                continue
            change = sealed
        existing = states.get(change.id)
        if existing and existing[0] != change.kind:
            results[index] = Result(change.kind, change.id, "rejected",
                                    f"invalid: id {change.id} is already a {existing[0]} record")
            continue
        if existing is None:
            # Speed: a new record (most of a push) takes every write as it is; merge_record would
            # copy them (a loaded Change's writes are already tuples, and nothing mutates them).
            state, changed = change.fields, True
        else:
            merged = merge_record(existing[2], change.fields, append_only=kind.append_only)
            if merged.refused:
                results[index] = Result(change.kind, change.id, "rejected",
                                        "append-only: a " + change.kind + " cannot be changed once recorded ("
                                        + ", ".join(sorted(merged.refused)) + ")")
                continue
            state, changed = merged.state, bool(merged.changed)
        if not kind.required <= state.keys():
            results[index] = Result(change.kind, change.id, "rejected",
                                    "invalid: a new record needs " + ", ".join(sorted(kind.required - state.keys())))
            continue
        grid = state.get("grid") if "grid" in kind.fields else None
        if grid is not None:  # _bucket_of's first case, the common one, without the call
            bucket = "grid:" + grid[0]
        else:
            bucket = _bucket_of(kind, state, change, states)
            if isinstance(bucket, Result):
                results[index] = bucket
                continue
        # authorize() saw only the bucket the change names. The record may live elsewhere: a change
        # without `grid`, or whose `grid` write loses the merge, would otherwise edit another grid's record.
        # (A new record in the bucket its change names is the case authorize() already decided.)
        if existing is not None or bucket != change.bucket:
            forbidden = [b for b in ((existing[1],) if existing else ()) + (bucket,)
                         if not _may_write_bucket(writer, b)]
            if forbidden:
                results[index] = Result(change.kind, change.id, "rejected",
                                        f"forbidden: the record lives in {forbidden[0]}, not one of your grids")
                continue
        # A unit acts only on the cases now dispatched to it, as on the pages. Only a unit's case actions
        # pay for the fold (one query per case, per batch); workers and supervisors add no query here.
        if writer is not None and writer.role == "unit" and change.kind == "case_action":
            event_id = state["event"][0]
            if event_id not in case_units:
                case_units[event_id] = _current_unit(event_id, states)
            if not writer.unit or case_units[event_id] != writer.unit:
                results[index] = Result(change.kind, change.id, "rejected",
                                        "forbidden: the case is not dispatched to your unit")
                continue
        if not changed:
            results[index] = Result(change.kind, change.id, "stale")
            continue
        states[change.id] = (change.kind, bucket, state)
        dirty[change.id] = None
        results[index] = Result(change.kind, change.id, "applied")

    if dirty:
        rows = []
        columns = wire.record_columns
        for rid in dirty:
            last_position += 1
            kind_name, bucket, state = states[rid]
            rows.append((rid, kind_name, bucket, *columns(state), last_position))
        _write_records([row for row in rows if row[0] not in held], [row for row in rows if row[0] in held])
        connection = db.session.connection()
        connection.exec_driver_sql(f"UPDATE feed SET position = {_mark(connection)} WHERE id = 1", (last_position,))
    db.session.commit()
    return [r for r in results if r is not None]


def _held_states(ids: list[str]) -> dict[str, tuple[str, str, dict]]:
    """The stored records among ids: id -> (kind, bucket, state)."""
    connection = db.session.connection()
    mark, as_text = _mark(connection), "::text" if connection.dialect.name == "postgresql" else ""
    loads = _json_loads()
    states = {}
    for chunk in _chunks(ids, 500):
        # Straight to the driver, as _write_records: SQLAlchemy's IN of 500 parameters cost more than the lookups.
        rows = connection.exec_driver_sql(
            f"SELECT id, kind, bucket, field_values{as_text}, field_hlcs{as_text} FROM records "
            f"WHERE id IN ({', '.join([mark] * len(chunk))})", tuple(chunk))
        for rid, kind, bucket, values, hlcs in rows:
            hlcs = loads(hlcs)
            states[rid] = (kind, bucket, {name: (value, hlcs[name]) for name, value in loads(values).items()})
    return states


def _mark(connection) -> str:
    """The driver's parameter placeholder: psycopg's %s, sqlite3's ?."""
    return "%s" if connection.dialect.paramstyle in ("format", "pyformat") else "?"


def _write_records(inserts: list[tuple], updates: list[tuple]) -> None:
    """Insert and update records rows (id, kind, bucket, values JSON text, hlcs JSON text, position).

    Speed: straight to the driver's executemany, as the rows are already made: SQLAlchemy's insert()
    turned each row's parameters over again and encoded its JSON itself, more time than the insert.
    """
    connection = db.session.connection()
    mark = _mark(connection)
    json_mark = f"{mark}::jsonb" if connection.dialect.name == "postgresql" else mark
    if inserts:
        connection.exec_driver_sql(
            "INSERT INTO records (id, kind, bucket, field_values, field_hlcs, position) "
            f"VALUES ({mark}, {mark}, {mark}, {json_mark}, {json_mark}, {mark})", inserts)
    if updates:
        connection.exec_driver_sql(
            f"UPDATE records SET kind = {mark}, bucket = {mark}, field_values = {json_mark}, "
            f"field_hlcs = {json_mark}, position = {mark} WHERE id = {mark}",
            [(kind, bucket, values, hlcs, position, rid) for rid, kind, bucket, values, hlcs, position in updates])


def _bucket_of(kind, state: dict, change: Change, states: dict) -> str | Result:
    """Where a merged record lives: its grid's bucket, its parent's, or the one the change names."""
    grid = state.get("grid")
    if grid is not None and "grid" in kind.fields:
        return grid_bucket(grid[0])
    if kind.reference:
        return REF_BUCKET
    if kind.parent:
        field, parent_kind = kind.parent
        parent_id = state[field][0]
        parent = states.get(parent_id)
        if parent is not None:
            if parent[0] != parent_kind:
                return Result(change.kind, change.id, "rejected", f"invalid: {field} must be a {parent_kind} id")
            if parent[1] != change.bucket:
                return Result(change.kind, change.id, "rejected",
                              f"invalid: bucket must be {parent[1]}, the bucket of its {parent_kind}")
            return parent[1]
    return change.bucket


def _current_unit(event_id: str, states: dict) -> str | None:
    """The unit a case is dispatched to now: the fold of its stored actions; None without a live event.

    Read under the feed lock, so a re-dispatch cannot commit between this check and the write.
    The fold needs no category here: it reads the category only for deadlines (shared/case.py).
    """
    event = states.get(event_id)
    if event is None or event[0] != "event":
        return None
    values = {name: write[0] for name, write in event[2].items()}
    if values.get("_deleted"):
        return None
    # A case's actions live in its event's bucket; the JSON condition keeps to this one case.
    rows = db.session.scalars(select(Record).where(
        Record.bucket == event[1], Record.kind == "case_action",
        Record.field_values["event"].as_string() == event_id))
    return fold_case(values, [Action.from_state(r.id, r.state()) for r in rows]).unit


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]


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


# Speed: pull reads these columns as plain rows instead of Record objects, which spares the ORM's
# identity map and object construction for every record served (about a fifth of a pull's CPU).
# The two JSON columns come as their text and are decoded one record at a time, just before the
# record is served, instead of all 500 of a page when it is fetched: decoded values that outlive
# many allocations are what the garbage collector walks again and again.
_PULL_COLUMNS = (Record.kind, Record.id, Record.bucket, cast(Record.field_values, Text).label("field_values"),
                 cast(Record.field_hlcs, Text).label("field_hlcs"), Record.position)


class _PulledRow(NamedTuple):
    """A records row as pull_changes serves it, its JSON columns decoded."""

    kind: str
    id: str
    bucket: str
    field_values: dict
    field_hlcs: dict
    position: int


def _decoded(row: Any, loads: Callable[[str], Any]) -> _PulledRow:
    """A row of _PULL_COLUMNS with its JSON decoded as the column type would decode it."""
    kind, rid, bucket, values, hlcs, position = row
    return _PulledRow(kind, rid, bucket, loads(values), loads(hlcs), position)


def _json_loads() -> Callable[[str], Any]:
    """What the JSON column type decodes with: the engine's json_deserializer, else json.loads.

    On PostgreSQL, jsonb::text is the text psycopg decodes a jsonb value from (with json.loads,
    or the json_deserializer SQLAlchemy hands it), so the result is the same there too.
    """
    return db.engine.dialect._json_deserializer or json.loads


def pull_changes(user: User, cursors: dict[str, str], limit: int, *, as_json: bool = False) -> dict[str, Any]:
    """One page of changes in the user's buckets after their cursors.

    Buckets are served in order, ``ref`` first, so a device learns the
    categories before the events that use them. A bucket missing from
    ``cursors`` starts from zero; a bucket the user may no longer read is
    not served and not returned.

    ``as_json``: ``changes`` holds each change as its JSON (bytes, wire.encode), made as soon as
    the record is read, so that a page never holds its 500 decoded records at once (server/api.py,
    pull); else each change as a dict.
    """
    changes: list[Any] = []
    answer_cursors: dict[str, str] = {}
    more = False
    loads = _json_loads()
    serve = _served_json(user, loads) if as_json else (lambda row: record_change(_decoded(row, loads), user))
    connection = db.session.connection()
    for bucket in readable_buckets(user):
        after = _parse_cursor(cursors.get(bucket))
        answer_cursors[bucket] = str(after)
        room = limit - len(changes)
        # Straight to the driver: a page is one short statement, and SQLAlchemy's select() and its
        # rows cost more than the database's part of it.
        rows = connection.exec_driver_sql(_pull_sql(connection), (bucket, after, bucket, after, room + 1)).all()
        if len(rows) > room:
            rows = rows[:room]
            more = True
        changes.extend(map(serve, rows))
        if rows:
            answer_cursors[bucket] = str(rows[-1][5])
    db.session.rollback()  # end the read transaction; nothing was written
    return {"changes": changes, "cursors": answer_cursors, "more": more}


def _pull_sql(connection) -> str:
    """The records of a bucket after a cursor, in feed order, at most a limit.

    Hazard: a pull that costs as much as the whole feed. With just ``bucket = b AND position > c``
    PostgreSQL may scan the unique index on position from the cursor and filter on the bucket, which
    reads every later record of every bucket: for a grid whose records are old, a pull of its 100
    fresh changes read 500,000 rows of a 1M store (bench/sync_bench.py). The row comparison says the
    same thing again, but only ix_records_bucket_position can serve it, so the planner keeps to it.
    SQLite needs the plain conditions to use that index as a range, hence both.
    """
    mark, as_text = _mark(connection), "::text" if connection.dialect.name == "postgresql" else ""
    return (f"SELECT kind, id, bucket, field_values{as_text}, field_hlcs{as_text}, position FROM records "
            f"WHERE bucket = {mark} AND position > {mark} AND (bucket, position) > ({mark}, {mark}) "
            f"ORDER BY position LIMIT {mark}")


def _served_json(user: User, loads: Callable[[str], Any]) -> Callable[[Any], bytes]:
    """A function from a pulled row to the JSON of its change, as record_change gives it, for user."""
    encode, personal = wire.encode, privacy.PERSONAL_KINDS

    def served(row) -> bytes:
        kind, rid, bucket, values, hlcs, _ = row
        if kind in personal:
            return encode(record_change(_decoded(row, loads), user))
        hlcs = loads(hlcs)
        return encode({"kind": kind, "id": rid, "bucket": bucket,
                       "fields": {name: [value, hlcs[name]] for name, value in loads(values).items()}})

    return served


def _parse_cursor(cursor: Any) -> int:
    if cursor in (None, ""):
        return 0
    try:
        value = int(cursor)
    except (TypeError, ValueError):
        raise ValueError(f"cursor {cursor!r} is not one this server gave") from None
    if value < 0:
        raise ValueError(f"cursor {cursor!r} is not one this server gave")
    return value


def stamp(kind: str, record_id: str, values: dict[str, Any], bucket: str | None = None) -> Change:
    """A change that the server itself writes (CLI, demo, pages), stamped with its HLC."""
    from server.clock import server_clock

    hlc = str(server_clock().now())
    if bucket is None:
        bucket = KINDS[kind].bucket_of(values) or REF_BUCKET
    return load_change({"kind": kind, "id": record_id, "bucket": bucket,
                        "fields": {name: [value, hlc] for name, value in values.items()}})


def write_as_server(changes: list[Change]) -> list[Result]:
    """Apply changes made by the server itself: no role check, same merge and feed."""
    return apply_changes(None, list(changes))

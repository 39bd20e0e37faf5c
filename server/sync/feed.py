"""The feed: every SQL statement of push and pull, sent straight to the driver.

A record's ``position`` is raised every time it changes, and a pull asks for the positions above
its cursor in one bucket (a grid, or ``ref``). Cursors are per bucket on the wire (a pull sends
``{bucket: cursor}``), so what a pull needs is an order *per bucket*, not one across the city.

Hazard: a pull that skips a commit. If a transaction that took position 7 in bucket B commits
after a reader has already read position 8 of B, the reader's cursor for B is at 8 and never comes
back for 7. So, within one bucket, positions must become visible in the order they were handed out.

How (PostgreSQL): **a lock per bucket, positions from one sequence.** A writer takes, before it
reads anything it merges, a transaction-scoped advisory lock on every bucket its batch writes
(`lock`, keys in sorted order, so two writers never wait on each other in a cycle), and holds them
until commit or rollback. Only then does it take its positions, late, from the sequence
``feed_position_seq`` (`take_positions`). Why this is safe: two writers of bucket B hold B's lock
one after the other, so the second calls nextval after the first has committed (or rolled back);
nextval only grows, so every position the second writes in B is above every position the first
wrote there, and is visible only later. A reader of B that saw position n has therefore seen
every position of B below n that will ever commit: the per-bucket cursor rule. Writers of other
buckets interleave freely: their positions are not in commit order across buckets, and nothing
reads across buckets by position except the tenant index (below). Positions stay unique and
global (one sequence, the unique index on ``records.position`` stays), so a cursor that an old
tablet holds is still a position of that bucket and means what it meant: no cursor migration.

A writer also takes a shared advisory lock on the whole feed (`ALL_KEY`). A batch that writes
``ref`` (reference data: categories, grids) takes it exclusively instead: a category change
re-folds the cases of every grid (casebook.refold_category), so it must not run beside a writer
of any grid. `horizon` takes it exclusively for an instant too: once granted, no writer is in
flight, so every position up to the sequence's last value is committed or never will be.

Which buckets: those the changes name, their grids' buckets, ``ref`` for reference kinds
(apply.buckets_of), then, once the records are read under those locks, the buckets the records and
their parents live in (apply.py locks any missing one and reads again). Every write of a record of
bucket B, its merge and the re-fold of a case of B therefore happen under B's lock: as under the
old single feed lock, two merges of one record never interleave, and the cases row of an event
is folded by one writer at a time.

Two pushes to the same grid still wait for each other, and that is kept on purpose. The wire's cursor is one
integer per bucket (design.md), so within a bucket the order positions are handed out in must be the order they
become visible. Only two designs free same-grid writers under that contract. The first hands positions out after
commit: a sequencer stamps committed rows, so every record is written twice and every pull lags the sequencer by
one period. The second changes the cursor: it would carry a commit-safe watermark, such as the xid horizon of
``pg_snapshot_xmin(pg_current_snapshot())``, so tablets already in the field would need a cursor migration. The
same lock also keeps two merges of one record, and two re-folds of one case, from interleaving; without it, each
would need row locks and a retry on a conflicting insert. One grid is worked by one or two workers. Their pushes
meet seldom, and when they do, the later one waits for a single short transaction, not for the city.

SQLite has one writer at a time anyway: there `lock` takes the database's write lock with
``UPDATE feed SET position = position`` and positions come from the ``feed`` row, raised in the
same transaction: positions become visible in the order they were handed out, across buckets.

Before: one row (``UPDATE feed SET position = position WHERE id = 1``) held through merge, insert
and commit serialised every push of the city (issue 19: 86-96 % of active connections waited on it).

Speed: these statements go to the driver (``exec_driver_sql``) with ready JSON text, because
SQLAlchemy's select(), insert() and update() of a few hundred rows cost more than the database's
part of the work (docs/benchmarks.md). The JSON columns are read as text and decoded with
`loads`, the function the engine is configured with (server/__init__.py), one record at a time.
"""

from __future__ import annotations

import hashlib
from typing import Any, Iterable, Iterator

from shared.records import REF_BUCKET

from ..db import db
from .wire import loads

__all__ = ["lock", "lock_more", "take_positions", "horizon", "last_position", "held_states", "write_records",
           "bucket_page", "loads", "SEQUENCE", "bucket_key", "ALL_KEY"]

SEQUENCE = "feed_position_seq"  # PostgreSQL: where positions come from (migration 0007_feed_sequence)


def _key(text: str) -> int:
    """A signed 64-bit advisory-lock key for a name (a collision only makes two buckets share a lock)."""
    return int.from_bytes(hashlib.blake2b(b"gridpatrol/feed\x00" + text.encode(), digest_size=8).digest(),
                          "big", signed=True)


ALL_KEY = _key("*")  # the whole feed: shared by every writer, exclusive for a writer of ref and for `horizon`


def bucket_key(bucket: str) -> int:
    """The advisory-lock key of a bucket."""
    return _key("bucket:" + bucket)


def placeholder(connection) -> str:
    """The driver's parameter placeholder: psycopg's %s, sqlite3's ?."""
    return "%s" if connection.dialect.paramstyle in ("format", "pyformat") else "?"


def _as_text(connection) -> str:
    """How a JSON column is read as its text: jsonb::text on PostgreSQL, the column itself on SQLite."""
    return "::text" if connection.dialect.name == "postgresql" else ""


def _postgresql(connection) -> bool:
    return connection.dialect.name == "postgresql"


def lock(buckets: Iterable[str]) -> frozenset[str] | None:
    """Take the writer's locks on these buckets for the rest of the transaction; answers the buckets held
    (None: every bucket).

    PostgreSQL: the feed's lock shared (exclusive when ``ref`` is among them), then each bucket's,
    in key order, in one statement. SQLite: the database's write lock (every bucket at once).
    """
    buckets = frozenset(buckets)
    connection = db.session.connection()
    if not _postgresql(connection):
        connection.exec_driver_sql("UPDATE feed SET position = position WHERE id = 1")
        return None
    if REF_BUCKET in buckets:  # excludes every other writer: no bucket lock is needed beside it
        connection.exec_driver_sql("SELECT pg_advisory_xact_lock(%s)", (ALL_KEY,))
        return buckets
    keys = sorted({bucket_key(b) for b in buckets})
    # The target list is evaluated left to right: the feed's shared lock, then the buckets in key order.
    calls = ", ".join(["pg_advisory_xact_lock_shared(%s)"] + ["pg_advisory_xact_lock(%s)"] * len(keys))
    connection.exec_driver_sql(f"SELECT {calls}", (ALL_KEY, *keys))
    return buckets


def lock_more(held: frozenset[str] | None, buckets: Iterable[str]) -> frozenset[str] | None:
    """Also lock ``buckets`` (found once the records were read); answers every bucket now held.

    Out of key order, so two writers could wait on each other here: PostgreSQL detects that and
    aborts one (the push fails, the tablet sends it again). It needs two concurrent pushes each
    editing a record that lives in the other's bucket. ``ref`` found this late is locked as a
    bucket of its own: a batch that writes reference kinds names ref from the start,
    so it is never a category change found late (apply.buckets_of).
    """
    if held is None:
        return None
    extra = frozenset(buckets) - held
    if not extra:
        return held
    connection = db.session.connection()
    if REF_BUCKET not in held:
        keys = sorted({bucket_key(b) for b in extra})
        connection.exec_driver_sql("SELECT " + ", ".join(["pg_advisory_xact_lock(%s)"] * len(keys)), tuple(keys))
    return held | extra


def take_positions(count: int) -> list[int]:
    """``count`` fresh positions, increasing; taken late, just before the rows are written, under the locks."""
    if count <= 0:
        return []
    connection = db.session.connection()
    if _postgresql(connection):
        return sorted(p for (p,) in connection.exec_driver_sql(
            f"SELECT nextval('{SEQUENCE}') FROM generate_series(1, %s)", (count,)))
    mark = placeholder(connection)
    last = connection.exec_driver_sql(
        f"UPDATE feed SET position = position + {mark} WHERE id = 1 RETURNING position", (count,)).scalar_one()
    return list(range(last - count + 1, last + 1))


def last_position() -> int:
    """The last position handed out (PostgreSQL: possibly by a writer still in flight, or rolled back)."""
    connection = db.session.connection()
    if _postgresql(connection):
        last, called = connection.exec_driver_sql(f"SELECT last_value, is_called FROM {SEQUENCE}").one()
        return last if called else last - 1
    return connection.exec_driver_sql("SELECT position FROM feed WHERE id = 1").scalar_one()


def horizon() -> int:
    """A position at or below which every position is committed or never will be (for the tenant index).

    SQLite: the feed row as committed (positions become visible in order). PostgreSQL: the
    sequence's last value read while holding the feed's lock exclusively for an instant: that waits
    for the writers in flight to end and lets no new one start until it is read. Session-scoped,
    and released at once, so the caller's transaction does not keep writers out.
    """
    connection = db.session.connection()
    if not _postgresql(connection):
        return last_position()
    connection.exec_driver_sql("SELECT pg_advisory_lock(%s)", (ALL_KEY,))
    try:
        return last_position()
    finally:
        connection.exec_driver_sql("SELECT pg_advisory_unlock(%s)", (ALL_KEY,))


def held_states(ids: list[str]) -> dict[str, tuple[str, str, dict]]:
    """The stored records among ids: id -> (kind, bucket, state)."""
    connection = db.session.connection()
    mark, as_text = placeholder(connection), _as_text(connection)
    states = {}
    for chunk in _chunks(ids, 500):
        # SQLAlchemy's IN of 500 parameters cost more than the lookups.
        rows = connection.exec_driver_sql(
            f"SELECT id, kind, bucket, field_values{as_text}, field_hlcs{as_text} FROM records "
            f"WHERE id IN ({', '.join([mark] * len(chunk))})", tuple(chunk))
        for rid, kind, bucket, values, hlcs in rows:
            hlcs = loads(hlcs)
            states[rid] = (kind, bucket, {name: (value, hlcs[name]) for name, value in loads(values).items()})
    return states


_RECORD_COLUMNS = ("id", "kind", "bucket", "field_values", "field_hlcs", "position", "device_id", "parent_id")


def copy_rows(connection, table: str, columns: tuple[str, ...], rows: Iterable[tuple]) -> None:
    """PostgreSQL: insert rows by one COPY, in the SQLAlchemy connection's transaction (its psycopg connection)."""
    with connection.connection.driver_connection.cursor() as cursor:
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def write_records(inserts: list[tuple], updates: list[tuple]) -> None:
    """Insert and update records rows (id, kind, bucket, values JSON text, hlcs JSON text, position, device,
    parent id).

    The device is written when a record is created, never changed by a later update.

    The rows are already made (wire.record_columns): SQLAlchemy's insert() turned each row's
    parameters over again and encoded its JSON itself, more time than the insert.
    """
    connection = db.session.connection()
    mark = placeholder(connection)
    json_mark = f"{mark}::jsonb" if connection.dialect.name == "postgresql" else mark
    if inserts and connection.dialect.name == "postgresql":
        # One COPY, not one INSERT a row (as casebook.py writes new cases): 20 new records cost the driver
        # 0.16 ms against 0.31 and the database 0.27-0.30 ms against 0.37-0.43 (means of 300 commits, 2026-12-06).
        copy_rows(connection, "records", _RECORD_COLUMNS, inserts)
    elif inserts:
        connection.exec_driver_sql(f"INSERT INTO records ({', '.join(_RECORD_COLUMNS)}) "
                                   f"VALUES ({', '.join([mark] * len(_RECORD_COLUMNS))})", inserts)
    if updates:
        connection.exec_driver_sql(
            f"UPDATE records SET kind = {mark}, bucket = {mark}, field_values = {json_mark}, "
            f"field_hlcs = {json_mark}, position = {mark}, parent_id = {mark} WHERE id = {mark}",
            [(kind, bucket, values, hlcs, position, parent, rid)
             for rid, kind, bucket, values, hlcs, position, _device, parent in updates])


def bucket_page(bucket: str, after: int, limit: int) -> list[Any]:
    """At most ``limit`` rows (kind, id, bucket, values text, hlcs text, position) of a bucket after a cursor."""
    connection = db.session.connection()
    return connection.exec_driver_sql(_pull_sql(connection), (bucket, after, bucket, after, limit)).all()


def _pull_sql(connection) -> str:
    """The records of a bucket after a cursor, in feed order, at most a limit.

    Hazard: a pull that costs as much as the whole feed. With just ``bucket = b AND position > c``
    PostgreSQL may scan the unique index on position from the cursor and filter on the bucket, which
    reads every later record of every bucket: for a grid whose records are old, a pull of its 100
    fresh changes read 500,000 rows of a 1M store (bench/sync_bench.py). The row comparison says the
    same thing again, but only ix_records_bucket_position can serve it, so the planner keeps to it.
    SQLite needs the plain conditions to use that index as a range, hence both.
    """
    mark, as_text = placeholder(connection), _as_text(connection)
    return (f"SELECT kind, id, bucket, field_values{as_text}, field_hlcs{as_text}, position FROM records "
            f"WHERE bucket = {mark} AND position > {mark} AND (bucket, position) > ({mark}, {mark}) "
            f"ORDER BY position LIMIT {mark}")


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]

"""The feed: every SQL statement of push and pull, sent straight to the driver.

A record's ``position`` is raised every time it changes, and a pull asks for the positions above
its cursor in one bucket. The single ``feed`` row holds the last position handed out, and it is
also the lock that writers queue on.

Hazard: a pull that skips a commit. With plain sequences, a transaction that
took position 7 can commit after another reader has already seen position 8,
and a cursor at 8 never sees 7. Here positions are taken under the feed lock
and the lock is held until commit, so they become visible in the order they
were handed out: a reader that sees position n sees every position below it.
The price is that pushes are serialised while they write; a push of 500
changes holds the lock for milliseconds.

Speed: these statements go to the driver (``exec_driver_sql``) with ready JSON text, because
SQLAlchemy's select(), insert() and update() of a few hundred rows cost more than the database's
part of the work (docs/benchmarks.md). The JSON columns are read as text and decoded with
`loads`, the function the engine is configured with (server/__init__.py), one record at a time.
"""

from __future__ import annotations

from typing import Any, Iterator

from ..db import db
from .wire import loads

__all__ = ["lock", "raise_to", "held_states", "write_records", "bucket_page", "loads"]


def placeholder(connection) -> str:
    """The driver's parameter placeholder: psycopg's %s, sqlite3's ?."""
    return "%s" if connection.dialect.paramstyle in ("format", "pyformat") else "?"


def _as_text(connection) -> str:
    """How a JSON column is read as its text: jsonb::text on PostgreSQL, the column itself on SQLite."""
    return "::text" if connection.dialect.name == "postgresql" else ""


def lock() -> int:
    """Take the feed lock for the rest of the transaction; return the last position."""
    # One statement: it runs once per push. (RETURNING: PostgreSQL, and SQLite since 3.35.)
    return db.session.connection().exec_driver_sql(
        "UPDATE feed SET position = position WHERE id = 1 RETURNING position").scalar_one()


def raise_to(position: int) -> None:
    """Record the last position handed out (under the lock, before commit)."""
    connection = db.session.connection()
    connection.exec_driver_sql(f"UPDATE feed SET position = {placeholder(connection)} WHERE id = 1", (position,))


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
    if inserts:
        connection.exec_driver_sql(
            "INSERT INTO records (id, kind, bucket, field_values, field_hlcs, position, device_id, parent_id) "
            f"VALUES ({mark}, {mark}, {mark}, {json_mark}, {json_mark}, {mark}, {mark}, {mark})", inserts)
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

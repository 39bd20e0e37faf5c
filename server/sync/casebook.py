"""The store's cases: one ``cases`` row per event, kept by the write path, and the case numbers.

A case's state is `shared.case.fold_case` over its event and actions; that stays the one source
of the rules. The ``cases`` table (server/models.py, `CaseRow`) is a cache of the fold's output
that the pages filter, order, page and count in SQL. It is written by `refold`, which
`apply.apply_changes` calls in the transaction that writes the records, for the
events the batch touched, and by `rebuild` (``flask cases rebuild``), which folds every event
again from the records, streamed in chunks so memory stays flat. A property test proves that the
table after any sequence of pushes equals a rebuild (tests/server/test_casebook.py).

What is not here: overdue (it depends on the clock: asked at read time from ``deadline_ms``), and
the place above the grid (community, street, district): the queue and the statistics resolve
those from the reference data when they read, so redrawing the tree of places rewrites no case.

**Case numbers.** An event gets a number a person can read out on the phone when it first
reaches the server: ``YYYYMMDD-NNNN``, the day in the district's time (``GRIDPATROL_UTC_OFFSET``)
and the day's sequence (four digits, more past 9,999). The server writes it into the event record
as the field ``case_number``, stamped with its own HLC, so tablets pull it like any other write;
a push that carries it is refused (apply.py). On SQLite (one writer at a time) the day's sequence is
one ``case_numbers`` row per day, raised by an atomic upsert.

On PostgreSQL a row that every push raised was the city's one lock again (issue 19): a push held it
from the raise to its commit, or, raised in a short transaction of its own, across the Python between
its statements, which under a busy worker's GIL was milliseconds; a quarter of the active backends of
400 tablets waited on it. So the numbers come from a sequence, ``case_number_seq`` (migration 0015),
which hands out values without a lock or a transaction, and the day's nth number is ``value - base``,
where the day's ``base`` (table ``case_number_days``) is the sequence's value before the day's first
number. Why no number is given twice: every value of the sequence is handed out once, and a day's
numbers come from values above its base, because the base is read from the sequence and committed
(`_day_base`) before the first writer takes a value against it, and every other writer reads it
committed before it takes one. Two days share the sequence, so a day's numbers can have gaps (around
midnight, while one writer still numbers for the day before), as they have when a batch that took
numbers rolls back; they still grow in arrival order. After a crash the sequence never goes back to a
value a committed batch used: the batch's commit flushes the WAL that logged it.

**Counts.** The queue shows how many cases of each status its filters hold. Counting them in SQL reads
one index entry per case (100,000 for a street of a 1,000,000-case store), so ``case_counts``
(`CaseCount`, migration 0013) keeps the number of live (not deleted) cases per grid and status.
`refold` writes it in the same transaction as the rows, as a delta: each refolded case takes one from
its old row's (grid, status) and adds one to its new row's. It is an upsert of ``count + delta``,
so two writers never read and rewrite one count. Why two writers never race on a count: a case's
grid is its event's bucket (``grid:<code>``), and apply.py folds a case only under the locks of the
bucket its event was read in and of the one it is written to (server/sync/feed.py, "Which buckets"),
so a grid's counts are written only by the holder of that grid's lock (a category change holds the
whole feed). `recount` counts them again from the table, after a `rebuild`.

**What the table costs a push** (issue 15 asks ≤ 1.3× a push without it; docs/benchmarks.md, "Cases
at district scale", says how far that is). The rows are written in the pushing transaction, so each
part is kept small: what the batch holds is folded from memory (`refold`'s ``known``); a case without
actions takes the fold's first state (shared/case.py keeps it); a new row is inserted without a look
for an old one, by COPY on PostgreSQL; a stored row is updated in the columns that changed; the table
keeps only the indexes the pages read by (migration 0014), and the keyword search's trigram index is
kept beside the write path (server/cases/search.py). What is left is the insert itself, into a
table of seven b-trees, and the fold of each case the batch touched.

Hazard: reference data under old cases. The fold reads the category's deadline hours for
deadlines an action does not carry. When a category record changes, `refold_category` folds that
category's cases again in the same transaction, so the table never keeps a deadline the fold
would no longer give.
"""

from __future__ import annotations

from datetime import datetime
from collections.abc import Iterable, Mapping
from typing import Any

from shared.case import INERT_ACTIONS, Action, CaseState, fold_case
from shared.hlc import HLC, HLCError, ms_or_none
from shared.records import REF_BUCKET

from ..config import parse_offset
from .feed import copy_rows
from .wire import loads

NUMBER_SEQUENCE = "case_number_seq"  # PostgreSQL: where case numbers come from (module doc, migration 0015)

__all__ = ["CASE_COLUMNS", "NO_DEADLINE", "refold", "move", "refold_category", "rebuild", "recount", "status_counts",
           "number_events", "case_number", "row_of", "upsert", "reference_by_code", "children", "param_mark",
           "text_cast", "NOT_BY_KIND", "INERT_ACTIONS"]

# A time after every deadline (year 9999 is 253402300799999 ms): cases without one sort last.
NO_DEADLINE = 2**62
CASE_COLUMNS = (
    "event_id", "case_number", "bucket", "grid", "category", "reporter", "deleted", "open", "status", "resolution",
    "unit", "urgent", "micro", "reported_ms", "deadline_ms", "due_sort", "dispatched_ms", "rectified_ms",
    "closed_ms", "failures", "supervised", "assessment", "assessment_unit", "extensions", "extension_asked_ms",
    "sent_back", "duplicate_of", "lat", "lon", "search", "position",
)
_CHUNK = 500
# Hazard: a planner that reads a kind's index. With ``kind = 'event'`` beside a condition on the id or the
# parent, SQLite without statistics (it never gathers them by itself) walks ix_records_kind, every event or
# every case action of the store, for each chunk: a rebuild of 100,000 events took 130 s instead of 10.
# ``kind || ''`` is the same test that no index serves, so the id's or the parent's index is used.
NOT_BY_KIND = "kind || ''"


def param_mark(connection) -> str:
    return "%s" if connection.dialect.paramstyle in ("format", "pyformat") else "?"


def among(connection, column: str, values: list) -> tuple[str, tuple]:
    """The condition "column is one of values" and its parameters: ``= ANY(array)`` on PostgreSQL (one
    parameter: planning ``IN`` of 500 parameters cost more than the lookups), ``IN (?, …)`` on SQLite."""
    if connection.dialect.name == "postgresql":
        return f"{column} = ANY(%s)", (list(values),)
    return f"{column} IN ({', '.join('?' * len(values))})", tuple(values)


def text_cast(connection) -> str:
    return "::text" if connection.dialect.name == "postgresql" else ""


def _wall_ms(hlc: str) -> int | None:
    try:
        return HLC.parse(hlc).wall_ms
    except HLCError:
        return None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _ms(text: Any) -> int | None:
    """ms_or_none, without the call for the usual None."""
    return None if text is None else ms_or_none(text)


def row_of(event_id: str, bucket: str, event: Mapping[str, Any], state: CaseState, position: int) -> tuple:
    """The ``cases`` row (CASE_COLUMNS, in order) of a folded case.

    Speed: run for every case a push writes (500 for a push of new events), so it reads each value
    once and skips the parsing of what is absent (a new case has no timeline, deadline or closing).
    """
    dispatched = rectified = None  # the first dispatch's wall time, the last rectification's
    if state.timeline:
        first = last = None
        for entry in state.timeline:
            if entry.applied:
                if entry.action == "dispatch" and first is None:
                    first = entry.hlc
                elif entry.action == "rectify":
                    last = entry.hlc
        dispatched = None if first is None else _wall_ms(first)
        rectified = None if last is None else _wall_ms(last)
    get = event.get
    deleted = get("_deleted") is True
    deadline = _ms(state.deadline)
    location = get("location")
    # type() first: isinstance against an ABC costs more than the rest of the line.
    lat, lon = (_number(location.get("lat")), _number(location.get("lon"))) \
        if type(location) is dict or isinstance(location, Mapping) else (None, None)
    number = get("case_number")
    number = number if isinstance(number, str) else None
    description, address = get("description"), get("address")
    search = " ".join([part for part in (number, description, address) if isinstance(part, str) and part])
    reporter = get("reporter")
    return (
        event_id, number, bucket, str(get("grid") or ""), str(get("category") or ""),
        reporter if isinstance(reporter, str) else None,
        deleted, state.is_open and not deleted, state.status, state.resolution, state.unit, state.urgent,
        state.micro, _ms(get("reported_at")), deadline, NO_DEADLINE if deadline is None else deadline,
        dispatched, rectified, _ms(state.closed_at), state.failed_verifications, state.supervised,
        state.assessment_flag, state.assessment_unit, state.extensions, _ms(state.extension_asked), state.sent_back,
        state.duplicate_of, lat, lon, search.casefold(), position,
    )


def _insert(connection, table: str, columns: tuple[str, ...], rows: list[tuple], tail: str = "") -> None:
    """``INSERT INTO table (columns) VALUES (…) tail`` of each row, as one executemany.

    Speed: one statement of many rows (``VALUES (…), (…), …``) was slower on both engines: 6× on
    PostgreSQL for 500 cases rows (psycopg pipelines an executemany; 15,000 parameters in one
    statement cost more to send and plan), and on SQLite, where parsing it cost more than stepping
    one prepared statement per row.
    """
    if rows:
        mark = param_mark(connection)
        connection.exec_driver_sql(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))}) {tail}", rows)


def _insert_new(connection, rows: list[tuple]) -> None:
    """Insert the cases rows of new events (no row of theirs is stored).

    Speed: on PostgreSQL a COPY, in the writing transaction (the SQLAlchemy connection's own psycopg
    connection): 500 rows into a 20,000-case table in 24 ms against 41 ms for the pipelined
    executemany (medians of 9, rolled back; docs/benchmarks.md, "2026-12-06, fourth session").
    SQLite steps one prepared INSERT per row, which no COPY would beat.
    """
    if not rows:
        return
    if connection.dialect.name != "postgresql":
        _insert(connection, "cases", CASE_COLUMNS, rows)
        return
    copy_rows(connection, "cases", CASE_COLUMNS, rows)


def upsert(connection, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """Insert rows of a folded cache table (``cases``, ``disputes``), replacing each row of the same first column."""
    updates = ", ".join(f"{name} = excluded.{name}" for name in columns[1:])
    _insert(connection, table, columns, rows, f"ON CONFLICT ({columns[0]}) DO UPDATE SET {updates}")


def reference_by_code(connection, kind: str) -> dict[str, dict]:
    """The live reference records of a kind (categories, dispute kinds), their plain values by code."""
    rows = connection.exec_driver_sql(
        f"SELECT field_values{text_cast(connection)} FROM records WHERE kind = {param_mark(connection)} "
        f"AND bucket = {param_mark(connection)}", (kind, REF_BUCKET))
    found = {}
    for (text,) in rows:
        values = loads(text)
        if isinstance(values.get("code"), str) and not values.get("_deleted"):
            found[values["code"]] = values
    return found


def _categories(connection) -> dict[str, dict]:
    """The categories' plain values by code (the fold reads their deadline hours)."""
    return reference_by_code(connection, "category")


def children(connection, parents: list[tuple], kind: str) -> tuple[dict[str, list[Action]], dict[str, int]]:
    """The append-only children of a kind (case actions, dispute steps) of parents given as (id, bucket, values,
    position), read by parent: their Actions by parent id, and each parent's position raised to its latest child's."""
    mark, as_text = param_mark(connection), text_cast(connection)
    ids = [parent[0] for parent in parents]
    actions: dict[str, list[Action]] = {parent_id: [] for parent_id in ids}
    positions = {parent[0]: parent[3] for parent in parents}
    if not ids:
        return actions, positions
    parent_in, parameters = among(connection, "parent_id", ids)
    rows = connection.exec_driver_sql(
        f"SELECT parent_id, id, field_values{as_text}, field_hlcs{as_text}, position FROM records "
        f"WHERE {parent_in} AND {NOT_BY_KIND} = {mark}", (*parameters, kind))
    for parent, rid, values, hlcs, position in rows:
        if parent not in actions:
            continue
        values, hlcs = loads(values), loads(hlcs)
        actions[parent].append(Action.from_state(rid, {name: (value, hlcs[name]) for name, value in values.items()}))
        positions[parent] = max(positions[parent], position)
    return actions, positions


class _Categories:
    """The categories by code, read from the store when a fold first needs them: a case without actions
    reads none (its fold is its first state), so a push of new events alone does not read them."""

    def __init__(self, connection):
        self.connection, self.found = connection, None

    def get(self, code: Any) -> dict | None:
        if self.found is None:
            self.found = _categories(self.connection)
        return self.found.get(code)


def _fold_rows(connection, events: list[tuple], categories: Mapping[str, dict] | _Categories) -> list[tuple]:
    """The cases rows of events given as (id, bucket, values, position), their actions read by parent."""
    if not events:
        return []
    actions, positions = children(connection, events, "case_action")
    rows = []
    for event_id, bucket, values, _position in events:
        done = actions[event_id]
        category = categories.get(values.get("category")) if done else None  # no action: no rule reads it
        rows.append(row_of(event_id, bucket, values, fold_case(values, done, category=category), positions[event_id]))
    return rows


_GRID, _STATUS, _DELETED = CASE_COLUMNS.index("grid"), CASE_COLUMNS.index("status"), CASE_COLUMNS.index("deleted")


def _write(connection, rows: list[tuple]) -> None:
    upsert(connection, "cases", CASE_COLUMNS, rows)


def _old_rows(connection, event_ids: list[str]) -> dict[str, tuple]:
    """The stored cases rows (CASE_COLUMNS) of these events."""
    if not event_ids:
        return {}
    event_in, parameters = among(connection, "event_id", event_ids)
    return {row[0]: tuple(row) for row in connection.exec_driver_sql(
        f"SELECT {', '.join(CASE_COLUMNS)} FROM cases WHERE {event_in}", parameters)}


def _update(connection, rows: list[tuple], old: Mapping[str, tuple]) -> None:
    """Write rows over the stored ones, setting only the columns that changed (a row not stored is upserted).

    Speed: an upsert sets every column, so the database rewrites the row's entry in every index of the
    table; a comment on a case changes its position alone, which no index holds (PostgreSQL then
    updates the row in place, without touching an index). Rows are grouped by the columns they change,
    one executemany per group.
    """
    mark = param_mark(connection)
    missing, groups = [], {}
    for row in rows:
        was = old.get(row[0])
        if was is None:
            missing.append(row)
            continue
        changed = tuple(i for i in range(1, len(row)) if row[i] != was[i])
        if changed:
            groups.setdefault(changed, []).append((*(row[i] for i in changed), row[0]))
    _write(connection, missing)
    for changed, params in groups.items():
        sets = ", ".join(f"{CASE_COLUMNS[i]} = {mark}" for i in changed)
        connection.exec_driver_sql(f"UPDATE cases SET {sets} WHERE event_id = {mark}", params)


def _count_deltas(old: Mapping[str, tuple], rows: list[tuple]) -> dict[tuple[str, str], int]:
    """What writing rows over the old ones does to each (grid, status) count of live cases."""
    deltas: dict[tuple[str, str], int] = {}
    for row in rows:
        was = old.get(row[0])
        if was is not None and not was[_DELETED]:
            key = (was[_GRID], was[_STATUS])
            deltas[key] = deltas.get(key, 0) - 1
        if not row[_DELETED]:
            key = (row[_GRID], row[_STATUS])
            deltas[key] = deltas.get(key, 0) + 1
    return {key: delta for key, delta in deltas.items() if delta}


def _add_counts(connection, deltas: Mapping[tuple[str, str], int]) -> None:
    """Add the deltas to case_counts: an upsert of count + delta, in key order."""
    _insert(connection, "case_counts", ("grid", "status", "count"),
            [(*key, delta) for key, delta in sorted(deltas.items())],
            "ON CONFLICT (grid, status) DO UPDATE SET count = case_counts.count + excluded.count")


def refold(connection, event_ids: Iterable[str], known: Mapping[str, tuple[str, dict, int]] | None = None,
           created: Iterable[str] = ()) -> int:
    """Fold the given events again from the stored records, write their rows and their counts; returns how many.

    Called in the writing transaction after the records are written, under the locks of the events'
    buckets (the counts rely on it, see the module's docstring). An id that is not a stored
    event is skipped (a case action may name an event that has not arrived yet).

    ``known``: events the caller holds, as ``{id: (bucket, plain values, position)}``; they are folded
    from those values instead of being read back and decoded (their actions are still read: some may
    have arrived before them), at the position given, or their latest action's if that is higher.
    ``created``: those among them the batch has just created: they have no cases row yet, so theirs
    is inserted without looking for an old one.
    """
    wanted = sorted(set(event_ids))
    if not wanted:
        return 0
    known, created = known or {}, frozenset(created)
    as_text = text_cast(connection)
    categories = _Categories(connection)
    written = 0
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start:start + _CHUNK]
        events = [(rid, *known[rid]) for rid in chunk if rid in known]
        unknown = [rid for rid in chunk if rid not in known]
        if unknown:
            id_in, parameters = among(connection, "id", unknown)
            events += [(rid, bucket, loads(values), position) for rid, bucket, values, position in
                       connection.exec_driver_sql(
                           f"SELECT id, bucket, field_values{as_text}, position FROM records "
                           f"WHERE {id_in} AND {NOT_BY_KIND} = 'event'", parameters)]
        rows = _fold_rows(connection, events, categories)
        new = [row for row in rows if row[0] in created]
        changed = [row for row in rows if row[0] not in created]
        old = _old_rows(connection, [row[0] for row in changed])
        _insert_new(connection, new)
        _update(connection, changed, old)
        _add_counts(connection, _count_deltas(old, rows))
        written += len(rows)
    return written


def move(connection, positions: Mapping[str, int]) -> None:
    """Raise the feed position of stored cases whose batch brought them only new inert actions (comments).

    Folding such a case again would give its row as stored but the position (shared/case.py,
    INERT_ACTIONS, a law tests/shared/test_case.py proves), so its actions are not read and it is not
    folded: ``positions`` gives each event id the position of the batch's latest action on it, above
    every stored one (positions only grow under the bucket's lock). Its counts do not change.
    """
    if positions:
        mark = param_mark(connection)
        connection.exec_driver_sql(f"UPDATE cases SET position = {mark} WHERE event_id = {mark}",
                                   [(position, event_id) for event_id, position in sorted(positions.items())])


def refold_category(connection, codes: Iterable[str]) -> int:
    """Fold again every case of the given categories (after their deadline hours changed)."""
    codes = sorted(set(codes))
    if not codes:
        return 0
    mark = param_mark(connection)
    ids = [rid for (rid,) in connection.exec_driver_sql(
        f"SELECT event_id FROM cases WHERE category IN ({', '.join([mark] * len(codes))})", tuple(codes))]
    return refold(connection, ids)


def _events_after(connection, after: str, limit: int) -> list[tuple]:
    mark, as_text = param_mark(connection), text_cast(connection)
    return [(rid, bucket, loads(values), position) for rid, bucket, values, position in connection.exec_driver_sql(
        f"SELECT id, bucket, field_values{as_text}, position FROM records WHERE {NOT_BY_KIND} = 'event' AND id > {mark} "
        f"ORDER BY id LIMIT {mark}", (after, limit))]


def rebuild(connection, *, chunk: int = 2000, progress=None) -> int:
    """Fold every event again, ``chunk`` events at a time, and drop the rows of no stored event; returns the count.

    Streamed by id (keyset), so memory does not grow with the store. Each row is upserted rather than
    the table emptied first, so the table is never empty for a reader of the pages.
    ``progress(done)`` is called after each chunk. The caller commits.
    """
    categories = _categories(connection)
    done, after = 0, ""
    while True:
        events = _events_after(connection, after, chunk)
        if not events:
            break
        _write(connection, _fold_rows(connection, events, categories))
        done += len(events)
        after = events[-1][0]
        if progress is not None:
            progress(done)
    # NOT EXISTS, an anti-join on the records' key: PostgreSQL ran ``event_id NOT IN (SELECT id …)`` as a plain
    # subplan once the million ids outgrew work_mem, a scan of them per case (over 6 minutes at 1M, unfinished).
    connection.exec_driver_sql("DELETE FROM cases WHERE NOT EXISTS (SELECT 1 FROM records "
                               "WHERE records.id = cases.event_id AND records.kind = 'event')")
    return done


def recount(connection) -> None:
    """Count case_counts again from the cases table: after `rebuild` (``flask cases rebuild`` calls both, in
    one transaction; migration 0004 runs a rebuild before this table exists), and in migration 0013."""
    connection.exec_driver_sql("DELETE FROM case_counts")
    connection.exec_driver_sql("INSERT INTO case_counts (grid, status, count) SELECT grid, status, count(*) "
                               "FROM cases WHERE NOT deleted GROUP BY grid, status")


def status_counts(connection, grids: Iterable[str] | None) -> dict[str, int]:
    """The live cases per status in these grids (None: every grid), from case_counts."""
    if grids is None:
        rows = connection.exec_driver_sql("SELECT status, sum(count) FROM case_counts GROUP BY status")
    else:
        grids = sorted(set(grids))
        if not grids:
            return {}
        grid_in, parameters = among(connection, "grid", grids)
        rows = connection.exec_driver_sql(
            f"SELECT status, sum(count) FROM case_counts WHERE {grid_in} GROUP BY status", parameters)
    return {status: int(count) for status, count in rows if count}


def case_number(day: str, sequence: int) -> str:
    """The case number of a day's nth event: ``20261206-0042``."""
    return f"{day}-{sequence:04d}"


def number_events(connection, count: int, now_ms: int, utc_offset: str) -> list[str]:
    """Hand out ``count`` case numbers for events arriving now, in the batch's transaction; in order."""
    if count <= 0:
        return []
    day = datetime.fromtimestamp(now_ms / 1000, parse_offset(utc_offset)).strftime("%Y%m%d")
    if connection.dialect.name == "postgresql":
        base = _day_base(connection, day)
        taken = sorted(value for (value,) in connection.exec_driver_sql(
            f"SELECT nextval('{NUMBER_SEQUENCE}') FROM generate_series(1, %s)", (count,)))
        return [case_number(day, value - base) for value in taken]
    mark = param_mark(connection)
    last = connection.exec_driver_sql(
        f"INSERT INTO case_numbers (day, last) VALUES ({mark}, {mark}) "
        f"ON CONFLICT (day) DO UPDATE SET last = case_numbers.last + excluded.last RETURNING last",
        (day, count)).scalar_one()
    return [case_number(day, n) for n in range(last - count + 1, last + 1)]


def _day_base(connection, day: str) -> int:
    """PostgreSQL: the day's base, the sequence's value before the day's first number (module doc).

    Fixed once per day by the first writer that needs it, in a transaction of its own, committed before
    any number of the day is taken from it; then kept beside the pooled connection (a new database is
    a new connection, so a test's fresh store never sees another's base).
    """
    kept = connection.info.get("gridpatrol.case_number_base")
    if kept is not None and kept[0] == day:
        return kept[1]
    with connection.engine.begin() as own:
        own.exec_driver_sql(
            f"INSERT INTO case_number_days (day, base) "
            f"SELECT %s, CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM {NUMBER_SEQUENCE} "
            f"ON CONFLICT (day) DO NOTHING", (day,))
        base = own.exec_driver_sql("SELECT base FROM case_number_days WHERE day = %s", (day,)).scalar_one()
    connection.info["gridpatrol.case_number_base"] = (day, base)
    return base


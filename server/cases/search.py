"""Keyword search of the cases: a trigram index kept beside the write path, caught up from the feed.

The queue's keyword search is "the case's search text (case number, description, address) contains
the word" (service.py). No b-tree serves ``LIKE '%word%'``; a trigram index does, but kept in the
pushing transaction it is one of the dearest parts of a push (docs/benchmarks.md, "Cases at district
scale"): SQLite's FTS5 trigram table kept by triggers on ``cases`` made every write of the table nine
times dearer, and PostgreSQL's GIN trigram index on ``cases.search`` (migration 0008) cost a push of
500 new events 10-25 ms of its 50-90. So on both engines the index is kept outside the write path, the
way the tenant index catches up (server/houses/index.py):

* ``case_search`` (migration 0013 on SQLite; 0014 on PostgreSQL, or 0013 on a store created since)
  holds one entry per indexed case and one more row, ``event_id`` ``"*"``, whose ``position`` is the
  mark: every event record written at or below it is indexed with the search text its case has now.
  SQLite: ``case_search`` gives each case a stable integer (``id``), the rowid of its entry in
  ``case_search_fts``, an FTS5 table with the trigram tokenizer. PostgreSQL: ``case_search`` holds the
  text itself, under a GIN trigram index (pg_trgm).
* `catch_up`, which a search calls first, indexes the cases of the events written above the mark up
  to the feed's horizon (server/sync/feed.py) and raises the mark. Only an event's own writes change
  a case's search text, and each raises the event record's position, so the events above the mark
  are exactly the cases whose entry may be missing or old.
* `word_condition`: for a word of three characters or more, a case matches when its entry matches
  and its event is at or below the mark, or when its event is above the mark (a push that committed
  after the catch-up) and its own text matches. So a search never misses a case pushed a moment ago,
  nor finds one by words its event no longer has. Shorter words (a trigram index cannot serve them)
  read ``cases.search`` as before, and so, on SQLite, do words with ``%``, ``_`` or ``\\`` (FTS5
  serves no LIKE with ESCAPE; PostgreSQL's index does).
* `rebuild` (``flask cases rebuild``, migrations 0013 and 0014) indexes every case again.

Hazard: two catch-ups at once (PostgreSQL; SQLite has one writer). Each reads the text of the cases
below its horizon after taking it, so it never indexes a text older than a push at or below that
horizon; but the one with the lower horizon may commit last. An entry is therefore replaced only by
one of an equal or higher position, and the mark is only raised, never lowered.

The SQLite entries are ids, not rowids of ``cases``: a VACUUM may renumber the rowids of a table
without an INTEGER PRIMARY KEY.
"""

from __future__ import annotations

from sqlalchemy import column, select, table, union_all
from sqlalchemy.orm import aliased

from ..db import db
from ..models import CaseRow, Record
from ..sync import feed

__all__ = ["MARK", "MIN_WORD", "create", "drop", "in_use", "catch_up", "rebuild", "word_condition"]

MARK = "*"  # the event_id of the mark's row
MIN_WORD = 3  # a trigram index serves words of three characters or more
_CHUNK = 1000
_WILDCARDS = ("%", "_", "\\")
_ENTRIES = table("case_search", column("id"), column("event_id"), column("position"), column("search"))
_FTS = table("case_search_fts", column("rowid"), column("search"))


def in_use(connection) -> bool:
    """Whether the store keeps this index: SQLite and PostgreSQL do."""
    return connection.dialect.name in ("sqlite", "postgresql")


def _postgresql(connection) -> bool:
    return connection.dialect.name == "postgresql"


def create(connection) -> None:
    """The index's tables, if they are not there (migrations 0013 and 0014)."""
    if _postgresql(connection):
        connection.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        connection.exec_driver_sql("CREATE TABLE IF NOT EXISTS case_search (event_id VARCHAR(36) PRIMARY KEY, "
                                   "position BIGINT NOT NULL, search TEXT NOT NULL DEFAULT '')")
        connection.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_case_search_trgm ON case_search "
                                   "USING gin (search gin_trgm_ops)")
    elif in_use(connection):
        connection.exec_driver_sql("CREATE TABLE IF NOT EXISTS case_search (id INTEGER PRIMARY KEY, "
                                   "event_id VARCHAR(36) NOT NULL UNIQUE, position BIGINT NOT NULL)")
        connection.exec_driver_sql("CREATE VIRTUAL TABLE IF NOT EXISTS case_search_fts "
                                   "USING fts5(search, tokenize='trigram')")


def exists(connection) -> bool:
    """Whether the index's tables are there (a PostgreSQL store migrated through 0013 before 0014 has none)."""
    if not in_use(connection):
        return False
    if _postgresql(connection):
        return connection.exec_driver_sql("SELECT to_regclass('case_search') IS NOT NULL").scalar()
    return connection.exec_driver_sql(
        "SELECT count(*) FROM sqlite_master WHERE name = 'case_search'").scalar() > 0


def drop(connection) -> None:
    if in_use(connection):
        if not _postgresql(connection):
            connection.exec_driver_sql("DROP TABLE IF EXISTS case_search_fts")
        connection.exec_driver_sql("DROP TABLE IF EXISTS case_search")


def _mark(connection) -> int:
    mark = feed.placeholder(connection)
    found = connection.exec_driver_sql(f"SELECT position FROM case_search WHERE event_id = {mark}", (MARK,)).scalar()
    return found or 0


def _index_between(connection, after: int, upto: int) -> int:
    """Index the cases of the event records written in (after, upto], as their search text is now; how many.

    PostgreSQL: one statement, in the database. SQLite: streamed by position, ``_CHUNK`` at a time, so
    memory does not grow with the store.
    """
    if _postgresql(connection):
        return connection.exec_driver_sql(
            "INSERT INTO case_search (event_id, position, search) "
            "SELECT r.id, r.position, c.search FROM records r JOIN cases c ON c.event_id = r.id "
            "WHERE r.position > %s AND r.position <= %s AND r.kind || '' = 'event' "
            "ON CONFLICT (event_id) DO UPDATE SET position = excluded.position, search = excluded.search "
            "WHERE case_search.position <= excluded.position", (after, upto)).rowcount
    count = 0
    while True:
        chunk = connection.exec_driver_sql(
            "SELECT r.id, r.position, c.search FROM records r JOIN cases c ON c.event_id = r.id "
            "WHERE r.position > ? AND r.position <= ? AND r.kind || '' = 'event' ORDER BY r.position LIMIT ?",
            (after, upto, _CHUNK)).all()
        if not chunk:
            return count
        connection.exec_driver_sql(
            "INSERT INTO case_search (event_id, position) VALUES (?, ?) "
            "ON CONFLICT (event_id) DO UPDATE SET position = excluded.position", [tuple(row[:2]) for row in chunk])
        marks = ", ".join("?" * len(chunk))
        ids = dict(connection.exec_driver_sql(f"SELECT event_id, id FROM case_search WHERE event_id IN ({marks})",
                                              tuple(row[0] for row in chunk)).all())
        connection.exec_driver_sql(f"DELETE FROM case_search_fts WHERE rowid IN ({marks})",
                                   tuple(ids[row[0]] for row in chunk))
        connection.exec_driver_sql("INSERT INTO case_search_fts (rowid, search) VALUES (?, ?)",
                                   [(ids[event_id], search) for event_id, _position, search in chunk])
        count += len(chunk)
        after = chunk[-1][1]


def _set_mark(connection, position: int) -> None:
    """Raise the mark to position (never lower it: see "Hazard: two catch-ups at once")."""
    mark = feed.placeholder(connection)
    connection.exec_driver_sql(f"INSERT INTO case_search (event_id, position) VALUES ({mark}, {mark}) "
                               "ON CONFLICT (event_id) DO UPDATE SET position = excluded.position "
                               "WHERE case_search.position < excluded.position", (MARK, position))


def catch_up() -> int | None:
    """Index the cases of every event written above the mark and raise it; commits when it wrote.

    Answers the mark (None: the store keeps no such index). Level with the feed, it reads two rows.
    """
    connection = db.session.connection()
    if not in_use(connection):
        return None
    mark = _mark(connection)
    if feed.last_position() <= mark:
        return mark
    upto = feed.horizon()
    if upto > mark:
        _index_between(connection, mark, upto)
        _set_mark(connection, upto)
        db.session.commit()
        mark = upto
    return mark


def rebuild(connection, upto: int) -> int:
    """Empty the index and index every case of an event written at or below ``upto``; how many. No commit."""
    if not in_use(connection):
        return 0
    if not _postgresql(connection):
        connection.exec_driver_sql("DELETE FROM case_search_fts")
    connection.exec_driver_sql("DELETE FROM case_search")
    count = _index_between(connection, 0, upto)
    _set_mark(connection, upto)
    return count


def word_condition(word: str, pattern: str, mark: int | None):
    """The condition "the case's search text contains the word", served by the index where it can be.

    ``pattern`` is the LIKE pattern of the word (wildcards escaped with ``\\``), ``mark`` what
    `catch_up` answered (None: no index, the text is read).
    """
    plain = CaseRow.search.like(pattern, escape="\\")
    if mark is None or len(word) < MIN_WORD:
        return plain
    # The events written after the mark: their entries may be missing or old, their own text is read.
    fresh = select(Record.id).where(Record.position > mark, Record.kind.concat("") == "event")
    if db.session.get_bind().dialect.name == "postgresql":
        indexed = select(_ENTRIES.c.event_id).where(_ENTRIES.c.search.like(pattern, escape="\\"),
                                                    _ENTRIES.c.event_id.not_in(fresh))
    elif any(char in word for char in _WILDCARDS):
        return plain
    else:
        indexed = select(_ENTRIES.c.event_id).where(
            _ENTRIES.c.id.in_(select(_FTS.c.rowid).where(_FTS.c.search.like(f"%{word}%"))),
            _ENTRIES.c.event_id.not_in(fresh))
    recent = aliased(CaseRow)
    unindexed = select(recent.event_id).where(recent.event_id.in_(fresh), recent.search.like(pattern, escape="\\"))
    return CaseRow.event_id.in_(union_all(indexed, unindexed))

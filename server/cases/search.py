"""Keyword search of the cases on SQLite: a trigram index kept beside the write path, caught up from the feed.

The queue's keyword search is "the case's search text (case number, description, address) contains
the word" (service.py). On PostgreSQL a GIN trigram index on ``cases.search`` serves that LIKE
(migration 0008). SQLite has no such index on a plain table: a search read the whole table, 2.5-3 s
on a store of 1,000,000 cases (docs/benchmarks.md, "Cases at district scale"). Its FTS5 trigram
tokenizer answers ``LIKE '%word%'`` from an index, but kept by triggers on ``cases`` it made every
write of the table nine times dearer. So the index is kept outside the write path, the way the tenant
index catches up (server/houses/index.py):

* ``case_search`` (migration 0013) gives each indexed case a stable integer (its ``id``, the rowid
  of its entry in ``case_search_fts``, an FTS5 table with the trigram tokenizer), and holds one more
  row, ``event_id`` ``"*"``, whose ``position`` is the mark: every event record written at or below
  it is indexed with the search text its case has now.
* `catch_up`, which a search calls first, indexes the cases of the events written above the mark up
  to the feed's horizon (server/sync/feed.py) and raises the mark. Only an event's own writes change
  a case's search text, and each raises the event record's position, so the events above the mark
  are exactly the cases whose entry may be missing or old.
* `word_condition`: for a word of three characters or more with no LIKE wildcard in it, a case
  matches when its entry matches and its event is at or below the mark, or when its event is above
  the mark (a push that committed after the catch-up) and its own text matches. So a search never
  misses a case pushed a moment ago, nor finds one by words its event no longer has. Shorter words
  (the trigram index cannot serve them) and words with ``%``, ``_`` or ``\\`` (FTS5 serves no LIKE
  with ESCAPE) read ``cases.search`` as before.
* `rebuild` (``flask cases rebuild``, migration 0013) indexes every case again.

The entries are ids, not rowids of ``cases``: a VACUUM may renumber the rowids of a table without
an INTEGER PRIMARY KEY.
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
_ENTRIES = table("case_search", column("id"), column("event_id"), column("position"))
_FTS = table("case_search_fts", column("rowid"), column("search"))


def in_use(connection) -> bool:
    """Whether the store keeps this index: SQLite's (PostgreSQL searches by its trigram index)."""
    return connection.dialect.name == "sqlite"


def create(connection) -> None:
    """The index's two tables (migration 0013), on SQLite."""
    if in_use(connection):
        connection.exec_driver_sql("CREATE TABLE case_search (id INTEGER PRIMARY KEY, event_id VARCHAR(36) NOT NULL "
                                   "UNIQUE, position BIGINT NOT NULL)")
        connection.exec_driver_sql("CREATE VIRTUAL TABLE case_search_fts USING fts5(search, tokenize='trigram')")


def drop(connection) -> None:
    if in_use(connection):
        connection.exec_driver_sql("DROP TABLE case_search_fts")
        connection.exec_driver_sql("DROP TABLE case_search")


def _mark(connection) -> int:
    found = connection.exec_driver_sql("SELECT position FROM case_search WHERE event_id = ?", (MARK,)).scalar()
    return found or 0


def _index_between(connection, after: int, upto: int) -> int:
    """Index the cases of the event records written in (after, upto], as their search text is now; how many.

    Streamed by position, ``_CHUNK`` at a time, so memory does not grow with the store.
    """
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
    connection.exec_driver_sql("INSERT INTO case_search (event_id, position) VALUES (?, ?) "
                               "ON CONFLICT (event_id) DO UPDATE SET position = excluded.position", (MARK, position))


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
    if mark is None or len(word) < MIN_WORD or any(char in word for char in _WILDCARDS):
        return plain
    # The events written after the mark: their entries may be missing or old, their own text is read.
    fresh = select(Record.id).where(Record.position > mark, Record.kind.concat("") == "event")
    indexed = select(_ENTRIES.c.event_id).where(
        _ENTRIES.c.id.in_(select(_FTS.c.rowid).where(_FTS.c.search.like(f"%{word}%"))),
        _ENTRIES.c.event_id.not_in(fresh))
    recent = aliased(CaseRow)
    unindexed = select(recent.event_id).where(recent.event_id.in_(fresh), recent.search.like(pattern, escape="\\"))
    return CaseRow.event_id.in_(union_all(indexed, unindexed))

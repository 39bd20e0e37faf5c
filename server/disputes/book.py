"""The store's disputes: one ``disputes`` row per dispute record, kept by the write path.

A dispute's state is `shared.dispute.fold_dispute` over its record and its ``dispute_action``
records; that stays the one source of the rules. The ``disputes`` table (server/models.py,
`DisputeRow`) is a cache of the fold's output that the pages filter, order, page and count in SQL,
as ``cases`` is for cases (server/sync/casebook.py, whose readers and upsert this module uses). It is written:

* by `refold_written`, which `server.sync.apply.apply_changes` calls in the transaction that writes
  the records, for the disputes the batch touched and, when a ``dispute_kind`` changed, for every
  dispute of that kind (its take-up deadline moves with the hours);
* by `rebuild`, which folds every dispute again from the records (the migration runs it).

No party is copied into the table: they stay sealed in their record. Overdue depends on the clock
and is asked at read time: ``taken_up_ms IS NULL AND deadline_ms < now``.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from shared.dispute import DisputeState, fold_dispute
from shared.hlc import ms_or_none

from ..sync.casebook import NOT_BY_KIND, children, param_mark, reference_by_code, text_cast, upsert
from ..sync.wire import loads

__all__ = ["COLUMNS", "row_of", "refold", "refold_kinds", "refold_written", "rebuild"]

COLUMNS = ("dispute_id", "bucket", "grid", "kind", "deleted", "status", "outcome", "reported_ms", "deadline_ms",
           "taken_up_ms", "mediated", "sessions", "follow_ups", "position")
_CHUNK = 500


def row_of(dispute_id: str, bucket: str, values: Mapping[str, Any], state: DisputeState, position: int) -> tuple:
    """The ``disputes`` row (COLUMNS, in order) of a folded dispute."""
    return (dispute_id, bucket, str(values.get("grid") or ""), str(values.get("dispute_kind") or ""),
            values.get("_deleted") is True, state.status, state.outcome, ms_or_none(values.get("reported_at")),
            ms_or_none(state.deadline), ms_or_none(state.taken_up_at), state.mediated, min(state.sessions, 32767),
            min(state.follow_ups, 32767), position)


def _fold_rows(connection, disputes: list[tuple], kinds: Mapping[str, dict]) -> list[tuple]:
    """The rows of disputes given as (id, bucket, values, position), their steps read by parent."""
    if not disputes:
        return []
    steps, positions = children(connection, disputes, "dispute_action")
    return [row_of(rid, bucket, values, fold_dispute(values, steps[rid], kind=kinds.get(values.get("dispute_kind"))),
                   positions[rid])
            for rid, bucket, values, _position in disputes]


def _write(connection, rows: list[tuple]) -> None:
    upsert(connection, "disputes", COLUMNS, rows)


def refold(connection, dispute_ids: Iterable[str]) -> int:
    """Fold the given disputes again from the stored records and write their rows; returns how many.

    An id that is not a stored dispute is skipped (a step may name a dispute that has not arrived yet).
    """
    wanted = sorted(set(dispute_ids))
    if not wanted:
        return 0
    mark, as_text = param_mark(connection), text_cast(connection)
    kinds = reference_by_code(connection, "dispute_kind")
    written = 0
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start:start + _CHUNK]
        disputes = [(rid, bucket, loads(values), position) for rid, bucket, values, position in
                    connection.exec_driver_sql(
                        f"SELECT id, bucket, field_values{as_text}, position FROM records "
                        f"WHERE id IN ({', '.join([mark] * len(chunk))}) AND {NOT_BY_KIND} = 'dispute'",
                        tuple(chunk))]
        rows = _fold_rows(connection, disputes, kinds)
        _write(connection, rows)
        written += len(rows)
    return written


def refold_kinds(connection, codes: Iterable[str]) -> int:
    """Fold again every dispute of the given kinds (after their take-up hours changed)."""
    codes = sorted(set(codes))
    if not codes:
        return 0
    ids = [rid for (rid,) in connection.exec_driver_sql(
        f"SELECT dispute_id FROM disputes WHERE kind IN ({', '.join([param_mark(connection)] * len(codes))})",
        tuple(codes))]
    return refold(connection, ids)


def refold_written(connection, dirty: Iterable[str], states: Mapping[str, tuple]) -> None:
    """The write path's hook: fold again the disputes whose record or steps the batch wrote, and those of
    a dispute kind it wrote. ``states`` maps a record id to (kind, bucket, {field: (value, hlc)})."""
    disputes, kinds = set(), set()
    for rid in dirty:
        kind, _bucket, state = states[rid]
        if kind == "dispute":
            disputes.add(rid)
        elif kind == "dispute_action" and "dispute" in state:
            disputes.add(state["dispute"][0])
        elif kind == "dispute_kind" and "code" in state:
            kinds.add(state["code"][0])
    if disputes:
        refold(connection, disputes)
    if kinds:
        refold_kinds(connection, kinds)


def rebuild(connection, *, chunk: int = 2000) -> int:
    """Fold every dispute again, ``chunk`` at a time (keyset by id), and drop rows of no stored dispute; the count."""
    kinds = reference_by_code(connection, "dispute_kind")
    mark, as_text = param_mark(connection), text_cast(connection)
    done, after = 0, ""
    while True:
        disputes = [(rid, bucket, loads(values), position) for rid, bucket, values, position in
                    connection.exec_driver_sql(
                        f"SELECT id, bucket, field_values{as_text}, position FROM records WHERE {NOT_BY_KIND} = "
                        f"'dispute' AND id > {mark} ORDER BY id LIMIT {mark}", (after, chunk))]
        if not disputes:
            break
        _write(connection, _fold_rows(connection, disputes, kinds))
        done += len(disputes)
        after = disputes[-1][0]
    connection.exec_driver_sql(
        "DELETE FROM disputes WHERE dispute_id NOT IN (SELECT id FROM records WHERE kind = 'dispute')")
    return done

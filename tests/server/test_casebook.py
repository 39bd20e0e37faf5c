"""The cases table is the fold's output, kept by the write path: after any pushes it equals a rebuild."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from server.db import db
from server.models import CaseCount, CaseRow, Record
from server.sync import apply, casebook
from shared.case import Action, fold_case
from shared.hlc import HLC, format_ms
from shared.records import load_change

T0 = 1_796_000_000_000  # 2026-11-28
MINUTE = 60_000
NODES = ["aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb", "cccccccccccccccc"]
REPORTERS = ["0193b5c8-0000-7000-8000-000000000001", "0193b5c8-0000-7000-8000-000000000002"]
SUPERVISOR = "0193b5c8-0000-7000-8000-000000000003"


def hlc(minute: int, counter: int = 0, node: str = NODES[0]) -> str:
    return str(HLC(T0 + minute * MINUTE, counter, node))


def change(kind: str, rid: str, bucket: str, values: dict, stamp: str):
    return load_change({"kind": kind, "id": rid, "bucket": bucket,
                        "fields": {name: [value, stamp] for name, value in values.items()}})


def table() -> list[tuple]:
    db.session.expire_all()
    rows = db.session.execute(select(*[getattr(CaseRow, name) for name in casebook.CASE_COLUMNS])
                              .order_by(CaseRow.event_id)).all()
    return [tuple(row) for row in rows]


def rebuilt() -> list[tuple]:
    casebook.rebuild(db.session.connection(), chunk=3)  # small chunks: the streaming is exercised too
    casebook.recount(db.session.connection())
    db.session.commit()
    return table()


def kept_counts() -> dict[tuple[str, str], int]:
    """case_counts as kept, without the zeros a count may fall back to."""
    return {(row.grid, row.status): row.count for row in db.session.scalars(select(CaseCount)) if row.count}


def counted() -> dict[tuple[str, str], int]:
    """The live cases per grid and status, counted in the cases table."""
    return {(grid, status): count for grid, status, count in db.session.execute(
        select(CaseRow.grid, CaseRow.status, func.count()).where(CaseRow.deleted.is_(False))
        .group_by(CaseRow.grid, CaseRow.status))}


# --- the law ------------------------------------------------------------------------------------

EVENT_IDS = [f"0193b5c8-0000-7000-a000-{n:012x}" for n in range(4)]
stamps = st.builds(hlc, st.integers(0, 600), st.integers(0, 3), st.sampled_from(NODES))
event_writes = st.fixed_dictionaries({}, optional={
    "description": st.sampled_from(["broken lamp", "垃圾堆放", "water leak on Dongfeng road"]),
    "urgent": st.booleans(),
    "micro": st.booleans(),
    "category": st.sampled_from(["road", "litter"]),
    "address": st.sampled_from(["东湖村12号", "Block 3"]),
    "_deleted": st.booleans(),
    "grid": st.sampled_from(["G-01", "G-02"]),  # the event moves to the other grid's bucket
})
action_values = st.fixed_dictionaries({
    "action": st.sampled_from(["dispatch", "rectify", "verify_pass", "verify_fail", "close", "return", "extend",
                               "supervise", "send_back", "request_extension", "grant_extension",
                               "refuse_extension", "handle_on_spot", "mark_duplicate", "comment"]),
    "actor": st.sampled_from([*REPORTERS, SUPERVISOR]),
}, optional={
    "unit": st.sampled_from(["water", "roads"]),
    "deadline": st.integers(0, 5000).map(lambda m: format_ms(T0 + m * MINUTE)),
    "note": st.just("because"),
    "stand_in": st.booleans(),
})


@st.composite
def histories(draw):
    """Changes as tablets and pages make them, in any order, some twice: events, edits, actions, categories."""
    changes = []
    for event_id in draw(st.lists(st.sampled_from(EVENT_IDS), min_size=1, max_size=4, unique=True)):
        grid = draw(st.sampled_from(["G-01", "G-02"]))
        created = {"grid": grid, "category": "road", "description": "a case", "reporter": draw(st.sampled_from(REPORTERS)),
                   "reported_at": format_ms(T0 + draw(st.integers(0, 100)) * MINUTE)}
        changes.append(change("event", event_id, f"grid:{grid}", created, draw(stamps)))
        for _ in range(draw(st.integers(0, 2))):
            edit = draw(event_writes)
            if edit:
                changes.append(change("event", event_id, f"grid:{edit.get('grid', grid)}", edit, draw(stamps)))
        for n in range(draw(st.integers(0, 10))):
            action_id = f"{event_id[:24]}{draw(st.integers(0, 2**40)):012x}"
            changes.append(change("case_action", action_id, f"grid:{grid}",
                                  {"event": event_id, **draw(action_values)}, draw(stamps)))
    for _ in range(draw(st.integers(0, 2))):
        hours = {"code": draw(st.sampled_from(["road", "litter"])), "name": "x",
                 "deadline_hours": draw(st.integers(1, 100)),
                 "urgent_deadline_hours": draw(st.integers(1, 10))}
        changes.append(change("category", f"0193b5c8-0000-7000-c000-00000000000{hours['code'] == 'road':d}",
                              "ref", hours, draw(stamps)))
    changes = draw(st.permutations(changes))
    replayed = draw(st.lists(st.sampled_from(changes), max_size=3)) if changes else []
    cuts = sorted(draw(st.lists(st.integers(0, len(changes) + len(replayed)), max_size=4)))
    return changes + replayed, cuts


def push_in_batches(changes, cuts) -> None:
    bounds = [0, *cuts, len(changes)]
    for start, end in zip(bounds, bounds[1:]):
        if end > start:
            apply.apply_changes(None, list(changes[start:end]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(history=histories())
def test_the_cases_table_after_any_pushes_equals_a_rebuild(app, history):
    changes, cuts = history
    push_in_batches(changes, cuts)
    kept = table()
    assert kept_counts() == counted()  # the counts kept by the pushes' deltas are the table's
    assert kept == rebuilt()
    assert kept_counts() == counted()
    # And each row is the fold of the stored records (the table caches the fold, nothing else).
    for row in kept:
        assert row[8] == _fold_of(row[0]).status


def _fold_of(event_id: str):
    event = db.session.get(Record, event_id)
    actions = db.session.scalars(select(Record).where(Record.parent_id == event_id)).all()
    categories = {r.field_values["code"]: r.field_values
                  for r in db.session.scalars(select(Record).where(Record.kind == "category"))}
    return fold_case(event.field_values, [Action.from_state(a.id, a.state()) for a in actions],
                     category=categories.get(event.field_values.get("category")))


# --- the rows -----------------------------------------------------------------------------------

def test_a_row_holds_what_the_pages_filter_and_order_by(app):
    event_id = EVENT_IDS[0]
    push_in_batches([
        change("category", "0193b5c8-0000-7000-c000-000000000001", "ref",
               {"code": "road", "name": "道路", "deadline_hours": 48, "urgent_deadline_hours": 4}, hlc(0)),
        change("event", event_id, "grid:G-01",
               {"grid": "G-01", "category": "road", "description": "Broken Lamp", "address": "东湖村12号",
                "reporter": REPORTERS[0], "reported_at": format_ms(T0 + MINUTE), "urgent": True,
                "location": {"lat": 22.5, "lon": 114.1, "accuracy_m": 8.0, "source": "gps"}}, hlc(1)),
        change("case_action", "0193b5c8-0000-7000-b000-000000000001", "grid:G-01",
               {"event": event_id, "action": "dispatch", "actor": SUPERVISOR, "unit": "water"}, hlc(10)),
        change("case_action", "0193b5c8-0000-7000-b000-000000000002", "grid:G-01",
               {"event": event_id, "action": "rectify", "actor": SUPERVISOR}, hlc(20)),
    ], [])
    row = db.session.get(CaseRow, event_id)
    assert (row.status, row.unit, row.urgent, row.open) == ("rectified", "water", True, True)
    assert row.deadline_ms == T0 + 10 * MINUTE + 4 * 3_600_000  # the category's urgent hours
    assert (row.dispatched_ms, row.rectified_ms, row.closed_ms) == (T0 + 10 * MINUTE, T0 + 20 * MINUTE, None)
    assert (row.lat, row.lon) == (22.5, 114.1)
    assert re.fullmatch(r"\d{8}-0001", row.case_number)
    assert row.search == f"{row.case_number} broken lamp 东湖村12号"
    assert row.position == db.session.scalar(select(Record.position).where(Record.id.like("0193b5c8-0000-7000-b%"))
                                             .order_by(Record.position.desc()).limit(1))


def test_a_comment_moves_a_stored_case_without_folding_it_again(app, monkeypatch):
    """A batch of comments alone on a stored case (shared/case.py, INERT_ACTIONS): the row moves to the
    comment's position, unfolded, and equals a rebuild, whatever the comment's time in the history."""
    event_id = EVENT_IDS[2]
    push_in_batches([
        change("event", event_id, "grid:G-01", {"grid": "G-01", "category": "road", "description": "x",
                                                "reporter": REPORTERS[0], "reported_at": format_ms(T0)}, hlc(1)),
        change("case_action", "0193b5c8-0000-7000-b000-000000000004", "grid:G-01",
               {"event": event_id, "action": "dispatch", "actor": SUPERVISOR, "unit": "water"}, hlc(10)),
    ], [])
    folded = []
    real = casebook.refold
    monkeypatch.setattr(casebook, "refold", lambda connection, ids, *args, **kw: (
        folded.extend(ids), real(connection, ids, *args, **kw))[1])
    for n, minute in enumerate((20, 5)):  # after the dispatch, and (offline) before it
        push_in_batches([change("case_action", f"0193b5c8-0000-7000-b000-00000000001{n}", "grid:G-01",
                                {"event": event_id, "action": "comment", "actor": SUPERVISOR, "note": "on my way"},
                                hlc(minute))], [])
        assert folded == []
        kept = table()
        assert dict((row[0], row) for row in kept)[event_id][-1] == db.session.scalar(
            select(Record.position).where(Record.id == f"0193b5c8-0000-7000-b000-00000000001{n}"))
        assert kept == rebuilt()
    # A comment beside an action that changes the case is folded with it.
    push_in_batches([change("case_action", "0193b5c8-0000-7000-b000-000000000020", "grid:G-01",
                            {"event": event_id, "action": "comment", "actor": SUPERVISOR, "note": "x"}, hlc(30)),
                     change("case_action", "0193b5c8-0000-7000-b000-000000000021", "grid:G-01",
                            {"event": event_id, "action": "rectify", "actor": SUPERVISOR}, hlc(31))], [])
    assert set(folded) == {event_id}
    assert db.session.get(CaseRow, event_id).status == "rectified"
    assert table() == rebuilt()


def test_a_category_change_folds_its_cases_again(app):
    event_id = EVENT_IDS[1]
    category = "0193b5c8-0000-7000-c000-000000000001"
    push_in_batches([
        change("category", category, "ref", {"code": "road", "name": "道路", "deadline_hours": 48}, hlc(0)),
        change("event", event_id, "grid:G-01", {"grid": "G-01", "category": "road", "description": "x",
                                                "reporter": REPORTERS[0], "reported_at": format_ms(T0)}, hlc(1)),
        change("case_action", "0193b5c8-0000-7000-b000-000000000003", "grid:G-01",
               {"event": event_id, "action": "dispatch", "actor": SUPERVISOR, "unit": "water"}, hlc(10)),
    ], [])
    assert db.session.get(CaseRow, event_id).deadline_ms == T0 + 10 * MINUTE + 48 * 3_600_000
    push_in_batches([change("category", category, "ref", {"deadline_hours": 24}, hlc(30))], [])
    db.session.expire_all()
    assert db.session.get(CaseRow, event_id).deadline_ms == T0 + 10 * MINUTE + 24 * 3_600_000


def test_case_numbers_count_up_per_day_and_never_repeat(app):
    events = [change("event", event_id, "grid:G-01", {"grid": "G-01", "category": "road", "description": "x",
                                                      "reporter": REPORTERS[0], "reported_at": format_ms(T0)},
                     hlc(n)) for n, event_id in enumerate(EVENT_IDS)]
    push_in_batches(events[:1], [])
    push_in_batches(events[1:], [])
    push_in_batches(events, [])  # replayed: no new numbers
    numbers = [db.session.get(Record, e).field_values["case_number"] for e in EVENT_IDS]
    assert [n[-4:] for n in numbers] == ["0001", "0002", "0003", "0004"] and len({n[:8] for n in numbers}) == 1


def test_a_tablet_may_not_push_a_case_number(app):
    writer = apply.Writer(REPORTERS[0], "worker", None, frozenset({"G-01"}))
    pushed = change("event", EVENT_IDS[2], "grid:G-01",
                    {"grid": "G-01", "category": "road", "description": "x", "reporter": REPORTERS[0],
                     "reported_at": format_ms(T0), "case_number": "20260101-9999"}, hlc(1))
    changes, rejected = apply.validate_batch(writer, [pushed])
    [result] = apply.apply_changes(writer, changes, rejected)
    assert (result.status, result.reason) == ("rejected", "forbidden: case_number is given by the server")


@pytest.mark.parametrize("chunk", [1, 2, 1000])
def test_a_rebuild_streams_in_chunks_and_reports_progress(app, chunk):
    push_in_batches([change("event", event_id, "grid:G-01",
                            {"grid": "G-01", "category": "road", "description": "x", "reporter": REPORTERS[0],
                             "reported_at": format_ms(T0)}, hlc(n)) for n, event_id in enumerate(EVENT_IDS)], [])
    before = table()
    seen = []
    assert casebook.rebuild(db.session.connection(), chunk=chunk, progress=seen.append) == 4
    db.session.commit()
    assert table() == before and seen[-1] == 4 and len(seen) == -(-4 // chunk)


def test_a_rebuild_mends_a_wrong_row_and_drops_a_row_of_no_event(app):
    push_in_batches([change("event", EVENT_IDS[0], "grid:G-01",
                            {"grid": "G-01", "category": "road", "description": "x", "reporter": REPORTERS[0],
                             "reported_at": format_ms(T0)}, hlc(0))], [])
    right = table()
    connection = db.session.connection()
    connection.exec_driver_sql("UPDATE cases SET status = 'closed', search = 'wrong'")
    stray = list(right[0])
    stray[0], stray[1] = "0193b5c8-0000-7000-a000-0000000000ff", None
    connection.exec_driver_sql(f"INSERT INTO cases ({', '.join(casebook.CASE_COLUMNS)}) VALUES "
                               f"({', '.join(['%s' if connection.dialect.name == 'postgresql' else '?'] * len(stray))})",
                               tuple(stray))
    db.session.commit()
    assert table() != right
    assert rebuilt() == right

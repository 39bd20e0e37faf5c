"""The statistics' figures: table tests on hand-made histories, and SQL equal to the definitions in Python."""

from __future__ import annotations

from datetime import date, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from server.db import db
from server.models import Record
from server.reference import load_reference
from server.stats import service
from shared.case import Action, fold_case
from shared.hlc import format_ms, ms_or_none

from .test_casebook import EVENT_IDS, MINUTE, REPORTERS, SUPERVISOR, T0, change, hlc, histories, push_in_batches

UTC = timezone.utc
HOUR = 60 * MINUTE
# T0 is 2026-11-28T...; the period covers the whole history of the tests (reported_at T0 .. T0 + 100 min).
PERIOD = service.Period.of_days(date(2026, 11, 1), date(2026, 12, 31), UTC)


def figures_in_python(now_ms: int, period: service.Period = PERIOD) -> dict[str, int]:
    """The definitions of server/stats/service.py, read literally, over the folded cases of the store."""
    categories = {r.field_values["code"]: r.field_values
                  for r in db.session.scalars(select(Record).where(Record.kind == "category"))}
    found = dict.fromkeys(service.FIGURES, 0)
    horizon = min(period.end_ms, now_ms)
    for event in db.session.scalars(select(Record).where(Record.kind == "event")):
        values = event.field_values
        actions = db.session.scalars(select(Record).where(Record.parent_id == event.id)).all()
        state = fold_case(values, [Action.from_state(a.id, a.state()) for a in actions],
                          category=categories.get(values.get("category")))
        reported = ms_or_none(values.get("reported_at"))
        if (values.get("_deleted") is True or state.resolution == "duplicate" or reported is None
                or not period.start_ms <= reported < period.end_ms):
            continue
        deadline = ms_or_none(state.deadline)
        closed = state.status == "closed"
        applied = [e for e in state.timeline if e.applied]
        found["reported"] += 1
        found["dispatched"] += any(e.action == "dispatch" for e in applied)
        found["due"] += closed or (deadline is not None and deadline < horizon)
        found["closed"] += closed
        found["closed_on_time"] += closed and (state.resolution == "handled_on_spot" or deadline is None
                                               or ms_or_none(state.closed_at) <= deadline)
        found["reworked"] += state.failed_verifications > 0
        found["extended"] += state.extensions > 0
        found["supervised"] += state.supervised
        found["overdue_open"] += (not closed) and deadline is not None and deadline < now_ms
    return found


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(history=histories(), now_minute=st.integers(0, 6000))
def test_the_sql_figures_equal_the_definitions_over_the_folded_cases(app, history, now_minute):
    changes, cuts = history
    push_in_batches(changes, cuts)
    now_ms = T0 + now_minute * MINUTE
    result = service.table("grid", PERIOD, now_ms, load_reference())
    assert result.total.figures == figures_in_python(now_ms)
    assert sum(row.figures["reported"] for row in result.rows) == result.total.figures["reported"]


# --- the edges, on hand-made histories ----------------------------------------------------------

def event(n: int, minute: int = 0, **values):
    return change("event", EVENT_IDS[n], "grid:G-01", {
        "grid": "G-01", "category": "road", "description": "x", "reporter": REPORTERS[0],
        "reported_at": format_ms(T0 + minute * MINUTE), **values}, hlc(minute))


def act(n: int, k: int, minute: int, action: str, **values):
    return change("case_action", f"0193b5c8-0000-7000-b{n:03x}-{k:012x}", "grid:G-01",
                  {"event": EVENT_IDS[n], "action": action, "actor": SUPERVISOR, **values}, hlc(minute))


def deadline(minute: int) -> str:
    return format_ms(T0 + minute * MINUTE)


def totals(now_minute: int) -> dict[str, int]:
    return service.table("district", PERIOD, T0 + now_minute * MINUTE, load_reference()).total.figures


@pytest.mark.parametrize("history, now, expect", [
    # no deadline: closed on time; never due while open
    ([event(0), act(0, 1, 5, "close", note="ok")], 10, {"due": 1, "closed": 1, "closed_on_time": 1}),
    ([event(0)], 10_000, {"reported": 1, "due": 0, "overdue_open": 0}),
    # closed on the deadline's millisecond: on time; one millisecond later would not be
    ([event(0), act(0, 1, 1, "dispatch", unit="u", deadline=deadline(30)), act(0, 2, 30, "close", note="x")], 40,
     {"dispatched": 1, "due": 1, "closed": 1, "closed_on_time": 1}),
    ([event(0), act(0, 1, 1, "dispatch", unit="u", deadline=deadline(30)), act(0, 2, 31, "close", note="x")], 40,
     {"due": 1, "closed": 1, "closed_on_time": 0}),
    # an extension granted after the deadline: the deadline in force at the close counts
    ([event(0), act(0, 1, 1, "dispatch", unit="u", deadline=deadline(30)),
      act(0, 2, 40, "request_extension", note="rain", deadline=deadline(90)), act(0, 3, 41, "grant_extension"),
      act(0, 4, 60, "close", note="done")], 100, {"due": 1, "closed_on_time": 1, "extended": 1}),
    # open past its deadline: due and overdue now
    ([event(0), act(0, 1, 1, "dispatch", unit="u", deadline=deadline(30))], 31,
     {"due": 1, "overdue_open": 1, "closed": 0}),
    # a duplicate and a deleted event are outside the cohort
    ([event(0), act(0, 1, 5, "mark_duplicate", duplicate_of=EVENT_IDS[1])], 10, {"reported": 0}),
    ([event(0, _deleted=True)], 10, {"reported": 0}),
    # reworked: an applied failed verification
    ([event(0), act(0, 1, 1, "dispatch", unit="u"), act(0, 2, 2, "rectify"),
      change("case_action", "0193b5c8-0000-7000-b000-0000000000f3", "grid:G-01",
             {"event": EVENT_IDS[0], "action": "verify_fail", "actor": REPORTERS[0]}, hlc(3))], 10,
     {"reworked": 1, "closed": 0}),
])
def test_each_figure_on_the_edges(app, history, now, expect):
    push_in_batches(history, [])
    found = totals(now)
    for name, value in expect.items():
        assert found[name] == value, name


def test_a_case_re_dispatched_counts_for_the_unit_that_holds_it_and_rates_divide_by_due(app):
    push_in_batches([
        event(0), act(0, 1, 1, "dispatch", unit="water", deadline=deadline(30)),
        act(0, 2, 2, "dispatch", unit="roads", deadline=deadline(30)), act(0, 3, 10, "close", note="x"),
        event(1), act(1, 1, 1, "dispatch", unit="roads", deadline=deadline(5)),
    ], [])
    result = service.table("unit", PERIOD, T0 + 20 * MINUTE, load_reference())
    [roads] = result.rows
    assert roads.key == "roads" and roads.figures["reported"] == 2 and roads.figures["due"] == 2
    assert roads.rates == {"closure_rate": 0.5, "on_time_rate": 0.5, "rework_rate": 0.0, "extension_rate": 0.0}


def test_nothing_due_gives_no_rate(app):
    push_in_batches([event(0)], [])
    assert service.table("grid", PERIOD, T0, load_reference()).total.rates["closure_rate"] is None


@pytest.mark.parametrize("text", ["2026-13-01", "20261201", "２０２６-１２-０１", "", None, "1899-12-01", "2100-01-01",
                                  "2026-12-01x", "0000-00-00", "2026-02-30"])
def test_a_bad_day_is_refused_before_any_query(text):
    with pytest.raises(service.BadQuery):
        service.parse_day("from", text)

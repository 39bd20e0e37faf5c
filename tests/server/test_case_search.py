"""Keyword search on the trigram index (server/cases/search.py; FTS5 on SQLite, GIN on PostgreSQL) finds what reading
the text finds."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from server.cases import search
from server.cases.service import QueueFilters, list_cases
from server.db import db
from server.models import CaseRow, User
from server.sync import apply
from shared.hlc import format_ms

from .test_casebook import EVENT_IDS, REPORTERS, T0, change, hlc

WORDS = ["broken", "lamp", "垃圾堆放", "垃圾", "东湖村", "leak", "12号", "no_such"]
texts = st.lists(st.sampled_from(["broken lamp", "垃圾堆放", "water leak", "东湖村12号", "Block 3", "100%_sure"]),
                 min_size=1, max_size=2).map(" ".join)


def _pattern(word: str) -> str:
    return "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def found(word: str, mark: int | None) -> set[str]:
    return set(db.session.scalars(select(CaseRow.event_id).where(search.word_condition(word, _pattern(word), mark))))


def read(word: str) -> set[str]:
    """The cases whose own text holds the word: what the index must answer."""
    return set(db.session.scalars(select(CaseRow.event_id).where(CaseRow.search.like(_pattern(word), escape="\\"))))


@st.composite
def steps(draw):
    """Pushes of events and of edits to their description or address, with catch-ups between them."""
    made, stamp, out = [], 0, []
    for _ in range(draw(st.integers(1, 8))):
        if draw(st.booleans()) and made:
            out.append(("catch up",))
            continue
        event_id = draw(st.sampled_from(EVENT_IDS))
        stamp += 1
        if event_id in made:
            field = draw(st.sampled_from(["description", "address"]))
            out.append(("push", change("event", event_id, "grid:G-01", {field: draw(texts)}, hlc(stamp))))
        else:
            made.append(event_id)
            out.append(("push", change("event", event_id, "grid:G-01", {
                "grid": "G-01", "category": "road", "description": draw(texts), "reporter": REPORTERS[0],
                "reported_at": format_ms(T0)}, hlc(stamp))))
    return out


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(history=steps())
def test_a_search_finds_what_the_text_holds_whether_indexed_or_pushed_since(app, history):
    mark = search.catch_up()
    for step in history:
        if step[0] == "push":
            apply.apply_changes(None, [step[1]])  # after the last catch-up: read from the text, not the index
        else:
            mark = search.catch_up()
        for word in WORDS:
            assert found(word, mark) == read(word), word


def test_the_index_is_kept_outside_the_write_path_and_caught_up_by_a_search(app):
    assert search.in_use(db.session.connection())
    apply.apply_changes(None, [change("event", EVENT_IDS[0], "grid:G-01", {
        "grid": "G-01", "category": "road", "description": "broken lamp", "reporter": REPORTERS[0],
        "reported_at": format_ms(T0)}, hlc(1))])
    entries = "SELECT count(*) FROM case_search WHERE event_id != '*'"
    assert db.session.connection().exec_driver_sql(entries).scalar() == 0  # the push wrote no entry
    supervisor = User(id="0193b5c8-0000-7000-8000-0000000000aa", username="s", name="s", role="supervisor",
                      password_hash="x")
    page = list_cases(supervisor, QueueFilters(status="all", q="lamp"))
    assert [case.id for case in page.cases] == [EVENT_IDS[0]] and page.counts["all"] == 1
    assert db.session.connection().exec_driver_sql(entries).scalar() == 1  # the search caught the index up


def test_the_mark_is_never_lowered(app):
    """Two catch-ups at once: the one with the lower horizon may commit last (search.py, "Hazard")."""
    apply.apply_changes(None, [change("event", EVENT_IDS[0], "grid:G-01", {
        "grid": "G-01", "category": "road", "description": "broken lamp", "reporter": REPORTERS[0],
        "reported_at": format_ms(T0)}, hlc(1))])
    mark = search.catch_up()
    assert mark > 0
    search._set_mark(db.session.connection(), mark - 1)
    assert search._mark(db.session.connection()) == mark

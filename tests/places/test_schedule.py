"""The schedule of checks (shared/checks.py): a table of cases, then the laws it keeps, by hypothesis."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from shared.checks import (DAY_MS, HOUSES, NEEDS_CHECK, PLACES, STATUS_ORDER, event_description, failed_items,
                           interval_days, latest, schedule)
from shared.hlc import format_ms, parse_ms

CHECKED = "2026-11-01T00:00:00.000Z"
T = parse_ms(CHECKED)
INTERVALS = {"A": 30, "B": 90, "C": 180}

SCHEDULE_TABLE = {  # name: (last check, grade, now, status, due moment)
    "checked today, grade A": (CHECKED, "A", T, "ok", T + 30 * DAY_MS),
    "22 days after, A (window 7 days)": (CHECKED, "A", T + 22 * DAY_MS, "ok", T + 30 * DAY_MS),
    "23 days after, A: due": (CHECKED, "A", T + 23 * DAY_MS, "due", T + 30 * DAY_MS),
    "at the due moment: still due": (CHECKED, "A", T + 30 * DAY_MS, "due", T + 30 * DAY_MS),
    "one ms later: overdue": (CHECKED, "A", T + 30 * DAY_MS + 1, "overdue", T + 30 * DAY_MS),
    "grade B, 60 days after: ok": (CHECKED, "B", T + 60 * DAY_MS, "ok", T + 90 * DAY_MS),
    "grade B, 85 days after: due": (CHECKED, "B", T + 85 * DAY_MS, "due", T + 90 * DAY_MS),
    "grade C, a year after: overdue": (CHECKED, "C", T + 365 * DAY_MS, "overdue", T + 180 * DAY_MS),
    "never checked, graded": (None, "A", T, "never", None),
    "no grade": (CHECKED, None, T + 999 * DAY_MS, "unscheduled", None),
    "a grade the type has no interval for": (CHECKED, "D", T, "unscheduled", None),
    "never checked, no grade": (None, None, T, "unscheduled", None),
    "a check stamped in the future counts from its stamp": (format_ms(T + 5 * DAY_MS), "A", T, "ok", T + 35 * DAY_MS),
    "an unreadable checked_at is no check": ("yesterday", "A", T, "never", None),
}


@pytest.mark.parametrize("last, grade, now, status, due", SCHEDULE_TABLE.values(), ids=SCHEDULE_TABLE.keys())
def test_schedule_table(last, grade, now, status, due):
    found = schedule(last, interval_days(INTERVALS, grade), now)
    assert (found.status, found.due_ms) == (status, due)
    assert found.needs_check == (status in NEEDS_CHECK)


@pytest.mark.parametrize("every, grade, days", [
    ({"A": 30}, "A", 30), ({"A": 30}, "B", None), ({"A": 0}, "A", None), ({"A": True}, "A", None),
    ({"A": "30"}, "A", None), (None, "A", None), ({"A": 30}, None, None), ([30], "A", None),
])
def test_interval_of_a_grade(every, grade, days):
    assert interval_days(every, grade) == days


days = st.integers(min_value=1, max_value=3660)
moments = st.integers(min_value=T - 400 * DAY_MS, max_value=T + 4000 * DAY_MS)


@given(every=days, last=moments, now=moments, later=st.integers(min_value=0, max_value=4000 * DAY_MS))
def test_status_only_worsens_as_time_passes(every, last, now, later):
    before = schedule(format_ms(last), every, now).status
    after = schedule(format_ms(last), every, now + later).status
    rank = {"ok": 0, "due": 1, "overdue": 2}
    assert rank[after] >= rank[before]


@given(every=days, now=moments)
def test_a_check_now_makes_it_ok(every, now):
    assert schedule(format_ms(now), every, now).status == "ok"


@given(every=days, last=moments, now=moments)
def test_overdue_exactly_after_the_interval(every, last, now):
    found = schedule(format_ms(last), every, now)
    assert found.due_ms == last + every * DAY_MS
    assert (found.status == "overdue") == (now > last + every * DAY_MS)
    assert (found.status == "ok") == (now < last + every * DAY_MS - min(7 * DAY_MS, every * DAY_MS // 4))


@given(every=days, last=moments, newer=st.integers(min_value=0, max_value=400 * DAY_MS), now=moments)
def test_a_later_check_never_makes_it_worse(every, last, newer, now):
    rank = {"ok": 0, "due": 1, "overdue": 2}
    assert rank[schedule(format_ms(last + newer), every, now).status] <= rank[schedule(format_ms(last), every, now).status]


@given(every=st.one_of(st.none(), days), last=st.one_of(st.none(), moments), now=moments)
def test_every_status_is_known_and_ordered(every, last, now):
    found = schedule(None if last is None else format_ms(last), every, now)
    assert found.status in STATUS_ORDER
    assert (found.status == "unscheduled") == (every is None)


def test_failed_items_worded_from_the_version_answered():
    checklist = {"items": [{"code": "wiring", "text": "电线无私拉乱接", "hazard": "电线私拉乱接", "hazard_en": "Illegal wiring",
                            "category": "illegal_wiring"},
                           {"code": "exit", "text": "疏散通道畅通", "category": "blocked_escape"}]}
    check = {"answers": [{"item": "wiring", "result": "fail", "note": "三楼"}, {"item": "exit", "result": "fail"},
                         {"item": "gone", "result": "fail"}, {"item": "x", "result": "pass"}]}
    found = failed_items(check, checklist)
    assert [(f.item, f.text, f.category, f.note) for f in found] == [
        ("wiring", "电线私拉乱接", "illegal_wiring", "三楼"), ("exit", "疏散通道畅通", "blocked_escape", None),
        ("gone", "gone", None, None)]
    assert found[0].words(english=True) == "Illegal wiring" and found[1].words(english=True) == "疏散通道畅通"
    assert failed_items(check, None)[0].text == "wiring"


def test_event_words_and_labels():
    assert event_description("东湖村12号", "电线私拉乱接", "三楼") == "东湖村12号：电线私拉乱接（三楼）"
    assert event_description("东湖村12号", "电线私拉乱接", None) == "东湖村12号：电线私拉乱接"
    assert HOUSES.label({"address": "东湖村12号"}) == "东湖村12号"
    assert PLACES.label({"name": "好又多便利店", "address": "东湖路1号"}) == "好又多便利店（东湖路1号）"
    assert PLACES.label({"name": "好又多便利店"}) == "好又多便利店"


def test_latest_check_by_time_then_id():
    checks = [("b", {"checked_at": "2026-11-01T00:00:00.000Z"}), ("a", {"checked_at": "2026-11-02T00:00:00.000Z"}),
              ("c", {"checked_at": "2026-11-02T00:00:00.000Z"})]
    assert latest(checks)[0] == "c" and latest([]) is None

"""The queue: filters, order (urgent first, then deadline), paging, counts per status, and units' scope."""

from __future__ import annotations

import re

import pytest

from server.cases.service import QueueFilters, list_cases
from server.clock import server_clock
from server.sync import apply
from shared.case import STATUSES
from shared.hlc import format_ms

from .conftest import add_action, event_in, log_in, new_event, user

HOUR = 3_600_000


def queue_ids(client, query: str = "") -> list[str]:
    """The case ids of the queue page, in the order shown."""
    page = client.get("/cases" + query).get_data(as_text=True)
    return re.findall(r'<tr data-case="([^"]+)"', page)


def deadline_in(hours: float) -> str:
    return format_ms(int(server_clock().physical_ms() + hours * HOUR))


def test_urgent_cases_come_first_then_the_earliest_deadline_then_no_deadline(pages):
    late = event_in("reported")
    add_action(late, "dispatch", "supervisor1", unit="fire", deadline=deadline_in(48))
    soon = event_in("reported")
    add_action(soon, "dispatch", "supervisor1", unit="fire", deadline=deadline_in(2))
    urgent_late = event_in("reported", urgent=True)
    add_action(urgent_late, "dispatch", "supervisor1", unit="fire", deadline=deadline_in(72))
    urgent_undispatched = new_event(urgent=True)
    log_in(pages, "supervisor1")
    ids = queue_ids(pages, "?status=open")
    mine = [i for i in ids if i in {late, soon, urgent_late, urgent_undispatched}]
    assert mine == [urgent_late, urgent_undispatched, soon, late]


def test_each_filter_narrows_the_queue(pages):
    fire = event_in("dispatched", unit="fire", grid="G-0101", category="ebike_charging")
    city = event_in("dispatched", unit="city_management", grid="G-0201", category="illegal_construction",
                    reporter="worker3")
    west = new_event(grid="G-0301", category="garbage", reporter="worker3", urgent=True)
    overdue = event_in("reported")
    add_action(overdue, "dispatch", "supervisor1", unit="fire", deadline=deadline_in(-1))
    log_in(pages, "supervisor1")
    ours = {fire, city, west, overdue}

    def shown(query):
        return {i for i in queue_ids(pages, query) if i in ours}

    assert shown("") == ours
    assert shown("?unit=fire") == {fire, overdue}
    assert shown("?grid=G-0201") == {city}
    assert shown("?community=青石社区") == {city}
    assert shown("?street=西山街道") == {west}
    assert shown("?street=东湖街道") == {fire, city, overdue}
    assert shown("?category=illegal_construction") == {city}
    assert shown("?urgent=1") == {west}
    assert shown("?overdue=1") == {overdue}
    assert shown("?status=reported") == {west}
    assert shown("?status=dispatched&unit=fire") == {fire, overdue}
    assert shown("?status=closed") == set()


def test_counts_per_status_follow_the_other_filters(pages, app):
    event_in("rectified", unit="fire")
    event_in("returned", unit="fire")
    event_in("closed")
    log_in(pages, "supervisor1")
    with app.test_request_context():
        page = list_cases(user("supervisor1"), QueueFilters(status="all"), per_page=100)
    statuses = [c.state.status for c in page.cases]
    for status in ("reported", "dispatched", "rectified", "returned", "closed"):
        assert page.counts[status] == statuses.count(status)
    assert page.counts["open"] == len(statuses) - statuses.count("closed")
    assert page.counts["all"] == len(statuses) == page.total
    html = pages.get("/cases?unit=fire").get_data(as_text=True)
    rectified_tab = re.search(r'data-status="rectified"[^>]*>\s*[^<]*<span class="count">(\d+)</span>', html)
    assert rectified_tab and rectified_tab.group(1) == "1"


@pytest.mark.parametrize("place", [{}, {"street": "东湖街道"}, {"community": "青石社区"}, {"grid": "G-0201"},
                                   {"street": "东湖街道", "grid": "G-0301"}, {"grid": "G-9999"}])
def test_the_counts_of_a_place_kept_in_case_counts_are_the_cases_the_queue_lists(pages, app, place):
    event_in("dispatched", grid="G-0201", reporter="worker3")
    event_in("closed", grid="G-0301", reporter="worker3")
    gone = event_in("rectified", grid="G-0201", reporter="worker3")
    apply.write_as_server([apply.stamp("event", gone, {"_deleted": True}, bucket="grid:G-0201")])
    moved = event_in("returned", grid="G-0101")
    apply.write_as_server([apply.stamp("event", moved, {"grid": "G-0301"})])  # to another street
    with app.test_request_context():
        page = list_cases(user("supervisor1"), QueueFilters(status="all", **place), per_page=1000)
    statuses = [c.state.status for c in page.cases]
    assert {status: page.counts[status] for status in STATUSES} == {s: statuses.count(s) for s in STATUSES}
    assert page.counts["all"] == len(statuses) == page.total


def test_the_queue_is_paged_without_losing_or_repeating_a_case(pages, app):
    app.config["GRIDPATROL_PAGE_SIZE"] = 3
    made = {new_event() for _ in range(5)}
    log_in(pages, "supervisor1")
    first = pages.get("/cases?status=all").get_data(as_text=True)
    pages_count = int(re.search(r"第 1 / (\d+) 页", first).group(1))
    seen = []
    for number in range(1, pages_count + 1):
        seen += queue_ids(pages, f"?status=all&page={number}")
    assert len(seen) == len(set(seen))
    assert made <= set(seen)
    assert queue_ids(pages, "?status=all&page=999") == queue_ids(pages, f"?status=all&page={pages_count}")
    assert queue_ids(pages, "?status=all&page=abc") == queue_ids(pages, "?status=all&page=1")


def test_a_unit_user_sees_only_the_cases_dispatched_to_their_unit(pages):
    own = event_in("dispatched", unit="fire")
    other = event_in("dispatched", unit="city_management")
    undispatched = new_event()
    log_in(pages, "unit1")
    ids = set(queue_ids(pages, "?status=all"))
    assert own in ids and other not in ids and undispatched not in ids
    assert other not in set(queue_ids(pages, "?status=all&unit=city_management"))  # the unit filter is ignored


@pytest.mark.parametrize("query", ["?status=bogus", "?urgent=yes", "?grid=", "?page=-3"])
def test_odd_query_values_fall_back_to_defaults(pages, query):
    log_in(pages, "supervisor1")
    assert pages.get("/cases" + query).status_code == 200


def test_a_keyword_finds_cases_by_description_or_address_and_a_case_number_opens_the_case(pages, app):
    from server.db import db
    from server.models import Record

    lamp = new_event(description="路灯不亮 Broken LAMP")
    litter = new_event(description="垃圾堆放于桥洞西侧")
    percent = new_event(description="100% 堵塞")
    log_in(pages, "supervisor1")
    assert queue_ids(pages, "?status=all&q=lamp") == [lamp]  # any case, any part of the text
    assert queue_ids(pages, "?status=all&q=桥洞西") == [litter]
    assert queue_ids(pages, "?status=all&q=100%25") == [percent]  # a wildcard is taken literally
    assert queue_ids(pages, "?status=all&q=%25") == [percent]
    assert queue_ids(pages, "?status=all&q=路灯 lamp") == [lamp]  # every word must be there
    number = db.session.get(Record, litter).field_values["case_number"]
    assert re.fullmatch(r"\d{8}-\d{4}", number)
    answer = pages.get(f"/cases?q={number}")
    assert answer.status_code == 303 and answer.headers["Location"].endswith(f"/cases/{litter}")
    assert number in pages.get(f"/cases/{litter}").get_data(as_text=True)


def test_the_supervised_and_how_closed_filters(pages, app):
    supervised = event_in("dispatched")
    add_action(supervised, "supervise", "supervisor1", deadline=deadline_in(5))
    plain = event_in("dispatched")
    closed = event_in("closed")
    duplicate = new_event()
    add_action(duplicate, "mark_duplicate", "supervisor1", duplicate_of=closed)
    log_in(pages, "supervisor1")
    shown = queue_ids(pages, "?status=open&supervised=1")
    assert supervised in shown and plain not in shown
    assert closed in queue_ids(pages, "?status=closed&resolution=closed")
    assert duplicate not in queue_ids(pages, "?status=closed&resolution=closed")
    assert duplicate in queue_ids(pages, "?status=closed&resolution=duplicate")
    result = list_cases(user("supervisor1"), QueueFilters(status="closed", resolution="duplicate"), per_page=500)
    assert {c.state.resolution for c in result.cases} == {"duplicate"}


def test_the_search_index_follows_every_change_of_a_case(pages, app):
    """The search finds what a plain LIKE over the cases' text finds (on PostgreSQL through the trigram index of
    migration 0008), after a new case, an edit of its description, and a rebuild of the cases table."""
    from sqlalchemy import text

    from server.db import db
    from server.sync import apply, casebook

    event_id = new_event(description="东湖路口井盖缺失")

    def found(word: str) -> list[str]:
        return [c.id for c in list_cases(user("supervisor1"), QueueFilters(status="all", q=word), per_page=500).cases]

    def plain(word: str) -> list[str]:
        rows = db.session.execute(text("SELECT event_id FROM cases WHERE search LIKE :p AND deleted = :no"),
                                  {"p": f"%{word}%", "no": False}).scalars()
        return sorted(rows)

    assert found("井盖缺失") == [event_id]
    stamp = apply.stamp("event", event_id, {"description": "东湖路口路灯不亮"}, bucket="grid:G-0101")
    apply.write_as_server([stamp])
    assert found("井盖缺失") == [] and found("路灯不亮") == [event_id]
    casebook.rebuild(db.session.connection())
    db.session.commit()
    for word in ("路灯不亮", "测试事件", "东湖路", "nothing-like-this"):
        assert sorted(found(word)) == plain(word), word

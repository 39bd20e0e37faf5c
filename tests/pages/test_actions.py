"""Each page action, taken through the pages, as a table: the case before, the form, the case after."""

from __future__ import annotations

import re

import pytest

from server.cases.service import node_of
from shared.hlc import parse_ms

from .conftest import add_action, count_actions, csrf_token, event_in, folded, log_in, new_event, user

HOUR = 3_600_000
# datetime-local values are district time (UTC+8 by default); this one is 2099-01-01T02:00:00Z.
FAR_LOCAL, FAR_UTC = "2099-01-01T10:00", "2099-01-01T02:00:00.000Z"
LATER_LOCAL, LATER_UTC = "2099-02-01T18:30", "2099-02-01T10:30:00.000Z"


def post(client, event_id: str, action: str, **form):
    """Post a page action with the session's CSRF token."""
    return client.post(f"/cases/{event_id}/{action}", data={"csrf_token": csrf_token(client), **form})


@pytest.mark.parametrize("before, username, action, form, expect", [
    # dispatch: the unit and deadline the form carries (the page suggests the category's; see below)
    ("reported", "supervisor1", "dispatch", {"unit": "fire", "deadline": FAR_LOCAL},
     {"status": "dispatched", "unit": "fire", "deadline": FAR_UTC}),
    ("reported", "supervisor1", "dispatch", {"unit": "city_management", "deadline": FAR_LOCAL, "note": "转城管"},
     {"status": "dispatched", "unit": "city_management", "deadline": FAR_UTC}),
    ("returned", "supervisor1", "dispatch", {"unit": "comprehensive", "deadline": FAR_LOCAL},
     {"status": "dispatched", "unit": "comprehensive"}),
    ("dispatched", "admin", "dispatch", {"unit": "police", "deadline": FAR_LOCAL},
     {"status": "dispatched", "unit": "police"}),
    # return: back to the unit, and not a failed verification
    ("rectified", "supervisor1", "return", {"note": "照片不清楚"},
     {"status": "returned", "failed_verifications": 0, "unit": "fire"}),
    # close
    ("reported", "supervisor1", "close", {"note": "重复投诉", "confirm": "y"}, {"status": "closed", "resolution": "closed"}),
    ("rectified", "supervisor1", "close", {"note": "已核实", "confirm": "y"}, {"status": "closed", "resolution": "closed"}),
    # the unit's side: send back as not theirs (退回), ask for more time (申请延期)
    ("dispatched", "unit1", "send_back", {"note": "不属于本单位职责"},
     {"status": "reported", "unit": None, "deadline": None, "sent_back": 1}),
    ("dispatched", "unit1", "request_extension", {"deadline": LATER_LOCAL, "note": "材料未到"},
     {"status": "dispatched", "extension_asked": LATER_UTC, "extensions": 0}),
    ("returned", "unit1", "request_extension", {"deadline": LATER_LOCAL, "note": "返工需要时间"},
     {"status": "returned", "extension_asked": LATER_UTC}),
    # extend
    ("dispatched", "supervisor1", "extend", {"deadline": LATER_LOCAL, "note": "需要采购材料"},
     {"status": "dispatched", "deadline": LATER_UTC}),
    ("returned", "supervisor1", "extend", {"deadline": LATER_LOCAL}, {"status": "returned", "deadline": LATER_UTC}),
    # comment: changes nothing, on any case
    ("dispatched", "supervisor1", "comment", {"note": "已电话联系业主"}, {"status": "dispatched"}),
    ("closed", "supervisor1", "comment", {"note": "业主投诉已回复"}, {"status": "closed"}),
    ("dispatched", "unit1", "comment", {"note": "明早到场"}, {"status": "dispatched"}),
    # supervise: 督办, with a new deadline from the category (ebike_charging: 24 h)
    ("dispatched", "supervisor1", "supervise", {"note": "限期督办"}, {"status": "dispatched", "supervised": True}),
    # verify in the reporter's place (stand_in)
    ("rectified", "supervisor1", "verify", {"verdict": "fail"},
     {"status": "returned", "failed_verifications": 1}),
    ("rectified", "supervisor1", "verify", {"verdict": "pass"}, {"status": "closed", "resolution": "verified"}),
    # rectify, by the unit the case is dispatched to
    ("dispatched", "unit1", "rectify", {"note": "已拆除飞线"}, {"status": "rectified"}),
    ("returned", "unit1", "rectify", {}, {"status": "rectified"}),
])
def test_each_page_action_records_one_case_action_and_moves_the_case(pages, app, before, username, action,
                                                                       form, expect):
    event_id = event_in(before, unit="fire")
    log_in(pages, username)
    started = count_actions()
    answer = post(pages, event_id, action, **form)
    assert answer.status_code == 303, answer.get_data(as_text=True)[:2000]
    assert count_actions() == started + 1
    state = folded(event_id)
    for name, value in expect.items():
        assert getattr(state, name) == value, name
    last = state.timeline[-1]
    assert last.applied and last.actor == user(username).id
    assert node_of(last.hlc) == app.config["GRIDPATROL_NODE"]  # stamped with the server's HLC
    assert last.action == {"verify": "verify_" + form.get("verdict", "")}.get(action, action)
    assert last.stand_in == (action == "verify")
    # A unit that sent a case back no longer sees it: the flash shows on its queue.
    page = pages.get("/cases" if action == "send_back" else f"/cases/{event_id}").get_data(as_text=True)
    assert "已记录" in page  # the flash: "Recorded: …"
    if form.get("note") and action != "send_back":
        assert form["note"] in page  # the note shows in the timeline


def test_supervise_sets_the_deadline_from_the_category(pages):
    event_id = event_in("dispatched", category="ebike_charging")
    log_in(pages, "supervisor1")
    post(pages, event_id, "supervise")
    state = folded(event_id)
    assert state.supervised
    deadline_ms = parse_ms(state.deadline)
    assert abs(deadline_ms - (parse_ms(state.timeline[-1].hlc[:24]) + 24 * HOUR)) < 1000


def test_the_dispatch_form_suggests_the_categorys_unit_and_deadline(pages, app):
    event_id = new_event(category="illegal_construction")  # default unit city_management, 168 h
    log_in(pages, "supervisor1")
    page = pages.get(f"/cases/{event_id}").get_data(as_text=True)
    form = page[page.index('data-action="dispatch"'):]
    form = form[:form.index("</form>")]
    assert re.search(r'<option selected value="city_management">|<option value="city_management" selected',
                     form), form
    deadline = re.search(r'name="deadline"[^>]*value="([^"]+)"', form).group(1)
    from server.clock import server_clock

    now = server_clock().physical_ms()
    with app.test_request_context():
        from server.web.times import utc_instant
        from datetime import datetime

        suggested = parse_ms(utc_instant(datetime.fromisoformat(deadline)))
    assert abs(suggested - (now + 168 * HOUR)) < 2 * 60_000  # to the minute the field shows


@pytest.mark.parametrize("before, action, form, flash", [
    ("closed", "dispatch", {"unit": "fire", "deadline": FAR_LOCAL}, "该操作已不适用"),
    ("reported", "return", {}, "该操作已不适用"),
    ("dispatched", "verify", {"verdict": "pass"}, "该操作已不适用"),
    ("closed", "supervise", {}, "该操作已不适用"),
])
def test_an_action_that_does_not_apply_on_a_stale_page_records_nothing(pages, before, action, form, flash):
    event_id = event_in(before)
    log_in(pages, "supervisor1")
    started = count_actions()
    answer = post(pages, event_id, action, **form)
    assert answer.status_code == 303
    assert count_actions() == started
    assert flash in pages.get(answer.location).get_data(as_text=True)


@pytest.mark.parametrize("action, form", [
    ("dispatch", {"unit": "no_such_unit", "deadline": FAR_LOCAL}),
    ("dispatch", {"unit": "fire"}),
    ("dispatch", {"unit": "fire", "deadline": "2020-01-01T10:00"}),
    ("dispatch", {"unit": "fire", "deadline": "next tuesday"}),
    ("comment", {"note": ""}),
    ("comment", {"note": "x" * 4001}),
    ("verify", {"verdict": "maybe"}),
    ("mark_duplicate", {"duplicate_of": "not-a-uuid"}),
])
def test_an_invalid_form_is_answered_400_on_the_case_page_and_records_nothing(pages, action, form):
    event_id = event_in("rectified" if action == "verify" else "reported")
    log_in(pages, "supervisor1")
    started = count_actions()
    answer = post(pages, event_id, action, **form)
    assert answer.status_code == 400
    assert 'data-testid="timeline"' in answer.get_data(as_text=True)
    assert count_actions() == started


def test_mark_duplicate_closes_the_case_and_links_the_original(pages):
    original = event_in("dispatched")
    repeat = new_event(lat=22.54312, lon=114.05791)  # about 3 m away, same category
    log_in(pages, "supervisor1")
    page = pages.get(f"/cases/{repeat}").get_data(as_text=True)
    assert original in page  # listed under open cases nearby
    answer = post(pages, repeat, "mark_duplicate", duplicate_of=original)
    assert answer.status_code == 303
    state = folded(repeat)
    assert (state.status, state.resolution, state.duplicate_of) == ("closed", "duplicate", original)


def test_nearby_lists_open_cases_of_the_same_category_within_its_radius_only(pages):
    here = new_event(category="ebike_charging", lat=22.5431, lon=114.0579)  # radius 30 m
    near = new_event(category="ebike_charging", lat=22.5433, lon=114.0579)  # about 22 m
    far = new_event(category="ebike_charging", lat=22.5436, lon=114.0579)  # about 56 m
    other_category = new_event(category="garbage", lat=22.5431, lon=114.0579)
    closed = event_in("closed", category="ebike_charging", lat=22.5431, lon=114.0579)
    log_in(pages, "supervisor1")
    page = pages.get(f"/cases/{here}").get_data(as_text=True)
    nearby = page[page.index('data-testid="nearby"'):]
    assert near in nearby
    assert far not in nearby and other_category not in nearby and closed not in nearby


def test_the_timeline_names_people_devices_and_superseded_actions(pages, app):
    event_id = event_in("dispatched")
    login = pages.post("/api/v1/auth/device", json={"username": "unit1", "password": "demo-pass",
                                                    "device_name": "城管平板", "node": "00000000000000c1"})
    assert login.status_code == 200
    add_action(event_id, "close", "supervisor1")
    late = add_action(event_id, "rectify", "unit1")  # after the close: superseded
    log_in(pages, "supervisor1")
    page = pages.get(f"/cases/{event_id}").get_data(as_text=True)
    timeline = page[page.index('data-testid="timeline"'):]
    assert "陈静" in timeline and "刘洋" in timeline and "张伟" in timeline  # supervisor, unit user, reporter
    assert "网页 / 服务器" in timeline
    assert 'class="superseded" data-action="rectify"' in timeline
    assert "已失效：案件已结案" in timeline
    assert late  # the superseded action stays in the history


def test_an_action_pushed_from_a_tablet_shows_the_device(pages):
    event_id = event_in("rectified")
    login = pages.post("/api/v1/auth/device", json={"username": "worker1", "password": "demo-pass",
                                                    "device_name": "张伟的平板", "node": "00000000000000a1"})
    token = login.get_json()["token"]
    from server.clock import server_clock
    from shared.hlc import HLC
    from shared.records import uuid7

    hlc = str(HLC(server_clock().physical_ms(), 0, "00000000000000a1"))
    change = {"kind": "case_action", "id": uuid7(server_clock().physical_ms(), b"\x01" * 10), "bucket": "grid:G-0101",
              "fields": {"event": [event_id, hlc], "action": ["verify_fail", hlc], "actor": [user("worker1").id, hlc],
                         "note": ["飞线仍在", hlc]}}
    pushed = pages.post("/api/v1/sync/push", json={"node": "00000000000000a1", "changes": [change]},
                        headers={"Authorization": f"Bearer {token}"})
    assert pushed.get_json()["results"][0]["status"] == "applied"
    log_in(pages, "supervisor1")
    page = pages.get(f"/cases/{event_id}").get_data(as_text=True)
    assert "平板“张伟的平板”" in page
    assert 'data-status="returned"' in page


@pytest.mark.parametrize("action, form, expect", [
    ("grant_extension", {"deadline": LATER_LOCAL}, {"deadline": LATER_UTC, "extensions": 1, "extension_asked": None}),
    ("grant_extension", {"deadline": FAR_LOCAL, "note": "给到月初"},
     {"deadline": FAR_UTC, "extensions": 1, "extension_asked": None}),
    ("refuse_extension", {"note": "不符合延期条件"}, {"extensions": 0, "extension_asked": None}),
])
def test_a_supervisor_answers_a_units_request_for_more_time(pages, app, action, form, expect):
    event_id = event_in("dispatched")
    add_action(event_id, "request_extension", "unit1", deadline=LATER_UTC, note="材料未到")
    log_in(pages, "supervisor1")
    page = pages.get(f"/cases/{event_id}").get_data(as_text=True)
    assert 'data-action="grant_extension"' in page and 'data-action="refuse_extension"' in page
    before = folded(event_id).deadline
    assert post(pages, event_id, action, **form).status_code == 303
    state = folded(event_id)
    for name, value in expect.items():
        assert getattr(state, name) == value, name
    if action == "refuse_extension":
        assert state.deadline == before  # only a granted extension moves the deadline


@pytest.mark.parametrize("action, form", [
    ("close", {"note": "已核实"}),  # not confirmed
    ("close", {"confirm": "y"}),  # no note
    ("send_back", {}),  # no reason
    ("request_extension", {"deadline": LATER_LOCAL}),  # no reason
    ("request_extension", {"deadline": "2020-01-01T10:00", "note": "晚了"}),  # not in the future
])
def test_an_action_without_its_evidence_records_nothing(pages, app, action, form):
    event_id = event_in("dispatched")
    log_in(pages, "unit1" if action in ("send_back", "request_extension") else "supervisor1")
    started = count_actions()
    assert post(pages, event_id, action, **form).status_code == 400
    assert count_actions() == started


def test_a_unit_no_longer_sees_a_case_it_sent_back_and_the_supervisor_dispatches_it_again(pages, app):
    event_id = event_in("dispatched")
    log_in(pages, "unit1")
    assert post(pages, event_id, "send_back", note="应由城管处理").status_code == 303
    assert pages.get(f"/cases/{event_id}").status_code == 404
    log_in(pages, "supervisor1")
    queue = pages.get("/cases?status=reported").get_data(as_text=True)
    assert f'data-case="{event_id}"' in queue
    page = pages.get(f"/cases/{event_id}").get_data(as_text=True)
    assert 'data-testid="sent-back"' in page and "应由城管处理" in page
    assert post(pages, event_id, "dispatch", unit="city_management", deadline=FAR_LOCAL).status_code == 303
    state = folded(event_id)
    assert (state.status, state.unit, state.failed_verifications, state.assessment_flag) == \
        ("dispatched", "city_management", 0, False)


def test_each_page_action_is_in_the_audit_log(pages, app):
    from sqlalchemy import select

    from server.db import db
    from server.models import AuditEntry

    event_id = event_in("dispatched")
    log_in(pages, "unit1")
    assert post(pages, event_id, "request_extension", deadline=LATER_LOCAL, note="材料未到").status_code == 303
    db.session.rollback()
    [entry] = db.session.scalars(select(AuditEntry).where(AuditEntry.kind == "case")).all()
    assert (entry.action, entry.actor, entry.role) == ("request_extension", "unit1", "unit")
    assert entry.before["status"] == "dispatched"
    assert entry.after == {"action": "request_extension", "deadline": LATER_UTC, "note": "材料未到"}

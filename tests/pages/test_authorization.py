"""Every page and every action against every role, with the status each must get (both engines).

The table is the contract: anonymous visitors are sent to log in (302), a grid
worker gets 403 on every page, supervisors and admins see every case, and a
unit user sees only the cases dispatched to their unit (another unit's case is
404 to them). An allowed action answers 303 and writes exactly one case
action; a refused one writes nothing.
"""

from __future__ import annotations

import pytest

from .conftest import FreshContextClient, add_action, count_actions, csrf_token, event_in, log_in, user

ROLES = ["anonymous", "worker1", "supervisor1", "admin", "unit1"]
PHOTO = "ab" * 32

# The cases each row acts on, made fresh for every row. unit1 is the fire unit's user.
SETUPS = {
    "none": lambda: {},
    "own": lambda: {"id": event_in("dispatched", unit="fire")},
    "other": lambda: {"id": event_in("dispatched", unit="city_management")},
    "reported": lambda: {"id": event_in("reported")},
    "own_rectified": lambda: {"id": event_in("rectified", unit="fire")},
    "own_asking": lambda: _asking(),
    "own_photo": lambda: {"id": event_in("dispatched", unit="fire", photos=[PHOTO])},
    "own_with_neighbour": lambda: {"id": event_in("dispatched", unit="fire"),
                                   "dup": event_in("dispatched", unit="fire")},
}

def _asking() -> dict:
    """A case of unit1's unit whose unit asked for more time."""
    event_id = event_in("dispatched", unit="fire")
    add_action(event_id, "request_extension", "unit1", deadline="2099-03-01T00:00:00.000Z", note="材料未到")
    return {"id": event_id}


FAR = "2099-01-01T10:00"
# name, method, path, setup, form, {role: status}; roles not named get the row's default for their kind.
ROWS = [
    ("start", "GET", "/", "none", None, {"anonymous": 302, "worker1": 302, "supervisor1": 302, "admin": 302,
                                          "unit1": 302}),
    ("log-in page", "GET", "/login", "none", None, dict.fromkeys(ROLES, 200)),
    ("leaflet", "GET", "/vendor/leaflet/leaflet.js", "none", None, dict.fromkeys(ROLES, 200)),
    ("queue", "GET", "/cases", "none", None, {"supervisor1": 200, "admin": 200, "unit1": 200}),
    ("queue, filtered", "GET", "/cases?status=all&urgent=1&overdue=1&street=东湖街道&page=2", "none", None,
     {"supervisor1": 200, "admin": 200, "unit1": 200}),
    ("own case", "GET", "/cases/{id}", "own", None, {"supervisor1": 200, "admin": 200, "unit1": 200}),
    ("another unit's case", "GET", "/cases/{id}", "other", None, {"supervisor1": 200, "admin": 200, "unit1": 404}),
    ("undispatched case", "GET", "/cases/{id}", "reported", None, {"supervisor1": 200, "admin": 200, "unit1": 404}),
    ("no such case", "GET", "/cases/01936f0e-0000-7000-8000-000000000000", "none", None,
     {"supervisor1": 404, "admin": 404, "unit1": 404}),
    ("photo not yet received", "GET", "/cases/{id}/photos/" + PHOTO, "own_photo", None,
     {"supervisor1": 404, "admin": 404, "unit1": 404}),
    ("dispatch", "POST", "/cases/{id}/dispatch", "reported", {"unit": "fire", "deadline": FAR},
     {"supervisor1": 303, "admin": 303, "unit1": 403}),
    ("close", "POST", "/cases/{id}/close", "own", {"note": "已核实", "confirm": "y"},
     {"supervisor1": 303, "admin": 303, "unit1": 403}),
    ("send back, own case", "POST", "/cases/{id}/send_back", "own", {"note": "非本单位职责"},
     {"supervisor1": 403, "admin": 403, "unit1": 303}),
    ("send back, another unit's case", "POST", "/cases/{id}/send_back", "other", {"note": "非本单位职责"},
     {"supervisor1": 403, "admin": 403, "unit1": 404}),
    ("ask for more time, own case", "POST", "/cases/{id}/request_extension", "own",
     {"deadline": FAR, "note": "材料未到"}, {"supervisor1": 403, "admin": 403, "unit1": 303}),
    ("grant an extension", "POST", "/cases/{id}/grant_extension", "own_asking", {"deadline": FAR},
     {"supervisor1": 303, "admin": 303, "unit1": 403}),
    ("refuse an extension", "POST", "/cases/{id}/refuse_extension", "own_asking", {},
     {"supervisor1": 303, "admin": 303, "unit1": 403}),
    ("return", "POST", "/cases/{id}/return", "own_rectified", {}, {"supervisor1": 303, "admin": 303, "unit1": 403}),
    ("extend", "POST", "/cases/{id}/extend", "own", {"deadline": FAR}, {"supervisor1": 303, "admin": 303,
                                                                        "unit1": 403}),
    ("supervise", "POST", "/cases/{id}/supervise", "own", {}, {"supervisor1": 303, "admin": 303, "unit1": 403}),
    ("verify, standing in", "POST", "/cases/{id}/verify", "own_rectified", {"verdict": "fail"},
     {"supervisor1": 303, "admin": 303, "unit1": 403}),
    ("mark duplicate", "POST", "/cases/{id}/mark_duplicate", "own_with_neighbour", {"duplicate_of": "{dup}"},
     {"supervisor1": 303, "admin": 303, "unit1": 403}),
    ("comment, own case", "POST", "/cases/{id}/comment", "own", {"note": "已电话联系"},
     {"supervisor1": 303, "admin": 303, "unit1": 303}),
    ("comment, another unit's case", "POST", "/cases/{id}/comment", "other", {"note": "已电话联系"},
     {"supervisor1": 303, "admin": 303, "unit1": 404}),
    ("rectify, own case", "POST", "/cases/{id}/rectify", "own", {"note": "已清理"},
     {"supervisor1": 403, "admin": 403, "unit1": 303}),
    ("rectify, another unit's case", "POST", "/cases/{id}/rectify", "other", {"note": "已清理"},
     {"supervisor1": 403, "admin": 403, "unit1": 404}),
    ("queue export", "GET", "/cases/export.csv?status=all", "none", None,
     {"supervisor1": 200, "admin": 200, "unit1": 200}),
    ("case sheet", "GET", "/cases/{id}/sheet", "own", None, {"supervisor1": 200, "admin": 200, "unit1": 200}),
    ("another unit's case sheet", "GET", "/cases/{id}/sheet", "other", None,
     {"supervisor1": 200, "admin": 200, "unit1": 404}),
    ("statistics", "GET", "/stats", "none", None, {"supervisor1": 200, "admin": 200, "unit1": 403}),
    ("statistics, drilled", "GET", "/stats?street=东湖街道&from=2026-12-01&to=2026-12-07", "none", None,
     {"supervisor1": 200, "admin": 200, "unit1": 403}),
    ("assessment", "GET", "/stats/assessment", "none", None, {"supervisor1": 200, "admin": 200, "unit1": 403}),
    ("statistics export", "GET", "/stats/table.csv?group=unit", "none", None,
     {"supervisor1": 200, "admin": 200, "unit1": 403}),
    ("unknown action", "POST", "/cases/{id}/reopen", "own", {}, {"supervisor1": 404, "admin": 404, "unit1": 404}),
    ("language", "POST", "/language", "none", {"lang": "en"}, dict.fromkeys(ROLES, 303)),
    ("log out", "POST", "/logout", "none", {}, dict.fromkeys(ROLES, 303)),  # last: it ends the session
]


def expected(row_statuses: dict[str, int], role: str, method: str) -> int:
    """The row's status for the role; unnamed roles: anonymous is sent to log in, a worker gets 403."""
    if role in row_statuses:
        return row_statuses[role]
    return 302 if role == "anonymous" else 403


@pytest.mark.parametrize("role", ROLES)
def test_every_page_and_action_answers_each_role_as_the_table_says(pages, role):
    mismatches = []
    if role != "anonymous":
        log_in(pages, role)
    for name, method, path, setup, form, statuses in ROWS:
        ids = SETUPS[setup]()
        url = path.format(**ids)
        before = count_actions()
        if method == "GET":
            answer = pages.get(url)
        else:
            data = {k: v.format(**ids) for k, v in (form or {}).items()}
            answer = pages.post(url, data={"csrf_token": csrf_token(pages), **data})
        answer.close()  # a file response (Leaflet) holds its file open until closed
        want = expected(statuses, role, method)
        written = count_actions() - before
        should_write = method == "POST" and want == 303 and url.startswith("/cases/")
        if answer.status_code != want or written != (1 if should_write else 0):
            mismatches.append(f"{name}: {method} {url} as {role} -> {answer.status_code} "
                              f"(wanted {want}), {written} action(s) written")
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.parametrize("path, form", [
    ("/cases/{id}/close", {}),
    ("/cases/{id}/comment", {"note": "x"}),
    ("/login", {"username": "supervisor1", "password": "demo-pass"}),
    ("/logout", {}),
    ("/language", {"lang": "en"}),
])
def test_a_post_without_a_csrf_token_is_refused_and_writes_nothing(pages, path, form):
    log_in(pages, "supervisor1")
    url = path.format(id=event_in("dispatched"))
    before = count_actions()
    answer = pages.post(url, data=form)
    assert answer.status_code == 400
    assert count_actions() == before


def test_a_post_with_another_sessions_token_is_refused(pages, app):
    log_in(pages, "supervisor1")
    other = FreshContextClient(app, app.response_class, use_cookies=True)
    token = csrf_token(other)
    event_id = event_in("dispatched")
    assert pages.post(f"/cases/{event_id}/close", data={"csrf_token": token}).status_code == 400


def test_the_sync_api_is_not_csrf_checked(pages):
    answer = pages.post("/api/v1/auth/device", json={"username": "worker1", "password": "demo-pass",
                                                     "device_name": "平板", "node": "0123456789abcdef"})
    assert answer.status_code == 200


def test_a_deactivated_user_is_logged_out_at_the_next_request(pages):
    log_in(pages, "supervisor1")
    assert pages.get("/cases").status_code == 200
    user("supervisor1").active = False
    from server.db import db

    db.session.commit()
    assert pages.get("/cases").status_code == 302


def test_a_unit_user_who_loses_a_case_to_another_unit_no_longer_sees_it(pages):
    event_id = event_in("dispatched", unit="fire")
    log_in(pages, "unit1")
    assert pages.get(f"/cases/{event_id}").status_code == 200
    add_action(event_id, "dispatch", "supervisor1", unit="city_management")
    assert pages.get(f"/cases/{event_id}").status_code == 404
    assert event_id not in pages.get("/cases?status=all").get_data(as_text=True)


def test_log_in_refuses_a_wrong_password_and_redirects_only_within_the_site(pages):
    token = csrf_token(pages)
    wrong = pages.post("/login", data={"csrf_token": token, "username": "supervisor1", "password": "nope"})
    assert wrong.status_code == 401
    answer = pages.post("/login?next=//evil.example/x", data={"csrf_token": token, "username": "supervisor1",
                                                             "password": "demo-pass"})
    assert answer.status_code == 303 and answer.location == "/cases"


@pytest.mark.parametrize("username, status", [("worker2", "rejected"), ("supervisor1", "applied")])
def test_only_a_supervisor_may_push_a_stand_in_verification(pages, username, status):
    """The fold trusts stand_in, so the store must refuse it from anyone but a supervisor (or admin)."""
    from server.clock import server_clock
    from shared.hlc import HLC
    from shared.records import uuid7

    event_id = event_in("rectified")  # reported by worker1; worker2 works the same grid
    login = pages.post("/api/v1/auth/device", json={"username": username, "password": "demo-pass",
                                                    "device_name": "平板", "node": "00000000000000e5"})
    hlc = str(HLC(server_clock().physical_ms(), 0, "00000000000000e5"))
    values = {"event": event_id, "action": "verify_pass", "actor": user(username).id, "stand_in": True}
    change = {"kind": "case_action", "id": uuid7(server_clock().physical_ms(), b"\x02" * 10),
              "bucket": "grid:G-0101", "fields": {name: [value, hlc] for name, value in values.items()}}
    pushed = pages.post("/api/v1/sync/push", json={"node": "00000000000000e5", "changes": [change]},
                        headers={"Authorization": f"Bearer {login.get_json()['token']}"})
    assert pushed.get_json()["results"][0]["status"] == status


def test_log_in_returns_to_the_page_that_asked_for_it(pages):
    event_id = event_in("dispatched")
    asked = pages.get(f"/cases/{event_id}")
    assert asked.status_code == 302 and asked.location.startswith("/login?next=")
    answer = pages.post(asked.location, data={"csrf_token": csrf_token(pages), "username": "supervisor1",
                                              "password": "demo-pass"})
    assert answer.status_code == 303 and answer.location == f"/cases/{event_id}"

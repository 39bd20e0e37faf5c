"""The server decides who did what, and every input reaching int(), a driver or a file name is checked first.

One test per finding of the outside attack (issue "Authorship and access the server enforces"), on
SQLite and PostgreSQL: author fields name the pushing user and are written once (A1), a photo's
hash grants nothing its author did not upload (A2), log-out ends the session on the server (A4),
and three inputs that gave 500 (D1-D3).
"""

from __future__ import annotations

import hashlib
import io

import pytest
from PIL import Image
from sqlalchemy import select

from server.db import db
from server.models import Record, User
from tests.server.test_sync_api import (
    bearer, case_action, error_of, event, hlc, new_id, pull, push, pushed, stamped, stored, token_of,
)

pytestmark = pytest.mark.usefixtures("demo")


def user_id(username: str) -> str:
    return db.session.scalar(select(User.id).where(User.username == username))


def results_of(client, token: str, changes: list[dict]) -> list[tuple[str, str]]:
    return [(r["status"], r.get("reason", "")) for r in pushed(client, token, changes)]


# --- A1: author fields name the pushing user, and are written once ---------------------------------

@pytest.mark.parametrize("someone", ["worker3", "supervisor1"])
def test_a_worker_cannot_report_an_event_in_another_users_name(client, someone):
    token, _me = token_of(client, "worker1")
    [(status, reason)] = results_of(client, token, [event(user_id(someone))])
    assert status == "rejected" and reason == "forbidden: reporter must be the pushing user"


def test_a_worker_cannot_rewrite_the_reporter_of_anothers_event_and_verify_it(client):
    """The attack, step by step: worker1 takes over worker2's event in their shared grid, then verifies it."""
    w2, me2 = token_of(client, "worker2", node="2222222222222222")
    sup, _ = token_of(client, "supervisor1", node="3333333333333333")
    unit, unit_user = token_of(client, "unit1", node="4444444444444444")
    w1, me1 = token_of(client, "worker1")
    reported = event(me2["id"])
    assert results_of(client, w2, [reported]) == [("applied", "")]
    assert results_of(client, sup, [case_action(reported, user_id("supervisor1"), "dispatch", unit="fire")])[0][0] \
        == "applied"
    assert results_of(client, unit, [case_action(reported, unit_user["id"], "rectify", at=hlc(5))])[0][0] == "applied"

    takeover = {"kind": "event", "id": reported["id"], "bucket": reported["bucket"],
                "fields": stamped({"reporter": me1["id"]}, hlc(10))}
    [(status, reason)] = results_of(client, w1, [takeover])
    assert status == "rejected" and reason == "forbidden: the reporter of a event is written once"
    assert stored(reported["id"])["reporter"][0] == me2["id"]
    [(status, _)] = results_of(client, w1, [case_action(reported, me1["id"], "verify_pass", at=hlc(11))])
    assert status == "applied"  # recorded, as every action is; the fold judges it
    from server.cases.service import load_case
    from server.reference import load_reference

    case = load_case(reported["id"], load_reference(), 0)
    assert case.state.status == "rectified"  # worker1 is not the reporter: the verification did not apply
    assert case.state.timeline[-1].reason == "refused: only the reporter, or a supervisor standing in, verifies"


def test_the_reporter_re_pushing_its_own_event_is_not_refused(client):
    """Write-once is about the value: a tablet that re-stamps its unacknowledged creation keeps working."""
    token, me = token_of(client, "worker1")
    created = event(me["id"])
    assert results_of(client, token, [created]) == [("applied", "")]
    restamped = {**created, "fields": stamped({name: value for name, (value, _) in created["fields"].items()},
                                              hlc(60))}
    assert results_of(client, token, [created]) == [("stale", "")]
    assert results_of(client, token, [restamped]) == [("applied", "")]


@pytest.mark.parametrize("kind", ["case_action", "house_check", "patrol"])
def test_every_kind_with_an_author_refuses_another_author(client, kind):
    token, me = token_of(client, "worker1")
    other = user_id("worker2")
    mine = event(me["id"])
    assert results_of(client, token, [mine]) == [("applied", "")]
    if kind == "case_action":
        change = case_action(mine, other, "comment", note="看过了")
        field = "actor"
    elif kind == "patrol":
        change = {"kind": "patrol", "id": new_id(), "bucket": "grid:G-0101", "fields": stamped(
            {"grid": "G-0101", "worker": other, "started_at": "2026-11-27T08:00:00.000Z"}, hlc())}
        field = "worker"
    else:
        house = {"kind": "rental_house", "id": new_id(), "bucket": "grid:G-0101",
                 "fields": stamped({"grid": "G-0101", "address": "东湖村1号"}, hlc())}
        assert results_of(client, token, [house]) == [("applied", "")]
        change = {"kind": "house_check", "id": new_id(), "bucket": "grid:G-0101", "fields": stamped(
            {"house": house["id"], "worker": other, "checked_at": "2026-11-27T08:00:00.000Z",
             "checklist": "rental_house", "checklist_version": 1, "answers": []}, hlc())}
        field = "worker"
    [(status, reason)] = results_of(client, token, [change])
    assert (status, reason) == ("rejected", f"forbidden: {field} must be the pushing user")


def test_the_case_page_shows_the_device_a_report_came_from(client, app):
    token, me = token_of(client, "worker1")
    reported = event(me["id"])
    assert results_of(client, token, [reported]) == [("applied", "")]
    assert db.session.get(Record, reported["id"]).device_id is not None
    page = logged_in_page_client(app)
    html = page.get(f"/cases/{reported['id']}").get_data(as_text=True)
    assert "平板 1" in html  # the device's name, from the push, not from the HLC the tablet chose


# --- A2: a photo's hash grants only what its author uploaded --------------------------------------

def jpeg(seed: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (seed % 256, 90, 160)).save(out, "JPEG")
    return out.getvalue()


def upload(client, token: str, data: bytes) -> None:
    name = hashlib.sha256(data).hexdigest()
    answer = client.patch(f"/api/v1/photos/{name}", data=data, headers={
        **bearer(token), "Upload-Offset": "0", "Upload-Length": str(len(data)),
        "Content-Type": "application/offset+octet-stream"})
    assert answer.status_code == 204, answer.get_data(as_text=True)


def test_referencing_anothers_photo_grants_no_access_to_its_bytes(client):
    w3, me3 = token_of(client, "worker3", node="3333333333333333")  # G-0201
    w1, me1 = token_of(client, "worker1")  # G-0101
    theirs = jpeg(7)
    name = hashlib.sha256(theirs).hexdigest()
    upload(client, w3, theirs)
    assert results_of(client, w3, [event(me3["id"], grid="G-0201", photos=[name])]) == [("applied", "")]
    assert client.get(f"/api/v1/photos/{name}", headers=bearer(w1)).status_code == 403
    borrowed = event(me1["id"], photos=[name])
    assert results_of(client, w1, [borrowed]) == [("applied", "")]  # a hash is only a name
    assert error_of(client.get(f"/api/v1/photos/{name}", headers=bearer(w1)), 403, "forbidden")
    hinted = client.get(f"/api/v1/photos/{name}", query_string={"record": borrowed["id"]}, headers=bearer(w1))
    assert hinted.status_code == 403
    assert client.get(f"/api/v1/photos/{name}", headers=bearer(w3)).status_code == 200


def test_a_photo_its_author_uploaded_is_served_to_those_who_see_the_record(client):
    w1, me1 = token_of(client, "worker1")
    sup, _ = token_of(client, "supervisor1", node="3333333333333333")
    mine = jpeg(9)
    name = hashlib.sha256(mine).hexdigest()
    upload(client, w1, mine)
    assert results_of(client, w1, [event(me1["id"], photos=[name])]) == [("applied", "")]
    for token in (w1, sup):
        assert client.get(f"/api/v1/photos/{name}", headers=bearer(token)).status_code == 200


# --- A4: log-out, deactivation and a new password end page sessions on the server ------------------

def page_client(app):
    """A page client whose requests each run in their own app context, as behind a real server."""
    from tests.pages.conftest import FreshContextClient

    return FreshContextClient(app, app.response_class, use_cookies=True)


def logged_in_page_client(app, username: str = "supervisor1"):
    from tests.pages.conftest import log_in

    page = page_client(app)
    log_in(page, username)
    assert page.get("/cases").status_code == 200
    return page


def saved_cookie(page) -> str:
    return page.get_cookie("session").value


def test_a_cookie_saved_before_log_out_no_longer_works(app):
    from tests.pages.conftest import csrf_token

    page = logged_in_page_client(app)
    cookie = saved_cookie(page)
    assert page.post("/logout", data={"csrf_token": csrf_token(page)}).status_code == 303
    thief = page_client(app)
    thief.set_cookie("session", cookie)
    answer = thief.get("/cases")
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]


@pytest.mark.parametrize("how", ["deactivate", "new password"])
def test_deactivation_and_a_new_password_end_every_session_at_once(app, how):
    from server import accounts

    page = logged_in_page_client(app)
    user = db.session.scalar(select(User).where(User.username == "supervisor1"))
    if how == "deactivate":
        accounts.deactivate(user)
    else:
        accounts.set_password(user, "a new password")
    db.session.commit()
    assert page.get("/cases").status_code == 302


def test_a_session_survives_until_it_is_ended(app):
    page = logged_in_page_client(app)
    assert page.get("/cases").status_code == 200
    other = logged_in_page_client(app, "admin")  # another user's log-in ends nobody's session
    assert page.get("/cases").status_code == 200 and other.get("/cases").status_code == 200


# --- D1-D3: inputs that reached int() or a driver unchecked ----------------------------------------

@pytest.mark.parametrize("cursor", ["9223372036854775808", "99999999999999999999", " 5", "5_0", "05", "+5", "-1",
                                    "５", "1e3", 5])
def test_a_cursor_is_accepted_only_in_the_form_the_server_gives(client, cursor):
    token, _ = token_of(client, "worker1")
    error_of(pull(client, token, {"ref": cursor}), 400, "invalid")


@pytest.mark.parametrize("cursor", ["0", "9223372036854775807", "", None])
def test_canonical_cursors_are_accepted(client, cursor):
    token, _ = token_of(client, "worker1")
    assert pull(client, token, {"ref": cursor}).status_code == 200


@pytest.mark.parametrize("header", ["Upload-Offset", "Upload-Length"])
@pytest.mark.parametrize("value", ["\u00b2", "\u0665", "１"])  # superscript two, Arabic-Indic five, fullwidth one
def test_non_ascii_digits_in_upload_headers_are_400(client, header, value):
    token, _ = token_of(client, "worker1")
    data = jpeg(3)
    headers = {**bearer(token), "Upload-Offset": "0", "Upload-Length": str(len(data)),
               "Content-Type": "application/offset+octet-stream", header: value}
    answer = client.patch(f"/api/v1/photos/{hashlib.sha256(data).hexdigest()}", data=data, headers=headers)
    error_of(answer, 400, "invalid")


@pytest.mark.parametrize("record", ["\x00", "abc\x00def", "x" * 100])
def test_a_record_hint_that_is_no_id_is_refused_without_reaching_the_store(client, record):
    token, me = token_of(client, "worker1")
    data = jpeg(4)
    upload(client, token, data)
    name = hashlib.sha256(data).hexdigest()
    assert results_of(client, token, [event(me["id"], photos=[name])]) == [("applied", "")]
    answer = client.get(f"/api/v1/photos/{name}", query_string={"record": record}, headers=bearer(token))
    error_of(answer, 403, "forbidden")


# --- contract and small leaks ----------------------------------------------------------------------

def test_a_405_under_the_api_says_what_is_allowed(client):
    token, _ = token_of(client, "worker1")
    answer = client.patch("/api/v1/photos/missing", headers=bearer(token))
    error_of(answer, 405, "method_not_allowed")
    allowed = set(answer.headers["Allow"].split(", "))
    assert "POST" in allowed and "PATCH" not in allowed
    assert "PATCH" not in client.options("/api/v1/photos/missing").headers["Allow"]
    error_of(client.get("/api/v1/sync/push"), 405)
    assert "POST" in client.get("/api/v1/sync/push").headers["Allow"]


def test_not_an_image_names_no_server_path(client, app):
    token, _ = token_of(client, "worker1")
    data = b"%PDF-1.4 " + b"x" * 100
    answer = client.patch(f"/api/v1/photos/{hashlib.sha256(data).hexdigest()}", data=data, headers={
        **bearer(token), "Upload-Offset": "0", "Upload-Length": str(len(data)),
        "Content-Type": "application/offset+octet-stream"})
    message = error_of(answer, 415, "not_an_image")["message"]
    assert "/" not in message and app.config["GRIDPATROL_PHOTO_DIR"] not in message


def test_database_errors_are_logged_without_their_parameters(app):
    assert db.engine.hide_parameters


@pytest.mark.parametrize("field, value", [("checklist_version", 10**30), ("checklist_version", 2**53)])
def test_integers_on_the_wire_have_ranges(client, field, value):
    token, me = token_of(client, "worker1")
    house = {"kind": "rental_house", "id": new_id(), "bucket": "grid:G-0101",
             "fields": stamped({"grid": "G-0101", "address": "东湖村2号"}, hlc())}
    check = {"kind": "house_check", "id": new_id(), "bucket": "grid:G-0101", "fields": stamped(
        {"house": house["id"], "worker": me["id"], "checked_at": "2026-11-27T08:00:00.000Z",
         "checklist": "rental_house", "checklist_version": 1, "answers": [], field: value}, hlc())}
    [house_result, (status, reason)] = results_of(client, token, [house, check])
    assert house_result == ("applied", "") and status == "rejected" and field in reason


def test_a_push_answer_is_unchanged_for_a_valid_event(client):
    """The authorship rules add no field to the contract: a plain valid push still just applies."""
    token, me = token_of(client, "worker1")
    answer = push(client, token, [event(me["id"])])
    assert answer.status_code == 200 and answer.get_json()["results"][0] == {
        "kind": "event", "id": answer.get_json()["results"][0]["id"], "status": "applied"}

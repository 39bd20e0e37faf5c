"""Resident ID numbers: sealed at rest, masked for roles an admin did not allow, never in logs (both engines).

The leak test is the contract: for every role, with and without the admin's
permission, no page, export, pull answer or log line carries a full ID number
to a role that may not see it, and an allowed role does see it.
"""

from __future__ import annotations

import json
import logging
import re
import secrets

import pytest
from sqlalchemy import text

from server import privacy
from server.clock import server_clock
from server.db import db
from shared.idcard import check_digit, mask_resident_id
from shared.records import uuid7

from .conftest import ROLE_OF, ROLES, Tablet, csrf_token, demo_id_numbers, house_by_address, house_ids, log_in

NEW_ID = "44030419951224" + "357"
NEW_ID += check_digit(NEW_ID)


def tenant_change(tablet: Tablet, house, tenant_id: str, **values) -> dict:
    """A wire change creating or editing a tenant of ``house``, stamped by the tablet."""
    hlc = tablet.hlc()
    values = {"house": house.id, **values}
    return {"kind": "tenant", "id": tenant_id, "bucket": house.bucket,
            "fields": {name: [value, hlc] for name, value in values.items()}}


def new_id() -> str:
    return uuid7(server_clock().physical_ms(), secrets.token_bytes(10))


# --- at rest ---------------------------------------------------------------------------------------

def test_id_numbers_are_sealed_at_rest_and_no_plaintext_is_stored(pages):
    numbers = demo_id_numbers()
    db.session.rollback()
    rows = db.session.execute(text("SELECT kind, field_values FROM records")).all()
    dump = "\n".join(str(values) for _kind, values in rows)
    assert not [n for n in numbers if n in dump], "a plaintext ID number is stored"
    stored = [(values if isinstance(values, dict) else json.loads(values))["id_number"]
              for kind, values in rows if kind == "tenant"]
    assert len(stored) == len(numbers) and all(v.startswith("sealed:v1:") for v in stored)
    assert sorted(privacy.unseal(v) for v in stored) == sorted(numbers)


def test_sealing_is_deterministic_and_bound_to_the_key(app):
    sealed = privacy.seal(NEW_ID)
    assert privacy.seal(NEW_ID) == sealed and privacy.unseal(sealed) == NEW_ID
    from server import create_app

    other = create_app({**app.config, "GRIDPATROL_ID_KEY": "ab" * 64})
    with other.app_context():
        assert privacy.seal(NEW_ID) != sealed
        with pytest.raises(privacy.SealError, match="GRIDPATROL_ID_KEY"):
            privacy.unseal(sealed)


def test_a_replayed_push_stays_stale(pages):
    house = house_by_address("东湖村18号")
    tablet = Tablet(pages, "worker1")
    change = tenant_change(tablet, house, new_id(), name="新租客", room="301", id_number=NEW_ID)
    assert tablet.push(change)[0]["status"] == "applied"
    assert tablet.push(change)[0]["status"] == "stale"
    assert [r["status"] for r in tablet.push(change, change)] == ["stale", "stale"]


def test_a_push_carrying_id_number_masked_is_refused(pages):
    house = house_by_address("东湖村18号")
    tablet = Tablet(pages, "worker1")
    change = tenant_change(tablet, house, new_id(), name="新租客", id_number_masked=mask_resident_id(NEW_ID))
    [result] = tablet.push(change)
    assert result["status"] == "rejected" and result["reason"].startswith("forbidden: id_number_masked")


# --- start-up --------------------------------------------------------------------------------------

PRODUCTION_SECRET = "5f" * 32  # production holds the session key to 32 characters too


def test_a_missing_key_in_production_fails_start_up(app_config):
    from server import create_app

    with pytest.raises(RuntimeError, match="GRIDPATROL_ID_KEY is not set"):
        create_app({**app_config, "GRIDPATROL_ENV": "production", "SECRET_KEY": PRODUCTION_SECRET, "GRIDPATROL_ID_KEY": None})


@pytest.mark.parametrize("key, error", [("not hex", "hex digits"), ("ab" * 16, "32, 48 or 64 bytes")])
def test_a_malformed_key_fails_start_up(app_config, key, error):
    from server import create_app

    with pytest.raises(RuntimeError, match=error):
        create_app({**app_config, "GRIDPATROL_ID_KEY": key})


def test_a_server_in_production_with_a_key_starts(app_config):
    from server import create_app

    app = create_app({**app_config, "GRIDPATROL_ENV": "production", "SECRET_KEY": PRODUCTION_SECRET,
                      "GRIDPATROL_ID_KEY": "cd" * 64})
    assert "gridpatrol.id_key" in app.extensions


# --- the leak test ---------------------------------------------------------------------------------

def _pages_seen(client) -> str:
    """Every house page, the tenant list, the registration page, the export and the setting page, as one text."""
    bodies = []
    for url in ["/houses", "/houses/tenants?all=1", "/houses/registration", "/houses/tenants.csv?all=1",
                "/admin/privacy", "/cases"] + [f"/houses/{h}" for h in house_ids()]:
        bodies.append(client.get(url).get_data(as_text=True))
    return "\n".join(bodies)


@pytest.mark.parametrize("allowed", [False, True], ids=["default", "role allowed"])
@pytest.mark.parametrize("username", ROLES)
def test_no_page_export_pull_or_log_line_shows_a_full_id_number_to_a_role_that_may_not_see_it(
        pages, caplog, username, allowed):
    caplog.set_level(logging.DEBUG)
    role = ROLE_OF[username]
    numbers = demo_id_numbers()
    if allowed:
        privacy.set_allowed_roles({role}, by="test")
    tablet = Tablet(pages, username)
    log_in(pages, username)
    # Things that put a number where logs could pick it up: a query string, a push, an error message.
    pages.get(f"/houses/tenants?q={numbers[0]}")
    if role == "worker":
        house = house_by_address("东湖村18号")
        assert tablet.push(tenant_change(tablet, house, new_id(), name="新租客", id_number=NEW_ID))[0][
            "status"] == "applied"
        numbers.append(NEW_ID)
    logging.getLogger("server").warning("looking for %s", numbers[1])

    seen_pages = _pages_seen(pages)
    pulled, pull_text = tablet.pull_all()
    tenants = [c for c in pulled if c["kind"] == "tenant"]

    may_see_pages = role in ("supervisor", "admin")
    may_pull_tenants = role in ("worker", "supervisor", "admin")
    full_on_pages = [n for n in numbers if n in seen_pages]
    full_in_pull = [n for n in numbers if n in pull_text]
    if allowed and may_see_pages:
        assert set(full_on_pages) == set(numbers)
    else:
        assert full_on_pages == []
        if may_see_pages:
            assert mask_resident_id(numbers[0]) in seen_pages
    if may_pull_tenants:
        assert tenants, "the role pulls the tenants of its grids"
    for change in tenants:
        if allowed:
            assert "id_number_masked" not in change["fields"]
            assert change["fields"]["id_number"][0] in numbers
        else:
            assert "id_number" not in change["fields"]
            masked, hlc = change["fields"]["id_number_masked"]
            assert "*" in masked and hlc
    if not allowed:
        assert full_in_pull == []
    assert "sealed:v1:" not in pull_text and "sealed:v1:" not in seen_pages
    assert caplog.records, "the test captured no log records"
    assert not [n for n in numbers if n in caplog.text], "an ID number reached a log line"


def test_logs_mask_id_numbers_in_messages_arguments_and_tracebacks(app, caplog):
    caplog.set_level(logging.DEBUG)
    logger = logging.getLogger("server.test")
    logger.info("query string ?id=%s&x=1", NEW_ID)
    logger.info(f"inline {NEW_ID}")
    try:
        raise ValueError(f"bad number {NEW_ID}")
    except ValueError:
        logger.exception("failed")
    assert NEW_ID not in caplog.text
    assert caplog.text.count(mask_resident_id(NEW_ID)) == 3
    logger.info("an HLC 2026-11-27T19:48:00.123Z-0000-9f86d081884c7d65 and unix ms 1764272880123 stay")
    assert "9f86d081884c7d65" in caplog.text and "1764272880123" in caplog.text


def test_the_development_server_access_log_masks_query_strings(app, caplog):
    """werkzeug's request log line carries the URL with its query string."""
    import threading

    import requests
    from werkzeug.serving import make_server

    caplog.set_level(logging.INFO)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        requests.get(f"http://127.0.0.1:{server.server_port}/houses/tenants?q={NEW_ID}", allow_redirects=False,
                     timeout=10).close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
    lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert any(mask_resident_id(NEW_ID) in line for line in lines), lines
    assert NEW_ID not in caplog.text


# --- who decides ------------------------------------------------------------------------------------

def test_an_admin_changes_the_setting_on_the_page_and_it_applies_at_once(pages):
    number = demo_id_numbers()[0]
    house = house_by_address("东湖村12号")
    log_in(pages, "admin")
    assert number not in pages.get(f"/houses/{house.id}").get_data(as_text=True)
    answer = pages.post("/admin/privacy", data={"csrf_token": csrf_token(pages), "roles": ["admin", "supervisor"]})
    assert answer.status_code == 303
    assert number in pages.get(f"/houses/{house.id}").get_data(as_text=True)
    setting = pages.get("/admin/privacy").get_data(as_text=True)
    assert re.search(r'<input checked[^>]*value="supervisor"', setting) and "admin" in setting
    pages.post("/admin/privacy", data={"csrf_token": csrf_token(pages)})  # nothing ticked: nobody
    assert number not in pages.get(f"/houses/{house.id}").get_data(as_text=True)


def test_an_unknown_role_on_the_page_is_refused(pages):
    log_in(pages, "admin")
    answer = pages.post("/admin/privacy", data={"csrf_token": csrf_token(pages), "roles": ["everyone"]})
    assert answer.status_code == 400


def test_the_cli_shows_allows_and_denies(app, demo):
    runner = app.test_cli_runner()
    assert "none (all masked)" in runner.invoke(args=["privacy", "show"]).output
    assert "supervisor" in runner.invoke(args=["privacy", "allow", "supervisor"]).output
    result = runner.invoke(args=["privacy", "allow", "admin"])
    assert "admin, supervisor" in result.output
    shown = runner.invoke(args=["privacy", "show"]).output
    assert "admin, supervisor" in shown and "by cli" in shown
    assert "admin" in runner.invoke(args=["privacy", "deny", "supervisor"]).output
    assert privacy.allowed_roles() == {"admin"}
    bad = runner.invoke(args=["privacy", "allow", "everyone"])
    assert bad.exit_code != 0


@pytest.mark.parametrize("allowed", [False, True])
def test_a_pull_that_carries_full_id_numbers_is_in_the_audit_log_and_a_masked_one_is_not(pages, allowed):
    from sqlalchemy import select

    from server.models import AuditEntry

    if allowed:
        privacy.set_allowed_roles({"worker"}, by="test")
    tablet = Tablet(pages, "worker1")
    pulled, _text = tablet.pull_all()
    tenants = {c["id"] for c in pulled if c["kind"] == "tenant" and "id_number" in c["fields"]}
    db.session.rollback()
    lines = list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == "view_id_numbers")))
    if not allowed:
        assert lines == [] and tenants == set()
        return
    assert tenants, "the demo's tenants of worker1's grid carry ID numbers"
    assert {line.actor for line in lines} == {"worker1"} and {line.kind for line in lines} == {"tenant"}
    assert sum(line.after["records"] for line in lines) == len(tenants)
    assert set().union(*(set(line.note[len("pull: "):].split(", ")) for line in lines)) == tenants


def test_a_pull_asks_the_id_number_setting_only_for_a_page_that_holds_a_tenant(pages):
    from sqlalchemy import event

    tablet = Tablet(pages, "worker1")
    asked: list[str] = []

    def note(conn, cursor, statement, parameters, context, executemany):
        if "settings" in statement:
            asked.append(statement)

    event.listen(db.engine, "before_cursor_execute", note)
    try:
        pulled, _text = tablet.pull_all()  # the grid's tenants among the rest
        with_tenants = len(asked)
        answer = pages.post("/api/v1/sync/pull", json={"cursors": {}, "limit": 1}, headers=tablet.headers)
        first = answer.get_json()["changes"][0]["kind"]  # the ref bucket's first record: no tenant
        after_first = len(asked)
    finally:
        event.remove(db.engine, "before_cursor_execute", note)
    assert any(c["kind"] == "tenant" for c in pulled) and with_tenants >= 1
    assert first != "tenant" and after_first == with_tenants

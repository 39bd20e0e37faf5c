"""Log-in throttling, log-in time, password rules, security headers, revoked devices (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from server import accounts

from .conftest import FreshContextClient, csrf_token, log_in, user


def _fail(client, username, address="127.0.0.1"):
    return client.post("/login", data={"csrf_token": csrf_token(client), "username": username, "password": "wrong"},
                       environ_base={"REMOTE_ADDR": address})


def test_the_eleventh_failed_log_in_in_a_minute_is_refused_with_429_and_a_clear_message(pages):
    statuses = [_fail(pages, "supervisor1").status_code for _ in range(11)]
    assert statuses == [401] * 10 + [429]
    refused = pages.post("/login", data={"csrf_token": csrf_token(pages), "username": "supervisor1",
                                         "password": "demo-pass"})
    assert refused.status_code == 429  # even the right password waits out the minute
    assert "Too many failed log-ins" in refused.get_data(as_text=True) or "登录失败次数过多" in \
        refused.get_data(as_text=True)


def test_throttling_counts_per_user_name_across_addresses_and_per_address_across_names(app, pages):
    statuses = [_fail(pages, "supervisor1", f"10.0.0.{i}").status_code for i in range(11)]
    assert statuses[-1] == 429  # one name from many addresses
    other = FreshContextClient(app, app.response_class, use_cookies=True)
    statuses = [_fail(other, f"nobody{i}", "10.0.1.1").status_code for i in range(11)]
    assert statuses[-1] == 429  # many names from one address
    fresh = FreshContextClient(app, app.response_class, use_cookies=True)
    log_in(fresh, "unit1")  # another name from another address is not held up


def test_successful_log_ins_are_not_counted(pages, app):
    for _ in range(12):
        client = FreshContextClient(app, app.response_class, use_cookies=True)
        log_in(client, "supervisor1")


def test_an_unknown_user_name_costs_a_password_hash_as_a_known_one_does(pages, monkeypatch):
    checked = []
    real = accounts.check_password_hash
    monkeypatch.setattr(accounts, "check_password_hash", lambda stored, given: checked.append(stored) or
                        real(stored, given))
    assert accounts.authenticate("no-such-user", "whatever") is None
    assert accounts.authenticate("supervisor1", "whatever") is None
    assert len(checked) == 2


@pytest.mark.parametrize("password, ok", [("short", False), ("worker9-secret", False), ("WORKER9xyzabc", False),
                                          ("long-enough-1", True)])
def test_new_passwords_need_ten_characters_and_not_the_user_name(pages, password, ok):
    log_in(pages, "admin")
    answer = pages.post("/admin/users/new/", data={"csrf_token": csrf_token(pages), "username": "worker9",
                                                   "name": "赵敏", "role": "worker", "unit": "", "password": password})
    assert (user("worker9") is not None) == ok, answer.get_data(as_text=True)[:500]


def test_every_page_carries_the_security_headers_and_no_inline_script_is_allowed(pages):
    for path in ["/login", "/admin/", "/api/v1/health"]:
        headers = pages.get(path).headers
        policy = headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
        assert "frame-ancestors 'none'" in policy
        assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"


def test_session_cookies_are_secure_in_production(app_config):
    from server import create_app

    app = create_app({**app_config, "GRIDPATROL_ENV": "production", "SECRET_KEY": "s" * 40})
    assert app.config["SESSION_COOKIE_SECURE"] and app.config["SESSION_COOKIE_HTTPONLY"]


def test_a_revoked_device_is_refused_at_its_next_sync_with_a_reason(pages):
    login = pages.post("/api/v1/auth/device", json={"username": "worker1", "password": "demo-pass",
                                                    "device_name": "平板", "node": "00000000000000ad"}).get_json()
    headers = {"Authorization": f"Bearer {login['token']}"}
    assert pages.post("/api/v1/sync/pull", json={"cursors": {}}, headers=headers).status_code == 200
    log_in(pages, "admin")
    from server.models import Device
    from server.db import db

    device = db.session.scalars(db.select(Device).where(Device.node == "00000000000000ad")).one()
    pages.post("/admin/devices/revoke/", data={"csrf_token": csrf_token(pages), "id": device.id})
    refused = pages.post("/api/v1/sync/pull", json={"cursors": {}}, headers=headers)
    assert refused.status_code == 401
    error = refused.get_json()["error"]
    assert error["code"] == "unauthorized" and error["details"] == {"reason": "device_revoked"}


def test_behind_a_configured_proxy_the_client_address_is_the_forwarded_one_and_no_more(app_config):
    from flask import request

    from server import create_app

    for hops, expected in [(0, "10.0.0.2"), (1, "203.0.113.9")]:
        app = create_app({**app_config, "GRIDPATROL_PROXY_HOPS": hops})
        seen = []
        app.add_url_rule("/_address", "address", lambda: seen.append(request.remote_addr) or "ok")
        # The client wrote 6.6.6.6 itself; the one proxy appended the address it saw: only that one is trusted.
        app.test_client().get("/_address", environ_base={"REMOTE_ADDR": "10.0.0.2"},
                              headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.9"})
        assert seen == [expected], hops


def test_a_bad_proxy_hops_setting_stops_the_start(app_config):
    from server import create_app

    with pytest.raises(RuntimeError, match="GRIDPATROL_PROXY_HOPS"):
        create_app({**app_config, "GRIDPATROL_PROXY_HOPS": 9})

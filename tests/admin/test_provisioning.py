"""Provisioning a tablet with a one-time code: issued on the admin pages, taken once, for minutes, throttled.

And what the devices page shows of each tablet: its app version and its refused changes. SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from datetime import timedelta

from server import accounts
from server.db import db
from server.models import Device, DeviceCode

from .conftest import audit_lines, csrf_token, log_in, user

NODE = "00000000000000c0"


def _issue(pages, username="worker1") -> str:
    log_in(pages, "admin")
    page = pages.post("/admin/devices/provision/", data={"csrf_token": csrf_token(pages), "user": user(username).id})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-testid="qr"' in html and "data:image/svg+xml" in html
    code = re.search(r'data-testid="code">([0-9A-Z-]+)<', html).group(1)
    assert re.search(r"gridpatrol://provision\?server=http%3A%2F%2Flocalhost&amp;code=" + code, html)
    return code


def _claim(client, code, address="127.0.0.1", node=NODE):
    return client.post("/api/v1/auth/device-code", json={"code": code, "device_name": "平板 7", "node": node},
                       environ_base={"REMOTE_ADDR": address})


def test_a_code_from_the_admin_page_provisions_one_tablet_once(pages):
    code = _issue(pages)
    answer = _claim(pages, code.lower().replace("-", " "))  # typed in small letters with a blank: the same code
    assert answer.status_code == 200, answer.get_data(as_text=True)
    body = answer.get_json()
    assert body["user"]["id"] == user("worker1").id and "grid:G-0101" in body["buckets"]
    pulled = pages.post("/api/v1/sync/pull", json={"cursors": {}}, headers={"Authorization": f"Bearer {body['token']}"})
    assert pulled.status_code == 200
    again = _claim(pages, code, node="00000000000000c1")
    assert again.status_code == 401 and again.get_json()["error"]["details"]["reason"] == "bad_code"
    assert [line.kind for line in audit_lines(action="provision_code")] == ["device"]
    assert audit_lines(action="provision")[0].actor == "worker1"
    assert code.replace("-", "") not in str([(line.before, line.after, line.note) for line in audit_lines()])
    stored = db.session.query(DeviceCode).one()
    assert stored.code_hash == accounts.hash_token(code.replace("-", "")) and stored.used_at is not None


def test_an_expired_code_or_one_of_a_deactivated_user_is_refused(pages):
    code = _issue(pages)
    row = db.session.query(DeviceCode).one()
    row.expires_at = row.expires_at - timedelta(minutes=accounts.DEVICE_CODE_MINUTES + 1)
    db.session.commit()
    assert _claim(pages, code).status_code == 401
    code = _issue(pages, "worker2")
    target = user("worker2")
    target.active = False
    db.session.commit()
    assert _claim(pages, code).status_code == 401


def test_wrong_codes_are_throttled_per_address(pages):
    statuses = [_claim(pages, f"WRONG{i:05d}", "10.9.0.1").status_code for i in range(11)]
    assert statuses == [401] * 10 + [429]
    assert _claim(pages, "WRONG99999", "10.9.0.2").status_code == 401  # another address is not held up


def test_bad_claims_are_400_not_500(pages):
    for body in [{}, {"code": "", "device_name": "x", "node": NODE}, {"code": "A" * 65, "device_name": "x", "node": NODE},
                 {"code": "ABCDE", "device_name": "x", "node": "not-a-node"}, {"code": 5, "device_name": "x", "node": NODE}]:
        assert pages.post("/api/v1/auth/device-code", json=body).status_code == 400, body


def test_only_admins_provision(pages):
    for username in ["supervisor1", "unit1"]:
        log_in(pages, username)
        assert pages.get("/admin/devices/provision/").status_code in (302, 403)


def test_the_devices_page_shows_the_app_version_and_refused_changes(pages):
    login = pages.post("/api/v1/auth/device", json={"username": "worker1", "password": "demo-pass",
                                                    "device_name": "平板 8", "node": "00000000000000c2"},
                       headers={"User-Agent": "GridPatrol-mobile/0.4.1 (android)"}).get_json()
    headers = {"Authorization": f"Bearer {login['token']}", "User-Agent": "GridPatrol-mobile/0.5.0 (android)"}
    foreign = {"kind": "rental_house", "id": "0190d1e4-0000-7000-8000-00000000c0c0", "bucket": "grid:G-0202",
               "fields": {"grid": ["G-0202", "2026-12-06T08:00:00.000Z-0000-00000000000000c2"],
                          "address": ["x", "2026-12-06T08:00:00.000Z-0000-00000000000000c2"]}}
    pushed = pages.post("/api/v1/sync/push", json={"node": "00000000000000c2", "changes": [foreign]}, headers=headers)
    assert pushed.get_json()["results"][0]["status"] == "rejected"
    device = db.session.query(Device).filter_by(node="00000000000000c2").one()
    db.session.refresh(device)
    assert device.app_version == "0.5.0" and device.refused_count == 1 and "G-0202" in device.last_refusal
    log_in(pages, "admin")
    html = pages.get("/admin/devices/").get_data(as_text=True)
    assert "0.5.0" in html and "G-0202" in html and 'data-testid="provision-link"' in html

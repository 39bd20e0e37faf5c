"""The sync API (/api/v1) through Flask's test client, on SQLite and on PostgreSQL.

Log-in and tokens, push results and per-change authorization, change-only paged pull per bucket,
limits, bad input, clock skew and the OpenAPI document (issue 3, "Server" and "Bad input").
"""

from __future__ import annotations

import gzip
import re
import hashlib
import itertools
import json
from datetime import datetime, timezone
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text

from server import accounts, create_app
from server.admin import demo as demo_data
from server.db import db
from server.models import Device, Record, User
from shared.hlc import HLC, format_ms, is_hlc
from shared.records import uuid7
from tests.mobile.fakes import DAY_MS, T0, ManualClock

PASSWORD = "demo-pass"
NODE = "0123456789abcdef"
OTHER_NODE = "fedcba9876543210"
_ids = itertools.count(1)


# --- fixtures and helpers ---------------------------------------------------------------------------

@pytest.fixture
def server_clock() -> ManualClock:
    """The server's physical clock, at T0 and moved only by the test."""
    return ManualClock(T0)


@pytest.fixture
def app_config(app_config, server_clock):
    """conftest's settings, with the server's clock under the test's control."""
    return {**app_config, "GRIDPATROL_PHYSICAL_CLOCK": server_clock}


@pytest.fixture
def build(app_config):
    """Build an app with extra settings on the test's store, with the demo loaded; returns its client."""
    apps = []

    def build(**overrides: Any):
        app = create_app({**app_config, **overrides})
        with app.app_context():
            demo_data.load(password=PASSWORD)
        apps.append(app)
        return app.test_client()

    yield build
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def new_id() -> str:
    return uuid7(T0 + next(_ids), bytes(10))


def hlc(ms: int = 0, counter: int = 0, node: str = NODE) -> str:
    """A timestamp ms after T0 (the server's clock)."""
    return str(HLC(T0 + ms, counter, node))


def stamped(values: dict, at: str) -> dict:
    return {name: [value, at] for name, value in values.items()}


def event(reporter: str, *, grid: str = "G-0101", at: str | None = None, rid: str | None = None, **values) -> dict:
    """A change that creates an event in a grid."""
    fields = {"grid": grid, "category": "fire_hazard", "description": "消防通道堵塞", "reporter": reporter,
              "reported_at": format_ms(T0), "urgent": False, **values}
    return {"kind": "event", "id": rid or new_id(), "bucket": f"grid:{grid}", "fields": stamped(fields, at or hlc())}


def case_action(of: dict, actor: str, action: str, *, at: str | None = None, **values) -> dict:
    """A change that records an action on the event `of` creates."""
    fields = {"event": of["id"], "action": action, "actor": actor, **values}
    return {"kind": "case_action", "id": new_id(), "bucket": of["bucket"], "fields": stamped(fields, at or hlc())}


def login(client, username: str = "worker1", password: str = PASSWORD, node: str = NODE):
    return client.post("/api/v1/auth/device",
                       json={"username": username, "password": password, "device_name": "平板 1", "node": node})


def token_of(client, username: str = "worker1", node: str = NODE) -> tuple[str, dict]:
    """Log in; the token and the user."""
    answer = login(client, username, node=node)
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    return body["token"], body["user"]


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def push(client, token: str, changes: Any, **body: Any):
    return client.post("/api/v1/sync/push", headers=bearer(token), json={"node": NODE, "changes": changes, **body})


def pushed(client, token: str, changes: list, **body: Any) -> list[dict]:
    """Push; the results, after checking the answer is 200 with one result per change."""
    answer = push(client, token, changes, **body)
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert is_hlc(body["hlc"])
    assert [(r["kind"], r["id"]) for r in body["results"]] == [(c["kind"], c["id"]) for c in changes]
    return body["results"]


def pull(client, token: str, cursors: dict | None = None, limit: int | None = None):
    body: dict[str, Any] = {"cursors": cursors or {}}
    if limit is not None:
        body["limit"] = limit
    return client.post("/api/v1/sync/pull", headers=bearer(token), json=body)


def pull_all(client, token: str, cursors: dict | None = None, limit: int = 500) -> tuple[list[dict], dict, int]:
    """Pull until `more` is false: every change, the last cursors and the number of pages."""
    changes, pages = [], 0
    while True:
        answer = pull(client, token, cursors, limit)
        assert answer.status_code == 200, answer.get_json()
        body = answer.get_json()
        assert len(body["changes"]) <= limit and is_hlc(body["hlc"])
        changes += body["changes"]
        cursors, pages = body["cursors"], pages + 1
        if not body["more"]:
            return changes, cursors, pages


def error_of(answer, status: int, code: str | None = None) -> dict:
    """The error of an answer, after checking its status and the one error shape."""
    assert answer.status_code == status, answer.get_data(as_text=True)
    assert answer.is_json
    body = answer.get_json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) <= {"code", "message", "details"}
    assert isinstance(error["code"], str) and isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error


def records() -> dict[str, tuple]:
    """The records table: id -> (kind, bucket, values, hlcs, position)."""
    db.session.expire_all()
    return {r.id: (r.kind, r.bucket, r.field_values, r.field_hlcs, r.position)
            for r in db.session.scalars(select(Record))}


def stored(rid: str) -> dict | None:
    """A stored record's {field: [value, hlc]}, or None."""
    db.session.expire_all()
    record = db.session.get(Record, rid)
    return None if record is None else {n: [v, record.field_hlcs[n]] for n, v in record.field_values.items()}


def device_of(token: str) -> Device:
    db.session.expire_all()
    return db.session.scalar(select(Device).where(Device.token_hash == accounts.hash_token(token)))


def user_named(username: str) -> User:
    return db.session.scalar(select(User).where(User.username == username))


def record_in(grid: str) -> Record:
    """A demo event in the grid."""
    return db.session.scalars(select(Record).where(Record.bucket == f"grid:{grid}", Record.kind == "event")).first()


# --- log-in and tokens ----------------------------------------------------------------------------

def test_a_worker_logs_in_and_gets_a_token_their_user_and_buckets(client, demo):
    answer = login(client)
    assert answer.status_code == 200
    body = answer.get_json()
    assert set(body) == {"token", "user", "buckets"}
    worker = user_named("worker1")
    assert body["user"] == {"id": worker.id, "name": "张伟", "role": "worker"}
    assert body["buckets"] == ["ref", "grid:G-0101"]
    token = body["token"]
    assert isinstance(token, str) and len(token) >= 32

    # Only the token's hash is stored: no column of the device's row holds the token.
    device = device_of(token)
    assert device is not None and device.user_id == worker.id and device.node == NODE
    assert device.token_hash == hashlib.sha256(token.encode()).hexdigest()
    row = db.session.execute(text("SELECT * FROM devices")).mappings().one()
    assert not any(token in str(value) for value in row.values())

    # Each log-in is a new device with its own token; supervisors read every grid.
    other = login(client, "supervisor1", node=OTHER_NODE).get_json()
    assert other["token"] != token
    assert other["buckets"] == ["ref"] + [f"grid:{code}" for code, *_ in sorted(demo_data.GRIDS)]


@pytest.mark.parametrize("username, password", [("worker1", "wrong"), ("nobody", PASSWORD), ("worker1", "")])
def test_a_wrong_log_in_gets_401_and_no_device(client, demo, username, password):
    error = error_of(login(client, username, password), 401, "unauthorized")
    assert "password" in error["message"]
    assert db.session.scalar(select(func.count()).select_from(Device)) == 0


def test_a_log_in_with_bad_fields_gets_400(client, demo):
    answer = client.post("/api/v1/auth/device",
                         json={"username": "worker1", "password": PASSWORD, "device_name": "t", "node": "NOT-HEX"})
    assert "node" in error_of(answer, 400)["message"]
    answer = client.post("/api/v1/auth/device", json={"username": "worker1", "node": NODE})
    error = error_of(answer, 400)
    assert "password" in error["message"] and "device_name" in error["message"]


@pytest.mark.parametrize("path", ["/api/v1/sync/push", "/api/v1/sync/pull"])
def test_no_unknown_or_revoked_token_gets_401(client, demo, path):
    token, _ = token_of(client)
    spare, _ = token_of(client, node=OTHER_NODE)  # the same worker's second tablet
    body = {"node": NODE, "changes": []} if path.endswith("push") else {"cursors": {}}
    for headers in [{}, {"Authorization": "Bearer "}, {"Authorization": "Bearer not-a-token"},
                    {"Authorization": f"Basic {token}"}, {"Authorization": token}]:
        error_of(client.post(path, headers=headers, json=body), 401, "unauthorized")
    assert client.post(path, headers=bearer(token), json=body).status_code == 200

    accounts.revoke_device(device_of(token))
    db.session.commit()
    error = error_of(client.post(path, headers=bearer(token), json=body), 401, "unauthorized")
    assert "log in" in error["message"]
    assert client.post(path, headers=bearer(spare), json=body).status_code == 200  # only that tablet


# --- push ------------------------------------------------------------------------------------------

def test_push_applies_answers_after_commit_and_a_replay_is_stale(client, demo, database_url):
    token, user = token_of(client)
    created = event(user["id"])
    assert pushed(client, token, [created]) == [{"kind": "event", "id": created["id"], "status": "applied"}]
    # Committed before the answer: another connection sees it at once.
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            seen = connection.execute(text("SELECT kind FROM records WHERE id = :id"), {"id": created["id"]}).all()
        assert seen == [("event",)]
    finally:
        engine.dispose()
    before = records()

    # The same push again (an answer lost on the way) changes nothing.
    assert [r["status"] for r in pushed(client, token, [created])] == ["stale"]
    assert records() == before

    # A newer edit of one field is applied; an older one is stale and changes nothing.
    newer = {**created, "fields": {"description": ["已清理", hlc(1_000)]}}
    older = {**created, "fields": {"description": ["older", hlc(-1_000)]}}
    assert [r["status"] for r in pushed(client, token, [newer, older])] == ["applied", "stale"]
    assert stored(created["id"])["description"] == ["已清理", hlc(1_000)]
    assert stored(created["id"])["category"] == ["fire_hazard", hlc()]


def test_each_change_is_authorized_on_its_own_and_the_rest_of_the_batch_is_applied(client, demo):
    token, user = token_of(client)  # worker1, grid G-0101
    other_worker = user_named("worker2")
    ok = event(user["id"])
    changes = [
        ok,
        event(user["id"], grid="G-0201"),  # another grid's record
        case_action(ok, user["id"], "dispatch", unit="fire"),  # supervisor-only
        case_action(ok, other_worker.id, "comment", note="not me"),  # actor is not the pushing user
        {"kind": "category", "id": new_id(), "bucket": "ref",  # reference data is the admins'
         "fields": stamped({"code": "x_new", "name": "新类别"}, hlc())},
        case_action(ok, user["id"], "comment", note="楼道已拍照"),  # allowed
    ]
    before = records()
    results = pushed(client, token, changes)
    assert [r["status"] for r in results] == ["applied", "rejected", "rejected", "rejected", "rejected", "applied"]
    reasons = [r.get("reason", "") for r in results]
    assert "grid:G-0201" in reasons[1] and "forbidden" in reasons[1]
    assert "worker" in reasons[2] and "dispatch" in reasons[2]
    assert "actor" in reasons[3]
    assert "reference data" in reasons[4]
    after = records()
    assert set(after) - set(before) == {ok["id"], changes[5]["id"]}  # nothing of a rejected change stored

    # A supervisor may dispatch the same case.
    supervisor_token, supervisor = token_of(client, "supervisor1", node=OTHER_NODE)
    dispatch = case_action(ok, supervisor["id"], "dispatch", unit="fire", at=hlc(10))
    assert [r["status"] for r in pushed(client, supervisor_token, [dispatch])] == ["applied"]


def test_a_worker_cannot_edit_another_grids_record_through_their_own_bucket(client, demo):
    token, user = token_of(client)  # worker1, grid G-0101
    theirs = record_in("G-0201")
    before = stored(theirs.id)
    sneaky = [
        # no `grid` field: the bucket is the only place the change names, and it is one of worker1's
        {"kind": "event", "id": theirs.id, "bucket": "grid:G-0101",
         "fields": {"description": ["hijacked", hlc(1_000)]}},
        # a `grid` write that loses the merge, so the record would stay in G-0201 with the new urgent
        {"kind": "event", "id": theirs.id, "bucket": "grid:G-0101",
         "fields": {"grid": ["G-0101", hlc(-DAY_MS)], "urgent": [True, hlc(1_000)]}},
    ]
    results = pushed(client, token, sneaky)
    assert [r["status"] for r in results] == ["rejected", "rejected"]
    assert all("grid:G-0201" in r["reason"] for r in results)
    assert stored(theirs.id) == before


def test_append_only_history_cannot_be_rewritten(client, demo):
    token, user = token_of(client)
    ok = event(user["id"])
    comment = case_action(ok, user["id"], "comment", note="first")
    assert [r["status"] for r in pushed(client, token, [ok, comment])] == ["applied", "applied"]
    rewrite = {**comment, "fields": {"note": ["rewritten", hlc(5_000)]}}
    [result] = pushed(client, token, [rewrite])
    assert result["status"] == "rejected" and "append-only" in result["reason"]
    assert stored(comment["id"])["note"] == ["first", hlc()]


# --- pull ------------------------------------------------------------------------------------------

def test_pull_pages_ref_first_and_serves_only_the_users_buckets(client, demo):
    token, _ = token_of(client)
    expected = {rid: row for rid, row in records().items() if row[1] in ("ref", "grid:G-0101")}
    assert any(row[1] == "grid:G-0101" for row in expected.values())
    assert len(records()) > len(expected)  # G-0201 holds an event worker1 must not get

    changes, cursors, pages = [], {}, []
    while True:
        body = pull(client, token, cursors, limit=5).get_json()
        assert len(body["changes"]) <= 5
        assert set(body["cursors"]) == {"ref", "grid:G-0101"}
        changes += body["changes"]
        cursors = body["cursors"]
        pages.append(body)
        if not body["more"]:
            break
    assert len(pages) == -(-len(expected) // 5)
    assert all(page["more"] for page in pages[:-1])
    buckets = [change["bucket"] for change in changes]
    assert buckets == sorted(buckets, key=lambda b: b != "ref")  # every ref change before any grid change
    assert sorted(c["id"] for c in changes) == sorted(expected)  # each record once, none of G-0201
    for change in changes:  # a pull answers with each record's whole state
        kind, bucket, values, hlcs, _ = expected[change["id"]]
        assert (change["kind"], change["bucket"]) == (kind, bucket)
        assert change["fields"] == {name: [value, hlcs[name]] for name, value in values.items()}


def test_pull_is_change_only_and_an_edit_comes_back_whole(client, demo):
    token, user = token_of(client)
    created = event(user["id"], location={"lat": 22.5, "lon": 114.0, "accuracy_m": 5.0, "source": "gps"})
    pushed(client, token, [created])
    _, cursors, _ = pull_all(client, token)

    again = pull(client, token, cursors).get_json()
    assert (again["changes"], again["more"], again["cursors"]) == ([], False, cursors)

    edit = {**created, "fields": {"urgent": [True, hlc(2_000)]}}
    pushed(client, token, [edit])
    body = pull(client, token, cursors).get_json()
    [change] = body["changes"]
    assert change["id"] == created["id"] and body["more"] is False
    number = change["fields"].pop("case_number")  # the server's own write when the event arrived
    assert re.fullmatch(r"\d{8}-\d{4}", number[0])
    assert change["fields"] == {**created["fields"], "urgent": [True, hlc(2_000)]}  # every field, not just urgent
    assert body["cursors"]["ref"] == cursors["ref"]
    assert int(body["cursors"]["grid:G-0101"]) > int(cursors["grid:G-0101"])
    assert pull(client, token, body["cursors"]).get_json()["changes"] == []


def test_a_newly_assigned_grid_is_pulled_from_zero(client, demo):
    token, _ = token_of(client)
    _, cursors, _ = pull_all(client, token)
    assert set(cursors) == {"ref", "grid:G-0101"}
    theirs = record_in("G-0201")  # written before every cursor worker1 holds

    accounts.assign_grids(user_named("worker1"), ["G-0101", "G-0201"])
    db.session.commit()
    changes, new_cursors, _ = pull_all(client, token, cursors)
    assert [c["id"] for c in changes] == [theirs.id]
    assert set(new_cursors) == {"ref", "grid:G-0101", "grid:G-0201"}
    assert {b: new_cursors[b] for b in cursors} == cursors


def test_a_grid_taken_away_is_no_longer_served(client, demo):
    token, user = token_of(client)
    mine = event(user["id"])
    pushed(client, token, [mine])

    accounts.assign_grids(user_named("worker1"), ["G-0201"])
    db.session.commit()
    changes, cursors, _ = pull_all(client, token, {"ref": "0", "grid:G-0101": "0"})
    assert set(cursors) == {"ref", "grid:G-0201"}
    assert {c["bucket"] for c in changes} == {"ref", "grid:G-0201"}
    [result] = pushed(client, token, [{**mine, "fields": {"urgent": [True, hlc(1_000)]}}])
    assert result["status"] == "rejected" and "grid:G-0101" in result["reason"]


def test_a_bad_pull_gets_400(client, demo):
    token, _ = token_of(client)
    for body in [{"cursors": {"ref": "abc"}}, {"cursors": {"ref": "-1"}}, {"cursors": ["ref"]},
                 {"cursors": {}, "limit": 0}, {"cursors": {}, "limit": "5"}, {"cursors": {}, "limit": 1.5},
                 {"cursors": {"ref\u0000": "0"}}, {"cursors": {"ref": 5}}]:
        answer = client.post("/api/v1/sync/pull", headers=bearer(token), json=body)
        assert answer.status_code == 400, body
        error_of(answer, 400)


# --- limits ------------------------------------------------------------------------------------------

def test_a_push_of_too_many_changes_gets_413_and_stores_nothing(build):
    client = build(GRIDPATROL_MAX_PUSH_CHANGES=3)
    token, user = token_of(client)
    with client.application.app_context():
        before = records()
        error = error_of(push(client, token, [event(user["id"]) for _ in range(4)]), 413, "too_large")
        assert "3" in error["message"] and "4" in error["message"]
        assert records() == before
    assert [r["status"] for r in pushed(client, token, [event(user["id"]) for _ in range(3)])] == ["applied"] * 3


def test_a_push_body_too_large_gets_413_plain_or_gzipped(build):
    client = build(GRIDPATROL_MAX_PUSH_BYTES=16_384)
    token, user = token_of(client)
    big = [event(user["id"], description="长" * 3000) for _ in range(3)]  # ~27 KB of UTF-8
    raw = json.dumps({"node": NODE, "changes": big}).encode()
    assert len(raw) > 16_384
    with client.application.app_context():
        before = records()
        error_of(client.post("/api/v1/sync/push", headers=bearer(token), data=raw,
                             content_type="application/json"), 413, "too_large")
        # Zipped, the same body is small on the wire, but the limit holds for what it unzips to.
        packed = gzip.compress(raw)
        assert len(packed) < 16_384
        error = error_of(client.post("/api/v1/sync/push", headers={**bearer(token), "Content-Encoding": "gzip"},
                                     data=packed, content_type="application/json"), 413, "too_large")
        assert "unzipped" in error["message"]
        assert records() == before


def test_a_gzipped_push_is_accepted(client, demo):
    token, user = token_of(client)
    created = event(user["id"])
    packed = gzip.compress(json.dumps({"node": NODE, "changes": [created]}).encode())
    answer = client.post("/api/v1/sync/push", headers={**bearer(token), "Content-Encoding": "gzip"}, data=packed,
                         content_type="application/json")
    assert answer.status_code == 200, answer.get_json()
    assert [r["status"] for r in answer.get_json()["results"]] == ["applied"]
    held = stored(created["id"])
    assert held.pop("case_number")[0]  # given by the server on arrival
    assert held == created["fields"]


def test_a_gzip_bomb_gets_413_and_bad_gzip_400(build):
    client = build(GRIDPATROL_MAX_PUSH_BYTES=65_536)
    token, _ = token_of(client)
    # 32 MiB of JSON whitespace after a valid body: some 32 KiB zipped.
    bomb = gzip.compress(json.dumps({"node": NODE, "changes": []}).encode() + b" " * (32 << 20))
    assert len(bomb) < 65_536
    headers = {**bearer(token), "Content-Encoding": "gzip"}
    error_of(client.post("/api/v1/sync/push", headers=headers, data=bomb, content_type="application/json"),
             413, "too_large")
    error_of(client.post("/api/v1/sync/push", headers=headers, data=b"not gzip at all",
                         content_type="application/json"), 400)


# --- bad input ---------------------------------------------------------------------------------------

def test_a_body_that_is_not_a_json_object_gets_400(client, demo):
    token, _ = token_of(client)
    before = records()
    deep = b"[" * 100_000 + b"]" * 100_000  # deeper than either JSON reader recurses
    for raw in [b"{not json", b"", b"\xff\xfe{}", b'{"node": "0123456789abcdef", "changes": [', b"[]",
                b'"a string"', b"null", deep, b'{"node": "0123456789abcdef", "changes": [' + deep + b"]}"]:
        answer = client.post("/api/v1/sync/push", headers=bearer(token), data=raw, content_type="application/json")
        assert answer.status_code == 400, raw
        error_of(answer, 400)
    assert records() == before


def test_a_lone_surrogate_is_rejected_alone(client, demo):
    """JSON may escape half a surrogate pair; no UTF-8 text holds one, and PostgreSQL's jsonb refuses it."""
    token, user = token_of(client)
    good, bad = event(user["id"]), event(user["id"], description="楼道\ud800堆放")
    raw = json.dumps({"node": NODE, "changes": [good, bad]}).encode()  # ASCII, with the escape \ud800
    assert b"\\ud800" in raw
    answer = client.post("/api/v1/sync/push", headers=bearer(token), data=raw, content_type="application/json")
    assert answer.status_code == 200, answer.get_data()
    applied, rejected = answer.get_json()["results"]
    assert applied["status"] == "applied" and rejected["status"] == "rejected"
    assert "fields.description" in rejected["reason"] and "surrogate" in rejected["reason"]
    stored = records()
    assert good["id"] in stored and bad["id"] not in stored


def test_a_push_with_wrong_types_gets_400_naming_the_field(client, demo):
    token, _ = token_of(client)
    before = records()
    for body, field in [
        ({"node": "NOT-HEX-NOT-HEX!", "changes": []}, "node"),
        ({"node": "0123456789abcde", "changes": []}, "node"),
        ({"node": 123, "changes": []}, "node"),
        ({"node": "0123456789abc\u0000ef", "changes": []}, "node"),
        ({"node": NODE, "changes": "not a list"}, "changes"),
        ({"node": NODE, "changes": {"kind": "event"}}, "changes"),
        ({"node": NODE, "changes": None}, "changes"),
        ({"node": NODE}, "changes"),
        ({"node": NODE, "changes": [], "sent_at": "yesterday"}, "sent_at"),
    ]:
        answer = client.post("/api/v1/sync/push", headers=bearer(token), json=body)
        assert answer.status_code == 400, body
        assert field in error_of(answer, 400)["message"], body
    assert records() == before


def test_a_bad_change_is_rejected_alone_naming_the_field_and_nothing_of_it_is_stored(client, demo):
    token, user = token_of(client)
    good = event(user["id"])

    def with_fields(**fields: Any) -> dict:
        change = event(user["id"])
        return {**change, "fields": {**change["fields"], **fields}}

    bad = [  # (what the reason must name, the change)
        ("kind", {**event(user["id"]), "kind": "incident"}),
        ("fields.urgent", event(user["id"], urgent="yes")),
        ("fields.description", event(user["id"], description="楼道\u0000堆放")),  # NUL in a value
        ("NUL", with_fields(**{"loc\u0000ation": [None, hlc()]})),  # NUL in a field name
        ("fields.colour", event(user["id"], colour="red")),
        ("fields.location.lat", event(user["id"], location={"lat": "north", "lon": 114.0, "source": "gps"})),
        ("id", {**event(user["id"]), "id": "not-a-uuid"}),
        ("bucket", {**event(user["id"]), "bucket": "grid:G-0201"}),
        ("'yesterday' is not an HLC", with_fields(description=["x", "yesterday"])),
        ("fields", {**event(user["id"]), "fields": "all of them"}),
        ("object", "not even an object"),
        ("category", {**event(user["id"]), "fields": stamped({"description": "no grid, no category"}, hlc())}),
    ]
    changes = [good, *(change for _, change in bad)]
    before = records()
    answer = push(client, token, changes)
    assert answer.status_code == 200, answer.get_json()
    results = answer.get_json()["results"]
    assert len(results) == len(changes)
    assert results[0] == {"kind": "event", "id": good["id"], "status": "applied"}
    for (named, _), result in zip(bad, results[1:]):
        assert result["status"] == "rejected", (named, result)
        assert named in result["reason"], (named, result["reason"])
    after = records()
    assert set(after) - set(before) == {good["id"]}
    assert {rid: row for rid, row in after.items() if rid != good["id"]} == before


# --- clock skew ------------------------------------------------------------------------------------

def test_a_push_stamped_too_far_ahead_gets_409_stores_nothing_and_records_the_skew(client, demo, server_clock):
    token, user = token_of(client)
    on_time, ahead = event(user["id"]), event(user["id"], at=hlc(301_000))  # the default drift: 300 s
    before = records()
    error = error_of(push(client, token, [on_time, ahead], sent_at=format_ms(T0 + 301_000)), 409, "clock_skew")
    server_time = error["details"]["server_time"]
    assert server_time == format_ms(T0) == "2026-11-18T11:06:40.000Z"
    parsed = datetime.fromisoformat(server_time.replace("Z", "+00:00"))
    assert parsed.utcoffset().total_seconds() == 0
    assert parsed == datetime.fromtimestamp(T0 / 1000, tz=timezone.utc)
    assert records() == before  # not even the change that was on time
    assert device_of(token).clock_skew_ms == 301_000

    # Within the drift the same push goes through.
    near = event(user["id"], at=hlc(299_000))
    assert [r["status"] for r in pushed(client, token, [on_time, near])] == ["applied", "applied"]


def test_the_allowed_drift_is_a_setting(build, server_clock):
    client = build(GRIDPATROL_MAX_DRIFT_SECONDS=10)
    token, user = token_of(client)
    server_clock.advance(60_000)
    error = error_of(push(client, token, [event(user["id"], at=hlc(60_000 + 10_001))]), 409, "clock_skew")
    assert error["details"]["server_time"] == format_ms(T0 + 60_000)
    assert pushed(client, token, [event(user["id"], at=hlc(60_000 + 9_999))])[0]["status"] == "applied"


def test_sent_at_records_the_devices_skew(client, demo):
    token, user = token_of(client)
    # A day behind: not refused (the server is not authoritative for time), but recorded for admins.
    assert pushed(client, token, [event(user["id"], at=hlc(-DAY_MS))], sent_at=format_ms(T0 - DAY_MS))
    assert device_of(token).clock_skew_ms == -DAY_MS
    # A device whose clock is two hours fast but whose corrected stamps are on time.
    assert pushed(client, token, [], sent_at=format_ms(T0 + 2 * 3_600_000)) == []
    assert device_of(token).clock_skew_ms == 2 * 3_600_000
    assert device_of(token).last_seen_at is not None


# --- the OpenAPI document ----------------------------------------------------------------------------

def resolve(document: dict, ref: str) -> dict:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def all_refs(node: Any):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from all_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from all_refs(value)


def walk(node):
    """Every (key, value) pair in a JSON document, depth first."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def test_the_openapi_document_describes_the_sync_api(client):
    answer = client.get("/api/v1/openapi.json")
    assert answer.status_code == 200 and answer.is_json
    document = answer.get_json()
    try:  # the full validator, where it is installed; the checks below stand without it
        from openapi_spec_validator import validate
    except ImportError:
        pass
    else:
        validate(document)

    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] and document["info"]["version"]
    for ref in all_refs(document):  # every reference resolves
        assert isinstance(resolve(document, ref), dict), ref
    schemas = document["components"]["schemas"]
    assert {"Change", "PushRequest", "PushAnswer", "PullRequest", "PullAnswer", "LoginRequest", "LoginAnswer",
            "Error"} <= set(schemas)
    assert document["components"]["securitySchemes"]["device"] == {"type": "http", "scheme": "bearer"}

    paths = document["paths"]
    for path, request, answer_schema in [("/api/v1/auth/device", "LoginRequest", "LoginAnswer"),
                                         ("/api/v1/sync/push", "PushRequest", "PushAnswer"),
                                         ("/api/v1/sync/pull", "PullRequest", "PullAnswer")]:
        operation = paths[path]["post"]
        assert operation["requestBody"]["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{request}"}
        assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{answer_schema}"}
        assert operation["responses"]["401"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Error"}
    push_operation = paths["/api/v1/sync/push"]["post"]
    assert {"400", "401", "409", "413"} <= set(push_operation["responses"])
    assert push_operation["security"] == [{"device": []}]
    assert "security" not in paths["/api/v1/auth/device"]["post"]

    push_request = schemas["PushRequest"]
    assert set(push_request["required"]) == {"node", "changes"}
    assert push_request["properties"]["changes"]["type"] == "array"
    # A push's change is checked on its own and answered `rejected` in a 200: documented loosely, described.
    push_item = push_request["properties"]["changes"]["items"]
    assert "$ref" not in push_item and "type" not in push_item and "rejected" in push_item["description"]
    # What the server refuses of a push's other members is stated: the one form of a time, no NUL in a text.
    from server.api import INSTANT_PATTERN, TEXT_PATTERN

    assert push_request["properties"]["sent_at"]["pattern"] == INSTANT_PATTERN
    login = schemas["LoginRequest"]["properties"]
    assert login["username"]["pattern"] == login["device_name"]["pattern"] == TEXT_PATTERN
    cursors = schemas["PullRequest"]["properties"]["cursors"]
    assert cursors["propertyNames"]["pattern"] == cursors["additionalProperties"]["pattern"] == TEXT_PATTERN
    assert schemas["PullAnswer"]["properties"]["changes"]["items"] == {"$ref": "#/components/schemas/Change"}
    change = schemas["Change"]
    assert set(change["required"]) == {"kind", "id", "bucket", "fields"}
    assert {"event", "case_action", "grid"} <= set(change["properties"]["kind"]["enum"])
    # Valid OpenAPI, not Python: an object's size is minProperties, and patterns have no \\Z.
    assert change["properties"]["fields"]["minProperties"] == 1
    assert "minLength" not in change["properties"]["fields"]
    patterns = [v for k, v in walk(document) if k == "pattern"]
    assert patterns and not [p for p in patterns if "\\Z" in p]
    error = resolve(document, schemas["Error"]["properties"]["error"]["$ref"])
    assert {"code", "message"} <= set(error["required"]) and "details" in error["properties"]

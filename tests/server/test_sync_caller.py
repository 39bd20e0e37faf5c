"""Push and pull's caller (server/api.py caller_required, server/accounts.py caller_for_token), on both engines.

The caller is read from the token without the ORM: it must be the device and user `device_for_token`
finds, refused for the same reasons, and what push and pull note on the device must reach its row
with their commit, and not without one.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from server import accounts
from server.db import db
from server.errors import ApiError
from server.models import Device, User
from tests.server.test_sync_api import NODE, OTHER_NODE, bearer, device_of, event, pull, pushed, token_of

GRIDS = ["G-0101", "G-0102", "G-0201", "G-0202", "G-9999"]  # the last is no grid of the demo: still a code


def caller_as_device(token: str) -> tuple:
    """What caller_for_token answers, in the terms device_for_token's ORM objects give."""
    device, user = accounts.caller_for_token(token)
    return (device.id, device.user_id, device.name, device.node, device.last_seen_at, device.clock_skew_ms,
            device.app_version, device.refused_count, user.id, user.username, user.name, user.role, user.unit,
            user.active, user.grid_codes)


def orm_device(token: str) -> tuple:
    db.session.expire_all()
    device = accounts.device_for_token(token)
    user = device.user
    return (device.id, device.user_id, device.name, device.node, device.last_seen_at, device.clock_skew_ms,
            device.app_version, device.refused_count, user.id, user.username, user.name, user.role, user.unit,
            user.active, user.grid_codes)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(grids=st.lists(st.sampled_from(GRIDS), unique=True, max_size=len(GRIDS)),
       username=st.sampled_from(["worker1", "supervisor1", "unit1"]))
def test_the_caller_is_the_device_and_user_the_orm_finds_whatever_their_grids(client, demo, grids, username):
    token, _ = token_of(client, username)
    user = db.session.scalar(select(User).where(User.username == username))
    accounts.assign_grids(user, grids)
    db.session.commit()
    assert caller_as_device(token) == orm_device(token)
    assert accounts.caller_for_token(token)[1].grid_codes == sorted(grids)
    db.session.rollback()


def test_a_token_nobody_holds_is_no_caller_and_a_stopped_one_is_refused_with_its_reason(client, demo):
    token, _ = token_of(client)
    assert accounts.caller_for_token("not-a-token") is None
    assert accounts.caller_for_token(token) is not None
    db.session.rollback()
    accounts.revoke_device(device_of(token))
    db.session.commit()
    with pytest.raises(ApiError) as refused:
        accounts.caller_for_token(token)
    assert refused.value.status == 401 and refused.value.details == {"reason": "device_revoked"}
    db.session.rollback()

    other, _ = token_of(client, "worker2", node=OTHER_NODE)
    accounts.deactivate(db.session.scalar(select(User).where(User.username == "worker2")))
    db.session.commit()
    with pytest.raises(ApiError) as refused:
        accounts.caller_for_token(other)
    assert refused.value.status == 401 and refused.value.details == {"reason": "user_deactivated"}
    db.session.rollback()
    for path, body in [("/api/v1/sync/push", {"node": NODE, "changes": []}), ("/api/v1/sync/pull", {"cursors": {}})]:
        for stopped, reason in [(token, "device_revoked"), (other, "user_deactivated")]:
            answer = client.post(path, headers=bearer(stopped), json=body)
            assert answer.status_code == 401 and answer.get_json()["error"]["details"]["reason"] == reason


def test_what_is_set_on_a_caller_device_is_written_by_a_commit_and_dropped_by_a_rollback(client, demo):
    token, _ = token_of(client)
    device, _ = accounts.caller_for_token(token)
    accounts.set_device(device, app_version="9.9.9", clock_skew_ms=1234)
    db.session.rollback()
    db.session.commit()
    assert (device_of(token).app_version, device_of(token).clock_skew_ms) != ("9.9.9", 1234)

    device, _ = accounts.caller_for_token(token)
    accounts.set_device(device, app_version="9.9.9")
    accounts.set_device(device, clock_skew_ms=1234)
    db.session.commit()
    assert (device_of(token).app_version, device_of(token).clock_skew_ms) == ("9.9.9", 1234)
    db.session.commit()  # nothing left to write
    assert device_of(token).app_version == "9.9.9"


def test_push_and_pull_note_the_app_version_the_last_sight_and_the_refusals_on_the_device(client, demo):
    token, user = token_of(client)
    assert device_of(token).last_seen_at is not None  # the log-in
    db.session.execute(Device.__table__.update().values(last_seen_at=None))
    db.session.commit()
    headers = {**bearer(token), "User-Agent": "GridPatrol-mobile/1.2.3 (Android 11)"}
    assert client.post("/api/v1/sync/pull", headers=headers, json={"cursors": {}}).status_code == 200
    device = device_of(token)
    assert device.app_version == "1.2.3" and device.last_seen_at is not None
    seen = device.last_seen_at

    # A pull within the minute writes nothing but a new app version.
    headers["User-Agent"] = "GridPatrol-mobile/1.2.4"
    assert pull(client, token).status_code == 200
    assert client.post("/api/v1/sync/pull", headers=headers, json={"cursors": {}}).status_code == 200
    assert (device_of(token).app_version, device_of(token).last_seen_at) == ("1.2.4", seen)

    results = pushed(client, token, [event(user["id"]), event(user["id"], grid="G-0202")])
    assert [r["status"] for r in results] == ["applied", "rejected"]
    device = device_of(token)
    assert device.refused_count == 1 and "G-0202" in device.last_refusal and device.last_refusal_at is not None
    assert pushed(client, token, [event(user["id"], grid="G-0202")] * 2)[0]["status"] == "rejected"
    assert device_of(token).refused_count == 3

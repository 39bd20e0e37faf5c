"""A unit user's API scope: through /sync/push a unit acts only on cases now dispatched to its unit (issue 6).

The pages already show a unit only its own cases; the push path must not be a way around that.
"""

from __future__ import annotations

import secrets

import pytest

from server.sync import apply
from server.clock import server_clock
from server.db import db
from server.models import Record
from shared.records import uuid7

from .test_sync_api import OTHER_NODE, case_action, pushed, token_of, user_named


def stored_event() -> dict:
    """A new event and the wire form a push would name it by (only id and bucket are read)."""
    event_id = uuid7(server_clock().physical_ms(), secrets.token_bytes(10))
    apply.write_as_server([apply.stamp("event", event_id, {
        "grid": "G-0101", "category": "fire_hazard", "description": "消防通道堵塞", "urgent": False,
        "reporter": user_named("worker1").id, "reported_at": "2026-01-01T00:00:00.000Z"})])
    return {"id": event_id, "bucket": "grid:G-0101"}


def dispatch(event: dict, unit: str) -> None:
    action_id = uuid7(server_clock().physical_ms(), secrets.token_bytes(10))
    apply.write_as_server([apply.stamp("case_action", action_id, {
        "event": event["id"], "action": "dispatch", "unit": unit, "actor": user_named("supervisor1").id},
        bucket=event["bucket"])])


@pytest.fixture
def cases(app, demo):
    """Three cases: dispatched to fire (unit1's unit), dispatched to city_management, not dispatched."""
    ours, theirs, undispatched = stored_event(), stored_event(), stored_event()
    dispatch(ours, "fire")
    dispatch(theirs, "city_management")
    return ours, theirs, undispatched


def test_a_unit_pushes_rectify_only_for_a_case_dispatched_to_its_unit(client, cases):
    ours, theirs, undispatched = cases
    token, unit1 = token_of(client, "unit1", node=OTHER_NODE)
    assert user_named("unit1").unit == "fire"
    changes = [case_action(case, unit1["id"], "rectify", note="已整改") for case in (ours, theirs, undispatched)]
    changes.append(case_action(theirs, unit1["id"], "comment", note="不是我们的"))
    results = pushed(client, token, changes)
    assert [r["status"] for r in results] == ["applied", "rejected", "rejected", "rejected"]
    assert all(r["reason"].startswith("forbidden:") for r in results[1:])
    db.session.expire_all()
    assert db.session.get(Record, changes[0]["id"]) is not None
    assert all(db.session.get(Record, c["id"]) is None for c in changes[1:])  # nothing of a refusal stored


def test_a_re_dispatch_moves_the_units_scope(client, cases):
    ours, _theirs, _undispatched = cases
    dispatch(ours, "city_management")
    token, unit1 = token_of(client, "unit1", node=OTHER_NODE)
    [result] = pushed(client, token, [case_action(ours, unit1["id"], "rectify")])
    assert result["status"] == "rejected" and result["reason"].startswith("forbidden:")


def test_a_supervisor_is_not_limited_by_a_unit_scope(client, cases):
    _ours, _theirs, undispatched = cases
    token, supervisor = token_of(client, "supervisor1", node=OTHER_NODE)
    [result] = pushed(client, token, [case_action(undispatched, supervisor["id"], "comment", note="已知悉")])
    assert result["status"] == "applied"

"""Helpers for the dispute tests: the page fixtures of tests/pages with the demo's disputes, a tablet, disputes made to order."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import select

from server.clock import server_clock
from server.db import db
from server.disputes import demo as dispute_demo
from server.models import Record, User
from server.sync import apply
from shared.hlc import format_ms
from shared.records import uuid7

from ..houses.conftest import Tablet  # noqa: F401 (a device on the sync API)
from ..pages.conftest import FreshContextClient, csrf_token, log_in, pages, user  # noqa: F401 (fixtures)

PARTIES = [{"name": "周建国", "phone": "13800135678", "role": "申请人"},
           {"name": "吴海燕", "phone": "13912348765", "role": "被申请人"}]
HOUR = 3_600_000


@pytest.fixture
def demo(demo):
    """The demo of the page tests (every password 'demo-pass') with its dispute kinds and disputes."""
    users = {u.username: u for u in db.session.scalars(select(User))}
    dispute_demo.load(users)
    return demo


def new_id() -> str:
    return uuid7(server_clock().physical_ms(), secrets.token_bytes(10))


def new_dispute(*, reporter: str = "worker1", grid: str = "G-0101", kind: str = "neighbours", hours_ago: int = 1,
                parties=None, description: str = "测试纠纷") -> str:
    """A dispute written by the server as if synced from the reporter's tablet; returns its id."""
    dispute_id = new_id()
    now = server_clock().physical_ms()
    apply.write_as_server([apply.stamp("dispute", dispute_id, {
        "grid": grid, "dispute_kind": kind, "parties": parties or PARTIES, "description": description,
        "reporter": user(reporter).id, "reported_at": format_ms(now - hours_ago * HOUR)})])
    return dispute_id


def add_step(dispute_id: str, action: str, username: str = "worker1", **values) -> str:
    """A dispute_action written by the server in the user's name; returns its id."""
    record = db.session.get(Record, dispute_id)
    step_id = new_id()
    apply.write_as_server([apply.stamp("dispute_action", step_id, {
        "dispute": dispute_id, "action": action, "actor": user(username).id, **values}, bucket=record.bucket)])
    return step_id

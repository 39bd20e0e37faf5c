"""Helpers for the house tests: the page fixtures of tests/pages, the demo's ID numbers, a tablet on the sync API."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from server.admin import demo as demo_data
from server.db import db
from server.models import Record
from shared.hlc import HLC

from ..pages.conftest import FreshContextClient, csrf_token, log_in, pages, user  # noqa: F401 (fixtures)

@pytest.fixture
def demo(demo):
    """The demo of the page tests (every password 'demo-pass') with its rental houses, checks and tenants."""
    demo.load_houses()
    return demo


ROLES = ["worker1", "supervisor1", "unit1", "admin"]
ROLE_OF = {"worker1": "worker", "supervisor1": "supervisor", "unit1": "unit", "admin": "admin"}


def demo_id_numbers() -> list[str]:
    """Every resident ID number the demo registers, in plaintext."""
    numbers, sequence = [], 11
    for *_house, tenants in demo_data.HOUSES:
        for _name, _room, birth, _moved_out in tenants:
            sequence += 2
            numbers.append(demo_data.demo_id_number(birth, sequence))
    return numbers


def house_ids(grid: str | None = None) -> list[str]:
    """The ids of the stored rental houses (of one grid when given)."""
    db.session.rollback()
    rows = db.session.scalars(select(Record).where(Record.kind == "rental_house")).all()
    return sorted(r.id for r in rows if grid is None or r.field_values.get("grid") == grid)


def house_by_address(address: str) -> Record:
    """The stored rental house with this address."""
    db.session.rollback()
    rows = db.session.scalars(select(Record).where(Record.kind == "rental_house")).all()
    return next(r for r in rows if r.field_values.get("address") == address)


class Tablet:
    """A device of a demo user on the sync API, through a page client (so each request has its own context)."""

    def __init__(self, client, username: str, node: str = "00000000000000a1"):
        answer = client.post("/api/v1/auth/device", json={"username": username, "password": "demo-pass",
                                                          "device_name": "平板", "node": node})
        assert answer.status_code == 200, answer.get_data(as_text=True)
        self.client, self.node, self.counter = client, node, 0
        self.headers = {"Authorization": f"Bearer {answer.get_json()['token']}"}

    def hlc(self) -> str:
        """A fresh timestamp of this device."""
        from server.clock import server_clock

        self.counter += 1
        return str(HLC(server_clock().physical_ms(), self.counter, self.node))

    def push(self, *changes: dict) -> list[dict]:
        """Push changes; their results."""
        answer = self.client.post("/api/v1/sync/push", json={"node": self.node, "changes": list(changes)},
                                  headers=self.headers)
        assert answer.status_code == 200, answer.get_data(as_text=True)
        return answer.get_json()["results"]

    def pull_all(self) -> tuple[list[dict], str]:
        """Every change this device may pull, and the raw answers' text."""
        cursors, changes, texts = {}, [], []
        while True:
            answer = self.client.post("/api/v1/sync/pull", json={"cursors": cursors, "limit": 1000},
                                      headers=self.headers)
            assert answer.status_code == 200, answer.get_data(as_text=True)
            texts.append(answer.get_data(as_text=True))
            body = answer.get_json()
            changes += body["changes"]
            cursors = body["cursors"]
            if not body["more"]:
                return changes, "\n".join(texts)

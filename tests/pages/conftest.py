"""Helpers for the page tests: log in through the pages, make cases in a given state, read the fold."""

from __future__ import annotations

import re
import secrets

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from server.sync import apply
from server.cases.service import load_case
from server.reference import load_reference
from server.clock import server_clock
from server.db import db
from server.models import Record, User
from shared.hlc import format_ms
from shared.records import uuid7

_TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def csrf_token(client) -> str:
    """A CSRF token of the client's session, read from the log-in page's form."""
    page = client.get("/login")
    return _TOKEN.search(page.get_data(as_text=True)).group(1)


def log_in(client, username: str, password: str = "demo-pass") -> None:
    """Log the client in through the log-in form."""
    answer = client.post("/login", data={"csrf_token": csrf_token(client), "username": username,
                                         "password": password})
    assert answer.status_code == 303, answer.get_data(as_text=True)[:500]


def user(username: str) -> User:
    """A demo user by user name."""
    return db.session.scalar(select(User).where(User.username == username))


def new_event(*, reporter: str = "worker1", grid: str = "G-0101", category: str = "ebike_charging",
              urgent: bool = False, lat: float = 22.5431, lon: float = 114.0579, photos=(),
              reported_minutes_ago: int = 30, description: str | None = None) -> str:
    """A new event, written by the server as if synced from the reporter's tablet; returns its id."""
    now = server_clock().physical_ms()
    event_id = uuid7(now, secrets.token_bytes(10))
    apply.write_as_server([apply.stamp("event", event_id, {
        "grid": grid, "category": category, "description": description or f"测试事件 {event_id[-6:]}",
        "urgent": urgent, "micro": False, "photos": list(photos), "reporter": user(reporter).id,
        "location": {"lat": lat, "lon": lon, "accuracy_m": 5.0, "source": "gps"},
        "reported_at": format_ms(now - reported_minutes_ago * 60_000)})])
    return event_id


def recent_days() -> str:
    """A statistics period, as a query, that holds whatever a test or the demo just reported: the last eight days.

    Without one the statistics show this week, which holds none of it in the first hour of a Monday, district
    time: the demo's events were reported an hour ago and more, a test's `new_event` half an hour ago.
    """
    from datetime import timedelta

    from server.web.times import today

    last = today()
    return f"from={(last - timedelta(days=7)).isoformat()}&to={last.isoformat()}"


def add_action(event_id: str, action: str, username: str, **values) -> str:
    """A case action on the event, written by the server in the user's name; returns its id."""
    event = db.session.get(Record, event_id)
    action_id = uuid7(server_clock().physical_ms(), secrets.token_bytes(10))
    apply.write_as_server([apply.stamp("case_action", action_id, {
        "event": event_id, "action": action, "actor": user(username).id, **values}, bucket=event.bucket)])
    return action_id


def event_in(state: str, unit: str = "fire", **event) -> str:
    """A new event brought to a state: reported, dispatched, rectified, returned or closed."""
    event_id = new_event(**event)
    steps = {
        "reported": [],
        "dispatched": [("dispatch", "supervisor1", {"unit": unit})],
        "rectified": [("dispatch", "supervisor1", {"unit": unit}), ("rectify", "unit1", {})],
        "returned": [("dispatch", "supervisor1", {"unit": unit}), ("rectify", "unit1", {}),
                     ("return", "supervisor1", {})],
        "closed": [("close", "supervisor1", {})],
    }[state]
    for action, username, values in steps:
        add_action(event_id, action, username, **values)
    return event_id


def folded(event_id: str):
    """The case's folded state now."""
    db.session.rollback()  # a fresh read: what the requests committed
    return load_case(event_id, load_reference(), server_clock().physical_ms()).state


def count_actions() -> int:
    """How many case actions the store holds."""
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(Record).where(Record.kind == "case_action"))


class FreshContextClient(FlaskClient):
    """A test client whose every request runs in its own app context, as it does behind a real server.

    The ``app`` fixture holds an app context for the whole test, and Flask's
    test client would reuse it, sharing ``g`` between requests: Flask-Login's
    cached user and Flask-WTF's cached token would then leak from one request
    (and one client) to the next, and hide bugs the pages must not have.
    """

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture
def pages(app, demo):
    """A page client (own app context per request) on a store with the demo loaded."""
    return FreshContextClient(app, app.response_class, use_cookies=True)

"""Fixtures for the sync client (a device clock, a fresh store per test, an in-memory server) and for the
field-app core (one clock, a seeded server, an AppCore logged in to it: core_helpers.py)."""

from __future__ import annotations

import itertools

import pytest

from mobile.store import Store

from .core_helpers import logged_in, seeded_server
from .fakes import T0, FakeServer, ManualClock

NODE = "a1b2c3d4e5f60718"
REPORTER = "0193b5c8-0000-7000-8000-000000000001"
_ids = itertools.count(1)


def event_values(grid: str = "G-0101", **overrides) -> dict:
    """The required fields of an event, and any others given."""
    values = {"grid": grid, "category": "fire_hazard", "description": "blocked fire exit",
              "reporter": REPORTER, "reported_at": "2026-11-18T08:00:00.000Z"}
    values.update(overrides)
    return values


def new_id() -> str:
    """A fresh canonical UUIDv7-shaped id, in creation order."""
    return f"0193b5c8-{next(_ids):04x}-7000-8000-000000000000"


@pytest.fixture
def device_clock() -> ManualClock:
    """The tablet's physical clock, moved by the test."""
    return ManualClock(T0)


@pytest.fixture
def server_clock() -> ManualClock:
    """The server's physical clock, moved by the test."""
    return ManualClock(T0)


@pytest.fixture
def store(tmp_path, device_clock):
    """A fresh store in a file (WAL needs one), closed after the test."""
    with Store(tmp_path / "replica.db", physical=device_clock, node=NODE) as opened:
        yield opened


@pytest.fixture
def server(server_clock) -> FakeServer:
    """An in-memory server that serves every bucket."""
    return FakeServer(server_clock)


@pytest.fixture
def clock() -> ManualClock:
    """One physical clock for the tablet and the server."""
    return ManualClock(T0)


@pytest.fixture
def fake(request, clock):
    """The server, with reference data; a test may give seeded_server's keywords (indirect parametrization)."""
    return seeded_server(clock, **getattr(request, "param", {}))


@pytest.fixture
def core(tmp_path, fake, clock):
    """An AppCore logged in as WORKER, reference data pulled."""
    opened = logged_in(tmp_path / "app", fake, clock)
    yield opened
    opened.close()

"""What the field-app core tests share: a FakeServer with reference data, an AppCore on it, schedules.

The FakeServer (fakes.py) speaks the wire contract in memory, photos included;
`seeded_server` gives it two grids and three categories (one of them micro, one
deleted), and `open_core` an AppCore in a folder whose transport is that server.
"""

from __future__ import annotations

import itertools
import queue
from pathlib import Path
from typing import Any, Callable

from mobile.app_core import AppCore
from mobile.location import LocationReading
from shared.records import Change

from .fakes import T0, FakeServer, ManualClock

WORKER = "0193b5c8-0000-7000-8000-0000000000aa"
OTHER_WORKER = "0193b5c8-0000-7000-8000-0000000000bb"
SUPERVISOR = "0193b5c8-0000-7000-8000-0000000000cc"
UNIT_USER = "0193b5c8-0000-7000-8000-0000000000dd"
GRID, GRID2 = "G-0101", "G-0102"
SERVER_URL = "https://gridpatrol.test"
_ids = itertools.count(1)


def remote_id() -> str:
    """A fresh canonical UUID for a record made elsewhere (the server, another tablet)."""
    return f"0193b5c7-{next(_ids):04x}-7000-8000-000000000000"


def put(fake: FakeServer, kind: str, values: dict[str, Any], bucket: str, record_id: str | None = None) -> str:
    """Store a record on the fake server as another device or page would, stamped by its clock."""
    record_id = record_id or remote_id()
    hlc = str(fake.clock.now())
    fake.put(Change(kind, record_id, bucket, {name: (value, hlc) for name, value in values.items()}))
    return record_id


def seeded_server(clock: ManualClock | None = None, *, user_id: str = WORKER, name: str = "张伟",
                  role: str = "worker") -> FakeServer:
    """A FakeServer serving ref and two grids to one user (a worker), with grids and categories in ref."""
    fake = FakeServer(clock or ManualClock(T0), buckets=["ref", f"grid:{GRID}", f"grid:{GRID2}"],
                      user={"id": user_id, "name": name, "role": role})
    put(fake, "grid", {"code": GRID, "name": "东湖一网格", "community": "东湖社区", "street": "东湖街道",
                       "district": "示范区"}, "ref")
    put(fake, "grid", {"code": GRID2, "name": "东湖二网格", "community": "东湖社区", "street": "东湖街道",
                       "district": "示范区"}, "ref")
    put(fake, "category", {"code": "fire_hazard", "name": "消防隐患", "name_en": "Fire hazard",
                           "deadline_hours": 72, "default_unit": "fire"}, "ref")
    put(fake, "category", {"code": "ebike_stairwell", "name": "楼道电动车充电", "name_en": "E-bike charging in a stairwell",
                           "micro": True}, "ref")
    put(fake, "category", {"code": "old_thing", "name": "旧类别", "_deleted": True}, "ref")
    return fake


class FakeGps:
    """A location provider the test sets."""

    def __init__(self, reading: LocationReading | None = None):
        self.reading = reading

    def current(self) -> LocationReading | None:
        """The reading the test set."""
        return self.reading


def open_core(path: Path, fake: Any, clock: ManualClock | None = None, **kwargs: Any) -> AppCore:
    """An AppCore in path whose transport is the fake (any URL, any token)."""
    kwargs.setdefault("location_provider", FakeGps())
    return AppCore(path, transport_factory=lambda url, token: fake, now_ms=clock or ManualClock(T0), **kwargs)


def logged_in(path: Path, fake: FakeServer, clock: ManualClock | None = None, **kwargs: Any) -> AppCore:
    """An AppCore logged in to the fake and synced once directly (reference data pulled)."""
    from mobile.sync import synchronize

    core = open_core(path, fake, clock, **kwargs)
    core.login(SERVER_URL, "worker1", "secret")
    report = synchronize(core.store, fake, photos=core.photos)
    assert report.ok, report.error
    return core


class QueueSchedule:
    """A schedule that only queues: the test plays the UI thread by calling `drain`."""

    def __init__(self) -> None:
        self.queue: "queue.Queue[Callable[[], None]]" = queue.Queue()

    def __call__(self, fn: Callable[[], None]) -> None:
        self.queue.put(fn)

    def drain(self) -> int:
        """Run what was scheduled so far, here (the 'UI thread'); returns how many ran."""
        ran = 0
        while True:
            try:
                fn = self.queue.get_nowait()
            except queue.Empty:
                return ran
            fn()
            ran += 1


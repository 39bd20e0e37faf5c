"""Proof "Crash": a real server process is SIGKILLed at random points during pushes and restarted.

The server is gunicorn serving ``server:create_app()`` on 127.0.0.1, on a
migrated store (SQLite, and PostgreSQL) holding the demo users. A tablet
(mobile Store + HttpTransport + synchronize, in this process) keeps capturing
and keeps syncing, retrying until its outbox is empty. A killer thread waits
for a push to start, waits a random part of a typical push's duration, and if
the push is still in flight SIGKILLs gunicorn's whole process group (master and
workers: no request or commit gets to finish), then starts it again and waits
for /api/v1/health. The kill therefore lands anywhere: before the server has
read the request, inside its transaction, between its commit and the answer,
or while the answer travels. (Each gunicorn is started by a fork server that
imported the server once, tests/forkserver.py, so a restart costs a
fraction of a second and twenty kills fit in the drill's time.)

At the end, read from the store directly: every change the device saw
acknowledged is stored, with its value (or a newer one of the device's),
no record is stored twice, the feed is intact, the outbox is empty, and the
device holds exactly what the server holds in its buckets.
"""

from __future__ import annotations

import random
import threading
import time
from statistics import mean

import pytest

from mobile.store import Store
from mobile.sync import synchronize
from mobile.transport import HttpTransport, TransportError
from shared.hlc import format_ms

from tests.servers import GunicornServer

from .helpers import PASSWORD, compare_with_server, load_demo, server_records

pytestmark = pytest.mark.slow

KILLS = 20  # kills, each landing while a push is in flight
KILL_PHASE_SECONDS = 50  # the killing stops here even if fewer kills landed (and the drill fails)
DRAIN_SECONDS = 30
BATCH_SIZE = 4  # small batches: every sync makes several pushes, so a kill finds one in flight
MAX_OUTBOX = 40  # the device stops capturing while this much waits, so the drill stays bounded
GRID = "G-0101"


class WatchedTransport:
    """Passes calls through, and notes what the killer and the final check need to know."""

    def __init__(self, inner: HttpTransport):
        self.inner = inner
        self.in_flight = threading.Event()  # a push is between its start and its answer
        self.push_started = threading.Event()
        self.push_seconds: list[float] = []
        self.pushes = self.failed_pushes = 0
        # (id, field) -> (value, hlc) of the latest write the server acknowledged
        self.acknowledged: dict[tuple[str, str], tuple[object, str]] = {}
        self.unanswered: set[tuple[str, str]] = set()  # (id, max hlc) of changes in pushes that failed
        self.committed_unanswered = 0  # such changes whose retry came back stale: the lost push had committed
        self.uncommitted_unanswered = 0  # ... came back applied: the kill came before the commit

    def login(self, *args, **kwargs):
        return self.inner.login(*args, **kwargs)

    def pull(self, *args, **kwargs):
        return self.inner.pull(*args, **kwargs)

    def push(self, node, changes, sent_at):
        self.pushes += 1
        started = time.monotonic()
        self.in_flight.set()
        self.push_started.set()
        try:
            answer = self.inner.push(node, changes, sent_at)
        except TransportError:
            self.failed_pushes += 1
            self.unanswered.update((c["id"], max(w[1] for w in c["fields"].values())) for c in changes)
            raise
        finally:
            self.in_flight.clear()
        self.push_seconds.append(time.monotonic() - started)
        for change, result in zip(changes, answer["results"]):
            if result.get("status") not in ("applied", "stale"):
                continue
            key = (change["id"], max(w[1] for w in change["fields"].values()))
            if key in self.unanswered:
                self.unanswered.discard(key)
                if result["status"] == "stale":
                    self.committed_unanswered += 1
                else:
                    self.uncommitted_unanswered += 1
            for name, (value, hlc) in change["fields"].items():
                known = self.acknowledged.get((change["id"], name))
                if known is None or hlc > known[1]:
                    self.acknowledged[(change["id"], name)] = (value, hlc)
        return answer

    def typical_push(self) -> float:
        recent = sorted(self.push_seconds[-50:])
        return recent[len(recent) // 2] if recent else 0.02


class Killer(threading.Thread):
    """Kills the server a random moment into a push, restarts it, and waits for the next push."""

    def __init__(self, server: GunicornServer, watched: WatchedTransport, seed: int):
        super().__init__(name="killer", daemon=True)
        self.server, self.watched = server, watched
        self.random = random.Random(seed)
        self.kills = 0  # each while a push was in flight
        self.error: BaseException | None = None
        self.deadline = time.monotonic() + KILL_PHASE_SECONDS
        self.restart_seconds: list[float] = []
        self.halt = threading.Event()  # set by the test when it ends early

    def run(self) -> None:
        try:
            while self.kills < KILLS and time.monotonic() < self.deadline and not self.halt.is_set():
                self.watched.push_started.clear()
                if not self.watched.push_started.wait(timeout=5):
                    continue
                # A random point of the push: before the server read it, in its transaction, after its
                # commit, or while the answer travels.
                time.sleep(self.random.uniform(0, 1.2 * self.watched.typical_push()))
                if not self.watched.in_flight.is_set():
                    continue  # that push is over already: try a random point of the next one
                self.server.kill()
                self.kills += 1
                down = time.monotonic()
                self.server.start()
                self.restart_seconds.append(time.monotonic() - down)
        except BaseException as exc:  # handed to the test thread, which fails with it
            self.error = exc


class Device:
    """worker1's tablet: captures events, edits them, comments on them."""

    def __init__(self, store: Store, user: dict, seed: int):
        self.store, self.user = store, user
        self.random = random.Random(seed)
        self.events: list[str] = []
        self.writes = 0

    def capture(self) -> None:
        now = self.store.physical_ms()
        for _ in range(2):
            change = self.store.create("event", {
                "grid": GRID, "category": "garbage", "description": f"drill event {self.writes}",
                "reporter": self.user["id"], "reported_at": format_ms(now), "urgent": False})
            self.events.append(change.id)
            self.writes += 1
        for event in self.random.sample(self.events, min(2, len(self.events))):
            self.store.write("event", event, {"description": f"edited {self.writes}",
                                              "urgent": self.random.random() < 0.5})
            self.writes += 1
        if self.random.random() < 0.3:
            self.store.create("case_action", {"event": self.random.choice(self.events), "action": "comment",
                                              "actor": self.user["id"], "note": f"note {self.writes}"})
            self.writes += 1


def sync(store: Store, transport: WatchedTransport):
    return synchronize(store, transport, batch_size=BATCH_SIZE, page_limit=50)


def test_sigkilled_server_loses_no_acknowledged_change_and_stores_none_twice(database_url, tmp_path):
    started = time.monotonic()
    users = load_demo(database_url)
    worker = users["worker1"]
    server = GunicornServer(database_url, tmp_path / "photos", tmp_path / "gunicorn.log", workers=1, fast_restart=True)
    # Few retries and short timeouts: a dead server is noticed at once, and the loop below retries.
    http = HttpTransport(server.url, retries=1, backoff_factor=0.01, timeout=(0.5, 10))
    watched = WatchedTransport(http)
    store = Store(tmp_path / "tablet.db")
    killer = None
    try:
        server.start()
        login = http.login("worker1", PASSWORD, "drill tablet", store.node)
        store.save_login(server.url, login["token"], login["user"], login["buckets"])
        device = Device(store, worker, seed=20)

        killer = Killer(server, watched, seed=3)
        killer.start()
        syncs = failed_syncs = 0
        while killer.is_alive():
            if store.counts().unsynced < MAX_OUTBOX:
                device.capture()  # captures go on whether the server is up or not
            report = sync(store, watched)
            syncs += 1
            if not report.ok:
                failed_syncs += 1
                time.sleep(0.05)
        killer.join()
        if killer.error:
            raise killer.error
        kill_phase = time.monotonic() - started

        # The server stays up now: the device retries until nothing waits, then pulls once more.
        deadline = time.monotonic() + DRAIN_SECONDS
        while True:
            report = sync(store, watched)
            if report.ok and store.counts().unsynced == 0:
                break
            assert time.monotonic() < deadline, f"the outbox never emptied: {report}\n{server.log_tail()}"
            time.sleep(0.05)
        assert sync(store, watched).ok
    finally:
        if killer is not None:  # it must not start the server again once it is stopped
            killer.halt.set()
            killer.join(60)
        server.stop()
        http.close()

    try:
        stored = server_records(database_url)
        summary = (f"{killer.kills} kills mid-push, {server.starts} starts, "
                   f"{syncs} syncs ({failed_syncs} failed), {watched.pushes} pushes "
                   f"({watched.failed_pushes} failed), {device.writes} writes; of the changes whose push "
                   f"lost its answer, {watched.committed_unanswered} had been committed and "
                   f"{watched.uncommitted_unanswered} had not; restarts took {mean(killer.restart_seconds):.2f} s, "
                   f"kill phase {kill_phase:.1f} s, "
                   f"total {time.monotonic() - started:.1f} s")
        print(summary)
        # Nothing waits and nothing was refused.
        assert store.counts().unsynced == 0
        assert store.rejections() == []

        # None is stored twice: one row per id, unique positions, a feed that is ahead of every row.
        assert stored["duplicated"] == []
        assert stored["rows"] == len(stored["records"])
        assert len(set(stored["positions"])) == len(stored["positions"])
        # Every stored position was handed out; on PostgreSQL a killed or failed writer may have taken more.
        if database_url.startswith("sqlite"):
            assert stored["feed"] == max(stored["positions"])
        assert stored["feed"] >= max(stored["positions"])
        mine = set(device.events)
        assert mine <= set(stored["records"])
        events_on_server = {rid for rid, r in stored["records"].items()
                            if r["kind"] == "event" and r["bucket"] == f"grid:{GRID}"}
        assert len(events_on_server) == len(mine) + 3  # the demo's three sample events in G-0101

        # Every acknowledged change is stored: its write, or a newer write of this device to that field.
        lost = []
        for (rid, name), (value, hlc) in watched.acknowledged.items():
            held = stored["records"].get(rid, {}).get("state", {}).get(name)
            if held is None or held[1] < hlc or (held[1] == hlc and held[0] != value):
                lost.append((rid, name, value, hlc, held))
        assert not lost, f"{len(lost)} acknowledged writes are not stored, e.g. {lost[:3]}"
        assert len(watched.acknowledged) >= device.writes  # at least one field per write was acknowledged

        # And the device ends in exactly the state the server holds in its buckets.
        assert compare_with_server(store, stored, login["buckets"]) == []

        # And the drill was the one intended: twenty kills, each cutting a push short.
        assert killer.kills >= KILLS, summary
        # changes whose push got no answer were pushed again and acknowledged.
        assert watched.committed_unanswered + watched.uncommitted_unanswered > 0, summary
    finally:
        store.close()

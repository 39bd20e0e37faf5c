"""Proof "PostgreSQL feed": under concurrent pushes, no pull ever skips a committed change.

design.md, "Pull under concurrency": with a plain sequence, a transaction
that took a lower position can commit after a reader has read past it, and
that reader's cursor never comes back for it. server/sync/feed.py takes
positions from a sequence, late, under a lock per bucket held until commit, so
within a bucket (the unit of a cursor) positions become visible in order.

The drill: WRITERS threads push batches through server.sync.apply.validate_batch +
apply_changes (each thread in its own app context, so its own session and
connection), creating events in the shared grids and in a grid of their own and
editing each other's, with a random pause between taking positions and committing,
while PULLERS threads page through server.sync.service.pull_changes with their
cursors, for FEED_SECONDS. A writer notes every change whose apply_changes returned
(committed and acknowledged). A puller notes every (bucket, position) it is served:
within a bucket they must rise strictly (none served twice, none after a later one).
When the writers stop, each puller pulls until ``more`` is false; its view must
then hold every acknowledged write and equal the store.

The drill must be able to fail: the negative control runs the same workload
with the bucket locks taken away (positions straight from the sequence, no lock)
and requires the same checker to catch skipped rows. Deterministic tests show
the mechanism step by step: how a sequence loses a row committed late, that a
second writer of one grid waits for the first one's commit, and that writers of
two grids do not wait for each other.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
import uuid
from typing import Any

import psycopg
import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from server import accounts, create_app
from server.sync import apply, feed, service
from server.db import db
from server.models import Record, User
from shared.hlc import Clock, format_ms
from shared.records import grid_bucket, uuid7

FEED_SECONDS = float(os.environ.get("GRIDPATROL_FEED_DRILL_SECONDS", "20"))  # 20 s in CI
BROKEN_SECONDS = 10  # the negative control's workload
WRITERS = int(os.environ.get("GRIDPATROL_FEED_DRILL_WRITERS", "16"))
PULLERS = int(os.environ.get("GRIDPATROL_FEED_DRILL_PULLERS", "16"))
COMMIT_DELAY_S = 0.015  # at most, between a writer taking its positions and its commit
GRIDS = ["F-01", "F-02", "F-03"]  # shared by every writer
OWN_GRIDS = [f"W-{n:02d}" for n in range(WRITERS)]  # writer n's own grid
REPORTER = "0193b5c8-0000-7000-8000-00000000feed"  # the admin who pushes every event


def feed_app(url: str):
    """One app for every thread; each thread's app context has its own session and connection."""
    return create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "drill", "GRIDPATROL_NODE": "feedfeedfeedfeed",
                       # a writer may hold two connections: its batch's and the case numbers' (apply.py)
                       "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 2 * WRITERS + PULLERS + 2, "max_overflow": 4,
                                                     "pool_pre_ping": True}})


def prepare(app) -> str:
    """An admin (who may write and read every grid) and the grids; answers the admin's id."""
    with app.app_context():
        admin = accounts.create_user("admin", "drill", role="admin")
        admin.id = REPORTER  # the drill's events name it: a reporter must be the pushing user
        db.session.commit()
        apply.write_as_server([
            apply.stamp("grid", str(uuid.uuid5(uuid.NAMESPACE_URL, code)), {
                "code": code, "name": f"grid {code}", "type": "base", "community": "c", "street": "s",
                "district": "d"})
            for code in GRIDS + OWN_GRIDS])
        admin_id = admin.id
        db.session.remove()
    return admin_id


class Workload:
    """Writers and pullers against one app, and what each of them saw."""

    def __init__(self, app, admin_id: str, seconds: float, *, unlocked: bool = False):
        self.app, self.admin_id, self.seconds = app, admin_id, seconds
        # Without the bucket locks, writers editing the same records can deadlock; PostgreSQL aborts one,
        # which is then simply not acknowledged (a tablet would push it again).
        self.unlocked = unlocked
        self.deadlocks = 0
        self.stop_writers = threading.Event()
        self.stop_pullers = threading.Event()
        self.lock = threading.Lock()
        self.committed: list[tuple[str, str]] = []  # (id, bucket) of acknowledged events, for edits
        self.acknowledged: list[tuple[str, str, Any, str]] = []  # (id, field, value, hlc)
        self.views: list[dict[str, dict]] = []
        self.served: list[dict[str, list[int]]] = []  # per puller: bucket -> positions, in the order served
        self.errors: list[BaseException] = []
        self.batches = self.pages = 0

    @contextlib.contextmanager
    def _own_app_context(self):
        """The calling thread's own app context (its own session and connection); an error in it is kept for
        run() and stops every thread."""
        with self.app.app_context():
            try:
                yield
            except BaseException as exc:
                self.errors.append(exc)
                self.stop_writers.set()
                self.stop_pullers.set()
            finally:
                db.session.remove()

    def writer(self, n: int) -> None:
        rng = random.Random(n)
        clock = Clock(f"{0xfeed0000 + n:016x}")
        with self._own_app_context():
            admin = db.session.get(User, self.admin_id)
            while not self.stop_writers.is_set():
                raw = []
                for _ in range(rng.randint(1, 12)):
                    hlc = str(clock.now())
                    with self.lock:
                        target = rng.choice(self.committed) if self.committed and rng.random() < 0.35 else None
                    if target:
                        rid, bucket = target
                        fields = {"description": [f"edit by writer {n} at {hlc}", hlc],
                                  "urgent": [rng.random() < 0.5, hlc]}
                    else:
                        grid = rng.choice(GRIDS) if rng.random() < 0.5 else OWN_GRIDS[n]
                        rid = uuid7(clock.last.wall_ms, rng.randbytes(10))
                        bucket = grid_bucket(grid)
                        fields = {"grid": [grid, hlc], "category": ["garbage", hlc],
                                  "description": [f"writer {n}", hlc], "reporter": [REPORTER, hlc],
                                  "reported_at": [format_ms(clock.last.wall_ms), hlc]}
                    raw.append({"kind": "event", "id": rid, "bucket": bucket, "fields": fields})
                changes, rejected = apply.validate_batch(admin, raw)
                try:
                    results = apply.apply_changes(admin, changes, rejected)  # returns after commit
                except OperationalError as exc:
                    if not (self.unlocked and isinstance(exc.orig, psycopg.errors.DeadlockDetected)):
                        raise
                    db.session.rollback()
                    self.deadlocks += 1
                    continue
                with self.lock:
                    self.batches += 1
                    for change, result in zip(raw, results):
                        assert result.status in ("applied", "stale"), result
                        self.acknowledged.extend((change["id"], name, value, hlc)
                                                 for name, (value, hlc) in change["fields"].items())
                        if "grid" in change["fields"]:
                            self.committed.append((change["id"], change["bucket"]))

    def puller(self, n: int) -> None:
        rng = random.Random(1000 + n)
        view: dict[str, dict] = {}
        cursors: dict[str, str] = {}
        pulls = 0
        _SERVED.positions = served = {}
        with self._own_app_context():
            admin = db.session.get(User, self.admin_id)
            while True:
                writers_done = self.stop_pullers.is_set()  # then: pull until the feed says there is no more
                page = service.pull_changes(admin, cursors, 500 if writers_done else rng.randint(1, 60))
                for change in page["changes"]:
                    view[change["id"]] = change  # the whole state; a later position is newer
                cursors = page["cursors"]
                pulls += 1
                if writers_done and not page["more"]:
                    break
            with self.lock:
                self.views.append(view)
                self.served.append(served)
                self.pages += pulls

    def run(self, monkeypatch) -> dict[str, dict]:
        """Write and pull for ``seconds``, then let the pullers catch up; answers what the store then holds.
        The app's connections are closed at the end, whatever happened."""
        delays = random.Random(7)

        def take_positions_then_wait(count, take=feed.take_positions):
            # Commit late: the window in which a later position of another writer may commit first.
            positions = take(count)
            time.sleep(delays.random() * COMMIT_DELAY_S)
            return positions

        def decoded_and_noted(row, decode=service._decoded):
            noted = getattr(_SERVED, "positions", None)
            if noted is not None:  # a puller thread: note what it is served
                noted.setdefault(row[2], []).append(row[5])
            return decode(row)

        monkeypatch.setattr(feed, "take_positions", take_positions_then_wait)
        monkeypatch.setattr(service, "_decoded", decoded_and_noted)
        try:
            writers = [threading.Thread(target=self.writer, args=(n,), name=f"writer-{n}") for n in range(WRITERS)]
            pullers = [threading.Thread(target=self.puller, args=(n,), name=f"puller-{n}") for n in range(PULLERS)]
            for thread in writers + pullers:
                thread.start()
            self.stop_writers.wait(self.seconds)
            self.stop_writers.set()
            for thread in writers:
                thread.join()
            self.stop_pullers.set()
            for thread in pullers:
                thread.join()
            if self.errors:
                raise self.errors[0]
            return stored_state(self.app)
        finally:
            with self.app.app_context():
                db.engine.dispose()


_SERVED = threading.local()  # a puller thread's served positions (Workload.run)


def served_twice_or_backwards(served: dict[str, list[int]]) -> list[str]:
    """The positions a puller was served again, or after a higher one of the same bucket."""
    return [f"{bucket}: {a} then {b}" for bucket, positions in served.items()
            for a, b in zip(positions, positions[1:]) if b <= a]


def stored_state(app) -> dict[str, dict]:
    """Every record's wire state, read directly from the store."""
    with app.app_context():
        state = {r.id: service.record_change(r) for r in db.session.scalars(select(Record))}
        db.session.remove()
    return state


def check(view: dict[str, dict], acknowledged, stored: dict[str, dict]) -> list[str]:
    """What a puller's final view lacks: acknowledged writes it never received, records not as stored."""
    problems = []
    for rid, name, value, hlc in acknowledged:
        held = view.get(rid, {}).get("fields", {}).get(name)
        if held is None or held[1] < hlc or (held[1] == hlc and held[0] != value):
            problems.append(f"acknowledged {rid}.{name}@{hlc} is missing (view has {held})")
    for rid, record in stored.items():
        if view.get(rid) != record:
            problems.append(f"{rid} is {'missing' if rid not in view else 'not the latest'} in the view")
    for rid in set(view) - set(stored):
        problems.append(f"{rid} was pulled but is not stored")
    return problems


@pytest.mark.slow
@pytest.mark.pg
def test_concurrent_writers_and_pullers_miss_no_committed_change(pg_database, monkeypatch):
    app = feed_app(pg_database)
    admin_id = prepare(app)
    started = time.monotonic()
    workload = Workload(app, admin_id, FEED_SECONDS)
    stored = workload.run(monkeypatch)
    problems = {n: check(view, workload.acknowledged, stored) for n, view in enumerate(workload.views)}
    repeated = {n: served_twice_or_backwards(served) for n, served in enumerate(workload.served)}
    print(f"{WRITERS} writers, {PULLERS} pullers: {workload.batches} batches committed, "
          f"{len(workload.acknowledged)} acknowledged writes, {len(stored)} records, {workload.pages} pages pulled, "
          f"{sum(len(p) for s in workload.served for p in s.values())} rows served, "
          f"{time.monotonic() - started:.1f} s")
    assert len(workload.views) == PULLERS
    assert workload.batches >= WRITERS * 5 and workload.pages >= PULLERS * 10  # it really was concurrent
    assert all(not p for p in problems.values()), {n: (len(p), p[:3]) for n, p in problems.items() if p}
    assert all(not r for r in repeated.values()), {n: r[:3] for n, r in repeated.items() if r}


def _no_lock(buckets) -> None:
    """The broken feed: no bucket lock (None: as if every bucket were held), so the positions come
    straight from the sequence and may commit out of order within a bucket."""
    return None


@pytest.mark.slow
@pytest.mark.pg
def test_the_checker_catches_a_feed_built_on_a_plain_sequence(pg_database, monkeypatch):
    """Negative control: the same workload and checker, with the bucket locks taken away."""
    app = feed_app(pg_database)
    admin_id = prepare(app)
    monkeypatch.setattr(feed, "lock", _no_lock)

    workload = Workload(app, admin_id, BROKEN_SECONDS, unlocked=True)
    stored = workload.run(monkeypatch)
    problems = [check(view, workload.acknowledged, stored) for view in workload.views]
    caught = sum(1 for p in problems if p)
    print(f"plain sequence: {workload.batches} batches ({workload.deadlocks} deadlocked); {caught} of {PULLERS} "
          f"pullers missed rows ({sum(len(p) for p in problems)} problems), "
          f"e.g. {next((p[:2] for p in problems if p), None)}")
    assert caught >= 1, "the checker did not catch the broken feed: the drill could not have failed"


# --- the mechanism, step by step --------------------------------------------------------------

def _psycopg_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.mark.pg
def test_a_plain_sequence_loses_a_row_that_commits_late(pg_database):
    """T1 takes position 1, T2 takes 2 and commits, a reader reads past 2, T1 commits: 1 is never read."""
    url = _psycopg_url(pg_database)
    with psycopg.connect(url, autocommit=True) as setup:
        setup.execute("CREATE SEQUENCE plain_seq")
        setup.execute("CREATE TABLE plain_feed (position bigint PRIMARY KEY, name text)")
    with psycopg.connect(url) as t1, psycopg.connect(url) as t2, psycopg.connect(url, autocommit=True) as reader:
        t1.execute("INSERT INTO plain_feed VALUES (nextval('plain_seq'), 'first')")
        t2.execute("INSERT INTO plain_feed VALUES (nextval('plain_seq'), 'second')")
        t2.commit()
        seen = reader.execute("SELECT position, name FROM plain_feed WHERE position > 0 ORDER BY position").fetchall()
        assert seen == [(2, "second")]
        cursor = seen[-1][0]
        t1.commit()
        assert reader.execute("SELECT position FROM plain_feed WHERE position > %s", (cursor,)).fetchall() == []
        everything = reader.execute("SELECT position, name FROM plain_feed ORDER BY position").fetchall()
    assert everything == [(1, "first"), (2, "second")]  # stored, yet the cursor at 2 will never see it


def _event(grid: str, description: str, hlc: str) -> dict:
    return {"kind": "event", "id": uuid7(int(time.time() * 1000), os.urandom(10)), "bucket": grid_bucket(grid),
            "fields": {"grid": [grid, hlc], "category": ["garbage", hlc], "description": [description, hlc],
                       "reporter": [REPORTER, hlc], "reported_at": ["2026-11-18T08:00:00.000Z", hlc]}}


@pytest.mark.pg
def test_a_second_writer_of_one_grid_waits_for_the_first_ones_commit(pg_database, monkeypatch):
    """T1 holds F-01's lock (paused before commit); T2, to F-01 too, waits in it; a reader sees neither; then both."""
    app = feed_app(pg_database)
    admin_id = prepare(app)
    clock = Clock("0000000000000f1f")
    first, second = _event("F-01", "first", str(clock.now())), _event("F-01", "second", str(clock.now()))
    holding, release = threading.Event(), threading.Event()
    real_held_states = feed.held_states

    def held_states_pausing_first(ids):
        # apply_changes reads the records a batch touches once it holds its buckets' locks: pause T1 there.
        if first["id"] in ids:
            holding.set()
            assert release.wait(30)
        return real_held_states(ids)

    monkeypatch.setattr(feed, "held_states", held_states_pausing_first)
    done: dict[str, list] = {}
    errors: list[BaseException] = []

    def push(name: str, raw: dict) -> None:
        with app.app_context():
            try:
                admin = db.session.get(User, admin_id)
                changes, rejected = apply.validate_batch(admin, [raw])
                done[name] = apply.apply_changes(admin, changes, rejected)
            except BaseException as exc:
                errors.append(exc)
            finally:
                db.session.remove()

    t1 = threading.Thread(target=push, args=("first", first))
    t2 = threading.Thread(target=push, args=("second", second))
    try:
        t1.start()
        assert holding.wait(10), errors
        t2.start()
        deadline = time.monotonic() + 10
        with psycopg.connect(_psycopg_url(pg_database), autocommit=True) as observer:
            while True:  # until T2's backend is seen waiting for the bucket's lock
                waiting = observer.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND wait_event = 'advisory'").fetchone()[0]
                if waiting or time.monotonic() > deadline or not t2.is_alive():
                    break
                time.sleep(0.02)
        time.sleep(0.3)
        assert t2.is_alive() and "second" not in done, "T2 did not wait for T1"
        assert waiting == 1, "T2 should be waiting for F-01's lock"
        with app.app_context():
            admin = db.session.get(User, admin_id)
            page = service.pull_changes(admin, {}, 100)
            assert [c for c in page["changes"] if c["kind"] == "event"] == []
            db.session.remove()
        release.set()
        t1.join(10)
        t2.join(10)
        assert not errors, errors
        assert [r.status for r in done["first"] + done["second"]] == ["applied", "applied"]
        with app.app_context():
            positions = {r.id: r.position for r in db.session.scalars(select(Record).where(Record.kind == "event"))}
            db.session.remove()
        # T1 took its position (late, after the pause) and committed first; T2 took its own only once it had
        # F-01's lock, after T1's commit: it comes after T1's, so no cursor of F-01 can pass T1's.
        assert positions[first["id"]] < positions[second["id"]]
    finally:
        release.set()
        t1.join(10)
        t2.join(10)
        with app.app_context():
            db.engine.dispose()


@pytest.mark.pg
def test_writers_of_two_grids_do_not_wait_for_each_other(pg_database, monkeypatch):
    """T1 holds F-01's lock (paused before commit); T2 pushes to F-02 and commits meanwhile; a reader gets
    T2's event at once, and T1's from the same cursors once T1 commits."""
    app = feed_app(pg_database)
    admin_id = prepare(app)
    clock = Clock("0000000000000f2f")
    first, second = _event("F-01", "first", str(clock.now())), _event("F-02", "second", str(clock.now()))
    holding, release = threading.Event(), threading.Event()
    real_held_states = feed.held_states

    def held_states_pausing_first(ids):
        if first["id"] in ids:
            holding.set()
            assert release.wait(30)
        return real_held_states(ids)

    monkeypatch.setattr(feed, "held_states", held_states_pausing_first)
    done: dict[str, list] = {}
    errors: list[BaseException] = []

    def push(name: str, raw: dict) -> None:
        with app.app_context():
            try:
                admin = db.session.get(User, admin_id)
                changes, rejected = apply.validate_batch(admin, [raw])
                done[name] = apply.apply_changes(admin, changes, rejected)
            except BaseException as exc:
                errors.append(exc)
            finally:
                db.session.remove()

    def pulled_events(cursors: dict) -> tuple[list[str], dict]:
        with app.app_context():
            admin = db.session.get(User, admin_id)
            page = service.pull_changes(admin, cursors, 500)
            db.session.remove()
        assert not page["more"]
        return [c["fields"]["description"][0] for c in page["changes"] if c["kind"] == "event"], page["cursors"]

    t1 = threading.Thread(target=push, args=("first", first))
    t2 = threading.Thread(target=push, args=("second", second))
    try:
        t1.start()
        assert holding.wait(10), errors
        started = time.monotonic()
        t2.start()
        t2.join(10)
        assert not t2.is_alive() and not errors, ("T2 waited for T1", errors)
        print(f"T2 committed in {1000 * (time.monotonic() - started):.0f} ms while T1 held F-01")
        assert [r.status for r in done["second"]] == ["applied"] and t1.is_alive() and "first" not in done
        seen, cursors = pulled_events({})
        assert seen == ["second"]
        release.set()
        t1.join(10)
        assert not errors, errors
        assert [r.status for r in done["first"]] == ["applied"]
        seen, _ = pulled_events(cursors)
        assert seen == ["first"]  # committed after the reader's pull, yet not skipped
    finally:
        release.set()
        t1.join(10)
        t2.join(10)
        with app.app_context():
            db.engine.dispose()

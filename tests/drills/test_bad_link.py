"""Proof "Sync that finishes on a bad link" (issue 20): worker1's tablet against a real gunicorn, through
tests/drills/proxy.py's LinkProxy (bandwidth each way, connections cut after a random byte count).

* the 1,000-change backlog a supervisor wrote reaches the tablet through drops of 50-400 KB;
* a fresh tablet's first sync succeeds through drops of 1-30 KB;
* uploads are exact through drops: no photo byte the server held is sent again, none restarts from zero;
* an urgent event captured while a photo backlog uploads is on the server in seconds, its photo next.

Scaled to stay under a minute each (bench/field_bench.py runs the full scenario). SQLite only: the link,
not the engine, is under test.
"""

from __future__ import annotations

import shutil
import threading
import time

import pytest

from tests.servers import GunicornServer

from .field import (Tablet, noise_jpeg, photo_exactness, server_has_photo, server_has_record, write_backlog)
from .helpers import load_demo
from .proxy import LinkProxy

pytestmark = pytest.mark.slow

MBIT = 1_000_000


@pytest.fixture
def database_url(sqlite_template, tmp_path):
    path = tmp_path / "store.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def field(database_url, tmp_path):
    """(server, users): the demo on a real gunicorn."""
    users = load_demo(database_url)
    with GunicornServer(database_url, tmp_path / "photos", tmp_path / "gunicorn.log", workers=2, threads=4) as server:
        yield server, users


def test_the_1000_change_backlog_reaches_the_tablet_through_drops_of_50_to_400_kb(field, tmp_path):
    server, users = field
    with LinkProxy(server.port, up_bps=1 * MBIT, down_bps=1 * MBIT, seed=20) as link:
        tablet = Tablet(tmp_path / "tablet", link.url)
        try:
            tablet.login()
            assert tablet.sync().ok  # the tablet holds the demo, then goes away
            held_before = len(tablet.store.query("event"))
            useful = write_backlog(server.url, users, 1000, chars=600)
            link.set_drops((50_000, 400_000))
            before = link.stats()
            started = time.monotonic()
            reports = []
            while len(reports) < 3:
                reports.append(tablet.sync())
                if reports[-1].ok:
                    break
            seconds = time.monotonic() - started
            after = link.stats()
            down = after["down"] - before["down"]
            summary = (f"{len(reports)} syncs, {seconds:.1f} s, {down} B down for {useful} B of changes, "
                       f"{after['drops'] - before['drops']} drops; {reports[-1].summary()}")
            print(summary)
            assert reports[-1].ok, summary
            assert len(reports) == 1, "one sync is enough: cut pages are asked again within it"
            assert len(tablet.store.query("event")) == held_before + 1000, summary
            assert after["drops"] > before["drops"], "the link really dropped"
            assert down < useful / 2, "gzip: far fewer bytes came down than the changes' JSON"
            assert tablet.store.counts().unsynced == 0
        finally:
            tablet.close()


def test_a_fresh_tablets_first_sync_succeeds_through_drops_of_1_to_30_kb(field, tmp_path):
    server, users = field
    write_backlog(server.url, users, 300)  # the grid's last weeks: with the demo, ~50 KB gzipped to come down
    with LinkProxy(server.port, up_bps=1 * MBIT, down_bps=1 * MBIT, drop_after=(1_000, 30_000), seed=21) as link:
        for n in range(3):  # five fresh tablets, one first sync each
            tablet = Tablet(tmp_path / f"tablet{n}", link.url)
            try:
                tablet.login()
                report = tablet.sync()
                print(f"tablet {n}: {link.stats()}; {report.summary()}")
                assert report.ok, report.summary()
                categories = {state["code"][0] for _id, _b, state in tablet.store.states("category")}
                assert {"garbage", "ebike_charging"} <= categories, "the tablet has categories to report with"
                assert report.more_to_pull is False and report.phases["pull"] == "done"
            finally:
                tablet.close()
        assert link.stats()["drops"] >= 6, "the link really dropped"


def test_uploads_through_drops_are_exact(field, tmp_path):
    server, _users = field
    with LinkProxy(server.port, up_bps=2 * MBIT, down_bps=2 * MBIT, drop_after=(50_000, 400_000), seed=22) as link:
        tablet = Tablet(tmp_path / "tablet", link.url)
        try:
            tablet.login()
            sizes = {}
            for n in range(8):
                photos = [noise_jpeg(100 * n + k, 120) for k in range(3)]
                _event, names = tablet.capture(photos, text=f"第{n}处")
                sizes.update({name: len(data) for name, data in zip(names, photos)})
            reports = [tablet.sync(photo_chunk=256 * 1024)]
            while not (reports[-1].ok and reports[-1].uploads_done) and len(reports) < 4:
                reports.append(tablet.sync(photo_chunk=256 * 1024))
            stats = link.stats()
            exact = photo_exactness(tablet.transport.photo_log, sizes)
            print(f"{len(reports)} syncs, {stats}, {exact}; {reports[-1].summary()}")
            assert reports[-1].ok and reports[-1].uploads_done, reports[-1].summary()
            assert stats["drops"] >= 3, "the link really dropped uploads"
            for name in sizes:
                assert server_has_photo(server.url, tablet.store.token, name)
            assert exact["resent_after_409"] == 0 and exact["restarts_from_zero"] == 0, exact
            assert stats["up"] < 1.15 * exact["photo_bytes"], "what was cut is resumed, not sent again"
            heads = sum(1 for entry in tablet.transport.photo_log if entry[0] == "head")
            assert heads <= stats["drops"], "a HEAD only after a cut of a photo really begun (D2)"
        finally:
            tablet.close()


def test_an_urgent_event_jumps_a_queued_photo_backlog(field, database_url, tmp_path):
    server, _users = field
    with LinkProxy(server.port, up_bps=1 * MBIT, down_bps=1 * MBIT, drop_after=(50_000, 400_000), seed=23) as link:
        tablet = Tablet(tmp_path / "tablet", link.url)
        try:
            tablet.login()
            assert tablet.sync().ok
            backlog = []
            for n in range(12):
                _event, names = tablet.capture([noise_jpeg(500 + 3 * n + k, 100) for k in range(3)], text=f"积压{n}")
                backlog += names
            # Push the backlog's records now: the drill is about the photos queued behind them (~29 s at 1 Mbit/s).
            reports = []
            runner = threading.Thread(target=lambda: reports.append(tablet.sync(photo_chunk=64 * 1024)))
            runner.start()
            time.sleep(5)  # "minute 5", scaled
            assert runner.is_alive(), "the backlog is still uploading"
            captured = time.monotonic()
            urgent, [first, second] = tablet.capture([noise_jpeg(900, 100), noise_jpeg(901, 100)], urgent=True,
                                                     text="起火！")
            token = tablet.store.token
            record_at = photo_at = None
            while runner.is_alive() and photo_at is None:
                now = time.monotonic() - captured
                if record_at is None and server_has_record(database_url, urgent):
                    record_at = now
                if record_at is not None and server_has_photo(server.url, token, first):
                    photo_at = now
                    waiting = [name for name in backlog if not server_has_photo(server.url, token, name)]
                time.sleep(0.2)
            runner.join(120)
            print(f"urgent event on the server after {record_at} s, its first photo after {photo_at} s; "
                  f"{link.stats()}; {reports[0].summary() if reports else ''}")
            assert record_at is not None and record_at < 5, "the urgent event went up between two chunks"
            assert photo_at is not None and photo_at < 15, "its first photo went next"
            assert waiting, "ahead of backlog photos still waiting"
            assert reports and reports[0].urgent_pushed == 1 and reports[0].pushed_during_photos == 1
        finally:
            tablet.close()

#!/usr/bin/env python
"""Field bench (issue 20): worker1's tablet on a bad link, the whole day of the field drill, scaled.

Run from the repository root::

    .venv/bin/python bench/field_bench.py [--scale 0.1] [--mbit 1] [--drops 50-400] [--drop-rate 0.01]

A real gunicorn (2 workers x 4 threads, SQLite, the demo) and worker1's tablet (Store, PhotoQueue,
HttpTransport, mobile.sync.synchronize) talk through tests/drills/proxy.py's LinkProxy: ``--mbit`` each way,
each connection cut after a random ``--drops`` KB (both ways together) or, by chance, ``--drop-rate`` per second.
``--scale`` scales every count and the urgent event's moment; photos keep their size (``--photo-kb``).

1. Up: 30 events with 3 photos each are captured offline, then synced until done.
2. Down: a supervisor writes a 1,000-change backlog into worker1's grid; the tablet syncs until it holds it.
   ``--old`` also runs this phase as the client did before issue 20 (pages of 500, no byte budget, no retry
   within a sync, no gzip), for at most 10 syncs.
3. Urgent: 900 photos are queued (their records already pushed); a sync starts, and at minute 5 an urgent
   event with 2 photos is captured; the latency until the server holds the event and its first photo is
   measured, then the bench stops (the backlog would go on for an hour at full scale).

For each phase: wall time against the link's own limit (useful bytes / bandwidth), bytes each way against
useful bytes, drops, syncs. Scratch folders are temporary. Progress goes to stderr, figures (markdown) to stdout.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SCRATCH = Path(tempfile.mkdtemp(prefix="gridpatrol-field-bench-"))
os.environ.setdefault("GRIDPATROL_VAR_DIR", str(SCRATCH / "var"))  # before the server's config is read

from tests.drills.field import (Tablet, noise_jpeg, photo_exactness, server_has_photo,  # noqa: E402
                                server_has_record, write_backlog)
from mobile.sync import SyncReport, push  # noqa: E402
from tests.drills.helpers import load_demo  # noqa: E402
from tests.drills.proxy import LinkProxy  # noqa: E402
from tests.servers import GunicornServer  # noqa: E402


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Stop(Exception):
    """Raised from the progress callback to end a sync the bench no longer needs."""


def migrate(url: str) -> None:
    from flask_migrate import upgrade

    from server import create_app
    from server.db import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "GRIDPATROL_NODE": "b0b0b0b0b0b0b0b0"})
    with app.app_context():
        upgrade()
        db.engine.dispose()


def traffic(link: LinkProxy, before: dict) -> dict:
    now = link.stats()
    return {key: now[key] - before[key] for key in now}


def row(name: str, seconds: float, limit: float, moved: dict, useful_up: int, useful_down: int, syncs: int,
        note: str) -> str:
    ratio_up = f"{moved['up'] / useful_up:.3f}" if useful_up else "-"
    ratio_down = f"{moved['down'] / useful_down:.3f}" if useful_down else "-"
    return (f"| {name} | {seconds:.1f} s | {limit:.1f} s | {moved['up']:,} B / {useful_up:,} B ({ratio_up}) | "
            f"{moved['down']:,} B / {useful_down:,} B ({ratio_down}) | {moved['drops']} | {syncs} | {note} |")


def sync_until(tablet: Tablet, done, limit: int, **options):
    reports = []
    while len(reports) < limit:
        reports.append(tablet.sync(**options))
        log(f"  sync {len(reports)}: {reports[-1].summary()}")
        if done(reports[-1]):
            break
    return reports


def main() -> None:
    # A SIGTERM ends the bench through its finally blocks, so the gunicorn it started stops with it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=0.1, help="scale of every count and of minute 5 (1 = full)")
    parser.add_argument("--mbit", type=float, default=1.0, help="the link's bandwidth each way, Mbit/s")
    parser.add_argument("--drops", default="50-400", help="cut each connection after LOW-HIGH KB ('' for none)")
    parser.add_argument("--drop-rate", type=float, default=0.01, help="chance per second a connection is cut")
    parser.add_argument("--photo-kb", type=int, default=400, help="size of a photo after capture, KB")
    parser.add_argument("--old", action="store_true", help="also run phase 2 as the client before issue 20")
    parser.add_argument("--seed", type=int, default=20)
    args = parser.parse_args()
    scaled = lambda n: max(1, round(n * args.scale))  # noqa: E731
    drops = tuple(int(x) * 1000 for x in args.drops.split("-")) if args.drops else None
    bps = args.mbit * 1_000_000
    url = f"sqlite:///{SCRATCH / 'store.db'}"
    migrate(url)
    users = load_demo(url)
    rows: list[str] = []
    try:
        with GunicornServer(url, SCRATCH / "photos", SCRATCH / "gunicorn.log") as server, \
                LinkProxy(server.port, up_bps=bps, down_bps=bps, seed=args.seed, lifetime=7200) as link:
            tablet = Tablet(SCRATCH / "tablet", link.url)
            tablet.login()
            assert tablet.sync().ok
            link.set_drops(drops, args.drop_rate)

            # 1. Up: events with photos captured offline.
            events = scaled(30)
            log(f"1. up: {events} events x 3 photos of {args.photo_kb} KB")
            sizes = {}
            for n in range(events):
                photos = [noise_jpeg(10_000 + 3 * n + k, args.photo_kb) for k in range(3)]
                _id, names = tablet.capture(photos, text=f"巡查第{n}处")
                sizes.update({name: len(p) for name, p in zip(names, photos)})
            before, started = link.stats(), time.monotonic()
            reports = sync_until(tablet, lambda r: r.ok and r.uploads_done, 20)
            moved, seconds = traffic(link, before), time.monotonic() - started
            useful_up = sum(sizes.values())
            exact = photo_exactness(tablet.transport.photo_log, sizes)
            rows.append(row(f"1. up: {events} events, {len(sizes)} photos", seconds, useful_up * 8 / bps, moved,
                            useful_up, 0, len(reports),
                            f"re-sent {exact['resent_after_409']} B, restarts {exact['restarts_from_zero']}, "
                            f"all held: {all(server_has_photo(server.url, tablet.store.token, s) for s in sizes)}"))

            # 2. Down: the backlog.
            backlog = scaled(1000)
            log(f"2. down: a backlog of {backlog} changes")
            held = len(tablet.store.query("event"))
            useful_down = write_backlog(server.url, users, backlog, chars=600)
            link.set_drops(drops, args.drop_rate)  # a fresh connection, as after a day away
            if args.old:
                old = Tablet(SCRATCH / "old-tablet", link.url)
                old.transport.session.headers["Accept-Encoding"] = "identity"
                old.login()
                old_held = 0
                before, started = link.stats(), time.monotonic()
                reports = sync_until(old, lambda r: r.ok, 10, page_bytes=2**31 - 1, max_retries=0,
                                     page_limit=500)
                old_held = sum(1 for _id, _b, state in old.store.states("event")
                               if state["reporter"][0] == users["supervisor1"]["id"])
                moved, seconds = traffic(link, before), time.monotonic() - started
                rows.append(row(f"2'. down, as before issue 20: {backlog} changes", seconds,
                                useful_down * 8 / bps, moved, 0, useful_down, len(reports),
                                f"{old_held} of {backlog} received; last sync ok: {reports[-1].ok}"))
                old.close()
            before, started = link.stats(), time.monotonic()
            reports = sync_until(tablet, lambda r: r.ok, 20)
            moved, seconds = traffic(link, before), time.monotonic() - started
            got = len(tablet.store.query("event")) - held
            rows.append(row(f"2. down: {backlog} changes", seconds, useful_down * 8 / bps, moved, 0, useful_down,
                            len(reports), f"{got} of {backlog} received; "
                                          f"{sum(r.retries for r in reports)} cut pages asked again"))

            # 3. Urgent: a photo backlog, an urgent event at minute 5.
            queued, at = scaled(900), 300 * args.scale
            log(f"3. urgent: {queued} photos queued, the urgent event at {at:.0f} s")
            for n in range(0, queued, 3):
                tablet.capture([noise_jpeg(50_000 + n + k, args.photo_kb) for k in range(min(3, queued - n))],
                               text=f"积压{n}")
            stop = threading.Event()

            def progress(phase, done, total):
                if stop.is_set():
                    raise Stop()

            # The backlog's records were pushed days ago; only their photos wait.
            push(tablet.store, tablet.transport, SyncReport(), lambda *a: None, batch_size=500, max_skew_retries=2)
            outcome = []

            def run():
                try:
                    outcome.append(tablet.sync(progress=progress))
                except Stop:
                    outcome.append("stopped")

            before, started = link.stats(), time.monotonic()
            runner = threading.Thread(target=run, daemon=True)
            runner.start()
            time.sleep(at)
            captured = time.monotonic()
            urgent, names = tablet.capture([noise_jpeg(99_001, args.photo_kb), noise_jpeg(99_002, args.photo_kb)],
                                           urgent=True, text="起火！消防通道堵塞")
            record_at = photo_at = None
            while photo_at is None and time.monotonic() - captured < 600:
                if record_at is None and server_has_record(url, urgent):
                    record_at = time.monotonic() - captured
                if record_at is not None and server_has_photo(server.url, tablet.store.token, names[0]):
                    photo_at = time.monotonic() - captured
                time.sleep(0.1)
            waiting = sum(1 for p in tablet.queue.photos() if not p.confirmed)
            stop.set()
            runner.join(60)
            moved, seconds = traffic(link, before), time.monotonic() - started
            # The link's limit here is the wall time itself: the backlog keeps the link busy the whole time.
            rows.append(row(f"3. urgent: {queued} photos queued, event at {at:.0f} s", seconds, seconds, moved,
                            moved["up"], 0, 1,
                            f"event on the server after {record_at:.1f} s, first photo after {photo_at:.1f} s "
                            f"(goals 30 s, 120 s); {waiting} photos still queued"))
            tablet.close()
    finally:
        shutil.rmtree(SCRATCH, ignore_errors=True)
    print(f"Field bench, {platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores; "
          f"link {args.mbit:g} Mbit/s each way, drops after {args.drops or 'never'} KB and {args.drop_rate:g}/s; "
          f"scale {args.scale:g}; photos {args.photo_kb} KB\n")
    print("| phase | wall | link's limit | up: moved / useful (ratio) | down: moved / useful (ratio) | drops | syncs "
          "| notes |")
    print("|---|---|---|---|---|---|---|---|")
    for line in rows:
        print(line)


if __name__ == "__main__":
    main()

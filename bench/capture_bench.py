#!/usr/bin/env python
"""Capture benchmark: "A capture saved with 100,000 records already in the local store takes under 50 ms."

Run from the repository root::

    .venv/bin/python bench/capture_bench.py [--records 100000] [--saves 300]

What it does:

1. Opens an `AppCore` in a scratch folder (the tablet's real store: WAL, ``synchronous=FULL``,
   so every save is one fsynced commit) and fills it, in bulk, with ``--records`` records in the
   proportions of a busy grid after months of patrol: 2 grids and 15 categories of reference
   data, events (a tenth of them this worker's, the rest colleagues'), two case actions
   (dispatch, rectify) on two events in three, and up to 500 of this worker's events still in
   the outbox. Rows are inserted with
   ``executemany`` straight into the store's tables in the store's own format (states
   ``{field: [value, hlc]}`` with real HLCs), which is what a long pull would have left there;
   going through ``Store.write`` one by one would only make the setup slower.
2. Times ``ReportPresenter.save`` — validation, the store transaction, the fsync — as the
   report screen calls it, ``--saves`` times in each of three variants:
   a plain event; an event with a photo already prepared (``add_photo`` ran before the clock
   started, as it does while the worker fills in the form); and a micro event handled on the
   spot (event and ``handle_on_spot`` action in one transaction).
3. Times the plain save again, twice, while another thread does what a sync does to the store,
   back to back (never waiting for a network, so worse than a real sync): first it applies pulled
   pages of 500 changes to held events (``mobile.sync.apply_page``, a transaction per ``APPLY_CHUNK``
   changes) and lists the photos to upload after each (a read of every record's photos, from its own
   read-only snapshot connection); then it runs a first sync's pull (``mobile.sync.pull``, as
   synchronize does) of pages of new events (``PULL_MAX_BYTES`` of JSON each, as HttpTransport asks),
   made by another process as a server would and decoded by pull's fetch thread while the page before
   is applied (issue 19).
4. Prints the median, p95 and the slowest save of each variant, in milliseconds, against 50 ms.

The store grows by every save, so the last saves see a little more than ``--records``.
Progress goes to stderr; the figures (markdown) go to stdout. The scratch folder is removed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mobile.app_core import AppCore  # noqa: E402
from mobile.location import LocationReading  # noqa: E402
from mobile.presenters import ReportPresenter  # noqa: E402
from mobile.sync import APPLY_CHUNK, PULL_MAX_BYTES, SyncReport, apply_page, pull  # noqa: E402
from mobile.transport import decode_pull  # noqa: E402
from shared.hlc import HLC, format_ms  # noqa: E402
from shared.records import uuid7  # noqa: E402

BUDGET_MS = 50.0
WORKER = "0193b5c8-0000-7000-8000-0000000000aa"
COLLEAGUES = [f"0193b5c8-0000-7000-8000-0000000000{n:02x}" for n in range(0xb0, 0xb8)]
GRIDS = ["G-0101", "G-0102"]
CATEGORIES = [(f"cat_{n:02d}", f"类别{n}", n >= 11) for n in range(15)]  # the last four are micro
SERVER_NODE = "5e7e7e7e7e7e7e7e"
TEXT = "三栋楼道内电动车飞线充电，消防通道被杂物堵塞，已拍照取证，请相关单位尽快处理。"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Stamps:
    """HLCs of a server that wrote the records long ago, in order."""

    def __init__(self, start_ms: int):
        self.ms = start_ms
        self.counter = 0

    def next(self) -> str:
        self.counter += 1
        if self.counter > 0xFFFF:
            self.ms, self.counter = self.ms + 1, 0
        return str(HLC(self.ms, self.counter, SERVER_NODE))


def fill(core: AppCore, records: int, rng: random.Random) -> dict[str, int]:
    """Bulk-insert reference data, events, case actions and an outbox into the core's store."""
    store = core.store
    start = store.physical_ms() - 180 * 86_400_000  # half a year of patrol
    stamps = Stamps(start)
    rows: list[tuple[str, str, str, str, int]] = []
    outbox: list[tuple[str, str, str]] = []

    def add(kind: str, bucket: str, values: dict, pending: bool = False) -> str:
        record_id = uuid7(stamps.ms, rng.randbytes(10))
        hlc = stamps.next()
        state = {name: [value, hlc] for name, value in values.items()}
        rows.append((kind, record_id, bucket, json.dumps(state, ensure_ascii=False, separators=(",", ":"),
                                                        sort_keys=True), 0))
        if pending:
            outbox.append((kind, record_id, json.dumps(sorted(values))))
        return record_id

    for code in GRIDS:
        add("grid", "ref", {"code": code, "name": f"{code} 网格", "community": "东湖社区", "street": "东湖街道",
                            "district": "示范区"})
    for code, name, micro in CATEGORIES:
        add("category", "ref", {"code": code, "name": name, "deadline_hours": 72, "micro": micro})
    counts = {"events": 0, "case_actions": 0, "mine": 0, "pending": 0}
    while len(rows) < records:
        grid = rng.choice(GRIDS)
        mine = rng.random() < 0.1
        pending = mine and counts["pending"] < 500 and rng.random() < 0.05
        stamps.ms += rng.randrange(1, 200)
        event = add("event", f"grid:{grid}", {
            "grid": grid, "category": rng.choice(CATEGORIES)[0], "description": TEXT, "urgent": False,
            "micro": False, "reporter": WORKER if mine else rng.choice(COLLEAGUES),
            "reported_at": format_ms(stamps.ms),
            "location": {"lat": 22.54 + rng.random() / 100, "lon": 114.05 + rng.random() / 100,
                         "accuracy_m": 8.0, "source": "gps"},
            "photos": [rng.randbytes(32).hex()]}, pending)
        counts["events"] += 1
        counts["mine"] += mine
        counts["pending"] += pending
        if rng.random() < 2 / 3:
            for action, actor, extra in (("dispatch", COLLEAGUES[0], {"unit": "fire"}), ("rectify", COLLEAGUES[1], {})):
                if len(rows) >= records:
                    break
                add("case_action", f"grid:{grid}", {"event": event, "action": action, "actor": actor, **extra})
                counts["case_actions"] += 1
    with store._transaction() as db:  # the bench's one use of the store's insides: a bulk load
        db.executemany("INSERT INTO records (kind, id, bucket, state, deleted) VALUES (?, ?, ?, ?, ?)", rows)
        db.executemany("INSERT INTO outbox (kind, id, fields) VALUES (?, ?, ?)", outbox)
    store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    counts["records"] = len(rows)
    return counts


def serve_pages(pages: "multiprocessing.Queue", start_ms: int, seed: int, page_bytes: int) -> None:
    """In a process of its own, as a server is: pull answers of new events of a grid, as JSON bytes, for ever.

    Each page holds as many changes as fit in ``page_bytes`` (the budget HttpTransport asks for); the queue
    is bounded, so this runs only a few pages ahead.
    """
    stamps, rng, page = Stamps(start_ms), random.Random(seed), 0
    while True:
        changes, size = [], 0
        while size < page_bytes:
            hlc = stamps.next()
            values = {"grid": GRIDS[0], "category": CATEGORIES[0][0], "description": TEXT, "urgent": False,
                      "micro": False, "reporter": COLLEAGUES[0], "reported_at": format_ms(stamps.ms),
                      "location": {"lat": 22.54, "lon": 114.05, "accuracy_m": 8.0, "source": "gps"},
                      "photos": [rng.randbytes(32).hex()]}
            change = json.dumps({"kind": "event", "id": uuid7(stamps.ms, rng.randbytes(10)),
                                 "bucket": f"grid:{GRIDS[0]}", "fields": {n: [v, hlc] for n, v in values.items()}},
                                ensure_ascii=False, separators=(",", ":"))
            changes.append(change)
            size += len(change.encode())
        page += 1
        cursors = json.dumps({"ref": str(page), **{f"grid:{g}": str(page) for g in GRIDS}})
        pages.put(f'{{"changes":[{",".join(changes)}],"cursors":{cursors},"more":true,"hlc":null}}'.encode())


class MemoryFeed:
    """The pull side of a server in another process (serve_pages): each page's JSON is decoded in pull, on
    mobile.sync's fetch thread, as HttpTransport decodes what it receives (`decode_pull`, each change's fields
    text kept, which the store stores for a record it does not hold); ``more`` until ``stop`` is set."""

    def __init__(self, pages: "multiprocessing.Queue", stop: threading.Event, done: list[int]) -> None:
        self.pages, self.stop, self.done = pages, stop, done

    def push(self, *args, **kwargs) -> dict:
        raise AssertionError("the bench only pulls")

    def pull(self, cursors: dict, limit: int) -> dict:
        answer = decode_pull(self.pages.get(timeout=60))  # as HttpTransport decodes a pull answer
        answer["more"] = not self.stop.is_set()
        self.done[0] += 1
        return answer


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


def jpeg(rng: random.Random) -> bytes:
    """A camera-sized-ish JPEG (1600 x 1200, noise), so the prepared photo is a realistic file."""
    import io

    from PIL import Image
    image = Image.frombytes("RGB", (400, 300), rng.randbytes(400 * 300 * 3)).resize((1600, 1200))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--saves", type=int, default=300, help="saves timed per variant")
    args = parser.parse_args()
    rng = random.Random(7)
    scratch = Path(tempfile.mkdtemp(prefix="gp_capture_bench_"))
    try:
        core = AppCore(scratch / "tablet", transport_factory=lambda url, token: None)
        core.store.save_login("https://gridpatrol.test", "token", {"id": WORKER, "name": "张伟", "role": "worker"},
                              ["ref"] + [f"grid:{g}" for g in GRIDS])
        log(f"filling the store with {args.records:,} records …")
        started = time.perf_counter()
        counts = fill(core, args.records, rng)
        log(f"  {counts} in {time.perf_counter() - started:.1f} s")
        report = ReportPresenter(core)
        micro = [code for code, _name, is_micro in CATEGORIES if is_micro]
        plain = [code for code, _name, is_micro in CATEGORIES if not is_micro]
        here = LocationReading(22.5431, 114.0579, 6.0, "gps")

        variants: dict[str, list[float]] = {"plain event": [], "event with a prepared photo": [],
                                            "micro event handled on the spot": []}
        photo_prep: list[float] = []
        checks: list[float] = []  # the validation alone, without the write: the rest of a save is the commit
        for n in range(args.saves):
            for name in variants:
                kwargs = {"grid": rng.choice(GRIDS), "description": TEXT, "location": here}
                if name != "event with a prepared photo":  # a report needs a photo now: prepared off the clock
                    kwargs["photos"] = [report.add_photo(jpeg(rng))]
                if name == "event with a prepared photo":
                    data = jpeg(rng)
                    begun = time.perf_counter()
                    kwargs["photos"] = [report.add_photo(data)]
                    photo_prep.append((time.perf_counter() - begun) * 1000)
                if name == "micro event handled on the spot":
                    kwargs.update(category=rng.choice(micro), handled_on_spot=True, note="当场处置")
                else:
                    kwargs["category"] = rng.choice(plain)
                if name == "plain event":
                    begun = time.perf_counter()
                    report.check(**kwargs)
                    checks.append((time.perf_counter() - begun) * 1000)
                begun = time.perf_counter()
                report.save(**kwargs)
                variants[name].append((time.perf_counter() - begun) * 1000)
            if (n + 1) % 100 == 0:
                log(f"  {n + 1} of {args.saves} rounds")

        # 4. The same plain save while a sync works in another thread, as SyncRunner's would, back to back,
        #    never waiting for a network. Two kinds of sync work:
        #    a. applying pulled pages of 500 changes to held events (mobile.sync.apply_page: a transaction per
        #       APPLY_CHUNK changes), listing the photos to upload (PhotoQueue.to_upload, a scan of every
        #       record's photos on a snapshot connection) after each;
        #    b. a first sync's pull (mobile.sync.pull, as synchronize runs it): pages of new events made
        #       by another process (serve_pages) and decoded on pull's fetch thread, as HttpTransport does,
        #       while the page before is applied.
        event_ids = [rid for rid, _b, _s in core.store.states("event")][:20_000]
        stamps = Stamps(core.store.physical_ms() - 86_400_000)
        pages = {}

        def apply_pages(stop: threading.Event, done: list[int]) -> None:
            page = 0
            while not stop.is_set():
                batch = event_ids[(page * 500) % len(event_ids):][:500]
                changes = [{"kind": "event", "id": rid, "bucket": "grid:G-0101",
                            "fields": {"description": [f"{TEXT} ({page})", stamps.next()]}} for rid in batch]
                cursors = {"ref": str(page), **{f"grid:{g}": str(page) for g in GRIDS}}
                apply_page(core.store, changes, cursors, cursors, None)  # as synchronize's pull does
                core.photos.to_upload()
                page += 1
                done[0] = page

        spawn = multiprocessing.get_context("spawn")
        server_pages = spawn.Queue(maxsize=2)
        server = spawn.Process(target=serve_pages, args=(server_pages, core.store.physical_ms() - 3_600_000, 19,
                                                         PULL_MAX_BYTES), daemon=True)
        server.start()

        def first_sync(stop: threading.Event, done: list[int]) -> None:
            feed = MemoryFeed(server_pages, stop, done)
            while not stop.is_set():
                pull(core.store, feed, SyncReport(), lambda *_: None, page_limit=500)

        for label, work in ((f"applying pages back to back, chunks of {APPLY_CHUNK}", apply_pages),
                            ("a first sync's pull, the next page fetched and decoded meanwhile", first_sync)):
            log(f"saving while a sync thread works ({label}) …")
            name = f"plain event while a sync thread works ({label})"
            during = variants[name] = []
            stop = threading.Event()
            done = [0]
            worker = threading.Thread(target=work, args=(stop, done), daemon=True)
            worker.start()
            time.sleep(0.5)
            for n in range(args.saves):
                photos = [report.add_photo(jpeg(rng))]
                begun = time.perf_counter()
                report.save(grid=rng.choice(GRIDS), category=rng.choice(plain), description=TEXT, location=here,
                            photos=photos)
                during.append((time.perf_counter() - begun) * 1000)
                time.sleep(0.01)  # a worker does not save back to back
            stop.set()
            worker.join()
            pages[label] = done[0]
        server.terminate()
        final = core.store.counts()
        core.close()

        print(f"Store: {counts['records']:,} records before the first timed save ({counts['events']:,} events, "
              f"{counts['mine']:,} of them this worker's, {counts['case_actions']:,} case actions, "
              f"{counts['pending']} events unsynced), {final.records:,} after the last; "
              f"{args.saves} saves per variant, interleaved.")
        print()
        print("| save | median | p95 | slowest | under 50 ms? |")
        print("|---|---|---|---|---|")
        for name, times in variants.items():
            p95 = percentile(times, 0.95)
            verdict = f"yes, {BUDGET_MS / p95:.0f}x headroom at p95" if p95 < BUDGET_MS else "**no**"
            print(f"| {name} | {statistics.median(times):.1f} ms | {p95:.1f} ms | {max(times):.1f} ms | {verdict} |")
        print()
        print("While the saves of the last two variants ran, the sync thread applied "
              + " and ".join(f"{n} pages" for n in pages.values())
              + f" (up to 500 changes, {APPLY_CHUNK} per transaction).")
        print()
        print(f"Of a plain save, the validation alone (`ReportPresenter.check`, no write) takes median "
              f"{statistics.median(checks):.2f} ms; the rest is the transaction and its fsync.")
        print()
        print(f"Preparing the photo beforehand (`add_photo`, 1600 x 1200 noise JPEG, not part of the save): "
              f"median {statistics.median(photo_prep):.0f} ms.")
        print()
        print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
              f"Python {platform.python_version()}, SQLite {__import__('sqlite3').sqlite_version}, "
              f"scratch on {scratch.parent}.")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Statistics benchmark (issue 16): the street-level weekly table for a month, and a 200,000-row XLSX export.

Run from the repository root::

    .venv/bin/python bench/stats_bench.py [--engine sqlite|postgresql|both] [--events N] [--export-rows N]

1. The table. A store of ``--events`` events (1,000,000 by default) and their actions over 200 grids is
   bulk-loaded and its cases table rebuilt, as bench/cases_bench.py does. Then the street-level table of
   a month (`server.stats.service.table("street", …)`, the figures of the dashboard's first screen) is
   computed ``--requests`` times, and so is the whole dashboard page (``GET /stats?from=…&to=…``, the
   table, the rhythm, the categories and the map's open cases, through a logged-in supervisor's test
   client). Goal: the table under 1 s (p95).
2. The export. A store of ``--export-rows`` events (200,000) is exported whole as XLSX
   (``GET /cases/export.xlsx?status=all``) by a fresh process, whose peak RSS (VmHWM, and VmRSS sampled
   every 5 ms) is compared with the same process's RSS before the request. Goal: peak under 300 MiB.

Progress goes to stderr, the figures to stdout. The machine may be shared: p95s are what they are.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from contextlib import ExitStack
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import cases_bench as cb  # noqa: E402  (the store's builder)
import sync_bench as sb  # noqa: E402

from server.config import parse_offset  # noqa: E402
from server.db import db  # noqa: E402
from server.reference import load_reference  # noqa: E402
from server.stats import service  # noqa: E402

MIB = 1024 * 1024


def month_before(now_ms: int) -> service.Period:
    """The 30 days up to now, in the district's time (the bench's events span the year up to now)."""
    last = date.fromtimestamp(now_ms / 1000)
    return service.Period.of_days(last - timedelta(days=29), last, parse_offset("+08:00"))


def bench_table(store, requests: int) -> dict[str, float]:
    pages = cb.Pages(store, 7)
    now_ms = int(time.time() * 1000)
    period = month_before(now_ms)
    table_ms, page_ms = [], []
    with store.app.app_context():
        reference = load_reference()
        result = service.table("street", period, now_ms, reference)
        rows, reported = len(result.rows), result.total.figures["reported"]
        for _ in range(requests):
            table_ms.append(cb.timed(lambda: service.table("street", period, now_ms, reference)))
        db.session.remove()
    path = f"/stats?from={period.first}&to={period.last}"
    for _ in range(max(5, requests // 5)):
        page_ms.append(cb.timed(lambda: pages.get(path)))
    return {"table_p95": cb.p95(table_ms), "table_median": sorted(table_ms)[len(table_ms) // 2],
            "page_p95": cb.p95(page_ms), "rows": rows, "reported": reported}


def export_child(url: str) -> None:
    """In a fresh process: log in, export every case as XLSX, print RSS before and the peak (KiB) and the size."""
    from server import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "GRIDPATROL_ID_KEY": "5e" * 64,
                      "GRIDPATROL_PHOTO_DIR": str(sb.TMP / "photos")})
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token" type="hidden" value="', 1)[1].split('"', 1)[0]
    client.post("/login", data={"csrf_token": token, "username": "supervisor", "password": sb.PASSWORD})
    client.get("/cases")  # the app's own warm-up: templates, reference data
    before = sb.proc_status_kib(os.getpid(), "VmRSS")
    started = time.perf_counter()
    with client.get("/cases/export.xlsx?status=all") as answer:
        size = len(answer.data)
        assert answer.status_code == 200, answer.status_code
    print(f"{before} {sb.proc_status_kib(os.getpid(), 'VmHWM')} {size} {time.perf_counter() - started:.2f}")


def bench_export(store) -> dict[str, float]:
    cb._dispose(store.app)
    command = [sys.executable, __file__, "--export-child", store.url]
    with open(sb.TMP / "export.out", "w+") as out, open(sb.TMP / "export.err", "w+") as err:
        proc = subprocess.Popen(command, stdout=out, stderr=err, text=True,
                                env={**os.environ, "PYTHONPATH": str(sb.ROOT)})
        sampled = 0
        while proc.poll() is None:
            try:
                sampled = max(sampled, sb.proc_status_kib(proc.pid, "VmRSS"))
            except (OSError, KeyError):  # exiting
                pass
            time.sleep(0.005)
        out.seek(0)
        err.seek(0)
        assert proc.returncode == 0, err.read()[-2000:]
        before, hwm, size, seconds = out.read().split()[-4:]
    peak = max(int(hwm), sampled)
    return {"before_mib": int(before) / 1024, "peak_mib": peak / 1024, "size_mb": int(size) / 1e6,
            "seconds": float(seconds)}


def run(engine: str, args, failures: list[str]) -> None:
    with ExitStack() as stack:
        big = cb.build_store(stack, engine, args.events, 11)
        cb.rebuild(big)
        figures = bench_table(big, args.requests)
        ok = figures["table_p95"] < 1000
        print(f"[{engine}] street table of a month on {args.events:,} events ({figures['reported']:,} in the month, "
              f"{figures['rows']} streets): p95 {figures['table_p95']:.0f} ms, median {figures['table_median']:.0f} ms "
              f"(goal < 1000 ms) {sb.verdict(ok)}; the whole dashboard page p95 {figures['page_p95']:.0f} ms")
        if not ok:
            failures.append(f"{engine} table")
    with ExitStack() as stack:
        small = cb.build_store(stack, engine, args.export_rows, 12)
        cb.rebuild(small)
        export = bench_export(small)
        ok = export["peak_mib"] < 300
        print(f"[{engine}] XLSX export of {args.export_rows:,} cases: {export['seconds']:.1f} s, "
              f"{export['size_mb']:.1f} MB; process RSS {export['before_mib']:.0f} MiB before, peak "
              f"{export['peak_mib']:.0f} MiB (goal < 300 MiB) {sb.verdict(ok)}")
        if not ok:
            failures.append(f"{engine} export")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--export-rows", type=int, default=200_000)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--export-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.export_child:
        export_child(args.export_child)
        return 0
    failures: list[str] = []
    for engine in (["sqlite", "postgresql"] if args.engine == "both" else [args.engine]):
        run(engine, args, failures)
    print("goals met" if not failures else "goals missed: " + ", ".join(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

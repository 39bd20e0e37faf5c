"""Patrol bench: a district's day of tracks synced in one evening onto PostgreSQL, and its coverage.

W workers (``--workers``, 500 by default) each walked 8 hours of their own grid (a 700 m square with
an outline) with a fix every 10 s: 2,880 points a worker-day. In the evening every tablet pushes its
day as a tablet does (server/sync/views.py, gzip body): the patrol record and its points packed in
``track`` records of up to 1,000 points (shared/track.py), ``--clients`` tablets at a time, against
gunicorn (2 workers x 4 threads, as ``make run``) on a scratch PostgreSQL database on 127.0.0.1. The
bench prints:

- the store's growth per worker-day: ``pg_total_relation_size`` of ``records`` (its TOAST and indexes
  with it) before and after, over W;
- the push time, in all and per worker (each tablet's push, from sending to its answer);
- the coverage of the district-day (server/patrols/coverage.py): computed (every grid-day's cells
  against its tracks, then written to the cache) and then read back from the cache;
- what the packed form saves on the wire: bytes per point of the packed track records against one
  record per point (the contract's envelope, an HLC per field), plain and gzipped.

    PYTHONPATH=$PWD .venv/bin/python bench/patrol_bench.py --workers 500
    PYTHONPATH=$PWD .venv/bin/python bench/patrol_bench.py --workers 20      # a quick run

docs/benchmarks.md ("Patrols") has the figures of a run.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # load_bench's scratch database and gunicorn

from load_bench import gunicorn, progress, scratch_database  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "patrol-bench-password"
POINTS = 2_880  # 8 hours at 10 s
EVERY_MS = 10_000
SIDE_M = 700.0
SOUTH, WEST = 22.50, 113.95  # the district's south-west corner
M_LAT = 111_195.0
M_LON = M_LAT * math.cos(math.radians(SOUTH + 0.2))


def grid_box(n: int, columns: int) -> tuple[float, float, float, float]:
    """(south, west, north, east) of grid n: 700 m squares laid in rows of `columns`."""
    row, column = divmod(n, columns)
    south, west = SOUTH + row * SIDE_M / M_LAT, WEST + column * SIDE_M / M_LON
    return south, west, south + SIDE_M / M_LAT, west + SIDE_M / M_LON


def setup(url: str, workers: int) -> list[dict]:
    """Migrate the store; add one grid (with its outline) and one worker with a device per worker."""
    from flask_migrate import upgrade
    from werkzeug.security import generate_password_hash

    from server import accounts, create_app
    from server.db import db
    from server.sync import apply

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "GRIDPATROL_NODE": uuid.uuid4().hex[:16]})
    cheap = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1")  # nobody logs in with it
    accounts.generate_password_hash = lambda _password: cheap
    columns = max(1, math.ceil(math.sqrt(workers)))
    found = []
    with app.app_context():
        upgrade()
        codes = [f"P-{n:04d}" for n in range(workers)]
        changes = []
        for n, code in enumerate(codes):
            south, west, north, east = grid_box(n, columns)
            changes.append(apply.stamp("grid", str(uuid.uuid5(uuid.NAMESPACE_URL, "patrol/" + code)), {
                "code": code, "name": f"网格 {code}", "type": "base", "community": f"社区 {n // 20}",
                "street": f"街道 {n // 100}", "district": "示范区",
                "boundary": {"type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north],
                                                                 [west, north], [west, south]]]}}))
        for at in range(0, len(changes), 500):
            apply.write_as_server(changes[at:at + 500])
        for n, code in enumerate(codes):
            user = accounts.create_user(f"patrol-{code}", PASSWORD, role="worker", grids=[code])
            db.session.commit()
            node = uuid.uuid4().hex[:16]
            _, token = accounts.register_device(user, f"tablet-{code}", node)
            found.append({"user": user.id, "grid": code, "token": token, "node": node, "box": grid_box(n, columns)})
        db.engine.dispose()
    return found


def day_points(box, start_ms: int, rng: random.Random):
    """A worker's 8 hours: a lawnmower walk of the grid (rows 60 m apart) at 1.2 m/s, a fix every 10 s."""
    from shared.track import Point

    south, west, north, east = box
    rows = int(SIDE_M / 60)
    waypoints = []
    for i in range(rows + 1):
        lat = south + (north - south) * (0.03 + 0.94 * i / rows)
        a, b = west + (east - west) * 0.03, east - (east - west) * 0.03
        waypoints += [(lat, a), (lat, b)] if i % 2 == 0 else [(lat, b), (lat, a)]
    legs = []
    for (lat1, lon1), (lat2, lon2) in zip(waypoints, waypoints[1:] + waypoints[:1]):
        legs.append(((lat1, lon1), (lat2, lon2), math.hypot((lat2 - lat1) * M_LAT, (lon2 - lon1) * M_LON)))
    total = sum(length for *_ends, length in legs)
    points = []
    for n in range(POINTS):
        along = (n * 12.0) % total
        for (lat1, lon1), (lat2, lon2), length in legs:
            if along <= length:
                f = along / length if length else 0.0
                lat, lon = lat1 + (lat2 - lat1) * f, lon1 + (lon2 - lon1) * f
                break
            along -= length
        points.append(Point(start_ms + n * EVERY_MS, lat + rng.uniform(-2e-5, 2e-5), lon + rng.uniform(-2e-5, 2e-5),
                            float(rng.randint(3, 15)) if n % 200 else 80.0, round(rng.uniform(0.8, 1.6), 1)))
    return points


def day_changes(creds: dict, points, hlc: str) -> list[dict]:
    """The worker's patrol and its track records, as the tablet pushes them."""
    from shared.hlc import format_ms
    from shared.records import uuid7
    from shared.track import MAX_POINTS, length_m, pack

    patrol = uuid7(points[0].at_ms, os.urandom(10))
    bucket = "grid:" + creds["grid"]
    values = {"grid": creds["grid"], "worker": creds["user"], "started_at": format_ms(points[0].at_ms),
              "ended_at": format_ms(points[-1].at_ms), "distance_m": round(length_m(points), 1), "closed_by": "worker"}
    changes = [{"kind": "patrol", "id": patrol, "bucket": bucket,
                "fields": {name: [value, hlc] for name, value in values.items()}}]
    for seq, at in enumerate(range(0, len(points), MAX_POINTS)):
        part = points[at:at + MAX_POINTS]
        values = {"patrol": patrol, "worker": creds["user"], "seq": seq, "start": format_ms(part[0].at_ms),
                  "points": pack(part, part[0].at_ms)}
        changes.append({"kind": "track", "id": uuid7(part[0].at_ms, os.urandom(10)), "bucket": bucket,
                        "fields": {name: [value, hlc] for name, value in values.items()}})
    return changes


def per_point_changes(creds: dict, points, hlc: str) -> list[dict]:
    """The same points as one record each (what the packed form replaces), for the wire comparison only."""
    from shared.hlc import format_ms
    from shared.records import uuid7

    found = []
    for point in points:
        values = {"patrol": "0193b5c8-0000-7000-9000-000000000001", "worker": creds["user"],
                  "at": format_ms(point.at_ms), "lat": round(point.lat, 6), "lon": round(point.lon, 6),
                  "accuracy_m": point.accuracy_m, "speed_mps": point.speed_mps}
        found.append({"kind": "track_point", "id": uuid7(point.at_ms, os.urandom(10)), "bucket": "grid:" + creds["grid"],
                      "fields": {name: [value, hlc] for name, value in values.items()}})
    return found


def _size(url: str) -> int:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute("CHECKPOINT")
        return conn.execute("SELECT pg_total_relation_size('records')").fetchone()[0]


def push_all(base: str, tablets: list[dict], bodies: list[bytes], clients: int) -> tuple[float, list[float]]:
    import requests

    def one(index: int) -> float:
        creds = tablets[index]
        with requests.Session() as http:
            started = time.perf_counter()
            answer = http.post(base + "/api/v1/sync/push", data=bodies[index], timeout=300, headers={
                "Authorization": f"Bearer {creds['token']}", "Content-Type": "application/json",
                "Content-Encoding": "gzip"})
            took = time.perf_counter() - started
        answer.raise_for_status()
        statuses = {r["status"] for r in answer.json()["results"]}
        if statuses != {"applied"}:
            raise RuntimeError(f"push of {creds['grid']}: {answer.json()['results']}")
        return took

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        times = list(pool.map(one, range(len(tablets))))
    return time.perf_counter() - started, times


def coverage_times(url: str, day, workers: int) -> dict[str, float]:
    """The district-day's coverage: computed and cached, then read from the cache."""
    from server import create_app
    from server.clock import server_clock
    from server.config import parse_offset
    from server.db import db
    from server.patrols import coverage, service

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "GRIDPATROL_NODE": uuid.uuid4().hex[:16]})
    found = {}
    with app.app_context():
        zone = parse_offset(app.config["GRIDPATROL_UTC_OFFSET"])
        period = service.period_of("day", day, zone)
        now = server_clock().physical_ms()
        for label in ("computed", "cached"):
            db.session.remove()
            started = time.perf_counter()
            grids = service.load_grids()
            rows = coverage.coverage(grids, sorted(grids), period, zone, now)
            found[label] = time.perf_counter() - started
        total = coverage.total(rows)
        found["rate"] = total.rate or 0.0
        found["grids"] = len(rows)
        found["cells"] = total.cells or 0
        week = service.period_of("week", day, zone)
        started = time.perf_counter()
        coverage.coverage(grids, sorted(grids), week, zone, now)
        found["week"] = time.perf_counter() - started
        db.session.remove()
        db.engine.dispose()
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=500, help="worker-days to push (one grid each)")
    parser.add_argument("--clients", type=int, default=8, help="tablets pushing at once")
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args(argv)
    from datetime import datetime, timedelta, timezone

    from shared.hlc import HLC, system_ms

    rng = random.Random(args.seed)
    with scratch_database("patrols") as url, tempfile.TemporaryDirectory() as tmp:
        progress(f"setting up {args.workers} grids, workers and devices")
        tablets = setup(url, args.workers)
        now = system_ms()
        start = now - 9 * 3_600_000  # 8 hours that ended an hour ago
        zone = timezone(timedelta(hours=8))
        day = datetime.fromtimestamp(start / 1000, zone).date()
        progress("making the worker-days")
        bodies, packed_bytes, packed_gzip, point_count = [], 0, 0, 0
        sample_plain = sample_gzip = sample_points = 0
        for index, creds in enumerate(tablets):
            points = day_points(creds["box"], start, rng)
            hlc = str(HLC(now, 0, creds["node"]))
            changes = day_changes(creds, points, hlc)
            raw = json.dumps({"node": creds["node"], "changes": changes, "sent_at": hlc[:24]},
                             ensure_ascii=False, separators=(",", ":")).encode()
            body = gzip.compress(raw, 6)
            bodies.append(body)
            packed_bytes += len(raw)
            packed_gzip += len(body)
            point_count += len(points)
            if index < 5:  # one record per point, for five workers: what the packed form saves
                single = json.dumps({"node": creds["node"], "changes": per_point_changes(creds, points, hlc)},
                                    separators=(",", ":")).encode()
                sample_plain += len(single)
                sample_gzip += len(gzip.compress(single, 6))
                sample_points += len(points)
        before = _size(url)
        progress(f"pushing {args.workers} worker-days with {args.clients} tablets at a time")
        with gunicorn(ROOT, url, 2, 4, Path(tmp)) as (base, _master):
            total, times = push_all(base, tablets, bodies, args.clients)
        after = _size(url)
        progress("computing the district-day's coverage")
        cover = coverage_times(url, day, args.workers)
    times.sort()
    grown = after - before
    lines = [
        f"worker-days: {args.workers} x {POINTS} points (8 h at 10 s), {args.clients} tablets at a time, "
        f"gunicorn 2 x 4 on PostgreSQL",
        f"store growth (pg_total_relation_size of records): {grown / 1e6:.1f} MB in all, "
        f"{grown / args.workers / 1024:.1f} KiB per worker-day, {grown / point_count:.1f} bytes per point",
        f"push: {total:.1f} s in all ({args.workers / total:.1f} worker-days/s); per worker "
        f"p50 {statistics.median(times) * 1000:.0f} ms, p95 {times[int(0.95 * (len(times) - 1))] * 1000:.0f} ms, "
        f"max {times[-1] * 1000:.0f} ms",
        f"wire, packed: {packed_bytes / point_count:.1f} bytes per point as JSON, {packed_gzip / point_count:.1f} gzipped "
        f"({packed_gzip / args.workers / 1024:.0f} KiB per worker-day gzipped)",
        f"wire, one record per point: {sample_plain / sample_points:.1f} bytes per point as JSON, "
        f"{sample_gzip / sample_points:.1f} gzipped ({sample_plain / sample_points / (packed_bytes / point_count):.1f}x "
        f"and {sample_gzip / sample_points / (packed_gzip / point_count):.1f}x the packed form)",
        f"coverage of the district-day ({cover['grids']} grids, {cover['cells']} cells, {cover['rate'] * 100:.1f} % "
        f"covered): computed {cover['computed']:.2f} s ({cover['computed'] / cover['grids'] * 1000:.1f} ms a grid), "
        f"from the cache {cover['cached']:.2f} s; its week (one day with tracks) {cover['week']:.2f} s",
    ]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Sync benchmark: throughput against a raw insert, pull cost against store size, server memory on a big pull.

Run from the repository root::

    .venv/bin/python bench/sync_bench.py [--engine sqlite|postgresql|both] [--quick] [--http]

It answers the three questions of the issue "Sync v1", section "Benchmark":

1. Throughput. 10,000 new event records are pushed in batches of 500 through
   the real API (``POST /api/v1/sync/push`` with a device token from
   ``POST /api/v1/auth/device``), then pulled by a fresh device page by page
   until ``more`` is false. The same rows are then inserted with a plain DB-API
   ``executemany`` (500 rows and one commit per batch, like the pushes) into a
   table of the same shape in the same database (only the executemany and the
   commits are timed; the rows, JSON included, are made beforehand, as the push
   bodies are). Three rounds on fresh stores; the medians are printed, and with
   the test client also this process's CPU time per record (steadier on a
   shared machine; on SQLite it is all the work, server and database).
   The prepared changes are dropped before the clock starts (only the bodies
   and rows stay), and the puller lets each page go once read, as a tablet
   does, so the bench's own objects do not tax the server's garbage collector.
   Requests go through Flask's test client by default (the whole server code
   path: routing, token check, JSON, validation, merge, feed, commit; no
   sockets); ``--http`` sends them over real HTTP to gunicorn (one sync
   worker, with the repository's gunicorn.conf.py) on 127.0.0.1 instead.
   Either way the garbage collector runs as in a server process
   (server/process.py, called from gunicorn.conf.py in each worker).
   Push bodies are gzip-compressed beforehand, as mobile/transport.py sends them.
2. Pull cost. Stores of 10k and 1M records (``--quick``: 100k) are bulk-loaded
   straight into ``records`` (COPY on PostgreSQL, executemany on SQLite) with
   increasing positions over 50 grid buckets of uneven size, plus reference
   data and one grid that went quiet (10 % of the older half of the feed, none
   of the newer). Then 100 fresh changes are pushed after the cursors of two
   devices, one in the busiest grid and one in the quiet grid, and each device
   pulls them, 25 times; pulls on the small and the big store alternate, so
   other load on the machine slows both alike. The medians are compared, and
   the plan of the pull query the server actually ran is shown (EXPLAIN).
3. Memory. A gunicorn with one sync worker (a fresh process per measurement)
   serves a fresh device's first pull of 1,000 records, and then, in another
   fresh process, of 100,000 records, page by page. The worker's peak RSS is
   the larger of VmHWM (the kernel's high-water mark) in /proc/<pid>/status
   after the pull and VmRSS sampled there every 5 ms during it.

Scratch stores (a temporary SQLite file, a ``gp_bench_*`` PostgreSQL database)
are migrated with flask_migrate.upgrade and removed at the end. Progress goes
to stderr; the figures go to stdout.
"""

from __future__ import annotations

import argparse
import atexit
import gzip
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from http_ready import wait_ready

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Before importing server: keep the bench's secret key and var/ out of the working tree.
TMP = Path(tempfile.mkdtemp(prefix="gp-bench-"))
atexit.register(shutil.rmtree, TMP, ignore_errors=True)
os.environ["GRIDPATROL_VAR_DIR"] = str(TMP / "var")
os.environ.setdefault("GRIDPATROL_SECRET_KEY", "bench-" + uuid.uuid4().hex)

from sqlalchemy import event, func, select  # noqa: E402

from server import accounts, create_app, process  # noqa: E402
from server.db import db  # noqa: E402
from server.models import Record, User  # noqa: E402
from shared.hlc import HLC, format_ms  # noqa: E402
from shared.records import uuid7  # noqa: E402

PG_ADMIN_URL = os.environ.get("GRIDPATROL_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PUSH_NODE, PULL_NODE = "a0" * 8, "b0" * 8
PASSWORD = "bench-pass"
CATEGORIES = ["fire_hazard", "ebike_charging", "blocked_escape", "illegal_wiring", "illegal_construction",
              "street_vendor", "illegal_parking", "garbage", "sewage", "unlicensed_business"]
PHRASES = ["3栋楼道内电动车飞线充电", "路口垃圾堆放，影响通行", "出租屋疏散通道被杂物堵塞", "违建加层，已拍照取证",
           "商铺门前占道经营", "消防栓被遮挡", "Dumped garbage next to the bus stop", "私拉电线至楼外"]


def progress(message: str) -> None:
    """A progress line on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def per_second(value: float) -> str:
    return f"{value:>9,.0f} records/s"


def verdict(ok: bool) -> str:
    return "meets goal" if ok else "MISSES goal"


# --- scratch stores ----------------------------------------------------------------------------

_scratch_counter = iter(range(1_000_000))


def _pg_admin():
    import psycopg

    return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)


@contextmanager
def scratch_store(engine: str) -> Iterator[str]:
    """A freshly migrated, empty store on the engine; its URL. Dropped afterwards."""
    n = next(_scratch_counter)
    if engine == "sqlite":
        folder = TMP / f"store{n}"
        folder.mkdir()
        url = f"sqlite:///{folder / 'store.db'}"
    else:
        name = f"gp_bench_{os.getpid()}_{n}"
        with _pg_admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        url = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1) + "/" + name
    try:
        from flask_migrate import upgrade

        app = make_app(url)
        with app.app_context():
            upgrade()
            db.engine.dispose()
        yield url
    finally:
        if engine == "sqlite":
            shutil.rmtree(folder, ignore_errors=True)
        else:
            with _pg_admin() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_app(url: str):
    """A server app on the store at url."""
    return create_app({"SQLALCHEMY_DATABASE_URI": url, "GRIDPATROL_NODE": uuid.uuid4().hex[:16],
                       "GRIDPATROL_PHOTO_DIR": str(TMP / "photos")})


def add_worker(app, username: str, grids: list[str]) -> str:
    """A worker of the grids; their user id."""
    with app.app_context():
        user = accounts.create_user(username, PASSWORD, role="worker", grids=grids)
        db.session.commit()
        return user.id


def device_token(app, username: str, node: str) -> str:
    """A device token made directly in the store, so the server process never hashes a password."""
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == username))
        _, token = accounts.register_device(user, f"{username}-tablet", node)
        return token


def dumps(body: Any) -> bytes:
    """JSON as mobile/transport.py sends it: UTF-8, compact."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# --- talking to the API: test client or real HTTP ---------------------------------------------

class Api:
    """POST JSON (or a ready body) to /api/v1 and get (status, JSON answer)."""

    def post(self, path: str, body: Any = None, *, data: bytes | None = None, token: str | None = None,
             gzipped: bool = False) -> tuple[int, Any]:
        raise NotImplementedError

    @staticmethod
    def headers(token: str | None, gzipped: bool) -> dict[str, str]:
        """The headers a tablet sends: JSON, its bearer token, gzip when the body is compressed."""
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if gzipped:
            headers["Content-Encoding"] = "gzip"
        return headers


class ClientApi(Api):
    """The Flask test client: the whole request path in this process, no sockets."""

    def __init__(self, app):
        self.client = app.test_client()

    def post(self, path, body=None, *, data=None, token=None, gzipped=False):
        headers = self.headers(token, gzipped)
        answer = self.client.post("/api/v1" + path, data=data if data is not None else dumps(body),
                                  headers=headers)
        return answer.status_code, json.loads(answer.get_data())


class HttpApi(Api):
    """Real HTTP with requests, keep-alive, to a server at base_url."""

    def __init__(self, base_url: str):
        import requests

        self.base = base_url + "/api/v1"
        self.session = requests.Session()

    def post(self, path, body=None, *, data=None, token=None, gzipped=False):
        headers = self.headers(token, gzipped)
        answer = self.session.post(self.base + path, data=data if data is not None else dumps(body),
                                   headers=headers, timeout=300)
        return answer.status_code, answer.json()


def login(api: Api, username: str, node: str) -> str:
    status, answer = api.post("/auth/device", {"username": username, "password": PASSWORD,
                                               "device_name": f"{username}-{node[:4]}", "node": node})
    assert status == 200, answer
    return answer["token"]


def push_body(changes: list[dict], node: str) -> bytes:
    """A push body as the tablet sends it: JSON, gzip-compressed."""
    raw = dumps({"node": node, "changes": changes, "sent_at": format_ms(int(time.time() * 1000))})
    return gzip.compress(raw, compresslevel=6, mtime=0)


def push_all(api: Api, token: str, bodies: list[bytes], expected: int) -> None:
    applied = 0
    for body in bodies:
        status, answer = api.post("/sync/push", data=body, token=token, gzipped=True)
        assert status == 200, answer
        applied += sum(r["status"] == "applied" for r in answer["results"])
    assert applied == expected, f"{applied} of {expected} changes applied"


def pull_all(api: Api, token: str, limit: int, cursors: dict | None = None,
             on_page: Callable[[int], None] | None = None) -> tuple[int, int]:
    """Pull every page until more is false; (changes, pages)."""
    cursors = dict(cursors or {})
    total = pages = 0
    while True:
        status, answer = api.post("/sync/pull", {"cursors": cursors, "limit": limit}, token=token)
        assert status == 200, answer
        total += len(answer["changes"])
        pages += 1
        cursors, more = answer["cursors"], answer["more"]
        del answer  # a tablet applies a page and lets it go; held, the decoded page would tax the next request
        if on_page:
            on_page(total)
        if not more:
            return total, pages


# --- gunicorn ------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry.name))
                except (OSError, IndexError, ValueError):
                    pass
        return found


@contextmanager
def gunicorn(url: str) -> Iterator[tuple[str, int]]:
    """A gunicorn with one sync worker on the store; (base URL, the worker's pid)."""
    port = free_port()
    env = {**os.environ, "GRIDPATROL_DATABASE_URL": url, "GRIDPATROL_NODE": uuid.uuid4().hex[:16],
           "GRIDPATROL_PHOTO_DIR": str(TMP / "photos"), "PYTHONPATH": str(ROOT)}
    log = open(TMP / f"gunicorn-{port}.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", "1", "--worker-class", "sync", "--timeout", "300",
         "--bind", f"127.0.0.1:{port}", "server:create_app()"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base + "/api/v1/health", proc, 30, log.name)
        workers = _children(proc.pid)
        assert len(workers) == 1, f"expected one gunicorn worker, found {workers}"
        yield base, workers[0]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def proc_status_kib(pid: int, key: str) -> int:
    """A VmRSS/VmHWM line of /proc/<pid>/status, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


class RssSampler(threading.Thread):
    """Samples a process's VmRSS every few milliseconds; keeps the maximum."""

    def __init__(self, pid: int, every: float = 0.005):
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.peak = self.samples = 0
        self._stop_event = threading.Event()

    def run(self):
        while not self._stop_event.is_set():
            self.peak = max(self.peak, proc_status_kib(self.pid, "VmRSS"))
            self.samples += 1
            time.sleep(self.every)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


# --- data ----------------------------------------------------------------------------------------

def event_fields(rng: random.Random, grid: str, reporter: str, hlc: str, at_ms: int) -> dict[str, list]:
    """A whole event as a tablet creates it: every field, one timestamp."""
    values = {
        "grid": grid, "category": rng.choice(CATEGORIES),
        "description": f"{rng.choice(PHRASES)}（{rng.randrange(1, 40)}号楼）",
        "location": {"lat": round(22.54 + rng.random() / 100, 6), "lon": round(114.05 + rng.random() / 100, 6),
                     "accuracy_m": float(rng.randrange(3, 30)), "source": "gps"},
        "address": f"东湖路{rng.randrange(1, 300)}号", "photos": [rng.randbytes(32).hex()],
        "urgent": rng.random() < 0.1, "micro": rng.random() < 0.3, "reporter": reporter,
        "reported_at": format_ms(at_ms),
    }
    return {name: [value, hlc] for name, value in values.items()}


def event_changes(n: int, grid: str, reporter: str, node: str, seed: int) -> list[dict]:
    """n new events in a grid, stamped a little before now, in HLC order."""
    rng = random.Random(seed)
    base = int(time.time() * 1000) - 120_000
    changes = []
    for i in range(n):
        wall = base + i // 50
        hlc = str(HLC(wall, i % 50, node))
        changes.append({"kind": "event", "id": uuid7(wall, rng.randbytes(10)), "bucket": f"grid:{grid}",
                        "fields": event_fields(rng, grid, reporter, hlc, wall - 60_000)})
    return changes


def row_of(change: dict, position: int) -> tuple:
    """The records row a change becomes: (id, kind, bucket, field_values, field_hlcs, position), JSON as text."""
    fields = change["fields"]
    return (change["id"], change["kind"], change["bucket"], json.dumps({k: v[0] for k, v in fields.items()}),
            json.dumps({k: v[1] for k, v in fields.items()}), position)


def bulk_rows(total: int, buckets: list[tuple[str, float]], seed: int, ref: int = 300,
              exact: bool = False, quiet: tuple[str, float] | None = None) -> Iterator[tuple]:
    """Records rows with positions 1..total: `ref` reference records, then field records spread by weight.

    With ``exact``, the weights are the bucket sizes, interleaved at random. With ``quiet``
    (bucket, share), that share of the older half of the feed goes to a bucket that then
    falls silent.

    Field records are events (70 %) and case actions (30 %); contents come from a pool of
    templates per bucket, ids are fresh UUIDv7 in time order.
    """
    rng = random.Random(seed)
    node = "c0" * 8
    base = int(time.time() * 1000) - 30 * 86_400_000
    reporter = str(uuid.UUID(int=rng.getrandbits(128)))
    pool: dict[str, list[tuple[str, str, str]]] = {}
    for bucket, _ in buckets + ([quiet] if quiet else []):
        grid = bucket.split(":", 1)[1]
        templates = []
        for t in range(20):
            hlc = str(HLC(base + t, 0, node))
            if t % 10 < 7:
                fields = event_fields(rng, grid, reporter, hlc, base)
                kind = "event"
            else:
                fields = {k: [v, hlc] for k, v in {
                    "event": str(uuid.UUID(int=rng.getrandbits(128))), "action": "comment", "actor": reporter,
                    "unit": None, "deadline": None, "note": rng.choice(PHRASES), "photos": []}.items()}
                kind = "case_action"
            templates.append((kind, json.dumps({k: v[0] for k, v in fields.items()}),
                              json.dumps({k: v[1] for k, v in fields.items()})))
        pool[bucket] = templates
    grid_hlc = str(HLC(base, 0, node))
    for position in range(1, ref + 1):
        code = f"R-{position:04d}"
        values = {"code": code, "name": f"参考{position}", "type": "base", "community": "东湖社区",
                  "street": "东湖街道", "district": "示范区"}
        yield (uuid7(base, rng.randbytes(10)), "grid", "ref", json.dumps(values),
               json.dumps({k: grid_hlc for k in values}), position)
    names = [b for b, _ in buckets]
    weights = [w for _, w in buckets]
    if exact:
        chosen = [name for name, count in buckets for _ in range(int(count))]
        rng.shuffle(chosen)
        assert len(chosen) == total - ref
    else:
        chosen = rng.choices(names, weights, k=total - ref)
    half = len(chosen) // 2
    for offset, bucket in enumerate(chosen):
        if quiet and offset < half and rng.random() < quiet[1]:
            bucket = quiet[0]
        kind, values, hlcs = pool[bucket][offset % 20]
        yield (uuid7(base + offset // 16, rng.randbytes(10)), kind, bucket, values, hlcs, ref + offset + 1)


def bulk_load(app, rows: Iterator[tuple], total: int, what: str) -> float:
    """Load rows straight into records (COPY or executemany) and raise the feed; seconds taken."""
    started = time.perf_counter()
    with app.app_context():
        engine = db.engine
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            if engine.dialect.name == "postgresql":
                with cursor.copy("COPY records (id, kind, bucket, field_values, field_hlcs, position) "
                                 "FROM STDIN") as copy:
                    for n, row in enumerate(rows, 1):
                        copy.write_row(row)
                        if n % 200_000 == 0:
                            progress(f"  {what}: {n:,} of {total:,} rows")
            else:
                batch: list[tuple] = []
                sql = "INSERT INTO records (id, kind, bucket, field_values, field_hlcs, position) VALUES (?,?,?,?,?,?)"
                for n, row in enumerate(rows, 1):
                    batch.append(row)
                    if len(batch) == 50_000:
                        cursor.executemany(sql, batch)
                        batch.clear()
                    if n % 200_000 == 0:
                        progress(f"  {what}: {n:,} of {total:,} rows")
                if batch:
                    cursor.executemany(sql, batch)
            cursor.execute("UPDATE feed SET position = (SELECT max(position) FROM records) WHERE id = 1")
            if engine.dialect.name == "postgresql":  # where PostgreSQL's positions come from (server/sync/feed.py)
                cursor.execute("SELECT setval('feed_position_seq', (SELECT max(position) FROM records))")
            raw.commit()
            # What autovacuum / a routine ANALYZE would have done by the time such a store is in use.
            cursor.execute("ANALYZE")
            raw.commit()
        finally:
            raw.close()
        count = db.session.scalar(select(func.count()).select_from(Record))
        db.session.remove()
    assert count == total, (count, total)
    return time.perf_counter() - started


# --- 1. throughput -------------------------------------------------------------------------------

def raw_insert(app, rows: list[tuple], batch: int) -> tuple[float, float]:
    """Seconds (wall, and this process's CPU) to insert rows into a table shaped like records,
    executemany and commit per batch."""
    with app.app_context():
        engine = db.engine
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            if engine.dialect.name == "postgresql":
                cursor.execute("CREATE TABLE records_raw (LIKE records INCLUDING ALL)")
                sql = ("INSERT INTO records_raw (id, kind, bucket, field_values, field_hlcs, position) "
                       "VALUES (%s, %s, %s, %s::jsonb, %s::jsonb, %s)")
            else:
                ddl = cursor.execute("SELECT sql FROM sqlite_master WHERE tbl_name = 'records' AND sql IS NOT NULL "
                                     "ORDER BY type DESC").fetchall()
                for (statement,) in ddl:  # the table first, then its indexes, renamed
                    cursor.execute(statement.replace("records", "records_raw").replace("ix_records", "ix_raw"))
                sql = "INSERT INTO records_raw (id, kind, bucket, field_values, field_hlcs, position) VALUES (?,?,?,?,?,?)"
            raw.commit()
            started, cpu = time.perf_counter(), time.process_time()
            for start in range(0, len(rows), batch):
                cursor.executemany(sql, rows[start:start + batch])
                raw.commit()
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            cursor.execute("SELECT count(*) FROM records_raw")
            assert cursor.fetchone()[0] == len(rows)
            return seconds, cpu
        finally:
            raw.close()


def bench_throughput(engine: str, args) -> dict[str, float]:
    """Records per second of push, pull and raw insert: the median of args.rounds rounds, each on a fresh store."""
    rounds = [throughput_round(engine, args, r) for r in range(1, args.rounds + 1)]
    n = args.records
    figures = {name: statistics.median(r[name] for r in rounds)
               for name in ("push", "pull", "raw", "push_cpu", "pull_cpu", "raw_cpu")}
    figures["round_trip"] = n / (n / figures["push"] + n / figures["pull"])
    figures["rounds"] = rounds
    return figures


def throughput_round(engine: str, args, number: int) -> dict[str, float]:
    n, batch = args.records, args.batch
    progress(f"[{engine}] 1. throughput, round {number} of {args.rounds}: {n:,} events, push batches of {batch},"
             f" pull pages of {args.page_limit}")
    with scratch_store(engine) as url:
        app = make_app(url)
        reporter = add_worker(app, "pusher", ["G-0101"])
        add_worker(app, "puller", ["G-0101"])
        # Stamped a little before now: within the server's allowed drift.
        changes = event_changes(n, "G-0101", reporter, PUSH_NODE, seed=number)
        bodies = [push_body(changes[i:i + batch], PUSH_NODE) for i in range(0, n, batch)]
        rows = [row_of(c, i) for i, c in enumerate(changes, 1)]
        # The bodies and rows (bytes, tuples of str) are all the run needs; 10,000 decoded changes
        # (300,000 objects) left in this process would be walked by every full garbage collection
        # during the timed requests, which a server process would not hold.
        del changes
        with api_for(app, url, args) as api:
            push_token = login(api, "pusher", PUSH_NODE)
            pull_token = login(api, "puller", PULL_NODE)
            started, cpu = time.perf_counter(), time.process_time()
            push_all(api, push_token, bodies, n)
            push_s, push_cpu = time.perf_counter() - started, time.process_time() - cpu
            started, cpu = time.perf_counter(), time.process_time()
            pulled, pages = pull_all(api, pull_token, args.page_limit)
            pull_s, pull_cpu = time.perf_counter() - started, time.process_time() - cpu
            assert pulled == n, (pulled, n)
        raw_s, raw_cpu = raw_insert(app, rows, batch)
        with app.app_context():
            db.engine.dispose()
    progress(f"[{engine}]   push {push_s:.2f} s, pull {pull_s:.2f} s ({pages} pages), raw {raw_s:.2f} s; "
             f"CPU of this process {push_cpu:.2f} / {pull_cpu:.2f} / {raw_cpu:.2f} s")
    # CPU time of this process, per record in µs: with the test client the whole server path runs here
    # (and on SQLite the database too), so other load on the machine hardly moves it.
    return {"push": n / push_s, "pull": n / pull_s, "raw": n / raw_s,
            "push_cpu": push_cpu / n * 1e6, "pull_cpu": pull_cpu / n * 1e6, "raw_cpu": raw_cpu / n * 1e6}


@contextmanager
def api_for(app, url: str, args) -> Iterator[Api]:
    if args.http:
        with gunicorn(url) as (base, _):  # its workers freeze what they loaded (gunicorn.conf.py)
            yield HttpApi(base)
    else:
        # As a gunicorn worker does once the app is loaded (gunicorn.conf.py, server/process.py);
        # undone afterwards, so what the round leaves can go.
        process.settle()
        try:
            yield ClientApi(app)
        finally:
            process.unsettle()


# --- 2. pull cost against store size ----------------------------------------------------------

def grid_buckets(count: int = 50) -> list[tuple[str, float]]:
    """Grid buckets with uneven sizes (a few busy grids, many quiet ones)."""
    rng = random.Random(5)
    weights = [1 / (rank + 1) ** 0.6 for rank in range(count)]
    rng.shuffle(weights)
    return [(f"grid:G-{k:04d}", w) for k, w in enumerate(weights)]


def bench_pull_cost(engine: str, sizes: list[int], args) -> dict[int, dict[str, dict[str, Any]]]:
    """Per store size and scenario: median and min seconds of a pull of the fresh changes, and the plan.

    Scenarios: ``busy``, a device in the busiest of the 50 grids (records spread evenly over
    the feed); ``quiet``, a device in a grid whose records all lie in the older half of the
    feed (a grid that went quiet), so nothing of its bucket follows its cursor but the fresh
    changes. Both devices' cursors are at the end of their buckets. The stores of every size
    are built first and their pulls alternate, so a busy machine slows them alike.
    """
    results: dict[int, dict[str, dict[str, Any]]] = {size: {} for size in sizes}
    with ExitStack() as stack:
        setups = {size: prepare_pull_store(stack, engine, size, args) for size in sizes}
        for name in ("busy", "quiet"):
            timers = {size: setups[size][name] for size in sizes}
            for size, timer in timers.items():
                timer.warm_up()
            times: dict[int, list[float]] = {size: [] for size in sizes}
            for _ in range(args.repeat):
                for size, timer in timers.items():
                    times[size].append(timer.pull())
            for size, timer in timers.items():
                results[size][name] = {"median": statistics.median(times[size]), "min": min(times[size]),
                                       "share": timer.share, "behind": timer.behind, "bucket": timer.bucket,
                                       "plan": explain(timer.app, timer.captured, timer.bucket)}
                progress(f"[{engine}]   store {size:,}, {name} grid ({timer.share:,} records, {timer.behind:,} "
                         f"records of all buckets after its cursor): median "
                         f"{results[size][name]['median'] * 1000:.2f} ms over {args.repeat} pulls")
    return results


class PullTimer:
    """One device's pull of the fresh changes in its grid, timed through the API."""

    def __init__(self, app, api: Api, token: str, bucket: str, cursors: dict[str, str], share: int, behind: int,
                 fresh: int, limit: int):
        self.app, self.api, self.token, self.bucket, self.cursors = app, api, token, bucket, cursors
        self.share, self.behind, self.fresh, self.limit = share, behind, fresh, limit
        self.captured: list[tuple[str, Any]] = []

    def pull(self) -> float:
        started = time.perf_counter()
        status, answer = self.api.post("/sync/pull", {"cursors": self.cursors, "limit": self.limit},
                                       token=self.token)
        elapsed = time.perf_counter() - started
        assert status == 200 and len(answer["changes"]) == self.fresh and not answer["more"], answer
        return elapsed

    def warm_up(self) -> None:
        """One pull, untimed, noting the statements the server runs."""
        def capture(conn, cursor, statement, parameters, context, executemany):
            if "FROM records" in statement and "position >" in statement:
                self.captured.append((statement, parameters))

        with self.app.app_context():
            engine = db.engine
        event.listen(engine, "before_cursor_execute", capture)
        try:
            self.pull()
        finally:
            event.remove(engine, "before_cursor_execute", capture)


def prepare_pull_store(stack: ExitStack, engine: str, size: int, args) -> dict[str, PullTimer]:
    """A bulk-loaded store of size records, with 100 fresh changes after the cursor of each scenario's device."""
    progress(f"[{engine}] 2. store of {size:,} records for a pull of {args.fresh} fresh changes")
    buckets = grid_buckets()
    scenarios = {"busy": max(buckets, key=lambda b: b[1])[0], "quiet": "grid:G-QUIET"}
    grids = {name: bucket.split(":", 1)[1] for name, bucket in scenarios.items()}
    url = stack.enter_context(scratch_store(engine))
    app = make_app(url)
    reporter = add_worker(app, "pusher", list(grids.values()))
    for name, grid in grids.items():
        add_worker(app, f"puller-{name}", [grid])
    seconds = bulk_load(app, bulk_rows(size, buckets, seed=size, quiet=(scenarios["quiet"], 0.1)), size,
                        f"{size:,} store")
    progress(f"[{engine}]   loaded in {seconds:.1f} s")

    def dispose():
        with app.app_context():
            db.engine.dispose()

    stack.callback(dispose)
    api = ClientApi(app)
    push_token = login(api, "pusher", PUSH_NODE)
    timers = {}
    for name, bucket in scenarios.items():
        with app.app_context():
            share = db.session.scalar(select(func.count()).select_from(Record).where(Record.bucket == bucket))
            cursors = {b: str(db.session.scalar(select(func.max(Record.position)).where(Record.bucket == b)))
                       for b in ("ref", bucket)}
            behind = db.session.scalar(select(func.count()).select_from(Record)
                                       .where(Record.position > int(cursors[bucket])))
            db.session.remove()
        token = login(api, f"puller-{name}", PULL_NODE)
        fresh = event_changes(args.fresh, grids[name], reporter, PUSH_NODE, seed=size + len(name))
        push_all(api, push_token, [push_body(fresh, PUSH_NODE)], args.fresh)
        timers[name] = PullTimer(app, api, token, bucket, cursors, share, behind, args.fresh, args.page_limit)
    return timers


def explain(app, captured: list[tuple[str, Any]], bucket: str) -> list[str]:
    """The plan of the server's own pull query for the bucket."""
    statement, parameters = next((s, p) for s, p in captured
                                 if bucket in (p.values() if isinstance(p, dict) else p))
    with app.app_context():
        with db.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                lines = [r[0] for r in conn.exec_driver_sql("EXPLAIN " + statement, parameters)]
            else:
                lines = [r[-1] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)]
    return lines


# --- 3. memory ---------------------------------------------------------------------------------

def bench_memory(engine: str, sizes: tuple[int, int], args) -> dict[int, dict[str, Any]]:
    small, big = sizes
    progress(f"[{engine}] 3. server memory: first pull of {small:,} and of {big:,} records (gunicorn, 1 sync worker)")
    results: dict[int, dict[str, Any]] = {}
    with scratch_store(engine) as url:
        app = make_app(url)
        for size in sizes:
            add_worker(app, f"w{size}", [f"M-{size}"])
        rows = bulk_rows(small + big, [(f"grid:M-{small}", small), (f"grid:M-{big}", big)], seed=3, ref=0,
                         exact=True)
        seconds = bulk_load(app, rows, small + big, "memory store")
        progress(f"[{engine}]   loaded {small + big:,} records in {seconds:.1f} s")
        for size in sizes:
            token = device_token(app, f"w{size}", f"{size:016x}")
            with gunicorn(url) as (base, pid):
                api = HttpApi(base)
                baseline = proc_status_kib(pid, "VmRSS")
                sampler = RssSampler(pid)
                sampler.start()
                at_page: list[int] = []
                started = time.perf_counter()

                def on_page(done: int) -> None:
                    at_page.append(proc_status_kib(pid, "VmRSS"))
                    if done % 20_000 == 0:
                        progress(f"[{engine}]   {done:,} of {size:,} pulled, worker RSS {at_page[-1] / 1024:.1f} MiB")

                pulled, pages = pull_all(api, token, args.page_limit, on_page=on_page)
                elapsed = time.perf_counter() - started
                sampler.stop()
                hwm = proc_status_kib(pid, "VmHWM")
                assert pulled == size, (pulled, size)
            # VmHWM and VmRSS come from per-thread counters the kernel folds in lazily; either may lag the other
            # by a few hundred KiB, so the peak is the larger of the two.
            results[size] = {"baseline": baseline, "hwm": max(hwm, sampler.peak), "vmhwm": hwm,
                             "sampled": sampler.peak, "pages": pages,
                             "seconds": elapsed, "first_page": at_page[0], "last_page": at_page[-1]}
            progress(f"[{engine}]   {size:,}: {pages} pages in {elapsed:.1f} s, peak RSS {hwm / 1024:.1f} MiB")
        with app.app_context():
            db.engine.dispose()
    return results


# --- report --------------------------------------------------------------------------------------

def machine() -> list[str]:
    import sqlite3
    from importlib.metadata import version

    lines = [f"nproc {os.cpu_count()}"]
    try:
        kib = proc_status_kib_meminfo("MemTotal")
        lines.append(f"RAM {kib / 1024 / 1024:.1f} GiB")
    except OSError:
        pass
    lines.append(f"Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, "
                 f"Flask {version('flask')}, SQLAlchemy {version('sqlalchemy')}, psycopg {version('psycopg')}")
    return lines


def proc_status_kib_meminfo(key: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def pg_version() -> str:
    with _pg_admin() as conn:
        return conn.execute("SHOW server_version").fetchone()[0]


def report_throughput(engine: str, r: dict[str, Any], args, failures: list[str]) -> None:
    print(f"1. throughput, {args.records:,} events (push batches of {args.batch});"
          f" median of {args.rounds} round(s)")
    print(f"   push  {per_second(r['push'])}")
    print(f"   pull  {per_second(r['pull'])}   (fresh device, pages of {args.page_limit})")
    print(f"   raw   {per_second(r['raw'])}   (executemany, commit per {args.batch})")
    for name in ("push", "pull"):
        ratio = r[name] / r["raw"]
        print(f"   {name} ÷ raw = {ratio:.3f}   goal ≥ 0.2: {verdict(ratio >= 0.2)}")
        if ratio < 0.2:
            failures.append(f"{engine} {name} ÷ raw {ratio:.3f}")
    print(f"   (push then pull, one round trip: {r['round_trip'] / r['raw']:.3f} of raw)")
    if len(r["rounds"]) > 1:
        print("   rounds (push / pull / raw records/s): " + "; ".join(
            f"{x['push']:,.0f} / {x['pull']:,.0f} / {x['raw']:,.0f}" for x in r["rounds"]))
    if not args.http:
        # Not the goal's measure, but steadier on a shared machine: the bench process's CPU per record.
        # On SQLite that is all the work; on PostgreSQL the database server's CPU is not in it.
        print(f"   CPU of this process per record: push {r['push_cpu']:.0f} µs, pull {r['pull_cpu']:.0f} µs,"
              f" raw {r['raw_cpu']:.0f} µs; raw ÷ push {r['raw_cpu'] / r['push_cpu']:.3f},"
              f" raw ÷ pull {r['raw_cpu'] / r['pull_cpu']:.3f}"
              + ("" if engine == "sqlite" else " (without the PostgreSQL server's own CPU)"))


def report_pull_cost(engine: str, r2: dict[int, dict[str, dict[str, Any]]], store_sizes: list[int], args,
                     failures: list[str]) -> None:
    small, big = store_sizes
    print(f"2. pull of {args.fresh} fresh changes after the device's cursors (median of {args.repeat})")
    for name, label in (("busy", "busiest of 50 grids, records spread over the whole feed"),
                        ("quiet", "a grid whose records all lie in the older half of the feed")):
        print(f"   {name} grid: {label}")
        for size in store_sizes:
            m = r2[size][name]
            print(f"     store {size:>9,}: {m['median'] * 1000:7.2f} ms  (min {m['min'] * 1000:.2f} ms;"
                  f" {m['share']:,} records in {m['bucket']}; {m['behind']:,} records of all buckets"
                  f" after its cursor)")
        ratio = r2[big][name]["median"] / r2[small][name]["median"]
        print(f"     {big:,} ÷ {small:,} = {ratio:.2f}×   goal ≤ 1.5×: {verdict(ratio <= 1.5)}")
        if ratio > 1.5:
            failures.append(f"{engine} pull cost ratio ({name} grid) {ratio:.2f}")
        for size in store_sizes:
            plan = r2[size][name]["plan"]
            index_line = next((line for line in plan[1:] if "Index" in line or "INDEX" in line), "")
            print(f"     plan, store {size:,}: {plan[0].strip()}"
                  + (f"  {index_line.strip()}" if index_line else ""))


def report_memory(engine: str, r3: dict[int, dict[str, Any]], memory_sizes: tuple[int, int], args,
                  failures: list[str]) -> None:
    small, big = memory_sizes
    print(f"3. server memory (gunicorn worker's peak RSS), first pull in pages of {args.page_limit}")
    for size in memory_sizes:
        m = r3[size]
        print(f"   {size:>7,} records: peak {m['hwm'] / 1024:6.1f} MiB  (VmHWM {m['vmhwm'] / 1024:.1f},"
              f" sampled VmRSS max {m['sampled'] / 1024:.1f}; idle {m['baseline'] / 1024:.1f}, after first page"
              f" {m['first_page'] / 1024:.1f}, after last {m['last_page'] / 1024:.1f};"
              f" {m['pages']} pages, {m['seconds']:.1f} s)")
    ratio = r3[big]["hwm"] / r3[small]["hwm"]
    print(f"   {big:,} ÷ {small:,} = {ratio:.2f}×   goal ≤ 1.5×: {verdict(ratio <= 1.5)}")
    if ratio > 1.5:
        failures.append(f"{engine} memory ratio {ratio:.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--quick", action="store_true", help="smaller stores (100k instead of 1M, 10k instead of 100k)")
    parser.add_argument("--http", action="store_true",
                        help="part 1 over real HTTP to gunicorn (1 sync worker) instead of the Flask test client")
    parser.add_argument("--parts", default="1,2,3", help="which parts to run, e.g. 1,3")
    parser.add_argument("--page-limit", type=int, default=500, help="pull page size (mobile/sync.py's default)")
    args = parser.parse_args(argv)
    args.records, args.batch, args.fresh = 10_000, 500, 100
    args.repeat = 25
    args.rounds = 1 if args.quick else 3
    store_sizes = [10_000, 100_000] if args.quick else [10_000, 1_000_000]
    memory_sizes = (1_000, 10_000) if args.quick else (1_000, 100_000)
    parts = {int(p) for p in args.parts.split(",")}
    engines = ["sqlite", "postgresql"] if args.engine == "both" else [args.engine]

    print("GridPatrol sync benchmark" + (" (quick)" if args.quick else ""))
    for line in machine():
        print("  " + line)
    if "postgresql" in engines:
        print(f"  PostgreSQL {pg_version()} at {PG_ADMIN_URL.rsplit('/', 1)[0].split('@')[-1]}")
    print(f"  part 1 requests via {'HTTP to gunicorn, 1 sync worker' if args.http else 'the Flask test client'}; "
          f"pull pages of {args.page_limit}")
    print(f"  load average at start: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    started = time.perf_counter()
    failures: list[str] = []
    for engine in engines:
        print(f"\n== {engine} ==")
        if 1 in parts:
            report_throughput(engine, bench_throughput(engine, args), args, failures)
        if 2 in parts:
            report_pull_cost(engine, bench_pull_cost(engine, store_sizes, args), store_sizes, args, failures)
        if 3 in parts:
            report_memory(engine, bench_memory(engine, memory_sizes, args), memory_sizes, args, failures)
    print(f"\nload average at end: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    print(f"total {time.perf_counter() - started:.0f} s; "
          + ("all goals met" if not failures else "missed: " + "; ".join(failures)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

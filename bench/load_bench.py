"""Load bench: K simulated tablets against gunicorn and PostgreSQL on 127.0.0.1.

Each tablet has its own user, grid, device and token, keeps one HTTP/1.1 keep-alive connection (as
a tablet's HTTP client does), and every 2 s pushes 20 new events to its grid, then pulls with its
cursors until ``more`` is false, then idles until its next turn. The bench measures, over a
bounded window (``--seconds``, after ``--warmup``): pushes per second served against wanted (K/2),
p50/p95/p99 of push and pull latency, errors (connection resets, timeouts, non-200 answers),
the wait events of PostgreSQL's active backends sampled every 0.5 s from ``pg_stat_activity``, and
the cores each part used over the window (the app servers, PostgreSQL, the bench's own tablets),
from /proc: on one host they share the cores, so this says which of them was short.

``--interval`` pushes more often than every 2 s, to find the most the server serves when 400
tablets want more than 200 pushes a second (they cannot want more at 2 s).

It can run the same load against other checkouts of the code (``--code before=/work/main``): the
server process, the migration and the set-up then run with that checkout on PYTHONPATH and as
working directory (so its own gunicorn.conf.py is read). A fresh database per run. The workers and
threads are that gunicorn.conf.py's when it sets them, else 5 x 4 (what the server ran with before
it did), unless ``--workers``/``--threads`` say; each row names them, and the 1-minute load average
at the start and the end of its measured window.

    PYTHONPATH=$PWD .venv/bin/python bench/load_bench.py --tablets 100,200,400 --seconds 60 \\
        --code before=/work/main --code after=$PWD

The tablets run in ``--clients`` processes (asyncio, a minimal HTTP/1.1 client: no extra package);
they share the machine's cores with the server, as any load generated on one host does.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import multiprocessing
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from http_ready import wait_ready

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("GRIDPATROL_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
PASSWORD = "load-bench-password"
EVENTS_PER_PUSH = 20
INTERVAL_S = 2.0
TIMEOUT_S = 30.0


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- set-up, run as a subprocess with the checkout under test on PYTHONPATH -----------------------

def setup_store(url: str, tablets: int) -> list[dict[str, str]]:
    """Migrate the store and add the tablets' grids, users and devices; their credentials."""
    from flask_migrate import upgrade
    from werkzeug.security import generate_password_hash

    from server import accounts, create_app
    from server.db import db
    from server.sync import apply

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "GRIDPATROL_NODE": uuid.uuid4().hex[:16]})
    cheap = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1")  # nobody logs in with it
    accounts.generate_password_hash = lambda _password: cheap
    found = []
    with app.app_context():
        upgrade()
        codes = [f"L-{n:04d}" for n in range(tablets)]
        apply.write_as_server([
            apply.stamp("grid", str(uuid.uuid5(uuid.NAMESPACE_URL, "load/" + code)), {
                "code": code, "name": f"grid {code}", "type": "base", "community": "c", "street": "s",
                "district": "d"}) for code in codes])
        for code in codes:
            user = accounts.create_user(f"tablet-{code}", PASSWORD, role="worker", grids=[code])
            db.session.commit()
            node = uuid.uuid4().hex[:16]
            _, token = accounts.register_device(user, f"tablet-{code}", node)
            found.append({"user": user.id, "grid": code, "token": token, "node": node})
        db.engine.dispose()
    return found


def _pg_admin():
    import psycopg

    return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)


@contextmanager
def scratch_database(label: str) -> Iterator[str]:
    name = f"gp_load_{os.getpid()}_{label}"
    with _pg_admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1) + "/" + name
    finally:
        with _pg_admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


OLD_WORKERS, OLD_THREADS = 5, 4  # what the server ran with before gunicorn.conf.py said (issue 19's figures)


def server_shape(code: Path, workers: int | None, threads: int | None) -> tuple[int | None, int | None]:
    """The workers and threads to give gunicorn on its command line: those asked for; else none when the
    checkout's gunicorn.conf.py sets them (its own choice, as `make run` and a supervisor would get it);
    else 5 x 4, what the server ran with before that file said."""
    if workers is not None or threads is not None:
        return workers or OLD_WORKERS, threads or OLD_THREADS
    conf = code / "gunicorn.conf.py"
    text = conf.read_text() if conf.is_file() else ""
    if re.search(r"^workers\s*=", text, re.M) and re.search(r"^threads\s*=", text, re.M):
        return None, None
    return OLD_WORKERS, OLD_THREADS


def shape_of(code: Path, workers: int | None, threads: int | None) -> str:
    """Workers x threads as the server runs them (the checkout's gunicorn.conf.py read when it decides)."""
    workers, threads = server_shape(code, workers, threads)
    if workers is None:
        found = subprocess.run([sys.executable, "-c", "import runpy; c = runpy.run_path('gunicorn.conf.py'); "
                                "print(c['workers'], c['threads'])"], cwd=code, capture_output=True, text=True)
        workers, threads = (found.stdout.split() + ["?", "?"])[:2]
    return f"{workers}x{threads}"


@contextmanager
def gunicorn(code: Path, url: str, workers: int | None, threads: int | None,
             log_dir: Path) -> Iterator[tuple[str, int]]:
    """gunicorn (gthread) running the checkout at ``code`` on the store; its base URL and its master's pid."""
    port = free_port()
    env = {**os.environ, "GRIDPATROL_DATABASE_URL": url, "GRIDPATROL_NODE": uuid.uuid4().hex[:16],
           "GRIDPATROL_PHOTO_DIR": str(log_dir / "photos"), "PYTHONPATH": str(code)}
    log = open(log_dir / f"gunicorn-{port}.log", "w")
    workers, threads = server_shape(code, workers, threads)
    shape = [] if workers is None else ["--workers", str(workers), "--threads", str(threads)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", *shape,
         "--worker-class", "gthread", "--timeout", "120", "--bind", f"127.0.0.1:{port}", "server:create_app()"],
        cwd=code, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base + "/api/v1/health", proc, 60, log.name)
        time.sleep(2)  # every worker up
        yield base, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


# --- the tablets ---------------------------------------------------------------------------------

class Connection:
    """One keep-alive HTTP/1.1 connection, as a tablet's client holds it."""

    def __init__(self, port: int):
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def post(self, path: str, body: bytes, token: str, gzipped: bool = False) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nContent-Type: application/json\r\n"
                f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n"
                + ("Content-Encoding: gzip\r\n" if gzipped else "") + "\r\n")
        self.writer.write(head.encode() + body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionResetError("the server closed the connection")
        status = int(status_line.split()[1])
        length, chunked, close = None, False, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value:
                chunked = True
            elif name == "connection" and value == "close":
                close = True
        if chunked:
            parts = []
            while True:
                size = int((await self.reader.readline()).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readline()
                    break
                parts.append(await self.reader.readexactly(size))
                await self.reader.readline()
            data = b"".join(parts)
        else:
            data = await self.reader.readexactly(length or 0)
        if close:
            self.close()
        return status, data


def _event_changes(rng: random.Random, clock, user: str, grid: str) -> list[dict]:
    from shared.hlc import format_ms
    from shared.records import uuid7

    changes = []
    for _ in range(EVENTS_PER_PUSH):
        hlc = clock.now()
        fields = {"grid": grid, "category": "garbage", "description": f"load {rng.randrange(1 << 30)}",
                  "location": {"lat": 22.54 + rng.random() / 100, "lon": 114.05 + rng.random() / 100,
                               "accuracy_m": 8.0, "source": "gps"},
                  "address": f"东湖路{rng.randrange(1, 300)}号", "urgent": False, "micro": False,
                  "reporter": user, "reported_at": format_ms(hlc.wall_ms)}
        changes.append({"kind": "event", "id": uuid7(hlc.wall_ms, rng.randbytes(10)), "bucket": f"grid:{grid}",
                        "fields": {name: [value, str(hlc)] for name, value in fields.items()}})
    return changes


async def tablet(port: int, creds: dict, start: float, stop: float, samples: list, seed: int,
                 interval: float) -> None:
    from shared.hlc import Clock, format_ms

    rng = random.Random(seed)
    clock = Clock(creds["node"])
    connection = Connection(port)
    cursors: dict[str, str] = {}
    turn = start + rng.random() * interval  # the tablets' turns are spread over the interval
    while True:
        await asyncio.sleep(max(0.0, turn - time.time()))
        if time.time() >= stop:
            break
        raw = json.dumps({"node": creds["node"], "sent_at": format_ms(int(time.time() * 1000)),
                          "changes": _event_changes(rng, clock, creds["user"], creds["grid"])},
                         ensure_ascii=False, separators=(",", ":")).encode()
        body = gzip.compress(raw, compresslevel=6, mtime=0)
        began = time.time()
        try:
            status, _ = await asyncio.wait_for(connection.post("/api/v1/sync/push", body, creds["token"], True),
                                               TIMEOUT_S)
            samples.append(("push", began, time.time() - began, str(status)))
        except Exception as exc:  # a reset, a timeout: counted, and the next request reconnects
            connection.close()
            samples.append(("push", began, time.time() - began, type(exc).__name__))
        for _page in range(20):
            began = time.time()
            try:
                status, data = await asyncio.wait_for(connection.post(
                    "/api/v1/sync/pull", json.dumps({"cursors": cursors, "limit": 500}).encode(), creds["token"]),
                    TIMEOUT_S)
                samples.append(("pull", began, time.time() - began, str(status)))
                if status != 200:
                    break
                answer = json.loads(data)
                cursors = answer["cursors"]
                if not answer["more"]:
                    break
            except Exception as exc:
                connection.close()
                samples.append(("pull", began, time.time() - began, type(exc).__name__))
                break
        turn += interval
        if turn < time.time():  # late: the next push goes at once, the missed turns are not made up
            turn = time.time()
    connection.close()


def client_process(port: int, tablets: list[dict], start: float, stop: float, seed: int, interval: float,
                   out) -> None:
    samples: list = []

    async def run() -> None:
        await asyncio.gather(*(tablet(port, creds, start, stop, samples, seed * 100_000 + n, interval)
                               for n, creds in enumerate(tablets)))

    asyncio.run(run())
    out.put(samples)


def cpu_by_part(parts: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds used so far by each part: the named processes and their children, and PostgreSQL's.

    Read from /proc: each process's user and system time, plus that of its children that ended and were
    waited for (a backend of a connection the pool closed, counted in the postmaster's). PostgreSQL is
    every process named ``postgres``.
    """
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[str, int, float]] = {}  # pid: (name, parent, seconds)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                line = handle.read()
        except OSError:
            continue
        name, rest = line[line.index("(") + 1:line.rindex(")")], line[line.rindex(")") + 2:].split()
        stats[int(entry)] = (name, int(rest[1]), sum(int(value) for value in rest[11:15]) / tick)
    used = {"PostgreSQL": sum(seconds for name, _parent, seconds in stats.values() if name == "postgres")}
    for part, roots in parts.items():
        members, grown = set(roots), True
        while grown:
            more = {pid for pid, (_name, parent, _s) in stats.items() if parent in members} - members
            members, grown = members | more, bool(more)
        used[part] = sum(stats[pid][2] for pid in members if pid in stats)
    return used


class WaitSampler(threading.Thread):
    """pg_stat_activity's active backends of the database, by wait event, every 0.5 s."""

    def __init__(self, database: str):
        super().__init__(daemon=True)
        self.database, self.counts, self.samples = database, {}, 0
        self.stopped = threading.Event()

    def run(self) -> None:
        with _pg_admin() as conn:
            while not self.stopped.wait(0.5):
                rows = conn.execute(
                    "SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU'), count(*) FROM pg_stat_activity "
                    "WHERE datname = %s AND state = 'active' AND pid <> pg_backend_pid() GROUP BY 1",
                    (self.database,)).fetchall()
                self.samples += 1
                for name, count in rows:
                    self.counts[name] = self.counts.get(name, 0) + count


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def run_load(label: str, code: Path, tablets: int, args, log_dir: Path) -> dict[str, Any]:
    with scratch_database(f"{label}_{tablets}") as url:
        progress(f"[{label} {tablets} tablets] set-up with {code}")
        setup = subprocess.run([sys.executable, str(Path(__file__).resolve()), "_setup", url, str(tablets)],
                               cwd=code, env={**os.environ, "PYTHONPATH": str(code)},
                               capture_output=True, text=True, timeout=900)
        if setup.returncode != 0:
            raise RuntimeError(setup.stderr[-3000:])
        creds = json.loads(setup.stdout.strip().splitlines()[-1])
        with gunicorn(code, url, args.workers, args.threads, log_dir) as (base, server_pid):
            port = int(base.rsplit(":", 1)[1])
            sampler = WaitSampler(url.rsplit("/", 1)[1])
            start = time.time() + 1.0
            measured_from, stop = start + args.warmup, start + args.warmup + args.seconds
            queue: multiprocessing.Queue = multiprocessing.Queue()
            slices = [creds[n::args.clients] for n in range(args.clients)]
            procs = [multiprocessing.Process(target=client_process,
                                             args=(port, part, start, stop, n, args.interval, queue))
                     for n, part in enumerate(slices) if part]
            for proc in procs:
                proc.start()
            progress(f"[{label} {tablets} tablets] running {args.warmup + args.seconds:.0f} s")
            time.sleep(max(0.0, measured_from - time.time()))
            sampler.start()
            load_from = os.getloadavg()[0]
            parts = {"app servers": [server_pid], "bench tablets": [proc.pid for proc in procs]}
            cpu_from, cpu_began = cpu_by_part(parts), time.monotonic()
            time.sleep(max(0.0, stop - time.time()))
            cpu_to, cpu_window = cpu_by_part(parts), time.monotonic() - cpu_began
            samples = [sample for _ in procs for sample in queue.get(timeout=args.warmup + args.seconds + 120)]
            load_to = os.getloadavg()[0]
            sampler.stopped.set()
            for proc in procs:
                proc.join(30)
            sampler.join(5)
    window = [s for s in samples if measured_from <= s[1] < stop]
    pushes = [s for s in window if s[0] == "push"]
    pulls = [s for s in window if s[0] == "pull"]
    ok_push = [s[2] for s in pushes if s[3] == "200"]
    ok_pull = [s[2] for s in pulls if s[3] == "200"]
    errors: dict[str, int] = {}
    for s in window:
        if s[3] != "200":
            errors[f"{s[0]} {s[3]}"] = errors.get(f"{s[0]} {s[3]}", 0) + 1
    active = sum(sampler.counts.values()) or 1
    waits = sorted(sampler.counts.items(), key=lambda kv: -kv[1])[:4]
    return {"label": f"{label} {shape_of(code, args.workers, args.threads)}", "load": (load_from, load_to),
            "tablets": tablets, "wanted": tablets / args.interval,
            "cores": {part: (cpu_to.get(part, 0.0) - cpu_from.get(part, 0.0)) / cpu_window for part in cpu_to},
            "served": len(ok_push) / args.seconds, "push": [_quantile(ok_push, q) for q in (0.5, 0.95, 0.99)],
            "pull": [_quantile(ok_pull, q) for q in (0.5, 0.95, 0.99)], "errors": errors,
            "active": active / max(1, sampler.samples),
            "waits": [(name, count / active) for name, count in waits]}


def report(result: dict[str, Any]) -> str:
    ms = lambda values: "/".join(f"{1000 * v:.0f}" for v in values)  # noqa: E731
    errors = ", ".join(f"{k}: {v}" for k, v in sorted(result["errors"].items())) or "0"
    waits = ", ".join(f"{name} {100 * share:.0f} %" for name, share in result["waits"]) or "none sampled"
    cores = ", ".join(f"{part} {used:.2f}" for part, used in result["cores"].items())
    return (f"| {result['label']} | {result['tablets']} | {result['wanted']:.0f} | {result['served']:.1f} | "
            f"{ms(result['push'])} | {ms(result['pull'])} | {errors} | {result['active']:.1f}: {waits} | "
            f"{cores} | {result['load'][0]:.1f} → {result['load'][1]:.1f} |")


# --- CPU per request, in one process (--request-cpu) -----------------------------------------------

# What a push and a pull spend their CPU on: (label, request, [(file suffix, function name), ...]); the
# time of each is cProfile's cumulative thread time of those functions (the outermost counted once).
PARTS = [
    ("token check (device, user, grids)", "both", [("server/accounts.py", "device_for_token"),
                                                   ("server/accounts.py", "caller_for_token")]),
    ("body: gzip, decode, schema", "push", [("server/api.py", "read_body"), ("server/sync/wire.py", "read_push"),
                                            ("server/api.py", "read_json")]),
    ("authorise each change (validate_batch)", "push", [("server/sync/apply.py", "validate_batch")]),
    ("bucket locks, read stored records", "push", [("server/sync/feed.py", "lock"),
                                                   ("server/sync/apply.py", "_locked_states")]),
    ("case numbers (_number_new_events)", "push", [("server/sync/apply.py", "_number_new_events")]),
    ("positions, insert records", "push", [("server/sync/feed.py", "take_positions"),
                                           ("server/sync/feed.py", "write_records")]),
    ("cases table refold (_refold_cases)", "push", [("server/sync/apply.py", "_refold_cases")]),
    ("tenant index hook (houses/index.py reindex)", "push", [("server/houses/index.py", "reindex")]),
    ("commit", "push", [("sqlalchemy/orm/session.py", "commit")]),
    ("ID-number setting (privacy.allowed_roles)", "pull", [("server/privacy.py", "allowed_roles")]),
    ("bucket pages (feed.bucket_page)", "pull", [("server/sync/feed.py", "bucket_page")]),
    ("end of the read (rollback)", "pull", [("sqlalchemy/orm/scoping.py", "rollback")]),
    # Flask's request context, before/after-request hooks, the session's end and the connection's
    # return to the pool: the whole request less the view (dispatch_request).
    ("Flask around the view (context, hooks, teardown)", "both", [("flask/app.py", "wsgi_app")]),
]
_AROUND = "Flask around the view (context, hooks, teardown)"


def request_cpu(url: str, tablets: int, rounds: int) -> dict[str, Any]:
    """CPU per push and per pull through the app's WSGI callable in this process (no HTTP), and where it goes.

    Each tablet pushes 20 new events and pulls until ``more`` is false, as in the load; bodies are made
    before the clock starts. ``thread_time`` of the requests alone, per round; then one more round under
    cProfile for the split by PARTS.
    """
    import cProfile
    import io
    import pstats

    from server import create_app, process
    from shared.hlc import Clock, format_ms

    creds = setup_store(url, tablets)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "GRIDPATROL_NODE": uuid.uuid4().hex[:16]})
    rng = random.Random(7)
    clocks = {c["node"]: Clock(c["node"]) for c in creds}
    cursors: dict[str, dict] = {c["node"]: {} for c in creds}

    def body(creds_: dict) -> bytes:
        raw = json.dumps({"node": creds_["node"], "sent_at": format_ms(int(time.time() * 1000)),
                          "changes": _event_changes(rng, clocks[creds_["node"]], creds_["user"], creds_["grid"])},
                         ensure_ascii=False, separators=(",", ":")).encode()
        return gzip.compress(raw, compresslevel=6, mtime=0)

    def call(path: str, data: bytes, token: str, gzipped: bool) -> bytes:
        environ = {"REQUEST_METHOD": "POST", "PATH_INFO": path, "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80",
                   "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(data),
                   "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": True,
                   "wsgi.run_once": False, "wsgi.version": (1, 0), "CONTENT_LENGTH": str(len(data)),
                   "CONTENT_TYPE": "application/json", "HTTP_AUTHORIZATION": "Bearer " + token,
                   "REMOTE_ADDR": "127.0.0.1", **({"HTTP_CONTENT_ENCODING": "gzip"} if gzipped else {})}
        status: list[str] = []
        answer = b"".join(app.wsgi_app(environ, lambda s, h, e=None: status.append(s)))
        if not status[0].startswith("200"):
            raise RuntimeError(f"{path}: {status[0]} {answer[:300]!r}")
        return answer

    def cycle(creds_: dict, pushed: bytes, spent: dict) -> None:
        began = time.thread_time()
        call("/api/v1/sync/push", pushed, creds_["token"], True)
        middle = time.thread_time()
        spent["push"] += middle - began
        while True:
            began = time.thread_time()
            raw = call("/api/v1/sync/pull", json.dumps({"cursors": cursors[creds_["node"]], "limit": 500}).encode(),
                       creds_["token"], False)
            spent["pull"] += time.thread_time() - began
            spent["pulls"] += 1
            answer = json.loads(raw)
            cursors[creds_["node"]] = answer["cursors"]
            if not answer["more"]:
                break

    for _ in range(2):  # warm: the ref bucket pulled, statements prepared
        for creds_ in creds:
            cycle(creds_, body(creds_), {"push": 0.0, "pull": 0.0, "pulls": 0})
    process.settle()
    per_round = []
    for _ in range(rounds):
        bodies = [body(creds_) for creds_ in creds]
        spent = {"push": 0.0, "pull": 0.0, "pulls": 0}
        for creds_, pushed in zip(creds, bodies):
            cycle(creds_, pushed, spent)
        per_round.append((1000 * spent["push"] / len(creds), 1000 * spent["pull"] / spent["pulls"]))
    # The split: pushes and pulls profiled apart, so each part is per request of its kind.
    split: dict[str, dict[str, float]] = {}
    for kind in ("push", "pull"):
        bodies = [body(creds_) for creds_ in creds]
        profile = cProfile.Profile(time.thread_time)
        for creds_, pushed in zip(creds, bodies):
            if kind == "push":
                profile.enable()
            call("/api/v1/sync/push", pushed, creds_["token"], True)
            profile.disable()
            pull_body = json.dumps({"cursors": cursors[creds_["node"]], "limit": 500}).encode()
            if kind == "pull":
                profile.enable()
            cursors[creds_["node"]] = json.loads(call("/api/v1/sync/pull", pull_body, creds_["token"], False))["cursors"]
            profile.disable()
        stats = pstats.Stats(profile).stats  # {(file, line, function): (cc, nc, tottime, cumtime, callers)}
        total = sum(tt for (_cc, _nc, tt, _ct, _callers) in stats.values())
        split[kind] = {"_total": 1000 * total / len(creds)}
        for label, where, functions in PARTS:
            if where not in (kind, "both"):
                continue
            cumulative = sum(ct for (file, _line, name), (_cc, _nc, _tt, ct, _callers) in stats.items()
                             if any(file.endswith(suffix) and name == fn for suffix, fn in functions))
            if label == _AROUND:
                cumulative -= sum(ct for (file, _line, name), (_cc, _nc, _tt, ct, _callers) in stats.items()
                                  if file.endswith("flask/app.py") and name == "dispatch_request")
            split[kind][label] = 1000 * cumulative / len(creds)
        split[kind]["the rest (the views' own code, answers)"] = split[kind]["_total"] - sum(
            value for key, value in split[kind].items() if key != "_total")
    with app.app_context():
        from server.db import db

        db.engine.dispose()
    return {"rounds": per_round, "split": split}


def run_request_cpu(codes: list[tuple[str, Path]], args) -> None:
    """Each checkout's CPU per request, alternating checkouts ``--repeat`` times; medians and the split."""
    found: dict[str, list] = {label: [] for label, _ in codes}
    splits: dict[str, dict] = {}
    for turn in range(args.repeat):
        for label, code in codes:
            with scratch_database(f"cpu_{label}_{turn}") as url:
                progress(f"[{label}] CPU per request, {args.cpu_tablets} tablets x {args.cpu_rounds} rounds")
                done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "_cpu", url,
                                       str(args.cpu_tablets), str(args.cpu_rounds)],
                                      cwd=code, env={**os.environ, "PYTHONPATH": str(code)},
                                      capture_output=True, text=True, timeout=1800)
                if done.returncode != 0:
                    raise RuntimeError(done.stderr[-3000:])
                result = json.loads(done.stdout.strip().splitlines()[-1])
                found[label] += result["rounds"]
                splits[label] = result["split"]
    print(f"CPU per request in one process, no HTTP ({args.cpu_tablets} tablets, {args.cpu_rounds} rounds each, "
          f"{args.repeat} turns alternating; load average {os.getloadavg()[0]:.1f}): median [min-max] ms")
    print("| code | push | pull |")
    print("|---|---|---|")
    for label, rounds in found.items():
        push, pull = sorted(r[0] for r in rounds), sorted(r[1] for r in rounds)
        print(f"| {label} | {push[len(push) // 2]:.2f} [{push[0]:.2f}-{push[-1]:.2f}] | "
              f"{pull[len(pull) // 2]:.2f} [{pull[0]:.2f}-{pull[-1]:.2f}] |")
    print("\nWhere it goes (cProfile's thread time of one more round, so inflated by the profiler: compare the "
          "shares), ms per request and share of it:")
    labels = list(splits)
    print("| part | " + " | ".join(labels) + " |")
    print("|---|" + "---|" * len(labels))
    for kind in ("push", "pull"):
        print(f"| **{kind}, all** | " + " | ".join(f"{splits[l][kind]['_total']:.2f}" for l in labels) + " |")
        for part in [part for part, where, _ in PARTS if where in (kind, "both")] + [
                "the rest (the views' own code, answers)"]:
            print(f"| {kind}: {part} | " + " | ".join(
                f"{splits[l][kind][part]:.2f} ({100 * splits[l][kind][part] / splits[l][kind]['_total']:.0f} %)"
                for l in labels) + " |")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_setup":
        print(json.dumps(setup_store(argv[1], int(argv[2]))))
        return 0
    if argv and argv[0] == "_cpu":
        print(json.dumps(request_cpu(argv[1], int(argv[2]), int(argv[3]))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tablets", default="100,200,400", help="tablet counts, e.g. 100,200,400")
    parser.add_argument("--seconds", type=float, default=60.0, help="the measured window of each run")
    parser.add_argument("--warmup", type=float, default=5.0, help="not measured, before the window")
    parser.add_argument("--workers", type=int, default=None,
                        help="gunicorn workers (default: the checkout's gunicorn.conf.py, or 5 x 4 if it says none)")
    parser.add_argument("--threads", type=int, default=None, help="threads per worker (default: as --workers)")
    parser.add_argument("--clients", type=int, default=2, help="processes the tablets run in")
    parser.add_argument("--interval", type=float, default=INTERVAL_S,
                        help="seconds between a tablet's pushes (the issue's load: 2)")
    parser.add_argument("--code", action="append", default=[],
                        help="label=path of a checkout to run the server from (default: after=this checkout)")
    parser.add_argument("--request-cpu", action="store_true",
                        help="instead of the load: CPU per push and per pull in one process, and where it goes")
    parser.add_argument("--cpu-tablets", type=int, default=40, help="--request-cpu: tablets (one push each a round)")
    parser.add_argument("--cpu-rounds", type=int, default=6, help="--request-cpu: rounds per turn")
    parser.add_argument("--repeat", type=int, default=2, help="--request-cpu: turns, alternating the checkouts")
    args = parser.parse_args(argv)
    codes = [(item.split("=", 1)[0], Path(item.split("=", 1)[1]).resolve()) for item in args.code] or [
        ("after", ROOT)]
    if args.request_cpu:
        run_request_cpu(codes, args)
        return 0
    log_dir = Path(tempfile.mkdtemp(prefix="gp-load-"))
    print(f"gunicorn (gthread, workers x threads by code), PostgreSQL on 127.0.0.1; each tablet "
          f"pushes {EVENTS_PER_PUSH} events every {args.interval:g} s and pulls; {args.seconds:.0f} s measured after "
          f"{args.warmup:.0f} s; {os.cpu_count()} cores; logs in {log_dir}")
    print("| code | tablets | pushes/s wanted | pushes/s served | push p50/p95/p99 ms | pull p50/p95/p99 ms "
          "| errors | active backends: wait events | cores used | load average |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for tablets in [int(t) for t in args.tablets.split(",")]:
        for label, code in codes:
            print(report(run_load(label, code, tablets, args, log_dir)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Peer comparison: GridPatrol's sync against pouchdb-server (CouchDB's replication protocol) over HTTP, one run.

Run from the repository root (Node.js and npm on the PATH; the npm registry reachable the first time)::

    PYTHONPATH=$PWD .venv/bin/python bench/peer_bench.py [--docs 1000,10000] [--rounds 3] \\
        [--engine sqlite|postgresql|both] [--pouchdb-dir DIR] [--analyze] [--profile]

It answers the issue "Sync at city scale" (issue 19), section "peer comparison": the same N event documents
pushed to each server and pulled back from it, the docs/s of each and the ratio GridPatrol ÷ pouchdb-server,
against the goal of 10×.

The peer. pouchdb-server 4.2.0 is installed with npm into a folder of this run (removed at the end), or
into ``--pouchdb-dir`` (kept, and reused when it already holds it: the install takes minutes). It serves on
127.0.0.1 with its default store, LevelDB, in a folder of this run: LevelDB writes without fsync, so a write
survives the server process's crash but not the machine's. GridPatrol's SQLite store (WAL,
``synchronous=NORMAL``, server/db.py) is of the same class; on PostgreSQL the bench's database gets
``synchronous_commit = off`` for the same reason (``--pg-fsync`` keeps PostgreSQL's fsync at every commit).
A store just written has no planner statistics until autovacuum's next visit (within a minute); without them
PostgreSQL serves each pull page by reading every record of the bucket after the cursor and sorting them.
``--analyze`` runs ANALYZE between the push and the pull, off the clock, to measure the pull as it runs later.
pouchdb-server's request log goes to a file at level ``warning`` (nothing per request), as gunicorn here keeps
no access log. pouchdb-server runs without authentication (CouchDB's "admin party"), whereas every GridPatrol
request carries a device token that the server looks up, and every pushed change is checked against the user's
role and grids.

The same work on both sides, per round and peer, on a fresh store and a freshly started server:

* the documents: N new events built as a tablet makes them (bench/sync_bench.py's ``event_changes``, ids from
  shared/records.py's ``uuid7``, every field stamped with an HLC), each checked by ``load_change`` and written
  back by ``dump_change``, the wire form. GridPatrol gets them as changes; pouchdb-server gets each as a
  document of the same content, ``{"_id": id, "kind", "bucket", "fields"}``;
* push: batches of ``--batch`` (500) documents, ``POST /api/v1/sync/push`` with the tablet's gzip-compressed
  body and device token, against ``POST /<db>/_bulk_docs`` with the same gzip-compressed JSON (``{"docs": …}``);
  every answer is checked (all ``applied``, all ``ok``). Bodies are built before the clock starts;
* pull, by a fresh reader from the start: ``POST /api/v1/sync/pull`` with the cursors of the previous answer and
  ``limit`` 500 until ``more`` is false, against ``GET /<db>/_changes?include_docs=true&since=<last_seq>&limit=500``
  until a page holds fewer than 500 (how a CouchDB replicator knows it is done: one more, empty, request when
  N is a multiple of 500). Every answer is gzip-compressed by its server (the client asks with
  ``Accept-Encoding: gzip``), inflated and decoded with the same ``json.loads``; the ids pulled must be the ids
  pushed;
* one HTTP/1.1 keep-alive connection per peer (``http.client``; the bench counts the local ports it used: one);
* the servers: gunicorn with one gthread worker and one thread, reading the repository's gunicorn.conf.py (as
  bench/load_bench.py starts it: gthread keeps connections alive, the sync worker would not), against
  pouchdb-server, one Node.js process. Before the timed work each gets an untimed warm-up: 100 documents pushed
  and pulled in another grid, respectively another database.

Rounds alternate which peer goes first, so a busy minute on the shared machine does not fall on one side only.
Printed per N: the median docs/s of push and of pull for each peer, the ratio, and the server process's CPU per
document (utime + stime from /proc of the gunicorn worker and of node: steadier than wall time on a loaded host;
on PostgreSQL GridPatrol's figure adds the CPU of the database's backends, found in pg_stat_activity, and
shows it apart). ``--profile`` adds one untimed pass of GridPatrol alone with the largest N,
cProfile switched on in the gunicorn worker around each push and each pull request (a gunicorn config that
reads the repository's and adds ``pre_request``/``post_request`` hooks), and prints where the worker's time goes.

Everything listens on 127.0.0.1; every process the bench starts is ended and every folder it makes is removed at
the end, on SIGTERM too. Progress goes to stderr; the figures go to stdout.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import http.client
import json
import os
import pstats
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sync_bench as sb  # noqa: E402  (sets the bench's var dir and secret key before the server is imported)
from http_ready import wait_ready  # noqa: E402
from load_bench import gunicorn as gthread_gunicorn  # noqa: E402

from shared.records import dump_change, load_change  # noqa: E402

ROOT = sb.ROOT
TMP = sb.TMP  # removed at exit by sync_bench
POUCHDB_SERVER = "pouchdb-server@4.2.0"
NPM_TIMEOUT_S = 900
REQUEST_TIMEOUT_S = 120
WARM_UP_DOCS = 100
GRID, WARM_GRID = "G-0101", "G-WARM"
progress = sb.progress


# --- one keep-alive connection -------------------------------------------------------------------

class Connection:
    """One HTTP/1.1 keep-alive connection to a server on 127.0.0.1: requests in turn, answers decoded as JSON.

    It notes the local port of every request's socket (one port: the connection was never reopened) and counts
    the answers' bytes as they came over the wire, and how many of them came gzip-compressed.
    """

    def __init__(self, base_url: str):
        host, port = base_url.removeprefix("http://").split(":")
        self.http = http.client.HTTPConnection(host, int(port), timeout=REQUEST_TIMEOUT_S)
        self.ports: set[int] = set()
        self.received = self.gzipped = 0

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, Any]:
        self.http.request(method, path, body=body, headers={"Accept-Encoding": "gzip", **(headers or {})})
        self.ports.add(self.http.sock.getsockname()[1])
        response = self.http.getresponse()
        data = response.read()
        self.received += len(data)
        if response.getheader("Content-Encoding") == "gzip":
            self.gzipped += 1
            data = gzip.decompress(data)
        return response.status, json.loads(data) if data else None

    def close(self) -> None:
        self.http.close()


# --- the documents -------------------------------------------------------------------------------

def wire_changes(n: int, grid: str, reporter: str, node: str, seed: int) -> list[dict]:
    """n new events as a tablet pushes them: built, checked by load_change, written by dump_change."""
    return [dump_change(load_change(c)) for c in sb.event_changes(n, grid, reporter, node, seed)]


def couch_doc(change: dict) -> dict:
    """The same event as a CouchDB document: its id as _id, the rest as it is."""
    return {"_id": change["id"], "kind": change["kind"], "bucket": change["bucket"], "fields": change["fields"]}


def gzipped_json(body: Any) -> bytes:
    """UTF-8 compact JSON, gzip level 6, as mobile/transport.py sends a body."""
    return gzip.compress(sb.dumps(body), compresslevel=6, mtime=0)


def batches(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


# --- the servers ---------------------------------------------------------------------------------

def install_pouchdb_server(folder: Path) -> Path:
    """pouchdb-server installed with npm into folder (npm's download cache inside it too), unless already there."""
    executable = folder / "node_modules" / "pouchdb-server" / "bin" / "pouchdb-server"
    if executable.exists():
        progress(f"reusing {POUCHDB_SERVER} in {folder}")
        return executable
    folder.mkdir(parents=True, exist_ok=True)
    progress(f"installing {POUCHDB_SERVER} with npm into {folder} (minutes, the first time)")
    subprocess.run(["npm", "install", "--prefix", str(folder), "--cache", str(folder / ".npm-cache"), "--no-audit",
                    "--no-fund", "--no-save", "--loglevel=error", POUCHDB_SERVER],
                   check=True, timeout=NPM_TIMEOUT_S, stdout=sys.stderr, stdin=subprocess.DEVNULL)
    return executable


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 20 s; waits for the process."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def pouchdb_server(executable: Path, folder: Path) -> Iterator[tuple[str, int]]:
    """pouchdb-server on LevelDB in folder, on 127.0.0.1, logging at level warning to a file; (base URL, pid)."""
    port = sb.free_port()
    config = folder / "config.json"
    config.write_text(json.dumps({"log": {"level": "warning", "file": str(folder / "log.txt")}}))
    log_path = folder / "stdout.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            ["node", str(executable), "--host", "127.0.0.1", "--port", str(port), "--dir", str(folder / "data"),
             "--config", str(config), "--no-stdout-logs", "--no-color"],
            cwd=folder, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_ready(base + "/", proc, 60, log_path)
            yield base, proc.pid
        finally:
            stop(proc)


@dataclass
class Store:
    """GridPatrol's scratch store for a round: its URL, the device tokens and the pushers' user ids."""

    url: str
    tokens: dict[tuple[str, str], str] = field(default_factory=dict)  # (pusher|puller, grid) → token
    reporters: dict[str, str] = field(default_factory=dict)  # grid → the pusher's user id
    nodes: dict[str, str] = field(default_factory=dict)  # grid → the pusher's node


@contextmanager
def gridpatrol_store(engine: str, pg_fsync: bool) -> Iterator[Store]:
    """A fresh migrated store with a pusher and a puller for the timed grid and for the warm-up grid."""
    with sb.scratch_store(engine) as url:
        if engine == "postgresql" and not pg_fsync:  # LevelDB's durability class: no fsync at each write
            with sb._pg_admin() as conn:
                conn.execute(f'ALTER DATABASE "{url.rsplit("/", 1)[1]}" SET synchronous_commit = off')
        app = sb.make_app(url)
        store = Store(url)
        for n, grid in enumerate((GRID, WARM_GRID)):
            store.nodes[grid] = f"{0xa0 + n:02x}" * 8
            store.reporters[grid] = sb.add_worker(app, f"pusher-{grid}", [grid])
            sb.add_worker(app, f"puller-{grid}", [grid])
            store.tokens["pusher", grid] = sb.device_token(app, f"pusher-{grid}", store.nodes[grid])
            store.tokens["puller", grid] = sb.device_token(app, f"puller-{grid}", f"{0xb0 + n:02x}" * 8)
        with app.app_context():
            sb.db.engine.dispose()
        yield store


def gunicorn_worker(port: int) -> int:
    """The pid of the worker of the gunicorn bound to 127.0.0.1:port (the process whose parent runs it too)."""
    bound = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if f"127.0.0.1:{port}".encode() in (entry / "cmdline").read_bytes():
                    bound[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                pass
    workers = [pid for pid, parent in bound.items() if parent in bound]
    assert len(workers) == 1, f"expected one gunicorn worker on port {port}, found {workers}"
    return workers[0]


PROFILE_CONFIG = '''"""The bench's profiled pass: the repository's gunicorn settings, cProfile on marked requests."""
import cProfile
import runpy

globals().update({{k: v for k, v in runpy.run_path({config!r}).items() if not k.startswith("__")}})
_profiles = {{}}


def _phase(req):
    marked = any(name == "X-BENCH-PROFILE" for name, _ in req.headers)
    return req.path.rsplit("/", 1)[-1] if marked and req.path in ("/api/v1/sync/push", "/api/v1/sync/pull") else None


def pre_request(worker, req):
    phase = _phase(req)
    if phase:
        _profiles.setdefault(phase, cProfile.Profile()).enable()


def post_request(worker, req, environ, resp):
    phase = _phase(req)
    if phase:
        _profiles[phase].disable()
        _profiles[phase].dump_stats({out!r} + "/" + phase + ".prof")
'''


@contextmanager
def gunicorn_config(path: Path | None) -> Iterator[None]:
    """gunicorn started meanwhile reads the config file at path instead of ./gunicorn.conf.py (None: unchanged)."""
    if path is None:
        yield
        return
    os.environ["GUNICORN_CMD_ARGS"] = f"--config {path}"
    try:
        yield
    finally:
        del os.environ["GUNICORN_CMD_ARGS"]


# --- the peers -----------------------------------------------------------------------------------

@dataclass
class Figures:
    """One peer's push and pull of N documents in one round: wall and CPU seconds, pages, bytes, connections."""

    push_s: float
    pull_s: float
    push_server_cpu: float  # the server process, and on PostgreSQL its database backends too
    pull_server_cpu: float
    push_db_cpu: float  # of that, PostgreSQL's backends
    pull_db_cpu: float
    push_client_cpu: float
    pull_client_cpu: float
    pages: int
    push_bytes: int
    pull_bytes: int
    pull_gzipped: int
    connections: int


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")


class Peer:
    """A server under test, started fresh for a round: warmed up, then asked to push and pull N documents."""

    name = ""
    connection: Connection
    server_pid: int

    def serving(self, round_no: int):
        """A context in which the server runs and self.connection talks to it."""
        raise NotImplementedError

    def database_cpu(self) -> float:
        """CPU seconds so far of a database server working for it in other processes (none: 0)."""
        return 0.0

    def between(self) -> None:
        """Between the timed push and the timed pull, off the clock: nothing by default."""

    def cpu(self) -> tuple[float, float]:
        """(CPU seconds of the server and its database, of its database alone) so far."""
        database = self.database_cpu()
        return cpu_seconds(self.server_pid) + database, database

    def bodies(self, changes: list[dict], batch: int, warm: bool) -> list[bytes]:
        """The push bodies, gzip-compressed, built off the clock."""
        raise NotImplementedError

    def push(self, bodies: list[bytes], expected: int, warm: bool) -> None:
        """Send the bodies in turn; every document must be written."""
        raise NotImplementedError

    def pull(self, limit: int, warm: bool) -> tuple[list[str], int]:
        """Everything from the start, in pages of limit; (ids pulled, pages)."""
        raise NotImplementedError

    def run(self, changes: list[dict], warm_changes: list[dict], batch: int, limit: int) -> Figures:
        """Warm up (untimed), then push and pull the changes, timed."""
        self.push(self.bodies(warm_changes, batch, True), len(warm_changes), True)
        self.pull(limit, True)
        bodies = self.bodies(changes, batch, False)
        # What the bench holds (the changes, 30 objects each) is frozen out of the garbage collector's walks, or
        # every full collection while a page is decoded would walk it: client time that is neither server's.
        gc.collect()
        gc.freeze()
        try:
            push = self.timed(lambda: self.push(bodies, len(changes), False))
            self.between()
            received, gzipped = self.connection.received, self.connection.gzipped
            pull = self.timed(lambda: self.pull(limit, False))
        finally:
            gc.unfreeze()
        ids, pages = pull.pop()
        assert sorted(ids) == sorted(c["id"] for c in changes), f"{self.name}: the ids pulled are not those pushed"
        return Figures(push[0], pull[0], push[1], pull[1], push[2], pull[2], push[3], pull[3], pages,
                       sum(map(len, bodies)), self.connection.received - received,
                       self.connection.gzipped - gzipped, len(self.connection.ports))

    def timed(self, work) -> list:
        """[wall s, server CPU s, database CPU s, client CPU s, what work answered]."""
        (server, database), client = self.cpu(), time.process_time()  # its query to PostgreSQL off the clock
        started = time.perf_counter()
        answer = work()
        wall, client = time.perf_counter() - started, time.process_time() - client
        server_after, database_after = self.cpu()
        return [wall, server_after - server, database_after - database, client, answer]


class GridPatrol(Peer):
    """GridPatrol's server: gunicorn, one gthread worker with one thread, the repository's settings."""

    name = "GridPatrol"

    def __init__(self, store: Store, config: Path | None = None, analyze: bool = False):
        self.store, self.config, self.analyze = store, config, analyze
        self.extra_headers = {"X-Bench-Profile": "1"} if config else {}

    @contextmanager
    def serving(self, round_no: int) -> Iterator[None]:
        with gunicorn_config(self.config), gthread_gunicorn(ROOT, self.store.url, 1, 1, TMP) as (base, _master):
            self.server_pid = gunicorn_worker(int(base.rsplit(":", 1)[1]))
            self.connection = Connection(base)
            try:
                yield
            finally:
                self.connection.close()

    def between(self):
        """With --analyze on PostgreSQL: ANALYZE, as autovacuum does within a minute of such a write."""
        if self.analyze and self.store.url.startswith("postgresql"):
            import psycopg

            plain = self.store.url.replace("postgresql+psycopg://", "postgresql://", 1)
            with psycopg.connect(plain, autocommit=True, connect_timeout=3) as conn:
                conn.execute("ANALYZE")

    def database_cpu(self):
        """On PostgreSQL, the CPU so far of the backends serving the store's database (the worker's connections)."""
        if not self.store.url.startswith("postgresql"):
            return 0.0
        with sb._pg_admin() as conn:
            pids = [row[0] for row in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (self.store.url.rsplit("/", 1)[1],))]
        total = 0.0
        for pid in pids:
            try:
                total += cpu_seconds(pid)
            except OSError:  # gone meanwhile
                pass
        return total

    def bodies(self, changes, batch, warm):
        node = self.store.nodes[WARM_GRID if warm else GRID]
        return [sb.push_body(part, node) for part in batches(changes, batch)]

    def _post(self, path: str, body: bytes, token: str, gzipped: bool, warm: bool) -> Any:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        if gzipped:
            headers["Content-Encoding"] = "gzip"
        if not warm:
            headers.update(self.extra_headers)
        status, answer = self.connection.request("POST", "/api/v1" + path, body, headers)
        assert status == 200, (status, answer)
        return answer

    def push(self, bodies, expected, warm):
        token = self.store.tokens["pusher", WARM_GRID if warm else GRID]
        applied = 0
        for body in bodies:
            results = self._post("/sync/push", body, token, True, warm)["results"]
            applied += sum(r["status"] == "applied" for r in results)
        assert applied == expected, f"GridPatrol: {applied} of {expected} changes applied"

    def pull(self, limit, warm):
        token = self.store.tokens["puller", WARM_GRID if warm else GRID]
        cursors: dict[str, str] = {}
        ids: list[str] = []
        pages = 0
        while True:
            answer = self._post("/sync/pull", sb.dumps({"cursors": cursors, "limit": limit}), token, False, warm)
            ids.extend(c["id"] for c in answer["changes"])
            pages += 1
            cursors = answer["cursors"]
            if not answer["more"]:
                return ids, pages


class PouchDBServer(Peer):
    """pouchdb-server: a fresh process on a fresh LevelDB folder per round; databases events and warm."""

    name = "pouchdb-server"

    def __init__(self, executable: Path):
        self.executable = executable

    @contextmanager
    def serving(self, round_no: int) -> Iterator[None]:
        folder = Path(tempfile.mkdtemp(prefix=f"pouchdb-{round_no}-", dir=TMP))
        with pouchdb_server(self.executable, folder) as (base, pid):
            self.server_pid = pid
            self.connection = Connection(base)
            try:
                for name in ("events", "warm"):
                    status, answer = self.connection.request("PUT", f"/{name}")
                    assert status == 201, (status, answer)
                yield
            finally:
                self.connection.close()

    def bodies(self, changes, batch, warm):
        return [gzipped_json({"docs": [couch_doc(c) for c in part]}) for part in batches(changes, batch)]

    def push(self, bodies, expected, warm):
        path = f"/{'warm' if warm else 'events'}/_bulk_docs"
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        written = 0
        for body in bodies:
            status, answer = self.connection.request("POST", path, body, headers)
            assert status == 201, (status, answer)
            written += sum(1 for r in answer if r.get("ok"))
        assert written == expected, f"pouchdb-server: {written} of {expected} documents written"

    def pull(self, limit, warm):
        name = "warm" if warm else "events"
        since: Any = 0
        ids: list[str] = []
        pages = 0
        while True:
            status, answer = self.connection.request(
                "GET", f"/{name}/_changes?include_docs=true&since={since}&limit={limit}")
            assert status == 200, (status, answer)
            ids.extend(r["doc"]["_id"] for r in answer["results"])
            pages += 1
            since = answer["last_seq"]
            if len(answer["results"]) < limit:
                return ids, pages


# --- rounds ----------------------------------------------------------------------------------------

def one_round(engine: str, n: int, round_no: int, executable: Path, args) -> dict[str, Figures]:
    """Both peers, fresh, on the same documents; the peer that goes first alternates with the round."""
    with gridpatrol_store(engine, args.pg_fsync) as store:
        changes = wire_changes(n, GRID, store.reporters[GRID], store.nodes[GRID], seed=round_no)
        warm = wire_changes(WARM_UP_DOCS, WARM_GRID, store.reporters[WARM_GRID], store.nodes[WARM_GRID],
                            seed=1000 + round_no)
        peers: list[Peer] = [GridPatrol(store, analyze=args.analyze), PouchDBServer(executable)]
        if round_no % 2 == 0:
            peers.reverse()
        figures = {}
        for peer in peers:
            with peer.serving(round_no):
                figures[peer.name] = f = peer.run(changes, warm, args.batch, args.limit)
            progress(f"[{engine}] N={n:,} round {round_no}: {peer.name:<15} push {f.push_s:6.2f} s,"
                     f" pull {f.pull_s:6.2f} s ({f.pages} pages), server CPU {f.push_server_cpu:.2f} /"
                     f" {f.pull_server_cpu:.2f} s")
    return figures


# --- the profiled pass -------------------------------------------------------------------------------

def profile_pass(engine: str, n: int, args) -> dict[str, pstats.Stats]:
    """GridPatrol alone, N documents, cProfile on in the worker around each timed push and pull request."""
    out = Path(tempfile.mkdtemp(prefix="profile-", dir=TMP))
    config = out / "gunicorn_profile.conf.py"
    config.write_text(PROFILE_CONFIG.format(config=str(ROOT / "gunicorn.conf.py"), out=str(out)))
    progress(f"[{engine}] profiled pass: GridPatrol, N={n:,}, cProfile in the gunicorn worker")
    with gridpatrol_store(engine, args.pg_fsync) as store:
        changes = wire_changes(n, GRID, store.reporters[GRID], store.nodes[GRID], seed=0)
        warm = wire_changes(WARM_UP_DOCS, WARM_GRID, store.reporters[WARM_GRID], store.nodes[WARM_GRID], seed=999)
        peer = GridPatrol(store, config, analyze=args.analyze)
        with peer.serving(0):
            f = peer.run(changes, warm, args.batch, args.limit)
    progress(f"[{engine}]   under cProfile: push {f.push_s:.2f} s, pull {f.pull_s:.2f} s (not the figures)")
    return {phase: pstats.Stats(str(out / f"{phase}.prof")) for phase in ("push", "pull")}


def group_of(filename: str, function: str) -> str:
    """Where a profiled function lives: a file of this repository, a package, a C module, or the stdlib."""
    if filename == "~":  # a built-in: "<method 'execute' of 'sqlite3.Cursor' objects>", "<built-in method zlib.…>"
        words = function.replace("'", " ").replace("<", " ").split()
        dotted = next((w for w in reversed(words) if "." in w), "builtins")
        return "C " + dotted.split(".")[0]
    path = Path(filename)
    if path.is_relative_to(ROOT) and ".venv" not in path.parts:
        return str(path.relative_to(ROOT))
    if "site-packages" in path.parts:
        return path.parts[path.parts.index("site-packages") + 1].removesuffix(".py")
    return "stdlib " + path.stem


def where_time_goes(stats: pstats.Stats, top: int) -> list[str]:
    """The profile's self time by place (file, package, C module), and the costliest functions of this repository."""
    total = stats.total_tt
    by_group: dict[str, float] = {}
    ours = []
    for (filename, line, function), (_, _, tottime, cumtime, _) in stats.stats.items():
        group = group_of(filename, function)
        by_group[group] = by_group.get(group, 0.0) + tottime
        if group.startswith(("server/", "shared/")):
            ours.append((cumtime, f"{group}:{line} {function}"))
    lines = [f"total {total:.2f} s in the worker (under cProfile); self time by place:"]
    for group, seconds in sorted(by_group.items(), key=lambda item: -item[1])[:top]:
        lines.append(f"  {100 * seconds / total:5.1f} %  {group}")
    lines.append("inclusive time of this repository's costliest functions:")
    for cumtime, name in sorted(ours, reverse=True)[:top]:
        lines.append(f"  {100 * cumtime / total:5.1f} %  {name}")
    return lines


# --- report --------------------------------------------------------------------------------------

def median_of(rounds: list[dict[str, Figures]], peer: str, attribute: str) -> float:
    return statistics.median(getattr(r[peer], attribute) for r in rounds)


def report(engine: str, n: int, rounds: list[dict[str, Figures]], args) -> dict[str, float]:
    """The table for N documents on an engine; answers the ratios."""
    print(f"\nN = {n:,} events on {engine}: push batches of {args.batch}, pull pages of {args.limit};"
          f" median of {len(rounds)} round(s)")
    print("| server | push docs/s | pull docs/s | server CPU per doc, push / pull | client CPU per doc,"
          " push / pull | pull requests (gzipped) | bytes on the wire, push bodies / pull answers | connections |")
    print("|---|---|---|---|---|---|---|---|")
    rates = {}
    for peer in ("GridPatrol", "pouchdb-server"):
        push, pull = n / median_of(rounds, peer, "push_s"), n / median_of(rounds, peer, "pull_s")
        rates[peer] = (push, pull)
        first = rounds[0][peer]
        us = lambda attribute: f"{median_of(rounds, peer, attribute) / n * 1e6:.0f}"  # noqa: E731
        database = (f" (PostgreSQL {us('push_db_cpu')} / {us('pull_db_cpu')})"
                    if peer == "GridPatrol" and engine == "postgresql" else "")
        print(f"| {peer} | {push:,.0f} | {pull:,.0f} | {us('push_server_cpu')} / {us('pull_server_cpu')} µs{database} |"
              f" {us('push_client_cpu')} / {us('pull_client_cpu')} µs | {first.pages} ({first.pull_gzipped}) |"
              f" {first.push_bytes:,} / {first.pull_bytes:,} | {max(r[peer].connections for r in rounds)} |")
    ratios = {"push": rates["GridPatrol"][0] / rates["pouchdb-server"][0],
              "pull": rates["GridPatrol"][1] / rates["pouchdb-server"][1]}
    print(f"GridPatrol ÷ pouchdb-server: push {ratios['push']:.2f}×, pull {ratios['pull']:.2f}×;"
          f" goal 10×: {'reached' if min(ratios.values()) >= 10 else 'not reached'}")
    cpu = {phase: median_of(rounds, "pouchdb-server", f"{phase}_server_cpu")
           / median_of(rounds, "GridPatrol", f"{phase}_server_cpu") for phase in ("push", "pull")}
    print(f"server CPU per doc, pouchdb-server ÷ GridPatrol: push {cpu['push']:.2f}×, pull {cpu['pull']:.2f}×"
          + (" (GridPatrol's worker and its PostgreSQL backends)" if engine == "postgresql" else ""))
    print("rounds, docs/s push / pull: " + "; ".join(
        " vs ".join(f"{n / r[p].push_s:,.0f} / {n / r[p].pull_s:,.0f}" for p in ("GridPatrol", "pouchdb-server"))
        for r in rounds))
    return ratios


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", default="1000,10000", help="document counts, e.g. 1000,10000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--batch", type=int, default=500, help="documents per push request (sync_bench's batch)")
    parser.add_argument("--limit", type=int, default=500, help="documents per pull page (mobile/sync.py's default)")
    parser.add_argument("--pouchdb-dir", type=Path,
                        help="install pouchdb-server here and keep it, or reuse it from here (default: a folder "
                             "of this run, removed at the end)")
    parser.add_argument("--pg-fsync", action="store_true",
                        help="keep PostgreSQL's synchronous_commit = on (default: off, LevelDB's durability class)")
    parser.add_argument("--analyze", action="store_true",
                        help="on PostgreSQL, ANALYZE between the push and the pull (off the clock), as autovacuum "
                             "would within a minute; without it the pull's query runs without statistics")
    parser.add_argument("--profile", action="store_true",
                        help="then one untimed pass of GridPatrol with cProfile in its worker: where the time goes")
    args = parser.parse_args(argv)
    # Ended by SIGTERM: unwind, so the servers are stopped and the scratch stores and folders removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sizes = [int(d) for d in args.docs.split(",")]
    engines = ["sqlite", "postgresql"] if args.engine == "both" else [args.engine]
    executable = install_pouchdb_server(args.pouchdb_dir.resolve() if args.pouchdb_dir else TMP / "pouchdb-server")
    node_version = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True).stdout.strip()

    print(f"GridPatrol against {POUCHDB_SERVER} (Node.js {node_version}, LevelDB in a scratch folder)")
    for line in sb.machine():
        print("  " + line)
    if "postgresql" in engines:
        print(f"  PostgreSQL {sb.pg_version()}, synchronous_commit {'on' if args.pg_fsync else 'off'}"
              + ("; ANALYZE between push and pull" if args.analyze else "; no ANALYZE before the pull"))
    print("  one keep-alive HTTP/1.1 connection per server (http.client), gzip both ways;"
          " gunicorn: 1 gthread worker x 1 thread, the repository's gunicorn.conf.py")
    print(f"  load average at start: {load_average()}")
    started = time.perf_counter()
    for engine in engines:
        print(f"\n== {engine} ==")
        for n in sizes:
            rounds = [one_round(engine, n, r, executable, args) for r in range(1, args.rounds + 1)]
            report(engine, n, rounds, args)
        if args.profile:
            for phase, stats in profile_pass(engine, max(sizes), args).items():
                print(f"\nwhere GridPatrol's worker spends a {phase} of {max(sizes):,} ({engine}):")
                for line in where_time_goes(stats, 12):
                    print("  " + line)
    print(f"\nload average at end: {load_average()}; total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

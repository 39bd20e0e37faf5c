"""What the drills share: a real server process, the demo users, and reading the store directly.

`ServerProcess` runs gunicorn serving ``server:create_app()`` on 127.0.0.1 in
its own process group, so `kill()` SIGKILLs the master and its workers
together, as a power cut or an OOM kill would: nothing gets to finish a
request or a commit.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "drill-pass"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """The sync server as a real gunicorn process group, which a drill may kill and start again.

    By default it runs ``python -m gunicorn 'server:create_app()'``. With
    ``fast_restart`` a fork server (tests/drills/forkserver.py) that has
    imported the server once starts each gunicorn instead, so a restart after a
    SIGKILL costs a fraction of a second rather than the second or two an
    import of the server takes on a busy machine.
    """

    def __init__(self, database_url: str, log_path: Path, *, workers: int = 2, threads: int = 4,
                 fast_restart: bool = False, env: dict[str, str] | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(log_path)
        bind = f"127.0.0.1:{self.port}"
        self.command = [sys.executable, "-m", "gunicorn", "--bind", bind, "--workers", str(workers),
                        "--threads", str(threads), "--timeout", "60", "--graceful-timeout", "2",
                        "server:create_app()"]
        self.fork_command = [sys.executable, "-m", "tests.drills.forkserver", bind, str(workers), str(threads)]
        self.fast_restart = fast_restart
        self.env = {**os.environ, "GRIDPATROL_DATABASE_URL": database_url,
                    "GRIDPATROL_SECRET_KEY": "drill", "GRIDPATROL_VAR_DIR": str(self.log_path.parent),
                    "GRIDPATROL_PHOTO_DIR": str(self.log_path.parent / "photos"), **(env or {})}
        self.env.pop("GRIDPATROL_NODE", None)  # each server its own node, as in production
        self.pid: int | None = None  # the running server's master, and its process group
        self.process: subprocess.Popen | None = None  # the same, when started with python -m gunicorn
        self.forkserver: subprocess.Popen | None = None
        self.starts = 0
        self.kills = 0

    def _spawn(self, command: list[str], **kwargs) -> subprocess.Popen:
        with open(self.log_path, "ab") as log:
            return subprocess.Popen(command, cwd=ROOT, env=self.env, stderr=log, **kwargs)

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and wait until /api/v1/health answers 200."""
        assert self.pid is None, "already running"
        if self.fast_restart:
            if self.forkserver is None:
                self.forkserver = self._spawn(self.fork_command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                              start_new_session=True)
            self.forkserver.stdin.write(b"start\n")
            self.forkserver.stdin.flush()
            line = self.forkserver.stdout.readline()
            if not line:
                raise RuntimeError(f"the fork server ended:\n{self.log_tail()}")
            self.pid = int(line)
        else:
            # A new session makes the server its own process group: kill() reaches every worker.
            with open(self.log_path, "ab") as log:
                self.process = self._spawn(self.command, stdin=subprocess.DEVNULL, stdout=log,
                                           start_new_session=True)
            self.pid = self.process.pid
        self.starts += 1
        self.wait_healthy(timeout)

    def alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with requests.Session() as session:
            while True:
                if not self.alive():
                    raise RuntimeError(f"the server exited:\n{self.log_tail()}")
                try:
                    answer = session.get(self.url + "/api/v1/health", timeout=1)
                    if answer.status_code == 200:
                        return
                except requests.RequestException:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not become healthy in {timeout} s:\n{self.log_tail()}")
                time.sleep(0.01)

    def kill(self) -> None:
        """SIGKILL the master and every worker at once, and wait until they are gone."""
        if self.pid is not None:
            self._end(signal.SIGKILL)
            self.kills += 1

    def stop(self) -> None:
        """End the server (SIGTERM for a graceful stop, SIGKILL if it lingers) and the fork server."""
        if self.pid is not None:
            self._end(signal.SIGTERM)
        forkserver, self.forkserver = self.forkserver, None
        if forkserver is not None:
            forkserver.stdin.close()  # EOF: it ends by itself
            try:
                forkserver.wait(10)
            except subprocess.TimeoutExpired:
                forkserver.kill()
                forkserver.wait()
            forkserver.stdout.close()

    def _end(self, sig: int) -> None:
        pid, process = self.pid, self.process
        self.pid = self.process = None
        _signal_group(pid, sig)
        deadline = time.monotonic() + 10
        while True:
            if process is not None:
                try:
                    process.wait(0.01)
                    gone = True
                except subprocess.TimeoutExpired:
                    gone = False
            else:
                try:
                    os.kill(pid, 0)
                    gone = False
                except ProcessLookupError:
                    gone = True
            if gone and _port_closed(self.port):
                break
            if time.monotonic() > deadline:
                _signal_group(pid, signal.SIGKILL)
                if process is not None:
                    process.wait()
                deadline = time.monotonic() + 10
            time.sleep(0.005)
        _signal_group(pid, signal.SIGKILL)  # a worker that outlived its master would hold the database

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> "ServerProcess":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _port_closed(port: int) -> bool:
    """Whether nothing listens on the port any more (so a new server can bind it at once)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return False
    except OSError:
        return True


def drill_app(database_url: str):
    """A server app on the drill's store, for setting it up and reading it directly."""
    from server import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "drill",
                       "GRIDPATROL_NODE": "d7d7d7d7d7d7d7d7"})


def load_demo(database_url: str) -> dict[str, dict[str, Any]]:
    """Load the demo data set (every password PASSWORD); answers {username: {id, role, grids}}."""
    from server.admin import demo
    from server.db import db
    from server.models import User
    from sqlalchemy import select

    app = drill_app(database_url)
    with app.app_context():
        demo.load(password=PASSWORD)
        users = {u.username: {"id": u.id, "role": u.role, "grids": u.grid_codes}
                 for u in db.session.scalars(select(User))}
        db.session.remove()
        db.engine.dispose()
    return users


def server_records(database_url: str) -> dict[str, Any]:
    """What the store holds, read directly: rows per id, each record's state, the feed and positions."""
    from server.db import db
    from server.models import Feed, Record
    from sqlalchemy import func, select

    app = drill_app(database_url)
    with app.app_context():
        duplicated = db.session.execute(
            select(Record.id, func.count()).group_by(Record.id).having(func.count() > 1)).all()
        rows = db.session.scalars(select(Record)).all()
        records = {r.id: {"kind": r.kind, "bucket": r.bucket, "position": r.position,
                          "state": {name: (value, r.field_hlcs[name]) for name, value in r.field_values.items()}}
                   for r in rows}
        feed = db.session.scalar(select(Feed.position).where(Feed.id == 1))
        positions = [r.position for r in rows]
        db.session.remove()
        db.engine.dispose()
    return {"duplicated": duplicated, "rows": len(rows), "records": records, "feed": feed, "positions": positions}


def client_state(store) -> dict[str, dict[str, Any]]:
    """Every record a device holds, tombstoned ones too: {id: {kind, bucket, state}}."""
    from shared.records import KINDS

    return {r.id: {"kind": r.kind, "bucket": r.bucket, "state": dict(r.state)}
            for kind in KINDS for r in store.query(kind, include_deleted=True)}


def compare_with_server(store, server: dict[str, Any], buckets: list[str]) -> list[str]:
    """Differences between a device's records and the server's records in the device's buckets."""
    problems = []
    mine = client_state(store)
    theirs = {rid: rec for rid, rec in server["records"].items() if rec["bucket"] in buckets}
    for rid in sorted(set(mine) | set(theirs)):
        if rid not in theirs:
            problems.append(f"{mine[rid]['kind']} {rid} is on the device but not on the server")
        elif rid not in mine:
            problems.append(f"{theirs[rid]['kind']} {rid} is on the server but not on the device")
        else:
            a, b = mine[rid], theirs[rid]
            if (a["kind"], a["bucket"], a["state"]) != (b["kind"], b["bucket"], b["state"]):
                problems.append(f"{rid} differs: device {a} / server {b}")
    return problems

"""The sync server as a real gunicorn process, for tests that kill it, cut its network or drive an app against it.

`GunicornServer` runs gunicorn serving ``server:create_app()`` on 127.0.0.1 in
its own process group, so `kill()` SIGKILLs the master and its workers
together, as a power cut or an OOM kill would: nothing gets to finish a
request, a commit or a photo write. `start()` may follow, on the same port.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class GunicornServer:
    """The sync server as a real gunicorn process group on a free port, to be SIGKILLed and started again.

    Its store is ``database_url``, its photos go to ``photo_dir``, and gunicorn
    writes to ``log_path`` (whose folder is also its var/). ``env`` is its
    environment; a test may add to it before `start()`. By default it runs
    ``python -m gunicorn 'server:create_app()'``. With ``fast_restart`` a fork
    server (tests/forkserver.py) that has imported the server once starts each
    gunicorn instead, so a restart after a SIGKILL costs a fraction of a second
    rather than the second or two an import of the server takes on a busy machine.
    """

    def __init__(self, database_url: str, photo_dir: Path, log_path: Path, *, workers: int = 2, threads: int = 4,
                 fast_restart: bool = False):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(log_path)
        bind = f"127.0.0.1:{self.port}"
        self.command = [sys.executable, "-m", "gunicorn", "--bind", bind, "--workers", str(workers),
                        "--threads", str(threads), "--timeout", "60", "--graceful-timeout", "2",
                        "server:create_app()"]
        self.fork_command = [sys.executable, "-m", "tests.forkserver", bind, str(workers), str(threads)]
        self.fast_restart = fast_restart
        self.env = {**os.environ, "GRIDPATROL_DATABASE_URL": database_url, "GRIDPATROL_SECRET_KEY": "gunicorn-test",
                    "GRIDPATROL_VAR_DIR": str(self.log_path.parent), "GRIDPATROL_PHOTO_DIR": str(photo_dir)}
        self.env.pop("GRIDPATROL_NODE", None)  # each server its own node, as in production
        self.pid: int | None = None  # the running server's master, and its process group
        self.process: subprocess.Popen | None = None  # the same, when started with python -m gunicorn
        self.forkserver: subprocess.Popen | None = None
        self.starts = 0
        self.kills = 0

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and wait until /api/v1/health answers 200."""
        assert self.pid is None, "already running"
        if self.fast_restart:
            self.pid = self._fork()
        else:
            self.process = self._spawn(self.command, piped=False)
            self.pid = self.process.pid
        self.starts += 1
        self._wait_healthy(timeout)

    def kill(self) -> None:
        """SIGKILL the master and every worker at once, and wait until they are gone and the port is free."""
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

    def log_tail(self, lines: int = 40) -> str:
        """The last lines gunicorn logged."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> "GunicornServer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, command: list[str], *, piped: bool) -> subprocess.Popen:
        """Start ``command`` as a process group of its own (killpg reaches every worker), logging to log_path;
        with ``piped``, its stdin and stdout are pipes to this process."""
        with open(self.log_path, "ab") as log:
            streams = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE} if piped else \
                {"stdin": subprocess.DEVNULL, "stdout": log}
            return subprocess.Popen(command, cwd=ROOT, env=self.env, stderr=log, start_new_session=True, **streams)

    def _fork(self) -> int:
        """Have the fork server (started on first use) start a gunicorn; answers its pid."""
        if self.forkserver is None:
            self.forkserver = self._spawn(self.fork_command, piped=True)
        self.forkserver.stdin.write(b"start\n")
        self.forkserver.stdin.flush()
        line = self.forkserver.stdout.readline()
        if not line:
            raise RuntimeError(f"the fork server ended:\n{self.log_tail()}")
        return int(line)

    def _running(self) -> bool:
        """Whether the master still runs (the fork server's children are reaped by the kernel)."""
        if self.process is not None:
            return self.process.poll() is None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with requests.Session() as session:
            while True:
                if not self._running():
                    raise RuntimeError(f"the server exited; the end of {self.log_path}:\n{self.log_tail()}")
                try:
                    if session.get(self.url + "/api/v1/health", timeout=1).status_code == 200:
                        return
                except requests.RequestException:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not become healthy in {timeout} s; "
                                       f"the end of {self.log_path}:\n{self.log_tail()}")
                time.sleep(0.01)

    def _end(self, sig: int) -> None:
        """Send the process group ``sig`` (SIGKILL after 10 s) until the master is gone and the port is free."""
        deadline = time.monotonic() + 10
        _signal_group(self.pid, sig)
        while self._running() or not port_closed(self.port):
            if time.monotonic() > deadline:
                _signal_group(self.pid, signal.SIGKILL)
                deadline = time.monotonic() + 10
            time.sleep(0.005)
        _signal_group(self.pid, signal.SIGKILL)  # a worker that outlived its master would hold the database
        self.pid = self.process = None


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def port_closed(port: int) -> bool:
    """Whether nothing listens on the port any more (so a new server can bind it at once)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return False
    except OSError:
        return True

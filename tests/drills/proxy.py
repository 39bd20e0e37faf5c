"""A bad mobile link on 127.0.0.1, as a test helper: a TCP proxy that throttles each way and drops connections.

`LinkProxy` listens on 127.0.0.1 (a free port) and forwards every connection to 127.0.0.1:``upstream``.

* **Bandwidth, each way.** Bytes from the tablet (up) and to the tablet (down) go through one token bucket
  per direction, shared by all connections, as one radio link is: ``up_bps`` and ``down_bps`` in bits per
  second (None: unthrottled).
* **Drops.** Each connection is cut (both sockets shut down, nothing more passes) once it has carried a
  random number of bytes, both ways together, drawn uniformly from ``drop_after`` = (low, high) when it
  opened; and, with ``drop_rate``, by chance: each second a connection lives it is cut with that probability.
  What was on its way is lost, as in a real cut.
* **Counters.** ``up``, ``down`` (bytes passed), ``connections``, ``drops``; `stats()` has them all.

Bounded and self-stopping: at most ``max_connections`` at once (more wait in the listen backlog), and it
stops by itself after ``lifetime`` seconds; `close()` (or leaving the ``with``) stops it at once. Threads
only, two per connection; every socket has a timeout, so no thread outlives the proxy by long.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from typing import Any

CHUNK = 4096


class _Bucket:
    """A token bucket of ``bps`` bits per second: ``take(n)`` sleeps until n bytes may pass."""

    def __init__(self, bps: float | None):
        self.rate = bps / 8 if bps else None  # bytes per second
        self.lock = threading.Lock()
        self.free_at = time.monotonic()

    def take(self, n: int, stop: threading.Event) -> None:
        if self.rate is None:
            return
        with self.lock:
            now = time.monotonic()
            start = max(now, self.free_at)
            self.free_at = start + n / self.rate
            wait = self.free_at - now
        if wait > 0:
            stop.wait(wait)


class LinkProxy:
    """A throttling, dropping TCP proxy to 127.0.0.1:upstream (see the module's docstring)."""

    def __init__(self, upstream: int, *, up_bps: float | None = None, down_bps: float | None = None,
                 drop_after: tuple[int, int] | None = None, drop_rate: float = 0.0, seed: int = 0,
                 max_connections: int = 32, lifetime: float = 600.0):
        self.upstream = upstream
        self.up_bucket, self.down_bucket = _Bucket(up_bps), _Bucket(down_bps)
        self.up_bps, self.down_bps = up_bps, down_bps
        self.drop_after = drop_after
        self.drop_rate = drop_rate
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.slots = threading.BoundedSemaphore(max_connections)
        self.lifetime = lifetime
        self.stop = threading.Event()
        self.up = self.down = self.connections = self.drops = 0
        self.open: set[_Connection] = set()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self._accept, name="link-proxy", daemon=True)
        self.started = time.monotonic()

    # --- life ---------------------------------------------------------------------------------------

    def start(self) -> "LinkProxy":
        self.thread.start()
        return self

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.listener.close()

    def __enter__(self) -> "LinkProxy":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {"up": self.up, "down": self.down, "connections": self.connections, "drops": self.drops}

    def set_drops(self, drop_after: tuple[int, int] | None, drop_rate: float = 0.0) -> None:
        """Change how connections are dropped (a drill may set up its data over a clean link first).

        The connections open now are closed (the tablet went away), so every later one has the new fate.
        """
        with self.lock:
            self.drop_after, self.drop_rate = drop_after, drop_rate
            open_now = list(self.open)
        for connection in open_now:
            connection.close_quietly()

    # --- work ---------------------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self.stop.is_set():
            if time.monotonic() - self.started > self.lifetime:
                self.stop.set()
                break
            try:
                client, _ = self.listener.accept()
            except (socket.timeout, OSError):
                continue
            if not self.slots.acquire(timeout=5):
                client.close()
                continue
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
            except OSError:
                client.close()
                self.slots.release()
                continue
            with self.lock:
                self.connections += 1
                low_high = self.drop_after
                budget = self.random.randint(*low_high) if low_high else None
                rate = self.drop_rate
            connection = _Connection(self, client, server, budget, rate)
            with self.lock:
                self.open.add(connection)
            connection.start()


class _Connection:
    """One proxied connection: two pumps, one byte budget, one fate."""

    def __init__(self, proxy: LinkProxy, client: socket.socket, server: socket.socket, budget: int | None,
                 rate: float):
        self.proxy, self.client, self.server = proxy, client, server
        self.budget = budget  # bytes both ways before the cut, or None
        self.rate = rate
        self.lock = threading.Lock()
        self.cut = False
        self.ended = 0
        self.opened = time.monotonic()
        self.seconds_checked = 0
        for sock in (client, server):
            sock.settimeout(1.0)

    def start(self) -> None:
        threading.Thread(target=self._pump, args=(self.client, self.server, True), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.server, self.client, False), daemon=True).start()

    def _allow(self, n: int) -> int:
        """How many of n bytes may pass before the cut (0: cut now)."""
        with self.lock:
            if self.cut:
                return 0
            if self.rate:
                lived = int(time.monotonic() - self.opened)
                while self.seconds_checked < lived:
                    self.seconds_checked += 1
                    with self.proxy.lock:
                        roll = self.proxy.random.random()
                    if roll < self.rate:
                        return self._drop()
            if self.budget is None:
                return n
            if self.budget <= 0:
                return self._drop()
            allowed = min(n, self.budget)
            self.budget -= allowed
            if allowed < n:
                self._drop()  # these bytes pass, the rest of the read is lost, and the connection with it
            return allowed

    def close_quietly(self) -> None:
        """End the connection without counting a drop (not the link's doing)."""
        with self.lock:
            self.cut = True
        for sock in (self.client, self.server):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _drop(self) -> int:
        self.cut = True
        with self.proxy.lock:
            self.proxy.drops += 1
        return 0

    def _pump(self, source: socket.socket, target: socket.socket, up: bool) -> None:
        bucket = self.proxy.up_bucket if up else self.proxy.down_bucket
        try:
            while not self.proxy.stop.is_set():
                try:
                    data = source.recv(CHUNK)
                except socket.timeout:
                    if self._allow(0) == 0 and self.cut:
                        break
                    continue
                if not data:
                    break
                allowed = self._allow(len(data))
                if allowed:
                    bucket.take(allowed, self.proxy.stop)
                    target.sendall(data[:allowed])
                    with self.proxy.lock:
                        if up:
                            self.proxy.up += allowed
                        else:
                            self.proxy.down += allowed
                if allowed < len(data):
                    break  # cut: what was left of this read is lost
        except OSError:
            pass
        finally:
            self._end(target)

    def _end(self, target: socket.socket) -> None:
        with self.lock:
            self.ended += 1
            last = self.ended == 2
            cut = self.cut
        if cut or last:
            for sock in (self.client, self.server):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        else:
            # One side finished sending (a half-close): pass the EOF on, keep the other way open.
            try:
                target.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        if last:
            for sock in (self.client, self.server):
                sock.close()
            with self.proxy.lock:
                self.proxy.open.discard(self)
            self.proxy.slots.release()

"""Proof "Flaky network": 30 % of requests fail, before or after the server acts; all is synced once.

The network is a tiny HTTP proxy on 127.0.0.1 between the devices and a real
gunicorn server. For each request it rolls a die:

* ``before`` (15 %): it reads the request and hangs up without forwarding it;
* ``after`` (15 %): it forwards the request, lets the server answer (a push is
  committed by then), and hangs up without passing the answer on, or after
  passing only part of it;
* otherwise it passes request and answer through.

Four devices (two workers sharing a grid, a worker of another grid, a
supervisor of all) capture events, edit each other's events and add case
actions concurrently, syncing through the proxy with the real HttpTransport
(retries kept low, so failures also reach synchronize). At the end every
outbox is empty, nothing was refused, each record is stored exactly once,
and every device holds exactly what the server holds in its buckets.
"""

from __future__ import annotations

import random
import socket
import socketserver
import threading
import time
from collections import Counter

import pytest

from mobile.store import Store
from mobile.sync import synchronize
from mobile.transport import HttpTransport
from shared.hlc import format_ms

from tests.servers import GunicornServer

from .helpers import PASSWORD, compare_with_server, load_demo, server_records

pytestmark = pytest.mark.slow

FAILURE_RATE = 0.30  # half before the server acts, half after
ROUNDS = 30  # capture-and-sync rounds per device
SETTLE_SECONDS = 60
DEVICES = ["worker1", "worker2", "worker3", "supervisor1"]


class FlakyProxy(socketserver.ThreadingTCPServer):
    """One request per connection: pass it through, drop it before the server, or drop the answer."""

    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, upstream_port: int, rate: float, seed: int):
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.upstream = ("127.0.0.1", upstream_port)
        self.rate = rate
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.fates: Counter = Counter()  # (path, fate)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def fate(self, path: str) -> tuple[str, float]:
        """What becomes of this request, and where an answer that is lost gets cut."""
        with self.lock:
            roll = self.random.random()
            fate = "before" if roll < self.rate / 2 else "after" if roll < self.rate else "ok"
            self.fates[(path, fate)] += 1
            return fate, self.random.random()


class _ProxyHandler(socketserver.BaseRequestHandler):
    server: FlakyProxy

    def handle(self) -> None:
        client = self.request
        client.settimeout(30)
        head, body = _read_request(client)
        if head is None:
            return
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        path = request_line.split(" ")[1]
        fate, cut = self.server.fate(path)
        if fate == "before":
            return  # hang up: the server never sees the request
        # One request per upstream connection; the server closes it after answering.
        headers = [h for h in header_lines if h and not h.lower().startswith("connection:")]
        forwarded = "\r\n".join([request_line, *headers, "Connection: close", "", ""]).encode("latin-1") + body
        with socket.create_connection(self.server.upstream, timeout=30) as upstream:
            upstream.sendall(forwarded)
            answer = b""
            while chunk := upstream.recv(65536):
                answer += chunk
        if fate == "after":
            # The server has acted; the answer is lost entirely, or cut off part way.
            if cut < 0.5:
                client.sendall(answer[: int(len(answer) * cut * 2)])
            return
        client.sendall(answer)


def _read_request(sock: socket.socket) -> tuple[bytes | None, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None, b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            return None, b""
        body += chunk
    return head, body


class Device:
    """One tablet: its store, its transport through the proxy, and what it wrote."""

    def __init__(self, username: str, user: dict, url: str, path, seed: int):
        self.username, self.user = username, user
        self.store = Store(path)
        self.transport = HttpTransport(url, retries=1, backoff_factor=0.01, timeout=(1, 10))
        self.random = random.Random(seed)
        self.created: list[tuple[str, str]] = []  # (kind, id)
        self.buckets: list[str] = []
        self.syncs = self.failed_syncs = 0

    def login(self, deadline: float) -> None:
        while True:
            try:
                answer = self.transport.login(self.username, PASSWORD, f"{self.username}'s tablet", self.store.node)
                break
            except Exception:  # the proxy dropped it; a log-in may register the device twice, no harm
                assert time.monotonic() < deadline, f"{self.username} could not log in"
        self.store.save_login(self.transport.base_url, answer["token"], answer["user"], answer["buckets"])
        self.buckets = answer["buckets"]

    def act(self) -> None:
        """One to three edits of the kind this user makes."""
        role = self.user["role"]
        for _ in range(self.random.randint(1, 3)):
            events = [r for r in self.store.query("event") if r.bucket != "ref"]
            choice = self.random.random()
            if role == "worker" and (choice < 0.4 or not events):
                change = self.store.create("event", {
                    "grid": self.user["grids"][0], "category": "garbage",
                    "description": f"{self.username} saw something", "reporter": self.user["id"],
                    "reported_at": format_ms(self.store.physical_ms()), "urgent": False})
                self.created.append(("event", change.id))
            elif choice < 0.75 and events:
                event = self.random.choice(events)
                self.store.write("event", event.id, {"description": f"{self.username} edited {time.time_ns()}",
                                                     "urgent": self.random.random() < 0.5})
            elif events:
                action = "comment" if role == "worker" else self.random.choice(["comment", "dispatch"])
                values = {"event": self.random.choice(events).id, "action": action, "actor": self.user["id"],
                          "note": f"{self.username}: {action}"}
                if action == "dispatch":
                    values["unit"] = "fire"
                change = self.store.create("case_action", values)
                self.created.append(("case_action", change.id))

    def sync(self):
        report = synchronize(self.store, self.transport, batch_size=5, page_limit=20)
        self.syncs += 1
        self.failed_syncs += not report.ok
        return report

    def run(self, rounds: int) -> None:
        for _ in range(rounds):
            self.act()
            self.sync()
            time.sleep(self.random.uniform(0, 0.05))

    def close(self) -> None:
        self.transport.close()
        self.store.close()


def settle(devices: list[Device], deadline: float, server: GunicornServer) -> None:
    """Sync each device until its sync runs to the end with nothing left to push."""
    for device in devices:
        while True:
            report = device.sync()
            if report.ok and device.store.counts().unsynced == 0:
                break
            assert time.monotonic() < deadline, f"{device.username} never settled: {report}\n{server.log_tail()}"


def test_thirty_percent_of_requests_fail_and_everything_is_synced_once(database_url, tmp_path):
    started = time.monotonic()
    users = load_demo(database_url)
    devices: list[Device] = []
    with GunicornServer(database_url, tmp_path / "photos", tmp_path / "gunicorn.log", workers=2, threads=4) as server:
        proxy = FlakyProxy(server.port, FAILURE_RATE, seed=30)
        proxy_thread = threading.Thread(target=proxy.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        proxy_thread.start()
        try:
            deadline = time.monotonic() + SETTLE_SECONDS
            for n, username in enumerate(DEVICES):
                devices.append(Device(username, users[username], proxy.url, tmp_path / f"{username}.db", seed=n))
                devices[-1].login(deadline)
            errors: list[BaseException] = []

            def run(device: Device) -> None:
                try:
                    device.run(ROUNDS)
                except BaseException as exc:  # reported by the test thread
                    errors.append(exc)

            threads = [threading.Thread(target=run, args=(d,), name=d.username) for d in devices]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert not errors, errors
            # Everyone pushes what is left, then everyone pulls what the others pushed.
            deadline = time.monotonic() + SETTLE_SECONDS
            settle(devices, deadline, server)
            settle(devices, deadline, server)
        finally:
            proxy.shutdown()
            proxy.server_close()
            proxy_thread.join(5)

    try:
        stored = server_records(database_url)
        fates = Counter(fate for (_path, fate) in proxy.fates.elements())
        pushes = Counter(fate for (path, fate) in proxy.fates.elements() if path.endswith("/sync/push"))
        requests = sum(fates.values())
        summary = (f"{requests} requests: {dict(fates)}; pushes {dict(pushes)}; "
                   f"syncs {sum(d.syncs for d in devices)} ({sum(d.failed_syncs for d in devices)} failed); "
                   f"{sum(len(d.created) for d in devices)} records created; "
                   f"{time.monotonic() - started:.1f} s")
        print(summary)
        # The network really was that bad, both ways, for pushes too.
        assert 0.2 < (fates["before"] + fates["after"]) / requests < 0.4, summary
        assert pushes["before"] >= 5 and pushes["after"] >= 5, summary
        # Failures reached synchronize too. Since a sync retries a cut page or push within itself (issue 20), most
        # of them end inside the sync; some still end one.
        assert sum(d.failed_syncs for d in devices) >= 1, summary

        for device in devices:
            assert device.store.counts().unsynced == 0, device.username
            assert device.store.rejections() == [], device.username

        # Each record once: one row per id, unique feed positions, nothing the devices did not create.
        assert stored["duplicated"] == []
        assert len(set(stored["positions"])) == len(stored["positions"])
        # Every stored position was handed out; on PostgreSQL a killed or failed writer may have taken more.
        if database_url.startswith("sqlite"):
            assert stored["feed"] == max(stored["positions"])
        assert stored["feed"] >= max(stored["positions"])
        created = [key for device in devices for key in device.created]
        assert len(set(created)) == len(created)
        for kind, demo_count in (("event", 4), ("case_action", 0)):
            mine = {rid for k, rid in created if k == kind}
            on_server = {rid for rid, r in stored["records"].items() if r["kind"] == kind}
            assert mine <= on_server
            assert len(on_server) == len(mine) + demo_count, kind

        # Every device holds exactly the server's state of its buckets: no write lost, none doubled.
        for device in devices:
            assert compare_with_server(device.store, stored, device.buckets) == [], device.username
    finally:
        for device in devices:
            device.close()

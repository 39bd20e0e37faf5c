"""Test doubles for the sync client: an in-memory server, a flaky wrapper, a manual clock.

`FakeServer` implements the wire contract of design.md (push, pull, log-in)
with shared.merge, as the Flask server does, but in memory and without
authorization beyond an optional set of buckets. It speaks the `Transport`
protocol directly and raises the transport's typed errors, so sync tests run
without HTTP. `serve_http` puts it behind a real HTTP server for the tests of
HttpTransport against the whole protocol.
"""

from __future__ import annotations

import gzip
import json
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable, Mapping, Sequence

from shared.hlc import Clock, ClockDriftError, format_ms
from shared.merge import merge_record
from shared.records import KINDS, Change, ValidationError, dump_change, load_change
from mobile.transport import ClockSkew, HttpError, TransportError, Unauthorized

SERVER_NODE = "5e7e7e7e7e7e7e7e"
T0 = 1_795_000_000_000  # 2026-11-18, a fixed instant every test clock starts from
DAY_MS = 86_400_000


class ManualClock:
    """A physical clock the test moves: call it for Unix milliseconds."""

    def __init__(self, ms: int = T0):
        self.ms = ms

    def __call__(self) -> int:
        return self.ms

    def advance(self, ms: int = 1) -> int:
        """Move forward (or back, with a negative ms) and return the new time."""
        self.ms += ms
        return self.ms


class FakeServer:
    """The sync contract in memory: per-field merge, one feed position per record, paged pull."""

    def __init__(
        self,
        physical: Callable[[], int] | None = None,
        *,
        max_drift_ms: int = 5 * 60_000,
        buckets: Iterable[str] | None = None,
        reject: Callable[[Change], str | None] | None = None,
        user: Mapping[str, Any] | None = None,
    ):
        self.physical = physical or ManualClock()
        self.clock = Clock(SERVER_NODE, self.physical, max_drift_ms=max_drift_ms)
        self.records: dict[tuple[str, str], dict[str, tuple[Any, str]]] = {}
        self.buckets_of: dict[tuple[str, str], str] = {}
        self.feed: dict[tuple[str, str], int] = {}  # record -> its latest feed position
        self.position = 0
        self.allowed = set(buckets) if buckets is not None else None  # None: every bucket
        self.reject = reject
        self.revoked = False
        self.calls: list[tuple[str, Any]] = []
        self.lock = threading.Lock()
        self.user = dict(user) if user is not None else None  # None: {"id": "u-1", "name": <username>}
        self.photos: dict[str, bytes] = {}  # sha256 -> the bytes held (complete once they hash to the name)

    # --- the contract ---------------------------------------------------------------------------

    def login(self, username: str, password: str, device_name: str, node: str) -> dict[str, Any]:
        """Any password but "wrong" logs in."""
        self.calls.append(("login", {"username": username, "node": node}))
        if password == "wrong":
            raise Unauthorized(401, "unauthorized", "wrong user name or password")
        self.revoked = False
        user = self.user or {"id": "u-1", "name": username, "role": "worker"}
        return {"token": f"token-{node}", "user": dict(user), "buckets": sorted(self.allowed or [])}

    def push(self, node: str, changes: Sequence[Mapping[str, Any]], sent_at: str) -> dict[str, Any]:
        """Merge each change; one result per change; a clock-skew error stores nothing."""
        with self.lock:
            self.calls.append(("push", {"node": node, "changes": [json.loads(json.dumps(c)) for c in changes],
                                        "sent_at": sent_at}))
            if self.revoked:
                raise Unauthorized(401, "unauthorized", "this device token was revoked")
            loaded: list[Change | str] = []
            for data in changes:
                try:
                    loaded.append(load_change(json.loads(json.dumps(data))))
                except ValidationError as exc:
                    loaded.append(f"invalid: {exc.messages}")
            valid = [c for c in loaded if isinstance(c, Change)]
            if valid:
                try:
                    self.clock.update(max(c.max_hlc() for c in valid))
                except ClockDriftError as exc:
                    raise ClockSkew(exc.physical_ms, str(exc), {"server_time": format_ms(exc.physical_ms)}) from None
            results = [self._apply(data, change) for data, change in zip(changes, loaded)]
            return {"results": results, "hlc": str(self.clock.now())}

    def pull(self, cursors: Mapping[str, str], limit: int) -> dict[str, Any]:
        """One page of whole-state changes, oldest feed position first, across the allowed buckets."""
        with self.lock:
            self.calls.append(("pull", {"cursors": dict(cursors), "limit": limit}))
            if self.revoked:
                raise Unauthorized(401, "unauthorized", "this device token was revoked")
            buckets = self.allowed if self.allowed is not None else set(self.buckets_of.values()) | {"ref"}
            start = {b: int(cursors.get(b, "0")) for b in buckets}
            entries = sorted((pos, key) for key, pos in self.feed.items()
                             if self.buckets_of[key] in buckets and pos > start[self.buckets_of[key]])
            page = entries[:limit]
            new = {b: str(start[b]) for b in buckets}
            for pos, key in page:
                new[self.buckets_of[key]] = str(pos)
            changes = [dump_change(Change(key[0], key[1], self.buckets_of[key], dict(self.records[key])))
                       for _pos, key in page]
            return {"changes": json.loads(json.dumps(changes)), "cursors": new, "more": len(entries) > limit,
                    "hlc": str(self.clock.now())}

    # --- photos (tus-like, in memory) ------------------------------------------------------------

    def photos_missing(self, hashes: Sequence[str]) -> list[str]:
        """The hashes whose complete photo is not held."""
        self.calls.append(("photos_missing", list(hashes)))
        if self.revoked:
            raise Unauthorized(401, "unauthorized", "this device token was revoked")
        return [h for h in hashes if not self._complete(h)]

    def photo_offset(self, sha256: str) -> tuple[int, int | None]:
        """(bytes held, None): the fake keeps no declared length."""
        if self.revoked:
            raise Unauthorized(401, "unauthorized", "this device token was revoked")
        held = self.photos.get(sha256)
        return (len(held), None) if held is not None else (0, None)

    def photo_append(self, sha256: str, offset: int, length: int, data: bytes) -> int:
        """Append at offset (which must be the bytes held); answers the new offset."""
        self.calls.append(("photo_append", {"sha256": sha256, "offset": offset, "bytes": len(data)}))
        if self.revoked:
            raise Unauthorized(401, "unauthorized", "this device token was revoked")
        held = self.photos.get(sha256, b"")
        if offset != len(held):
            from mobile.transport import Rejected
            raise Rejected(409, "offset_mismatch", "offset mismatch", {"offset": len(held)})
        self.photos[sha256] = held + data
        return len(self.photos[sha256])

    def _complete(self, sha256: str) -> bool:
        import hashlib
        held = self.photos.get(sha256)
        return held is not None and hashlib.sha256(held).hexdigest() == sha256

    # --- helpers --------------------------------------------------------------------------------

    def _apply(self, data: Mapping[str, Any], change: Change | str) -> dict[str, Any]:
        kind, record_id = data.get("kind"), data.get("id")
        if isinstance(change, str):
            return {"kind": kind, "id": record_id, "status": "rejected", "reason": change}
        key = (change.kind, change.id)
        if self.allowed is not None and change.bucket not in self.allowed:
            return {"kind": kind, "id": record_id, "status": "rejected", "reason": f"{change.bucket} is not yours"}
        reason = self.reject(change) if self.reject else None
        if isinstance(reason, tuple):  # (reason, code), as a server that sends codes answers (issue 13)
            return {"kind": kind, "id": record_id, "status": "rejected", "reason": reason[0], "code": reason[1]}
        if reason:  # a reason alone: as an older server answers
            return {"kind": kind, "id": record_id, "status": "rejected", "reason": reason}
        spec = KINDS[change.kind]
        local = self.records.get(key)
        if local is None:
            missing = sorted(spec.required - set(change.fields))
            if missing:
                return {"kind": kind, "id": record_id, "status": "rejected",
                        "reason": f"a new record needs {', '.join(missing)}"}
        merged = merge_record(local, change.fields, append_only=spec.append_only)
        if merged.refused:
            return {"kind": kind, "id": record_id, "status": "rejected",
                    "reason": f"history cannot be changed: {', '.join(sorted(merged.refused))}"}
        if not merged.changed:
            return {"kind": kind, "id": record_id, "status": "stale"}
        self.records[key] = merged.state
        self.buckets_of[key] = spec.bucket_of({n: w[0] for n, w in merged.state.items()}) or change.bucket
        self.position += 1
        self.feed[key] = self.position
        return {"kind": kind, "id": record_id, "status": "applied"}

    def put(self, change: Change | Mapping[str, Any]) -> None:
        """Store a change as if another device had pushed it (no drift check, no authorization)."""
        if not isinstance(change, Change):
            change = Change(change["kind"], change["id"], change["bucket"],
                            {n: tuple(w) for n, w in change["fields"].items()})
        key = (change.kind, change.id)
        merged = merge_record(self.records.get(key), change.fields)
        self.records[key] = merged.state
        self.buckets_of[key] = change.bucket
        self.position += 1
        self.feed[key] = self.position

    def pushes(self) -> list[dict[str, Any]]:
        """The bodies of every push received, in order."""
        return [payload for call, payload in self.calls if call == "push"]


class FlakyTransport:
    """Fails calls before the server acts or after it acted (the answer is lost)."""

    def __init__(self, inner: Any, *, plan: Iterable[str] = (), rate: float = 0.0, seed: int = 0):
        self.inner = inner
        self.plan = list(plan)  # "ok", "before", "after"; used first, then `rate` decides
        self.rate = rate
        self.random = random.Random(seed)
        self.failures = 0

    def _mode(self) -> str:
        if self.plan:
            return self.plan.pop(0)
        roll = self.random.random()
        return "before" if roll < self.rate / 2 else "after" if roll < self.rate else "ok"

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        mode = self._mode()
        if mode == "before":
            self.failures += 1
            raise TransportError(f"{name}: connection refused (before the server acted)")
        answer = getattr(self.inner, name)(*args, **kwargs)
        if mode == "after":
            self.failures += 1
            raise TransportError(f"{name}: connection reset (after the server acted)")
        return answer

    def login(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("login", *args, **kwargs)

    def push(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("push", *args, **kwargs)

    def pull(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("pull", *args, **kwargs)


class HookedTransport:
    """Runs a hook around a push: stands in for the worker editing while the push is in flight."""

    def __init__(self, inner: Any, *, during_push: Callable[[], None] | None = None,
                 during_pull: Callable[[], None] | None = None):
        self.inner = inner
        self.during_push = during_push
        self.during_pull = during_pull

    def login(self, *args: Any, **kwargs: Any) -> Any:
        return self.inner.login(*args, **kwargs)

    def push(self, *args: Any, **kwargs: Any) -> Any:
        answer = self.inner.push(*args, **kwargs)
        if self.during_push:
            self.during_push()  # the server has acted; the answer is still on its way
        return answer

    def pull(self, *args: Any, **kwargs: Any) -> Any:
        if self.during_pull:
            self.during_pull()
        return self.inner.pull(*args, **kwargs)


# --- HTTP ---------------------------------------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    server: "_HttpServer"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = gzip.decompress(raw) if self.headers.get("Content-Encoding") == "gzip" else raw
        request = {"path": self.path, "headers": dict(self.headers), "raw": raw, "json": json.loads(body or b"null")}
        self.server.requests.append(request)
        action = self.server.respond(request)
        if action is None:
            # Drop the connection without a word: the client sees it reset.
            self.close_connection = True
            return
        status, payload, headers = action
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, respond: Callable[[dict[str, Any]], tuple[int, Any, dict[str, str]] | None]):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.respond = respond
        self.requests: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        """The base URL of the server."""
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class LocalHttpServer:
    """An HTTP server on 127.0.0.1 in a thread, answering with `respond(request)`."""

    def __init__(self, respond: Callable[[dict[str, Any]], tuple[int, Any, dict[str, str]] | None]):
        self.httpd = _HttpServer(respond)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        """The base URL, without /api/v1."""
        return self.httpd.url

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every request received, in order: path, headers, raw body, decoded JSON."""
        return self.httpd.requests

    def __enter__(self) -> "LocalHttpServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """The API's one error shape."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"error": error}


def serve_fake(fake: FakeServer) -> LocalHttpServer:
    """A FakeServer behind HTTP, mapping its typed errors to the API's error answers."""

    def respond(request: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        body = request["json"] or {}
        try:
            if request["path"] == "/api/v1/auth/device":
                return 200, fake.login(body["username"], body["password"], body["device_name"], body["node"]), {}
            if request["path"] == "/api/v1/sync/push":
                return 200, fake.push(body["node"], body["changes"], body["sent_at"]), {}
            if request["path"] == "/api/v1/sync/pull":
                return 200, fake.pull(body["cursors"], body["limit"]), {}
            return 404, error_body("not_found", request["path"]), {}
        except HttpError as exc:
            return exc.status, error_body(exc.code, exc.message, exc.details), {}

    return LocalHttpServer(respond)

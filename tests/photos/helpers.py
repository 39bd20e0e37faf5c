"""What the photo tests share: real JPEGs made with Pillow, racing threads, the API as a transport, a live server,
a cutting proxy."""

from __future__ import annotations

import hashlib
import io
import random
import socket
import threading
from typing import Any, Callable, Mapping, Sequence

from PIL import ExifTags, Image

from mobile.transport import (ClockSkew, HttpError, Rejected, TooLarge, Unauthorized, parse_server_time)

PASSWORD = "demo-pass"
LIMIT = 2 * 1024 * 1024  # GRIDPATROL_MAX_PHOTO_BYTES in these tests: 413 is cheap to reach
OCTET = "application/offset+octet-stream"


# --- images ---------------------------------------------------------------------------------------

def make_jpeg(width: int = 64, height: int = 48, *, orientation: int | None = None, taken: str | None = None,
              zone: str | None = None, gps: bool = False, make: str | None = "ACME Camera",
              noise: bool = False, quality: int = 90, seed: int = 0) -> bytes:
    """A real JPEG: left half red, right half blue (or noise), with the EXIF asked for."""
    if noise:
        image = Image.frombytes("RGB", (width, height), random.Random(seed).randbytes(width * height * 3))
    else:
        image = Image.new("RGB", (width, height), (0, 0, 255))
        image.paste((255, 0, 0), (0, 0, width // 2, height))
    exif = Image.Exif()
    if orientation:
        exif[ExifTags.Base.Orientation] = orientation
    if make:
        exif[ExifTags.Base.Make] = make
        exif[ExifTags.Base.Model] = "X100"
        exif[ExifTags.Base.Software] = "firmware 1.2"
        exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.BodySerialNumber] = "SN-123456"
    if taken:
        exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = taken
    if zone:
        exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.OffsetTimeOriginal] = zone
    if gps:
        exif.get_ifd(ExifTags.IFD.GPSInfo).update(
            {1: "N", 2: (22.0, 32.0, 35.16), 3: "E", 4: (114.0, 3.0, 28.44)})
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, exif=exif.tobytes())
    return out.getvalue()


def sha(data: bytes) -> str:
    """The SHA-256 name of some bytes."""
    return hashlib.sha256(data).hexdigest()


def reader(data: bytes):
    """A read(n) function over bytes, as a request stream is (what an upload session appends from)."""
    position = 0

    def read(n: int) -> bytes:
        nonlocal position
        piece = data[position:position + n]
        position += len(piece)
        return piece

    return read


def shard(name: str) -> str:
    """Where a photo lives under a blob store's root or prefix: ``ab/cd/<sha>``."""
    return f"{name[:2]}/{name[2:4]}/{name}"


def stored(blobs) -> list[str]:
    """Every file of a folder store or object of an S3 store, as a path under its root or prefix, sorted: the two
    backends lay them out alike (``ab/cd/<sha>``, ``uploads/...``, ``variants/...``)."""
    from server.photos.blobs import FolderBlobStore

    if isinstance(blobs, FolderBlobStore):
        return sorted(p.relative_to(blobs.root).as_posix() for p in blobs.root.rglob("*") if p.is_file())
    pages = blobs.client.get_paginator("list_objects_v2").paginate(Bucket=blobs.bucket, Prefix=blobs.prefix)
    return sorted(item["Key"][len(blobs.prefix):] for page in pages for item in page.get("Contents", []))


def uploads(blobs) -> list[str]:
    """What a blob store holds of unfinished uploads (its ``uploads/``)."""
    return [path for path in stored(blobs) if path.startswith("uploads/")]


def race(target: Callable[[], None], runners: int, timeout: float = 60) -> None:
    """Run ``target`` in ``runners`` threads that set off at the same moment, and wait for them all."""
    start = threading.Barrier(runners)

    def run() -> None:
        start.wait()
        target()

    threads = [threading.Thread(target=run) for _ in range(runners)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)


# --- the server in process ------------------------------------------------------------------------

def login(client, username: str) -> str:
    """A device token for a demo user."""
    answer = client.post("/api/v1/auth/device", json={"username": username, "password": PASSWORD,
                                                      "device_name": f"{username}'s tablet", "node": "ab" * 8})
    assert answer.status_code == 200, answer.json
    return answer.json["token"]


def bearer(token: str) -> dict[str, str]:
    """The Authorization header."""
    return {"Authorization": f"Bearer {token}"}


def upload(client, token: str, data: bytes, *, name: str | None = None, chunk: int | None = None):
    """Upload bytes with HEAD and PATCHes; answers the last PATCH's response."""
    name = name or sha(data)
    offset = 0
    head = client.head(f"/api/v1/photos/{name}", headers=bearer(token))
    if head.status_code == 200:
        offset = int(head.headers["Upload-Offset"])
    while True:
        piece = data[offset:offset + chunk] if chunk else data[offset:]
        answer = client.patch(f"/api/v1/photos/{name}", data=piece, headers={
            **bearer(token), "Content-Type": OCTET, "Upload-Offset": str(offset), "Upload-Length": str(len(data))})
        if answer.status_code != 204:
            return answer
        offset = int(answer.headers["Upload-Offset"])
        if offset >= len(data):
            return answer


def user_id(username: str) -> str:
    """A demo user's id (inside the app context)."""
    from sqlalchemy import select

    from server.db import db
    from server.models import User

    return db.session.scalar(select(User.id).where(User.username == username))


def put_record(kind: str, values: dict[str, Any], bucket: str | None = None) -> str:
    """Store a record as the server itself would; answers its id."""
    import os

    from server.sync import apply
    from shared.records import uuid7

    record_id = uuid7(1_795_000_000_000, os.urandom(10))
    results = apply.write_as_server([apply.stamp(kind, record_id, values, bucket)])
    assert results[0].status == "applied", results
    return record_id


def put_event(grid: str, photos: Sequence[str], *, reporter: str = "worker1", **extra: Any) -> str:
    """An event in the grid referring to the photos."""
    return put_record("event", {"grid": grid, "category": "fire_hazard", "description": "楼道堆物",
                                "photos": list(photos), "reporter": user_id(reporter),
                                "reported_at": "2026-11-18T08:00:00.000Z", **extra})


def put_action(event_id: str, action: str, grid: str, *, actor: str = "supervisor1", unit: str | None = None,
               photos: Sequence[str] = ()) -> str:
    """A case action on an event."""
    values: dict[str, Any] = {"event": event_id, "action": action, "actor": user_id(actor), "photos": list(photos)}
    if unit:
        values["unit"] = unit
    return put_record("case_action", values, f"grid:{grid}")


def _raise_for(response) -> None:
    """The transport's typed error for an error answer of the test client."""
    status = response.status_code
    if status < 400:
        return
    error = (response.get_json(silent=True) or {}).get("error") or {}
    code, message, details = error.get("code", "error"), error.get("message", ""), error.get("details")
    if status == 401:
        raise Unauthorized(status, code, message, details)
    if status == 409 and code == "clock_skew":
        raise ClockSkew(parse_server_time(details["server_time"]), message, details)
    if status == 413:
        raise TooLarge(status, code, message, details)
    if status < 500:
        raise Rejected(status, code, message, details)
    raise HttpError(status, code, message, details)


class AppTransport:
    """The whole wire contract (records and photos) over the Flask test client: the real server, no network."""

    def __init__(self, client, token: str | None = None):
        self.client = client
        self.token = token
        self.calls: list[tuple[str, Any]] = []
        self.appended = 0  # body bytes of every PATCH

    def _headers(self) -> dict[str, str]:
        return bearer(self.token) if self.token else {}

    def login(self, username: str, password: str, device_name: str, node: str) -> dict[str, Any]:
        answer = self.client.post("/api/v1/auth/device", json={"username": username, "password": password,
                                                               "device_name": device_name, "node": node})
        _raise_for(answer)
        self.token = answer.json["token"]
        return answer.json

    def push(self, node: str, changes: Sequence[Mapping[str, Any]], sent_at: str) -> dict[str, Any]:
        self.calls.append(("push", len(changes)))
        answer = self.client.post("/api/v1/sync/push", json={"node": node, "changes": list(changes),
                                                             "sent_at": sent_at}, headers=self._headers())
        _raise_for(answer)
        return answer.json

    def pull(self, cursors: Mapping[str, str], limit: int) -> dict[str, Any]:
        self.calls.append(("pull", limit))
        answer = self.client.post("/api/v1/sync/pull", json={"cursors": dict(cursors), "limit": limit},
                                  headers=self._headers())
        _raise_for(answer)
        return answer.json

    def photos_missing(self, hashes: Sequence[str]) -> list[str]:
        self.calls.append(("missing", len(hashes)))
        answer = self.client.post("/api/v1/photos/missing", json={"sha256": list(hashes)}, headers=self._headers())
        _raise_for(answer)
        return answer.json["missing"]

    def photo_offset(self, sha256: str) -> tuple[int, int | None]:
        self.calls.append(("head", sha256))
        answer = self.client.head(f"/api/v1/photos/{sha256}", headers=self._headers())
        if answer.status_code == 404:
            return 0, None
        _raise_for(answer)
        length = answer.headers.get("Upload-Length")
        return int(answer.headers["Upload-Offset"]), int(length) if length is not None else None

    def photo_append(self, sha256: str, offset: int, length: int, data: bytes) -> int:
        self.calls.append(("patch", (sha256, offset, len(data))))
        self.appended += len(data)
        answer = self.client.patch(f"/api/v1/photos/{sha256}", data=data, headers={
            **self._headers(), "Content-Type": OCTET, "Upload-Offset": str(offset), "Upload-Length": str(length)})
        _raise_for(answer)
        return int(answer.headers["Upload-Offset"])


# --- the server over real sockets ---------------------------------------------------------------

class LiveServer:
    """The app behind werkzeug's threaded server on 127.0.0.1, in a thread."""

    def __init__(self, app):
        from werkzeug.serving import make_server

        self.httpd = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self.httpd.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


class CuttingProxy:
    """A TCP proxy to 127.0.0.1:port that cuts the connection in use after every ``every`` bytes the client sent.

    ``sent`` counts every byte the client sent through it (headers, bodies, retries): the cost of the uploads.
    """

    def __init__(self, port: int, every: int = 256 * 1024):
        self.upstream = port
        self.every = every
        self.budget = every
        self.sent = 0
        self.cuts = 0
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.closing = False
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> "CuttingProxy":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.closing = True
        self.listener.close()
        self.thread.join(5)

    def _accept(self) -> None:
        while not self.closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            pumps = [2]  # the second pump to end closes both sockets

            def run(pump, client=client, server=server, pumps=pumps):
                try:
                    pump(client, server)
                finally:
                    with self.lock:
                        pumps[0] -= 1
                        last = pumps[0] == 0
                    if last:
                        self._cut(client, server)

            threading.Thread(target=run, args=(self._upstream,), daemon=True).start()
            threading.Thread(target=run, args=(self._downstream,), daemon=True).start()

    @staticmethod
    def _cut(*sockets: socket.socket) -> None:
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _upstream(self, client: socket.socket, server: socket.socket) -> None:
        try:
            while True:
                with self.lock:
                    want = min(65536, self.budget)
                data = client.recv(want)  # never more than the budget: the cut falls on the exact byte
                if not data:
                    server.shutdown(socket.SHUT_WR)
                    return
                server.sendall(data)
                with self.lock:
                    self.sent += len(data)
                    self.budget -= len(data)
                    cut = self.budget <= 0
                    if cut:
                        self.budget = self.every
                        self.cuts += 1
                if cut:
                    self._cut(client, server)
                    return
        except OSError:
            self._cut(client, server)

    def _downstream(self, client: socket.socket, server: socket.socket) -> None:
        try:
            while True:
                data = server.recv(65536)
                if not data:
                    client.shutdown(socket.SHUT_WR)
                    return
                client.sendall(data)
        except OSError:
            self._cut(client, server)

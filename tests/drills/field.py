"""The field drill's pieces (issue 20), shared by tests/drills/test_bad_link.py and bench/field_bench.py.

A real gunicorn server with the demo, a supervisor who writes a backlog into worker1's grid while the tablet
is away, and worker1's tablet (Store, PhotoQueue, the real HttpTransport) behind tests/drills/proxy.py's
`LinkProxy`. Photos are camera-like JPEGs of a chosen size made from noise, so they do not compress.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from mobile.photos import PhotoQueue, PreparedPhoto
from mobile.store import Store
from mobile.sync import synchronize
from mobile.transport import HttpTransport, Rejected, TransportError
from shared.hlc import format_ms
from shared.records import dump_change

from .helpers import PASSWORD

GRID = "G-0101"
WORDS = ("楼道", "电动车", "飞线充电", "消防通道", "堵塞", "垃圾", "堆放", "出租屋", "疏散", "杂物", "井盖", "破损",
         "路灯", "不亮", "占道", "经营", "噪音", "扰民", "违章", "搭建", "积水", "漏水", "东湖路", "3栋", "12号",
         "二楼", "北侧", "门口", "已劝导", "需复查", "群众反映", "夜间", "多次", "现场", "拍照", "上报")


def description(rng: random.Random, chars: int) -> str:
    """A field report of about ``chars`` characters, from the words a worker writes (it compresses as text does)."""
    parts: list[str] = []
    while sum(map(len, parts)) < chars:
        parts.append(rng.choice(WORDS) + rng.choice(("，", "", "", "。")) + str(rng.randint(1, 99)) * (rng.random() < .2))
    return "".join(parts)[:chars]


def write_backlog(server_url: str, users: dict, n: int, *, seed: int = 7, chars: int = 300) -> int:
    """supervisor1 writes ``n`` events into worker1's grid, straight to the server; answers their JSON bytes."""
    rng = random.Random(seed)
    transport = HttpTransport(server_url)
    try:
        transport.login("supervisor1", PASSWORD, "supervisor's desk", "5a5a5a5a5a5a5a5a")
        with tempfile.TemporaryDirectory(prefix="drill-desk-") as folder, \
                Store(Path(folder) / "desk.db", node="5a5a5a5a5a5a5a5a") as desk:
            size = 0
            for start in range(0, n, 250):
                changes = []
                for _ in range(start, min(n, start + 250)):
                    change = desk.create("event", {
                        "grid": GRID, "category": "garbage", "description": description(rng, chars),
                        "reporter": users["supervisor1"]["id"], "reported_at": format_ms(desk.physical_ms()),
                        "urgent": False, "micro": False, "address": f"东湖村{rng.randint(1, 200)}号"})
                    changes.append(change)
                wire = [dump_change(c) for c in changes]
                answer = transport.push(desk.node, wire, sent_at=format_ms(desk.physical_ms()))
                assert all(r["status"] == "applied" for r in answer["results"]), answer["results"][:3]
                size += sum(len(json.dumps(c, ensure_ascii=False, separators=(",", ":")).encode()) for c in wire)
            return size
    finally:
        transport.close()


def noise_jpeg(seed: int, kilobytes: int) -> bytes:
    """A JPEG of about ``kilobytes`` KB that does not compress (sensor noise)."""
    from PIL import Image

    side = max(16, int((kilobytes * 1024 / 0.96) ** 0.5))  # noise at quality 90: ~0.96 bytes a pixel
    pixels = random.Random(seed).randbytes(side * side * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), pixels).save(out, "JPEG", quality=90)
    return out.getvalue()


class RecordingTransport(HttpTransport):
    """HttpTransport that notes every photo call: (what, sha, offset, bytes, outcome, time)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.photo_log: list[tuple] = []

    def photo_offset(self, sha256: str):
        answer = super().photo_offset(sha256)
        self.photo_log.append(("head", sha256, answer[0], 0, "ok", time.monotonic()))
        return answer

    def photo_append(self, sha256: str, offset: int, length: int, data: bytes) -> int:
        try:
            held = super().photo_append(sha256, offset, length, data)
        except Rejected as exc:
            self.photo_log.append(("patch", sha256, offset, len(data), exc.code, time.monotonic()))
            raise
        except TransportError:
            self.photo_log.append(("patch", sha256, offset, len(data), "cut", time.monotonic()))
            raise
        self.photo_log.append(("patch", sha256, offset, len(data), "ok", time.monotonic()))
        return held


class Tablet:
    """worker1's tablet: a store, a photo queue and the real transport, through ``url`` (the proxy)."""

    def __init__(self, folder: Path, url: str, **transport_options: Any):
        folder.mkdir(parents=True, exist_ok=True)
        self.store = Store(folder / "tablet.db")
        self.queue = PhotoQueue(self.store, folder / "photos")
        options = {"timeout": (5.0, 30.0), "retries": 5, "backoff_factor": 0.1, "backoff_max": 2.0}
        options.update(transport_options)
        self.transport = RecordingTransport(url, **options)
        self.user: dict[str, Any] = {}

    def login(self, attempts: int = 30) -> None:
        for attempt in range(attempts):
            try:
                answer = self.transport.login("worker1", PASSWORD, "worker1's tablet", self.store.node)
                break
            except TransportError:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.2)
        self.store.save_login(self.transport.base_url, answer["token"], answer["user"], answer["buckets"])
        self.user = answer["user"]

    def capture(self, photos: list[bytes], *, urgent: bool = False, text: str = "楼道内电动车飞线充电") -> tuple[str, list[str]]:
        """An event with its photos, as the app saves one: photo files first, then the record."""
        names = []
        for data in photos:
            names.append(self.queue.add(PreparedPhoto(hashlib.sha256(data).hexdigest(), data, data[:64], 1, 1,
                                                      None, False)))
        change = self.store.create("event", {
            "grid": GRID, "category": "ebike_charging", "description": text, "photos": names, "urgent": urgent,
            "micro": False, "reporter": self.user["id"], "reported_at": format_ms(self.store.physical_ms())})
        return change.id, names

    def sync(self, **options: Any):
        return synchronize(self.store, self.transport, photos=self.queue, **options)

    def close(self) -> None:
        self.transport.close()
        self.store.close()


def server_has_record(database_url: str, record_id: str) -> bool:
    """Whether the server's store holds the record (read straight from the database)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT 1 FROM records WHERE id = :id"), {"id": record_id}).first() is not None
    finally:
        engine.dispose()


def server_has_photo(server_url: str, token: str, sha256: str) -> bool:
    """Whether the server holds the complete photo (HEAD straight to the server, not through the link)."""
    answer = requests.head(f"{server_url}/api/v1/photos/{sha256}", headers={"Authorization": f"Bearer {token}"},
                           timeout=5)
    return answer.status_code == 200 and answer.headers.get("Upload-Offset") == answer.headers.get("Upload-Length")


def photo_exactness(log: list[tuple], sizes: dict[str, int]) -> dict[str, int]:
    """From a RecordingTransport's log: bytes offered at an offset the server had passed, restarts from zero."""
    resent = restarts = mismatches = 0
    furthest: dict[str, int] = {}
    for what, sha, offset, nbytes, outcome, _t in log:
        if what != "patch":
            continue
        if outcome == "offset_mismatch":
            mismatches += 1
            resent += nbytes
        if offset == 0 and furthest.get(sha, 0) > 0:
            restarts += 1
        furthest[sha] = max(furthest.get(sha, 0), offset)
    sent = sum(n for what, _s, _o, n, _out, _t in log if what == "patch")
    return {"photo_bytes": sum(sizes.values()), "patch_body_bytes": sent, "resent_after_409": resent,
            "offset_mismatches": mismatches, "restarts_from_zero": restarts}

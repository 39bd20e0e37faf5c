"""Proof "killed mid-upload": the server process is SIGKILLed while photos are being appended, and restarted.

A tablet (Store, PhotoQueue, HttpTransport, synchronize, in this process)
uploads 30 photos of about 500 KB to gunicorn. A killer thread waits until a
PATCH is in flight, waits a random few milliseconds more, SIGKILLs gunicorn's
whole process group (master and workers: no request, write or rename gets to
finish) and starts it again, five times. The kill can land while the body
streams in, during the hash check, or between the rename and the answer.

The tablet syncs until nothing is left. Then, read from the photo store
directly (the folder, or the S3 bucket): every photo is there, hashes to its
name and decodes; no file in the store is anything else; nothing of an
upload is left behind but for a complete photo; and the tablet has let go of
every photo.
"""

from __future__ import annotations

import hashlib
import io
import random
import threading
import time

import pytest
from PIL import Image

from mobile.photos import PhotoQueue
from mobile.store import Store
from mobile.sync import synchronize
from mobile.transport import HttpTransport

from server.photos.blobs import FolderBlobStore
from tests.servers import GunicornServer

from .helpers import make_jpeg, stored, user_id

pytestmark = pytest.mark.slow

PHOTOS = 30
KILLS = 5
DEADLINE_SECONDS = 240


class Watched:
    """Passes calls through; `in_flight` is set while a photo append is on its way."""

    def __init__(self, inner: HttpTransport):
        self.inner = inner
        self.in_flight = threading.Event()

    def photo_append(self, *args, **kwargs):
        self.in_flight.set()
        try:
            return self.inner.photo_append(*args, **kwargs)
        finally:
            self.in_flight.clear()

    def __getattr__(self, name):
        return getattr(self.inner, name)


# On S3 (moto) every append costs more, and each kill mid-append leaves a lease that holds its photo up until it
# expires (LEASE_SECONDS): fewer photos and kills prove the same.
# The database plays no part in the photo store: the S3 drill runs once, on SQLite.
@pytest.mark.parametrize("database_url, photo_backend, photos, kills", [
    ("sqlite", "folder", PHOTOS, KILLS),
    pytest.param("postgresql", "folder", PHOTOS, KILLS, marks=pytest.mark.pg),
    ("sqlite", "s3", 10, 3),
], indirect=["database_url"])
def test_a_server_killed_during_uploads_keeps_no_corrupt_or_partial_photo(app, app_config, tokens, database_url,
                                                                         tmp_path, photo_backend, photos, kills):
    from server.photos.service import blob_store

    photo_dir = tmp_path / "server-photos"
    server = GunicornServer(database_url, photo_dir, tmp_path / "gunicorn.log")
    if photo_backend == "s3":  # the same bucket and prefix as the test's app
        server.env.update({name: value for name, value in app_config.items() if name.startswith(
            ("GRIDPATROL_BLOB_URL", "GRIDPATROL_S3_"))})
    blobs = FolderBlobStore(photo_dir) if photo_backend == "folder" else blob_store()
    server.start()
    killed_mid_append = 0
    stop = threading.Event()

    def killer() -> None:
        nonlocal killed_mid_append
        rng = random.Random(7)
        while server.kills < kills and not stop.is_set():
            if not transport.in_flight.wait(0.5):
                continue
            time.sleep(rng.uniform(0, 0.015))
            killed_mid_append += transport.in_flight.is_set()
            server.kill()
            time.sleep(rng.uniform(0.1, 0.5))
            server.start()

    try:
        with Store(tmp_path / "tablet.db") as store, \
                HttpTransport(server.url, tokens["worker1"], timeout=(2, 15), retries=8,
                              backoff_factor=0.2) as http:
            transport = Watched(http)
            queue = PhotoQueue(store, tmp_path / "tablet-photos")
            names = []
            for n in range(photos):
                name = queue.capture(make_jpeg(1000, 750, noise=True, quality=92, seed=100 + n))
                store.create("event", {"grid": "G-0101", "category": "fire_hazard", "description": f"照片 {n}",
                                       "photos": [name], "reporter": user_id("worker1"),
                                       "reported_at": "2026-11-18T08:00:00.000Z"})
                names.append(name)
            thread = threading.Thread(target=killer, daemon=True)
            thread.start()
            deadline = time.monotonic() + DEADLINE_SECONDS
            syncs = 0
            while True:
                report = synchronize(store, transport, photos=queue)
                syncs += 1
                done = report.ok and report.photos is not None and not report.photos.failed \
                    and not queue.to_upload() and not any(queue.path(name).exists() for name in names)
                if done and server.kills >= kills:
                    break
                assert time.monotonic() < deadline, f"unfinished after {syncs} syncs: {report}"
                if done:  # everything went up before the killer was through: capture more, go on
                    extra = queue.capture(make_jpeg(1000, 750, noise=True, quality=92, seed=1000 + syncs))
                    store.create("event", {"grid": "G-0101", "category": "fire_hazard", "description": "more",
                                           "photos": [extra], "reporter": user_id("worker1"),
                                           "reported_at": "2026-11-18T08:00:00.000Z"})
                    names.append(extra)
            stop.set()
            thread.join(60)
    finally:
        stop.set()
        server.stop()

    print(f"\n{len(names)} photos, {server.kills} kills ({killed_mid_append} with an append in flight), "
          f"{syncs} syncs")
    assert server.kills >= kills and killed_mid_append >= 1, (server.kills, killed_mid_append)
    # Every photo the tablet let go of is on the server, whole.
    for name in names:
        assert blobs.has(name), f"{name} is missing"
        data = blobs.read(name)
        assert hashlib.sha256(data).hexdigest() == name
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    # No photo in the store is anything but a verified photo, and no upload is left half-done. On S3 the one
    # leftover allowed is that of a complete photo: a kill between its PUT and the clean-up, which nobody comes
    # back to (the folder's rename and unlink leave no such window worth the name), and the empty object with which
    # a new worker checks the store's conditional writes, when the kill comes between its PUT and its DELETE; a
    # lifecycle rule on the bucket removes both (docs/operations.md).
    for path in stored(blobs):
        parts = path.split("/")
        if parts[0] == "variants":
            continue
        if parts[0] == "uploads":
            assert photo_backend == "s3", f"{path}: an upload left half-done"
            if len(parts) == 2 and parts[1].startswith("probe-"):
                continue  # a new worker's check of conditional writes, killed between its PUT and DELETE
            assert blobs.has(parts[-2]), f"{path}: an upload left half-done"
            continue
        assert hashlib.sha256(blobs.read(parts[-1])).hexdigest() == parts[-1], f"{path} is corrupt"

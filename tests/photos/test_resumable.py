"""Proof "no photo starts over": 50 photos through a connection that is cut every 256 KiB, into either photo store.

The tablet's real HTTP transport talks to the real app (werkzeug's threaded
server) through a TCP proxy that counts every byte the tablet sends (request
lines, headers, bodies, retries) and cuts the connection in use each time
another 256 KiB has passed, mid-header or mid-body wherever it falls. All 50
photos must arrive intact, and the bytes sent must stay within 1.2x the
photos' bytes: a photo that started over after a cut would cost its bytes
twice.
"""

from __future__ import annotations

import pytest

from mobile.photos import PhotoQueue, upload_photos
from mobile.store import Store
from mobile.sync import synchronize
from mobile.transport import HttpTransport

from .helpers import CuttingProxy, LiveServer, make_jpeg, sha, uploads, user_id

PHOTOS = 50
CUT_EVERY = 256 * 1024


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the store plays no part in the bytes
# On S3 (moto, in Python, over HTTP: each byte crosses three more sockets) fewer photos prove the same.
@pytest.mark.parametrize("photo_backend, photos", [("folder", PHOTOS), pytest.param("s3", 12, marks=pytest.mark.slow)])
def test_fifty_photos_through_a_connection_cut_every_256_kib_arrive_whole_and_none_starts_over(
        app, tokens, tmp_path, photos):
    from server.photos.service import blob_store

    with Store(tmp_path / "tablet.db") as store:
        queue = PhotoQueue(store, tmp_path / "tablet-photos")
        names = []
        for n in range(photos):
            # Noise compresses badly: each photo is about 500 KB, as a 1920 px photo is, so most cross a cut.
            name = queue.capture(make_jpeg(1000, 750, noise=True, quality=92, seed=n))
            store.create("event", {"grid": "G-0101", "category": "fire_hazard", "description": f"照片 {n}",
                                   "photos": [name], "reporter": user_id("worker1"),
                                   "reported_at": "2026-11-18T08:00:00.000Z"})
            names.append(name)
        photo_bytes = sum(queue.get(name).bytes for name in names)
        assert photo_bytes > 1.2 * photos * CUT_EVERY, "enough bytes for a cut in most photos"

        with LiveServer(app) as server, CuttingProxy(server.port, every=CUT_EVERY) as proxy, \
                HttpTransport(proxy.url, tokens["worker1"], backoff_factor=0, timeout=(5, 30)) as transport:
            result = upload_photos(queue, transport, sleep=lambda seconds: None)
            sent, cuts = proxy.sent, proxy.cuts

        assert not result.failed and result.error is None, result
        assert result.uploaded == photos and result.bytes_done == result.bytes_total == photo_bytes
        assert cuts >= photo_bytes // CUT_EVERY, "the connection was cut every 256 KiB"
        for name in names:
            data = blob_store().read(name)
            assert sha(data) == name
        assert not uploads(blob_store()), "no upload left over"
        ratio = sent / photo_bytes
        print(f"\n{photos} photos, {photo_bytes} bytes, {cuts} cuts, {sent} bytes sent: {ratio:.3f}x")
        assert ratio <= 1.2

        # The records were never pushed: every photo waits on the tablet until they are.
        assert all(queue.path(name).exists() for name in names)
        with LiveServer(app) as server, HttpTransport(server.url, tokens["worker1"]) as transport:
            report = synchronize(store, transport, photos=queue)
        assert report.ok and report.photos.released == photos and report.photos.uploaded == 0
        assert not any(queue.path(name).exists() for name in names)

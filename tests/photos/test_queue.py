"""The tablet's photo queue against the real server (in process): what is uploaded, resumed, kept and released."""

from __future__ import annotations

import pytest

from mobile.photos import PhotoQueue, PreparedPhoto, upload_photos
from mobile.store import Store
from mobile.sync import synchronize
from mobile.transport import TransportError, Unauthorized

from .helpers import AppTransport, bearer, make_jpeg, sha, user_id

OCTET = "application/offset+octet-stream"


@pytest.fixture
def device(tmp_path, tokens, client):
    """worker1's tablet: a store, a photo queue and a transport to the app."""
    with Store(tmp_path / "tablet.db") as store:
        yield store, PhotoQueue(store, tmp_path / "tablet-photos"), AppTransport(client, tokens["worker1"])


def event(store: Store, photos: list[str], grid: str = "G-0101"):
    return store.create("event", {"grid": grid, "category": "fire_hazard", "description": "楼道堆物",
                                  "photos": photos, "reporter": user_id("worker1"),
                                  "reported_at": "2026-11-18T08:00:00.000Z"})


def server_holds(name: str) -> bytes | None:
    from server.photos.service import blob_store

    return blob_store().read(name) if blob_store().has(name) else None


def test_a_capture_is_uploaded_by_sync_then_freed_from_the_tablet(device):
    store, queue, transport = device
    name = queue.capture(make_jpeg(2400, 1800, noise=True, quality=60))
    assert queue.path(name).exists() and queue.thumbnail_path(name).exists(), "kept before the record is written"
    event(store, [name])
    seen: list[tuple[str, int, int | None]] = []
    report = synchronize(store, transport, lambda *p: seen.append(p), photos=queue)
    assert report.ok, report.error
    assert report.photos.uploaded == 1 and report.photos.released == 1 and not report.photos.failed
    data = server_holds(name)
    assert data is not None and sha(data) == name
    assert not queue.path(name).exists(), "confirmed and every record synced: the photo leaves the tablet"
    assert queue.thumbnail_path(name).exists(), "the thumbnail stays for the lists"
    assert queue.get(name).confirmed and not queue.get(name).local
    photos = [(done, total) for phase, done, total in seen if phase == "photos"]
    assert photos[0] == (0, len(data)) and photos[-1] == (len(data), len(data))
    assert [d for d, _ in photos] == sorted(d for d, _ in photos)
    phases = [phase for phase, *_ in seen]
    # Records first, both ways (issue 20: queued photos never hold back a dispatch coming down).
    assert phases.index("pull") > phases.index("push") and phases.index("photos") > phases.index("pull")


def test_a_photo_stays_while_a_record_that_refers_to_it_has_not_synced(device):
    store, queue, transport = device
    name = queue.capture(make_jpeg(800, 600, noise=True))
    event(store, [name])
    result = upload_photos(queue, transport)  # before the push: the server holds the photo, not the record
    assert result.uploaded == 1 and result.released == 0
    assert queue.get(name).confirmed and queue.path(name).exists()
    assert synchronize(store, transport, photos=queue).ok
    assert not queue.path(name).exists()


def test_a_photo_stays_while_a_rejected_change_refers_to_it(device):
    store, queue, transport = device
    name = queue.capture(make_jpeg(800, 600, noise=True))
    event(store, [name], grid="G-0201")  # not worker1's grid: the server rejects the record
    report = synchronize(store, transport, photos=queue)
    assert report.ok and len(report.rejected) == 1
    assert queue.get(name).confirmed, "the record is still on the tablet, so its photo went up"
    assert queue.path(name).exists(), "the worker may still want the evidence of a rejected record"
    store.dismiss_rejection(report.rejected[0].seq)
    assert queue.release() == 1 and not queue.path(name).exists()


class CutMidBody:
    """Delivers the first append only in part (the server keeps what arrived), then drops the connection."""

    def __init__(self, inner: AppTransport, keep: int):
        self.inner, self.keep, self.cut = inner, keep, False

    def photo_append(self, sha256, offset, length, data):
        if not self.cut:
            self.cut = True
            self.inner.photo_append(sha256, offset, length, data[:self.keep])
            raise TransportError("connection reset by peer")
        return self.inner.photo_append(sha256, offset, length, data)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_an_upload_resumes_from_the_bytes_the_server_holds(device):
    store, queue, transport = device
    name = queue.capture(make_jpeg(1200, 900, noise=True))
    data = queue.path(name).read_bytes()
    event(store, [name])
    first = upload_photos(queue, CutMidBody(transport, keep=len(data) // 3), max_failures=0)
    assert name in first.failed and queue.get(name).attempted
    assert transport.appended == len(data) // 3
    second = upload_photos(queue, transport)  # the next sync
    assert second.uploaded == 1 and server_holds(name) == data
    patches = [c[1] for c in transport.calls if c[0] == "patch"]
    assert patches[0][1] == 0 and patches[1][1] == len(data) // 3, "the second sync resumed where the server was"
    assert ("head", name) in transport.calls
    assert transport.appended == len(data), "no byte the server held was sent again"


def test_a_photo_never_begun_goes_up_without_asking_first(device):
    store, queue, transport = device
    name = queue.capture(make_jpeg(640, 480, noise=True))
    event(store, [name])
    assert upload_photos(queue, transport).uploaded == 1
    assert [c[0] for c in transport.calls] == ["missing", "patch"], "one round trip per photo"


def test_a_photo_the_server_already_holds_is_confirmed_without_a_byte_sent(device, client, tokens):
    store, queue, transport = device
    name = queue.capture(make_jpeg(640, 480, noise=True))
    data = queue.path(name).read_bytes()
    client.patch(f"/api/v1/photos/{name}", data=data, headers={
        **bearer(tokens["worker1"]), "Content-Type": OCTET, "Upload-Offset": "0", "Upload-Length": str(len(data))})
    event(store, [name])
    result = upload_photos(queue, transport)
    assert (result.confirmed, result.uploaded, transport.appended) == (1, 0, 0)


def test_a_photo_the_server_refuses_is_reported_kept_and_never_holds_back_records(device):
    store, queue, transport = device
    bad_bytes = b"\xff\xd8\xff this is no JPEG " * 100
    bad = queue.add(PreparedPhoto(sha(bad_bytes), bad_bytes, make_jpeg(), 1, 1, None, False))
    good = queue.capture(make_jpeg(640, 480, noise=True))
    event(store, [bad, good])
    report = synchronize(store, transport, photos=queue)
    assert report.ok and report.pushed == 1 and report.pages >= 1, "records pushed and pulled all the same"
    assert set(report.photos.failed) == {bad} and "not a JPEG" in report.photos.failed[bad]
    assert report.photos.uploaded == 1 and server_holds(good) is not None
    assert queue.get(bad).refused and queue.path(bad).exists() and "not a JPEG" in queue.get(bad).last_error
    before = len(transport.calls)
    assert synchronize(store, transport, photos=queue).ok
    assert not any(c[0] == "patch" for c in transport.calls[before:]), "a refused photo is not sent again"
    assert str(queue.receipt([bad, good])) == "1 of 2 photos received"


class Broken:
    """A transport whose photo calls fail in a given way; records go through."""

    def __init__(self, inner: AppTransport, failure: Exception, *, call: str = "photo_append"):
        self.inner, self.failure, self.call = inner, failure, call

    def __getattr__(self, name):
        if name == self.call:
            def fail(*args, **kwargs):
                raise self.failure
            return fail
        return getattr(self.inner, name)


def test_a_network_that_fails_during_photos_still_lets_records_sync(device):
    store, queue, transport = device
    name = queue.capture(make_jpeg(640, 480, noise=True))
    event(store, [name])
    broken = Broken(transport, TransportError("connection reset by peer"))
    from mobile import photos as photos_module

    result = photos_module.upload_photos(queue, broken, sleep=lambda s: None)
    assert result.error and name in result.failed
    report = synchronize(store, broken, photos=queue)
    assert report.pushed == 1 and report.pages >= 1 and report.ok
    assert report.photos.failed and queue.path(name).exists() and not queue.get(name).confirmed
    assert synchronize(store, transport, photos=queue).photos.uploaded == 1, "the next sync finishes the job"


def test_a_401_during_photos_stops_the_sync_and_touches_nothing(device):
    store, queue, transport = device
    name = queue.capture(make_jpeg(640, 480, noise=True))
    event(store, [name])
    report = synchronize(store, Broken(transport, Unauthorized(401, "unauthorized", "revoked"),
                                       call="photos_missing"), photos=queue)
    assert report.needs_login and report.phases["pull"] == "done" and report.phases["photos"] == "failed"
    assert queue.get(name) == queue.get(name).__class__(name, queue.get(name).bytes, queue.get(name).added_at,
                                                        False, True, 0, None, False)
    assert queue.path(name).exists()


def test_the_receipt_counts_what_the_server_confirmed(device):
    store, queue, transport = device
    first, second = (queue.capture(make_jpeg(320, 240, seed=s, noise=True)) for s in (1, 2))
    record = event(store, [first, second, "f" * 64])
    assert str(queue.receipt([first, second, "f" * 64])) == "0 of 3 photos received"
    synchronize(store, transport, photos=queue)
    receipt = queue.receipt(store.get("event", record.id).values["photos"])
    assert (receipt.held, receipt.total, receipt.unknown) == (2, 3, 1)
    assert str(receipt) == "2 of 3 photos received"


def test_photos_no_record_refers_to_are_kept_until_discarded_or_pruned(device):
    store, queue, transport = device
    draft = queue.capture(make_jpeg(320, 240, seed=1, noise=True))
    kept = queue.capture(make_jpeg(320, 240, seed=2, noise=True))
    event(store, [kept])
    assert upload_photos(queue, transport).uploaded == 1, "a draft's photo is not uploaded"
    assert queue.discard(kept) is False, "a record refers to it"
    assert queue.prune_orphans(older_than_ms=3_600_000) == 0, "too recent"
    assert queue.prune_orphans(older_than_ms=-1) == 1
    assert queue.get(draft) is None and not queue.path(draft).exists() and queue.get(kept) is not None

"""The S3 photo store (server/photos/s3.py) over HTTP against moto's server: an upload's state lives in the bucket
alone, so any app server resumes any upload; the lease and the conditional parts keep two servers from writing one
photo at once; the settings are checked at start-up; and the photo API works end to end on it (a cut upload
resumed on another app server, the download, the thumbnail)."""

from __future__ import annotations

import io
import threading
import time

import pytest
import requests
from PIL import Image

from server.photos.blobs import BlobError, OffsetMismatch, UploadLocked

from .helpers import OCTET, CuttingProxy, LiveServer, bearer, make_jpeg, put_event, reader, sha, shard, stored


def server(s3_settings, **options):
    """A store as one app server has it: its own boto3 client, made from the settings."""
    from server.photos.s3 import S3BlobStore

    store = S3BlobStore.from_settings(s3_settings)
    for name, value in options.items():
        setattr(store, name, value)
    return store


# --- the state of an upload is in the bucket -------------------------------------------------------

def test_an_upload_begun_on_one_server_resumes_on_another_from_the_parts_in_the_bucket(s3_settings):
    one, other = server(s3_settings), server(s3_settings)
    data = make_jpeg(noise=True, width=200, height=150)
    name = sha(data)
    with one.upload(name) as session:
        session.declare(len(data))
        session.append(reader(data[:1000]), len(data))
    assert stored(one) == [f"uploads/{shard(name)}/length-{len(data)}", f"uploads/{shard(name)}/part-000000000000"]
    status = other.status(name)
    assert (status.offset, status.length, status.complete) == (1000, len(data), False)
    with other.upload(name) as session:  # another server (or this one, restarted): nothing but the bucket
        assert (session.offset, session.length) == (1000, len(data))
        session.append(reader(data[1000:3000]), len(data) - 1000)
    with one.upload(name) as session:
        assert session.offset == 3000
        session.append(reader(data[3000:]), len(data) - 3000)
        session.finish()
    assert other.read(name) == data and stored(other) == [shard(name)]


def test_a_long_append_writes_a_part_every_part_bytes_and_finish_reads_them_in_order(s3_settings):
    store = server(s3_settings, part_bytes=1000)
    data = make_jpeg(noise=True, width=60, height=60)
    name = sha(data)
    read = reader(data[:2500])

    def cut_after_2500(n: int) -> bytes:
        piece = read(min(n, 700))
        if not piece:
            raise ConnectionResetError("the client went away")
        return piece

    with store.upload(name) as session:
        session.declare(len(data))
        with pytest.raises(ConnectionResetError):
            session.append(cut_after_2500, len(data))
    parts = [path.rsplit("/", 1)[1] for path in stored(store) if "/part-" in path]
    assert parts == ["part-000000000000", "part-000000001400"]  # 1400 bytes (two reads), then 1100
    with store.upload(name) as session:
        assert session.offset == 2500
        session.append(reader(data[2500:]), len(data) - 2500)
        session.finish()
    assert store.read(name) == data and stored(store) == [shard(name)]


def test_a_server_killed_after_the_photo_was_put_leaves_leftovers_the_next_session_clears(s3_settings):
    store = server(s3_settings)
    data = make_jpeg()
    name = sha(data)
    with store.upload(name) as session:
        session.declare(len(data))
        session.append(reader(data[:10]), len(data))
    store.client.put_object(Bucket=store.bucket, Key=store.key(name), Body=data)  # the PUT, then the kill
    with store.upload(name) as session:
        assert session.complete and session.offset == len(data)
    assert stored(store) == [shard(name)]


# --- one writer per hash, across servers -----------------------------------------------------------

def test_a_lease_left_by_a_dead_server_holds_the_photo_up_only_until_it_expires(s3_settings):
    from server.photos.s3 import _Lease

    one, other = server(s3_settings, lease_seconds=1.0), server(s3_settings, lease_seconds=1.0)
    name = sha(b"photo")
    _Lease(one, one.upload_prefix(name) + "lock").acquire(1)  # taken, never released: its server died
    with pytest.raises(UploadLocked):
        with other.upload(name, wait_seconds=0.1):
            pass
    with other.upload(name, wait_seconds=10) as session:  # one second later, by the store's clock
        session.declare(5)
        session.append(reader(b"photo"), 5)
        session.finish()
    assert other.read(name) == b"photo" and stored(other) == [shard(name)]


def test_two_servers_that_both_think_they_hold_the_lease_cannot_both_write_at_one_offset(s3_settings):
    """A lease lost (a holder stalled past it): the conditional part lets one append through, never both."""
    one, other = server(s3_settings), server(s3_settings)
    data = make_jpeg(noise=True, width=100, height=100)
    name = sha(data)
    lock = one.upload_prefix(name) + "lock"
    with one.upload(name) as first:
        first.declare(len(data))
        one.client.delete_object(Bucket=one.bucket, Key=lock)  # as if the lease had expired
        with other.upload(name, wait_seconds=1) as second:
            second.declare(len(data))
            assert second.append(reader(data[:500]), len(data)) == 500
            with pytest.raises(OffsetMismatch) as refused:
                first.append(reader(b"\0" * 300), len(data))  # wrong bytes at the same offset: dropped
            assert (refused.value.held, refused.value.given) == (500, 0)
        assert first.offset == 500
    assert other.status(name).offset == 500
    with one.upload(name) as session:
        session.append(reader(data[500:]), len(data) - 500)
        session.finish()
    assert one.read(name) == data


def test_a_part_already_there_with_the_same_bytes_is_as_good_as_written(s3_settings):
    """boto3 retries a PUT whose answer was lost: the retry's 412 must not turn bytes kept into a conflict."""
    one, other = server(s3_settings), server(s3_settings)
    data = make_jpeg()
    name = sha(data)
    with one.upload(name) as first:
        first.declare(len(data))
        one.client.delete_object(Bucket=one.bucket, Key=one.upload_prefix(name) + "lock")
        with other.upload(name, wait_seconds=1) as second:
            assert second.append(reader(data[:100]), len(data)) == 100
        assert first.append(reader(data[:100]), len(data)) == 100  # the same bytes at the same offset
        first.append(reader(data[100:]), len(data) - 100)
        first.finish()
    assert one.read(name) == data


def test_a_lease_whose_create_was_answered_412_on_a_retry_is_held(s3_settings):
    from server.photos.s3 import _Lease

    store = server(s3_settings)
    lease = _Lease(store, store.upload_prefix(sha(b"x")) + "lock")
    store.client.put_object(Bucket=store.bucket, Key=lease.key, Body=lease.token)  # the first try, answer lost
    lease.acquire(0)  # no wait for a lease that is its own
    lease.release()
    assert stored(store) == []


def test_a_session_whose_lease_was_taken_over_leaves_the_new_holders_lease_alone(s3_settings):
    one, other = server(s3_settings), server(s3_settings)
    name = sha(b"leases")
    lock = f"uploads/{shard(name)}/lock"
    first = one.upload(name)
    first.__enter__()
    one.client.delete_object(Bucket=one.bucket, Key=one.prefix + lock)  # as if the lease had expired
    second = other.upload(name, wait_seconds=1)
    second.__enter__()
    first.__exit__(None, None, None)
    assert lock in stored(one), "the first session's end did not delete the second's lease"
    second.__exit__(None, None, None)
    assert lock not in stored(one)


def test_head_waits_for_an_append_in_progress_before_it_answers(s3_settings):
    """Right after a cut the cut request may still be writing what arrived: HEAD's offset waits for it."""
    one, other = server(s3_settings), server(s3_settings)
    data = make_jpeg(noise=True, width=100, height=100)
    name = sha(data)
    holding = threading.Event()

    def slow_append() -> None:
        with one.upload(name) as session:
            session.declare(len(data))
            holding.set()
            pieces = iter([data[:300], data[300:700]])

            def read(n: int) -> bytes:
                time.sleep(0.3)
                return next(pieces, b"")

            session.append(read, len(data))

    writer = threading.Thread(target=slow_append)
    writer.start()
    try:
        assert holding.wait(10)
        assert other.status(name) is None, "nothing written yet"
        assert other.status(name, settle_seconds=10).offset == 700
    finally:
        writer.join(10)


def test_a_store_that_ignores_conditional_writes_is_refused(s3_settings):
    store = server(s3_settings)
    put_object = store.client.put_object

    def unconditional(**arguments):
        arguments.pop("IfNoneMatch", None)
        return put_object(**arguments)

    store.client.put_object = unconditional
    with pytest.raises(BlobError, match="If-None-Match"):
        with store.upload(sha(b"x")):
            pass
    assert stored(store) == []


# --- settings ------------------------------------------------------------------------------------------

# What an app needs to start without touching a database or writing a key (start-up errors come first).
BARE_APP = {"SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "test", "GRIDPATROL_ID_KEY": "5e" * 64}


@pytest.mark.parametrize("settings, named", [
    ({"GRIDPATROL_BLOB_URL": "https://bucket.example/photos"}, "GRIDPATROL_BLOB_URL"),
    ({"GRIDPATROL_BLOB_URL": "s3://Bad_Bucket"}, "GRIDPATROL_BLOB_URL"),
    ({"GRIDPATROL_BLOB_URL": "s3://photos/../etc"}, "GRIDPATROL_BLOB_URL"),
    ({"GRIDPATROL_BLOB_URL": "s3://photos", "GRIDPATROL_S3_ENDPOINT_URL": "minio:9000"}, "GRIDPATROL_S3_ENDPOINT_URL"),
    ({"GRIDPATROL_BLOB_URL": "s3://photos", "GRIDPATROL_S3_ACCESS_KEY_ID": "key"}, "GRIDPATROL_S3_SECRET_ACCESS_KEY"),
    ({"GRIDPATROL_BLOB_URL": "s3://photos", "GRIDPATROL_S3_ADDRESSING_STYLE": "dns"}, "GRIDPATROL_S3_ADDRESSING_STYLE"),
], ids=["not-s3", "bucket", "prefix", "endpoint", "half-a-key", "style"])
def test_wrong_store_settings_stop_start_up_naming_the_setting(settings, named):
    from server import create_app

    with pytest.raises(RuntimeError, match=named):
        create_app({**BARE_APP, **settings})


def test_an_s3_store_without_boto3_stops_start_up_saying_what_to_install(monkeypatch):
    import importlib.util

    from server import create_app

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *rest: None if name == "boto3" else
                        find_spec(name, *rest))
    with pytest.raises(RuntimeError, match=r"gridpatrol\[s3\]"):
        create_app({**BARE_APP, "GRIDPATROL_BLOB_URL": "s3://photos"})


def test_the_settings_of_an_s3_store_are_read_from_the_environment(monkeypatch):
    from server.config import settings

    monkeypatch.setenv("GRIDPATROL_BLOB_URL", "s3://city-photos/gridpatrol/prod")
    monkeypatch.setenv("GRIDPATROL_S3_ENDPOINT_URL", "https://minio.example:9000")
    s3 = settings({"SECRET_KEY": "test"})["GRIDPATROL_S3"]
    assert (s3.bucket, s3.prefix, s3.endpoint_url, s3.addressing_style, s3.access_key_id) == (
        "city-photos", "gridpatrol/prod/", "https://minio.example:9000", "path", None)
    monkeypatch.delenv("GRIDPATROL_BLOB_URL")
    assert settings({"SECRET_KEY": "test"})["GRIDPATROL_S3"] is None, "unset: the folder"


# --- the photo API on S3, on two app servers ----------------------------------------------------------

@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the database plays no part in the bytes
@pytest.mark.parametrize("photo_backend", ["s3"])
def test_a_photo_cut_on_one_app_server_resumes_on_another_and_is_served_with_its_thumbnail(
        app, app_config, tokens, tmp_path):
    from server import create_app
    from server.db import db
    from server.photos.service import blob_store

    other_app = create_app(app_config)  # a second app server: the same database and bucket, nothing else shared
    data = make_jpeg(800, 600, noise=True, quality=92)
    name = sha(data)
    path = f"/api/v1/photos/{name}"
    headers = {**bearer(tokens["worker1"]), "Content-Type": OCTET, "Upload-Length": str(len(data))}
    try:
        with LiveServer(app) as one, LiveServer(other_app) as other:
            with CuttingProxy(one.port, every=64 * 1024) as proxy, pytest.raises(requests.ConnectionError):
                requests.patch(proxy.url + path, data=data, headers={**headers, "Upload-Offset": "0"}, timeout=30)
            # The cut request may not even have begun its session yet (the bytes wait in the socket): until its
            # part is in the bucket there is nothing to resume. (HEAD's wait for a session under way is tested
            # above, with the store.)
            deadline = time.monotonic() + 30
            while not any(key.startswith("uploads/") and "/part-" in key for key in stored(blob_store())):
                assert time.monotonic() < deadline, "the cut request kept nothing"
                time.sleep(0.05)
            head = requests.head(other.url + path, headers=bearer(tokens["worker1"]), timeout=30)
            held = int(head.headers["Upload-Offset"])
            assert head.status_code == 200 and 0 < held < len(data), head.headers
            assert head.headers["Upload-Length"] == str(len(data))
            rest = requests.patch(other.url + path, data=data[held:], headers={**headers, "Upload-Offset": str(held)},
                                  timeout=30)
            assert rest.status_code == 204 and rest.headers["Upload-Offset"] == str(len(data))

            put_event("G-0101", [name])
            photo = requests.get(one.url + path, headers=bearer(tokens["worker1"]), timeout=30)
            assert photo.status_code == 200 and photo.content == data
            assert photo.headers["Content-Type"] == "image/jpeg" and photo.headers["ETag"] == f'"{name}"'
            thumb = requests.get(other.url + path + "/thumb", headers=bearer(tokens["worker1"]), timeout=30)
            assert thumb.status_code == 200 and thumb.headers["Content-Type"] == "image/jpeg"
            assert Image.open(io.BytesIO(thumb.content)).size == (320, 240)
            assert requests.get(one.url + path + "/thumb", headers=bearer(tokens["worker1"]),
                                timeout=30).content == thumb.content, "made once, kept in the bucket"
            assert requests.get(one.url + path, headers=bearer(tokens["worker3"]), timeout=30).status_code == 403
    finally:
        with other_app.app_context():
            db.session.remove()
            db.engine.dispose()
    assert stored(blob_store()) == [shard(name), f"variants/thumb/{shard(name)}"]
    assert not (tmp_path / "photos").exists(), "nothing in the folder store"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("photo_backend", ["s3"])
def test_a_page_upload_and_a_wrong_hash_behave_on_s3_as_on_the_folder(app, client, tokens):
    from server.photos.service import blob_store, keep_photos
    from tests.photos.helpers import user_id

    data = make_jpeg()
    assert keep_photos([data, data], user_id("supervisor1")) == [sha(data)]
    wrong = sha(b"another photo")
    answer = client.patch(f"/api/v1/photos/{wrong}", data=data, headers={
        **bearer(tokens["worker1"]), "Content-Type": OCTET, "Upload-Offset": "0", "Upload-Length": str(len(data))})
    assert answer.status_code == 400 and answer.json["error"]["code"] == "hash_mismatch"
    assert stored(blob_store()) == [shard(sha(data))]

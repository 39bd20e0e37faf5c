"""The blob store, on both backends (the folder, and S3 over HTTP): sharded by hash, resumable, verified, atomic,
one writer per hash. The S3 store's own properties (many servers, its lease) are in test_s3.py."""

from __future__ import annotations

import hashlib

import pytest

from server.photos.blobs import FolderBlobStore, HashMismatch, LengthMismatch, UploadLocked

from .helpers import make_jpeg, race, reader, sha, shard, stored, uploads


def put(blobs, data: bytes, name: str | None = None, check=None) -> None:
    with blobs.upload(name or sha(data)) as session:
        session.declare(len(data))
        session.append(reader(data), len(data))
        session.finish(check)


def test_a_blob_lives_sharded_by_its_hash(blobs):
    data = make_jpeg()
    put(blobs, data)
    name = sha(data)
    assert stored(blobs) == [shard(name)], "the photo under its name, and nothing of the upload left"
    assert blobs.has(name) and blobs.size(name) == len(data) and blobs.read(name) == data


def test_the_folder_store_is_a_folder(tmp_path):
    blobs = FolderBlobStore(tmp_path)
    data = make_jpeg()
    put(blobs, data)
    name = sha(data)
    assert (tmp_path / name[:2] / name[2:4] / name).read_bytes() == data


def test_an_upload_resumes_from_the_bytes_held_and_keeps_them_apart_until_verified(blobs):
    data = make_jpeg(noise=True, width=200, height=200)
    name = sha(data)
    assert blobs.status(name) is None
    with blobs.upload(name) as session:
        session.declare(len(data))
        assert session.append(reader(data[:1000]), len(data)) == 1000
    status = blobs.status(name)
    assert (status.offset, status.length, status.complete) == (1000, len(data), False)
    assert not blobs.has(name) and blobs.missing([name]) == [name]
    assert uploads(blobs) and shard(name) not in stored(blobs)
    with blobs.upload(name) as session:
        assert session.offset == 1000 and session.length == len(data)
        session.append(reader(data[1000:]), len(data) - 1000)
        session.finish()
    assert blobs.read(name) == data and blobs.missing([name]) == []
    assert blobs.status(name).complete
    assert not uploads(blobs), "parts, length and lock are cleared"


def test_the_folder_keeps_an_upload_in_a_part_file(tmp_path):
    blobs = FolderBlobStore(tmp_path)
    data = make_jpeg(noise=True, width=100, height=100)
    name = sha(data)
    with blobs.upload(name) as session:
        session.declare(len(data))
        session.append(reader(data[:1000]), len(data))
    assert (tmp_path / "uploads" / name[:2] / name[2:4] / f"{name}.part").stat().st_size == 1000


def test_a_declared_length_is_kept_even_before_a_byte(blobs):
    name = sha(b"x" * 10)
    with blobs.upload(name) as session:
        session.declare(10)
        assert session.append(reader(b""), 10) == 0
    status = blobs.status(name)
    assert (status.offset, status.length, status.complete) == (0, 10, False)


def test_bytes_read_before_a_cut_are_kept(blobs):
    data = make_jpeg(noise=True, width=100, height=100)
    read = reader(data[:700])
    calls = 0

    def cut(n):
        nonlocal calls
        calls += 1
        if calls > 1:
            raise ConnectionResetError("the client went away")
        return read(n)

    with blobs.upload(sha(data)) as session:
        session.declare(len(data))
        with pytest.raises(ConnectionResetError):
            session.append(cut, len(data))
    assert blobs.status(sha(data)).offset == 700


def test_a_wrong_hash_discards_the_upload(blobs):
    data = make_jpeg()
    wrong = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(HashMismatch):
        put(blobs, data, wrong)
    assert blobs.status(wrong) is None and not blobs.has(wrong)
    assert stored(blobs) == []


def test_a_failed_check_discards_the_upload(blobs):
    data = b"not an image at all"

    def refuse(handle):
        assert handle.read() == data  # the check sees the whole upload
        raise ValueError("not an image")

    with pytest.raises(ValueError):
        put(blobs, data, check=refuse)
    assert blobs.status(sha(data)) is None and stored(blobs) == []


def test_a_second_declaration_must_agree(blobs):
    name = sha(b"x" * 10)
    with blobs.upload(name) as session:
        session.declare(10)
        session.declare(10)
        with pytest.raises(LengthMismatch):
            session.declare(11)


def test_names_that_are_not_hashes_never_become_paths(blobs):
    for bad in ("../" * 10 + "etc/passwd", "A" * 64, "ab" * 31, ""):
        with pytest.raises(ValueError):
            blobs.has(bad)
        with pytest.raises(ValueError):
            with blobs.upload(bad):
                pass
    with pytest.raises(ValueError):
        blobs.put_variant(sha(b"x"), "../thumb", b"")


def test_a_held_lock_makes_another_upload_of_the_same_hash_wait_then_give_up(blobs):
    name = sha(b"y")
    with blobs.upload(name):
        with pytest.raises(UploadLocked):
            with blobs.upload(name, wait_seconds=0.05):
                pass
        with blobs.upload(sha(b"z"), wait_seconds=0.05):  # another hash is not held up
            pass
    with blobs.upload(name, wait_seconds=0.05):  # let go when the session ended
        pass


def test_concurrent_uploads_of_the_same_hash_end_with_one_intact_photo(blobs):
    """Eight writers race on one photo, each from where it thinks the upload stands, in small appends."""
    data = make_jpeg(noise=True, width=160, height=160)  # about 40 KB: ten appends
    name = sha(data)
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            while not blobs.has(name):
                with blobs.upload(name, wait_seconds=30) as session:
                    if session.complete:
                        return
                    session.declare(len(data))
                    offset = session.offset
                    end = min(len(data), offset + 4096)
                    session.append(reader(data[offset:end]), len(data) - offset)
                    if session.offset == len(data):
                        session.finish()
        except BaseException as exc:  # reported below, with the thread's error
            errors.append(exc)

    race(writer, 8)
    assert not errors
    assert blobs.read(name) == data
    assert stored(blobs) == [shard(name)]


def test_variants_are_kept_beside_the_blobs(blobs):
    name = sha(b"photo")
    assert blobs.get_variant(name, "thumb") is None
    blobs.put_variant(name, "thumb", b"small")
    blobs.put_variant(name, "thumb", b"small")  # made twice at once by two requests: harmless
    assert blobs.get_variant(name, "thumb") == b"small"
    assert stored(blobs) == [f"variants/thumb/{shard(name)}"]


def test_put_keeps_a_whole_blob_by_its_hash_checked_and_replaces_a_partial_upload(blobs):
    data = make_jpeg()
    with blobs.upload(sha(data)) as session:  # a tablet's upload, cut off with a wrong byte held
        session.declare(len(data))
        session.append(reader(b"X" + data[1:10]), 10)
    assert blobs.status(sha(data)).offset == 10
    assert blobs.put(data) == sha(data)
    assert blobs.read(sha(data)) == data
    assert blobs.put(data) == sha(data)  # again: already held, nothing to do

    def refuse(handle):
        raise ValueError("not an image")

    with pytest.raises(ValueError):
        blobs.put(b"not an image at all", check=refuse)
    assert blobs.status(sha(b"not an image at all")) is None
    assert stored(blobs) == [shard(sha(data))]


def test_missing_lists_what_is_not_held_complete_in_order_each_once(blobs):
    held = [make_jpeg(seed=n, noise=True) for n in range(3)]
    for data in held:
        put(blobs, data)
    absent = [sha(bytes([n])) for n in range(4)]
    asked = [absent[0], sha(held[0]), absent[1], absent[0], sha(held[2]), absent[2], absent[3], sha(held[1])]
    assert blobs.missing(asked) == absent
    assert blobs.missing([]) == []

"""The folder blob store: sharded by hash, resumable, verified, atomic, one writer per hash."""

from __future__ import annotations

import hashlib

import pytest

from server.photos.blobs import FolderBlobStore, HashMismatch, LengthMismatch, UploadLocked

from .helpers import make_jpeg, race, sha


def reader(data: bytes):
    """A read(n) function over bytes, as a request stream is."""
    position = 0

    def read(n: int) -> bytes:
        nonlocal position
        piece = data[position:position + n]
        position += len(piece)
        return piece

    return read


def put(blobs: FolderBlobStore, data: bytes, name: str | None = None, check=None) -> None:
    with blobs.upload(name or sha(data)) as session:
        session.declare(len(data))
        session.append(reader(data), len(data))
        session.finish(check)


def test_a_blob_lives_in_a_folder_sharded_by_its_hash(tmp_path):
    blobs = FolderBlobStore(tmp_path)
    data = make_jpeg()
    put(blobs, data)
    name = sha(data)
    assert (tmp_path / name[:2] / name[2:4] / name).read_bytes() == data
    assert blobs.has(name) and blobs.size(name) == len(data) and blobs.read(name) == data
    assert not [p for p in (tmp_path / "uploads").rglob("*") if p.is_file()], "nothing of the upload is left"


def test_an_upload_resumes_from_the_bytes_held_and_keeps_them_apart_until_verified(tmp_path):
    blobs = FolderBlobStore(tmp_path)
    data = make_jpeg(noise=True, width=200, height=200)
    name = sha(data)
    assert blobs.status(name) is None
    with blobs.upload(name) as session:
        session.declare(len(data))
        assert session.append(reader(data[:1000]), len(data)) == 1000
    status = blobs.status(name)
    assert (status.offset, status.length, status.complete) == (1000, len(data), False)
    assert not blobs.has(name) and blobs.missing([name]) == [name]
    assert (tmp_path / "uploads" / name[:2] / name[2:4] / f"{name}.part").stat().st_size == 1000
    with blobs.upload(name) as session:
        assert session.offset == 1000
        session.append(reader(data[1000:]), len(data) - 1000)
        session.finish()
    assert blobs.read(name) == data and blobs.missing([name]) == []
    assert not list((tmp_path / "uploads").rglob("*.*")), "part, length and lock files are cleared"


def test_bytes_read_before_a_cut_are_kept(tmp_path):
    blobs = FolderBlobStore(tmp_path)
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


def test_a_wrong_hash_discards_the_upload(tmp_path):
    blobs = FolderBlobStore(tmp_path)
    data = make_jpeg()
    wrong = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(HashMismatch):
        put(blobs, data, wrong)
    assert blobs.status(wrong) is None and not blobs.has(wrong)


def test_a_failed_check_discards_the_upload(tmp_path):
    blobs = FolderBlobStore(tmp_path)
    data = b"not an image at all"

    def refuse(handle):
        raise ValueError("not an image")

    with pytest.raises(ValueError):
        put(blobs, data, check=refuse)
    assert blobs.status(sha(data)) is None


def test_a_second_declaration_must_agree(tmp_path):
    blobs = FolderBlobStore(tmp_path)
    name = sha(b"x" * 10)
    with blobs.upload(name) as session:
        session.declare(10)
        session.declare(10)
        with pytest.raises(LengthMismatch):
            session.declare(11)


def test_names_that_are_not_hashes_never_become_paths(tmp_path):
    blobs = FolderBlobStore(tmp_path)
    for bad in ("../" * 10 + "etc/passwd", "A" * 64, "ab" * 31, ""):
        with pytest.raises(ValueError):
            blobs.has(bad)


def test_a_held_lock_makes_another_upload_of_the_same_hash_wait_then_give_up(tmp_path):
    blobs = FolderBlobStore(tmp_path)
    name = sha(b"y")
    with blobs.upload(name):
        with pytest.raises(UploadLocked):
            with blobs.upload(name, wait_seconds=0.05):
                pass
        with blobs.upload(sha(b"z"), wait_seconds=0.05):  # another hash is not held up
            pass


def test_concurrent_uploads_of_the_same_hash_end_with_one_intact_photo(tmp_path):
    """Eight writers race on one photo, each from where it thinks the upload stands, in small appends."""
    blobs = FolderBlobStore(tmp_path)
    data = make_jpeg(noise=True, width=300, height=300)
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
    assert not list((tmp_path / "uploads").rglob("*.*"))
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [name]


def test_variants_are_kept_beside_the_blobs(tmp_path):
    blobs = FolderBlobStore(tmp_path)
    name = sha(b"photo")
    assert blobs.get_variant(name, "thumb") is None
    blobs.put_variant(name, "thumb", b"small")
    assert blobs.get_variant(name, "thumb") == b"small"
    assert (tmp_path / "variants" / "thumb" / name[:2] / name[2:4] / name).exists()


def test_put_keeps_a_whole_blob_by_its_hash_checked_and_replaces_a_partial_upload(tmp_path):
    blobs = FolderBlobStore(tmp_path)
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

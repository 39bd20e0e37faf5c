"""The photo blob store: content-addressed bytes, uploaded resumably, kept only when verified.

A photo is named by the SHA-256 of its bytes. The store answers three kinds of
question, and nothing in the server reaches the bytes any other way:

* reading: `has`, `size`, `open`, `read` a complete blob;
* writing a whole blob at once: `put` (a page's upload), through an upload session;
* uploading: `status` (how many bytes of an unfinished upload are held, and the
  length it declared), and `upload(sha256)`, a locked `UploadSession` that
  appends at the offset held, and on `finish` verifies the SHA-256 and lets
  the caller check the content before the blob becomes visible;
* derived files (`get_variant`, `put_variant`): thumbnails, made once.

`FolderBlobStore` is the default backend: a folder sharded by hash,
``ab/cd/abcd…``, with unfinished uploads apart under ``uploads/ab/cd/``
(``<sha>.part`` holds the bytes, ``<sha>.length`` the declared length) and
variants under ``variants/<name>/ab/cd/``. `server.photos.s3.S3BlobStore`
implements the same two classes on an S3-compatible object store, for app
servers on several machines (the same layout as keys; the upload's state all
in objects; the lock a lease object), and no caller changes. The properties
below hold for both; the S3 module says how.

Properties (of the folder store):

* **A blob is complete or absent.** Bytes become a blob only by `finish`, which
  fsyncs the part file, checks its hash, and renames it into place with
  `os.replace` (atomic on POSIX). A reader never sees a partial photo, and a
  process killed at any point leaves either the old state or the new one.
* **An upload resumes from the last byte held.** The part file's size is the
  offset; there is no second record of it to fall out of step. A connection
  cut mid-body keeps what arrived (TCP delivers a prefix, never holes).
* **One writer per hash.** An upload session holds an exclusive ``flock`` on
  the hash's lock file, across processes. Two uploads of the same photo at
  once are serialised: the second finds the offset moved (409 for its
  client) or the blob complete. So they end with one intact photo.

Hazard: a stale lock file. Lock files are removed when an upload ends, so
they do not pile up. A process that opened the file just before it was
removed would lock a deleted inode; `_locked` therefore re-checks, after
locking, that the path still names the inode it holds, and retries if not.

Hazard: a crash after the rename but before the part's bookkeeping is
removed. The blob is complete; the next session sees it and clears the
leftovers, as it clears the temporary file of a length declaration killed
before its rename. A crash mid-append leaves a shorter part file: a resume point.
Power loss could leave bytes that were never written; the hash check at
`finish` catches that and the upload starts over, which costs time, not a
wrong photo.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import os
import re
import tempfile
import time
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, ContextManager, Iterator

from shared.records import is_sha256

__all__ = [
    "BlobStore", "UploadSession", "UploadStatus", "FolderBlobStore", "BlobError", "BlobNotFound",
    "HashMismatch", "UploadLocked", "OffsetMismatch", "LengthMismatch", "is_sha256",
]

COPY_BYTES = 1024 * 1024  # read and write in blocks of this size


class BlobError(Exception):
    """A blob store operation that cannot be carried out."""


class BlobNotFound(BlobError):
    """No complete blob of this hash is held."""


class HashMismatch(BlobError):
    """The uploaded bytes do not hash to the name they were uploaded under; the upload was discarded."""


class UploadLocked(BlobError):
    """Another upload of the same hash holds the lock and did not let go in time."""


class OffsetMismatch(BlobError):
    """An append that does not start at the bytes held."""

    def __init__(self, held: int, given: int):
        super().__init__(f"the upload holds {held} bytes, not {given}")
        self.held = held
        self.given = given


class LengthMismatch(BlobError):
    """An upload that declares a length other than the one declared before."""


@dataclass(frozen=True)
class UploadStatus:
    """How much of a photo is held: ``offset`` bytes of ``length`` (None until declared)."""

    offset: int
    length: int | None
    complete: bool


class UploadSession(ABC):
    """One locked upload of one hash. Use it through `BlobStore.upload`, as a context manager."""

    sha256: str
    _declared: int | None = None  # declared in this session; each store keeps it its own way, by append

    @property
    @abstractmethod
    def offset(self) -> int:
        """The bytes held: where the next append must start."""

    @property
    @abstractmethod
    def length(self) -> int | None:
        """The declared total length, or None before the first declaration."""

    @property
    @abstractmethod
    def complete(self) -> bool:
        """Whether the blob is already complete (then there is nothing to append)."""

    def declare(self, length: int) -> None:
        """Fix the total length; raises LengthMismatch if a different one was declared.

        The declaration is kept only if the upload outlives the session unfinished (`status` then
        reports it); one that completes within the session needs no record of it.
        """
        current = self.length
        if current is not None:
            if current != length:
                raise LengthMismatch(f"this upload was declared {current} bytes long, not {length}")
            return
        self._declared = length

    def _vet(self, digest: str, handle: BinaryIO, check: Callable[[BinaryIO], None] | None) -> None:
        """Before a blob is made visible: its bytes (in ``handle``, hashing to ``digest``) must be the blob its
        name says, and pass the caller's check; else the upload is discarded and the error raised."""
        if digest != self.sha256:
            self.discard()
            raise HashMismatch(f"the bytes received hash to {digest}, not {self.sha256}")
        if check is not None:
            handle.seek(0)
            try:
                check(handle)
            except BaseException:
                self.discard()
                raise

    @abstractmethod
    def append(self, read: Callable[[int], bytes], limit: int) -> int:
        """Append up to ``limit`` bytes pulled from ``read(n)`` until it returns b""; returns the new offset.

        Bytes read before ``read`` raises are kept (a cut connection is a
        resume point); the exception is re-raised.
        """

    @abstractmethod
    def finish(self, check: Callable[[BinaryIO], None] | None = None) -> None:
        """Verify the SHA-256, run ``check`` on the bytes, and make the blob visible.

        On a wrong hash the upload is discarded and HashMismatch raised. If
        ``check`` raises, the upload is discarded and the error re-raised.
        """

    @abstractmethod
    def discard(self) -> None:
        """Forget the bytes held so far."""


class BlobStore(ABC):
    """Where photos live. Callers use only these methods, so a backend can be swapped."""

    @abstractmethod
    def has(self, sha256: str) -> bool:
        """Whether the complete blob is held."""

    @abstractmethod
    def size(self, sha256: str) -> int | None:
        """The complete blob's size in bytes, or None when it is not held."""

    @abstractmethod
    def open(self, sha256: str) -> BinaryIO:
        """The complete blob for reading; raises BlobNotFound."""

    def read(self, sha256: str) -> bytes:
        """The complete blob's bytes; raises BlobNotFound."""
        with self.open(sha256) as handle:
            return handle.read()

    def missing(self, hashes: list[str]) -> list[str]:
        """The hashes of ``hashes`` not held complete, in the order given, each once."""
        return [sha for sha in dict.fromkeys(hashes) if not self.has(sha)]

    def put(self, data: bytes, check: Callable[[BinaryIO], None] | None = None) -> str:
        """Keep a whole blob given at once (a page's upload); returns its SHA-256.

        The same path as a resumable upload, so the hash is verified and ``check`` runs before the
        blob becomes visible, as in `UploadSession.finish`. Bytes of an unfinished upload of the same
        hash (a tablet's, cut off) are replaced: here the whole photo is at hand.
        """
        sha256 = hashlib.sha256(data).hexdigest()
        with self.upload(sha256) as session:
            if session.complete:
                return sha256
            session.discard()
            session.append(io.BytesIO(data).read, len(data))
            session.finish(check)
        return sha256

    @abstractmethod
    def status(self, sha256: str, *, settle_seconds: float = 0.0) -> UploadStatus | None:
        """How much is held; None when nothing is.

        With ``settle_seconds``, an append in progress is given that long to end first, so the offset
        is not one that is about to move (after a cut, the cut request may still be writing its last
        bytes); after that the offset is read as it stands.
        """

    @abstractmethod
    def upload(self, sha256: str, *, wait_seconds: float = 5.0) -> ContextManager[UploadSession]:
        """A locked upload session for the hash; raises UploadLocked after ``wait_seconds``."""

    @abstractmethod
    def get_variant(self, sha256: str, name: str) -> bytes | None:
        """A derived file (``thumb``) of the blob, or None when it was never made."""

    @abstractmethod
    def put_variant(self, sha256: str, name: str, data: bytes) -> None:
        """Keep a derived file; a concurrent put of the same variant is harmless."""


# --- names, the same for every backend -------------------------------------------------------------

def check_name(sha256: str) -> str:
    """A blob's name: 64 lowercase hex digits, else ValueError."""
    # The name becomes a path or a key: anything but 64 hex digits could walk out of the folder or prefix.
    if not is_sha256(sha256):
        raise ValueError(f"{sha256!r} is not a SHA-256 digest in lowercase hex")
    return sha256


def check_variant(name: str) -> str:
    """A variant's name (``thumb``); it becomes part of a path or key, so it is a plain word."""
    if not re.match(r"^[a-z0-9_]{1,32}\Z", name):
        raise ValueError(f"{name!r} is not a variant name")
    return name


# --- the folder backend ---------------------------------------------------------------------------

def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomically(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write a whole file under a temporary name and rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Named after the target, so a process killed before the rename leaves a file whose owner is known.
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise
    if durable:
        _fsync_dir(path.parent)


class FolderBlobStore(BlobStore):
    """Blobs in a folder: ``ab/cd/<sha>``; uploads in ``uploads/ab/cd/``; variants in ``variants/<name>/``."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    # paths
    def _shard(self, sha256: str) -> Path:
        return Path(sha256[:2]) / sha256[2:4]

    def path(self, sha256: str) -> Path:
        """Where the complete blob lives (whether or not it is held)."""
        return self.root / self._shard(check_name(sha256)) / sha256

    def _upload_dir(self, sha256: str) -> Path:
        return self.root / "uploads" / self._shard(check_name(sha256))

    def _variant_path(self, sha256: str, name: str) -> Path:
        return self.root / "variants" / check_variant(name) / self._shard(check_name(sha256)) / sha256

    # reading
    def has(self, sha256: str) -> bool:
        """Whether the complete blob is held."""
        return self.path(sha256).is_file()

    def size(self, sha256: str) -> int | None:
        """The complete blob's size, or None."""
        try:
            return self.path(sha256).stat().st_size
        except FileNotFoundError:
            return None

    def open(self, sha256: str) -> BinaryIO:
        """The complete blob for reading; raises BlobNotFound."""
        try:
            return open(self.path(sha256), "rb")
        except FileNotFoundError:
            raise BlobNotFound(sha256) from None

    # uploading
    def status(self, sha256: str, *, settle_seconds: float = 0.0) -> UploadStatus | None:
        """Bytes held and declared length, read once no append is under way (or settle_seconds passed)."""
        if settle_seconds > 0 and not self.has(sha256):
            try:
                with self._locked(self._upload_dir(sha256) / f"{sha256}.lock", settle_seconds, create=False):
                    return self._status(sha256)
            except (UploadLocked, FileNotFoundError):  # still writing, or no upload at all
                pass
        return self._status(sha256)

    def _status(self, sha256: str) -> UploadStatus | None:
        size = self.size(sha256)
        if size is not None:
            return UploadStatus(size, size, True)
        directory = self._upload_dir(sha256)
        length = _read_length(directory / f"{sha256}.length")
        try:
            offset = (directory / f"{sha256}.part").stat().st_size
        except FileNotFoundError:
            if length is None:
                return None
            offset = 0
        return UploadStatus(offset, length, False)

    @contextmanager
    def upload(self, sha256: str, *, wait_seconds: float = 5.0) -> Iterator[UploadSession]:
        """A locked upload session for the hash; raises UploadLocked after ``wait_seconds``."""
        directory = self._upload_dir(sha256)
        directory.mkdir(parents=True, exist_ok=True)
        with self._locked(directory / f"{sha256}.lock", wait_seconds) as release:
            session = _FolderSession(self, sha256, directory)
            try:
                yield session
            finally:
                if session.ended:
                    release()

    @contextmanager
    def _locked(self, lock_path: Path, wait_seconds: float, *, create: bool = True) -> Iterator[Callable[[], None]]:
        """Hold an exclusive flock on lock_path; yields a function that removes the lock file while held.

        With ``create`` False, a missing lock file raises FileNotFoundError (no upload to wait for).
        """
        deadline = time.monotonic() + wait_seconds
        pause = 0.005
        while True:
            fd = os.open(lock_path, os.O_RDWR | (os.O_CREAT if create else 0), 0o644)
            try:
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except OSError as exc:
                        if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                            raise
                        if time.monotonic() >= deadline:
                            raise UploadLocked(f"another upload of {lock_path.stem} is in progress") from None
                        time.sleep(pause)
                        pause = min(pause * 2, 0.1)
                try:
                    same = os.stat(lock_path).st_ino == os.fstat(fd).st_ino
                except FileNotFoundError:
                    same = False
                if not same:
                    continue  # the file was removed by the holder we waited for: lock the new one
                removed = False

                def release() -> None:
                    nonlocal removed
                    if not removed:
                        removed = True
                        try:
                            os.unlink(lock_path)  # while still locked: nobody can hold the old inode
                        except FileNotFoundError:
                            pass

                yield release
                return
            finally:
                os.close(fd)  # closing the descriptor releases the flock

    # variants
    def get_variant(self, sha256: str, name: str) -> bytes | None:
        """A derived file, or None."""
        try:
            return self._variant_path(sha256, name).read_bytes()
        except FileNotFoundError:
            return None

    def put_variant(self, sha256: str, name: str, data: bytes) -> None:
        """Keep a derived file (no fsync: it can always be made again)."""
        _write_atomically(self._variant_path(sha256, name), data, durable=False)


def _read_length(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


class _FolderSession(UploadSession):
    """An upload into ``uploads/ab/cd/<sha>.part``, held under the hash's lock."""

    def __init__(self, store: FolderBlobStore, sha256: str, directory: Path):
        self.store = store
        self.sha256 = sha256
        self.part = directory / f"{sha256}.part"
        self.length_file = directory / f"{sha256}.length"
        self.final = store.path(sha256)
        self.ended = False  # finished or discarded: the bookkeeping files are gone
        self._declared: int | None = None
        for stale in directory.glob(f".{sha256}.length.tmp-*"):
            stale.unlink(missing_ok=True)  # a killed declare's; only the lock holder writes these
        if self.final.exists():
            self._clear()  # left over from a crash between the rename and the clean-up
            self._complete = True
        else:
            self._complete = False

    @property
    def offset(self) -> int:
        """Bytes held."""
        if self._complete:
            return self.final.stat().st_size
        try:
            return self.part.stat().st_size
        except FileNotFoundError:
            return 0

    @property
    def length(self) -> int | None:
        """Declared length."""
        if self._complete:
            return self.final.stat().st_size
        if self._declared is not None:
            return self._declared
        return _read_length(self.length_file)

    @property
    def complete(self) -> bool:
        """Whether the blob is complete."""
        return self._complete

    def append(self, read: Callable[[int], bytes], limit: int) -> int:
        """Append what ``read`` yields, up to ``limit`` bytes; keep what arrived even if it raises."""
        if self._complete:
            raise BlobError("the blob is already complete")
        with open(self.part, "ab") as handle:
            written = 0
            try:
                while written < limit:
                    data = read(min(COPY_BYTES, limit - written))
                    if not data:
                        break
                    handle.write(data)
                    written += len(data)
            finally:
                handle.flush()  # into the page cache: survives a killed process (not power loss; see finish)
                if self._declared is not None and handle.tell() < self._declared \
                        and not self.length_file.exists():
                    # The upload outlives this request: keep its length for HEAD. Not fsynced: a
                    # declaration lost to power loss is made again by the next PATCH, which carries
                    # Upload-Length; what must be durable is the photo itself (finish).
                    _write_atomically(self.length_file, str(self._declared).encode(), durable=False)
        return self.offset

    def finish(self, check: Callable[[BinaryIO], None] | None = None) -> None:
        """Verify, check, then rename into place."""
        if self._complete:
            return
        digest = hashlib.sha256()
        with open(self.part, "rb") as handle:
            for block in iter(lambda: handle.read(COPY_BYTES), b""):
                digest.update(block)
            self._vet(digest.hexdigest(), handle, check)
            os.fsync(handle.fileno())
        self.final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.part, self.final)  # the one step that makes the photo visible
        _fsync_dir(self.final.parent)
        self._complete = True
        self._clear()

    def discard(self) -> None:
        """Remove the part file and its declared length."""
        self._clear()

    def _clear(self) -> None:
        for path in (self.part, self.length_file):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        self.ended = True

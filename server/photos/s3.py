"""Photos in an S3-compatible object store (AWS S3, MinIO, Ceph RGW): the `BlobStore` for app servers on many machines.

Chosen by GRIDPATROL_BLOB_URL=s3://bucket/prefix (server/config.py checks the settings at start-up). The keys, under
the prefix, follow the folder store's layout:

    ab/cd/<sha>                        the complete photo: written once, after its bytes hashed to its name
    uploads/ab/cd/<sha>/part-<offset>  bytes [offset, offset + size) of an unfinished upload (offset in 12 digits)
    uploads/ab/cd/<sha>/length-<n>     the declared length, in the key, so that one LIST reads the whole state
    uploads/ab/cd/<sha>/lock           the upload's lease (below)
    variants/<name>/ab/cd/<sha>        thumbnails

No app server keeps anything of an upload, on disk or in memory: every fact of it is an object. So an upload cut
on one server resumes after that server restarts, or on any other server, from what one LIST says.

Properties, as `server.photos.blobs` states them for the folder:

* **A blob is complete or absent.** `finish` reads the parts in order through SHA-256 (into a spooled temporary
  file, the request's scratch), runs the caller's check on them, and only then PUTs the photo under its name,
  with its SHA-256 as the object's checksum (S3 checks the bytes it received against it; stores that keep no
  checksums ignore it). A PUT replaces nothing and shows nothing until it is whole, so no reader sees part of a
  photo, and a server killed at any point leaves the parts (a resume point) or the photo.
* **An upload resumes from the last byte held.** The offset is the end of the chain of parts from 0: the part at
  0, then the part at its end, and so on. No second record of it can fall out of step. Bytes that arrived before
  a cut are written as a part before the error goes on. A server killed mid-request loses what it had not yet
  written as a part (at most PART_BYTES): the client resumes from the last part, which costs bytes, not a photo.
* **One writer per hash, across servers**, in two layers:

  1. A lease. An upload session creates the ``lock`` object with ``If-None-Match: *``, which only one request
     can do; another session waits and polls, and after ``wait_seconds`` raises UploadLocked (409
     ``upload_locked``), as with the folder's flock. The holder renews the lease (a PUT with ``If-Match`` on its
     ETag) as bytes arrive, and deletes it (``If-Match``) when the session ends. A server that died holding it
     frees it after LEASE_SECONDS without renewal, measured on the store's clock alone (the object's
     LastModified against the Date of the answer: the app servers' clocks play no part); the next session takes
     it over with a PUT ``If-Match`` on the dead holder's ETag, which one contender alone can win. HEAD waits
     for a live lease to end (``settle_seconds``), as it waits for the flock.
  2. Conditional parts. A part is created with ``If-None-Match: *`` under its offset, so there is at most one
     part per offset, ever. Two sessions can still run at once: a holder stalled past its lease (a client that
     sends nothing for LEASE_SECONDS lets another request take over, which is what a tablet that reconnected
     needs), or a store that ignores conditional deletes. Then the second append at an offset finds the part
     there, drops its bytes and raises OffsetMismatch (409 ``offset_mismatch`` with the offset held), and its
     client resumes from there; unless the part there holds the very bytes it brought (same ETag), which is as
     good as written. That also covers boto3's retry of a create whose answer was lost: the retry's 412 finds
     its own bytes. (A lease create retried so finds its own token, and holds the lease.)

  So the answer to two appends of one photo on two servers: the second waits for the first's lease and then
  finds the offset moved (409), or the photo complete; and if the lease failed them, the conditional create of
  the part lets one of them write, never both. The lease is a matter of speed and tidy errors; what keeps the
  photo intact is the conditional create and, in the end, the hash check, as with the folder.

A finish that races another (a repeated last PATCH) PUTs the same bytes under the same name, with
``If-None-Match: *``: the second one's 412 means the photo is there. A discard that races an append (only without
the lease) can leave a part off the chain: it is not counted, and goes with the upload's other leftovers.

Why not S3's multipart upload, one per session: CompleteMultipartUpload refuses parts under 5 MiB but the last,
and a tablet's cut leaves pieces of any size; and the object is visible the moment it completes, before its hash
could be checked. Parts as objects have neither problem, and their sizes are the offset.

The store must honour ``If-None-Match: *`` on PutObject (AWS S3 since 2024, MinIO, Ceph RGW; see
docs/operations.md). A store that ignored it would let two servers overwrite each other's parts, so the first
upload of each process checks (`_check_conditional_writes`) and refuses such a store with an error that says so.
``If-Match`` (on PUT and DELETE) makes the lease exact; without it two sessions may overlap, which layer 2 covers.

Hazard: a server killed while it holds a lease holds that photo up until the lease expires (LEASE_SECONDS), where
the folder's flock dies with its process. The tablet's 409 ``upload_locked`` makes it wait and try again.

Hazard: uploads abandoned half way keep their parts (as the folder keeps its part files). A lifecycle rule on the
bucket that expires ``<prefix>uploads/`` after a week removes them; a tablet that comes back later starts over.

Hazard: a client that sends a photo in many tiny PATCHes makes many parts (one per request), which `finish`
reads one by one. The tablet sends the rest of the photo in one PATCH, so parts number the cuts, not the bytes.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import re
import secrets
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, BinaryIO, Callable, Iterator

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from ..config import S3Settings
from .blobs import (COPY_BYTES, BlobError, BlobNotFound, BlobStore,
                    OffsetMismatch, UploadLocked, UploadSession, UploadStatus, check_name, check_variant)

__all__ = ["S3BlobStore", "make_client", "LEASE_SECONDS", "PART_BYTES"]

log = logging.getLogger("gridpatrol.photos")

LEASE_SECONDS = 15.0  # a lease not renewed this long is free: a dead server holds a photo up no longer
RENEW_SECONDS = 5.0  # the holder renews this often while bytes arrive (a third of the lease: two renewals may fail)
PART_BYTES = 4 * 1024 * 1024  # an append writes a part at least this often: a killed server loses at most this much
SPOOL_BYTES = 16 * 1024 * 1024  # finish holds a photo in memory up to this (GRIDPATROL_MAX_PHOTO_BYTES is 15 MiB)
LOOKUPS = 16  # `missing` asks this many HEADs at once: 1000 hashes one after another would take seconds

_CONFLICT = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}  # a condition that did not hold
_ABSENT = {"NoSuchKey", "NotFound", "404"}
_PART = re.compile(r"part-([0-9]{12})\Z")
_LENGTH = re.compile(r"length-([0-9]{1,15})\Z")


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _etag(data: bytes) -> str:
    """The ETag a store gives an object of these bytes put whole: their MD5 (with SSE-KMS on AWS it differs, and
    the comparisons that use this merely fail, to the slower path)."""
    return f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'


def make_client(settings: S3Settings) -> Any:
    """A boto3 S3 client from the settings; what they leave out, boto3 finds its standard way."""
    options: dict[str, Any] = {}
    if settings.endpoint_url:
        options["endpoint_url"] = settings.endpoint_url
    if settings.region:
        options["region_name"] = settings.region
    if settings.access_key_id:
        options["aws_access_key_id"] = settings.access_key_id
        options["aws_secret_access_key"] = settings.secret_access_key
    config = Config(s3={"addressing_style": settings.addressing_style},
                    retries={"mode": "standard", "max_attempts": 4},
                    connect_timeout=5, read_timeout=30,
                    max_pool_connections=LOOKUPS + 16)  # `missing`'s lookups beside the requests' own calls
    # A session of its own: boto3's default session is not thread-safe to make clients from; a client is.
    return boto3.session.Session().client("s3", config=config, **options)


@dataclass
class _Upload:
    """What one LIST of an upload's keys says."""

    parts: dict[int, int] = field(default_factory=dict)  # offset -> size
    lengths: list[int] = field(default_factory=list)
    lock_age: float | None = None  # seconds since the lease was last renewed, by the store's clock
    keys: list[str] = field(default_factory=list)

    @property
    def offset(self) -> int:
        """The end of the chain of parts from 0."""
        return _chain_end(self.parts)

    @property
    def length(self) -> int | None:
        # Two declarations can only be there if two sessions ran at once; the smaller one is kept, and a
        # wrong one fails the hash check.
        return min(self.lengths) if self.lengths else None


def _chain(parts: dict[int, int]) -> list[int]:
    """The offsets of the parts on the chain from 0, in order (parts off it, left by a race, are not counted)."""
    offsets, end = [], 0
    while parts.get(end):  # no part is empty, so the chain always moves on
        offsets.append(end)
        end += parts[end]
    return offsets


def _chain_end(parts: dict[int, int]) -> int:
    offsets = _chain(parts)
    return offsets[-1] + parts[offsets[-1]] if offsets else 0


def _store_time(response: dict[str, Any]) -> datetime:
    """The store's clock, from the Date of its answer (this server's clock if the answer had none)."""
    raw = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    try:
        return parsedate_to_datetime(raw) if raw else datetime.now(timezone.utc)
    except (TypeError, ValueError):
        return datetime.now(timezone.utc)


class S3BlobStore(BlobStore):
    """Blobs in a bucket, under ``prefix`` (empty, or ending with "/"), through a boto3 S3 client."""

    def __init__(self, client: Any, bucket: str, prefix: str = "", *, lease_seconds: float = LEASE_SECONDS,
                 part_bytes: int = PART_BYTES):
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.lease_seconds = lease_seconds
        self.part_bytes = part_bytes
        self._conditional_writes_checked = False

    @classmethod
    def from_settings(cls, settings: S3Settings) -> "S3BlobStore":
        """The store the settings name (GRIDPATROL_BLOB_URL and GRIDPATROL_S3_*)."""
        return cls(make_client(settings), settings.bucket, settings.prefix)

    # keys
    @staticmethod
    def _shard(sha256: str) -> str:
        return f"{sha256[:2]}/{sha256[2:4]}/{sha256}"

    def key(self, sha256: str) -> str:
        """The complete blob's key (whether or not it is held)."""
        return self.prefix + self._shard(check_name(sha256))

    def upload_prefix(self, sha256: str) -> str:
        """Where an unfinished upload's parts, declared length and lease live."""
        return f"{self.prefix}uploads/{self._shard(check_name(sha256))}/"

    def _variant_key(self, sha256: str, name: str) -> str:
        return f"{self.prefix}variants/{check_variant(name)}/{self._shard(check_name(sha256))}"

    # calls
    def _put(self, key: str, body: bytes | BinaryIO, **conditions: str) -> dict[str, Any]:
        return self.client.put_object(Bucket=self.bucket, Key=key, Body=body, **conditions)

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in _ABSENT:
                return None
            raise

    def _get(self, key: str) -> bytes | None:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in _ABSENT:
                return None
            raise
        with answer["Body"] as body:
            return body.read()

    def _delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):  # DeleteObjects takes 1000 keys at most
            batch = [{"Key": key} for key in keys[start:start + 1000]]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})

    def _list_upload(self, sha256: str) -> _Upload:
        prefix = self.upload_prefix(sha256)
        found = _Upload()
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            now = _store_time(page)
            for item in page.get("Contents", []):
                name = item["Key"][len(prefix):]
                found.keys.append(item["Key"])
                if match := _PART.fullmatch(name):
                    if item["Size"] > 0:
                        found.parts[int(match.group(1))] = item["Size"]
                elif match := _LENGTH.fullmatch(name):
                    found.lengths.append(int(match.group(1)))
                elif name == "lock":
                    found.lock_age = (now - item["LastModified"]).total_seconds()
        return found

    # reading
    def has(self, sha256: str) -> bool:
        """Whether the complete blob is held (a HEAD)."""
        return self._head(self.key(sha256)) is not None

    def size(self, sha256: str) -> int | None:
        """The complete blob's size, or None."""
        answer = self._head(self.key(sha256))
        return None if answer is None else int(answer["ContentLength"])

    def open(self, sha256: str) -> BinaryIO:
        """The complete blob, read whole (a photo is at most GRIDPATROL_MAX_PHOTO_BYTES): the S3 connection goes
        back to the pool at once, however slowly the caller reads on. Raises BlobNotFound."""
        data = self._get(self.key(sha256))
        if data is None:
            raise BlobNotFound(sha256)
        return io.BytesIO(data)

    def missing(self, hashes: list[str]) -> list[str]:
        """The hashes not held complete, in the order given, each once: HEADs, LOOKUPS at a time."""
        unique = list(dict.fromkeys(hashes))
        if len(unique) < 2:
            return super().missing(unique)
        with ThreadPoolExecutor(max_workers=min(LOOKUPS, len(unique))) as pool:
            held = list(pool.map(self.has, unique))
        return [sha for sha, is_held in zip(unique, held) if not is_held]

    # uploading
    def status(self, sha256: str, *, settle_seconds: float = 0.0) -> UploadStatus | None:
        """Bytes held and declared length, read once no lease is live (or settle_seconds passed)."""
        size = self.size(sha256)
        if size is not None:
            return UploadStatus(size, size, True)
        upload = self._list_upload(sha256)
        if self._live(upload) and settle_seconds > 0:
            deadline = time.monotonic() + settle_seconds
            pause = 0.01
            while self._live(upload) and time.monotonic() < deadline:
                time.sleep(pause)
                pause = min(pause * 2, 0.2)
                upload = self._list_upload(sha256)
            size = self.size(sha256)  # the append that held the lease may have completed the photo
            if size is not None:
                return UploadStatus(size, size, True)
        if not upload.parts and upload.length is None:
            return None
        return UploadStatus(upload.offset, upload.length, False)

    def _live(self, upload: _Upload) -> bool:
        return upload.lock_age is not None and upload.lock_age <= self.lease_seconds

    @contextmanager
    def upload(self, sha256: str, *, wait_seconds: float = 5.0) -> Iterator[UploadSession]:
        """A session under the hash's lease; raises UploadLocked after ``wait_seconds``."""
        lease = _Lease(self, self.upload_prefix(sha256) + "lock")
        self._check_conditional_writes()
        lease.acquire(wait_seconds)
        try:
            yield _S3Session(self, sha256, lease)
        finally:
            lease.release()

    def _check_conditional_writes(self) -> None:
        """Once per store: a second create of one key with If-None-Match: * must fail, or the store is refused.

        The probe is an empty object under ``uploads/``: a process killed between its PUT and its DELETE leaves
        it, and the bucket's lifecycle rule for ``uploads/`` (docs/operations.md) removes it with the other leftovers.
        """
        if self._conditional_writes_checked:
            return
        key = f"{self.prefix}uploads/probe-{secrets.token_hex(8)}"
        self._put(key, b"", IfNoneMatch="*")
        try:
            self._put(key, b"", IfNoneMatch="*")
        except ClientError as exc:
            if _code(exc) not in _CONFLICT:
                raise
            honoured = True
        else:
            honoured = False
        finally:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        if not honoured:
            raise BlobError(f"the object store of bucket {self.bucket!r} ignores If-None-Match: * on PUT; photo "
                            "uploads need conditional writes (AWS S3, MinIO and Ceph RGW have them)")
        self._conditional_writes_checked = True

    # variants
    def get_variant(self, sha256: str, name: str) -> bytes | None:
        """A derived file, or None."""
        return self._get(self._variant_key(sha256, name))

    def put_variant(self, sha256: str, name: str, data: bytes) -> None:
        """Keep a derived file (two puts of the same thumbnail write the same bytes)."""
        self._put(self._variant_key(sha256, name), data)


class _Lease:
    """The ``lock`` object of one upload: created if absent, renewed while held, taken over once it is stale."""

    def __init__(self, store: S3BlobStore, key: str):
        self.store = store
        self.key = key
        self.token = secrets.token_hex(16).encode()  # so that the ETag is this holder's alone
        self.etag: str | None = None
        self.renewed = 0.0
        self.lost = False

    def acquire(self, wait_seconds: float) -> None:
        """Hold the lease, or raise UploadLocked after wait_seconds."""
        deadline = time.monotonic() + wait_seconds
        pause = 0.01
        while True:
            if self._try(IfNoneMatch="*"):
                return
            held = self.store._head(self.key)
            if held is not None and held["ETag"] == _etag(self.token):
                # A create whose answer was lost, retried by boto3 and refused: the lease is this one's.
                self.etag, self.renewed = held["ETag"], time.monotonic()
                return
            if held is not None and self._stale(held) and self._try(IfMatch=held["ETag"]):
                log.warning("took over the stale upload lease %s", self.key)
                return
            if time.monotonic() >= deadline:
                raise UploadLocked(f"another upload of {self.key.rsplit('/', 2)[-2]} is in progress")
            time.sleep(pause)
            pause = min(pause * 2, 0.2)

    def _try(self, **condition: str) -> bool:
        try:
            answer = self.store._put(self.key, self.token, **condition)
        except ClientError as exc:
            if _code(exc) in _CONFLICT | _ABSENT:
                return False
            raise
        self.etag = answer["ETag"]
        self.renewed = time.monotonic()
        return True

    def _stale(self, held: dict[str, Any]) -> bool:
        """Whether the lease (a HEAD's answer) was not renewed for the lease's time, by the store's clock."""
        return (_store_time(held) - held["LastModified"]).total_seconds() > self.store.lease_seconds

    def renew(self, *, now: bool = False) -> None:
        """Renew the lease if RENEW_SECONDS passed (or ``now``). A lease lost meanwhile stays lost: the
        conditional parts keep the photo safe, and the session goes on."""
        if self.lost or (not now and time.monotonic() - self.renewed < RENEW_SECONDS):
            return
        if not self._try(IfMatch=self.etag or ""):
            self.lost = True
            log.warning("the upload lease %s was taken over while held", self.key)

    def release(self) -> None:
        """Delete the lease if it is still this holder's (a conditional delete; a store that refuses those gets a
        plain one). A failure leaves the lease to expire."""
        if self.lost or self.etag is None:
            return
        delete = self.store.client.delete_object
        try:
            try:
                delete(Bucket=self.store.bucket, Key=self.key, IfMatch=self.etag)
            except ClientError as exc:
                if _code(exc) in _CONFLICT | _ABSENT:
                    return  # taken over after all: the lease is another's now
                delete(Bucket=self.store.bucket, Key=self.key)
        except ClientError as exc:
            log.warning("could not release the upload lease %s (%s); it expires in %.0f s", self.key, _code(exc),
                        self.store.lease_seconds)


class _S3Session(UploadSession):
    """An upload into part objects, under the hash's lease."""

    def __init__(self, store: S3BlobStore, sha256: str, lease: _Lease):
        self.store = store
        self.sha256 = sha256
        self.lease = lease
        self.prefix = store.upload_prefix(sha256)
        self._declared: int | None = None
        upload = store._list_upload(sha256)
        self._parts = upload.parts
        self._stored_length = upload.length
        self._size = store.size(sha256)
        if self._size is not None and upload.keys:
            self._clear()  # left over from a server killed between the photo's PUT and the clean-up

    @property
    def offset(self) -> int:
        """Bytes held."""
        return self._size if self._size is not None else _chain_end(self._parts)

    @property
    def length(self) -> int | None:
        """Declared length."""
        if self._size is not None:
            return self._size
        return self._declared if self._declared is not None else self._stored_length

    @property
    def complete(self) -> bool:
        """Whether the blob is complete."""
        return self._size is not None

    def append(self, read: Callable[[int], bytes], limit: int) -> int:
        """Append what ``read`` yields, up to ``limit`` bytes, as parts; keep what arrived even if it raises.

        Raises OffsetMismatch when another session wrote a part at this offset first (its lease lost)."""
        if self.complete:
            raise BlobError("the blob is already complete")
        pending = bytearray()
        written = 0
        try:
            while written < limit:
                data = read(min(COPY_BYTES, limit - written))
                if not data:
                    break
                pending += data
                written += len(data)
                if len(pending) >= self.store.part_bytes:
                    self._write_part(bytes(pending))
                    pending.clear()
                self.lease.renew()
        finally:
            # What arrived is kept, whether read ended, raised or the connection was cut.
            if pending:
                self._write_part(bytes(pending))
            self._keep_length()
        return self.offset

    def _write_part(self, data: bytes) -> None:
        offset = self.offset
        key = f"{self.prefix}part-{offset:012d}"
        try:
            self.store._put(key, data, IfNoneMatch="*")
        except ClientError as exc:
            if _code(exc) not in _CONFLICT:
                raise
            there = self.store._head(key)
            # The same bytes are there (this create, retried by boto3 after a lost answer; or another writer of
            # the same photo): as good as written. Other bytes: this append was second.
            if there is None or there["ETag"] != _etag(data):
                self._parts = self.store._list_upload(self.sha256).parts
                raise OffsetMismatch(self.offset, offset) from None
        self._parts[offset] = len(data)

    def _keep_length(self) -> None:
        # The upload outlives this request: keep its length for HEAD, as the folder's length file.
        if self._declared is not None and self._stored_length is None and self.offset < self._declared:
            try:
                self.store._put(f"{self.prefix}length-{self._declared}", b"", IfNoneMatch="*")
            except ClientError as exc:
                if _code(exc) not in _CONFLICT:
                    raise
            self._stored_length = self._declared

    def finish(self, check: Callable[[BinaryIO], None] | None = None) -> None:
        """Verify, check, then PUT the photo under its name."""
        if self.complete:
            return
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
            digest = hashlib.sha256()
            for offset in _chain(self._parts):
                data = self.store._get(f"{self.prefix}part-{offset:012d}")
                if data is None:  # cleared under us by a session that finished the photo (only without the lease)
                    self._size = self.store.size(self.sha256)
                    if self._size is not None:
                        return
                    raise BlobError(f"a part of the upload of {self.sha256} vanished")
                digest.update(data)
                spool.write(data)
            self._vet(digest.hexdigest(), spool, check)
            size = spool.seek(0, io.SEEK_END)
            spool.seek(0)
            self.lease.renew(now=True)
            try:
                self.store._put(self.store.key(self.sha256), spool, IfNoneMatch="*",
                                ChecksumSHA256=base64.b64encode(digest.digest()).decode("ascii"))
            except ClientError as exc:
                if _code(exc) not in _CONFLICT:
                    raise  # 412: the same bytes are there already, put by a session that raced this one
        self._size = size
        self._clear()

    def discard(self) -> None:
        """Remove the parts and the declared length."""
        self._clear()
        self._parts = {}
        self._stored_length = None

    def _clear(self) -> None:
        lock = self.lease.key
        self.store._delete([key for key in self.store._list_upload(self.sha256).keys if key != lock])

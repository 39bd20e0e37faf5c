"""The photo service: the store, uploads by hash that resume, what a record's photos have reached, serving.

The calls follow the tus 1.0 core protocol's semantics, on a URL that is the photo's SHA-256, so
there is no creation step and no upload id (server/photos/views.py). Properties:

* **The server never says it has a photo it has not verified.** `missing` and HEAD count only
  complete blobs, and a blob is complete only after its bytes hashed to its name and decoded as an
  image (server/photos/blobs.py, images.py). So a tablet deletes nothing the server does not hold
  (KoboToolbox kobocat #432).
* **A drop costs the bytes in flight, not the photo.** Bytes that arrived before a cut are kept;
  the client asks HEAD and appends from there (ODK Collect #7356).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from flask import Response, current_app, send_file
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import ClientDisconnected

from ..db import db
from ..errors import ApiError
from ..models import PhotoUpload, Record
from .access import photo_hashes
from .blobs import (BlobNotFound, BlobStore, FolderBlobStore, HashMismatch, LengthMismatch, OffsetMismatch,
                    UploadLocked, UploadStatus)
from .images import NotAnImage, TooManyPixels, check_image, make_thumbnail

LOCK_WAIT_SECONDS = 5.0  # an append of the same photo that runs longer makes the other one a 409
# HEAD waits this long for an append in progress to end. Right after a cut, the cut request is still
# writing the bytes that had arrived; an offset read then would be stale, and the PATCH that follows
# would send its whole body only to get 409.
SETTLE_SECONDS = 2.0


def blob_store() -> BlobStore:
    """The app's photo store, made on first use: the S3 bucket of GRIDPATROL_BLOB_URL when it is set
    (server/photos/s3.py; boto3 is imported only then), else the folder GRIDPATROL_PHOTO_DIR."""
    blobs = current_app.extensions.get("gridpatrol.blobs")
    if blobs is None:
        s3 = current_app.config.get("GRIDPATROL_S3")
        if s3 is not None:
            from .s3 import S3BlobStore

            blobs = S3BlobStore.from_settings(s3)
        else:
            blobs = FolderBlobStore(current_app.config["GRIDPATROL_PHOTO_DIR"])
        current_app.extensions["gridpatrol.blobs"] = blobs
    return blobs


def max_photo_bytes() -> int:
    """The largest photo the server accepts (GRIDPATROL_MAX_PHOTO_BYTES)."""
    return int(current_app.config.get("GRIDPATROL_MAX_PHOTO_BYTES") or 15 * 1024 * 1024)


def thumbnail(sha256: str) -> bytes:
    """The photo's thumbnail (JPEG), made on first request and kept beside it."""
    blobs = blob_store()
    data = blobs.get_variant(sha256, "thumb")
    if data is not None:
        return data
    with blobs.open(sha256) as handle:
        data = make_thumbnail(handle)
    blobs.put_variant(sha256, "thumb", data)  # two requests at once both write the same bytes: harmless
    return data


def keep_photos(photos: Iterable[bytes], uploader: str) -> list[str]:
    """Keep whole photos (a page's upload) in the blob store, sent by ``uploader``; their hashes, in order, each once."""
    blobs = blob_store()
    hashes = list(dict.fromkeys(blobs.put(data, check=check_image) for data in photos))
    for sha256 in hashes:
        note_upload(sha256, uploader)
    return hashes


def note_upload(sha256: str, uploader: str) -> None:
    """Remember that the user sent bytes of the photo (who may attach it: server/photos/access.py). Commits."""
    if db.session.get(PhotoUpload, (sha256, uploader)) is None:
        db.session.add(PhotoUpload(sha256=sha256, user_id=uploader))
        try:
            db.session.commit()
        except IntegrityError:  # the same user's other request noted it first
            db.session.rollback()


def _forget_uploads(sha256: str) -> None:
    """A discarded upload: nobody sent its bytes any more (a wrong hash tells nothing of who has the photo)."""
    db.session.execute(delete(PhotoUpload).where(PhotoUpload.sha256 == sha256))
    db.session.commit()


# --- the resumable upload ----------------------------------------------------------------------

def upload_status(sha256: str) -> UploadStatus:
    """How much of the photo the server holds (after an append in progress settles); 404 when nothing."""
    status = blob_store().status(sha256, settle_seconds=SETTLE_SECONDS)
    if status is None:
        raise ApiError(404, "the server holds nothing of this photo", code="not_found")
    return status


def append(sha256: str, offset: int, length: int | None, body_length: int | None,
           read: Callable[[int], bytes], *, uploader: str) -> tuple[int, int]:
    """Append a PATCH's body, sent by ``uploader``, at ``offset``; returns (the new offset, the declared length).

    The state machine of one upload: a complete photo only answers its offset; the first PATCH
    declares the length (later ones may repeat it, never change it); the offset must be the bytes
    held; when the last byte arrives the hash and the image are checked, and a photo that fails
    either is discarded. Every refusal is an ApiError with the API's code.
    """
    limit = max_photo_bytes()
    if length is not None and length > limit:
        raise ApiError(413, f"a photo may be at most {limit} bytes; this one is {length}", code="too_large")
    try:
        with blob_store().upload(sha256, wait_seconds=LOCK_WAIT_SECONDS) as session:
            if session.complete:
                if offset != session.offset:
                    raise _offset_conflict(session.offset, offset)
                return session.offset, session.length
            if length is not None:
                session.declare(length)
            declared = session.length
            if declared is None:
                raise ApiError(400, "the first PATCH of a photo must carry Upload-Length", code="invalid")
            if declared > limit:
                session.discard()
                raise ApiError(413, f"a photo may be at most {limit} bytes; this one is {declared}", code="too_large")
            if offset != session.offset:
                raise _offset_conflict(session.offset, offset)
            room = declared - offset
            if body_length is not None and body_length > room:
                raise ApiError(400, f"the body ({body_length} bytes) runs past Upload-Length "
                                    f"({room} bytes left)", code="invalid")
            try:
                new_offset = session.append(read, room)
            except ClientDisconnected:
                # What arrived is kept; the client, if it still listens, asks HEAD and resumes.
                raise ApiError(400, f"the connection ended before the body did; {session.offset} bytes are held",
                               code="incomplete_body") from None
            if new_offset > offset:
                note_upload(sha256, uploader)
            if new_offset == declared:
                _finish(session, sha256)
            return new_offset, declared
    except OffsetMismatch as exc:  # another server wrote at this offset first (server/photos/s3.py)
        raise _offset_conflict(exc.held, exc.given) from None
    except LengthMismatch as exc:
        raise ApiError(409, str(exc), code="length_mismatch") from None
    except UploadLocked as exc:
        raise ApiError(409, f"{exc}; ask HEAD and try again", code="upload_locked") from None


def _finish(session, sha256: str) -> None:
    """Check the whole upload: its hash, then that it is an image; a failure discards it."""
    try:
        session.finish(check=check_image)
    except HashMismatch as exc:
        _forget_uploads(sha256)
        raise ApiError(400, f"{exc}; the upload was discarded, upload the photo again",
                       code="hash_mismatch") from None
    except NotAnImage:
        _forget_uploads(sha256)
        raise ApiError(415, "the upload is not a JPEG, PNG or WebP image; it was discarded",
                       code="not_an_image") from None
    except TooManyPixels as exc:
        _forget_uploads(sha256)
        raise ApiError(413, f"{exc}; the upload was discarded", code="too_large") from None


def _offset_conflict(held: int, given: int) -> ApiError:
    return ApiError(409, f"the server holds {held} bytes of this photo, not {given}; resume from {held}",
                    code="offset_mismatch", details={"offset": held})


# --- what a record's photos have reached, and serving them ------------------------------------

@dataclass(frozen=True)
class PhotoReceipt:
    """How many of a record's photos the server holds: "2 of 3 photos received"."""

    held: int
    total: int
    missing: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        """Whether every photo the record refers to is held."""
        return self.held == self.total

    def __str__(self) -> str:
        return f"{self.held} of {self.total} photo{'' if self.total == 1 else 's'} received"


def photos_received(record: Record | Mapping[str, Any]) -> PhotoReceipt:
    """For a record (a stored Record or its plain values), how many of its photos the server holds."""
    values = record.field_values if isinstance(record, Record) else record
    photos = list(dict.fromkeys(photo_hashes(values)))
    missing = tuple(blob_store().missing(photos))
    return PhotoReceipt(len(photos) - len(missing), len(photos), missing)


def send_photo(sha256: str) -> Response:
    """The photo as a response; raises ApiError 404 when it is not held.

    Served through the app from either store, never by a redirect to a presigned S3 address: the access check
    (who may see a record that refers to the photo) then holds for every byte, as a presigned address would not
    (anyone it is passed to may use it until it expires); the tablets and browsers need to reach only the app, not
    the object store, which stays on the servers' network; and the answer stays private to its user (no shared
    cache) with the hash as its ETag, as from the folder.
    """
    try:
        # Read whole (the app's photos are ~0.5 MB, at most GRIDPATROL_MAX_PHOTO_BYTES): no file handle or S3
        # connection outlives the request or waits on a slow client, whichever server or test client runs it;
        # the store is read at its own speed, and the client is then served from memory, ranges included.
        data = blob_store().read(sha256)
    except BlobNotFound:
        raise ApiError(404, "the server does not hold this photo", code="not_found") from None
    mimetype = _sniff(data[:12])
    response = send_file(io.BytesIO(data), mimetype=mimetype, etag=sha256, conditional=True,
                         download_name=f"{sha256}{_EXTENSIONS.get(mimetype, '')}", max_age=86400)
    _private(response)
    return response


def send_thumbnail(sha256: str) -> Response:
    """The photo's thumbnail as a response; raises ApiError 404 when the photo is not held."""
    try:
        data = thumbnail(sha256)
    except BlobNotFound:
        raise ApiError(404, "the server does not hold this photo", code="not_found") from None
    response = send_file(io.BytesIO(data), mimetype="image/jpeg", etag=f"{sha256}-thumb", conditional=True,
                         download_name=f"{sha256}-thumb.jpg", max_age=86400)
    _private(response)
    return response


def _private(response: Response) -> None:
    # send_file marks answers public; what a user may see depends on who asks, so no shared cache may keep it.
    response.cache_control.public = False
    response.cache_control.private = True


_EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}


def _sniff(head: bytes) -> str:
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"



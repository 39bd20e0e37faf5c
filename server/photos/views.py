"""Photos under /api/v1: which the server lacks, resumable upload by hash, and serving them to those who may see them.

The calls follow the tus 1.0 core protocol's semantics, on a URL that is the
photo's SHA-256, so there is no creation step and no upload id:

    POST  /photos/missing     {sha256: [...]} -> {missing: [...]}: what to upload
    HEAD  /photos/<sha256>    Upload-Offset (bytes held), Upload-Length once declared; 404 when nothing is held
    PATCH /photos/<sha256>    append at Upload-Offset; the last byte triggers the checks
    GET   /photos/<sha256>    the photo; /thumb its thumbnail, made once and cached

Properties:

* **The server never says it has a photo it has not verified.** `missing`
  and HEAD count only complete blobs, and a blob is complete only after its
  bytes hashed to its name and decoded as an image (server/blobs.py). So a
  tablet deletes nothing the server does not hold (KoboToolbox kobocat #432).
* **A drop costs the bytes in flight, not the photo.** Bytes that arrived
  before a cut are kept; the client asks HEAD and appends from there (ODK
  Collect #7356).
* **Anyone with a device token may upload; only those who may see a record
  that refers to a photo may read it.** An upload reveals nothing: the name
  is the hash of the bytes, so only someone who has the photo knows it.

Who may see a photo (`may_see`): a worker, when a record of one of their
grids refers to it; a supervisor or an admin, when any record does; a unit
user, when it belongs to a case (the event or one of its case actions) that
was ever dispatched to their unit, since they need the evidence to rectify
and keep seeing the evidence of work they did. A tombstoned record grants
nothing. A photo that no record refers to yet is served to nobody.

Hazard: finding the records that refer to a photo. Photos are a list inside
each record's JSON, with no index of their own; the lookup narrows by kind
(and by bucket for a worker) and matches the hash as text, then checks the
list itself. A page that knows the record it shows passes ``?record=<id>``,
which makes the check one primary-key read. If that ever is not enough, a
table of photo references written by `store.apply_changes` would make it an
index lookup everywhere.

Errors all have the API's shape: 400 malformed headers or a wrong hash (the
upload is discarded, code ``hash_mismatch``), 401, 403 a photo no record you
may see refers to, 404 nothing held, 409 an offset or length that is not the
server's (``offset_mismatch`` with ``details.offset``, ``length_mismatch``) or
another upload of the same photo in progress (``upload_locked``), 413 over
``GRIDPATROL_MAX_PHOTO_BYTES``, 415 not application/offset+octet-stream
(``wrong_content_type``) or not an image (``not_an_image``).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import Any, BinaryIO, Iterable, Mapping

from flask import Blueprint, Response, current_app, g, jsonify, request, send_file
from marshmallow import Schema, fields, validate
from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import String, cast, select
from werkzeug.exceptions import ClientDisconnected

from shared.records import FullMatch, Text, grid_bucket

from server.sync.views import device_required, documented, read_json
from server.photos.blobs import (BlobNotFound, BlobStore, FolderBlobStore, HashMismatch, LengthMismatch, UploadLocked,
                    is_sha256)
from server.db import db
from server.errors import ApiError
from server.models import Record, User

bp = Blueprint("photos", __name__, url_prefix="/api/v1")

TUS_VERSION = "1.0.0"
OCTET_STREAM = "application/offset+octet-stream"
# Formats an upload may be: what cameras and the app make. Pillow can open many more (some through
# external programs), and none of them is a photo of a case.
IMAGE_FORMATS = ("JPEG", "PNG", "WEBP")
MAX_PIXELS = 64_000_000  # about 9000 x 7000: far above any phone camera, far below a decompression bomb
THUMB_EDGE = 320
THUMB_QUALITY = 75
LOCK_WAIT_SECONDS = 5.0  # an append of the same photo that runs longer makes the other one a 409
# HEAD waits this long for an append in progress to end. Right after a cut, the cut request is still
# writing the bytes that had arrived; an offset read then would be stale, and the PATCH that follows
# would send its whole body only to get 409.
SETTLE_SECONDS = 2.0
PHOTO_KINDS = ("event", "case_action", "house_check")  # the kinds with a `photos` field
_PHOTO_PARAM = [{"name": "sha256", "in": "path", "required": True,
                 "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}]


# --- services -----------------------------------------------------------------------------------

def blob_store() -> BlobStore:
    """The app's photo store (a folder at GRIDPATROL_PHOTO_DIR), made on first use."""
    blobs = current_app.extensions.get("gridpatrol.blobs")
    if blobs is None:
        blobs = current_app.extensions["gridpatrol.blobs"] = FolderBlobStore(current_app.config["GRIDPATROL_PHOTO_DIR"])
    return blobs


def max_photo_bytes() -> int:
    """The largest photo the server accepts (GRIDPATROL_MAX_PHOTO_BYTES)."""
    return int(current_app.config.get("GRIDPATROL_MAX_PHOTO_BYTES") or 15 * 1024 * 1024)


class NotAnImage(ValueError):
    """An upload that does not decode as a JPEG, PNG or WebP image."""


class TooManyPixels(ValueError):
    """An image larger in pixels than the server decodes."""


def check_image(handle: BinaryIO) -> str:
    """Decode the image (a truncated, damaged or forged one fails); returns its format."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "corrupt EXIF" and the like: the pixels decide
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(handle, formats=IMAGE_FORMATS) as image:
                if image.width * image.height > MAX_PIXELS:
                    raise TooManyPixels(f"the image has {image.width} x {image.height} pixels; "
                                        f"at most {MAX_PIXELS} are accepted")
                # A JPEG decoded at 1/8 scale still reads every entropy-coded byte, so a damaged or
                # truncated one fails all the same, at a third of the cost of a full decode.
                image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
                image.load()
                return image.format
    except TooManyPixels:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise TooManyPixels(str(exc)) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        # Pillow reports bad input through all of these, depending on the format and the damage.
        raise NotAnImage(f"the upload is not a {', '.join(IMAGE_FORMATS)} image: {exc}") from None


def thumbnail(sha256: str) -> bytes:
    """The photo's thumbnail (JPEG, longest edge THUMB_EDGE), made on first request and kept."""
    blobs = blob_store()
    data = blobs.get_variant(sha256, "thumb")
    if data is not None:
        return data
    with blobs.open(sha256) as handle, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Image.open(handle, formats=IMAGE_FORMATS) as image:
            image.draft("RGB", (THUMB_EDGE, THUMB_EDGE))  # JPEG: decode at 1/2..1/8 scale, much faster
            small = ImageOps.exif_transpose(image)
            small.thumbnail((THUMB_EDGE, THUMB_EDGE))
            if small.mode not in ("RGB", "L"):
                small = small.convert("RGB")
            out = io.BytesIO()
            small.save(out, "JPEG", quality=THUMB_QUALITY)
    data = out.getvalue()
    blobs.put_variant(sha256, "thumb", data)  # two requests at once both write the same bytes: harmless
    return data


def _photos_of(values: Mapping[str, Any]) -> list[str]:
    photos = values.get("photos")
    return [p for p in photos if isinstance(p, str)] if isinstance(photos, list) else []


def referring_records(sha256: str, buckets: Iterable[str] | None = None) -> list[Record]:
    """The live records (events, case actions, house checks) whose photos include the hash."""
    query = select(Record).where(Record.kind.in_(PHOTO_KINDS),
                                 cast(Record.field_values, String).contains(sha256, autoescape=True))
    if buckets is not None:
        query = query.where(Record.bucket.in_(list(buckets)))
    rows = db.session.scalars(query).all()
    return [r for r in rows if sha256 in _photos_of(r.field_values) and not r.field_values.get("_deleted")]


def _dispatched_to(unit: str | None, events: set[str]) -> bool:
    """Whether any of the events was ever dispatched to the unit."""
    if not unit or not events:
        return False
    actions = db.session.scalars(
        select(Record.field_values).where(Record.kind == "case_action",
                                          Record.field_values["event"].as_string().in_(sorted(events)))
    ).all()
    return any(a.get("action") == "dispatch" and a.get("unit") == unit for a in actions)


def _may_see_records(user: User, records: list[Record]) -> bool:
    if user.role in ("supervisor", "admin"):
        return bool(records)
    if user.role == "worker":
        mine = {grid_bucket(code) for code in user.grid_codes}
        return any(r.bucket in mine for r in records)
    if user.role == "unit":
        events = {r.id if r.kind == "event" else r.field_values.get("event") for r in records
                  if r.kind in ("event", "case_action")}
        return _dispatched_to(user.unit, {e for e in events if isinstance(e, str)})
    return False


def may_see(user: User, sha256: str, record_id: str | None = None) -> bool:
    """Whether the user may see a record that refers to the photo (only ``record_id``, when given)."""
    if record_id is not None:
        record = db.session.get(Record, record_id)
        if record is None or record.kind not in PHOTO_KINDS or sha256 not in _photos_of(record.field_values) \
                or record.field_values.get("_deleted"):
            return False
        return _may_see_records(user, [record])
    buckets = [grid_bucket(code) for code in user.grid_codes] if user.role == "worker" else None
    return _may_see_records(user, referring_records(sha256, buckets))


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
    photos = list(dict.fromkeys(_photos_of(values)))
    missing = tuple(blob_store().missing(photos))
    return PhotoReceipt(len(photos) - len(missing), len(photos), missing)


def send_photo(sha256: str) -> Response:
    """The photo as a response; raises ApiError 404 when it is not held."""
    try:
        # Read whole (the app's photos are ~0.5 MB, at most GRIDPATROL_MAX_PHOTO_BYTES): no file handle
        # outlives the request, whichever server or test client runs it.
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


# --- schemas ------------------------------------------------------------------------------------

_SHA_TEXT = FullMatch(r"^[0-9a-f]{64}$", error="is not a SHA-256 digest in lowercase hex")


class MissingRequest(Schema):
    sha256 = fields.List(Text(validate=_SHA_TEXT), required=True, validate=validate.Length(max=1000),
                         metadata={"description": "the photos the device's records refer to (at most 1000)"})


class MissingAnswer(Schema):
    missing = fields.List(fields.String(), required=True,
                          metadata={"description": "those the server does not hold complete, in the order asked"})


# --- views --------------------------------------------------------------------------------------

def _checked(sha256: str) -> str:
    if not is_sha256(sha256):
        raise ApiError(400, f"{sha256[:80]!r} is not a SHA-256 digest in lowercase hex", code="invalid")
    return sha256


def _header_int(name: str, *, required: bool) -> int | None:
    raw = request.headers.get(name)
    if raw is None or raw == "":
        if required:
            raise ApiError(400, f"the {name} header is required", code="invalid")
        return None
    if not raw.isdigit() or len(raw) > 15:
        raise ApiError(400, f"the {name} header must be a non-negative integer, not {raw[:40]!r}", code="invalid")
    return int(raw)


def _tus(response: Response, offset: int, length: int | None = None) -> Response:
    response.headers["Upload-Offset"] = str(offset)
    if length is not None:
        response.headers["Upload-Length"] = str(length)
    response.headers["Tus-Resumable"] = TUS_VERSION
    response.headers["Cache-Control"] = "no-store"  # an offset is stale the moment it is sent
    if response.status_code == 204 or request.method == "HEAD":
        del response.headers["Content-Type"]  # no body, so no type
    return response


def _upload_status(sha256: str) -> Response:
    status = blob_store().status(_checked(sha256), settle_seconds=SETTLE_SECONDS)
    if status is None:
        raise ApiError(404, "the server holds nothing of this photo", code="not_found")
    return _tus(Response(status=200), status.offset, status.length)


@documented("/photos/missing", "POST", "Which of these photos the server does not hold",
            request_schema=MissingRequest, answer=MissingAnswer, errors=(400, 413), blueprint=bp)
@device_required
def photos_missing():
    """Counts only complete, verified photos: a photo not listed here is safe on the server."""
    body = read_json(MissingRequest())
    return jsonify(MissingAnswer().dump({"missing": blob_store().missing(body["sha256"])}))


_UPLOAD_HEADERS = {
    "Upload-Offset": {"description": "bytes held", "schema": {"type": "integer"}},
    "Upload-Length": {"description": "the declared length, once a PATCH declared it", "schema": {"type": "integer"}},
    "Tus-Resumable": {"schema": {"type": "string", "example": TUS_VERSION}},
}


@documented("/photos/<sha256>", "HEAD", "How many bytes of a photo the server holds", errors=(400, 404),
            blueprint=bp, openapi={"parameters": _PHOTO_PARAM, "responses": {
                "200": {"description": "Upload-Offset: bytes held (equal to Upload-Length when complete)",
                        "headers": _UPLOAD_HEADERS}}})
@device_required
def photo_offset(sha256: str):
    """A complete photo answers with Upload-Offset equal to Upload-Length. A HEAD answer has no body."""
    return _upload_status(sha256)


@documented("/photos/<sha256>", "PATCH", "Append bytes to a photo's upload at the offset the server holds",
            errors=(400, 404, 409, 413, 415), blueprint=bp, openapi={
                "parameters": _PHOTO_PARAM + [
                    {"name": "Upload-Offset", "in": "header", "required": True, "schema": {"type": "integer"},
                     "description": "must equal the bytes the server holds (HEAD), else 409"},
                    {"name": "Upload-Length", "in": "header", "schema": {"type": "integer"},
                     "description": "the photo's total size; required until the server knows it"}],
                "requestBody": {"required": True, "content": {OCTET_STREAM: {
                    "schema": {"type": "string", "format": "binary"}}}},
                "responses": {"204": {"description": "appended; Upload-Offset is the new offset",
                                      "headers": _UPLOAD_HEADERS}}})
@device_required
def photo_append(sha256: str):
    """When the last byte arrives, the SHA-256 is checked (mismatch: 400, upload discarded) and the bytes must
    decode as a JPEG, PNG or WebP image (else 415, discarded). Bytes received before a dropped connection are kept."""
    sha256 = _checked(sha256)
    offset = _header_int("Upload-Offset", required=True)
    length = _header_int("Upload-Length", required=False)
    if request.mimetype != OCTET_STREAM:
        raise ApiError(415, f"the body must be {OCTET_STREAM}, not {request.mimetype or 'untyped'}",
                       code="wrong_content_type")
    limit = max_photo_bytes()
    if length is not None and length > limit:
        raise ApiError(413, f"a photo may be at most {limit} bytes; this one is {length}", code="too_large")
    request.max_content_length = limit  # the app's limit is a push's; a photo has its own
    try:
        with blob_store().upload(sha256, wait_seconds=LOCK_WAIT_SECONDS) as session:
            if session.complete:
                if offset != session.offset:
                    raise _offset_conflict(session.offset, offset)
                return _tus(Response(status=204), session.offset, session.length)
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
            if request.content_length is not None and request.content_length > room:
                raise ApiError(400, f"the body ({request.content_length} bytes) runs past Upload-Length "
                                    f"({room} bytes left)", code="invalid")
            try:
                new_offset = session.append(request.stream.read, room)
            except ClientDisconnected:
                # What arrived is kept; the client, if it still listens, asks HEAD and resumes.
                raise ApiError(400, f"the connection ended before the body did; {session.offset} bytes are held",
                               code="incomplete_body") from None
            if new_offset == declared:
                try:
                    session.finish(check=check_image)
                except HashMismatch as exc:
                    raise ApiError(400, f"{exc}; the upload was discarded, upload the photo again",
                                   code="hash_mismatch") from None
                except NotAnImage as exc:
                    raise ApiError(415, f"{exc}; the upload was discarded", code="not_an_image") from None
                except TooManyPixels as exc:
                    raise ApiError(413, f"{exc}; the upload was discarded", code="too_large") from None
            return _tus(Response(status=204), new_offset, declared)
    except LengthMismatch as exc:
        raise ApiError(409, str(exc), code="length_mismatch") from None
    except UploadLocked as exc:
        raise ApiError(409, f"{exc}; ask HEAD and try again", code="upload_locked") from None


def _offset_conflict(held: int, given: int) -> ApiError:
    return ApiError(409, f"the server holds {held} bytes of this photo, not {given}; resume from {held}",
                    code="offset_mismatch", details={"offset": held})


def _record_hint() -> str | None:
    record = request.args.get("record")
    return record[:64] if record else None


def _visible(sha256: str) -> str:
    """The hash, once the photo is known held and visible to the user; else 404 or 403."""
    sha256 = _checked(sha256)
    if not blob_store().has(sha256):
        raise ApiError(404, "the server does not hold this photo", code="not_found")
    if not may_see(g.user, sha256, _record_hint()):
        raise ApiError(403, "no record you may see refers to this photo", code="forbidden")
    return sha256


_RECORD_PARAM = [{"name": "record", "in": "query", "required": False, "schema": {"type": "string"},
                  "description": "the id of a record that refers to the photo: checks only that record (faster)"}]
_IMAGE_ANSWER = {"200": {"description": "the image", "content": {
    "image/jpeg": {"schema": {"type": "string", "format": "binary"}}}}}


@documented("/photos/<sha256>", "GET", "A photo, to those who may see a record that refers to it",
            errors=(400, 403, 404), blueprint=bp,
            openapi={"parameters": _PHOTO_PARAM + _RECORD_PARAM, "responses": _IMAGE_ANSWER})
@device_required
def photo(sha256: str):
    """The photo as uploaded (the app sends JPEG). Photos never change, so ETag is the hash."""
    if request.method == "HEAD":  # Flask routes HEAD to GET views too; HEAD here means the upload offset
        return _upload_status(sha256)
    return send_photo(_visible(sha256))


@documented("/photos/<sha256>/thumb", "GET", "A photo's thumbnail, to those who may see a record that refers to it",
            errors=(400, 403, 404), blueprint=bp,
            openapi={"parameters": _PHOTO_PARAM + _RECORD_PARAM, "responses": _IMAGE_ANSWER})
@device_required
def photo_thumbnail(sha256: str):
    """A JPEG whose longest edge is 320 px, made on first request and kept beside the photo."""
    return send_thumbnail(_visible(sha256))

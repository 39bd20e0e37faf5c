"""Photos under /api/v1: which the server lacks, resumable upload by hash, and serving them to those who may see them.

    POST  /photos/missing     {sha256: [...]} -> {missing: [...]}: what to upload
    HEAD  /photos/<sha256>    Upload-Offset (bytes held), Upload-Length once declared; 404 when nothing is held
    PATCH /photos/<sha256>    append at Upload-Offset; the last byte triggers the checks
    GET   /photos/<sha256>    the photo; /thumb its thumbnail, made once and cached

Views load, call `server.photos.service` (the upload's state machine, the store) or
`server.photos.access` (who may see a photo), and answer. Anyone with a device token may upload;
only those who may see a record that refers to a photo may read it. An upload reveals nothing: the
name is the hash of the bytes, so only someone who has the photo knows it.

Errors all have the API's shape: 400 malformed headers or a wrong hash (the
upload is discarded, code ``hash_mismatch``), 401, 403 a photo no record you
may see refers to, 404 nothing held, 409 an offset or length that is not the
server's (``offset_mismatch`` with ``details.offset``, ``length_mismatch``) or
another upload of the same photo in progress (``upload_locked``), 413 over
``GRIDPATROL_MAX_PHOTO_BYTES``, 415 not application/offset+octet-stream
(``wrong_content_type``) or not an image (``not_an_image``).
"""

from __future__ import annotations

import logging
import re

from flask import Blueprint, Response, g, jsonify, request
from werkzeug.routing import BaseConverter
from marshmallow import Schema, fields, validate

from shared.records import SHA256_PATTERN, FullMatch, Text, is_sha256

from ..api import device_required, documented, read_json
from ..errors import ApiError
from . import access, service

bp = Blueprint("photos", __name__, url_prefix="/api/v1")
log = logging.getLogger("gridpatrol.photos")


class PhotoName(BaseConverter):
    """A photo's name in a URL: any one path segment but ``missing``, which is a call of its own.

    So PATCH /photos/missing is 405 (with Allow: POST), not a PATCH of a photo named "missing". The
    view checks that the name is a SHA-256 (400 otherwise).
    """

    regex = r"(?!missing$)[^/]+"


bp.record_once(lambda state: state.app.url_map.converters.setdefault("photo", PhotoName))

_DIGITS = re.compile(r"[0-9]{1,15}")
TUS_VERSION = "1.0.0"
OCTET_STREAM = "application/offset+octet-stream"
_PHOTO_PARAM = [{"name": "sha256", "in": "path", "required": True,
                 "schema": {"type": "string", "pattern": SHA256_PATTERN.pattern}}]


# --- schemas ------------------------------------------------------------------------------------

_SHA_TEXT = FullMatch(SHA256_PATTERN, error="is not a SHA-256 digest in lowercase hex")


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
    if _DIGITS.fullmatch(raw) is None:  # ASCII digits only: str.isdigit() also takes "²", which int() refuses
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
    status = service.upload_status(_checked(sha256))
    return _tus(Response(status=200), status.offset, status.length)


@documented("/photos/missing", "POST", "Which of these photos the server does not hold",
            request_schema=MissingRequest, answer=MissingAnswer, errors=(400, 413), blueprint=bp)
@device_required
def photos_missing():
    """Counts only complete, verified photos: a photo not listed here is safe on the server."""
    body = read_json(MissingRequest())
    return jsonify(MissingAnswer().dump({"missing": service.blob_store().missing(body["sha256"])}))


def _size(limit: int) -> dict:
    """A byte count of a photo, as a header's schema: at most ``limit`` (GRIDPATROL_MAX_PHOTO_BYTES)."""
    return {"type": "integer", "minimum": 0, "maximum": limit}


def _upload_headers(limit: int) -> dict:
    return {"Upload-Offset": {"description": "bytes held", "required": True, "schema": _size(limit)},
            "Upload-Length": {"description": "the declared length, once a PATCH declared it", "schema": _size(limit)},
            "Tus-Resumable": {"required": True, "schema": {"type": "string", "const": TUS_VERSION}}}


@documented("/photos/<photo:sha256>", "HEAD", "How many bytes of a photo the server holds", errors=(400, 404),
            blueprint=bp, openapi=lambda: {"parameters": _PHOTO_PARAM, "responses": {
                "200": {"description": "Upload-Offset: bytes held (equal to Upload-Length when complete)",
                        "headers": _upload_headers(service.max_photo_bytes())}}})
@device_required
def photo_offset(sha256: str):
    """A complete photo answers with Upload-Offset equal to Upload-Length. A HEAD answer has no body."""
    return _upload_status(sha256)


@documented("/photos/<photo:sha256>", "PATCH", "Append bytes to a photo's upload at the offset the server holds",
            errors=(400, 404, 409, 413, 415), blueprint=bp, openapi=lambda: {
                "parameters": _PHOTO_PARAM + [
                    {"name": "Upload-Offset", "in": "header", "required": True,
                     "schema": _size(service.max_photo_bytes()),
                     "description": "must equal the bytes the server holds (HEAD), else 409"},
                    {"name": "Upload-Length", "in": "header", "required": True,
                     "schema": _size(service.max_photo_bytes()),
                     "description": "the photo's total size, at most GRIDPATROL_MAX_PHOTO_BYTES (else 413). The "
                                    "server needs it on the first PATCH of a photo (400 without) and takes it "
                                    "again, unchanged, on the later ones (409 if it differs), so clients always "
                                    "send it. A body that runs past it, or bytes whose SHA-256 is not the name, "
                                    "are 400"}],
                "requestBody": {"required": True, "content": {OCTET_STREAM: {
                    "schema": {"type": "string", "format": "binary"}}}},
                "responses": {"204": {"description": "appended; Upload-Offset is the new offset",
                                      "headers": _upload_headers(service.max_photo_bytes())}}})
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
    request.max_content_length = service.max_photo_bytes()  # the app's limit is a push's; a photo has its own
    try:
        new_offset, declared = service.append(sha256, offset, length, request.content_length, request.stream.read,
                                              uploader=g.user.id)
    except ApiError as exc:
        held = exc.details.get("offset") if isinstance(exc.details, dict) else None
        log.info("PATCH %s at %d: %d %s%s", sha256[:12], offset, exc.status, exc.code,
                 "" if held is None else f"; held {held}")
        raise
    _log_append(sha256, offset, new_offset, declared)
    # A PATCH cut part way is a 204 like a complete one (the bytes that came are kept): what the server holds
    # after it is in Upload-Offset and Upload-Length, which an access log prints with gunicorn's
    # --access-logformat '... %({upload-offset}o)s/%({upload-length}o)s', and in the log line above.
    return _tus(Response(status=204), new_offset, declared)


def _log_append(sha256: str, offset: int, new_offset: int, declared: int | None) -> None:
    """One line per PATCH: what it brought and what is held; a body that ended early is a warning."""
    expected = request.content_length
    got = new_offset - offset
    if expected is not None and got < expected and new_offset != declared:
        log.warning("PATCH %s cut: %d of %d bytes arrived at offset %d; held %d of %s", sha256[:12], got, expected,
                    offset, new_offset, declared)
    else:
        log.info("PATCH %s: %d bytes at offset %d; held %d of %s", sha256[:12], got, offset, new_offset, declared)


def _record_hint() -> str | None:
    record = request.args.get("record")
    return record[:64] if record else None


def _visible(sha256: str) -> str:
    """The hash, once the photo is known held and visible to the user; else 404 or 403."""
    sha256 = _checked(sha256)
    if not service.blob_store().has(sha256):
        raise ApiError(404, "the server does not hold this photo", code="not_found")
    if not access.may_see(g.user, sha256, _record_hint()):
        raise ApiError(403, "no record you may see refers to this photo", code="forbidden")
    return sha256


_RECORD_PARAM = [{"name": "record", "in": "query", "required": False, "schema": {"type": "string"},
                  "description": "the id of a record that refers to the photo: checks only that record (faster)"}]
_IMAGE_ANSWER = {"200": {"description": "the image", "content": {
    "image/jpeg": {"schema": {"type": "string", "format": "binary"}}}}}


@documented("/photos/<photo:sha256>", "GET", "A photo, to those who may see a record that refers to it",
            errors=(400, 403, 404), blueprint=bp,
            openapi={"parameters": _PHOTO_PARAM + _RECORD_PARAM, "responses": _IMAGE_ANSWER})
@device_required
def photo(sha256: str):
    """The photo as uploaded (the app sends JPEG). Photos never change, so ETag is the hash."""
    if request.method == "HEAD":  # Flask routes HEAD to GET views too; HEAD here means the upload offset
        return _upload_status(sha256)
    return service.send_photo(_visible(sha256))


@documented("/photos/<photo:sha256>/thumb", "GET", "A photo's thumbnail, to those who may see a record that refers to it",
            errors=(400, 403, 404), blueprint=bp,
            openapi={"parameters": _PHOTO_PARAM + _RECORD_PARAM, "responses": _IMAGE_ANSWER})
@device_required
def photo_thumbnail(sha256: str):
    """A JPEG whose longest edge is 320 px, made on first request and kept beside the photo."""
    return service.send_thumbnail(_visible(sha256))

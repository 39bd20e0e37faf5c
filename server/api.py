"""What every call under /api/v1 shares: body reading, device tokens, and the OpenAPI document.

Each API view is registered with `documented`, which is also what the OpenAPI document
(/api/v1/openapi.json) is generated from, so the document cannot drift from the views. Feature
packages (sync, photos) register their views on their own blueprints through it. `health` and the
document itself live here: they belong to no feature.
"""

from __future__ import annotations

import json
import re
import zlib
from functools import wraps
from typing import Any, Callable

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, current_app, g, jsonify, request
from marshmallow import Schema, ValidationError
from marshmallow import fields as ma_fields
from sqlalchemy import text

from shared.records import Instant, Text

from . import accounts
from .clock import server_clock
from .db import db
from .errors import ApiError, describe

bp = Blueprint("api", __name__, url_prefix="/api/v1")
_DOCUMENTED: list[dict[str, Any]] = []


class ErrorBody(Schema):
    code = ma_fields.String(required=True, metadata={"example": "clock_skew"})
    message = ma_fields.String(required=True)
    details = ma_fields.Raw(metadata={"description": "for clock_skew: {server_time}; for invalid input: the fields"})


class ErrorSchema(Schema):
    error = ma_fields.Nested(ErrorBody, required=True)


class HealthAnswer(Schema):
    status = ma_fields.String(required=True)
    engine = ma_fields.String(required=True, metadata={"example": "sqlite"})
    migration = ma_fields.String(allow_none=True, metadata={"description": "the Alembic revision of the store"})
    time = ma_fields.String(required=True)


def documented(rule: str, method: str, summary: str, *, blueprint: Blueprint,
               request_schema: type[Schema] | None = None, answer: type[Schema] | None = None,
               errors: tuple[int, ...] = (), auth: bool = True,
               openapi: dict[str, Any] | Callable[[], dict[str, Any]] | None = None):
    """Register a view on the blueprint and in the OpenAPI document.

    ``openapi`` is merged into the operation, for what the schemas cannot say: path parameters, a body
    that is not JSON, an answer other than 200 (its ``responses`` then replace the default 200). It may
    be a function of no argument answering that dict, called in the app when the document is built, for
    what depends on the app's configuration (a limit).
    """

    def decorator(view):
        _DOCUMENTED.append({"rule": rule, "method": method.lower(), "summary": summary, "doc": view.__doc__,
                            "request": request_schema, "answer": answer, "errors": errors, "auth": auth,
                            "openapi": openapi or {}})
        blueprint.add_url_rule(rule, view_func=view, methods=[method])
        return view

    return decorator


def read_body() -> bytes:
    """The request body, unzipped when it says gzip; over the size limit, 413."""
    limit = current_app.config["GRIDPATROL_MAX_PUSH_BYTES"]
    raw = request.get_data(cache=False)
    if len(raw) > limit:
        raise ApiError(413, f"the request body is larger than {limit} bytes; send fewer changes per push")
    if request.headers.get("Content-Encoding", "").lower() == "gzip":
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            raw = inflater.decompress(raw, limit + 1)
        except zlib.error:
            raise ApiError(400, "the body is not valid gzip") from None
        if len(raw) > limit or inflater.unconsumed_tail:
            raise ApiError(413, f"the request body is larger than {limit} bytes once unzipped")
    return raw


def read_json(schema: Schema | None = None, *, raw: bytes | None = None, decoded: Any = None) -> Any:
    """The request body as JSON (gzip allowed), loaded through schema; errors become 400/413.

    ``raw``: the body already read with read_body(); ``decoded``: that body already decoded
    (server/sync/wire.py's read_push), or None to decode it here.
    """
    if decoded is None:
        try:
            decoded = json.loads(read_body() if raw is None else raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, f"the body is not valid JSON: {exc}", code="malformed") from None
        except RecursionError:
            raise ApiError(400, "the body's JSON is nested too deeply", code="malformed") from None
    if schema is None:
        return decoded
    if not isinstance(decoded, dict):
        raise ApiError(400, "the body must be a JSON object", code="malformed")
    try:
        return schema.load(decoded)
    except ValidationError as exc:
        raise ApiError(400, describe(exc.messages), code="invalid", details=exc.messages) from None


def _bearer_token() -> str | None:
    """The token of the request's ``Authorization: Bearer …`` header, or None."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _no_token() -> ApiError:
    return ApiError(401, "no valid device token: log in again on this device", code="unauthorized")


def device_required(view):
    """Let the request through only with a valid device token; sets g.device and g.user (ORM objects)."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        token = _bearer_token()
        device = accounts.device_for_token(token) if token else None
        if device is None:
            raise _no_token()
        g.device, g.user = device, device.user
        accounts.note_app_version(device, request.headers.get("User-Agent"))  # committed with the call's writes
        return view(*args, **kwargs)

    return wrapper


def caller_required(view):
    """`device_required` for push and pull: the same token check, g.device and g.user as snapshots.

    Speed: loading the device, its user and their grids as ORM objects cost a third of an empty pull's
    CPU (issue 19); `accounts.caller_for_token` reads the same row with one Core statement. The view
    may only read the user; what it notes on the device (`accounts.set_device`) is written at its commit.
    A new app version, seldom seen, is committed at once, so that a pull which writes nothing keeps it.
    """

    @wraps(view)
    def wrapper(*args, **kwargs):
        token = _bearer_token()
        caller = accounts.caller_for_token(token) if token else None
        if caller is None:
            raise _no_token()
        g.device, g.user = caller
        if accounts.note_app_version(g.device, request.headers.get("User-Agent")):
            db.session.commit()
        return view(*args, **kwargs)

    return wrapper


@documented("/health", "GET", "The store engine and the migration version", answer=HealthAnswer, auth=False,
            blueprint=bp)
def health():
    """Answers 200 while the store can be reached."""
    try:
        revision = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception as exc:  # a store that cannot be read is exactly what health must report
        db.session.rollback()
        raise ApiError(503, f"the store cannot be read: {exc.__class__.__name__}", code="unavailable") from None
    db.session.rollback()
    return jsonify(HealthAnswer().dump({"status": "ok", "engine": db.engine.dialect.name,
                                                "migration": revision, "time": server_clock().physical_iso()}))


@documented("/openapi.json", "GET", "This document", auth=False, blueprint=bp)
def openapi():
    """The OpenAPI 3 document of the API, generated from the views' schemas."""
    return jsonify(build_spec().to_dict())


# What the document states of every Text (shared.records): no NUL. Text refuses lone surrogates too,
# which no pattern can name (a UTF-8 document holds none, and JSON Schema validators refuse the range).
TEXT_PATTERN = r"^[^\u0000]*$"
# An Instant exactly as the server takes it: the one text HLCs print, years 1000 to 9999 (what the
# server formats with 4 digits), real dates only (Feb 29 in leap years). tests/server/test_openapi_conformance.py
# holds it to Instant.
_DAY = (r"[1-9][0-9]{3}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
        r"|02-(?:0[1-9]|1[0-9]|2[0-8]))"
        r"|(?:[1-9][0-9](?:0[48]|[2468][048]|[13579][26])|(?:[2468][048]|[13579][26])00)-02-29")
INSTANT_PATTERN = rf"^(?:{_DAY})T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\.[0-9]{{3}}Z$"


def _text_patterns(converter, field, ret, **kwargs) -> dict:
    """A Text without a pattern of its own is documented as refusing NUL; an Instant, as its one form."""
    if isinstance(field, Instant):
        return {"pattern": INSTANT_PATTERN}
    if isinstance(field, Text) and "pattern" not in ret:
        return {"pattern": TEXT_PATTERN}
    return {}


def _dict_keys(converter, field, ret, **kwargs) -> dict:
    """A Dict's keys as propertyNames (OpenAPI 3.1), so that what its key field refuses is stated too."""
    if isinstance(field, ma_fields.Dict) and field.key_field is not None:
        return {"propertyNames": converter.field2property(field.key_field)}
    return {}


def _dict_sizes(converter, field, ret, **kwargs) -> dict:
    """apispec writes a Length on a Dict as minLength/maxLength; for an object OpenAPI says min/maxProperties."""
    if not isinstance(field, ma_fields.Dict):
        return {}
    return {new: ret.pop(old) for old, new in (("minLength", "minProperties"), ("maxLength", "maxProperties"))
            if old in ret}


def build_spec() -> APISpec:
    """An APISpec built from every `documented` view."""
    plugin = MarshmallowPlugin()
    # 3.1: a dict's keys can be stated (propertyNames), so the document is as strict as the server.
    spec = APISpec(title="GridPatrol sync API", version="1", openapi_version="3.1.0",
                   plugins=[plugin],
                   info={"description": "Field-by-field sync of grid records between tablets and the "
                                        "central case store. Errors share one shape (Error)."})
    for attribute_function in (_dict_sizes, _dict_keys, _text_patterns):
        plugin.converter.add_attribute_function(attribute_function)
    spec.components.security_scheme("device", {"type": "http", "scheme": "bearer"})
    spec.components.schema("Error", schema=ErrorSchema)
    for entry in _DOCUMENTED:
        extra = entry["openapi"]() if callable(entry["openapi"]) else entry["openapi"]
        operation: dict[str, Any] = {"summary": entry["summary"], "description": entry["doc"] or "",
                                     "responses": {}}
        if entry["request"] is not None:
            operation["requestBody"] = {"required": True,
                                        "content": {"application/json": {"schema": entry["request"]}}}
        if entry["answer"] is not None:
            operation["responses"]["200"] = {"description": "OK",
                                             "content": {"application/json": {"schema": entry["answer"]}}}
        elif "responses" not in extra:
            operation["responses"]["200"] = {"description": "OK"}
        for status in entry["errors"] + ((401,) if entry["auth"] and 401 not in entry["errors"] else ()):
            operation["responses"][str(status)] = {"description": "error",
                                                   "content": {"application/json": {"schema": "Error"}}}
        if entry["auth"]:
            operation["security"] = [{"device": []}]
        operation.update({**extra, "responses": {**extra.get("responses", {}), **operation["responses"]}})
        path = re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", entry["rule"])  # Flask's <name> is OpenAPI's {name}
        spec.path(path="/api/v1" + path, operations={entry["method"]: operation})
    return spec

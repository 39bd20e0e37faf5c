"""The sync API, /api/v1: log-in, push, pull, health and the OpenAPI document.

Views load the request with a schema, call a service, and dump the answer.
Each view is registered with `documented`, which is also what the OpenAPI
document is generated from, so the document cannot drift from the views.
"""

from __future__ import annotations

import json
import re
import zlib
from functools import wraps
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, current_app, g, jsonify, request
from marshmallow import Schema, ValidationError
from marshmallow import fields as ma_fields
from sqlalchemy import text

from shared.hlc import ClockDriftError, HLC, format_ms, parse_ms

from server import accounts

from server.sync import schemas

from server.sync import apply as store

from server.sync import wire
from server.clock import server_clock
from server.db import db
from server.errors import ApiError

bp = Blueprint("sync", __name__, url_prefix="/api/v1")
# Loading with a schema keeps no state in it, and making one costs a fifth of an empty push.
_LOGIN_REQUEST, _PUSH_REQUEST, _PULL_REQUEST = schemas.LoginRequest(), schemas.PushRequest(), schemas.PullRequest()
_DOCUMENTED: list[dict[str, Any]] = []


def documented(rule: str, method: str, summary: str, *, request_schema: type[Schema] | None = None,
               answer: type[Schema] | None = None, errors: tuple[int, ...] = (), auth: bool = True,
               blueprint: Blueprint | None = None, openapi: dict[str, Any] | None = None):
    """Register a view on the blueprint (this one unless given) and in the OpenAPI document.

    ``openapi`` is merged into the operation, for what the schemas cannot say: path parameters, a body
    that is not JSON, an answer other than 200 (its ``responses`` then replace the default 200).
    """

    def decorator(view):
        _DOCUMENTED.append({"rule": rule, "method": method.lower(), "summary": summary, "doc": view.__doc__,
                            "request": request_schema, "answer": answer, "errors": errors, "auth": auth,
                            "openapi": openapi or {}})
        (blueprint or bp).add_url_rule(rule, view_func=view, methods=[method])
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
    (server/wire.py's read_push), or None to decode it here.
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
        raise ApiError(400, store.describe(exc.messages), code="invalid", details=exc.messages) from None


def device_required(view):
    """Let the request through only with a valid device token; sets g.device and g.user."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        device = accounts.device_for_token(token.strip()) if scheme.lower() == "bearer" and token else None
        if device is None:
            raise ApiError(401, "no valid device token: log in again on this device", code="unauthorized")
        g.device, g.user = device, device.user
        return view(*args, **kwargs)

    return wrapper


@documented("/health", "GET", "The store engine and the migration version", answer=schemas.HealthAnswer, auth=False)
def health():
    """Answers 200 while the store can be reached."""
    try:
        revision = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception as exc:  # a store that cannot be read is exactly what health must report
        db.session.rollback()
        raise ApiError(503, f"the store cannot be read: {exc.__class__.__name__}", code="unavailable") from None
    db.session.rollback()
    return jsonify(schemas.HealthAnswer().dump({"status": "ok", "engine": db.engine.dialect.name,
                                                "migration": revision, "time": server_clock().physical_iso()}))


@documented("/auth/device", "POST", "Log in once on a device and receive its token",
            request_schema=schemas.LoginRequest, answer=schemas.LoginAnswer, errors=(400, 401), auth=False)
def login_device():
    """Checks the user's password and registers the device; the token is shown only in this answer."""
    body = read_json(_LOGIN_REQUEST)
    user = accounts.authenticate(body["username"], body["password"])
    if user is None:
        raise ApiError(401, "wrong user name or password", code="unauthorized")
    device, token = accounts.register_device(user, body["device_name"], body["node"])
    answer = {"token": token, "user": {"id": user.id, "name": user.name, "role": user.role},
              "buckets": store.readable_buckets(user)}
    db.session.rollback()
    return jsonify(schemas.LoginAnswer().dump(answer))


@documented("/sync/push", "POST", "Push changes; one result per change",
            request_schema=schemas.PushRequest, answer=schemas.PushAnswer, errors=(400, 401, 409, 413))
@device_required
def push():
    """Merges each change field by field; answers after commit. Replays come back stale."""
    # Speed: the plain valid changes come out of the body already validated (server/wire.py).
    raw = read_body()
    body = read_json(_PUSH_REQUEST, raw=raw, decoded=wire.read_push(raw))
    limit = current_app.config["GRIDPATROL_MAX_PUSH_CHANGES"]
    if len(body["changes"]) > limit:
        raise ApiError(413, f"a push may carry at most {limit} changes, this one has {len(body['changes'])}")
    clock = server_clock()
    device = g.device
    if body.get("sent_at"):
        note_skew(device, parse_ms(body["sent_at"]) - clock.physical_ms())
    accounts.touch(device)
    writer = store.writer_of(g.user)
    changes, rejected = store.validate_batch(writer, body["changes"])
    latest = store.max_hlc(c for c in changes if c is not None)
    if latest is not None:
        try:
            clock.update(latest)
        except ClockDriftError as exc:
            note_skew(device, exc.remote.wall_ms - exc.physical_ms)
            db.session.commit()
            raise ApiError(409, f"this device's clock is ahead of the server's: {exc}", code="clock_skew",
                           details={"server_time": format_ms(exc.physical_ms)}) from None
    results = store.apply_changes(writer, changes, rejected)
    # Speed: the answer as schemas.PushAnswer().dump would give it (every value is already a str, in
    # the schema's key order), written by msgspec, without marshmallow's per-field dump of 500 results.
    return current_app.response_class(wire.dumps({"results": results, "hlc": str(clock.now())}) + "\n",
                                      mimetype=current_app.json.mimetype)


def note_skew(device, skew_ms: int) -> None:
    """Record how far the device's clock is off, when that moved by a second or more.

    Each push measures it anew, a few milliseconds apart (the network's delay); writing each of those
    would update the device's row on every push for nothing an admin could see.
    """
    if device.clock_skew_ms is None or abs(skew_ms - device.clock_skew_ms) >= 1000:
        device.clock_skew_ms = skew_ms


@documented("/sync/pull", "POST", "Pull what changed in your buckets since your cursors",
            request_schema=schemas.PullRequest, answer=schemas.PullAnswer, errors=(400, 401))
@device_required
def pull():
    """Serves one page, `ref` first then each grid; call again while `more` is true."""
    body = read_json(_PULL_REQUEST)
    config = current_app.config
    limit = min(body["limit"] or config["GRIDPATROL_DEFAULT_PULL_LIMIT"], config["GRIDPATROL_MAX_PULL_LIMIT"])
    if accounts.touch(g.device):
        db.session.commit()
    try:
        answer = store.pull_changes(g.user, body["cursors"], limit, as_json=True)
    except ValueError as exc:
        raise ApiError(400, str(exc), code="invalid") from None
    answer["hlc"] = str(server_clock().now())
    return current_app.response_class(_page_json(answer) + b"\n", mimetype=current_app.json.mimetype)


def _page_json(answer: dict[str, Any]) -> bytes:
    """The JSON of a pull answer whose changes are already encoded, one by one (wire.encode).

    Speed: each record's decoded values are garbage as soon as it is encoded, instead of living until
    the whole page is, which had the garbage collector walk them again and again; and msgspec writes
    JSON several times faster than json. The page is ``wire.encode(answer)`` of the decoded answer
    (tests/server/test_speed_pull.py).
    """
    rest = {key: value for key, value in answer.items() if key != "changes"}
    assert next(iter(answer)) == "changes" and rest, "changes first, then cursors, more, hlc"
    return b'{"changes":[' + b",".join(answer["changes"]) + b"]," + wire.encode(rest)[1:]


@documented("/openapi.json", "GET", "This document", auth=False)
def openapi():
    """The OpenAPI 3 document of the API, generated from the views' schemas."""
    return jsonify(build_spec().to_dict())


def _dict_sizes(converter, field, ret, **kwargs) -> dict:
    """apispec writes a Length on a Dict as minLength/maxLength; for an object OpenAPI says min/maxProperties."""
    if not isinstance(field, ma_fields.Dict):
        return {}
    return {new: ret.pop(old) for old, new in (("minLength", "minProperties"), ("maxLength", "maxProperties"))
            if old in ret}


def build_spec() -> APISpec:
    """An APISpec built from every `documented` view."""
    plugin = MarshmallowPlugin()
    spec = APISpec(title="GridPatrol sync API", version="1", openapi_version="3.0.3",
                   plugins=[plugin],
                   info={"description": "Field-by-field sync of grid records between tablets and the "
                                        "central case store. Errors share one shape (Error)."})
    plugin.converter.add_attribute_function(_dict_sizes)
    spec.components.security_scheme("device", {"type": "http", "scheme": "bearer"})
    spec.components.schema("Error", schema=schemas.ErrorSchema)
    for entry in _DOCUMENTED:
        operation: dict[str, Any] = {"summary": entry["summary"], "description": entry["doc"] or "",
                                     "responses": {}}
        if entry["request"] is not None:
            operation["requestBody"] = {"required": True,
                                        "content": {"application/json": {"schema": entry["request"]}}}
        if entry["answer"] is not None:
            operation["responses"]["200"] = {"description": "OK",
                                             "content": {"application/json": {"schema": entry["answer"]}}}
        elif "responses" not in entry["openapi"]:
            operation["responses"]["200"] = {"description": "OK"}
        for status in entry["errors"] + ((401,) if entry["auth"] and 401 not in entry["errors"] else ()):
            operation["responses"][str(status)] = {"description": "error",
                                                   "content": {"application/json": {"schema": "Error"}}}
        if entry["auth"]:
            operation["security"] = [{"device": []}]
        operation.update({**entry["openapi"], "responses": {**entry["openapi"].get("responses", {}),
                                                            **operation["responses"]}})
        path = re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", entry["rule"])  # Flask's <name> is OpenAPI's {name}
        spec.path(path="/api/v1" + path, operations={entry["method"]: operation})
    return spec

"""The sync calls under /api/v1: a device's log-in, push and pull.

Views load the request with a schema, call `server.sync.service`, and send its answer. Each is
registered with `server.api.documented`, from which the OpenAPI document is generated.
"""

from __future__ import annotations

import gzip

from flask import Blueprint, current_app, g, jsonify, request

from .. import accounts, audit
from ..api import caller_required, device_required, documented, read_body, read_json
from ..db import db
from ..errors import ApiError
from ..web.auth import code_throttle, limiter
from . import schemas, service, wire

bp = Blueprint("sync", __name__, url_prefix="/api/v1")
# Loading with a schema keeps no state in it, and making one costs a fifth of an empty push.
_LOGIN_REQUEST, _PUSH_REQUEST, _PULL_REQUEST = schemas.LoginRequest(), schemas.PushRequest(), schemas.PullRequest()
_CODE_REQUEST = schemas.CodeLoginRequest()
# The calls every tablet makes every couple of seconds, with a device token: no rate limit, no cookie session
# (server/__init__.py). Paths, not endpoints: Flask opens the session before it matches the URL.
SYNC_PATHS = frozenset({f"{bp.url_prefix}/sync/push", f"{bp.url_prefix}/sync/pull"})


@limiter.request_filter
def _not_throttled() -> bool:
    """Push and pull carry no rate limit: Flask-Limiter skips them before it looks for one.

    Speed: it otherwise resolves the limits of every request, every two seconds per tablet, to find none.
    """
    return request.path in SYNC_PATHS


@documented("/auth/device", "POST", "Log in once on a device and receive its token", blueprint=bp,
            request_schema=schemas.LoginRequest, answer=schemas.LoginAnswer, errors=(400, 401), auth=False)
def login_device():
    """Checks the user's password and registers the device; the token is shown only in this answer."""
    body = read_json(_LOGIN_REQUEST)
    user = accounts.authenticate(body["username"], body["password"])
    if user is None:
        raise ApiError(401, "wrong user name or password", code="unauthorized")
    device, token = accounts.register_device(user, body["device_name"], body["node"])
    answer = {"token": token, "user": {"id": user.id, "name": user.name, "role": user.role},
              "buckets": service.readable_buckets(user)}
    db.session.rollback()
    return jsonify(schemas.LoginAnswer().dump(answer))


@documented("/auth/device-code", "POST", "Provision a device with a one-time code an admin gave, and receive its token",
            blueprint=bp, request_schema=schemas.CodeLoginRequest, answer=schemas.LoginAnswer, errors=(400, 401, 429),
            auth=False)
@code_throttle
def login_with_code():
    """Registers the device for the code's user; the code works once, for minutes. Failed tries are throttled
    per address (429)."""
    body = read_json(_CODE_REQUEST)
    claimed = accounts.claim_device_code(body["code"], body["device_name"], body["node"])
    if claimed is None:
        raise ApiError(401, "this code is wrong, used or expired: ask an administrator for a new one",
                       code="unauthorized", details={"reason": "bad_code"})
    user, device, token = claimed
    audit.record("provision", "device", device.id, after={"name": device.name, "user": user.username},
                 actor=user, commit=True)
    answer = {"token": token, "user": {"id": user.id, "name": user.name, "role": user.role},
              "buckets": service.readable_buckets(user)}
    db.session.rollback()
    return jsonify(schemas.LoginAnswer().dump(answer))


@documented("/auth/revoke", "POST", "Revoke this device's own token (a log-in the app did not keep, a log-out)",
            blueprint=bp, answer=schemas.RevokeAnswer, errors=(401,))
@device_required
def revoke_own_token():
    """The token of the request stops working at once, as when an admin revokes the device."""
    device = g.device
    accounts.revoke_device(device)
    audit.record("revoke", "device", device.id, before={"revoked": False}, after={"revoked": True},
                 note=f"{device.name} ({g.user.username}), by the device itself", actor=g.user)
    db.session.commit()
    return jsonify({"revoked": True})


@documented("/sync/push", "POST", "Push changes; one result per change", blueprint=bp,
            request_schema=schemas.PushRequest, answer=schemas.PushAnswer, errors=(400, 401, 409, 413))
@caller_required
def push():
    """Merges each change field by field; answers after commit. Replays come back stale."""
    # Speed: the plain valid changes come out of the body already validated (server/sync/wire.py).
    raw = read_body()
    body = read_json(_PUSH_REQUEST, raw=raw, decoded=wire.read_push(raw))
    return _json(service.push(g.user, g.device, body))


@documented("/sync/pull", "POST", "Pull what changed in your buckets since your cursors", blueprint=bp,
            request_schema=schemas.PullRequest, answer=schemas.PullAnswer, errors=(400, 401))
@caller_required
def pull():
    """Serves one page, `ref` first then each grid; call again while `more` is true. With `max_bytes` the page
    also stops at that many bytes of changes (at least one change). The answer is gzip-compressed
    (`Content-Encoding: gzip`) when the request says `Accept-Encoding: gzip` and it is over 1 KiB."""
    body = read_json(_PULL_REQUEST)
    answer = _json(service.pull(g.user, g.device, body["cursors"], body["limit"], body["max_bytes"]))
    return _gzipped(answer)


def _json(answer: bytes):
    return current_app.response_class(answer + b"\n", mimetype=current_app.json.mimetype)


GZIP_MIN_BYTES = 1024  # below this the gzip header and the CPU cost more than they save
GZIP_LEVEL = 5  # pages of records compress 5-15 fold already; higher levels cost more time for little


def _gzipped(response):
    """The answer gzip-compressed when the client accepts gzip and it is large enough; else as it is.

    A client that does not say ``Accept-Encoding: gzip`` (or gives it q=0) gets what it always got.
    ``mtime=0``: the same page compresses to the same bytes.
    """
    response.vary.add("Accept-Encoding")
    data = response.get_data()
    if len(data) < GZIP_MIN_BYTES or request.accept_encodings["gzip"] <= 0:
        return response
    response.set_data(gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0))
    response.headers["Content-Encoding"] = "gzip"
    return response

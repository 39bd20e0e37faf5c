"""One error shape everywhere in the API, {"error": {"code", "message", "details"}}; the pages' errors as pages.

Every HTTP error under /api/ is answered with the shape; elsewhere with the pages' error page
(server/web, registered as ``gridpatrol.error_page``), in the pages' look and the user's language.
An unexpected exception is logged with its traceback and answered 500 either way.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError

_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    409: "conflict", 413: "too_large", 415: "unsupported_media_type", 422: "invalid", 500: "internal_error",
}


class ApiError(Exception):
    """An error answered with the shared JSON shape."""

    def __init__(self, status: int, message: str, code: str | None = None, details: Any = None):
        super().__init__(message)
        self.status = status
        self.code = code or _CODES.get(status, "error")
        self.message = message
        self.details = details


def error_response(status: int, code: str, message: str, details: Any = None):
    """A Flask response carrying the error shape."""
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    response = jsonify({"error": body})
    response.status_code = status
    return response


def describe(messages: Any, prefix: str = "") -> str:
    """Flatten marshmallow messages into one line that names each field."""
    if isinstance(messages, dict):
        return "; ".join(describe(value, f"{prefix}{key}." if key != "_schema" else prefix)
                         for key, value in messages.items())
    if isinstance(messages, list):
        return "; ".join(describe(m, prefix) if not isinstance(m, str) else f"{prefix.rstrip('.')}: {m}"
                         if prefix else m for m in messages)
    return f"{prefix.rstrip('.')}: {messages}" if prefix else str(messages)


def _is_api() -> bool:
    return request.path.startswith("/api/")


def _page(status: int, exc: HTTPException | None = None):
    """The pages' error page (with the error's own headers, such as Allow), or Flask's plain one."""
    page = current_app.extensions.get("gridpatrol.error_page")
    if page is None:
        return exc or InternalServerError()
    response = current_app.make_response(page(status, exc))
    if exc is not None:
        _keep_headers(exc, response)
    return response


def _keep_headers(exc: HTTPException, response) -> None:
    """Copy an HTTP error's own headers (Allow on a 405) onto the response that answers it."""
    for name, value in exc.get_headers():
        if name.lower() not in ("content-type", "content-length"):
            response.headers[name] = value


def init_app(app) -> None:
    """Answer API errors, and every HTTP error under /api/, with the error shape."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.details)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        if status < 400:  # a redirect Flask raises (a missing trailing slash) is no error
            return exc
        if not _is_api():
            return _page(status, exc)
        response = error_response(status, _CODES.get(status, "error"), exc.description or exc.name)
        _keep_headers(exc, response)  # a 405's Allow, a 416's Content-Range …
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        if isinstance(exc, HTTPException):
            return _http_error(exc)
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        if not _is_api():
            return _page(500)
        return error_response(500, "internal_error", "the server failed; the request may be retried")

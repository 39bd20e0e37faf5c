"""Who is on a page: Flask-Login sessions, CSRF on every form post, the decorator that keeps each area to its
roles, log-in throttling (Flask-Limiter) and the security headers of every answer.

Which role may open which area is shared/roles.py's ``PAGES`` table. Anonymous visitors are sent
to log in; a logged-in user whose role may not use the area gets 403 (a grid worker may log in,
but works on the tablet).
"""

from __future__ import annotations

from functools import wraps
from typing import Callable
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, make_response, render_template, request
from flask_babel import gettext as _, lazy_gettext as _l
from flask_limiter import Limiter
from flask_login import LoginManager, current_user, login_required
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from shared.roles import may_use

from ..db import db
from ..models import User

csrf = CSRFProtect()
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def protect(bp: Blueprint, body_limit: Callable[[], int | None] | None = None, *, no_store: bool = False) -> None:
    """Check the CSRF token of every form post to the blueprint's pages.

    ``body_limit`` may raise the request body limit for some posts (a form with photos) before the
    form is read; ``no_store`` keeps every answer out of browser and proxy caches (personal data).
    """

    @bp.before_request
    def _check_csrf():
        if request.method not in _SAFE_METHODS:
            limit = body_limit() if body_limit else None
            if limit:
                request.max_content_length = limit
            csrf.protect()

    if no_store:
        @bp.after_request
        def _no_store(response):
            response.headers["Cache-Control"] = "no-store"
            return response


login_manager = LoginManager()
login_manager.login_view = "web.login"
login_manager.login_message = _l("Please log in to see this page.")
login_manager.login_message_category = "info"


@login_manager.user_loader
def _load_user(session_id: str) -> User | None:
    """The session's user, while the session's version is the user's and the user is active.

    Hazard: a session that outlives its end. A signed cookie cannot be taken back, so the session
    carries the user's ``session_version``; log-out, deactivation and a new password raise it
    (server/accounts.py, `end_sessions`), and every cookie holding an older one stops working at
    once, on every machine that serves the pages.
    """
    user_id, _, version = session_id.partition(":")
    user = db.session.get(User, user_id) if user_id else None
    if user is None or not user.active or version != str(user.session_version):
        return None
    return user


def page_required(area: str):
    """A view of an area of the pages (``cases``, ``houses``, ``admin``): log-in, then the area's roles."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapper(*args, **kwargs):
            if not may_use(current_user.role, area):
                abort(403)
            return view(*args, **kwargs)

        return wrapper

    return decorator


def safe_next(target: str | None) -> str | None:
    """A redirect target on this site only (no scheme, no host, not //host)."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


# --- log-in throttling -------------------------------------------------------------------------

limiter = Limiter(key_func=lambda: request.remote_addr or "-", default_limits=[], headers_enabled=False)


def _failures() -> str:
    return f"{current_app.config['GRIDPATROL_LOGIN_FAILURES_PER_MINUTE']} per minute"


def _username_key() -> str:
    # Case and blanks do not make a new name to guess under.
    return "user:" + (request.form.get("username") or "").strip().casefold()


def _refused(_limit):
    """The log-in page with a clear message and 429, when too many log-ins failed in a minute."""
    from .forms import LoginForm

    flash(_("Too many failed log-ins. Wait a minute, then try again."), "error")
    return make_response(render_template("pages/login.html", form=LoginForm()), 429)


def login_throttle(view):
    """Count failed log-ins (answered 401) per address and per user name; past the limit answer 429.

    Only failures count (``deduct_when``), so an office behind one address logging in all morning
    is not throttled. The counts live in GRIDPATROL_RATELIMIT_STORAGE: memory:// is per process, so
    with several processes or machines give them one Redis (README, "Administration").
    """
    failed = lambda response: response.status_code == 401  # noqa: E731
    view = limiter.limit(_failures, methods=["POST"], deduct_when=failed, on_breach=_refused,
                         scope="login-address")(view)
    return limiter.limit(_failures, key_func=_username_key, methods=["POST"], deduct_when=failed,
                         on_breach=_refused, scope="login-user")(view)


def _code_refused(_limit):
    """A JSON 429 for the API: too many wrong provisioning codes from one address in a minute."""
    from ..errors import ApiError

    raise ApiError(429, "too many wrong codes: wait a minute, then try again", code="throttled")


def code_throttle(view):
    """Count wrong provisioning codes (answered 401) per address; past the log-in limit answer 429."""
    failed = lambda response: response.status_code == 401  # noqa: E731
    return limiter.limit(_failures, methods=["POST"], deduct_when=failed, on_breach=_code_refused,
                         scope="device-code")(view)


# --- security headers --------------------------------------------------------------------------

def content_security_policy(app) -> str:
    """The pages' Content-Security-Policy: scripts and styles from this site, tiles from the tile server.

    No inline script at all: the maps' scripts are files (server/static/pages/*.js) that read their data
    from a ``<script type="application/json">`` element, which is data, not code.
    """
    tiles = urlsplit(app.config.get("GRIDPATROL_TILE_URL") or "")
    tile_origin = f" {tiles.scheme}://{tiles.netloc}" if tiles.scheme and tiles.netloc else ""
    return ("default-src 'self'; script-src 'self'; "
            "style-src 'self' 'unsafe-inline'; " f"img-src 'self' data: blob:{tile_origin}; "
            "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
            "frame-ancestors 'none'")


def init_security(app) -> None:
    """Log-in throttling, security headers on every answer, and secure session cookies in production."""
    hops = app.config.get("GRIDPATROL_PROXY_HOPS") or 0
    if not isinstance(hops, int) or not 0 <= hops <= 5:
        raise RuntimeError(f"GRIDPATROL_PROXY_HOPS must be 0 to 5, not {hops!r}")
    if hops:
        # The client's address (audit log, throttling), scheme and host (links, the provisioning QR code) from the
        # proxy's X-Forwarded-* headers; only as many hops as configured are trusted, so a client cannot forge them.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config.get("GRIDPATROL_RATELIMIT_STORAGE") or "memory://")
    limiter.init_app(app)
    if app.config.get("GRIDPATROL_ENV") == "production":
        # Served over HTTPS behind the proxy: the cookies never travel in clear text.
        app.config["SESSION_COOKIE_SECURE"] = True
        app.config["REMEMBER_COOKIE_SECURE"] = True
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    policy = content_security_policy(app)
    production = app.config.get("GRIDPATROL_ENV") == "production"

    @app.after_request
    def _security_headers(response):
        headers = response.headers
        headers.setdefault("Content-Security-Policy", policy)
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "same-origin")
        if production:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response

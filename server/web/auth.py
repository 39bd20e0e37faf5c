"""Who is on a page: Flask-Login sessions, CSRF on every form post, and the decorator that keeps each area to its roles.

Which role may open which area is shared/roles.py's ``PAGES`` table. Anonymous visitors are sent
to log in; a logged-in user whose role may not use the area gets 403 (a grid worker may log in,
but works on the tablet).
"""

from __future__ import annotations

from functools import wraps
from typing import Callable
from urllib.parse import urlsplit

from flask import Blueprint, abort, request
from flask_babel import lazy_gettext as _l
from flask_login import LoginManager, current_user, login_required
from flask_wtf.csrf import CSRFProtect

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

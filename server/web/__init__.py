"""What every page shares: log-in sessions, CSRF, languages, the error pages, labels and times.

Feature packages (cases, houses, admin) register their blueprints after `init_app` and guard each
with `protect`, so every form post is CSRF-checked the same way. The sync API under /api/v1
authenticates with bearer tokens, not cookies, and is not CSRF-checked.
"""

from __future__ import annotations

from typing import Any

from flask import render_template
from flask_babel import get_locale, gettext as _
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from shared.roles import may_use

from . import i18n, views
from .auth import csrf, init_security, login_manager, protect
from .forms import EmptyForm, LanguageForm
from .labels import template_labels
from .times import local_time

def error_page(status: int, exc: HTTPException | None = None):
    """The page for an HTTP error outside /api/ (a page, or an address that is none), in the look of the pages and
    the user's language: a title in words, what happened, the way back."""
    if isinstance(exc, CSRFError):
        title, message = _("The form has expired"), _("The form has expired. Go back, reload the page and try again.")
    elif status == 403:
        title, message = _("Not for your role"), _("Your role may not use this page. Grid workers use the tablet app.")
    elif status == 404:
        title, message = _("Page not found"), _("There is no such page, or it is not one you may see.")
    elif status == 405:
        title, message = _("Not possible here"), _(
            "This address does not take that kind of request. Use the buttons and links of the pages.")
    elif status >= 500:
        title, message = _("Server error"), _(
            "The server failed. Try again; if it keeps failing, tell the administrator.")
    else:
        title, message = _("Request not served"), _("The request could not be served.")
    return render_template("pages/error.html", code=status, title=title, message=message), status


def template_globals() -> dict[str, Any]:
    """What every page's template may use: labels, the language and log-out forms, the user's areas."""
    return {
        **template_labels(), "LANGUAGES": i18n.LANGUAGES, "current_language": str(get_locale()),
        "language_form": LanguageForm(formdata=None), "logout_form": EmptyForm(formdata=None),
        "may_use": lambda area: current_user.is_authenticated and may_use(current_user.role, area),
    }


def init_app(app) -> None:
    """Log-in, CSRF, languages, error pages and the shared template names; the ``web`` blueprint."""
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    # CSRF is checked per page blueprint (`protect`), not for the token-authenticated API.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # a page left open all day still posts
    csrf.init_app(app)
    login_manager.init_app(app)
    init_security(app)  # log-in throttling, security headers, secure cookies in production
    i18n.init_app(app)
    app.extensions["gridpatrol.error_page"] = error_page  # server/errors.py answers the pages' errors with it
    app.jinja_env.filters["local_time"] = local_time
    app.context_processor(template_globals)
    app.register_blueprint(views.bp)


__all__ = ["protect", "error_page", "template_globals", "init_app"]


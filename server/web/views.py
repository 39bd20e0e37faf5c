"""The pages' own views (blueprint ``web``): the start, log-in, log-out, language, and Leaflet's files."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, send_from_directory, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from ..accounts import authenticate, end_sessions
from ..db import db
from . import i18n
from .auth import login_throttle, protect, safe_next
from .forms import LanguageForm, LoginForm

bp = Blueprint("web", __name__)
protect(bp)


@bp.route("/")
def index():
    """The queue for those logged in, the log-in page for everyone else."""
    if current_user.is_authenticated:
        return redirect(url_for("cases.queue"))
    return redirect(url_for(".login"))


@bp.route("/login", methods=["GET", "POST"])
@login_throttle
def login():
    """Log in with user name and password; a grid worker may log in but the pages answer 403."""
    form = LoginForm()
    if form.validate_on_submit():
        user = authenticate(form.username.data, form.password.data)
        if user is not None:
            login_user(user)
            session.permanent = False
            return redirect(safe_next(request.args.get("next")) or url_for("cases.queue"), 303)
        flash(_("Wrong user name or password."), "error")
        return render_template("pages/login.html", form=form), 401
    return render_template("pages/login.html", form=form), 400 if request.method == "POST" else 200


@bp.post("/logout")
def logout():
    """End the user's page sessions: this one, and any copy of its cookie, on every server."""
    if current_user.is_authenticated:
        end_sessions(current_user)
        db.session.commit()
    logout_user()
    return redirect(url_for(".login"), 303)


@bp.post("/language")
def language():
    """Switch the pages' language; kept in the session."""
    form = LanguageForm()
    if form.validate_on_submit() and form.lang.data in i18n.LANGUAGES:
        session["lang"] = form.lang.data
    return redirect(safe_next(form.next.data) or url_for(".index"), 303)


@bp.get("/vendor/leaflet/<path:filename>")
def leaflet(filename: str):
    """Leaflet's JS, CSS and marker images, served from the installed package (no CDN)."""
    import xstatic.pkg.leaflet as leaflet_package

    return send_from_directory(leaflet_package.BASE_DIR, filename, max_age=86400)

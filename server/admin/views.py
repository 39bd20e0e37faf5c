"""The admin pages (blueprint ``admin``): who sees resident ID numbers in full; the admin area's style sheet.

The rest of the admin area (users, devices, places, categories, units, checklists, the audit log)
is Flask-Admin's, in server/admin/console.py; this page is in its menu.

Only admins (shared/roles.py, ``PAGES["admin"]``). Answers carry ``Cache-Control: no-store``,
as the house pages do.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import SelectMultipleField, widgets

from shared.roles import ROLES

from .. import audit, privacy
from ..web.auth import page_required, protect
from ..web.forms import choice
from ..web.labels import ROLE_LABELS
from ..web.times import local_time

bp = Blueprint("admin", __name__, static_folder="static", static_url_path="/admin/assets")
protect(bp, no_store=True)  # names, phones and ID numbers stay out of every cache


class PrivacyForm(FlaskForm):
    roles = SelectMultipleField(_l("Roles that see ID numbers in full"),
                                choices=[choice(role, ROLE_LABELS[role]) for role in ROLES],
                                option_widget=widgets.CheckboxInput(), widget=widgets.ListWidget(prefix_label=False))


@bp.route("/admin/privacy", methods=["GET", "POST"])
@page_required("admin")
def privacy_setting():
    """Which roles see resident ID numbers in full (an admin's decision; by default none)."""
    form = PrivacyForm()
    if request.method == "POST":
        if form.validate_on_submit():
            before = sorted(privacy.allowed_roles())
            after = sorted(privacy.set_allowed_roles(form.roles.data or [], by=current_user.username))
            if before != after:
                audit.record("edit", "setting", privacy.SETTING, before={"roles": before}, after={"roles": after},
                             commit=True)
            flash(_("Saved: who may see ID numbers in full."), "success")
            return redirect(url_for(".privacy_setting"), 303)
        return render_template("pages/privacy.html", form=form, changed=_changed()), 400
    form.roles.data = sorted(privacy.allowed_roles())
    return render_template("pages/privacy.html", form=form, changed=_changed())


def _changed() -> tuple[str, str | None]:
    """When (district time) and by whom the setting was last changed; ("", None) when never."""
    when, who = privacy.setting_changed()
    return (local_time(when), who) if when is not None else ("", None)


def init_app(app) -> None:
    """Register the admin pages and the admin CLI (after `server.web.init_app`)."""
    from . import cli, console

    app.register_blueprint(bp)
    console.init_app(app)
    cli.init_app(app)

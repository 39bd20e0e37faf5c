"""The rental-house pages (blueprint ``houses``): houses, a house, tenants, the registration rate, the export.

Views read query arguments, call `server.houses_service` and render. Only
supervisors and admins use them (``HOUSE_ROLES``): anonymous visitors are sent
to log in, grid workers (tablet) and unit users (they act on cases dispatched
to them, not on residents' registers) get 403. The admin's setting of who may
see resident ID numbers in full is here too (``/admin/privacy``).

Every answer of this blueprint carries ``Cache-Control: no-store``: they hold
names, phone numbers and (masked or not) ID numbers, which must not stay in a
shared browser's or a proxy's cache.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timezone
from functools import wraps

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale, gettext as _, lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError
from wtforms import SelectMultipleField, widgets

from server.cases import service as cases_service

from server import privacy
from server.houses import service
from server.models import ROLES
from server.cases.views import ROLE_LABELS, choice, csrf, district_zone, local_time, template_globals

bp = Blueprint("houses", __name__)
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_SHA256 = re.compile(r"^[0-9a-f]{64}\Z")

RISK_LABELS = {"low": _l("Low"), "medium": _l("Medium"), "high": _l("High")}
RESULT_LABELS = {"pass": _l("Pass"), "fail": _l("Fail"), "na": _l("Not applicable")}
CSV_COLUMNS = [  # (header, value of (house, tenant, grid))
    (_l("Address"), lambda h, t, g: h.values.get("address")),
    (_l("Grid"), lambda h, t, g: h.grid),
    (_l("Community"), lambda h, t, g: g.get("community")),
    (_l("Street"), lambda h, t, g: g.get("street")),
    (_l("Room"), lambda h, t, g: t.values.get("room")),
    (_l("Name"), lambda h, t, g: t.values.get("name")),
    (_l("Phone"), lambda h, t, g: t.values.get("phone")),
    (_l("ID number"), lambda h, t, g: t.id_shown),
    (_l("Moved in"), lambda h, t, g: t.values.get("moved_in")),
    (_l("Moved out"), lambda h, t, g: t.values.get("moved_out")),
]


class PrivacyForm(FlaskForm):
    roles = SelectMultipleField(_l("Roles that see ID numbers in full"),
                                choices=[choice(role, ROLE_LABELS[role]) for role in ROLES],
                                option_widget=widgets.CheckboxInput(), widget=widgets.ListWidget(prefix_label=False))


def house_roles(view):
    """Only supervisors and admins; anonymous visitors are sent to log in, everyone else gets 403."""

    @wraps(view)
    @login_required
    def wrapper(*args, **kwargs):
        if current_user.role not in service.HOUSE_ROLES:
            abort(403)
        return view(*args, **kwargs)

    return wrapper


def admin_only(view):
    """Only admins; anonymous visitors are sent to log in, everyone else gets 403."""

    @wraps(view)
    @login_required
    def wrapper(*args, **kwargs):
        if current_user.role != "admin":
            abort(403)
        return view(*args, **kwargs)

    return wrapper


def _today():
    return datetime.now(district_zone()).date()


def _english() -> bool:
    return str(get_locale()) == "en"


def _houses():
    return service.load_houses(current_user, _today(), _english())


def _filters_from(args) -> service.HouseFilters:
    return service.HouseFilters(grid=args.get("grid") or None, community=args.get("community") or None,
                                street=args.get("street") or None, hazards=args.get("hazards") == "1",
                                below_goal=args.get("below_goal") == "1")


def _places(reference: cases_service.Reference) -> dict:
    grids = reference.grids.values()
    return {"communities": sorted({g["community"] for g in grids}), "streets": sorted({g["street"] for g in grids})}


def percent(rate: float | None) -> str:
    """A rate as a percentage with one decimal; — when there is none."""
    return "—" if rate is None else f"{rate * 100:.1f} %"


def _house_or_404(house_id: str) -> service.House:
    if not _UUID.match(house_id):
        abort(404)
    house = service.get_house(current_user, house_id, _today(), _english())
    if house is None:
        abort(404)
    return house


# --- the pages ---------------------------------------------------------------------------------

@bp.get("/houses")
@house_roles
def houses():
    """Rental houses by street, community and grid, with their last check and open hazards."""
    reference = cases_service.load_reference()
    filters = _filters_from(request.args)
    found = [h for h in _houses() if service.matches(h, filters, reference)]
    names = cases_service.names_of_users(h.last_check.values.get("worker") for h in found if h.last_check)
    return render_template("pages/houses.html", houses=found, filters=filters, reference=reference, names=names,
                           **_places(reference))


@bp.get("/houses/<house_id>")
@house_roles
def house(house_id: str):
    """One house: details, registration, its tenants and its check history with photos."""
    reference = cases_service.load_reference()
    found = _house_or_404(house_id)
    names = cases_service.names_of_users(c.values.get("worker") for c in found.checks)
    photos = {c.id: cases_service.photo_holdings(c.values.get("photos") or []) for c in found.checks}
    return render_template("pages/house.html", house=found, reference=reference, grid=reference.grid(found.grid),
                           names=names, photos=photos, may_see=privacy.may_see_id_numbers(current_user))


@bp.get("/houses/<house_id>/photos/<sha>")
@house_roles
def house_photo(house_id: str, sha: str):
    """A photo of one of the house's checks, full size or ``?size=thumb``; 404 until the server holds it."""
    found = _house_or_404(house_id)
    if not _SHA256.match(sha) or sha not in service.photos_of(found):
        abort(404)
    response = cases_service.photo_response(sha, thumb=request.args.get("size") == "thumb")
    if response is None:
        abort(404)
    return response


@bp.get("/houses/tenants")
@house_roles
def tenants():
    """Tenants by house, current ones unless moved-out ones are asked for; ID numbers as the role may see them."""
    reference = cases_service.load_reference()
    filters = _filters_from(request.args)
    current_only = request.args.get("all") != "1"
    found = [h for h in _houses() if service.matches(h, filters, reference)]
    rows = service.tenant_rows(found, current_only=current_only)
    return render_template("pages/tenants.html", rows=rows, filters=filters, reference=reference,
                           current_only=current_only, args=request.args.to_dict(),
                           may_see=privacy.may_see_id_numbers(current_user), **_places(reference))


@bp.get("/houses/tenants.csv")
@house_roles
def tenants_csv():
    """The tenant list as CSV (UTF-8 with BOM, for spreadsheets), with the same filters and the same masking."""
    reference = cases_service.load_reference()
    filters = _filters_from(request.args)
    found = [h for h in _houses() if service.matches(h, filters, reference)]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([str(header) for header, _value in CSV_COLUMNS])
    for house_, tenant in service.tenant_rows(found, current_only=request.args.get("all") != "1"):
        grid = reference.grid(house_.grid)
        writer.writerow([_cell(value(house_, tenant, grid)) for _header, value in CSV_COLUMNS])
    return Response("\ufeff" + out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=tenants.csv"})


def _cell(value) -> str:
    """A CSV cell; text a spreadsheet would run as a formula is quoted with a leading apostrophe."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@bp.get("/houses/registration")
@house_roles
def registration():
    """The registration rate per community, grid and house against the 95 % goal, and the houses below it."""
    reference = cases_service.load_reference()
    found = _houses()
    by_grid = service.rate_rows(found, lambda h: h.grid)
    by_community = service.rate_rows(found, lambda h: reference.grid(h.grid).get("community"))
    total = service.rate_rows(found, lambda h: "")
    below = sorted((h for h in found if service.below_goal(h.rate)), key=lambda h: (h.rate, h.id))
    uncounted = [h for h in found if h.rate is None]
    return render_template("pages/registration.html", houses=found, by_grid=by_grid, by_community=by_community,
                           total=total[0] if total else None, below=below, uncounted=uncounted,
                           reference=reference, goal=service.REGISTRATION_GOAL)


@bp.route("/admin/privacy", methods=["GET", "POST"])
@admin_only
def privacy_setting():
    """Which roles see resident ID numbers in full (an admin's decision; by default none)."""
    form = PrivacyForm()
    if request.method == "POST":
        if form.validate_on_submit():
            privacy.set_allowed_roles(form.roles.data or [], by=current_user.username)
            flash(_("Saved: who may see ID numbers in full."), "success")
            return redirect(url_for(".privacy_setting"), 303)
        return render_template("pages/privacy.html", form=form, changed=_changed()), 400
    form.roles.data = sorted(privacy.allowed_roles())
    return render_template("pages/privacy.html", form=form, changed=_changed())


def _changed() -> tuple[str, str | None]:
    """When (district time) and by whom the setting was last changed; ("", None) when never."""
    when, who = privacy.setting_changed()
    if when is None:
        return "", None
    if when.tzinfo is None:  # SQLite gives the stored UTC time back without its zone
        when = when.replace(tzinfo=timezone.utc)
    return local_time(int(when.timestamp() * 1000)), who


# --- errors and set-up ---------------------------------------------------------------------------

@bp.errorhandler(403)
def _forbidden(exc):
    return render_template("pages/error.html", code=403,
                           message=_("Your role may not use this page. Grid workers use the tablet app.")), 403


@bp.errorhandler(404)
def _not_found(exc):
    return render_template("pages/error.html", code=404, message=_("There is no such page or house.")), 404


@bp.errorhandler(CSRFError)
def _csrf_failed(exc):
    return render_template("pages/error.html", code=400,
                           message=_("The form has expired. Go back, reload the page and try again.")), 400


@bp.before_request
def _check_csrf():
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        csrf.protect()


@bp.after_request
def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.context_processor
def _inject():
    return {**template_globals(), "percent": percent, "RISK_LABELS": RISK_LABELS, "RESULT_LABELS": RESULT_LABELS,
            "GOAL": service.REGISTRATION_GOAL, "below_goal": service.below_goal}


def init_app(app) -> None:
    """Register the house pages (after `server.pages.init_app`, whose log-in, CSRF and languages they use)."""
    app.jinja_env.filters.setdefault("local_time", local_time)
    app.register_blueprint(bp)

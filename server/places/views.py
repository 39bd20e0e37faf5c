"""The key-place pages (blueprint ``places``): places per grid with grade, schedule and hazards; a place; exports.

Views read and check the query arguments, call `server.places.service` and render. A filter that
is not what the form sends (a code with other characters, an unknown status, a page that is not a
number) is answered 400. Who may open them is shared/roles.py's ``PAGES["places"]``: supervisors and
admins. Answers carry ``Cache-Control: no-store``: they hold names and phone numbers.
"""

from __future__ import annotations

import re

from flask import (Blueprint, Response, abort, current_app, flash, redirect, render_template, request,
                   stream_with_context, url_for)
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from shared.records import CODE_PATTERN, is_sha256, is_uuid

from .. import audit
from ..cases.service import photo_holdings, photo_response
from ..clock import server_clock
from ..db import db
from ..models import User
from ..exports import XLSX, stream_csv, stream_geojson, xlsx_bytes
from ..reference import device_names, load_reference, names_of_users
from ..web.auth import page_required, protect
from ..web.labels import english, name_of
from . import export, forms, service

bp = Blueprint("places", __name__)
protect(bp, no_store=True)

SCHEDULE_LABELS = {"never": _l("Never checked"), "overdue": _l("Overdue"), "due": _l("Due soon"),
                 "ok": _l("Up to date"), "unscheduled": _l("No schedule"), "needs_check": _l("Due or overdue")}
RESULT_LABELS = {"pass": _l("Pass"), "fail": _l("Fail"), "na": _l("Not applicable")}
_CODE = re.compile(rf"{CODE_PATTERN}")
EXPORT_LIMIT = 200_000


def _code(name: str) -> str | None:
    value = request.args.get(name) or None
    if value is not None and _CODE.fullmatch(value) is None:
        abort(400, description=f"{name} is not a code")
    return value


def _filters() -> service.PlaceFilters:
    """The filters of the request, checked: codes are codes, the status is one the list knows."""
    status = request.args.get("status") or None
    if status is not None and status not in service.STATUS_FILTERS:
        abort(400, description="unknown status")
    hazards = request.args.get("hazards") or ""
    if hazards not in ("", "1"):
        abort(400, description="hazards is 1 or nothing")
    for name in ("community", "street"):
        if len(request.args.get(name) or "") > 200:
            abort(400, description=f"{name} is too long")
    return service.PlaceFilters(grid=_code("grid"), community=request.args.get("community") or None,
                                street=request.args.get("street") or None, type=_code("type"),
                                grade=_code("grade"), status=status, hazards=hazards == "1")


def _page_number() -> int:
    text = request.args.get("page") or "1"
    if not (text.isascii() and text.isdigit() and len(text) < 7):
        abort(400, description="page is a number")
    return int(text)


def _query() -> str:
    return (request.args.get("q") or "").strip()[:100]


def _args() -> dict[str, str]:
    return {k: v for k, v in request.args.items() if k != "page"}


def list_url(endpoint: str, args: dict[str, str], **changes) -> str:
    """A list page's URL with the current filters and some changed (an empty value drops one)."""
    merged = {**args, **changes}
    return url_for(endpoint, **{k: v for k, v in merged.items() if v not in (None, "")})


def _now() -> int:
    return server_clock().physical_ms()


def _place_or_404(place_id: str) -> service.Place:
    if not is_uuid(place_id):
        abort(404)
    place = service.get_place(place_id, _now(), english())
    if place is None:
        abort(404)
    return place


@bp.get("/places")
@page_required("places")
def places():
    """Key places by grid, with their type, grade, last check, schedule and open hazards."""
    reference, filters = load_reference(), _filters()
    result = service.list_places(filters, reference, _now(), query=_query(), page=_page_number(),
                                 per_page=current_app.config["GRIDPATROL_PAGE_SIZE"], english=english())
    types = service.load_place_types()
    names = names_of_users([p.values.get("worker") for p in result.places]
                           + [p.last_check.values.get("worker") for p in result.places if p.last_check])
    grades = sorted({g for t in types.values() for g in (t.get("check_every_days") or {})})
    return render_template("pages/places.html", places=result.places, result=result, filters=filters,
                           reference=reference, types=types, grades=grades, names=names, query=_query(),
                           args=_args(), **reference.places())


def _form_choices(form: forms.PlaceForm, reference, types: dict) -> None:
    form.grid.choices = [(code, name_of(grid, code)) for code, grid in sorted(reference.grids.items())]
    form.type.choices = [(code, type_name(types, code)) for code, kind in sorted(types.items())
                         if not kind.get("_deleted")]
    workers = db.session.scalars(select(User).where(User.role == "worker").order_by(User.username)).all()
    form.worker.choices = [("", "—")] + [(w.id, f"{w.name} ({w.username})") for w in workers]


def _values_of(form: forms.PlaceForm) -> dict:
    text = {name: (form[name].data or "").strip() or None
            for name in ("name", "grade", "address", "person_in_charge", "phone", "notes")}
    location = None
    if form.lat.data is not None and form.lon.data is not None:
        location = {"lat": form.lat.data, "lon": form.lon.data, "accuracy_m": None, "source": "manual"}
    return {"grid": form.grid.data, "type": form.type.data, **text, "worker": form.worker.data or None,
            "location": location}


@bp.route("/places/new", methods=["GET", "POST"])
@bp.route("/places/<place_id>/edit", methods=["GET", "POST"])
@page_required("places")
def edit_place(place_id: str | None = None):
    """A new key place, or one's details changed; written as the user, synced to the grid's tablets."""
    reference, types = load_reference(), service.load_place_types()
    found = _place_or_404(place_id) if place_id is not None else None
    form = forms.PlaceForm()
    _form_choices(form, reference, types)
    if found is not None:
        form.grid.render_kw = {"disabled": True}
        if request.method == "POST":
            form.grid.data = found.grid  # a place keeps its grid
        else:
            values = found.values
            for name in ("name", "type", "grade", "address", "person_in_charge", "phone", "notes"):
                form[name].data = values.get(name)
            form.grid.data, form.worker.data = found.grid, values.get("worker") or ""
            where = values.get("location") or {}
            form.lat.data, form.lon.data = where.get("lat"), where.get("lon")
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                saved = service.save_place(current_user, _values_of(form), place_id)
                flash(_("Saved. The grid's tablets receive it at their next sync."), "success")
                return redirect(url_for(".place", place_id=saved), 303)
            except service.PlaceError as exc:
                flash(str(exc), "error")
        return render_template("pages/place_form.html", form=form, place=found), 400
    return render_template("pages/place_form.html", form=form, place=found)


@bp.get("/places/<place_id>")
@page_required("places")
def place(place_id: str):
    """One place: details, schedule, open hazards and its check history with photos."""
    reference = load_reference()
    found = _place_or_404(place_id)
    names = names_of_users([found.values.get("worker")] + [c.values.get("worker") for c in found.checks])
    devices = device_names(c.device_id for c in found.checks)
    photos = {c.id: photo_holdings(c.values.get("photos") or []) for c in found.checks}
    return render_template("pages/place.html", place=found, reference=reference, grid=reference.grid(found.grid),
                           types=service.load_place_types(), names=names, devices=devices, photos=photos)


@bp.get("/places/<place_id>/photos/<sha>")
@page_required("places")
def place_photo(place_id: str, sha: str):
    """A photo of one of the place's checks, full size or ``?size=thumb``; 404 until the server holds it."""
    found = _place_or_404(place_id)
    if not is_sha256(sha) or sha not in service.photos_of(found):
        abort(404)
    response = photo_response(sha, thumb=request.args.get("size") == "thumb")
    if response is None:
        abort(404)
    return response


@bp.get("/places/export.<fmt>")
@page_required("places")
def places_export(fmt: str):
    """The places of the list's filters and search as CSV, XLSX or GeoJSON; audited."""
    if fmt not in ("csv", "xlsx", "geojson"):
        abort(404)
    reference, filters = load_reference(), _filters()
    found = service.list_places(filters, reference, _now(), query=_query(), per_page=None,
                                english=english()).places[:EXPORT_LIMIT]
    audit.record("export", "places", f"{fmt} {request.query_string.decode(errors='replace')}".strip(),
                 note=f"{len(found)} places", commit=True)
    types = service.load_place_types()
    names = names_of_users(p.values.get("worker") for p in found)
    if fmt == "geojson":
        return Response(stream_with_context(stream_geojson(export.place_features(found, reference, types, names))),
                        mimetype="application/geo+json",
                        headers={"Content-Disposition": "attachment; filename=places.geojson"})
    rows = export.place_rows(found, reference, types, names)
    if fmt == "xlsx":
        return Response(xlsx_bytes(rows, "places"), mimetype=XLSX,
                        headers={"Content-Disposition": "attachment; filename=places.xlsx"})
    return Response(stream_with_context(stream_csv(rows)), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=places.csv"})


def type_name(types: dict, code: str | None) -> str:
    """A place type's name in the page's language, its code when unknown."""
    return name_of(types.get(code or ""), code)


@bp.context_processor
def _inject():
    return {"SCHEDULE_LABELS": SCHEDULE_LABELS, "RESULT_LABELS": RESULT_LABELS, "list_url": list_url,
            "type_name": type_name}


def init_app(app) -> None:
    """Register the key-place pages (after `server.web.init_app`)."""
    app.register_blueprint(bp)

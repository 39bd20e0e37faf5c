"""The patrol pages (blueprint ``patrols``): the map, coverage, the frequency plan and the fixed points.

Who: supervisors and admins (shared/roles.py ``PAGES["patrols"]``); anonymous visitors are sent to
log in, workers and unit users get 403. Every query argument is checked before it reaches a query:
a day that is not YYYY-MM-DD, a grid that is not a known grid's code, a worker that is not a user id,
an unknown period, street or community is 400 (the map's JSON answers its 400 as JSON).

The map page draws nothing itself: its script (server/static/pages/patrol-map.js) fetches
``/patrols/map.json`` with the page's filters and draws the GeoJSON it answers.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import func, select

from shared.hlc import parse_ms
from shared.records import is_uuid

from ..clock import server_clock
from ..config import parse_offset
from ..db import db
from ..models import Record, User
from ..reference import load_reference, names_of_users
from ..web.auth import page_required, protect
from ..web.forms import choice
from ..web.labels import english, name_of
from ..web.times import local_time, today
from . import cli, coverage, plan, service
from .forms import FixedPointForm

bp = Blueprint("patrols", __name__)
protect(bp)

PERIOD_LABELS = {"day": _l("Day"), "week": _l("Week")}
WEEKDAY_LABELS = [_l("Monday"), _l("Tuesday"), _l("Wednesday"), _l("Thursday"), _l("Friday"), _l("Saturday"),
                  _l("Sunday")]


def _zone():
    return parse_offset(current_app.config["GRIDPATROL_UTC_OFFSET"])


def _now_ms() -> int:
    return server_clock().physical_ms()


# --- the query arguments -----------------------------------------------------------------------------

def _grid_arg(grids: dict[str, service.Grid]) -> str | None:
    text = request.args.get("grid") or ""
    if not text:
        return None
    if text not in grids:
        raise service.BadQuery("grid", "is not the code of a grid")
    return text


def _worker_arg() -> str | None:
    text = request.args.get("worker") or ""
    if not text:
        return None
    if not is_uuid(text):
        raise service.BadQuery("worker", "is not a user id")
    return text


def _day_arg(default=None):
    text = request.args.get("day")
    if text in (None, ""):
        return default or today()
    return service.parse_day(text)


def _place_args(reference) -> tuple[str | None, str | None]:
    places = reference.places()
    street, community = request.args.get("street") or None, request.args.get("community") or None
    if street is not None and street not in places["streets"]:
        raise service.BadQuery("street", "is not a street of the grids")
    if community is not None and community not in places["communities"]:
        raise service.BadQuery("community", "is not a community of the grids")
    return street, community


def _bad(exc: service.BadQuery):
    abort(400, description=f"{exc.args[0]}: {exc.args[1]}")


def _latest_patrol_day():
    """The district day of the latest patrol started (the map's day when none is asked for), or today.

    A ``started_at`` is the tablet's word, not checked against the clock: one in the future never moves the map
    past today.
    """
    latest = db.session.scalar(select(func.max(Record.field_values["started_at"].as_string()))
                               .where(Record.kind == "patrol"))
    try:
        return min(service.district_day(parse_ms(latest), _zone()), today()) if latest else today()
    except (TypeError, ValueError):
        return today()


def _workers() -> list[tuple[str, str]]:
    """(id, name) of every worker, for the filter."""
    return [(u.id, u.name) for u in db.session.scalars(select(User).where(User.role == "worker")
                                                        .order_by(User.name, User.id))]


def _point_name(point: service.FixedPoint) -> str:
    return (point.name_en or point.name) if english() else point.name


# --- the map -------------------------------------------------------------------------------------------

@bp.get("/patrols")
@page_required("patrols")
def patrol_map():
    """The patrol map: tracks per worker and day, the grid's outline, fixed points visited or missed, events."""
    grids = service.load_grids()
    try:
        grid, worker = _grid_arg(grids), _worker_arg()
        day = _day_arg(_latest_patrol_day() if "day" not in request.args else None)
    except service.BadQuery as exc:
        _bad(exc)
    period = service.period_of("day", day, _zone())
    data = service.map_data(period, _now_ms(), grids, grid=grid, worker=worker)
    reference = load_reference()
    names = names_of_users([p.worker for p in data.patrols] + [v.worker for vs in data.visits.values() for v in vs])
    args = {k: v for k, v in {"grid": grid, "worker": worker, "day": day.isoformat()}.items() if v}
    return render_template("pages/patrols.html", data=data, grids=grids, grid=grid, worker=worker, day=day,
                           workers=_workers(), names=names, reference=reference, args=args,
                           previous_day=(day - timedelta(days=1)).isoformat(),
                           next_day=(day + timedelta(days=1)).isoformat(), point_name=_point_name,
                           map_config={"source": url_for(".map_json", **args),
                                       "tiles": current_app.config["GRIDPATROL_TILE_URL"],
                                       "attribution": current_app.config["GRIDPATROL_TILE_ATTRIBUTION"],
                                       "words": {"visited": _("visited"), "missed": _("not visited"),
                                                 "every": _("every %(hours)s h"), "points": _("points"),
                                                 "thinned": _("Long tracks are drawn thinned."),
                                                 "empty": _("No patrol on this day for these filters.")}})


@bp.get("/patrols/map.json")
@page_required("patrols")
def map_json():
    """The map's GeoJSON FeatureCollection for the page's filters (grid, worker, day); 400 as JSON for bad ones."""
    grids = service.load_grids()
    try:
        grid, worker = _grid_arg(grids), _worker_arg()
        day = _day_arg()
    except service.BadQuery as exc:
        return jsonify({"error": {"code": "invalid", "message": f"{exc.args[0]}: {exc.args[1]}"}}), 400
    period = service.period_of("day", day, _zone())
    data = service.map_data(period, _now_ms(), grids, grid=grid, worker=worker)
    reference = load_reference()
    names = names_of_users(p.worker for p in data.patrols)
    labels = {"grid_name": lambda values: name_of(values, values.get("code")),
              "point_name": _point_name, "time": lambda ms: local_time(ms)[11:] if ms else "",
              "category": lambda code: name_of(reference.category(code), code),
              "href": lambda event_id: url_for("cases.case", event_id=event_id)}
    answer = jsonify(service.geojson(data, names, labels))
    answer.mimetype = "application/geo+json"
    return answer


# --- coverage ----------------------------------------------------------------------------------------

@bp.get("/patrols/coverage")
@page_required("patrols")
def coverage_page():
    """Coverage, patrol time and fixed points on schedule per grid, for a day or a week."""
    reference = load_reference()
    grids = service.load_grids()
    try:
        kind = request.args.get("period") or "day"
        period = service.period_of(kind, _day_arg(), _zone())
        street, community = _place_args(reference)
    except service.BadQuery as exc:
        _bad(exc)
    codes = sorted(code for code, grid in grids.items()
                   if (not street or grid.values.get("street") == street)
                   and (not community or grid.values.get("community") == community))
    rows = coverage.coverage(grids, codes, period, _zone(), _now_ms())
    step = 7 if period.kind == "week" else 1
    args = {"period": period.kind, "street": street, "community": community}
    return render_template("pages/patrol_coverage.html", rows=rows, total=coverage.total(rows), period=period,
                           grids=grids, reference=reference, street=street, community=community,
                           filters={"street": street, "community": community}, args=args,
                           previous_day=(period.first - timedelta(days=step)).isoformat(),
                           next_day=(period.first + timedelta(days=step)).isoformat(),
                           PERIOD_LABELS=PERIOD_LABELS, cell_m=coverage.geometry.CELL_M,
                           reach_m=coverage.geometry.REACH_M, gap_s=coverage.geometry.MAX_GAP_MS // 1000,
                           **reference.places())


# --- the plan ----------------------------------------------------------------------------------------

@bp.get("/patrols/plan")
@page_required("patrols")
def plan_page():
    """Each grid's suggested patrol hours, rounds, busy weekdays and fixed points most in need; the rule in words."""
    reference = load_reference()
    grids = service.load_grids()
    try:
        street, community = _place_args(reference)
    except service.BadQuery as exc:
        _bad(exc)
    codes = sorted(code for code, grid in grids.items()
                   if (not street or grid.values.get("street") == street)
                   and (not community or grid.values.get("community") == community))
    now_ms = _now_ms()
    found = plan.plans(codes, today(), _zone(), now_ms)
    stored = plan.stored_plans(codes)
    points = {p.id: p for p in service.fixed_points(codes)}
    return render_template("pages/patrol_plan.html", plans=found, stored=stored, grids=grids, reference=reference,
                           points=points, point_name=_point_name, english=english(), rule=plan,
                           filters={"street": street, "community": community}, WEEKDAY_LABELS=WEEKDAY_LABELS,
                           hour_ranges=plan.hour_ranges, **reference.places())


# --- fixed points --------------------------------------------------------------------------------------

def _grid_choices(form: FixedPointForm, grids: dict[str, service.Grid]) -> None:
    form.grid.choices = [choice(code, name_of(grid.values, code)) for code, grid in sorted(grids.items())]


def _values_of(form: FixedPointForm) -> dict[str, Any]:
    values: dict[str, Any] = {
        "grid": form.grid.data, "name": form.name.data.strip(), "name_en": (form.name_en.data or "").strip() or None,
        "location": {"lat": round(form.lat.data, 6), "lon": round(form.lon.data, 6), "accuracy_m": None,
                     "source": "manual"},
        "radius_m": form.radius_m.data, "every_hours": form.every_hours.data}
    return values


def _points_page(grids, form: FixedPointForm, grid: str | None, status: int = 200):
    points = service.fixed_points([grid] if grid else None)
    last = service.last_visits([p.id for p in points])
    return render_template("pages/patrol_points.html", points=points, last=last, form=form, grids=grids, grid=grid,
                           point_name=_point_name, reference=load_reference()), status


@bp.route("/patrols/points", methods=["GET", "POST"])
@page_required("patrols")
def points_page():
    """The fixed points (of a grid), with the form that adds one."""
    grids = service.load_grids()
    try:
        grid = _grid_arg(grids)
    except service.BadQuery as exc:
        _bad(exc)
    form = FixedPointForm()
    _grid_choices(form, grids)
    if request.method == "GET":
        if grid:
            form.grid.data = grid
        return _points_page(grids, form, grid)
    if not form.validate_on_submit():
        flash(_("Please correct the form."), "error")
        return _points_page(grids, form, grid, 400)
    try:
        service.save_fixed_point(current_user, None, _values_of(form), grids)
    except service.PointRefused as exc:
        flash(_("Not recorded: %(reason)s", reason=str(exc)), "error")
        return _points_page(grids, form, grid, 400)
    flash(_("Fixed point added: %(name)s.", name=form.name.data.strip()), "success")
    return redirect(url_for(".points_page", grid=form.grid.data), 303)


@bp.route("/patrols/points/<point_id>", methods=["GET", "POST"])
@page_required("patrols")
def point_page(point_id: str):
    """One fixed point's form: edit it, or delete it."""
    if not is_uuid(point_id):
        abort(404)
    point = service.fixed_point(point_id)
    if point is None:
        abort(404)
    grids = service.load_grids()
    form = FixedPointForm(data={"grid": point.grid, "name": point.name, "name_en": point.name_en, "lat": point.lat,
                                "lon": point.lon, "radius_m": point.radius_m, "every_hours": point.every_hours}
                          if request.method == "GET" else None)
    _grid_choices(form, grids)
    if request.method == "POST":
        if form.validate_on_submit():
            values = _values_of(form)
            values["_deleted"] = bool(form.deleted.data)
            try:
                service.save_fixed_point(current_user, point.id, values, grids)
            except service.PointRefused as exc:
                flash(_("Not recorded: %(reason)s", reason=str(exc)), "error")
            else:
                flash(_("Fixed point deleted: %(name)s.", name=point.name) if form.deleted.data
                      else _("Fixed point saved: %(name)s.", name=values["name"]), "success")
                return redirect(url_for(".points_page", grid=values["grid"]), 303)
        else:
            flash(_("Please correct the form."), "error")
        status = 400
    else:
        status = 200
    return render_template("pages/patrol_point.html", point=point, form=form, grids=grids,
                           point_name=_point_name), status


@bp.context_processor
def _inject():
    return {"hours_minutes": _hours_minutes}


def _hours_minutes(ms: int) -> str:
    minutes = round(ms / 60_000)
    return f"{minutes // 60}:{minutes % 60:02d}"


def init_app(app) -> None:
    """Register the patrol pages and the ``flask patrols`` commands."""
    app.register_blueprint(bp)
    app.cli.add_command(cli.patrols_cli)

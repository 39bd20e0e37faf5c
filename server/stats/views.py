"""The statistics pages (blueprint ``stats``) and their JSON (``/api/v1/stats/cases``).

Who: supervisors and admins (shared/roles.py ``PAGES["stats"]``). The pages are the weekly table per
level, district → street → community → grid, drillable, with the same table by unit, category or
reporting worker, the rhythm of events (by week, season and hour) and the times to dispatch and to
close; the unit assessment per month; CSV exports of both, each written to the audit log. The JSON
answers the same figures to a page session or a device token. Every input is checked before it
reaches a query (`service.parse_day`, the GROUPS table); a bad one is 400.
"""

from __future__ import annotations

from typing import Any

from flask import (Blueprint, Response, abort, current_app, g, jsonify, render_template, request,
                   stream_with_context, url_for)
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from marshmallow import Schema, fields

from shared.roles import may_use

from .. import accounts, audit
from ..api import documented
from ..clock import server_clock
from ..config import parse_offset
from ..errors import ApiError
from ..exports import XLSX, stream_csv, xlsx_bytes
from ..reference import Reference, load_reference
from ..web.auth import page_required, protect
from ..web.times import today
from . import service

bp = Blueprint("stats", __name__)
api_bp = Blueprint("stats_api", __name__, url_prefix="/api/v1")

LABELS = {
    "reported": _l("Received (受理)"), "dispatched": _l("Dispatched (派遣)"), "due": _l("Due (应结案)"),
    "closed": _l("Closed (结案)"), "closed_on_time": _l("Closed on time (按期结案)"), "reworked": _l("Reworked (返工)"),
    "extended": _l("Extended (延期)"), "supervised": _l("Supervised (督办)"), "overdue_open": _l("Open and overdue"),
    "closure_rate": _l("Closure rate"), "on_time_rate": _l("On-time rate"), "rework_rate": _l("Rework rate"),
    "extension_rate": _l("Extension rate"),
}
GROUP_LABELS = {"district": _l("District"), "street": _l("Street"), "community": _l("Community"),
                "grid": _l("Grid"), "unit": _l("Unit"), "category": _l("Category"), "reporter": _l("Reporting worker")}
SEASON_LABELS = {"spring": _l("Spring"), "summer": _l("Summer"), "autumn": _l("Autumn"), "winter": _l("Winter")}


def _zone():
    return parse_offset(current_app.config["GRIDPATROL_UTC_OFFSET"])


def _period(args) -> service.Period:
    """The period of ``from`` and ``to`` (days, inclusive); this week without them."""
    first, last = service.week_of(today())
    if "from" in args or "to" in args:  # given, even empty: then checked; one of them alone is one day
        first = service.parse_day("from", args["from"] if "from" in args else args.get("to"))
        last = service.parse_day("to", args["to"] if "to" in args else args.get("from"))
    return service.Period.of_days(first, last, _zone())


def _place(args, reference: Reference) -> tuple[str | None, str | None]:
    """The street and community drilled into, if the reference data knows them."""
    places = reference.places()
    street = args.get("street") if args.get("street") in places["streets"] else None
    community = args.get("community") if args.get("community") in places["communities"] else None
    return street, community


def _level(street: str | None, community: str | None) -> str:
    """The group a drill shows: streets of the district, communities of a street, grids of a community."""
    return "grid" if community else ("community" if street else "street")


# --- pages ---------------------------------------------------------------------------------------

@bp.get("/stats")
@page_required("stats")
def dashboard():
    """The weekly table of the level drilled into, or by unit, category or worker; the rhythm of events."""
    reference = load_reference()
    try:
        period = _period(request.args)
    except service.BadQuery as exc:
        abort(400, description=str(exc.args[1]))
    street, community = _place(request.args, reference)
    group = request.args.get("group")
    group = group if group in ("unit", "category", "reporter") else _level(street, community)
    now_ms = server_clock().physical_ms()
    result = service.table(group, period, now_ms, reference, street=street, community=community)
    rhythm = service.rhythm(period, _zone(), service.grids_within(reference, street, community))
    by_category = service.table("category", period, now_ms, reference, street=street, community=community)
    districts = sorted({grid.get("district") for grid in reference.grids.values() if grid.get("district")})
    open_cases = service.open_cases_by_age(now_ms, service.grids_within(reference, street, community))
    disputes = _dispute_rates(reference, now_ms, period, street, community)
    return render_template("pages/stats.html", table=result, district=" · ".join(districts), rhythm=rhythm, by_category=by_category,
                           disputes=disputes,
                           period=period, street=street, community=community, group=group, reference=reference,
                           LABELS=LABELS, GROUP_LABELS=GROUP_LABELS, SEASON_LABELS=SEASON_LABELS,
                           FIGURES=service.FIGURES, RATES=service.RATES, args=_args(period, street, community),
                           drill=_drill(group, period, street), map_data=_map_data(open_cases), charts={
                               "category": _bars([(row.name, row.figures["reported"]) for row in by_category.rows][:12]),
                               "week": _bars([(week.strftime("%m-%d"), n) for week, n in rhythm.by_week][-12:]),
                               "hour": _bars([(f"{hour:02d}:00", n) for hour, n in enumerate(rhythm.by_hour)]),
                           })


def _dispute_rates(reference: Reference, now_ms: int, period: service.Period, street: str | None,
                   community: str | None):
    """The dispute rates of the disputes reported in the period, in the place drilled into (server/disputes)."""
    from ..disputes.stats import rate_tables

    return rate_tables(reference, now_ms, grids=service.grids_within(reference, street, community),
                       start_ms=period.start_ms, end_ms=period.end_ms)


@bp.get("/stats/assessment")
@page_required("stats")
def assessment():
    """Unit assessment (考核) for a month: the table by unit, and each case counted against a unit."""
    reference = load_reference()
    try:
        period = service.month_period(request.args.get("month"), today(), _zone())
    except service.BadQuery as exc:
        abort(400, description=str(exc.args[1]))
    unit = request.args.get("unit") if request.args.get("unit") in reference.units else None
    result = service.table("unit", period, server_clock().physical_ms(), reference)
    return render_template("pages/assessment.html", table=result, cases=service.assessed_cases(unit, period),
                           period=period, unit=unit, month=period.first.strftime("%Y-%m"), reference=reference,
                           LABELS=LABELS, FIGURES=service.FIGURES, RATES=service.RATES)


@bp.get("/stats/table.<fmt>")
@page_required("stats")
def table_export(fmt: str):
    """The dashboard's (or the assessment's, ``group=unit&month=``) table as CSV or XLSX; written to the audit log."""
    if fmt not in ("csv", "xlsx"):
        abort(404)
    reference = load_reference()
    try:
        period = (service.month_period(request.args.get("month"), today(), _zone()) if request.args.get("month")
                  else _period(request.args))
    except service.BadQuery as exc:
        abort(400, description=str(exc.args[1]))
    street, community = _place(request.args, reference)
    group = request.args.get("group")
    group = group if group in service.GROUPS else _level(street, community)
    result = service.table(group, period, server_clock().physical_ms(), reference, street=street,
                           community=community)
    audit.record("export", "statistics", f"{group}.{fmt}", commit=True,
                 note=f"{period.first}..{period.last} {street or ''} {community or ''}".strip())
    labels = {**{k: str(v) for k, v in LABELS.items()}, "name": str(GROUP_LABELS[group]), "total": str(_l("Total"))}
    name = f"statistics-{group}-{period.first}-{period.last}.{fmt}"
    if fmt == "xlsx":
        return Response(xlsx_bytes(service.csv_rows(result, labels), "statistics"), mimetype=XLSX,
                        headers={"Content-Disposition": f"attachment; filename={name}"})
    return Response(stream_with_context(stream_csv(service.csv_rows(result, labels))), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename={name}"})


def _args(period: service.Period, street: str | None, community: str | None) -> dict[str, str]:
    args = {"from": period.first.isoformat(), "to": period.last.isoformat()}
    if street:
        args["street"] = street
    if community:
        args["community"] = community
    return args


def _map_data(open_cases: list[dict[str, Any]]) -> dict[str, Any]:
    """What the map script draws: the open cases with their age band, the bands' colours and labels, the tiles."""
    bands = [{"colour": colour, "label": str(_l("up to %(days)s days", days=upto) if upto else _l("longer"))}
             for upto, colour in service.AGE_BANDS]
    cases = [{"lat": c["lat"], "lon": c["lon"], "band": c["band"], "href": url_for("cases.case", event_id=c["id"]),
              "label": f'{c["number"] or ""} · {_l("%(n)s days open", n=c["days"])}'} for c in open_cases]
    first = open_cases[0] if open_cases else {"lat": 0.0, "lon": 0.0}
    return {"cases": cases, "bands": bands, "lat": first["lat"], "lon": first["lon"],
            "tiles": current_app.config["GRIDPATROL_TILE_URL"],
            "attribution": current_app.config["GRIDPATROL_TILE_ATTRIBUTION"]}


def _drill(group: str, period: service.Period, street: str | None):
    """The link of a row to the level below it (a street's communities, a community's grids), or None."""
    days = {"from": period.first.isoformat(), "to": period.last.isoformat()}
    if group == "street":
        return lambda row: url_for(".dashboard", street=row.key, **days)
    if group == "community":
        return lambda row: url_for(".dashboard", street=street, community=row.key, **days) if street else None
    return None


def _bars(values: list[tuple[str, int]], width: int = 560, bar: int = 18) -> dict[str, Any]:
    """An SVG bar chart's geometry, drawn by the template: one labelled bar per value, scaled to the largest."""
    top = max((v for _k, v in values), default=0) or 1
    rows = [{"label": label, "value": value, "y": i * (bar + 6), "w": round((width - 230) * value / top)}
            for i, (label, value) in enumerate(values)]
    return {"rows": rows, "width": width, "height": max(bar, len(rows) * (bar + 6)), "bar": bar}


# --- the JSON ------------------------------------------------------------------------------------

class StatsRow(Schema):
    key = fields.String(required=True, metadata={"description": "the group's code (a user id for reporter)"})
    name = fields.String(required=True)
    reported = fields.Integer(required=True)
    dispatched = fields.Integer(required=True)
    due = fields.Integer(required=True)
    closed = fields.Integer(required=True)
    closed_on_time = fields.Integer(required=True)
    reworked = fields.Integer(required=True)
    extended = fields.Integer(required=True)
    supervised = fields.Integer(required=True)
    overdue_open = fields.Integer(required=True)
    closure_rate = fields.Float(required=True, allow_none=True)
    on_time_rate = fields.Float(required=True, allow_none=True)
    rework_rate = fields.Float(required=True, allow_none=True)
    extension_rate = fields.Float(required=True, allow_none=True)


class StatsAnswer(Schema):
    from_ = fields.String(required=True, data_key="from", metadata={"description": "first day, YYYY-MM-DD"})
    to = fields.String(required=True, metadata={"description": "last day, YYYY-MM-DD (inclusive)"})
    group = fields.String(required=True)
    rows = fields.List(fields.Nested(StatsRow), required=True)
    total = fields.Nested(StatsRow, required=True)


# A day of the years 1900 to 2099 (service.parse_day takes those), a real one (format: date).
_DAY = {"type": "string", "format": "date",
        "pattern": "^(19|20)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"}
_QUERY = {"parameters": [
    {"name": "group", "in": "query", "required": False, "schema": {"type": "string", "enum": list(service.GROUPS),
                                                                    "default": "street"}},
    {"name": "from", "in": "query", "required": False, "schema": _DAY,
     "description": "first day in the district's time; without `from` and `to`, this week"},
    {"name": "to", "in": "query", "required": False, "schema": _DAY,
     "description": "last day, inclusive; `from` by default (and `from` is `to` without it)"},
]}


def _api_user():
    """The page session's user, else the device token's; 401 without either, 403 for a role without the figures."""
    user = current_user if current_user.is_authenticated else None
    if user is None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        device = accounts.device_for_token(token.strip()) if scheme.lower() == "bearer" and token else None
        user = device.user if device is not None else None
    if user is None:
        raise ApiError(401, "log in on the pages or send a device token", code="unauthorized")
    if not may_use(user.role, "stats"):
        raise ApiError(403, f"the {user.role} role has no statistics", code="forbidden")
    g.user = user
    return user


@documented("/stats/cases", "GET", "The case figures of a period by group (the weekly table)", blueprint=api_bp,
            answer=StatsAnswer, errors=(400, 401, 403), openapi=_QUERY)
def stats_cases():
    """The cohort of cases reported in [from, to] (district days), not deleted and not duplicates, by group, with
    the figures and rates of docs/pages.md ("Statistics"); for supervisors and admins (a page session or a device
    token)."""
    _api_user()
    args = request.args
    unknown = sorted(set(args) - {"group", "from", "to"})
    if unknown:
        raise ApiError(400, "unknown query parameter: " + ", ".join(unknown)[:200], code="invalid")
    try:
        period = _period(args)
        group = args.get("group", "street")
        result = service.table(group, period, server_clock().physical_ms(), load_reference())
    except service.BadQuery as exc:
        raise ApiError(400, f"{exc.args[0]}: {exc.args[1]}", code="invalid") from None
    answer = {"from": period.first.isoformat(), "to": period.last.isoformat(), "group": group,
              "rows": [row.as_dict() for row in result.rows], "total": result.total.as_dict()}
    return jsonify(answer)


protect(bp)


@bp.context_processor
def _inject():
    return {"stats_url": lambda **kw: url_for("stats.dashboard", **{k: v for k, v in kw.items() if v})}


def init_app(app) -> None:
    """Register the statistics pages and their JSON."""
    app.register_blueprint(bp)
    app.register_blueprint(api_bp)


"""The rental-house pages (blueprint ``houses``): houses, a house, tenants, the registration rate, the export.

Views read query arguments, call `server.houses.service` and render. Who may open them is
shared/roles.py's ``PAGES["houses"]``: supervisors and admins; anonymous visitors are sent to log
in, grid workers (tablet) and unit users (they act on cases dispatched to them, not on residents'
registers) get 403.

Every answer of this blueprint carries ``Cache-Control: no-store``: they hold
names, phone numbers and (masked or not) ID numbers, which must not stay in a
shared browser's or a proxy's cache.
"""

from __future__ import annotations

from flask import (Blueprint, Response, abort, current_app, render_template, request, stream_with_context,
                   url_for)
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from shared.records import is_sha256, is_uuid

from .. import audit, privacy
from ..cases.service import photo_holdings, photo_response
from ..exports import XLSX, stream_csv, stream_geojson, xlsx_bytes
from ..reference import device_names, load_reference, names_of_users
from ..web.auth import page_required, protect
from ..web.labels import english
from ..web.times import today
from . import cli, export, service

bp = Blueprint("houses", __name__)
protect(bp, no_store=True)  # names, phones and ID numbers stay out of every cache

RISK_LABELS = {"low": _l("Low"), "medium": _l("Medium"), "high": _l("High")}
RESULT_LABELS = {"pass": _l("Pass"), "fail": _l("Fail"), "na": _l("Not applicable")}


def _filters_from(args) -> service.HouseFilters:
    return service.HouseFilters(grid=args.get("grid") or None, community=args.get("community") or None,
                                street=args.get("street") or None, hazards=args.get("hazards") == "1",
                                below_goal=args.get("below_goal") == "1")


def _page_number() -> int:
    """The page asked for: plain ASCII digits, at most six of them; anything else is the first page."""
    text = request.args.get("page", "1")
    return int(text) if text.isascii() and text.isdigit() and len(text) < 7 else 1


def _query() -> str:
    return (request.args.get("q") or "").strip()[:100]


def _tenants(reference, filters, per_page):
    """The tenant rows of the request's filters and search: a page of them, or all (per_page None)."""
    return service.list_tenants(current_user, filters, reference, today(), query=_query(),
                                current_only=request.args.get("all") != "1", page=_page_number(),
                                per_page=per_page)


def list_url(endpoint: str, args: dict[str, str], **changes) -> str:
    """A list page's URL with the current filters and some changed (an empty value drops one)."""
    merged = {**args, **changes}
    return url_for(endpoint, **{k: v for k, v in merged.items() if v not in (None, "")})


def _house_or_404(house_id: str) -> service.House:
    if not is_uuid(house_id):
        abort(404)
    house = service.get_house(current_user, house_id, today(), english())
    if house is None:
        abort(404)
    return house


# --- the pages ---------------------------------------------------------------------------------

@bp.get("/houses")
@page_required("houses")
def houses():
    """Rental houses by street, community and grid, with their last check and open hazards."""
    reference, filters = load_reference(), _filters_from(request.args)
    result = service.list_houses(filters, reference, today(), query=_query(), page=_page_number(),
                                 per_page=current_app.config["GRIDPATROL_PAGE_SIZE"], english=english())
    names = names_of_users(h.last_check.values.get("worker") for h in result.houses if h.last_check)
    return render_template("pages/houses.html", houses=result.houses, result=result, filters=filters,
                           reference=reference, names=names, query=_query(), args=_args(), **reference.places())


@bp.get("/houses/<house_id>")
@page_required("houses")
def house(house_id: str):
    """One house: details, registration, its tenants and its check history with photos."""
    reference = load_reference()
    found = _house_or_404(house_id)
    names = names_of_users(c.values.get("worker") for c in found.checks)
    devices = device_names(c.device_id for c in found.checks)
    photos = {c.id: photo_holdings(c.values.get("photos") or []) for c in found.checks}
    _audit_full_numbers("house", house_id, [t for t in found.tenants if t.id_full])
    return render_template("pages/house.html", house=found, reference=reference, grid=reference.grid(found.grid),
                           names=names, devices=devices, photos=photos,
                           may_see=privacy.may_see_id_numbers(current_user))


@bp.get("/houses/<house_id>/photos/<sha>")
@page_required("houses")
def house_photo(house_id: str, sha: str):
    """A photo of one of the house's checks, full size or ``?size=thumb``; 404 until the server holds it."""
    found = _house_or_404(house_id)
    if not is_sha256(sha) or sha not in service.photos_of(found):
        abort(404)
    response = photo_response(sha, thumb=request.args.get("size") == "thumb")
    if response is None:
        abort(404)
    return response


@bp.get("/houses/tenants")
@page_required("houses")
def tenants():
    """Tenants by house, current ones unless moved-out ones are asked for; ID numbers as the role may see them."""
    reference, filters = load_reference(), _filters_from(request.args)
    result = _tenants(reference, filters, current_app.config["GRIDPATROL_PAGE_SIZE"])
    _audit_full_numbers("tenants", request.query_string.decode(errors="replace") or None,
                        [t for _h, t in result.rows if t.id_full])
    return render_template("pages/tenants.html", rows=result.rows, result=result, filters=filters,
                           reference=reference, current_only=request.args.get("all") != "1", query=_query(),
                           args=_args(), may_see=privacy.may_see_id_numbers(current_user), **reference.places())


@bp.get("/houses/tenants.<fmt>")
@page_required("houses")
def tenants_export(fmt: str):
    """The tenant list as CSV (UTF-8 with BOM) or XLSX, with the same filters and the same masking; audited."""
    if fmt not in ("csv", "xlsx"):
        abort(404)
    reference = load_reference()
    rows = _tenants(reference, _filters_from(request.args), None).rows
    full = sum(1 for _h, t in rows if t.id_full)
    audit.record("export", "tenants", f"{fmt} {request.query_string.decode(errors='replace')}".strip(),
                 note=f"{len(rows)} rows, {full} full ID numbers", commit=True)
    return _file(export.tenant_rows(rows, reference), fmt, "tenants")


@bp.get("/houses/export.<fmt>")
@page_required("houses")
def houses_export(fmt: str):
    """The houses of the list's filters and search as CSV, XLSX or GeoJSON (no tenant's personal data); audited."""
    if fmt not in ("csv", "xlsx", "geojson"):
        abort(404)
    reference, filters = load_reference(), _filters_from(request.args)
    houses = service.list_houses(filters, reference, today(), query=_query(), page=1, per_page=EXPORT_LIMIT,
                                 english=english()).houses
    audit.record("export", "houses", f"{fmt} {request.query_string.decode(errors='replace')}".strip(),
                 note=f"{len(houses)} houses", commit=True)
    if fmt == "geojson":
        return Response(stream_with_context(stream_geojson(export.house_features(houses, reference))),
                        mimetype="application/geo+json",
                        headers={"Content-Disposition": "attachment; filename=houses.geojson"})
    return _file(export.house_rows(houses, reference), fmt, "houses")


EXPORT_LIMIT = 200_000  # houses in one export: a district has thousands


def _file(rows, fmt: str, name: str):
    if fmt == "xlsx":
        return Response(xlsx_bytes(rows, name), mimetype=XLSX,
                        headers={"Content-Disposition": f"attachment; filename={name}.xlsx"})
    return Response(stream_with_context(stream_csv(rows)), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename={name}.csv"})


def _audit_full_numbers(page: str, target: str | None, tenants) -> None:
    """An audit line for a page that shows full resident ID numbers: which tenants' (by id), never the numbers."""
    if tenants:
        audit.record("view_id_numbers", "tenant", target, after={"page": page, "tenants": [t.id for t in tenants]},
                     note=f"{len(tenants)} full ID numbers", commit=True)


@bp.get("/houses/registration")
@page_required("houses")
def registration():
    """The registration rate per street, community, grid and house against the 95 % goal, and the houses below it."""
    reference = load_reference()
    found = service.load_houses(today(), english())
    by_grid = service.rate_rows(found, lambda h: h.grid)
    by_community = service.rate_rows(found, lambda h: reference.grid(h.grid).get("community"))
    by_street = service.rate_rows(found, lambda h: reference.grid(h.grid).get("street"))
    total = service.rate_rows(found, lambda h: "")
    below = sorted((h for h in found if service.below_goal(h.rate)), key=lambda h: (h.rate, h.id))
    uncounted = [h for h in found if h.rate is None]
    return render_template("pages/registration.html", houses=found, by_grid=by_grid, by_community=by_community,
                           by_street=by_street,
                           total=total[0] if total else None, below=below, uncounted=uncounted,
                           reference=reference, goal=service.REGISTRATION_GOAL)


@bp.context_processor
def _inject():
    return {"RISK_LABELS": RISK_LABELS, "RESULT_LABELS": RESULT_LABELS, "GOAL": service.REGISTRATION_GOAL,
            "below_goal": service.below_goal, "list_url": list_url}


def _args() -> dict[str, str]:
    """The request's query arguments but the page number, for the pager and the export link."""
    return {k: v for k, v in request.args.items() if k != "page"}


def init_app(app) -> None:
    """Register the house pages (after `server.web.init_app`, whose log-in, CSRF and languages they use)."""
    app.register_blueprint(bp)
    app.cli.add_command(cli.houses_cli)

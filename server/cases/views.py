"""The case pages (blueprint ``cases``): the queue, the case page, its actions and its photos.

Views load a form, call `server.cases.service` and render. Who may open them is shared/roles.py's
``PAGES["cases"]``: supervisors, admins and unit users; anonymous visitors are sent to log in, and
a grid worker gets 403 (workers use the tablet). A unit user sees only the cases dispatched to
their unit, and any other case is 404 to them, as if it did not exist. Every POST carries a CSRF
token, checked before any view runs (`server.web.protect`).
"""

from __future__ import annotations

import re
from typing import Any

from flask import (Blueprint, Response, abort, current_app, flash, redirect, render_template, request,
                   stream_with_context, url_for)
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf import FlaskForm

from shared.case import RESOLUTIONS
from shared.records import is_sha256, is_uuid

from ..clock import server_clock
from ..models import User
from ..photos.service import max_photo_bytes
from ..reference import Reference, device_names, load_reference, names_of_users
from ..web.auth import page_required, protect
from ..web.forms import choice
from ..web.labels import ACTION_LABELS, REASON_LABELS, STATUS_LABELS, name_of
from ..web.times import local_input, local_time, utc_instant
from .. import audit
from ..exports import XLSX, stream_csv, stream_geojson, xlsx_bytes
from . import cli, export, service
from .forms import ACTION_FORMS, MAX_RECTIFY_PHOTOS, DispatchForm, DuplicateForm, RectifyForm

bp = Blueprint("cases", __name__)
CASE_NUMBER = re.compile(r"[0-9]{8}-[0-9]{4,9}")  # server/sync/casebook.py, case_number


def _now_ms() -> int:
    return server_clock().physical_ms()


def _case_or_404(event_id: str, reference: Reference, now_ms: int) -> service.Case:
    if not is_uuid(event_id):
        abort(404)
    try:
        return service.get_case(current_user, event_id, now_ms, reference)
    except service.CaseNotFound:
        abort(404)


# --- the queue -----------------------------------------------------------------------------------

def _filters_from(args, user: User) -> service.QueueFilters:
    status = args.get("status") or "open"
    return service.QueueFilters(
        status=status if status in service.STATUS_FILTERS else "open",
        grid=args.get("grid") or None,
        community=args.get("community") or None,
        street=args.get("street") or None,
        category=args.get("category") or None,
        unit=(args.get("unit") or None) if user.role != "unit" else None,
        urgent=args.get("urgent") == "1",
        overdue=args.get("overdue") == "1",
        supervised=args.get("supervised") == "1",
        resolution=args.get("resolution") if args.get("resolution") in RESOLUTIONS else None,
        q=(args.get("q") or "").strip()[:100] or None,
    )


@bp.get("/cases")
@page_required("cases")
def queue():
    """The work queue: filters, urgent first then by deadline, paged, with counts per status."""
    reference = load_reference()
    filters = _filters_from(request.args, current_user)
    if filters.q and CASE_NUMBER.fullmatch(filters.q):  # a number read out on the phone: straight to it
        found = service.find_by_number(current_user, filters.q)
        if found:
            return redirect(url_for(".case", event_id=found), 303)
    page_text = request.args.get("page", "1")
    page = int(page_text) if page_text.isascii() and page_text.isdigit() and len(page_text) < 7 else 1
    result = service.list_cases(current_user, filters, page, current_app.config["GRIDPATROL_PAGE_SIZE"],
                                _now_ms(), reference)
    names = names_of_users(c.event.get("reporter") for c in result.cases)
    args = {k: v for k, v in request.args.items() if k != "page"}
    return render_template("pages/queue.html", result=result, filters=filters, reference=reference, names=names,
                           args=args, **reference.places())


@bp.get("/cases/export.<fmt>")
@page_required("cases")
def export_cases(fmt: str):
    """The queue, with its filters, as CSV, XLSX or GeoJSON (every page of it); written to the audit log."""
    if fmt not in ("csv", "xlsx", "geojson"):
        abort(404)
    reference = load_reference()
    filters = _filters_from(request.args, current_user)
    audit.record("export", "cases", fmt, note=request.query_string.decode(errors="replace")[:500] or None,
                 commit=True)
    now_ms = _now_ms()
    name = f"cases-{filters.status}.{fmt}"
    if fmt == "xlsx":
        return Response(xlsx_bytes(export.table_rows(current_user, filters, reference, now_ms), "cases"),
                        mimetype=XLSX, headers={"Content-Disposition": f"attachment; filename={name}"})
    if fmt == "geojson":
        body = stream_geojson(export.features(current_user, filters, reference, now_ms))
        mimetype = "application/geo+json"
    else:
        body, mimetype = stream_csv(export.table_rows(current_user, filters, reference, now_ms)), "text/csv"
    return Response(stream_with_context(body), mimetype=mimetype,
                    headers={"Content-Disposition": f"attachment; filename={name}"})


# --- the case page -------------------------------------------------------------------------------

def _source(case: service.Case, record_id: str, hlc: str, devices: dict[str, str]) -> dict[str, str]:
    """Where a record came from: the device whose push created it, else (a page, the CLI) the server."""
    name = devices.get(case.devices.get(record_id) or "")
    node = service.node_of(hlc) or ""
    if name is not None:
        return {"kind": "device", "label": _("Tablet “%(name)s”", name=name), "node": node}
    return {"kind": "server", "label": _("Web page / server"), "node": node}


def _timeline(case: service.Case, devices: dict[str, str], names: dict[str, str],
              reference: Reference) -> list[dict[str, Any]]:
    event = case.event
    rows = [{"action": "report", "label": ACTION_LABELS["report"],
             "when": local_time(event.get("reported_at"), seconds=True),
             "who": names.get(event.get("reporter"), event.get("reporter") or ""),
             "source": _source(case, case.id, case.created_hlc, devices), "applied": True, "reason": None,
             "details": [], "status": "reported"}]
    for entry in case.state.timeline:
        values = case.actions.get(entry.action_id, {})
        details = []
        if values.get("unit"):
            details.append((_("Unit"), name_of(reference.units.get(values["unit"]), values["unit"])))
        if values.get("deadline"):
            details.append((_("Deadline"), local_time(values["deadline"])))
        if values.get("duplicate_of"):
            details.append((_("Duplicate of"), values["duplicate_of"]))
        if values.get("note"):
            details.append((_("Note"), values["note"]))
        if values.get("photos"):
            details.append((_("Photos"), str(len(values["photos"]))))
        rows.append({
            "action": entry.action, "label": ACTION_LABELS.get(entry.action, entry.action),
            "when": local_time(service.wall_ms_of(entry.hlc), seconds=True),
            "who": names.get(entry.actor, entry.actor or ""),
            "source": _source(case, entry.action_id, entry.hlc, devices), "applied": entry.applied,
            "reason": REASON_LABELS.get(entry.reason, entry.reason) if entry.reason else None,
            "stand_in": entry.stand_in, "details": details, "status": entry.status,
        })
    return rows


def _forms_for(case: service.Case, reference: Reference, now_ms: int,
               failed: tuple[str, FlaskForm] | None = None) -> dict[str, FlaskForm]:
    forms: dict[str, FlaskForm] = {}
    for action in service.available_actions(current_user, case):
        if action == "mark_duplicate":
            continue  # one small form per nearby case, built in the template
        if failed and failed[0] == action:
            forms[action] = failed[1]
            continue
        form = ACTION_FORMS[action](formdata=None)
        if action == "dispatch":
            _unit_choices(form, reference)
            form.unit.data = case.state.unit or reference.category(case.category).get("default_unit")
            form.deadline.data = local_input(service.suggested_deadline(reference, case, now_ms))
        elif action in ("extend", "request_extension"):
            form.deadline.data = local_input(case.state.deadline)
        elif action == "grant_extension":
            form.deadline.data = local_input(case.state.extension_asked)
        forms[action] = form
    return forms


def _unit_choices(form: DispatchForm, reference: Reference) -> None:
    form.unit.choices = [choice(code, name_of(unit, code)) for code, unit in sorted(reference.units.items())]


def _photo_groups(case: service.Case) -> list[dict[str, Any]]:
    groups = []
    event_photos = case.event.get("photos") or []
    if event_photos:
        groups.append({"label": _("Reported"), "photos": service.photo_holdings(event_photos)})
    for entry in case.state.timeline:
        photos = case.actions.get(entry.action_id, {}).get("photos") or []
        if photos:
            groups.append({"label": ACTION_LABELS.get(entry.action, entry.action),
                           "photos": service.photo_holdings(photos)})
    return groups


def _render_case(case: service.Case, reference: Reference, now_ms: int,
                 failed: tuple[str, FlaskForm] | None = None, status: int = 200):
    devices = device_names(case.devices.values())
    nearby = service.nearby_cases(current_user, case, now_ms, reference)
    names = names_of_users([case.event.get("reporter"), *(e.actor for e in case.state.timeline),
                                    *(c.event.get("reporter") for c, _m in nearby)])
    category = reference.category(case.category)
    photos = _photo_groups(case)
    total = sum(len(g["photos"]) for g in photos)
    held = sum(h for g in photos for _sha, h in g["photos"])
    location = case.event.get("location")
    map_data = None
    if isinstance(location, dict):
        map_data = {
            "lat": location["lat"], "lon": location["lon"], "radius": category.get("duplicate_radius_m") or 0,
            "tiles": current_app.config["GRIDPATROL_TILE_URL"],
            "attribution": current_app.config["GRIDPATROL_TILE_ATTRIBUTION"],
            "nearby": [{"lat": c.event["location"]["lat"], "lon": c.event["location"]["lon"],
                        "label": c.event.get("description", "")[:60],
                        "href": url_for(".case", event_id=c.id)} for c, _m in nearby],
        }
    duplicate_form = DuplicateForm(formdata=None) if "mark_duplicate" in service.available_actions(
        current_user, case) else None
    return render_template(
        "pages/case.html", case=case, state=case.state, reference=reference, category=category,
        grid=reference.grid(case.grid), names=names, timeline=_timeline(case, devices, names, reference),
        forms=_forms_for(case, reference, now_ms, failed), nearby=nearby, photos=photos, photos_total=total,
        photos_held=held, map_data=map_data, duplicate_form=duplicate_form,
    ), status


@bp.get("/cases/<event_id>")
@page_required("cases")
def case(event_id: str):
    """One case: details, actions, photos, map, nearby cases, timeline."""
    reference, now_ms = load_reference(), _now_ms()
    return _render_case(_case_or_404(event_id, reference, now_ms), reference, now_ms)


@bp.get("/cases/<event_id>/sheet")
@page_required("cases")
def sheet(event_id: str):
    """The case sheet for the paper file: the facts, the photos and the timeline, laid out to print."""
    reference, now_ms = load_reference(), _now_ms()
    case = _case_or_404(event_id, reference, now_ms)
    devices = device_names(case.devices.values())
    names = names_of_users([case.event.get("reporter"), *(e.actor for e in case.state.timeline)])
    return render_template("pages/case_sheet.html", case=case, state=case.state, reference=reference,
                           category=reference.category(case.category), grid=reference.grid(case.grid), names=names,
                           timeline=_timeline(case, devices, names, reference), photos=_photo_groups(case),
                           printed=local_time(now_ms))


@bp.post("/cases/<event_id>/<action>")
@page_required("cases")
def act(event_id: str, action: str):
    """Take one action on a case: a server-stamped case_action applied as the logged-in user."""
    if action not in ACTION_FORMS:
        abort(404)
    if not service.may_press(current_user, action):
        abort(403)
    reference, now_ms = load_reference(), _now_ms()
    case = _case_or_404(event_id, reference, now_ms)
    form = ACTION_FORMS[action]()
    if isinstance(form, DispatchForm):
        _unit_choices(form, reference)
    if not form.validate_on_submit():
        flash(_("Please correct the form: %(action)s.", action=ACTION_LABELS[action]), "error")
        return _render_case(case, reference, now_ms, failed=(action, form), status=400)
    note = form.note.data.strip() if form.note.data else None
    try:
        if action == "verify":
            result = service.record_verification(current_user, case, form.verdict.data == "pass", note)
        else:
            deadline = utc_instant(form.deadline.data) if hasattr(form, "deadline") else None
            result = service.record_action(
                current_user, case, action, note=note, deadline=deadline,
                unit=form.unit.data if isinstance(form, DispatchForm) else None,
                duplicate_of=form.duplicate_of.data if isinstance(form, DuplicateForm) else None,
                photos=form.photo_data if isinstance(form, RectifyForm) else ())
    except service.DeadlineNotAhead:
        flash(_("The deadline must be in the future.") if action != "request_extension"
              else _("The deadline asked for must be later than the one in force."), "error")
        return _render_case(case, reference, now_ms, failed=(action, form), status=400)
    except service.MissingEvidence:
        flash(_("Please correct the form: %(action)s.", action=ACTION_LABELS[action]), "error")
        return _render_case(case, reference, now_ms, failed=(action, form), status=400)
    except service.ActionDoesNotApply:
        flash(_("This action no longer applies: the case is now “%(status)s”. Nothing was recorded.",
                status=STATUS_LABELS[case.state.status]), "error")
        return redirect(url_for(".case", event_id=case.id), 303)
    if result.status == "applied":
        flash(_("Recorded: %(action)s.", action=ACTION_LABELS[action]), "success")
        if action == "send_back":  # the case is no longer the unit's to see
            return redirect(url_for(".queue"), 303)
    else:
        flash(_("Not recorded: %(reason)s", reason=result.reason or result.status), "error")
    return redirect(url_for(".case", event_id=case.id), 303)


@bp.get("/cases/<event_id>/photos/<sha>")
@page_required("cases")
def photo(event_id: str, sha: str):
    """A photo of a case the user may see, full size or ``?size=thumb``; 404 until the server holds it."""
    reference, now_ms = load_reference(), _now_ms()
    case = _case_or_404(event_id, reference, now_ms)
    if not is_sha256(sha) or sha not in service.photos_of(case):
        abort(404)
    response = service.photo_response(sha, thumb=request.args.get("size") == "thumb")
    if response is None:
        abort(404)
    return response


def queue_url(args: dict[str, str], **changes: Any) -> str:
    """The queue's URL with the current filters and some changed (an empty value drops a filter)."""
    merged = {**args, **{k: v for k, v in changes.items()}}
    return url_for(".queue", **{k: v for k, v in merged.items() if v not in (None, "")})


def _unit_name() -> str:
    if not current_user.is_authenticated or not current_user.unit:
        return ""
    return name_of(load_reference().units.get(current_user.unit), current_user.unit)


def _rectify_body_limit() -> int | None:
    """A rectification's photos have their own body limit (the app's is a push's), read by the CSRF check."""
    if request.endpoint == "cases.act" and (request.view_args or {}).get("action") == "rectify":
        return MAX_RECTIFY_PHOTOS * max_photo_bytes() + 1024 * 1024
    return None


protect(bp, _rectify_body_limit)


@bp.context_processor
def _inject():
    return {"queue_url": queue_url, "unit_name": _unit_name()}


def init_app(app) -> None:
    """Register the case pages (after `server.web.init_app`, whose log-in, CSRF and languages they use)."""
    app.register_blueprint(bp)
    app.cli.add_command(cli.cases_cli)

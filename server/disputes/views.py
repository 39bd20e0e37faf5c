"""The dispute pages (blueprint ``disputes``): the list, a dispute with its steps, the rates, the export.

Views read the request, call `server.disputes.service` and render. Who may open them is
shared/roles.py's ``PAGES["disputes"]``: supervisors and admins; anonymous visitors are sent to
log in, workers (tablet) and units get 403. Every form is CSRF-checked (`protect`), and every
answer carries ``Cache-Control: no-store``: the pages hold parties' names and phones.

Privacy: lists and exports show the parties masked; the dispute page shows them in full to the
roles that mediate and writes an audit line for each such view (who saw whose parties, never the
names themselves).
"""

from __future__ import annotations

import re

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, \
    stream_with_context, url_for
from flask_babel import gettext as _
from flask_login import current_user

from shared.dispute import MEDIATION_GOAL, SUCCESS_GOAL, available_steps
from shared.hlc import format_ms
from shared.records import CODE_PATTERN, is_uuid

from .. import audit
from ..clock import server_clock
from ..exports import XLSX, stream_csv, xlsx_bytes
from ..reference import device_names, load_reference, names_of_users
from ..web.auth import page_required, protect
from ..web.labels import name_of
from ..web.times import utc_instant
from . import export, service, stats
from .forms import STEP_FORMS, OutcomeForm, ReportForm, SessionForm, mediator_names
from .labels import OUTCOME_LABELS, REASON_LABELS, STATUS_LABELS, STEP_LABELS

bp = Blueprint("disputes", __name__)
protect(bp, no_store=True)  # names and phones stay out of every cache

_CODE = re.compile(CODE_PATTERN)


def _now_ms() -> int:
    return server_clock().physical_ms()


def _page_number() -> int:
    """The page asked for: plain ASCII digits, at most six of them; anything else is the first page."""
    text = request.args.get("page", "1")
    return int(text) if text.isascii() and text.isdigit() and len(text) < 7 else 1


def _filters() -> service.DisputeFilters:
    """The list's filters from the query; a malformed one is a 400, not a silent "any"."""
    args = request.args
    status = args.get("status") or "open"
    if status not in service.STATUS_FILTERS:
        abort(400, description="status must be one of " + ", ".join(service.STATUS_FILTERS))
    kind = args.get("kind") or None
    if kind is not None and not _CODE.fullmatch(kind):
        abort(400, description="kind must be a dispute kind's code")
    if args.get("overdue") not in (None, "", "1"):
        abort(400, description="overdue must be 1 or absent")
    return service.DisputeFilters(status=status, kind=kind, grid=(args.get("grid") or None),
                                  community=args.get("community") or None, street=args.get("street") or None,
                                  overdue=args.get("overdue") == "1")


def _args() -> dict[str, str]:
    return {k: v for k, v in request.args.items() if k != "page"}


def list_url(args: dict[str, str], **changes) -> str:
    """The list's URL with the current filters and some changed (an empty value drops one)."""
    merged = {**args, **changes}
    return url_for("disputes.disputes", **{k: v for k, v in merged.items() if v not in (None, "")})


def _dispute_or_404(dispute_id: str) -> service.Dispute:
    if not is_uuid(dispute_id):
        abort(404)
    found = service.get_dispute(current_user, dispute_id, _now_ms())
    if found is None:
        abort(404)
    return found


# --- the pages -----------------------------------------------------------------------------------

@bp.get("/disputes")
@page_required("disputes")
def disputes():
    """Disputes by street, community and grid: status, kind, overdue, parties masked; overdue first."""
    reference, filters = load_reference(), _filters()
    result = service.list_disputes(filters, reference, _now_ms(), page=_page_number(),
                                   per_page=current_app.config["GRIDPATROL_PAGE_SIZE"])
    return render_template("pages/disputes.html", result=result, filters=filters, reference=reference,
                           kinds=service.load_kinds(), args=_args(), report_form=_report_form(reference),
                           **reference.places())


@bp.post("/disputes")
@page_required("disputes")
def report():
    """A dispute reported at the office, in the logged-in user's name."""
    reference = load_reference()
    form = _report_form(reference, formdata=request.form)
    if not form.validate_on_submit():
        flash(_("Please correct the form: %(action)s.", action=_("Report a dispute")), "error")
        result = service.list_disputes(service.DisputeFilters(), reference, _now_ms(),
                                       per_page=current_app.config["GRIDPATROL_PAGE_SIZE"])
        return render_template("pages/disputes.html", result=result, filters=service.DisputeFilters(),
                               reference=reference, kinds=service.load_kinds(), args={}, report_form=form,
                               **reference.places()), 400
    record_id, result = service.report_dispute(
        current_user, grid=form.grid.data, dispute_kind=form.dispute_kind.data, parties=form.parties(),
        description=form.description.data.strip(), place=(form.place.data or "").strip() or None,
        reported_at=format_ms(_now_ms()))
    if result.status != "applied":
        flash(_("Not recorded: %(reason)s", reason=result.reason or result.status), "error")
        return redirect(url_for(".disputes"), 303)
    flash(_("Recorded: %(action)s.", action=_("Report a dispute")), "success")
    return redirect(url_for(".dispute", dispute_id=record_id), 303)


def _report_form(reference, formdata=None) -> ReportForm:
    form = ReportForm(formdata=formdata)
    form.grid.choices = [(code, name_of(grid, code)) for code, grid in sorted(reference.grids.items())]
    form.dispute_kind.choices = [(code, name_of(kind, code)) for code, kind in sorted(service.load_kinds().items())]
    return form


@bp.get("/disputes/<dispute_id>")
@page_required("disputes")
def dispute(dispute_id: str):
    """One dispute: the parties (in full for the roles that mediate; audited), its timeline and the step forms."""
    found = _dispute_or_404(dispute_id)
    return _render(found)


def _render(found: service.Dispute, failed: tuple[str, object] | None = None, status: int = 200):
    reference = load_reference()
    if found.parties:
        audit.record("view_parties", "dispute", found.id, after={"parties": len(found.parties)},
                     note=f"{len(found.parties)} parties shown in full", commit=True)
    offered = available_steps(found.state)
    forms = {step: STEP_FORMS[step](formdata=None) for step in offered}
    if failed is not None and failed[0] in forms:
        forms[failed[0]] = failed[1]
    people = [found.values.get("reporter"), *(v.get("actor") for v in found.steps.values())]
    return render_template("pages/dispute.html", dispute=found, state=found.state, reference=reference,
                           grid=reference.grid(found.grid), kind=service.load_kinds().get(found.kind),
                           names=names_of_users(people), devices=device_names(found.devices.values()),
                           forms=forms), status


@bp.post("/disputes/<dispute_id>/<step>")
@page_required("disputes")
def act(dispute_id: str, step: str):
    """Record one mediation step: a server-stamped dispute_action applied as the logged-in user."""
    if step not in STEP_FORMS:
        abort(404)
    found = _dispute_or_404(dispute_id)
    form = STEP_FORMS[step]()
    if not form.validate_on_submit():
        flash(_("Please correct the form: %(action)s.", action=STEP_LABELS[step]), "error")
        return _render(found, failed=(step, form), status=400)
    at = getattr(form, "at", None)
    try:
        result = service.record_step(
            current_user, found, step, note=(form.note.data or "").strip() or None,
            at=utc_instant(at.data) if at is not None and at.data else None,
            mediators=mediator_names(form.mediators.data) if isinstance(form, SessionForm) else None,
            outcome=form.outcome.data if isinstance(form, OutcomeForm) else None,
            referred_to=(form.referred_to.data or "").strip() or None if isinstance(form, OutcomeForm) else None)
    except service.StepDoesNotApply:
        flash(_("This step no longer applies: the dispute is now “%(status)s”. Nothing was recorded.",
                status=STATUS_LABELS[found.state.status]), "error")
        return redirect(url_for(".dispute", dispute_id=found.id), 303)
    if result.status == "applied":
        flash(_("Recorded: %(action)s.", action=STEP_LABELS[step]), "success")
    else:
        flash(_("Not recorded: %(reason)s", reason=result.reason or result.status), "error")
    return redirect(url_for(".dispute", dispute_id=found.id), 303)


@bp.get("/disputes/export.<fmt>")
@page_required("disputes")
def export_disputes(fmt: str):
    """The list, with its filters, as CSV or XLSX, parties masked; written to the audit log."""
    if fmt not in ("csv", "xlsx"):
        abort(404)
    reference, filters = load_reference(), _filters()
    rows = service.list_disputes(filters, reference, _now_ms(), per_page=None).disputes
    audit.record("export", "disputes", f"{fmt} {request.query_string.decode(errors='replace')}".strip(),
                 note=f"{len(rows)} disputes", commit=True)
    table = export.dispute_rows(rows, reference, service.load_kinds(), names_of_users(
        d.values.get("reporter") for d in rows))
    if fmt == "xlsx":
        return Response(xlsx_bytes(table, "disputes"), mimetype=XLSX,
                        headers={"Content-Disposition": "attachment; filename=disputes.xlsx"})
    return Response(stream_with_context(stream_csv(table)), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=disputes.csv"})


@bp.get("/disputes/rates")
@page_required("disputes")
def rates():
    """The mediation and success rates per street, community and grid, with their definitions and goals."""
    reference = load_reference()
    tables = stats.rate_tables(reference, _now_ms())
    return render_template("pages/dispute_rates.html", tables=tables, reference=reference)


@bp.context_processor
def _inject():
    return {"DISPUTE_STATUS_LABELS": STATUS_LABELS, "STEP_LABELS": STEP_LABELS, "OUTCOME_LABELS": OUTCOME_LABELS,
            "DISPUTE_REASON_LABELS": REASON_LABELS, "dispute_list_url": list_url}


def rate_globals() -> dict:
    """What the dispute-rate tables need in any template (the statistics page includes one)."""
    return {"MEDIATION_GOAL": MEDIATION_GOAL, "SUCCESS_GOAL": SUCCESS_GOAL}


def init_app(app) -> None:
    """Register the dispute pages (after `server.web.init_app`)."""
    from .cli import disputes_cli

    app.register_blueprint(bp)
    app.context_processor(rate_globals)
    app.cli.add_command(disputes_cli)

"""The supervisor and unit pages (blueprint ``cases``): log-in, the queue, the case page, the actions.

Views load a form, call `server.cases_service` and render. Every route checks
the role: anonymous visitors are sent to the log-in page; a grid worker gets
403 on every page (workers use the tablet); a unit user sees only the cases
dispatched to their unit, and any other case is 404 to them, as if it did not
exist. Every POST carries a CSRF token (Flask-WTF), checked for the whole
blueprint before any view runs; the sync API under /api/v1 authenticates with
bearer tokens, not cookies, and is not CSRF-checked.

Times are stored in UTC and shown in the district's time, a fixed offset
(``GRIDPATROL_UTC_OFFSET``, ``+08:00`` by default: China keeps no daylight
saving, so no time-zone database is needed).
"""

from __future__ import annotations

import io
import os
import re
from datetime import datetime, timedelta, timezone
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import (Blueprint, abort, current_app, flash, redirect, render_template, request,
                   send_from_directory, session, url_for)
from flask_babel import get_locale, gettext as _, lazy_gettext as _l
from flask_login import LoginManager, current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError, CSRFProtect
from flask_wtf.file import MultipleFileField
from wtforms import DateTimeLocalField, HiddenField, PasswordField, RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Optional, Regexp, ValidationError

from shared.case import REASONS
from shared.hlc import format_ms, parse_ms

from server.cases import service
from server.web import i18n
from server.accounts import authenticate
from server.clock import server_clock
from server.db import db
from server.models import User
from server.photos.views import NotAnImage, TooManyPixels, check_image, max_photo_bytes

bp = Blueprint("cases", __name__)
csrf = CSRFProtect()
login_manager = LoginManager()
login_manager.login_view = "cases.login"
login_manager.login_message = _l("Please log in to see this page.")
login_manager.login_message_category = "info"

try:  # WTForms 3.3 deprecates (value, label) tuples for SelectChoice; older versions have only tuples
    from wtforms import SelectChoice as _SelectChoice
except ImportError:  # pragma: no cover - depends on the installed WTForms
    _SelectChoice = None


def choice(value: str, label: Any):
    """One option of a select or radio field, in the form the installed WTForms wants."""
    return _SelectChoice(value, label) if _SelectChoice is not None else (value, label)


MAX_RECTIFY_PHOTOS = 10  # photos one rectification may carry; bounds the request body with the photo limit
_UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z"
_OFFSET = re.compile(r"^([+-])(\d{2}):(\d{2})\Z")

# --- labels: every domain word the pages show, translated ----------------------------------------

STATUS_LABELS = {
    "open": _l("Open"), "reported": _l("Reported"), "dispatched": _l("Dispatched"),
    "rectified": _l("Rectified"), "returned": _l("Returned for rectification"), "closed": _l("Closed"),
    "all": _l("All"),
}
ACTION_LABELS = {
    "report": _l("Reported"), "dispatch": _l("Dispatch"), "rectify": _l("Rectify"),
    "verify_pass": _l("Verification passed"), "verify_fail": _l("Verification failed"), "close": _l("Close"),
    "return": _l("Return for rectification"), "extend": _l("Extend deadline"), "comment": _l("Comment"),
    "handle_on_spot": _l("Handled on the spot"), "mark_duplicate": _l("Marked as duplicate"),
    "supervise": _l("Put under supervision (督办)"), "verify": _l("Verify in the reporter's place"),
}
RESOLUTION_LABELS = {
    "verified": _l("verified by the reporter"), "handled_on_spot": _l("handled on the spot"),
    "closed": _l("closed by a supervisor"), "duplicate": _l("duplicate"),
}
ROLE_LABELS = {"worker": _l("Grid worker"), "supervisor": _l("Supervisor"), "unit": _l("Rectifying unit"),
               "admin": _l("Administrator")}
REASON_LABELS = {
    "superseded: case not dispatched yet": _l("superseded: the case was not dispatched yet"),
    "superseded: case not rectified yet": _l("superseded: the case was not rectified yet"),
    "superseded: case already rectified, awaiting verification":
        _l("superseded: the case was already rectified and awaits verification"),
    "superseded: case returned, not rectified again yet":
        _l("superseded: the case was returned and not rectified again yet"),
    "superseded: case already closed": _l("superseded: the case was already closed"),
    "superseded: case already dispatched": _l("superseded: the case was already dispatched"),
    "refused: unknown action": _l("refused: unknown action"),
    "refused: malformed timestamp": _l("refused: malformed timestamp"),
    "refused: only the reporter, or a supervisor standing in, verifies":
        _l("refused: only the reporter, or a supervisor standing in, verifies"),
    "refused: dispatch names no unit": _l("refused: the dispatch names no unit"),
    "refused: extend gives no deadline": _l("refused: the extension gives no deadline"),
    "refused: not a micro event": _l("refused: not a micro event"),
    "refused: only the reporter handles a micro event on the spot":
        _l("refused: only the reporter handles a micro event on the spot"),
}
assert set(REASON_LABELS) == set(REASONS), "every reason the fold gives needs a label"


# --- forms ---------------------------------------------------------------------------------------

class LoginForm(FlaskForm):
    username = StringField(_l("User name"), validators=[DataRequired(), Length(max=80)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])


class LanguageForm(FlaskForm):
    lang = HiddenField(validators=[InputRequired()])
    next = HiddenField()


class EmptyForm(FlaskForm):
    """A form with nothing but its CSRF token (log-out)."""


class NoteForm(FlaskForm):
    """Close, return, supervise, rectify: an optional note."""

    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=4000)])


class RectifyForm(NoteForm):
    """Rectify: an optional note and optional photos of the work done."""

    photos = MultipleFileField(_l("Photos"))

    def validate_photos(self, field) -> None:
        """Each file a JPEG, PNG or WebP image within GRIDPATROL_MAX_PHOTO_BYTES; their bytes go to photo_data.

        Every file is checked before any is stored, so a bad one means nothing is written.
        """
        self.photo_data: list[bytes] = []
        files = [f for f in field.data or [] if f and f.filename]  # a browser sends an empty part for none
        if len(files) > MAX_RECTIFY_PHOTOS:
            raise ValidationError(_("At most %(count)s photos.", count=MAX_RECTIFY_PHOTOS))
        limit = max_photo_bytes()
        for upload in files:
            data = upload.read(limit + 1)
            if len(data) > limit:
                raise ValidationError(_("“%(name)s” is larger than %(limit)s bytes.", name=upload.filename,
                                        limit=limit))
            try:
                check_image(io.BytesIO(data))
            except (NotAnImage, TooManyPixels):
                raise ValidationError(_("“%(name)s” is not a JPEG, PNG or WebP photo.",
                                        name=upload.filename)) from None
            self.photo_data.append(data)


class CommentForm(FlaskForm):
    note = TextAreaField(_l("Comment"), validators=[DataRequired(), Length(max=4000)])


class DispatchForm(FlaskForm):
    unit = SelectField(_l("Unit"), validators=[InputRequired()])
    deadline = DateTimeLocalField(_l("Deadline"), format=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
                                  validators=[InputRequired()])
    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=4000)])


class ExtendForm(FlaskForm):
    deadline = DateTimeLocalField(_l("New deadline"), format=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
                                  validators=[InputRequired()])
    note = TextAreaField(_l("Reason"), validators=[Optional(), Length(max=4000)])


class VerifyForm(FlaskForm):
    verdict = RadioField(_l("Result"), choices=[choice("pass", _l("Pass")), choice("fail", _l("Fail"))],
                         validators=[InputRequired()])
    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=4000)])


class DuplicateForm(FlaskForm):
    duplicate_of = HiddenField(validators=[InputRequired(), Regexp(_UUID)])
    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=4000)])


ACTION_FORMS: dict[str, type[FlaskForm]] = {
    "dispatch": DispatchForm, "close": NoteForm, "return": NoteForm, "extend": ExtendForm,
    "comment": CommentForm, "supervise": NoteForm, "verify": VerifyForm, "mark_duplicate": DuplicateForm,
    "rectify": RectifyForm,
}


# --- time ----------------------------------------------------------------------------------------

def district_zone() -> timezone:
    """The fixed UTC offset in which the pages show and read times."""
    raw = current_app.config["GRIDPATROL_UTC_OFFSET"]
    match = _OFFSET.match(raw)
    if not match:
        raise RuntimeError(f"GRIDPATROL_UTC_OFFSET must look like +08:00, not {raw!r}")
    sign, hours, minutes = match.groups()
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    return timezone(-delta if sign == "-" else delta)


def local_time(value: Any, seconds: bool = False) -> str:
    """A UTC instant (ISO 8601 text or Unix ms) as district time, to the minute; '' when there is none."""
    if value in (None, ""):
        return ""
    try:
        ms = value if isinstance(value, int) else parse_ms(value)
    except (TypeError, ValueError):
        return str(value)
    shown = datetime.fromtimestamp(ms / 1000, district_zone())
    return shown.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def local_input(iso: str | None) -> datetime | None:
    """A UTC instant as a naive district-time datetime, for a datetime-local field."""
    if not iso:
        return None
    return datetime.fromtimestamp(parse_ms(iso) / 1000, district_zone()).replace(tzinfo=None)


def utc_instant(local: datetime) -> str:
    """A naive district-time datetime from a form as an ISO 8601 UTC instant."""
    return format_ms(int(local.replace(tzinfo=district_zone()).timestamp() * 1000))


# --- helpers -------------------------------------------------------------------------------------

def name_of(record: dict | None, code: str | None = None) -> str:
    """A reference record's name in the page's language (English falls back to Chinese, then the code)."""
    if not record:
        return code or ""
    if str(get_locale()) == "en" and record.get("name_en"):
        return record["name_en"]
    return record.get("name") or record.get("code") or code or ""


def page_roles(view):
    """Only supervisors, admins and unit users; anonymous visitors are sent to log in, workers get 403."""

    @wraps(view)
    @login_required
    def wrapper(*args, **kwargs):
        if current_user.role not in service.PAGE_ROLES:
            abort(403)
        return view(*args, **kwargs)

    return wrapper


def _safe_next(target: str | None) -> str | None:
    """A redirect target on this site only (no scheme, no host, not //host)."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def _now_ms() -> int:
    return server_clock().physical_ms()


def _case_or_404(event_id: str, reference: service.Reference, now_ms: int) -> service.Case:
    if not re.match(_UUID, event_id):
        abort(404)
    try:
        return service.get_case(current_user, event_id, now_ms, reference)
    except service.CaseNotFound:
        abort(404)


# --- log-in, log-out, language --------------------------------------------------------------------

@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    user = db.session.get(User, user_id)
    return user if user is not None and user.active else None


@bp.route("/")
def index():
    """The queue for those logged in, the log-in page for everyone else."""
    if current_user.is_authenticated:
        return redirect(url_for(".queue"))
    return redirect(url_for(".login"))


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Log in with user name and password; a grid worker may log in but the pages answer 403."""
    form = LoginForm()
    if form.validate_on_submit():
        user = authenticate(form.username.data, form.password.data)
        if user is not None:
            login_user(user)
            session.permanent = False
            return redirect(_safe_next(request.args.get("next")) or url_for(".queue"), 303)
        flash(_("Wrong user name or password."), "error")
        return render_template("pages/login.html", form=form), 401
    return render_template("pages/login.html", form=form), 400 if request.method == "POST" else 200


@bp.post("/logout")
def logout():
    """End the page session."""
    logout_user()
    return redirect(url_for(".login"), 303)


@bp.post("/language")
def language():
    """Switch the pages' language; kept in the session."""
    form = LanguageForm()
    if form.validate_on_submit() and form.lang.data in i18n.LANGUAGES:
        session["lang"] = form.lang.data
    return redirect(_safe_next(form.next.data) or url_for(".index"), 303)


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
    )


@bp.get("/cases")
@page_roles
def queue():
    """The work queue: filters, urgent first then by deadline, paged, with counts per status."""
    reference = service.load_reference()
    filters = _filters_from(request.args, current_user)
    try:
        page = int(request.args.get("page", "1"))
    except ValueError:
        page = 1
    result = service.list_cases(current_user, filters, page, current_app.config["GRIDPATROL_PAGE_SIZE"],
                                _now_ms(), reference)
    names = service.names_of_users(c.event.get("reporter") for c in result.cases)
    grids = reference.grids.values()
    args = {k: v for k, v in request.args.items() if k != "page"}
    return render_template(
        "pages/queue.html", result=result, filters=filters, reference=reference, names=names, args=args,
        communities=sorted({g["community"] for g in grids}), streets=sorted({g["street"] for g in grids}))


# --- the case page -------------------------------------------------------------------------------

def _source(hlc: str, devices: dict[str, str]) -> dict[str, str]:
    node = service.node_of(hlc) or ""
    if node in devices:
        return {"kind": "device", "label": _("Tablet “%(name)s”", name=devices[node]), "node": node}
    return {"kind": "server", "label": _("Web page / server"), "node": node}


def _timeline(case: service.Case, devices: dict[str, str], names: dict[str, str],
              reference: service.Reference) -> list[dict[str, Any]]:
    event = case.event
    rows = [{"action": "report", "label": ACTION_LABELS["report"],
             "when": local_time(event.get("reported_at"), seconds=True),
             "who": names.get(event.get("reporter"), event.get("reporter") or ""),
             "source": _source(case.created_hlc, devices), "applied": True, "reason": None, "details": [],
             "status": "reported"}]
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
            "source": _source(entry.hlc, devices), "applied": entry.applied,
            "reason": REASON_LABELS.get(entry.reason, entry.reason) if entry.reason else None,
            "stand_in": entry.stand_in, "details": details, "status": entry.status,
        })
    return rows


def _forms_for(case: service.Case, reference: service.Reference, now_ms: int,
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
        elif action == "extend":
            form.deadline.data = local_input(case.state.deadline)
        forms[action] = form
    return forms


def _unit_choices(form: DispatchForm, reference: service.Reference) -> None:
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


def _render_case(case: service.Case, reference: service.Reference, now_ms: int,
                 failed: tuple[str, FlaskForm] | None = None, status: int = 200):
    devices = service.devices_by_node(service.node_of(h) for h in (case.created_hlc,
                                                                   *(e.hlc for e in case.state.timeline)))
    nearby = service.nearby_cases(current_user, case, now_ms, reference)
    names = service.names_of_users([case.event.get("reporter"), *(e.actor for e in case.state.timeline),
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
@page_roles
def case(event_id: str):
    """One case: details, actions, photos, map, nearby cases, timeline."""
    reference, now_ms = service.load_reference(), _now_ms()
    return _render_case(_case_or_404(event_id, reference, now_ms), reference, now_ms)


@bp.post("/cases/<event_id>/<action>")
@page_roles
def act(event_id: str, action: str):
    """Take one action on a case: a server-stamped case_action applied as the logged-in user."""
    if action not in ACTION_FORMS:
        abort(404)
    if action not in service.PAGE_ACTIONS[current_user.role]:
        abort(403)
    reference, now_ms = service.load_reference(), _now_ms()
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
            if deadline is not None and parse_ms(deadline) <= now_ms:
                flash(_("The deadline must be in the future."), "error")
                return _render_case(case, reference, now_ms, failed=(action, form), status=400)
            result = service.record_action(
                current_user, case, action, note=note, deadline=deadline,
                unit=form.unit.data if isinstance(form, DispatchForm) else None,
                duplicate_of=form.duplicate_of.data if isinstance(form, DuplicateForm) else None,
                photos=form.photo_data if isinstance(form, RectifyForm) else ())
    except service.ActionDoesNotApply:
        flash(_("This action no longer applies: the case is now “%(status)s”. Nothing was recorded.",
                status=STATUS_LABELS[case.state.status]), "error")
        return redirect(url_for(".case", event_id=case.id), 303)
    if result.status == "applied":
        flash(_("Recorded: %(action)s.", action=ACTION_LABELS[action]), "success")
    else:
        flash(_("Not recorded: %(reason)s", reason=result.reason or result.status), "error")
    return redirect(url_for(".case", event_id=case.id), 303)


# --- Leaflet, from the xstatic-leaflet package ---------------------------------------------------

@bp.get("/cases/<event_id>/photos/<sha>")
@page_roles
def photo(event_id: str, sha: str):
    """A photo of a case the user may see, full size or ``?size=thumb``; 404 until the server holds it."""
    reference, now_ms = service.load_reference(), _now_ms()
    case = _case_or_404(event_id, reference, now_ms)
    if sha not in service.photos_of(case):
        abort(404)
    response = service.photo_response(sha, thumb=request.args.get("size") == "thumb")
    if response is None:
        abort(404)
    return response


@bp.get("/vendor/leaflet/<path:filename>")
def leaflet(filename: str):
    """Leaflet's JS, CSS and marker images, served from the installed package (no CDN)."""
    import xstatic.pkg.leaflet as leaflet_package

    return send_from_directory(leaflet_package.BASE_DIR, filename, max_age=86400)


# --- errors and set-up -----------------------------------------------------------------------------

@bp.errorhandler(403)
def _forbidden(exc):
    return render_template("pages/error.html", code=403,
                           message=_("Your role may not use this page. Grid workers use the tablet app.")), 403


@bp.errorhandler(404)
def _not_found(exc):
    return render_template("pages/error.html", code=404, message=_("There is no such page or case.")), 404


@bp.errorhandler(CSRFError)
def _csrf_failed(exc):
    return render_template("pages/error.html", code=400,
                           message=_("The form has expired. Go back, reload the page and try again.")), 400


def queue_url(args: dict[str, str], **changes: Any) -> str:
    """The queue's URL with the current filters and some changed (an empty value drops a filter)."""
    merged = {**args, **{k: v for k, v in changes.items()}}
    return url_for(".queue", **{k: v for k, v in merged.items() if v not in (None, "")})


def _unit_name() -> str:
    if not current_user.is_authenticated or not current_user.unit:
        return ""
    return name_of(service.load_reference().units.get(current_user.unit), current_user.unit)


def template_globals() -> dict[str, Any]:
    """What every page's template may use: labels, the user's unit, the language and log-out forms.

    The house pages (server/houses.py) add theirs to these.
    """
    return {
        "queue_url": queue_url, "unit_name": _unit_name(),
        "STATUS_LABELS": STATUS_LABELS, "ACTION_LABELS": ACTION_LABELS, "RESOLUTION_LABELS": RESOLUTION_LABELS,
        "ROLE_LABELS": ROLE_LABELS, "LANGUAGES": i18n.LANGUAGES, "name_of": name_of,
        "language_form": LanguageForm(formdata=None), "logout_form": EmptyForm(formdata=None),
        "current_language": str(get_locale()),
    }


def init_app(app) -> None:
    """Register the pages with log-in, CSRF and languages."""
    app.config.setdefault("GRIDPATROL_TILE_URL", os.environ.get("GRIDPATROL_TILE_URL", ""))
    app.config.setdefault("GRIDPATROL_TILE_ATTRIBUTION", os.environ.get("GRIDPATROL_TILE_ATTRIBUTION", ""))
    app.config.setdefault("GRIDPATROL_UTC_OFFSET", os.environ.get("GRIDPATROL_UTC_OFFSET", "+08:00"))
    app.config.setdefault("GRIDPATROL_PAGE_SIZE", int(os.environ.get("GRIDPATROL_PAGE_SIZE", "20")))
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    # CSRF is checked for this blueprint only (below), not for the token-authenticated API.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # a page left open all day still posts
    csrf.init_app(app)
    login_manager.init_app(app)
    i18n.init_app(app)
    app.jinja_env.filters["local_time"] = local_time
    app.register_blueprint(bp)


@bp.before_request
def _check_csrf():
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        if request.endpoint == "cases.act" and (request.view_args or {}).get("action") == "rectify":
            # The app's body limit is a push's; a rectification's photos have their own (read by protect).
            request.max_content_length = MAX_RECTIFY_PHOTOS * max_photo_bytes() + 1024 * 1024
        csrf.protect()


@bp.context_processor
def _inject():
    return template_globals()

"""The admin area under /admin, built with Flask-Admin: tables where a table fits, plain pages where a task does not.

* tables (Flask-Admin ``ModelView(Model, db)``): the audit log (read only, filters, CSV export),
  users (create, edit, grids with their history, deactivate, reset a password), devices (revoke);
* plain pages (``BaseView``): categories, units, grids (a district → street → community tree,
  boundary upload), checklists (versioned): reference records written through the server's write
  path (server/admin/service.py), so they sync.

Every view is for admins only (shared/roles.py ``PAGES["admin"]``): anonymous visitors are sent to
log in, other roles get 403. Every view's blueprint is guarded by `server.web.protect`, so every
POST is CSRF-checked before it runs, and its answers are not cached. No view deletes: users are
deactivated, reference records get a tombstone, the audit log has no write route at all.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from flask import abort, current_app, flash, redirect, request
from flask_admin import Admin, AdminIndexView, BaseView, expose
from flask_admin.contrib.sqla import ModelView
from flask_admin.menu import MenuLink
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from sqlalchemy import func, select

from shared.roles import may_use

from .. import accounts, audit
from ..db import db
from ..exports import cell
from ..models import AuditEntry, CaseRow, Device, User
from ..reference import load_reference
from ..web.auth import login_manager, protect
from ..web.labels import ROLE_LABELS
from ..web.times import local_time
from . import forms, service


class Guarded:
    """Admins only, CSRF on every POST, nothing cached: the rules every admin view shares."""

    def is_accessible(self) -> bool:
        return current_user.is_authenticated and may_use(current_user.role, "admin")

    def inaccessible_callback(self, name, **kwargs):
        if not current_user.is_authenticated:
            return login_manager.unauthorized()  # to the log-in page, and back here after
        abort(403)

    def create_blueprint(self, admin):
        blueprint = super().create_blueprint(admin)
        protect(blueprint, no_store=True)
        return blueprint


class Home(Guarded, AdminIndexView):
    """/admin: what the admin area holds."""

    @expose("/")
    def index(self):
        return self.render("admin/home.html")


def _when(view, context, model, name):
    value = getattr(model, name)
    return local_time(value) if value is not None else ""


def _json(view, context, model, name):
    value = getattr(model, name)
    if value in (None, {}, []):
        return ""
    if isinstance(value, dict):
        return Markup("<br>").join(escape(f"{k}: {v}") for k, v in value.items())
    return str(value)


class AuditView(Guarded, ModelView):
    """The audit log: read only, newest first, filtered, exported as CSV (the export is itself audited)."""

    can_create = can_edit = can_delete = False
    can_view_details = False
    can_export = True
    export_types = ["csv"]
    export_max_rows = 100_000
    page_size = 50
    column_list = ["at", "actor", "role", "address", "action", "kind", "target", "before", "after", "note"]
    column_default_sort = ("id", True)
    column_filters = ["at", "actor", "role", "address", "action", "kind", "target"]
    column_searchable_list = ["actor", "target", "note"]
    column_labels = {"at": _l("When"), "actor": _l("Who"), "role": _l("Role"), "address": _l("Address"),
                     "action": _l("Action"), "kind": _l("What"), "target": _l("Which"), "before": _l("Before"),
                     "after": _l("After"), "note": _l("Note")}
    column_formatters = {"at": _when, "before": _json, "after": _json}

    @expose("/export/<export_type>/")
    def export(self, export_type: str):
        audit.record("export", "audit_log", None, note=request.query_string.decode(errors="replace"), commit=True)
        return super().export(export_type)

    def get_export_value(self, model, name):
        value = getattr(model, name)
        if name == "at" and value is not None:
            return value.isoformat()
        return cell(value)


class UserView(Guarded, ModelView):
    """Users: create, edit (grids with their history), deactivate, reactivate, reset a password. Never delete."""

    can_delete = False
    can_view_details = False
    column_list = ["username", "name", "role", "unit", "grid_codes", "active", "created_at"]
    column_filters = ["role", "unit", "active"]
    column_searchable_list = ["username", "name"]
    column_default_sort = "username"
    column_labels = {"username": _l("User name"), "name": _l("Name"), "role": _l("Role"), "unit": _l("Unit"),
                     "grid_codes": _l("Grids"), "active": _l("Active"), "created_at": _l("Created")}
    column_formatters = {"role": lambda v, c, m, n: ROLE_LABELS.get(m.role, m.role),
                         "grid_codes": lambda v, c, m, n: ", ".join(m.grid_codes), "created_at": _when}
    edit_template = "admin/user_edit.html"

    def get_create_form(self):
        return forms.UserCreateForm

    def get_edit_form(self):
        return forms.UserEditForm

    def create_form(self, obj=None):
        return _choices(super().create_form(obj))

    def edit_form(self, obj=None):
        form = _choices(super().edit_form(obj))
        if request.method == "GET" and obj is not None:
            form.unit.data = obj.unit or ""
        return form

    def create_model(self, form):
        try:
            return service.create_user(form.username.data.strip(), form.password.data, name=form.name.data.strip(),
                                       role=form.role.data, unit=form.unit.data, grids=form.grid_codes.data or [],
                                       by=current_user)
        except service.AdminError as exc:
            flash(str(exc), "error")
            return False

    def update_model(self, form, model):
        try:
            service.edit_user(model, name=form.name.data.strip(), role=form.role.data, unit=form.unit.data,
                              grids=form.grid_codes.data or [], by=current_user)
        except service.AdminError as exc:
            db.session.rollback()
            flash(str(exc), "error")
            return False
        return True

    def render(self, template, **kwargs):
        if template == self.edit_template and request.args.get("id"):
            user = db.session.get(User, request.args["id"])
            kwargs.update(user=user, history=accounts.grid_history(user_id=user.id) if user else [],
                          button=forms.IdForm(formdata=None), password_form=forms.PasswordForm(formdata=None))
        return super().render(template, **kwargs)

    @expose("/deactivate/", methods=["POST"])
    def deactivate(self):
        user = _user_or_404()
        try:
            service.deactivate_user(user, current_user)
            flash(_("%(name)s was deactivated: they can no longer log in or sync.", name=user.username), "success")
        except service.AdminError as exc:
            flash(str(exc), "error")
        return redirect(self.get_url(".edit_view", id=user.id), 303)

    @expose("/reactivate/", methods=["POST"])
    def reactivate(self):
        user = _user_or_404()
        service.reactivate_user(user)
        flash(_("%(name)s may log in again.", name=user.username), "success")
        return redirect(self.get_url(".edit_view", id=user.id), 303)

    @expose("/password/", methods=["POST"])
    def password(self):
        form = forms.PasswordForm()
        user = _user_or_404()
        if form.validate_on_submit():
            try:
                service.reset_password(user, form.password.data)
                flash(_("New password set for %(name)s; their page sessions ended.", name=user.username), "success")
            except service.AdminError as exc:
                flash(str(exc), "error")
        return redirect(self.get_url(".edit_view", id=user.id), 303)


def _user_or_404() -> User:
    user = db.session.get(User, request.form.get("id") or request.args.get("id") or "")
    if user is None:
        abort(404)
    return user


def _choices(form):
    reference = load_reference()
    form.unit.choices = [("", "—")] + [(code, u.get("name") or code) for code, u in sorted(reference.units.items())]
    form.grid_codes.choices = [(code, f"{code} {g.get('name', '')}") for code, g in sorted(reference.grids.items())]
    return form


def _skew(view, context, model, name):
    return "" if model.clock_skew_ms is None else f"{model.clock_skew_ms / 1000:+.1f} s"


def _refusals(view, context, model, name):
    count = model.refused_count or 0
    if not count:
        return "0"
    return Markup('{} <span class="muted" title="{}">{}</span>').format(
        count, model.last_refusal or "", (model.last_refusal or "")[:60])


def _revoke_button(view, context, model, name):
    if model.revoked_at is not None:
        return Markup('<span class="muted">{}</span>').format(_("revoked %(when)s", when=local_time(model.revoked_at)))
    form = forms.IdForm(formdata=None)
    return Markup('<form method="post" action="{action}" class="inline">{token}'
                  '<input type="hidden" name="id" value="{id}">'
                  '<button type="submit" class="danger" data-testid="revoke-{id}">{label}</button></form>').format(
        action=view.get_url(".revoke"), token=form.csrf_token, id=model.id, label=_("Revoke"))


class DeviceView(Guarded, ModelView):
    """Devices: name, user, last sync, clock skew seen; revoke (the token stops at once)."""

    can_create = can_edit = can_delete = False
    can_view_details = False
    column_list = ["name", "user.username", "node", "app_version", "created_at", "last_seen_at", "clock_skew_ms",
                   "refused_count", "revoked_at"]
    column_filters = ["name", "node"]
    column_searchable_list = ["name", "node"]
    column_default_sort = ("created_at", True)
    column_labels = {"name": _l("Device"), "user.username": _l("User"), "node": _l("Node"),
                     "created_at": _l("Registered"), "last_seen_at": _l("Last sync"),
                     "clock_skew_ms": _l("Clock skew"), "revoked_at": _l("Revoke"), "app_version": _l("App version"),
                     "refused_count": _l("Refused changes")}
    column_formatters = {"created_at": _when, "last_seen_at": _when, "clock_skew_ms": _skew,
                         "revoked_at": _revoke_button, "refused_count": _refusals}
    list_template = "admin/devices.html"

    @expose("/provision/", methods=["GET", "POST"])
    def provision(self):
        """Provision a tablet: pick the user, get a one-time code and its QR code (valid for minutes)."""
        form = forms.ProvisionForm()
        users = db.session.scalars(select(User).where(User.active.is_(True)).order_by(User.role, User.username))
        form.user.choices = [(u.id, f"{u.username} ({u.name}, {ROLE_LABELS.get(u.role, u.role)})") for u in users]
        issued = None
        if form.validate_on_submit():
            user = db.session.get(User, form.user.data)
            try:
                row, code = service.provision_code(user, current_user)
            except service.AdminError as exc:
                flash(str(exc), "error")
            else:
                link = service.provisioning_link(request.host_url, code)
                issued = {"user": user, "code": code, "expires_at": row.expires_at, "link": link,
                          "server": request.host_url.rstrip("/"), "qr": service.qr_svg_data_uri(link),
                          "minutes": accounts.DEVICE_CODE_MINUTES}
        return self.render("admin/provision.html", form=form, issued=issued)

    @expose("/revoke/", methods=["POST"])
    def revoke(self):
        form = forms.IdForm()
        device = db.session.get(Device, form.id.data or "") if form.validate_on_submit() else None
        if device is None:
            abort(404)
        service.revoke_device(device)
        flash(_("Device %(name)s revoked: its next sync is refused.", name=device.name), "success")
        return redirect(self.get_url(".index_view"), 303)


class ReferenceView(Guarded, BaseView):
    """A plain page of one reference kind: its records, a form to add one, a form to edit one."""

    kind = ""
    form_class: type[FlaskForm] = FlaskForm
    template = "admin/reference.html"
    columns: list[tuple[str, object]] = []

    @expose("/", methods=["GET", "POST"])
    def index(self):
        code = request.args.get("code")
        record = service.find_reference(self.kind, code) if code else None
        if code and record is None:
            abort(404)
        form = self.form_class(data=self.form_data(record.field_values) if record and request.method == "GET"
                               else None)
        self.prepare(form)
        if record is not None:
            form.code.render_kw = {"readonly": True}
        if request.method == "POST":
            if form.validate_on_submit():
                try:
                    values = self.values(form)
                    service.save_reference(self.kind, form.code.data.strip(), values, create=record is None)
                    flash(_("Saved. Tablets receive it at their next sync."), "success")
                    return redirect(self.get_url(".index"), 303)
                except service.AdminError as exc:
                    flash(str(exc), "error")
            return self.page(form, record), 400
        return self.page(form, record)

    @expose("/delete/", methods=["POST"])
    def delete(self):
        form = forms.IdForm()
        if not form.validate_on_submit():
            abort(400)
        try:
            service.delete_reference(self.kind, form.id.data)
        except service.AdminError:
            abort(404)
        flash(_("Deleted. Tablets drop it at their next sync."), "success")
        return redirect(self.get_url(".index"), 303)

    def page(self, form, record):
        records = [r for r in service.reference_records(self.kind) if not r.field_values.get("_deleted")]
        return self.render(self.template, form=form, record=record, records=records, columns=self.columns,
                           button=forms.IdForm(formdata=None), reference=load_reference())

    def form_data(self, values: dict) -> dict:
        return dict(values)

    def prepare(self, form) -> None:
        """Fill choices that come from the reference data."""

    def values(self, form) -> dict:
        return {name: (field.data.strip() if isinstance(field.data, str) else field.data) or None
                for name, field in form._fields.items() if name not in ("code", "csrf_token")}


class CategoryView(ReferenceView):
    kind = "category"
    form_class = forms.CategoryForm
    columns = [("code", _l("Code")), ("name", _l("Name")), ("name_en", _l("Name (English)")),
               ("default_unit", _l("Default unit")), ("deadline_hours", _l("Deadline (hours)")),
               ("urgent_deadline_hours", _l("Urgent (hours)")), ("micro", _l("Micro event")),
               ("duplicate_radius_m", _l("Duplicate radius (m)"))]

    def prepare(self, form):
        units = load_reference().units
        form.default_unit.choices = [("", "—")] + [(c, u.get("name") or c) for c, u in sorted(units.items())]

    def values(self, form):
        values = super().values(form)
        values["micro"] = bool(form.micro.data)
        values["duplicate_radius_m"] = form.duplicate_radius_m.data
        return values


class UnitView(ReferenceView):
    kind = "unit"
    form_class = forms.UnitForm
    columns = [("code", _l("Code")), ("name", _l("Name")), ("name_en", _l("Name (English)"))]

    def page(self, form, record):
        users = db.session.scalars(select(User).where(User.role == "unit").order_by(User.username)).all()
        records = [r for r in service.reference_records(self.kind) if not r.field_values.get("_deleted")]
        return self.render("admin/units.html", form=form, record=record, records=records, columns=self.columns,
                           button=forms.IdForm(formdata=None), users=users)


class GridView(ReferenceView):
    kind = "grid"
    form_class = forms.GridForm
    columns = [("code", _l("Code")), ("name", _l("Name")), ("type", _l("Type"))]

    def form_data(self, values):
        data = dict(values)
        if values.get("boundary"):
            data["boundary"] = json.dumps(values["boundary"], ensure_ascii=False)
        return data

    def values(self, form):
        values = {name: (form[name].data or "").strip() or None
                  for name in ("name", "name_en", "type", "district", "street", "community")}
        upload = form.boundary_file.data
        text = upload.read().decode("utf-8", errors="replace") if upload else (form.boundary.data or "").strip()
        # The field holds the stored boundary when the page opens: emptied, the grid has none any more.
        values["boundary"] = service.parse_boundary(text, within=service.district_outline()) if text else None
        return values

    @expose("/district/", methods=["POST"])
    def district(self):
        """Set or clear the district's outline, inside which every grid saved afterwards must lie."""
        form = forms.DistrictForm()
        if form.validate_on_submit():
            upload = form.outline_file.data
            text = upload.read().decode("utf-8", errors="replace") if upload else (form.outline.data or "")
            try:
                outline = service.set_district_outline(text, current_user)
                flash(_("The district's outline is saved.") if outline else _("The district's outline is cleared."),
                      "success")
            except service.AdminError as exc:
                flash(str(exc), "error")
        else:
            flash(_("The form has expired; try again."), "error")
        return redirect(self.get_url(".index"), 303)

    def page(self, form, record):
        records = [r for r in service.reference_records(self.kind) if not r.field_values.get("_deleted")]
        tree: dict = {}
        for r in records:
            v = r.field_values
            tree.setdefault(v.get("district"), {}).setdefault(v.get("street"), {}).setdefault(
                v.get("community"), []).append(v)
        outline = service.district_outline()
        return self.render("admin/grids.html", form=form, record=record, tree=tree, grid_types=forms.GRID_TYPE_LABELS,
                           button=forms.IdForm(formdata=None), history=accounts.grid_history(
                               grid=record.field_values["code"]) if record else [],
                           district_form=forms.DistrictForm(formdata=None, data={"outline": json.dumps(
                               outline, ensure_ascii=False) if outline else ""}),
                           map_data=_grid_map_data(records, record, outline))



def _grid_map_data(records: list, record, outline: dict | None) -> dict:
    """What the grid page's map shows: the other grids' outlines and the district's, and where to look without any."""
    code = record.field_values.get("code") if record else None
    others = [{"code": r.field_values["code"], "name": r.field_values.get("name") or "",
               "boundary": r.field_values["boundary"]}
              for r in records if r.field_values.get("boundary") and r.field_values.get("code") != code]
    centre = None
    if not (others or outline or (record and record.field_values.get("boundary"))):
        # Nothing to fit the map to (grid-draw.js): centre it on the cases. The average reads the whole
        # cases table (no index has the grid since 0014), so only a district with no outline drawn yet pays it.
        centre = db.session.execute(select(func.avg(CaseRow.lat), func.avg(CaseRow.lon)).where(
            CaseRow.lat.is_not(None), *([CaseRow.grid == code] if code else []))).first()
        if centre is None or centre[0] is None:
            centre = db.session.execute(select(func.avg(CaseRow.lat), func.avg(CaseRow.lon)).where(
                CaseRow.lat.is_not(None))).first()
    lat, lon = (centre if centre and centre[0] is not None else (0.0, 0.0))
    return {"others": others, "district": outline, "lat": float(lat), "lon": float(lon),
            "tiles": current_app.config["GRIDPATROL_TILE_URL"],
            "attribution": current_app.config["GRIDPATROL_TILE_ATTRIBUTION"]}


class ChecklistView(Guarded, BaseView):
    """Checklists, versioned: saving makes a new version; checks keep the version they were made against."""

    @expose("/", methods=["GET", "POST"])
    def index(self):
        code = request.args.get("code")
        versions = [r for r in service.reference_records("checklist") if not code or r.field_values.get("code") == code]
        latest = versions[-1].field_values if code and versions else None
        if code and latest is None:
            abort(404)
        form = forms.ChecklistForm(data=_checklist_data(latest) if latest and request.method == "GET" else None)
        if latest is not None:
            form.code.render_kw = {"readonly": True}
        if request.method == "POST":
            if form.validate_on_submit():
                try:
                    items = _parse_items(form.items.data)
                    record = service.new_checklist_version(form.code.data.strip(), name=form.name.data.strip(),
                                                           name_en=(form.name_en.data or "").strip(), items=items)
                    flash(_("Saved as version %(version)s. Checks made on earlier versions keep theirs.",
                            version=record.field_values["version"]), "success")
                    return redirect(self.get_url(".index", code=record.field_values["code"]), 303)
                except service.AdminError as exc:
                    flash(str(exc), "error")
            return self.render("admin/checklists.html", form=form, versions=versions, code=code), 400
        return self.render("admin/checklists.html", form=form, versions=versions, code=code)


def _checklist_data(values: dict) -> dict:
    lines = [" | ".join([i.get(name) or "" for name in ("code", "text", "text_en", "category", "hazard", "hazard_en")])
             for i in values.get("items") or []]
    return {"code": values.get("code"), "name": values.get("name"), "name_en": values.get("name_en"),
            "items": "\n".join(lines)}


def _parse_items(text: str) -> list[dict]:
    items = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split("|")] + [""] * 5
        if not parts[0] or not parts[1]:
            raise service.AdminError(_("Line %(n)s: an item needs a code and a wording.", n=number))
        items.append({"code": parts[0], "text": parts[1], "text_en": parts[2] or None, "category": parts[3] or None,
                      "hazard": parts[4] or None, "hazard_en": parts[5] or None})
    if not items:
        raise service.AdminError(_("A checklist needs at least one item."))
    return items


def _admin_translations() -> str:
    """Flask-Admin's own Chinese catalog under the name the pages use ("zh"), in a folder of this process's."""
    import flask_admin

    source = Path(flask_admin.__file__).parent / "translations" / "zh_Hans_CN" / "LC_MESSAGES"
    target = Path(tempfile.gettempdir()) / f"gridpatrol-admin-i18n-{os.getuid() if hasattr(os, 'getuid') else 0}"
    wanted = target / "zh" / "LC_MESSAGES" / "admin.mo"
    if not wanted.is_file() and (source / "admin.mo").is_file():
        wanted.parent.mkdir(parents=True, exist_ok=True)
        partial = wanted.with_suffix(f".{os.getpid()}")
        shutil.copyfile(source / "admin.mo", partial)
        os.replace(partial, wanted)  # atomic: processes starting together share it
    return str(target)


def _dispute_kinds():
    from ..disputes.admin import DisputeKindView  # it builds on ReferenceView, above

    return DisputeKindView(name="Dispute kinds", endpoint="dispute_kinds", url="/admin/dispute-kinds")


def init_app(app) -> None:
    """The admin area: Flask-Admin under /admin, in the pages' look (templates/admin/gp_base.html)."""
    from flask_admin.theme import Bootstrap4Theme

    # Plain names (translated where shown, in templates/admin/gp_base.html): Flask-Admin tests a name's truth
    # when the view is made, which would render a lazy translation outside any request.
    # Flask-Admin reads labels (lazy translations) while it builds its views: give it a request of this app.
    with app.test_request_context():
        admin = Admin(name="Administration", url="/admin", endpoint="admin_home",
                      index_view=Home(name="Overview", endpoint="admin_home", url="/admin"),
                      theme=Bootstrap4Theme(base_template="admin/gp_base.html"),
                      translations_path=_admin_translations())
        admin.add_view(UserView(User, db, name="Users", endpoint="users", url="/admin/users"))
        admin.add_view(DeviceView(Device, db, name="Devices", endpoint="devices", url="/admin/devices"))
        admin.add_view(GridView(name="Grids", endpoint="grids", url="/admin/grids"))
        admin.add_view(CategoryView(name="Categories", endpoint="categories", url="/admin/categories"))
        admin.add_view(UnitView(name="Units", endpoint="units", url="/admin/units"))
        admin.add_view(ChecklistView(name="Checklists", endpoint="checklists", url="/admin/checklists"))
        admin.add_view(_dispute_kinds())  # server/disputes/admin.py
        from ..places.admin import register as add_place_types  # place types and their grades (server/places)
        add_place_types(admin)
        admin.add_view(AuditView(AuditEntry, db, name="Audit log", endpoint="audit", url="/admin/audit"))
        admin.add_link(MenuLink(name="ID numbers", endpoint="admin.privacy_setting"))
        admin.init_app(app)


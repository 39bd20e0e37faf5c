"""The admin pages' forms: Flask-WTF forms, so every one carries a CSRF token."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, IntegerField, PasswordField, SelectField, SelectMultipleField, StringField, \
    TextAreaField, widgets
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, Regexp

from shared.records import CODE_PATTERN, GRID_TYPES
from shared.roles import ROLES

from ..web.forms import choice
from ..web.labels import ROLE_LABELS

CODE = [DataRequired(), Regexp(f"^{CODE_PATTERN}$", message=_l("Letters, digits, _ . - only"))]
GRID_TYPE_LABELS = {"base": _l("Base grid"), "police": _l("Police grid (警格)"), "safety": _l("Work safety grid (安格)"),
                    "traffic": _l("Traffic grid (交格)"), "environment": _l("Environment and water grid (环水格)"),
                    "market": _l("Market supervision grid (市监格)"), "cleanliness": _l("Cleanliness grid (洁格)")}


class Checkboxes(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()

    def pre_validate(self, form):
        """Any code may be kept (a grid deleted since is still listed as held)."""


class UserCreateForm(FlaskForm):
    username = StringField(_l("User name"), validators=[DataRequired(), Length(max=80),
                                                       Regexp(r"^[A-Za-z0-9_.-]+$", message=_l("Letters, digits, _ . - only"))])
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    role = SelectField(_l("Role"), choices=[choice(r, ROLE_LABELS[r]) for r in ROLES])
    unit = SelectField(_l("Unit (unit users)"), choices=[], validate_choice=False)
    grid_codes = Checkboxes(_l("Grids"), choices=[])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])


class UserEditForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    role = SelectField(_l("Role"), choices=[choice(r, ROLE_LABELS[r]) for r in ROLES])
    unit = SelectField(_l("Unit (unit users)"), choices=[], validate_choice=False)
    grid_codes = Checkboxes(_l("Grids"), choices=[])


class PasswordForm(FlaskForm):
    password = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=200)])


class IdForm(FlaskForm):
    """A button's form: the id of what it acts on, and the CSRF token."""
    id = StringField(validators=[DataRequired(), Length(max=64)])


class DistrictForm(FlaskForm):
    outline_file = FileField(_l("District outline (GeoJSON file)"))
    outline = TextAreaField(_l("District outline (GeoJSON; empty: none)"), validators=[Optional(), Length(max=2_000_000)])


class ProvisionForm(FlaskForm):
    user = SelectField(_l("User"), validators=[DataRequired()])


class CategoryForm(FlaskForm):
    code = StringField(_l("Code"), validators=CODE)
    name = StringField(_l("Name (Chinese)"), validators=[DataRequired(), Length(max=200)])
    name_en = StringField(_l("Name (English)"), validators=[Optional(), Length(max=200)])
    default_unit = SelectField(_l("Default unit"), choices=[], validate_choice=False)
    deadline_hours = IntegerField(_l("Deadline (hours)"), validators=[InputRequired(), NumberRange(1, 24 * 365)])
    urgent_deadline_hours = IntegerField(_l("Deadline of urgent events (hours)"),
                                         validators=[Optional(), NumberRange(1, 24 * 365)])
    micro = BooleanField(_l("Micro event (handled on the spot by the grid worker)"))
    duplicate_radius_m = IntegerField(_l("Nearby-duplicate radius (m)"),
                                      validators=[InputRequired(), NumberRange(0, 100_000)])


class UnitForm(FlaskForm):
    code = StringField(_l("Code"), validators=CODE)
    name = StringField(_l("Name (Chinese)"), validators=[DataRequired(), Length(max=200)])
    name_en = StringField(_l("Name (English)"), validators=[Optional(), Length(max=200)])


class GridForm(FlaskForm):
    code = StringField(_l("Code"), validators=CODE)
    name = StringField(_l("Name (Chinese)"), validators=[DataRequired(), Length(max=200)])
    name_en = StringField(_l("Name (English)"), validators=[Optional(), Length(max=200)])
    type = SelectField(_l("Type"), choices=[choice(t, GRID_TYPE_LABELS[t]) for t in GRID_TYPES])
    district = StringField(_l("District"), validators=[DataRequired(), Length(max=200)])
    street = StringField(_l("Street"), validators=[DataRequired(), Length(max=200)])
    community = StringField(_l("Community"), validators=[DataRequired(), Length(max=200)])
    boundary_file = FileField(_l("Boundary (GeoJSON file)"))
    boundary = TextAreaField(_l("Boundary (GeoJSON)"), validators=[Optional(), Length(max=500_000)])


class ChecklistForm(FlaskForm):
    code = StringField(_l("Code"), validators=CODE)
    name = StringField(_l("Name (Chinese)"), validators=[DataRequired(), Length(max=200)])
    name_en = StringField(_l("Name (English)"), validators=[Optional(), Length(max=200)])
    items = TextAreaField(_l("Items, one a line: code | passing wording | English | category if it fails | hazard wording | English"),
                          validators=[DataRequired(), Length(max=100_000)])

"""The form of a key place on the pages (new or edited): checked before the service sees it; CSRF by Flask-WTF."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import FloatField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional, Regexp

from shared.records import CODE_PATTERN


class PlaceForm(FlaskForm):
    grid = SelectField(_l("Grid"), choices=[], validators=[DataRequired()])
    name = StringField(_l("Place name"), validators=[DataRequired(), Length(max=200)])
    type = SelectField(_l("Type"), choices=[], validators=[DataRequired()])
    grade = StringField(_l("Grade"), validators=[Optional(), Length(max=64), Regexp(f"^{CODE_PATTERN}$")])
    address = StringField(_l("Address"), validators=[Optional(), Length(max=500)])
    person_in_charge = StringField(_l("Person in charge"), validators=[Optional(), Length(max=200)])
    phone = StringField(_l("Phone"), validators=[Optional(), Length(max=40)])
    worker = SelectField(_l("Responsible worker"), choices=[])
    lat = FloatField(_l("Latitude"), validators=[Optional(), NumberRange(-90, 90)])
    lon = FloatField(_l("Longitude"), validators=[Optional(), NumberRange(-180, 180)])
    notes = TextAreaField(_l("Notes"), validators=[Optional(), Length(max=4000)])

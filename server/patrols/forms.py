"""The fixed-point form (定点): what a supervisor or an admin types, checked before a service sees it.

The ranges are those of shared/records.py's FixedPointFields (the record's own check runs again in
server/sync/apply.py), so a value the form passes is one the record takes.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, FloatField, IntegerField, SelectField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional


class FixedPointForm(FlaskForm):
    """Create or edit a fixed point: its grid, names, position, radius and how often it is due."""

    grid = SelectField(_l("Grid"), validators=[InputRequired()], choices=[])
    name = StringField(_l("Point name"), validators=[DataRequired(), Length(max=200)])
    name_en = StringField(_l("English name"), validators=[Optional(), Length(max=200)])
    lat = FloatField(_l("Latitude"), validators=[InputRequired(), NumberRange(-90, 90)])
    lon = FloatField(_l("Longitude"), validators=[InputRequired(), NumberRange(-180, 180)])
    radius_m = IntegerField(_l("Radius (m)"), default=30, validators=[InputRequired(), NumberRange(5, 2000)])
    every_hours = IntegerField(_l("Visit at least every (hours)"), default=24,
                               validators=[InputRequired(), NumberRange(1, 24 * 366)])
    deleted = BooleanField(_l("Delete this point"))

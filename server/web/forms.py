"""The forms every page shares (log-in, language, log-out) and a helper for choices."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, InputRequired, Length

try:  # WTForms 3.3 deprecates (value, label) tuples for SelectChoice; older versions have only tuples
    from wtforms import SelectChoice as _SelectChoice
except ImportError:  # pragma: no cover - depends on the installed WTForms
    _SelectChoice = None


def choice(value: str, label: Any):
    """One option of a select or radio field, in the form the installed WTForms wants."""
    return _SelectChoice(value, label) if _SelectChoice is not None else (value, label)


class LoginForm(FlaskForm):
    username = StringField(_l("User name"), validators=[DataRequired(), Length(max=80)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])


class LanguageForm(FlaskForm):
    lang = HiddenField(validators=[InputRequired()])
    next = HiddenField()


class EmptyForm(FlaskForm):
    """A form with nothing but its CSRF token (log-out)."""

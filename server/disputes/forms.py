"""The forms of the dispute pages: one per mediation step, the report form, the admin's dispute kinds.

Every form is a Flask-WTF form (a CSRF token each) and checks its input before a service sees it.
"""

from __future__ import annotations

from flask_babel import gettext as _, lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateTimeLocalField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, Regexp

from shared.records import CODE_PATTERN

from ..web.forms import choice
from .labels import OUTCOME_LABELS

TIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]
MAX_PARTIES = 20


def mediator_names(text: str | None) -> list[str]:
    """The mediators typed as "王明, 李华" (either comma, or 、): names, each at most 100 characters."""
    names = [n.strip() for n in (text or "").replace("，", ",").replace("、", ",").split(",")]
    return [n[:100] for n in names if n][:20]


class AcceptForm(FlaskForm):
    """受理: an optional note."""

    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=4000)])


class SessionForm(FlaskForm):
    """A mediation session: who mediated, when, what happened."""

    mediators = StringField(_l("Mediators (names, separated by commas)"), validators=[Optional(), Length(max=500)])
    at = DateTimeLocalField(_l("When (empty: now)"), format=TIME_FORMATS, validators=[Optional()])
    note = TextAreaField(_l("What happened"), validators=[DataRequired(), Length(max=4000)])


class OutcomeForm(FlaskForm):
    """The outcome of the mediation; a referral names the body it went to."""

    outcome = SelectField(_l("Outcome"), choices=[choice(code, label) for code, label in OUTCOME_LABELS.items()],
                          validators=[InputRequired()])
    referred_to = StringField(_l("Referred to (court, arbitration …)"), validators=[Optional(), Length(max=200)])
    note = TextAreaField(_l("Agreement or reason"), validators=[Optional(), Length(max=4000)])

    def validate(self, extra_validators=None) -> bool:
        """The fields, then: a referral names the body it went to (Optional() would skip a field validator)."""
        if not super().validate(extra_validators):
            return False
        if self.outcome.data == "referred" and not (self.referred_to.data or "").strip():
            self.referred_to.errors = [*self.referred_to.errors, _("Name the body the dispute was referred to.")]
            return False
        return True


class FollowUpForm(FlaskForm):
    """回访: a visit after the outcome."""

    at = DateTimeLocalField(_l("When (empty: now)"), format=TIME_FORMATS, validators=[Optional()])
    note = TextAreaField(_l("What the parties said"), validators=[DataRequired(), Length(max=4000)])


class CommentForm(FlaskForm):
    note = TextAreaField(_l("Comment"), validators=[DataRequired(), Length(max=4000)])


STEP_FORMS: dict[str, type[FlaskForm]] = {
    "accept": AcceptForm, "session": SessionForm, "outcome": OutcomeForm, "follow_up": FollowUpForm,
    "comment": CommentForm,
}


class ReportForm(FlaskForm):
    """A dispute reported at the office: two parties at most here (the tablet takes more)."""

    grid = SelectField(_l("Grid"), validators=[InputRequired()])
    dispute_kind = SelectField(_l("Kind of dispute"), validators=[InputRequired()])
    party1_name = StringField(_l("Party 1: name"), validators=[DataRequired(), Length(max=100)])
    party1_phone = StringField(_l("Party 1: phone"), validators=[Optional(), Length(max=40)])
    party2_name = StringField(_l("Party 2: name"), validators=[Optional(), Length(max=100)])
    party2_phone = StringField(_l("Party 2: phone"), validators=[Optional(), Length(max=40)])
    place = StringField(_l("Place"), validators=[Optional(), Length(max=500)])
    description = TextAreaField(_l("What the dispute is about"), validators=[DataRequired(), Length(max=4000)])

    def parties(self) -> list[dict]:
        """The parties filled in."""
        found = []
        for n in (1, 2):
            name = (getattr(self, f"party{n}_name").data or "").strip()
            phone = (getattr(self, f"party{n}_phone").data or "").strip()
            if name:
                found.append({"name": name, "phone": phone or None})
        return found


class DisputeKindForm(FlaskForm):
    """The admin's form of a dispute kind (the ReferenceView of server/admin/console.py renders it)."""

    code = StringField(_l("Code"), validators=[DataRequired(), Regexp(f"^{CODE_PATTERN}$",
                                                                      message=_l("Letters, digits, _ . - only"))])
    name = StringField(_l("Name (Chinese)"), validators=[DataRequired(), Length(max=200)])
    name_en = StringField(_l("Name (English)"), validators=[Optional(), Length(max=200)])
    take_up_hours = IntegerField(_l("Take up within (hours)"), validators=[InputRequired(), NumberRange(1, 24 * 365)])

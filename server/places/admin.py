"""The admin page of place types (/admin/place-types): each type's checklist and how often each grade is checked.

A `server.admin.console.ReferenceView` of ``place_type`` records, registered in the admin area by
`server.admin.console.init_app`; written through the admin service, so every edit is audited and
syncs to the tablets. The intervals are typed as ``A=30, B=90, C=180`` (grade = days).
"""

from __future__ import annotations

import re
from types import SimpleNamespace

from flask_babel import gettext as _, lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from shared.records import CODE_PATTERN, MAX_CHECK_EVERY_DAYS

from ..admin import forms, service
from ..admin.console import ReferenceView

_PAIR = re.compile(rf"^\s*({CODE_PATTERN})\s*[=:：]\s*([0-9]{{1,5}})\s*$")


class PlaceTypeForm(FlaskForm):
    code = StringField(_l("Code"), validators=forms.CODE)
    name = StringField(_l("Name (Chinese)"), validators=[DataRequired(), Length(max=200)])
    name_en = StringField(_l("Name (English)"), validators=[Optional(), Length(max=200)])
    checklist = SelectField(_l("Checklist"), choices=[], validate_choice=False)
    check_every_days = StringField(_l("Days between checks, by grade (A=30, B=90, C=180)"),
                                   validators=[Optional(), Length(max=400)])


def parse_intervals(text: str) -> dict[str, int]:
    """``A=30, B=90`` as {"A": 30, "B": 90}; a part that is not grade=days (1 to 3660) is an AdminError."""
    found: dict[str, int] = {}
    for part in re.split(r"[,，;；\n]+", (text or "").strip()):
        if not part.strip():
            continue
        match = _PAIR.match(part)
        if match is None or not 1 <= int(match.group(2)) <= MAX_CHECK_EVERY_DAYS:
            raise service.AdminError(_("“%(part)s” is not grade=days (days from 1 to %(max)s).", part=part.strip(),
                                       max=MAX_CHECK_EVERY_DAYS))
        found[match.group(1)] = int(match.group(2))
    if len(found) > 20:
        raise service.AdminError(_("At most 20 grades."))
    return found


def intervals_text(every: object) -> str:
    """{"A": 30, "B": 90} as ``A=30, B=90``."""
    return ", ".join(f"{grade}={days}" for grade, days in every.items()) if isinstance(every, dict) else ""


class PlaceTypeView(ReferenceView):
    """Place types: small shop, small workshop, small venue, key unit, and any an admin adds."""

    kind = "place_type"
    form_class = PlaceTypeForm
    columns = [("code", _l("Code")), ("name", _l("Name")), ("name_en", _l("Name (English)")),
               ("checklist", _l("Checklist")), ("check_every_days", _l("Days between checks, by grade"))]

    def prepare(self, form):
        codes = sorted({r.field_values.get("code") for r in service.reference_records("checklist")
                        if not r.field_values.get("_deleted") and r.field_values.get("code")})
        form.checklist.choices = [("", "—")] + [(c, c) for c in codes]

    def form_data(self, values):
        return {**values, "check_every_days": intervals_text(values.get("check_every_days"))}

    def values(self, form):
        return {"name": form.name.data.strip(), "name_en": (form.name_en.data or "").strip() or None,
                "checklist": form.checklist.data or None,
                "check_every_days": parse_intervals(form.check_every_days.data or "")}

    def page(self, form, record):
        records = [SimpleNamespace(field_values={**r.field_values,
                                                 "check_every_days": intervals_text(r.field_values.get(
                                                     "check_every_days"))})
                   for r in service.reference_records(self.kind) if not r.field_values.get("_deleted")]
        return self.render(self.template, form=form, record=record, records=records, columns=self.columns,
                           button=forms.IdForm(formdata=None))


def register(admin) -> None:
    """Add the place types to the admin area (`server.admin.console.init_app` calls it)."""
    admin.add_view(PlaceTypeView(name="Place types", endpoint="place_types", url="/admin/place-types"))

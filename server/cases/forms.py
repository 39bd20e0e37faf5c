"""The forms of the case page's actions, one per button; each checks its input before a service sees it."""

from __future__ import annotations

import io

from flask_babel import gettext as _, lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import MultipleFileField
from wtforms import BooleanField, DateTimeLocalField, HiddenField, RadioField, SelectField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError

from shared.records import is_uuid

from ..photos.images import NotAnImage, TooManyPixels, check_image
from ..photos.service import max_photo_bytes
from ..web.forms import choice
from ..web.labels import size_text

MAX_RECTIFY_PHOTOS = 10  # photos one rectification may carry; bounds the request body with the photo limit


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
                raise ValidationError(_("“%(name)s” is larger than %(limit)s.", name=upload.filename,
                                        limit=size_text(limit)))
            try:
                check_image(io.BytesIO(data))
            except (NotAnImage, TooManyPixels):
                raise ValidationError(_("“%(name)s” is not a JPEG, PNG or WebP photo.",
                                        name=upload.filename)) from None
            self.photo_data.append(data)


class CloseForm(FlaskForm):
    """Close: a note is the evidence, and closing without the reporter's verification is confirmed."""

    note = TextAreaField(_l("Why the case is closed"), validators=[DataRequired(), Length(max=4000)])
    confirm = BooleanField(_l("I close this case without the reporter's verification"),
                           validators=[DataRequired(_l("Confirm that the case is closed without a verification."))])


class SendBackForm(FlaskForm):
    """退回: the unit says why the case is not theirs."""

    note = TextAreaField(_l("Why this case is not your unit's"), validators=[DataRequired(), Length(max=4000)])


class RequestExtensionForm(FlaskForm):
    """申请延期: the deadline asked for and why."""

    deadline = DateTimeLocalField(_l("Deadline asked for"), format=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
                                  validators=[InputRequired()])
    note = TextAreaField(_l("Reason"), validators=[DataRequired(), Length(max=4000)])


class GrantExtensionForm(FlaskForm):
    """Grant: the deadline asked for, or another one the supervisor gives."""

    deadline = DateTimeLocalField(_l("New deadline"), format=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
                                  validators=[InputRequired()])
    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=4000)])


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
    duplicate_of = HiddenField(validators=[InputRequired()])
    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=4000)])

    def validate_duplicate_of(self, field) -> None:
        """The case this one duplicates: a record id."""
        if not is_uuid(field.data):
            raise ValidationError(_("Not a case."))


ACTION_FORMS: dict[str, type[FlaskForm]] = {
    "dispatch": DispatchForm, "close": CloseForm, "return": NoteForm, "extend": ExtendForm,
    "comment": CommentForm, "supervise": NoteForm, "verify": VerifyForm, "mark_duplicate": DuplicateForm,
    "rectify": RectifyForm, "send_back": SendBackForm, "request_extension": RequestExtensionForm,
    "grant_extension": GrantExtensionForm, "refuse_extension": NoteForm,
}

"""One case: what was reported, its photos, its timeline, and the worker's verification (pass / fail with a note).

谁上报、谁核查: only the reporter (or a supervisor standing in) verifies, and only a
rectified case: CaseView.can_verify, which is what shared.case.available_actions offers the
user's role. A failure needs a note; both may carry photos. The verification is saved locally
at once and syncs like any capture.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from kivy.metrics import dp, sp
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout
from kivy.uix.image import Image
from kivy.uix.label import Label
from kivy.uix.modalview import ModalView

from ... import i18n
from ...app_core import run_off_ui
from ...presenters import CasePresenter, InputError
from ..app import schedule
from ..format import local_time, location_text
from ..pickers import PhotoTaker
from ..widgets import DANGER, MUTED, OK, WARN, Card, Field, FlatButton, Text, Title, Toggle, scrolling_column
from .base import BaseScreen


def status_text(status: str, resolution: str | None) -> str:
    """A case's status, and its resolution when it has one, in words."""
    text = i18n.status_name(status)
    return f"{text} · {i18n.resolution_name(resolution)}" if resolution else text


class PhotoThumb(ButtonBehavior, Image):
    """A thumbnail a finger can open: the full photo, fetched from the server when the tablet lacks it."""


def thumbnails(refs: list, height: float = dp(150), on_open: Callable[[str], None] | None = None) -> GridLayout:
    """A row of photo thumbnails; a photo not on the tablet yet says so (and, given ``on_open``, can be fetched)."""
    grid = GridLayout(cols=4, spacing=dp(8), size_hint_y=None)
    grid.bind(minimum_height=grid.setter("height"))
    for ref in refs:
        path = ref[1]
        thumb = getattr(ref, "thumbnail", None) or path
        if thumb and Path(thumb).exists():
            if on_open is None:
                grid.add_widget(Image(source=thumb, fit_mode="contain", size_hint_y=None, height=height))
            else:
                button = PhotoThumb(source=thumb, fit_mode="contain", size_hint_y=None, height=height)
                button.bind(on_release=lambda _b, sha=ref[0]: on_open(sha))
                grid.add_widget(button)
        elif on_open is not None:
            button = FlatButton(text=i18n.t("case.photo_not_fetched"), filled=False, height=height, font_size=sp(16))
            button.bind(on_release=lambda _b, sha=ref[0]: on_open(sha))
            grid.add_widget(button)
        else:
            grid.add_widget(Label(text=i18n.t("case.photo_remote"), color=MUTED, size_hint_y=None, height=height,
                                  font_size=sp(16)))
    return grid


class PhotoPopup(ModalView):
    """One photo, full size, over the case; a tap anywhere closes it."""

    def __init__(self, path: str, **kwargs: Any):
        super().__init__(size_hint=(0.95, 0.95), **kwargs)
        image = PhotoThumb(source=path, fit_mode="contain")
        image.bind(on_release=lambda *_: self.dismiss())
        self.add_widget(image)


class CaseScreen(BaseScreen):
    """The case page of the tablet."""

    title_key = "case.title"
    back_to = "cases"

    def build(self) -> None:
        self.event_id: str | None = None
        self.verify_photos: list[str] = []
        row = BoxLayout(spacing=dp(24))
        self.details = scrolling_column(row, 0.58)

        self.verify_card = Card()
        self.verify_title = Title()
        self.verify_hint = Text(tint=MUTED)
        # What the unit did (its note and photos), to compare with the place before passing or failing it.
        self.rectified_box = BoxLayout(orientation="vertical", spacing=dp(6), size_hint_y=None)
        self.rectified_box.bind(minimum_height=self.rectified_box.setter("height"))
        self.note = Field(multiline=True)
        self.verify_thumbs = BoxLayout(size_hint_y=None, height=0)
        # Photos of the rectified place, for the verification.
        self.taker = PhotoTaker(self, lambda: CasePresenter(self.core, self.event_id), self._photo_added)
        self.add_photo = FlatButton(filled=False)
        self.add_photo.bind(on_release=lambda *_: self.taker.take())
        buttons = GridLayout(cols=2, spacing=dp(12), size_hint_y=None, height=dp(80))
        self.pass_button = FlatButton(tint=OK, tint_down=OK, height=dp(80), font_size=sp(26))
        self.fail_button = FlatButton(tint=DANGER, tint_down=DANGER, height=dp(80), font_size=sp(26))
        self.pass_button.bind(on_release=lambda *_: self.verify(True))
        self.fail_button.bind(on_release=lambda *_: self.verify(False))
        buttons.add_widget(self.pass_button)
        buttons.add_widget(self.fail_button)
        for widget in (self.verify_title, self.rectified_box, self.verify_hint, self.note, self.verify_thumbs,
                       self.add_photo, buttons):
            self.verify_card.add_widget(widget)
        # A refused case: the reason, and what the worker can do (mend the grid and send again, or discard).
        self.refused_card = Card()
        self.refused_title = Title(color=DANGER)
        self.refused_reason = Text(tint=DANGER, bold=True)
        self.refused_help = Text(tint=MUTED, font_size=sp(18))
        self.mend_grids = GridLayout(cols=2, spacing=dp(8), size_hint_y=None, row_default_height=dp(64),
                                     row_force_default=True)
        self.mend_grids.bind(minimum_height=self.mend_grids.setter("height"))
        refused_buttons = GridLayout(cols=2, spacing=dp(12), size_hint_y=None, height=dp(72))
        self.resend_button = FlatButton(height=dp(72))
        self.discard_button = FlatButton(filled=False, tint=DANGER, height=dp(72))
        self.resend_button.bind(on_release=lambda *_: self.resend())
        self.discard_button.bind(on_release=lambda *_: self.ask_discard())
        refused_buttons.add_widget(self.resend_button)
        refused_buttons.add_widget(self.discard_button)
        for widget in (self.refused_title, self.refused_reason, self.refused_help, self.mend_grids, refused_buttons):
            self.refused_card.add_widget(widget)
        self.mend_grid: str | None = None
        column = BoxLayout(orientation="vertical", size_hint_x=0.42, spacing=dp(12))
        self.column = column
        column.add_widget(self.verify_card)
        column.add_widget(BoxLayout())
        row.add_widget(column)
        self.body.add_widget(row)

    def prepare(self, event_id: str | None = None, **params: Any) -> None:
        """Which case to show; a new case starts with an empty verification form."""
        if event_id and event_id != self.event_id:
            self.event_id = event_id
            self.note.text = ""
            self.verify_photos = []
            self.say("")

    def refresh(self) -> None:
        super().refresh()
        if not self.event_id:
            return
        try:
            view = CasePresenter(self.core, self.event_id).view()
        except InputError:
            self.details.clear_widgets()
            return
        english = i18n.language() == "en"
        name = (view.category_name_en if english and view.category_name_en else view.category_name) \
            or view.category_code or ""
        self.details.clear_widgets()
        add = self.details.add_widget
        add(Title(text=name))
        add(Text(text=view.description, font_size=sp(22)))
        # The status the server holds; the worker's own steps it has not received are said apart, as pending.
        shown = view.server_status or view.status
        add(Text(text=i18n.t("case.status", status=status_text(shown, view.server_resolution if view.pending
                                                                else view.resolution)), bold=True,
                 tint=OK if shown == "closed" else (WARN if view.can_verify else (0.08, 0.4, 0.75, 1))))
        if view.pending:
            add(Text(text=i18n.t("case.pending_status", count=view.pending,
                                 status=status_text(view.status, view.resolution)), bold=True, tint=WARN))
        add(Text(text=i18n.t("case.number", number=view.case_number) if view.case_number
                 else i18n.t("case.no_number"), tint=MUTED))
        add(Text(text=i18n.t("case.reported_at", when=local_time(view.reported_at)), tint=MUTED))
        add(Text(text=i18n.state_text(view.sync_state, view.refusal), bold=view.sync_state != "synced",
                 tint={"refused": DANGER, "local": WARN}.get(view.sync_state, OK)))
        place, source = location_text(view.location)
        if view.location is None and view.no_location_reason:
            place = i18n.t("case.no_location", reason=i18n.t(f"report.no_location.{view.no_location_reason}"))
        add(Text(text=i18n.t("case.location", place=place + (f"（{source}）" if source and not english else
                                                               (f" ({source})" if source else ""))), tint=MUTED))
        if view.failed_verifications:
            add(Text(text=i18n.t("case.failed", count=view.failed_verifications), tint=DANGER))
        if view.supervised:
            add(Text(text=i18n.t("case.supervised", deadline=local_time(view.deadline)) if view.deadline
                     else i18n.t("case.supervised_no_deadline"), tint=DANGER, bold=True))
        elif view.deadline and view.status not in ("closed", "reported"):
            add(Text(text=i18n.t("case.deadline", deadline=local_time(view.deadline)),
                     tint=DANGER if view.overdue else MUTED))
        add(Title(text=i18n.t("case.photos")))
        if view.photos:
            add(thumbnails(view.photos, on_open=self.open_photo))
        else:
            add(Text(text=i18n.t("case.no_photos"), tint=MUTED))
        add(Title(text=i18n.t("case.timeline")))
        add(Text(text=f"{local_time(view.reported_at)}   {i18n.action_name('report')}"))
        for entry in view.timeline:
            line = f"{local_time(entry.at)}   {i18n.action_name(entry.action)}"
            if entry.action == "dispatch" and entry.unit:
                line += f" → {self.unit_name(entry.unit)}"
            if entry.note:
                line += f"：{entry.note}" if not english else f": {entry.note}"
            if not entry.applied:
                line += i18n.t("case.superseded", reason=entry.reason or "")
            if entry.refusal is not None:
                line += "   · " + i18n.state_text("refused", entry.refusal)
            elif entry.pending:
                line += "   · " + i18n.t("case.pending")
            add(Text(text=line, tint=DANGER if entry.refusal is not None else WARN if entry.pending else
                     (0.12, 0.16, 0.2, 1) if entry.applied else MUTED))
            if entry.photos:
                add(thumbnails(entry.photos, dp(110), on_open=self.open_photo))

        self.verify_title.text = i18n.t("case.verify")
        self.note.hint_text = i18n.t("case.verify_note")
        self.add_photo.text = i18n.t("case.verify_add_photo")
        self.pass_button.text = i18n.t("case.pass")
        self.fail_button.text = i18n.t("case.fail")
        self.verify_hint.text = i18n.t("case.verify_hint") if view.can_verify else i18n.t("case.not_awaiting")
        for widget in (self.note, self.add_photo, self.pass_button, self.fail_button):
            widget.disabled = not view.can_verify
        self._show_verify_photos()
        self._show_rectification(view)
        self._show_refused(view)

    def _show_rectification(self, view: Any) -> None:
        """The unit's rectification above the verification: who, when, its note and photos (tap: the full photo)."""
        box = self.rectified_box
        box.clear_widgets()
        entry = view.rectification
        if entry is None:
            return
        english = i18n.language() == "en"
        who = self.unit_name(view.unit) if view.unit else ""
        box.add_widget(Text(text=i18n.t("case.rectified_by", unit=who, when=local_time(entry.at)), bold=True))
        if entry.note:
            box.add_widget(Text(text=(f"“{entry.note}”" if not english else f'"{entry.note}"'), font_size=sp(20)))
        if entry.photos:
            box.add_widget(thumbnails(entry.photos, dp(130), on_open=self.open_photo))
            if any(not (getattr(ref, "thumbnail", None) or ref.path) for ref in entry.photos):
                box.add_widget(Text(text=i18n.t("case.photos_not_fetched_hint"), tint=WARN, font_size=sp(16)))
        else:
            box.add_widget(Text(text=i18n.t("case.rectified_no_photos"), tint=MUTED, font_size=sp(16)))

    def open_photo(self, sha256: str) -> None:
        """Show a photo full size: from the tablet, or fetched from the server first (online)."""
        presenter = CasePresenter(self.core, self.event_id)
        ref = next((r for r in presenter.view_photos() if r.sha256 == sha256), None)
        if ref is not None and ref.full and ref.path:
            self.photo_popup = PhotoPopup(ref.path)
            self.photo_popup.open()
            return
        self.say(i18n.t("case.photo_fetching"))
        run_off_ui(schedule, lambda: presenter.fetch_full_photo(sha256), self._photo_fetched, self._photo_failed)

    def _photo_fetched(self, ref: Any) -> None:
        self.say("")
        self.refresh()
        if ref is not None and ref.path:
            self.photo_popup = PhotoPopup(ref.path)
            self.photo_popup.open()

    def _photo_failed(self, exc: BaseException) -> None:
        if isinstance(exc, InputError):
            self.say(i18n.t(f"case.photo_{exc.code}"), "error")
        else:
            self.say(f"{type(exc).__name__}: {exc}", "error")

    def _show_refused(self, view: Any) -> None:
        """The refused card, above the verification, only while something of the case is refused."""
        # The refused card takes the verification's place: both do not fit the column, and nothing is
        # verified on a case whose own records the server refused until they are mended or discarded.
        for card in (self.refused_card, self.verify_card):
            if card.parent is not None:
                self.column.remove_widget(card)
        self.column.add_widget(self.refused_card if view.refusal is not None else self.verify_card,
                               index=len(self.column.children))
        if view.refusal is None:
            return
        self.refused_title.text = i18n.t("case.refused_title")
        self.refused_reason.text = i18n.refusal_text(view.refusal.code, view.refusal.reason)
        self.refused_help.text = i18n.t("case.refused_help")
        self.resend_button.text = i18n.t("case.resend")
        self.discard_button.text = i18n.t("case.discard")
        self.mend_grids.clear_widgets()
        if view.can_mend:
            english = i18n.language() == "en"  # grid names are Chinese data; English shows the code
            for grid in self.core.grids():
                name = grid.code if english else f"{grid.name or ''} {grid.code}".strip()
                button = Toggle(text=f"{i18n.t('case.mend_grid')} {name}", group="mend_grid",
                                state="down" if grid.code == self.mend_grid else "normal")
                button.code = grid.code
                button.bind(on_release=lambda b: self._choose_grid(b))
                self.mend_grids.add_widget(button)

    def _choose_grid(self, button: Any) -> None:
        self.mend_grid = button.code if button.state == "down" else None

    def resend(self) -> None:
        """Send the refused case again: moved to the chosen grid when the worker chose one (mended)."""
        presenter = CasePresenter(self.core, self.event_id)
        try:
            if presenter.view().can_mend:
                presenter.mend(grid=self.mend_grid)
            else:
                presenter.resend()
        except InputError as exc:
            self.say(i18n.error_text(exc.field, exc.code), "error")
            return
        self.mend_grid = None
        self.say(i18n.t("case.resent"), "ok")
        self.refresh()
        self.app.sync_now()

    def ask_discard(self) -> None:
        from ..pickers import ask_confirm

        self.confirm_popup = ask_confirm(i18n.t("case.discard_confirm"), i18n.t("case.discard"), self.discard,
                                         danger=True)

    def discard(self) -> None:
        """Give up the refused change; a case the server never had leaves the tablet (back to My cases)."""
        gone = CasePresenter(self.core, self.event_id).discard_refused()
        self.mend_grid = None
        if gone:
            self.app.go("cases")
            self.app.screen("cases").say(i18n.t("case.discarded_gone"), "ok")
            return
        self.say(i18n.t("case.discarded"), "ok")
        self.refresh()

    def unit_name(self, code: str) -> str:
        """A unit's name from the synced reference data, in the current language."""
        english = i18n.language() == "en"
        for _id, _bucket, state in self.core.store.states("unit"):
            values = {name: write[0] for name, write in state.items()}
            if values.get("code") == code:
                return (values.get("name_en") if english and values.get("name_en") else values.get("name")) or code
        return code

    def _show_verify_photos(self) -> None:
        self.verify_card.remove_widget(self.verify_thumbs)
        queue = self.core.photos
        refs = [(sha, str(queue.thumbnail_path(sha))) for sha in self.verify_photos]
        self.verify_thumbs = thumbnails(refs, dp(110)) if refs else BoxLayout(size_hint_y=None, height=0)
        self.verify_card.add_widget(self.verify_thumbs, index=3)

    def _photo_added(self, sha: str) -> None:
        if sha not in self.verify_photos:
            self.verify_photos.append(sha)
        self._show_verify_photos()

    def verify(self, passed: bool) -> None:
        """Record pass or fail locally; the next sync sends it."""
        try:
            CasePresenter(self.core, self.event_id).verify(passed, self.note.text.strip() or None,
                                                           tuple(self.verify_photos))
        except InputError as exc:
            self.say(i18n.error_text(exc.field, exc.code), "error")
            return
        self.note.text = ""
        self.verify_photos = []
        self.refresh()
        self.say(i18n.t("case.verified"), "ok")

"""Report an event: category (micro ones marked), description, urgent, photos, location; Save works offline.

Saving is one local write (ReportPresenter.save): instant, no network. A
micro event can be closed in the same flow ("handled on the spot"). Photos
come from the camera on Android (plyer) and from a file chooser on a desktop;
either way they go through the photo queue (EXIF orientation, resize, hash)
off the UI thread. The location says where it came from: GPS with its
accuracy, or, clearly marked, the last known position or a manual entry.
"""

from __future__ import annotations

import logging
from typing import Any

from kivy.metrics import dp, sp
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout
from kivy.uix.image import Image
from kivy.uix.scrollview import ScrollView

from ... import i18n
from shared.records import NO_LOCATION_REASONS

from ...location import LocationReading
from ...presenters import InputError, ReportPresenter
from ..format import location_text
from ..pickers import PhotoTaker, ask_location
from ..widgets import DANGER, MUTED, OK, WARN, Card, Field, FlatButton, Text, Title, Toggle
from .base import BaseScreen

log = logging.getLogger(__name__)


class PhotoStrip(BoxLayout):
    """Thumbnails of the photos taken so far, each with a remove button, and an add button."""

    def __init__(self, on_add, on_remove, **kwargs: Any):
        super().__init__(orientation="vertical", size_hint_y=None, spacing=dp(8), **kwargs)
        self.on_add_photo, self.on_remove_photo = on_add, on_remove
        self.thumbs = GridLayout(cols=2, spacing=dp(8), size_hint_y=None)
        self.thumbs.bind(minimum_height=self.thumbs.setter("height"))
        self.add = FlatButton(filled=False)
        self.add.bind(on_release=lambda *_: self.on_add_photo())
        self.add_widget(self.thumbs)
        self.add_widget(self.add)
        self.thumbs.bind(height=self._resize)
        self._resize()

    def _resize(self, *_: Any) -> None:
        self.height = self.thumbs.height + self.add.height + self.spacing

    def show(self, photos: list[tuple[str, str | None]], add_text: str, remove_text: str) -> None:
        """photos: (sha, thumbnail path) in order."""
        self.add.text = add_text
        self.thumbs.clear_widgets()
        for sha, path in photos:
            cell = BoxLayout(orientation="vertical", size_hint_y=None, height=dp(150), spacing=dp(4))
            image = Image(source=path or "", fit_mode="contain")
            remove = FlatButton(text=remove_text, filled=False, tint=DANGER, height=dp(48), font_size=sp(18))
            remove.bind(on_release=lambda *_, sha=sha: self.on_remove_photo(sha))
            cell.add_widget(image)
            cell.add_widget(remove)
            self.thumbs.add_widget(cell)
        self._resize()


class ReportScreen(BaseScreen):
    """The report form."""

    title_key = "report.title"

    def build(self) -> None:
        self.presenter: ReportPresenter | None = None
        self.category: str | None = None
        self.on_spot_offered = False  # the presenter's answer for the chosen category
        self.grid: str | None = None
        self.photos: list[str] = []
        self.reading: LocationReading | None = None
        self.taker = PhotoTaker(self, self._presenter, self._photo_added)

        # Three columns, so the whole form fits a 1280×800 screen without scrolling: what it is
        # (category), what happened and where (description, flags, location), the evidence (photos) and Save.
        scroll = ScrollView(do_scroll_x=False, bar_width=dp(8))
        columns = BoxLayout(spacing=dp(20), size_hint_y=None)
        # The row is as tall as its tallest column; each column hangs from the top (pos_hint).
        left = BoxLayout(orientation="vertical", spacing=dp(6), size_hint=(0.36, None), pos_hint={"top": 1})
        middle = BoxLayout(orientation="vertical", spacing=dp(10), size_hint=(0.34, None), pos_hint={"top": 1})
        right = BoxLayout(orientation="vertical", spacing=dp(10), size_hint=(0.30, None), pos_hint={"top": 1})
        self._columns = (left, middle, right)
        for column in self._columns:
            column.bind(minimum_height=column.setter("height"))
            column.bind(height=lambda *_: self._fit(columns))

        self.category_title = Title()
        self.categories = GridLayout(cols=2, spacing=dp(6), size_hint_y=None, row_default_height=dp(64),  # the app's rule: 64 dp for a finger
                                     row_force_default=True)
        self.categories.bind(minimum_height=self.categories.setter("height"))
        self.micro_legend = Text(tint=MUTED, font_size=sp(17))
        for widget in (self.category_title, self.micro_legend, self.categories):
            left.add_widget(widget)

        self.description_title = Title()
        self.description = Field(multiline=True)
        self.urgent = Toggle(tint=DANGER)
        self.on_spot = Toggle(disabled=True)
        self.on_spot.bind(state=lambda *_: self._show_on_spot())
        self.on_spot_note = Field(multiline=False, opacity=0, disabled=True)
        self.on_spot_note.height = 0
        location = Card(padding=dp(16), spacing=dp(6))
        self.location_title = Title()
        self.location_value = Text(font_size=sp(21))
        self.location_source = Text(bold=True)
        buttons = GridLayout(cols=2, spacing=dp(8), size_hint_y=None, height=dp(64))
        self.manual = FlatButton(filled=False, font_size=sp(19))
        self.relocate = FlatButton(filled=False, font_size=sp(19))
        self.manual.bind(on_release=lambda *_: self.enter_location())
        self.relocate.bind(on_release=lambda *_: self.read_location())
        buttons.add_widget(self.manual)
        buttons.add_widget(self.relocate)
        # Without a position the worker says why (shared/records.py NO_LOCATION_REASONS); the pages show it.
        self.reason_title = Text(tint=DANGER, font_size=sp(18))
        self.reasons = GridLayout(cols=2, spacing=dp(6), size_hint_y=None, row_default_height=dp(64),
                                  row_force_default=True)
        self.reasons.bind(minimum_height=self.reasons.setter("height"))
        self.reason_buttons = {}
        for code in NO_LOCATION_REASONS:
            button = Toggle(group="no_location_reason", font_size=sp(18))
            self.reason_buttons[code] = button
            self.reasons.add_widget(button)
        self.address = Field(multiline=False)
        for widget in (self.location_title, self.location_value, self.location_source, buttons, self.reason_title,
                       self.reasons, self.address):
            location.add_widget(widget)
        for widget in (self.description_title, self.description, self.urgent, self.on_spot, self.on_spot_note,
                       location):
            middle.add_widget(widget)

        self.grid_title = Title()
        self.grid_choices = GridLayout(cols=2, spacing=dp(8), size_hint_y=None)
        self.grid_choices.bind(minimum_height=self.grid_choices.setter("height"))
        photos = Card(padding=dp(16), spacing=dp(6))
        self.photos_title = Title()
        self.strip = PhotoStrip(self.taker.take, self.remove_photo)
        photos.add_widget(self.photos_title)
        photos.add_widget(self.strip)
        self.save_button = FlatButton(tint=OK, tint_down=OK, height=dp(80), font_size=sp(28))
        self.save_button.bind(on_release=lambda *_: self.save())
        for widget in (self.grid_title, self.grid_choices, photos, self.save_button):
            right.add_widget(widget)

        for column in self._columns:
            columns.add_widget(column)
        scroll.add_widget(columns)
        self.body.add_widget(scroll)

    def _fit(self, columns) -> None:
        columns.height = max(column.height for column in self._columns)

    # --- state ----------------------------------------------------------------------------------

    def prepare(self, fresh: bool = False, draft: Any = None, **params: Any) -> None:
        """fresh=True: an empty form (from Home). draft: a form filled from a failed house-check item
        (mobile/houses.py's EventDraft): category suggested, the check's photos, the house's grid and place."""
        if fresh or draft is not None:
            self.reset()
        if draft is not None:
            self.category = draft.category
            self.description.text = draft.description
            self.grid = draft.grid or self.grid
            self.photos = list(draft.photos)
            if draft.location:
                loc = draft.location
                self.reading = LocationReading(loc.get("lat"), loc.get("lon"), loc.get("accuracy_m"),
                                               loc.get("source") or "manual")

    def reset(self) -> None:
        """Empty the form; photos taken but not saved are discarded."""
        presenter = self._presenter()
        for sha in self.photos:
            try:
                presenter.remove_photo(sha)
            except Exception:  # noqa: BLE001 - discarding a draft photo is best effort: the form empties anyway
                log.warning("report: could not discard the draft photo %s", sha, exc_info=True)
        self.category, self.photos = None, []
        self.description.text = ""
        self.urgent.state = "normal"
        self.on_spot.state = "normal"
        self.on_spot_note.text = ""
        self.address.text = ""
        for button in self.reason_buttons.values():  # a reason chosen for another report is not this one's
            button.state = "normal"
        grids = presenter.grids()
        self.grid = grids[0].code if len(grids) == 1 else None
        self.read_location()
        self.say("")

    def _presenter(self) -> ReportPresenter:
        if self.presenter is None or self.presenter.core is not self.core:
            self.presenter = ReportPresenter(self.core)
        return self.presenter

    def refresh(self) -> None:
        super().refresh()
        presenter = self._presenter()
        english = i18n.language() == "en"
        self.category_title.text = i18n.t("report.category")
        self.micro_legend.text = i18n.t("report.micro_legend")
        self.description_title.text = i18n.t("report.description")
        self.description.hint_text = i18n.t("report.description_hint")
        self.grid_title.text = i18n.t("report.grid")
        self.urgent.text = i18n.t("report.urgent")
        self.on_spot.text = i18n.t("report.on_spot")
        self.on_spot_note.hint_text = i18n.t("report.on_spot_note")
        self.location_title.text = i18n.t("report.location")
        self.manual.text = i18n.t("report.manual")
        self.relocate.text = i18n.t("report.refresh_location")
        self.address.hint_text = i18n.t("report.address")
        for code, button in self.reason_buttons.items():
            button.text = i18n.t(f"report.no_location.{code}")
        self.photos_title.text = i18n.t("report.photos")
        self.save_button.text = i18n.t("report.save")

        self.categories.clear_widgets()
        for choice in presenter.categories():
            name = (choice.name_en if english and choice.name_en else choice.name) or choice.code
            if choice.micro:
                name += i18n.t("report.micro_mark")
            button = Toggle(text=name, group="category", allow_no_selection=False,
                            state="down" if choice.code == self.category else "normal")
            button.code = choice.code
            button.bind(on_release=lambda b: self.choose_category(b.code))
            self.categories.add_widget(button)

        self.grid_choices.clear_widgets()
        for grid in presenter.grids():
            button = Toggle(text=grid.name or grid.code, group="grid", allow_no_selection=False,
                            state="down" if grid.code == self.grid else "normal")
            button.code = grid.code
            button.bind(on_release=lambda b: setattr(self, "grid", b.code))
            self.grid_choices.add_widget(button)
        self._offer_on_spot()
        self._show_location()
        self._show_photos()

    def choose_category(self, code: str) -> None:
        """A category was tapped: one the worker may close on the spot (a micro one) allows "handled on the spot"."""
        self.category = code
        self._offer_on_spot()

    def _offer_on_spot(self) -> None:
        """Ask the presenter whether the chosen category may be handled on the spot, and show the answer."""
        self.on_spot_offered = self._presenter().offers_on_spot(self.category)
        self._show_on_spot()

    def _show_on_spot(self) -> None:
        offered = self.on_spot_offered
        self.on_spot.disabled = not offered
        if not offered and self.on_spot.state == "down":
            self.on_spot.state = "normal"
        shown = offered and self.on_spot.state == "down"
        self.on_spot_note.disabled = not shown
        self.on_spot_note.opacity = 1 if shown else 0
        self.on_spot_note.height = dp(64) if shown else 0

    # --- location -------------------------------------------------------------------------------

    def read_location(self) -> None:
        """Ask the presenter where the tablet is (GPS, else last known)."""
        reading = self._presenter().location()
        self.reading = reading if reading is not None and reading.lat is not None else None
        self._show_location()

    def _show_location(self) -> None:
        text, source = location_text(self.reading, self.core.now_ms())
        self.location_value.text = text
        missing = source is None
        self.reason_title.text = i18n.t("report.no_location_why") if missing else ""
        self.reasons.opacity, self.reasons.disabled = (1, False) if missing else (0, True)
        self.reasons.size_hint_y, self.reasons.height = None, self.reasons.minimum_height if missing else 0
        if missing:
            self.location_source.text = ""
            self.location_value.tint = DANGER
            return
        self.location_value.tint = (0.12, 0.16, 0.2, 1)
        self.location_source.text = f"【{source}】" if i18n.language() == "zh" else f"[{source}]"
        self.location_source.tint = OK if self.reading.source == "gps" else WARN

    def enter_location(self) -> None:
        """Open the manual entry popup: the map of the worker's grids (offline tiles when set) and the fields."""
        ask_location(self.reading, self._manual_location, self._presenter().map_area())

    def _manual_location(self, lat: float, lon: float) -> None:
        self.reading = LocationReading(lat, lon, None, "manual")  # not kept as the last known position
        self._show_location()

    # --- photos ---------------------------------------------------------------------------------

    def _photo_added(self, sha: str) -> None:
        if sha not in self.photos:
            self.photos.append(sha)
        self._show_photos()

    def remove_photo(self, sha: str) -> None:
        """Take a photo out of the form (and off the tablet: no record refers to it)."""
        self._presenter().remove_photo(sha)
        self.photos = [p for p in self.photos if p != sha]
        self._show_photos()

    def _show_photos(self) -> None:
        queue = self.core.photos
        shown = [(sha, str(queue.thumbnail_path(sha))) for sha in self.photos]
        self.strip.show(shown, i18n.t("report.add_photo"), i18n.t("report.remove_photo"))

    # --- save -----------------------------------------------------------------------------------

    def save(self) -> None:
        """One local write; then back Home, where the unsynced count has grown."""
        on_spot = self.on_spot.state == "down"
        reason = next((code for code, b in self.reason_buttons.items() if b.state == "down"), None)
        try:
            self._presenter().save(
                grid=self.grid, category=self.category, description=self.description.text.strip(),
                urgent=self.urgent.state == "down", location=self.reading, photos=tuple(self.photos),
                handled_on_spot=on_spot, note=self.on_spot_note.text.strip() or None if on_spot else None,
                address=self.address.text.strip() or None,
                # Always the reason chosen: a reading without a position (no fix yet) needs it too, and the
                # presenter keeps it only when the report has no position.
                no_location_reason=reason)
        except InputError as exc:
            # The presenter's rule: no position needs a reason; said in the form's own words.
            missing_reason = (exc.field, exc.code) == ("no_location_reason", "required")
            self.say(i18n.t("report.no_location_needs_reason") if missing_reason
                     else i18n.error_text(exc.field, exc.code), "error")
            return
        self.photos = []  # they belong to the saved event now
        self.address.text = ""
        for button in self.reason_buttons.values():
            button.state = "normal"
        self.app.go("home")
        self.app.screen("home").say(i18n.t("report.saved"), "ok")

"""Where photos and positions come from: the camera (Android, plyer) or a file chooser (desktop); a manual position.

Callbacks of the Android camera arrive on another thread: they reach the UI
through `schedule` like everything else. `PhotoTaker` is how a form takes a
photo: the report, the verification and the house check alike.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any, Callable

from kivy.metrics import dp, sp
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.filechooser import FileChooserListView
from kivy.uix.gridlayout import GridLayout
from kivy.uix.popup import Popup

from .. import i18n
from ..background import run_off_ui
from ..location import on_android
from .widgets import DANGER, Field, FlatButton, Text

ON_DARK = (0.96, 0.97, 0.98, 1)  # text on Kivy's dark popup background
ON_DARK_ERROR = (1, 0.6, 0.55, 1)  # an error there: a light red that reads on the dark grey

__all__ = ["pick_photo", "PhotoTaker", "ask_location", "PHOTO_FILTERS"]

PHOTO_FILTERS = ["*.jpg", "*.jpeg", "*.JPG", "*.JPEG", "*.png", "*.PNG", "*.webp"]


def pick_photo(camera_dir: Path, start_dir: str | None, on_chosen: Callable[[str], None],
               on_failed: Callable[[BaseException], None]) -> None:
    """Get one photo file: the camera on Android, a file chooser elsewhere."""
    if on_android():
        _take_picture(camera_dir, on_chosen, on_failed)
    else:
        PhotoChooser(start_dir, on_chosen).open()


def _take_picture(camera_dir: Path, on_chosen: Callable[[str], None],
                  on_failed: Callable[[BaseException], None]) -> None:
    from .app import schedule

    camera_dir.mkdir(parents=True, exist_ok=True)
    target = camera_dir / f"{uuid.uuid4().hex}.jpg"

    def complete(path: str) -> bool:
        # Called from the Android activity-result thread: hop onto the UI thread.
        if path and os.path.exists(path):
            schedule(lambda: on_chosen(path))
        return False  # plyer's convention: False means "do not delete the file"

    try:
        from plyer import camera
        camera.take_picture(filename=str(target), on_complete=complete)
    except (ImportError, NotImplementedError, OSError) as exc:
        on_failed(exc)


class PhotoTaker:
    """Takes photos for a screen's form, one at a time: `pick_photo`, then the form's ``add_photo`` off the UI thread.

    Preparing a photo (EXIF turn, resize, hash) takes a moment: a tap meanwhile is ignored. Once the
    photo queue holds the prepared photo, the camera's own full-size file goes: it would only fill the
    tablet. ``form`` gives the presenter to add to (a _PhotoForm); ``on_added(sha)`` runs on the UI thread.
    """

    def __init__(self, screen: Any, form: Callable[[], Any], on_added: Callable[[str], None]):
        self.screen, self.form, self.on_added = screen, form, on_added
        self.busy = False

    @property
    def camera_dir(self) -> Path:
        """Where the camera writes its pictures: inside the app's data, never the worker's gallery."""
        return Path(self.screen.core.data_dir) / "camera"

    def take(self) -> None:
        """Camera (Android) or file chooser (desktop); a failure is said on the screen."""
        if not self.busy:
            pick_photo(self.camera_dir, self.screen.app.photo_dir, self._chosen, self._failed)

    def _chosen(self, path: str) -> None:
        from .app import schedule

        self.busy = True
        form = self.form()
        run_off_ui(schedule, lambda: form.add_photo(path), lambda sha: self._added(path, sha), self._failed)

    def _added(self, path: str, sha: str) -> None:
        self.busy = False
        if on_android() and Path(path).parent == self.camera_dir:
            os.unlink(path)
        self.on_added(sha)

    def _failed(self, exc: BaseException) -> None:
        self.busy = False
        self.screen.say(i18n.t("report.photo_failed", error=exc), "error")


class PhotoChooser(Popup):
    """Kivy's FileChooserListView in a popup, filtered to images."""

    def __init__(self, start_dir: str | None, on_chosen: Callable[[str], None], **kwargs: Any):
        super().__init__(title=i18n.t("report.choose_photo"), size_hint=(0.9, 0.9), title_size=sp(22), **kwargs)
        self.on_chosen = on_chosen
        start = start_dir if start_dir and os.path.isdir(start_dir) else str(Path.home())
        content = BoxLayout(orientation="vertical", spacing=dp(10))
        self.chooser = FileChooserListView(path=start, filters=PHOTO_FILTERS)
        buttons = GridLayout(cols=2, spacing=dp(12), size_hint_y=None, height=dp(64))
        cancel = FlatButton(text=i18n.t("common.cancel"), filled=False)
        self.choose = FlatButton(text=i18n.t("report.choose"))
        cancel.bind(on_release=lambda *_: self.dismiss())
        self.choose.bind(on_release=lambda *_: self.confirm())
        self.chooser.bind(on_submit=lambda *_: self.confirm())
        buttons.add_widget(cancel)
        buttons.add_widget(self.choose)
        content.add_widget(self.chooser)
        content.add_widget(buttons)
        self.content = content

    def confirm(self) -> None:
        """Hand over the selected file, if any."""
        if self.chooser.selection:
            path = self.chooser.selection[0]
            self.dismiss()
            self.on_chosen(path)


class LocationPopup(Popup):
    """A position picked by the worker (marked "manual" in the record): a tap on the map of the worker's grids
    (mobile/ui/map.py), or latitude and longitude typed. A tap fills the fields; OK checks and hands them over."""

    def __init__(self, reading: Any, on_ok: Callable[[float, float], None], area: Any = None, **kwargs: Any):
        # A map with neither outlines nor tiles would be a blank square a tap turns into a position: not shown.
        with_map = area is not None and bool(area.outlines or area.tiles_path)
        size = {"size_hint": (0.94, 0.94)} if with_map else {"size_hint": (None, None), "size": (dp(620), dp(560))}
        super().__init__(title=i18n.t("location.manual_title"), title_size=sp(22), auto_dismiss=False, **size,
                         **kwargs)
        self.on_ok = on_ok
        known = reading is not None and getattr(reading, "lat", None) is not None
        row = BoxLayout(spacing=dp(16), padding=dp(8))
        self.map = None
        if with_map:
            from .map import TapMap  # the map's module is loaded with the popup that shows it

            left = BoxLayout(orientation="vertical", spacing=dp(8), size_hint_x=0.66)
            self.map = TapMap(area, (reading.lat, reading.lon) if known else None, self.picked)
            zoom = GridLayout(cols=3, spacing=dp(8), size_hint_y=None, height=dp(64))
            self.zoom_out = FlatButton(text=i18n.t("location.zoom_out"), filled=False, tint=ON_DARK)
            self.zoom_in = FlatButton(text=i18n.t("location.zoom_in"), filled=False, tint=ON_DARK)
            self.whole = FlatButton(text=i18n.t("location.show_grids"), filled=False, tint=ON_DARK)
            self.zoom_out.bind(on_release=lambda *_: self.map.zoom_by(-1))
            self.zoom_in.bind(on_release=lambda *_: self.map.zoom_by(1))
            self.whole.bind(on_release=lambda *_: (self.map.fit(), self.map.redraw()))
            for button in (self.zoom_out, self.zoom_in, self.whole):
                zoom.add_widget(button)
            left.add_widget(self.map)
            left.add_widget(zoom)
            row.add_widget(left)
            self.bind(on_dismiss=lambda *_: self.map.close())
        box = BoxLayout(orientation="vertical", spacing=dp(10), size_hint_x=0.34 if self.map else 1)
        self.lat = Field(multiline=False, input_filter="float", hint_text=i18n.t("location.lat"))
        self.lon = Field(multiline=False, input_filter="float", hint_text=i18n.t("location.lon"))
        if known:
            self.lat.text, self.lon.text = f"{reading.lat:.6f}", f"{reading.lon:.6f}"
        # What the map can show: said, so a plain background is not taken for a fault.
        self.note = Text(tint=ON_DARK, font_size=sp(18), text=self._note(area))
        self.error = Text(tint=ON_DARK_ERROR)
        buttons = GridLayout(cols=2, spacing=dp(12), size_hint_y=None, height=dp(64))
        cancel = FlatButton(text=i18n.t("common.cancel"), filled=False, tint=ON_DARK)
        self.ok = FlatButton(text=i18n.t("common.ok"))
        cancel.bind(on_release=lambda *_: self.dismiss())
        self.ok.bind(on_release=lambda *_: self.confirm())
        buttons.add_widget(cancel)
        buttons.add_widget(self.ok)
        # Kivy's popup is dark: its labels are light (the app's dark text could not be read there).
        for widget in (self.note, Text(text=i18n.t("location.lat"), tint=ON_DARK), self.lat,
                       Text(text=i18n.t("location.lon"), tint=ON_DARK), self.lon,
                       self.error, buttons):
            box.add_widget(widget)
        row.add_widget(box)
        self.content = row

    @staticmethod
    def _note(area: Any) -> str:
        if area is None:
            return ""
        if not (area.outlines or area.tiles_path):
            return i18n.t("location.no_map")
        lines = [i18n.t("location.map_hint")]
        if not area.outlines:
            lines.append(i18n.t("location.no_outlines"))
        if area.tiles_problem:
            lines.append(i18n.t("location.tiles_missing"))
        elif not area.tiles_path:
            lines.append(i18n.t("location.no_tiles"))
        return "\n".join(lines)

    def picked(self, lat: float, lon: float) -> None:
        """A tap on the map: the fields show the position (OK keeps it)."""
        self.lat.text, self.lon.text = f"{lat:.6f}", f"{lon:.6f}"
        self.error.text = ""

    def confirm(self) -> None:
        """Check the numbers and hand them over."""
        try:
            lat, lon = float(self.lat.text), float(self.lon.text)
        except ValueError:
            lat = lon = float("nan")
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            self.error.text = i18n.t("location.invalid")
            return
        self.dismiss()
        self.on_ok(lat, lon)


class ConfirmPopup(Popup):
    """A question with Cancel and a button that does it (e.g. "搬离", "放弃修改"): nothing happens without a yes."""

    def __init__(self, question: str, yes_text: str, on_yes: Callable[[], None], *, danger: bool = False,
                 **kwargs: Any):
        super().__init__(title=yes_text, size_hint=(None, None), size=(dp(640), dp(320)), title_size=sp(22),
                         auto_dismiss=False, **kwargs)
        self.on_yes = on_yes
        box = BoxLayout(orientation="vertical", spacing=dp(10), padding=dp(8))
        self.question = Text(text=question, tint=ON_DARK, font_size=sp(22))
        buttons = GridLayout(cols=2, spacing=dp(12), size_hint_y=None, height=dp(72))
        self.cancel = FlatButton(text=i18n.t("common.cancel"), filled=False, tint=ON_DARK)
        self.yes = FlatButton(text=yes_text, **({"tint": DANGER, "tint_down": DANGER} if danger else {}))
        self.cancel.bind(on_release=lambda *_: self.dismiss())
        self.yes.bind(on_release=lambda *_: self.confirm())
        buttons.add_widget(self.cancel)
        buttons.add_widget(self.yes)
        box.add_widget(self.question)
        box.add_widget(buttons)
        self.content = box

    def confirm(self) -> None:
        self.dismiss()
        self.on_yes()


def ask_confirm(question: str, yes_text: str, on_yes: Callable[[], None], *, danger: bool = False) -> ConfirmPopup:
    """Ask before doing something the worker would regret; on_yes() only after the yes button."""
    popup = ConfirmPopup(question, yes_text, on_yes, danger=danger)
    popup.open()
    return popup


def ask_location(reading: Any, on_ok: Callable[[float, float], None], area: Any = None) -> LocationPopup:
    """Open the manual position popup, with the map of ``area`` (presenters.MapArea) when given;
    on_ok(lat, lon) when confirmed."""
    popup = LocationPopup(reading, on_ok, area)
    popup.open()
    return popup

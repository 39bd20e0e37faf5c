"""Settings: the language (中文 by default, English), the size photos are kept at, how much room the cases'
photos fetched for verification may take (and how much they do), the patrol track interval, the server's address,
and the offline map (an MBTiles file) the manual position is picked on."""

from __future__ import annotations

from kivy.metrics import dp
from kivy.uix.anchorlayout import AnchorLayout
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout
from kivy.uix.scrollview import ScrollView

from ... import i18n
from ...presenters import InputError, map_tiles_path, set_map_tiles
from ..widgets import MUTED, Card, Field, FlatButton, Text, Title, Toggle
from .base import BaseScreen

LANGUAGE_NAMES = (("zh", "中文"), ("en", "English"))  # each in its own language, so either can be found
PHOTO_SIZES = (1280, 1600, 1920, 2560)
PHOTO_CACHE_MB = (20, 50, 100, 200)  # the cases' photos fetched to verify offline (mobile/evidence.py)
PATROL_INTERVALS = (5, 10, 15, 30, 60)  # seconds between two track points, at most (issue 17)


class SettingsScreen(BaseScreen):
    """The settings form; language applies at once, the rest on Save."""

    title_key = "settings.title"

    def build(self) -> None:
        # The card scrolls: with the photo, cache and patrol settings it is taller than a tablet held sideways.
        holder = AnchorLayout(anchor_x="center", anchor_y="top")
        scroll = ScrollView(do_scroll_x=False, size_hint_x=None, width=dp(780), bar_width=dp(8))
        column = BoxLayout(orientation="vertical", size_hint_y=None, padding=[0, 0, dp(12), dp(12)])
        column.bind(minimum_height=column.setter("height"))
        scroll.add_widget(column)
        holder.add_widget(scroll)
        card = Card(size_hint_x=None, width=dp(760))
        self.language_title = Title()
        languages = GridLayout(cols=2, spacing=dp(12), size_hint_y=None, height=dp(64))
        self.language_buttons = {}
        for code, name in LANGUAGE_NAMES:
            button = Toggle(text=name, group="language", allow_no_selection=False)
            button.bind(on_release=lambda b, code=code: self.choose_language(code))
            self.language_buttons[code] = button
            languages.add_widget(button)
        self.size_title = Title()
        sizes = GridLayout(cols=len(PHOTO_SIZES), spacing=dp(12), size_hint_y=None, height=dp(64))
        self.size_buttons = {}
        for size in PHOTO_SIZES:
            button = Toggle(text=str(size), group="photo_size", allow_no_selection=False)
            self.size_buttons[size] = button
            sizes.add_widget(button)
        self.cache_title = Title()
        caches = GridLayout(cols=len(PHOTO_CACHE_MB), spacing=dp(12), size_hint_y=None, height=dp(64))
        self.cache_buttons = {}
        for size in PHOTO_CACHE_MB:
            button = Toggle(text=f"{size} MB", group="photo_cache", allow_no_selection=False)
            self.cache_buttons[size] = button
            caches.add_widget(button)
        self.cache_use = Text(tint=MUTED)
        self.server_title = Title()
        self.server = Field(multiline=False, input_type="url")
        self.tiles_title = Title()
        self.tiles = Field(multiline=False)
        self.save_button = FlatButton()
        self.save_button.bind(on_release=lambda *_: self.save())
        self.interval_title = Title()
        intervals = GridLayout(cols=len(PATROL_INTERVALS), spacing=dp(12), size_hint_y=None, height=dp(64))
        self.interval_buttons = {}
        for seconds in PATROL_INTERVALS:
            button = Toggle(text=str(seconds), group="patrol_interval", allow_no_selection=False)
            self.interval_buttons[seconds] = button
            intervals.add_widget(button)
        for widget in (self.language_title, languages, self.size_title, sizes, self.cache_title, caches,
                       self.cache_use, self.interval_title, intervals, self.server_title, self.server,
                       self.tiles_title, self.tiles, self.save_button):
            card.add_widget(widget)
        column.add_widget(card)
        self.body.add_widget(holder)

    def refresh(self) -> None:
        super().refresh()
        settings = self.core.settings
        self.language_title.text = i18n.t("settings.language")
        self.size_title.text = i18n.t("settings.photo_size")
        self.server_title.text = i18n.t("settings.server")
        self.save_button.text = i18n.t("common.save")
        for code, button in self.language_buttons.items():
            button.state = "down" if code == settings.language else "normal"
        for size, button in self.size_buttons.items():
            button.state = "down" if size == settings.photo_max_px else "normal"
        self.server.text = settings.server_url or ""
        self.tiles_title.text = i18n.t("settings.map_tiles")
        self.tiles.text = map_tiles_path(self.core) or ""
        self.cache_title.text = i18n.t("settings.photo_cache_title")
        for size, button in self.cache_buttons.items():
            button.state = "down" if size == settings.photo_cache_mb else "normal"
        self.cache_use.text = i18n.t("settings.photo_cache", used=i18n.size_text(self.core.photo_cache_use()),
                                     limit=i18n.size_text(settings.photo_cache_mb * 1024 * 1024))
        self.interval_title.text = i18n.t("settings.patrol_interval")
        for seconds, button in self.interval_buttons.items():
            button.state = "down" if seconds == settings.patrol_interval_s else "normal"

    def choose_language(self, code: str) -> None:
        """Switch at once: every screen redraws in the new language."""
        self.core.save_settings(language=code)
        i18n.set_language(code)

    def save(self) -> None:
        """Keep the photo size, the cache, the interval, the server address and the offline map."""
        size = next((s for s, b in self.size_buttons.items() if b.state == "down"), None)
        changes = {"server_url": self.server.text.strip() or None}
        if size:
            changes["photo_max_px"] = size
        cache = next((s for s, b in self.cache_buttons.items() if b.state == "down"), None)
        if cache:
            changes["photo_cache_mb"] = cache
        interval = next((s for s, b in self.interval_buttons.items() if b.state == "down"), None)
        if interval:
            changes["patrol_interval_s"] = interval
        try:
            if self.tiles.text.strip() != (map_tiles_path(self.core) or ""):
                set_map_tiles(self.core, self.tiles.text)  # checked first: a file that is no map is refused
            self.core.save_settings(**changes)
        except InputError as exc:
            self.say(i18n.error_text(exc.field, exc.code), "error")
            return
        except ValueError as exc:
            self.say(str(exc), "error")
            return
        self.say(i18n.t("settings.saved"), "ok")

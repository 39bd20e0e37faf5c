"""What every screen shares: the header bar, a background, a notice line, and refresh on language change."""

from __future__ import annotations

from typing import Any

from kivy.metrics import dp
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.screenmanager import Screen

from ... import i18n
from ..widgets import DANGER, MUTED, OK, HeaderBar, Text, paint_background

__all__ = ["BaseScreen"]


class BaseScreen(Screen):
    """A screen: header (title, back), a body the subclass fills, and a notice line at the bottom.

    ``refresh()`` sets every text and reads the presenters again; it runs on entering the
    screen, after a language switch and after a sync.
    """

    title_key = ""
    back_to: str | None = "home"

    def __init__(self, app: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.app = app
        root = BoxLayout(orientation="vertical")
        paint_background(root)
        self.header = HeaderBar(on_back=self.go_back if self.back_to else None)
        root.add_widget(self.header)
        self.body = BoxLayout(orientation="vertical", padding=[dp(24), dp(16)], spacing=dp(12))
        root.add_widget(self.body)
        self.notice = Text(tint=MUTED, padding=[dp(24), dp(4)])
        root.add_widget(self.notice)
        self.add_widget(root)
        self.build()

    @property
    def core(self):
        """The app's AppCore."""
        return self.app.core

    def build(self) -> None:
        """Make the widgets (once)."""

    def prepare(self, **params: Any) -> None:
        """Take parameters before the screen is shown (a case id, a message)."""

    def on_pre_enter(self, *args: Any) -> None:
        """Kivy: the screen is about to show; read everything again."""
        self.refresh()

    def on_leave(self, *args: Any) -> None:
        """Kivy: the screen was left; its notice ("saved", an error) was about what happened here."""
        self.say("")

    def refresh(self) -> None:
        """Set every text in the current language and read the presenters again."""
        self.header.title = i18n.t(self.title_key)
        if self.header.back is not None:
            self.header.back.text = i18n.t("common.back")

    def go_back(self) -> None:
        """The header's back button."""
        self.app.go(self.back_to)

    def say(self, text: str, kind: str = "info") -> None:
        """One line at the bottom of the screen: info, ok or error."""
        self.notice.tint = {"error": DANGER, "ok": OK}.get(kind, MUTED)
        self.notice.text = text

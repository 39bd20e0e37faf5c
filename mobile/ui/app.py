"""The field app: a ScreenManager of thin screens over AppCore, the presenters and one SyncRunner.

Screens hold no business rule: they read presenters (mobile/presenters.py),
call them, and translate the codes they answer (mobile/i18n.py). The one rule
about threads: work off the UI thread (sync, log-in) reaches widgets only
through `schedule`, which is ``Clock.schedule_once``.

Flow: no device token -> Log-in (online once); then Home, which opens without
a network from then on. A sync that ends with ``needs_login`` (the server
refused the token) shows Log-in again; the store keeps every unsynced
capture, and the sync after the log-in sends them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from kivy.app import App
from kivy.clock import Clock
from kivy.core.window import Window
from kivy.logger import Logger
from kivy.uix.screenmanager import NoTransition, ScreenManager

from .. import i18n
from ..app_core import AppCore, SyncOutcome, SyncRunner
from .fonts import register_cjk_font
from .widgets import BACKGROUND

__all__ = ["GridPatrolApp", "schedule"]

EDITING = ("report", "case", "dispute", "dispute_report")  # screens with a form the worker may be filling in


def schedule(fn: Callable[[], None]) -> None:
    """Run fn on the UI thread at the next frame (the only way background work reaches widgets)."""
    Clock.schedule_once(lambda dt: fn())


def _ask_android_permissions() -> None:
    """Android 6+: camera and location are granted at runtime; ask once at start (the answer comes later)."""
    from ..location import on_android

    if not on_android():
        return
    try:
        from android.permissions import Permission, request_permissions  # python-for-android's module
    except ImportError:
        return
    request_permissions([Permission.CAMERA, Permission.ACCESS_FINE_LOCATION, Permission.ACCESS_COARSE_LOCATION])


class GridPatrolApp(App):
    """The grid worker's tablet app."""

    title = "GridPatrol 网格巡查"

    def __init__(self, data_dir: str | os.PathLike[str], *, server_url: str | None = None,
                 core: AppCore | None = None, core_options: dict[str, Any] | None = None,
                 sync_interval_s: float = 60.0, background_sync: bool = True,
                 photo_dir: str | os.PathLike[str] | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.data_dir = Path(data_dir)
        self.default_server_url = server_url
        self.core = core
        self.core_options = core_options or {}
        self.sync_interval_s = sync_interval_s
        self.background_sync = background_sync
        self.photo_dir = str(photo_dir) if photo_dir else None  # where the desktop file chooser opens
        self.runner: SyncRunner | None = None
        self.font_path = None
        self.screens: dict[str, Any] = {}
        self._language_unsubscribe: Callable[[], None] | None = None
        self.login_pending = False  # the token was refused while the worker was filling a form

    # --- life ---------------------------------------------------------------------------------

    def build(self):
        """Open the core, make the screens, start on Log-in or Home."""
        from .screens import SCREENS

        self.font_path = register_cjk_font()
        Window.clearcolor = BACKGROUND
        # The on-screen keyboard never covers the field being typed: the window moves up until it is above it.
        Window.softinput_mode = "below_target"
        if self.core is None:
            _ask_android_permissions()  # before the core starts GPS
            self.core = AppCore(self.data_dir, **self.core_options)
        if self.default_server_url and not self.core.settings.server_url:
            self.core.save_settings(server_url=self.default_server_url)
        i18n.set_language(self.core.settings.language)
        self.runner = SyncRunner(self.core, schedule, interval_s=self.sync_interval_s)
        self.runner.on_progress(self._on_sync_progress)
        self.runner.on_finished(self._on_sync_finished)
        self.sm = ScreenManager(transition=NoTransition())
        for name, cls in SCREENS.items():
            screen = cls(self, name=name)
            self.screens[name] = screen
            self.sm.add_widget(screen)
        self._language_unsubscribe = i18n.on_change(self._on_language)
        if self.core.needs_login:
            self.sm.current = "login"
        else:
            self.sm.current = "home"
            self._start_background()
        return self.sm

    def on_pause(self) -> bool:
        """Android: keep the app (and its store) alive while the camera activity is in front."""
        return True

    def on_stop(self) -> None:
        """Stop sync, then close the store: a cut sync resumes next time."""
        if self._language_unsubscribe:
            self._language_unsubscribe()
        if self.runner is not None:
            self.runner.stop()
        if self.core is not None:
            self.core.close()

    # --- navigation ---------------------------------------------------------------------------

    def go(self, name: str, **params: Any) -> None:
        """Show a screen; params go to its ``prepare`` before it refreshes."""
        if self.login_pending and name not in EDITING and name != "settings":
            name, params = "login", {}
        screen = self.screens[name]
        if params:
            screen.prepare(**params)
        if self.sm.current == name:
            screen.refresh()
        else:
            self.sm.current = name

    def screen(self, name: str):
        """One of the screens (for tests and for screens that call each other)."""
        return self.screens[name]

    def _on_language(self, code: str) -> None:
        for screen in self.screens.values():
            screen.refresh()

    # --- log-in -------------------------------------------------------------------------------

    def logged_in(self) -> None:
        """After a successful log-in: Home, and a sync to send what waited and fetch the grids."""
        self.login_pending = False
        self.go("home")
        self._start_background()
        self.runner.sync_now()

    def _start_background(self) -> None:
        if self.background_sync:
            self.runner.start_background()

    # --- sync ---------------------------------------------------------------------------------

    def sync_now(self) -> bool:
        """Start a sync unless one runs; never blocks."""
        started = self.runner.sync_now()
        self.screens["sync"].sync_started(started)
        return started

    def _on_sync_progress(self, phase: str, done: int, total: int | None) -> None:
        self.screens["sync"].show_progress(phase, done, total)

    def _on_sync_finished(self, outcome: SyncOutcome) -> None:
        Logger.info("GridPatrol: sync finished ok=%s pushed=%s pulled=%s error=%s", outcome.ok, outcome.pushed,
                    outcome.pulled, outcome.error)
        self.screens["sync"].show_outcome(outcome)
        if outcome.needs_login:
            self.screens["login"].prepare(again=True)
            if self.sm.current in EDITING:
                # Never pull a half-filled form from under the worker: log-in comes when they leave it.
                self.login_pending = True
                self.screens[self.sm.current].say(i18n.t("sync.needs_login"), "error")
            else:
                self.go("login")
            return
        current = self.screens.get(self.sm.current)
        if current is not None and current.name in ("home", "cases", "case", "sync", "disputes"):
            current.refresh()

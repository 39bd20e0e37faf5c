"""Home: today's grids, what has not synced yet, the last sync, and the large buttons of the day's work.

Home's figures come from `HomePresenter.view`, which folds the worker's cases (for "N awaiting my
verification"): the first time after the app starts that takes over a second with thousands of cases,
so the view is made off the UI thread (`ScreenLoad`, mobile/ui/loading.py). The buttons work meanwhile; the
status card shows a loading line until the figures arrive.
"""

from __future__ import annotations

from typing import Any

from kivy.metrics import dp, sp
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout

from ... import i18n
from ...presenters import HomePresenter, HomeView
from ..format import local_time
from ..loading import ScreenLoad
from ..widgets import DANGER, MUTED, OK, WARN, BigButton, Card, FlatButton, Text, Title, scrolling_column
from .base import BaseScreen
from .patrol import PatrolCard
from .places import HomePlacesCard


def outcome_text(outcome) -> tuple[str, str]:
    """A sync outcome in words, with how to colour it (ok, warn, error)."""
    if outcome is None:
        return i18n.t("common.never"), "info"
    if outcome.needs_login:
        return i18n.t("sync.needs_login"), "error"
    if outcome.ok:
        photos = getattr(outcome, "photos_uploaded", 0)
        text = i18n.t("sync.ok_photos", pushed=outcome.pushed, photos=photos, pulled=outcome.pulled) if photos \
            else i18n.t("sync.ok", pushed=outcome.pushed, pulled=outcome.pulled)
        sep = "；" if i18n.language() == "zh" else "; "
        kind = "ok"
        if outcome.rejected:
            text, kind = text + sep + i18n.t("sync.rejected_count", count=outcome.rejected), "warn"
        if outcome.photos_failed:
            text, kind = text + sep + i18n.t("sync.photos_failed", count=outcome.photos_failed), "warn"
        return text, kind
    if getattr(outcome, "uploads_done", False) and not getattr(outcome, "pull_done", True):
        # Everything this tablet had to send went through; only the download is unfinished (issue 20).
        return i18n.t("sync.partial", pushed=outcome.pushed, photos=getattr(outcome, "photos_uploaded", 0),
                      pulled=outcome.pulled), "warn"
    error = outcome.error or ""
    if "ConnectionError" in error or "Timeout" in error or "TransportError" in error or "offline" in error:
        return i18n.t("sync.offline"), "warn"
    return i18n.t("sync.failed", error=error), "error"


class HomeScreen(BaseScreen):
    """The start of every day."""

    title_key = "app.title"
    back_to = None

    def build(self) -> None:
        self.settings_button = FlatButton(size_hint=(None, None), width=dp(160), height=dp(60), filled=False,
                                          tint=(1, 1, 1, 1))
        self.settings_button.bind(on_release=lambda *_: self.app.go("settings"))
        self.header.add_widget(self.settings_button)

        row = BoxLayout(spacing=dp(24))
        status = Card()
        self.user = Title()
        self.grids_title = Text(tint=MUTED)
        self.grids = Text(font_size=sp(24))
        self.unsynced = Text(font_size=sp(22))
        self.rejected = Text(tint=DANGER)
        self.last_sync = Text(tint=MUTED)
        self.last_result = Text()
        for widget in (self.user, self.grids_title, self.grids, self.unsynced, self.rejected, self.last_sync,
                       self.last_result):
            status.add_widget(widget)
        self.status = status
        self.last_view: HomeView | None = None  # the last view that arrived
        self.load = ScreenLoad(self, status, 0, lambda: HomePresenter(self.core).view(), self._arrived)
        # The cards keep their height, from the top; the column scrolls when they are more than the screen
        # (many grids, a refusal line, a plan per grid).
        column = scrolling_column(row, 0.42, spacing=dp(16))
        column.add_widget(status)
        self.patrol_card = PatrolCard(self.app)  # today's patrol and the plan (issue 17, screens/patrol.py)
        column.add_widget(self.patrol_card)
        # Disputes (矛盾纠纷): the list, and reporting one (mobile/ui/screens/disputes.py).
        disputes = GridLayout(cols=2, spacing=dp(12), size_hint_y=None, height=dp(80))
        self.disputes = FlatButton(height=dp(80), font_size=sp(24))
        self.report_dispute = FlatButton(height=dp(80), font_size=sp(24), filled=False)
        self.disputes.bind(on_release=lambda *_: self.app.go("disputes"))
        self.report_dispute.bind(on_release=lambda *_: self.app.go("dispute_report", fresh=True))
        disputes.add_widget(self.disputes)
        disputes.add_widget(self.report_dispute)
        column.add_widget(disputes)
        self.places = HomePlacesCard(self.app)  # key places due or overdue (screens/places.py)
        column.add_widget(self.places)

        actions = GridLayout(cols=2, spacing=dp(20), size_hint_x=0.58)
        self.report = BigButton(height=dp(250))
        self.cases = BigButton(height=dp(250))
        self.sync = BigButton(height=dp(250))
        self.houses = BigButton(height=dp(250))
        self.houses.bind(on_release=lambda *_: self.app.go("houses"))
        self.report.bind(on_release=lambda *_: self.app.go("report", fresh=True))
        self.cases.bind(on_release=lambda *_: self.app.go("cases"))
        self.sync.bind(on_release=lambda *_: self.open_sync())
        for button in (self.report, self.cases, self.sync, self.houses):
            actions.add_widget(button)
        row.add_widget(actions)
        self.body.add_widget(row)

    def open_sync(self) -> None:
        """Show the Sync screen and start a sync."""
        self.app.go("sync")
        self.app.sync_now()

    def refresh(self) -> None:
        super().refresh()
        self.settings_button.text = i18n.t("home.settings")
        self.report.text = i18n.t("home.report")
        self.cases.text = i18n.t("home.cases")
        self.cases.halign = "center"
        self.sync.text = i18n.t("home.sync")
        self.houses.text = i18n.t("home.houses")
        self.patrol_card.refresh()
        self.disputes.text = i18n.t("home.disputes")
        self.report_dispute.text = i18n.t("home.report_dispute")
        self.places.refresh()
        if self.core.needs_login and self.core.user is None:
            self.load.cancel()
            self.last_view = None
            return
        if self.last_view is not None:
            self.show(self.last_view)  # the last figures, in the current language, until the new ones arrive
        if self.load.shown():
            self.load.start()
        else:
            self.load.cancel()  # read again when shown

    def on_leave(self, *args: Any) -> None:
        super().on_leave(*args)
        if not self.load.shown():
            self.load.cancel()

    def _arrived(self, view: HomeView) -> None:
        """On the UI thread: the view made off it."""
        self.last_view = view
        self.show(view)

    def show(self, view: HomeView) -> None:
        """Set the status card and the cases button from a view."""
        self.cases.text = i18n.t("home.cases")
        self.user.text = i18n.t("home.user", name=view.user_name or "")
        if view.awaiting_me:
            self.cases.text = i18n.t("home.cases") + "\n" + i18n.t("home.awaiting", count=view.awaiting_me)
        self.grids_title.text = i18n.t("home.grids")
        if view.grids:
            wrap = "（{}）" if i18n.language() == "zh" else " ({})"
            self.grids.text = "\n".join(
                (g.name or g.code) + (wrap.format(g.community) if g.community else "") for g in view.grids)
        else:
            self.grids.text = i18n.t("home.no_grids")
        self.unsynced.text = i18n.t("home.unsynced", records=view.unsynced_records, photos=view.unsynced_photos)
        self.unsynced.tint = WARN if (view.unsynced_records or view.unsynced_photos) else OK
        self.rejected.text = i18n.t("home.rejected", count=view.rejected) if view.rejected else ""
        self.last_sync.text = i18n.t("home.last_sync", when=local_time(view.last_success_ms))
        text, kind = outcome_text(view.last_sync)
        self.last_result.text = i18n.t("home.last_result", result=text)
        self.last_result.tint = {"ok": OK, "warn": WARN, "error": DANGER}.get(kind, MUTED)

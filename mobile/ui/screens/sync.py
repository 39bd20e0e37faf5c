"""Sync: a progress bar by phase (push, pull, photos), the changes the server refused with its reasons, retry.

The sync itself runs in SyncRunner's worker thread; this screen only hears
about it through the app's listeners, which SyncRunner calls through
Clock.schedule_once, so the UI never waits for the network.
"""

from __future__ import annotations

import time
from typing import Any

from kivy.graphics import Color, RoundedRectangle
from kivy.metrics import dp, sp
from kivy.properties import NumericProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout
from kivy.uix.scrollview import ScrollView
from kivy.uix.widget import Widget

from ... import i18n
from ...presenters import SyncPresenter
from ..format import local_time, short_id
from ..widgets import DANGER, MUTED, OK, WARN, Card, FlatButton, Text, Title
from .base import BaseScreen
from .home import outcome_text

PHASES = ("push", "pull", "photos")  # the order synchronize runs them: records both ways, then photos


def overall(phase: str, done: int, total: int | None) -> float:
    """Progress of the whole sync, 0..100: each phase one third; a pull of unknown length creeps toward its end."""
    index = PHASES.index(phase) if phase in PHASES else 0
    if total:
        part = min(1.0, done / total)
    elif total == 0:
        part = 1.0
    else:
        part = done / (done + 500.0)  # unknown total: never full until the last page says so
    return 100.0 * (index + part) / len(PHASES)


def progress_text(phase: str, done: int, total: int | None) -> str:
    """How far a phase is: photos in bytes as people read them (1.2 MB / 3.5 MB), records as counts (40 / 120)."""
    show = i18n.size_text if phase == "photos" else str
    return show(done) + (f" / {show(total)}" if total else "")


class ThickBar(Widget):
    """A progress bar a finger's width tall (Kivy's ProgressBar draws a thin line whatever its height)."""

    value = NumericProperty(0)
    max = NumericProperty(100)

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("size_hint_y", None)
        kwargs.setdefault("height", dp(40))
        super().__init__(**kwargs)
        with self.canvas:
            Color(0.86, 0.89, 0.93, 1)
            self._back = RoundedRectangle(radius=[dp(10)])
            Color(0.08, 0.4, 0.75, 1)
            self._front = RoundedRectangle(radius=[dp(10)])
        self.bind(pos=self._draw, size=self._draw, value=self._draw, max=self._draw)

    def _draw(self, *_: Any) -> None:
        share = max(0.0, min(1.0, self.value / self.max)) if self.max else 0.0
        self._back.pos, self._back.size = self.pos, self.size
        self._front.pos, self._front.size = self.pos, (self.width * share, self.height)


def button_text(counts: Any, failed: bool) -> str:
    """What the sync button will do: send how many records and photos, then download (or only download)."""
    if failed and (counts.unsynced_records or counts.unsynced_photos):
        return i18n.t("sync.retry_what", records=counts.unsynced_records, photos=counts.unsynced_photos)
    if counts.unsynced_records or counts.unsynced_photos:
        return i18n.t("sync.now_what", records=counts.unsynced_records, photos=counts.unsynced_photos)
    return i18n.t("sync.now_download")


class SyncScreen(BaseScreen):
    """The sync screen."""

    title_key = "sync.title"

    def build(self) -> None:
        self.phase: str | None = None
        self.running = False
        self.outcome = None
        top = Card()
        self.state = Title()
        self.bar = ThickBar(height=dp(40))
        self.detail = Text(tint=MUTED, font_size=sp(22))
        self.sent = self.received = 0
        self.photo_files: tuple[int, int] | None = None
        self.fetched: tuple[int, int] = (0, 0)  # the cases' photos fetched at the end of a sync
        self._counted_at = 0.0
        self.counts = Text(font_size=sp(22))
        self.retry = FlatButton(height=dp(80), font_size=sp(26))
        self.retry.bind(on_release=lambda *_: self.app.sync_now())
        for widget in (self.state, self.bar, self.detail, self.counts, self.retry):
            top.add_widget(widget)
        self.body.add_widget(top)
        self.rejections_title = Title()
        self.body.add_widget(self.rejections_title)
        scroll = ScrollView(do_scroll_x=False, bar_width=dp(8))
        self.rejections = GridLayout(cols=1, spacing=dp(8), size_hint_y=None)
        self.rejections.bind(minimum_height=self.rejections.setter("height"))
        scroll.add_widget(self.rejections)
        self.body.add_widget(scroll)

    def _presenter(self) -> SyncPresenter:
        return SyncPresenter(self.core, self.app.runner)

    # --- from the app's sync listeners (UI thread) ---------------------------------------------

    def sync_started(self, started: bool) -> None:
        """A sync was asked for (started False: one was already running)."""
        self.running = True
        self.phase = self.phase or "push"
        if started:
            self.bar.value = 0
            self.sent = self.received = 0
            self.photo_files = None
            self.fetched = (0, 0)
        self.refresh()

    def show_progress(self, phase: str, done: int, total: int | None) -> None:
        """SyncRunner's progress, through Clock."""
        self.running = True
        if phase == "photo_files":  # photos counted as people count them; the bar follows the bytes
            self.photo_files = (done, total or 0)
        elif phase == "thumbnails":  # the cases' photos fetched at the end: the sync's own work is done
            self.phase = phase
            self.bar.value = 100
            self.photo_files = None
            self.fetched = (done, total or 0)
        else:
            self.phase = phase
            self.bar.value = overall(phase, done, total)
            if phase == "push":
                self.sent = max(self.sent, done)
            elif phase == "pull":
                self.received = done
        lines = [i18n.t("sync.records_progress", sent=self.sent, received=self.received)]
        if self.photo_files is not None and self.photo_files[1]:
            lines.insert(0, i18n.t("sync.photos_progress", done=self.photo_files[0], total=self.photo_files[1]))
        if self.phase == "thumbnails" and self.fetched[1]:
            lines.insert(0, i18n.t("sync.fetch_progress", done=self.fetched[0], total=self.fetched[1]))
        self.detail.text = "\n".join(lines)
        self.state.text = i18n.t("sync.running", phase=i18n.phase_name(self.phase or "push"))
        now = time.monotonic()
        if now - self._counted_at > 0.5:  # the unsynced counts go down as the sync goes, twice a second at most
            self._counted_at = now
            self._show_counts(self._presenter().counts())

    def show_outcome(self, outcome: Any) -> None:
        """SyncRunner's outcome, through Clock."""
        self.running = False
        self.outcome = outcome
        self.phase = None
        if outcome.ok:
            self.bar.value = 100
        self.refresh()

    # --- drawing --------------------------------------------------------------------------------

    def refresh(self) -> None:
        super().refresh()
        presenter = self._presenter()
        counts = presenter.counts()
        self.retry.text = button_text(counts, self.outcome is not None and not self.outcome.ok)
        self.retry.disabled = self.running
        if self.running:
            self.state.text = i18n.t("sync.running", phase=i18n.phase_name(self.phase or "push"))
            self.state.color = (0.08, 0.4, 0.75, 1)
        else:
            outcome = self.outcome or presenter.last_sync()
            text, kind = outcome_text(outcome) if outcome is not None else (i18n.t("sync.idle"), "info")
            self.state.text = text
            self.state.color = {"ok": OK, "warn": WARN, "error": DANGER}.get(kind, (0.12, 0.16, 0.2, 1))
            if outcome is not None:
                self.detail.text = local_time(outcome.finished_at_ms)
        self._show_counts(counts)
        self.rejections_title.text = i18n.t("sync.rejections")
        self.rejections.clear_widgets()
        rows = presenter.rejections()
        if not rows:
            self.rejections.add_widget(Text(text=i18n.t("sync.no_rejections"), tint=MUTED))
        for row in rows:
            line = BoxLayout(size_hint_y=None, height=dp(88), spacing=dp(12))
            what = i18n.t("sync.rejection_line", kind=i18n.kind_name(row.kind),
                          record=row.summary or short_id(row.record_id),
                          reason=i18n.refusal_text(row.code, row.reason))
            line.add_widget(Text(text=f"{what}\n{local_time(row.at)}", tint=DANGER, size_hint_y=None, height=dp(88)))
            if row.event_id:  # a case: mend it on its page
                show = FlatButton(text=i18n.t("sync.open"), filled=False, size_hint_x=None, width=dp(120))
                show.bind(on_release=lambda *_, eid=row.event_id: self.app.go("case", event_id=eid))
                line.add_widget(show)
            resend = FlatButton(text=i18n.t("case.resend"), filled=False, size_hint_x=None, width=dp(150))
            resend.bind(on_release=lambda *_, seq=row.seq: self.resend(seq))
            line.add_widget(resend)
            dismiss = FlatButton(text=i18n.t("case.discard"), filled=False, tint=DANGER, size_hint_x=None,
                                 width=dp(150))
            dismiss.bind(on_release=lambda *_, seq=row.seq: self.ask_discard(seq))
            line.add_widget(dismiss)
            self.rejections.add_widget(line)

    def _show_counts(self, counts: Any) -> None:
        self.counts.text = i18n.t("sync.unsynced", records=counts.unsynced_records, photos=counts.unsynced_photos)

    def resend(self, seq: int) -> None:
        """Send a refused record again as it is (mended elsewhere, or its cause gone)."""
        self._presenter().resend(seq)
        self.refresh()

    def ask_discard(self, seq: int) -> None:
        from ..pickers import ask_confirm

        self.confirm_popup = ask_confirm(i18n.t("case.discard_confirm"), i18n.t("case.discard"),
                                         lambda: self.dismiss(seq), danger=True)

    def dismiss(self, seq: int) -> None:
        """The worker gives up a refused change: the record goes back to what the server holds."""
        self._presenter().discard(seq)
        self.refresh()

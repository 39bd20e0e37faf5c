"""Sync: a progress bar by phase (push, pull, photos), the changes the server refused with its reasons, retry.

The sync itself runs in SyncRunner's worker thread; this screen only hears
about it through the app's listeners, which SyncRunner calls through
Clock.schedule_once, so the UI never waits for the network.
"""

from __future__ import annotations

from typing import Any

from kivy.metrics import dp, sp
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout
from kivy.uix.progressbar import ProgressBar
from kivy.uix.scrollview import ScrollView

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


class SyncScreen(BaseScreen):
    """The sync screen."""

    title_key = "sync.title"

    def build(self) -> None:
        self.phase: str | None = None
        self.running = False
        self.outcome = None
        top = Card()
        self.state = Title()
        self.bar = ProgressBar(max=100, value=0, size_hint_y=None, height=dp(36))
        self.detail = Text(tint=MUTED)
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
        self.bar.value = 0 if started else self.bar.value
        self.refresh()

    def show_progress(self, phase: str, done: int, total: int | None) -> None:
        """SyncRunner's progress, through Clock."""
        self.running = True
        self.phase = phase
        self.bar.value = overall(phase, done, total)
        self.detail.text = i18n.labelled(i18n.phase_name(phase), progress_text(phase, done, total))
        self.state.text = i18n.t("sync.running", phase=i18n.phase_name(phase))

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
        self.retry.text = i18n.t("sync.retry" if self.outcome is not None and not self.outcome.ok else "sync.now")
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
        counts = presenter.counts()
        self.counts.text = i18n.t("sync.unsynced", records=counts.unsynced_records, photos=counts.unsynced_photos)
        self.rejections_title.text = i18n.t("sync.rejections")
        self.rejections.clear_widgets()
        rows = presenter.rejections()
        if not rows:
            self.rejections.add_widget(Text(text=i18n.t("sync.no_rejections"), tint=MUTED))
        for row in rows:
            line = BoxLayout(size_hint_y=None, height=dp(88), spacing=dp(12))
            what = i18n.t("sync.rejection_line", kind=i18n.kind_name(row.kind),
                          record=row.summary or short_id(row.record_id), reason=i18n.reason_text(row.reason))
            line.add_widget(Text(text=f"{what}\n{local_time(row.at)}", tint=DANGER, size_hint_y=None, height=dp(88)))
            dismiss = FlatButton(text=i18n.t("sync.dismiss"), filled=False, size_hint_x=None, width=dp(160))
            dismiss.bind(on_release=lambda *_, seq=row.seq: self.dismiss(seq))
            line.add_widget(dismiss)
            self.rejections.add_widget(line)

    def dismiss(self, seq: int) -> None:
        """The worker has read a rejection."""
        self._presenter().dismiss(seq)
        self.refresh()

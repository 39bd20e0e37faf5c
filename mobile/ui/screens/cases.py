"""My cases: every event the worker reported, awaiting-my-verification first, in a RecycleView.

A RecycleView builds widgets only for the rows on screen and reuses them as
the list scrolls, so thousands of cases scroll as smoothly as ten. Rows are
plain dicts made from CasesPresenter's rows (one fold per case, two queries).

The rows are made off the UI thread (`ScreenLoad`, also used by Home): the
first fold after the app starts folds every case, over a second with
thousands of them, and must not freeze the app. Meanwhile a loading line
(a spinner and the seconds) stands where the list will be.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any, Callable

from kivy.clock import Clock
from kivy.lang import Builder
from kivy.logger import Logger
from kivy.metrics import dp
from kivy.properties import BooleanProperty, StringProperty
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.recycleview import RecycleView

from ... import i18n
from ...background import run_off_ui
from ...presenters import CasesPresenter
from ..app import schedule
from ..format import local_time
from ..widgets import DANGER, MUTED, Text
from .base import BaseScreen

ROW_HEIGHT = dp(104)

Builder.load_string("""
<CaseRowView>:
    orientation: 'horizontal'
    padding: [dp(20), dp(10)]
    spacing: dp(16)
    canvas.before:
        Color:
            rgba: (1, 0.957, 0.839, 1) if self.awaiting else ((0.88, 0.92, 0.97, 1) if self.state == 'down' else (1, 1, 1, 1))
        RoundedRectangle:
            pos: self.x, self.y + dp(4)
            size: self.width, self.height - dp(8)
            radius: [dp(10)]
        Color:
            rgba: (0.78, 0.16, 0.16, 1) if self.urgent else ((0.7, 0.42, 0, 1) if self.awaiting else (0, 0, 0, 0))
        Rectangle:
            pos: self.x, self.y + dp(4)
            size: dp(8), self.height - dp(8)
    BoxLayout:
        orientation: 'vertical'
        Label:
            text: root.title
            color: 0.12, 0.16, 0.2, 1
            font_size: '22sp'
            bold: True
            text_size: self.size
            halign: 'left'
            valign: 'middle'
            shorten: True
            shorten_from: 'right'
        Label:
            text: root.subtitle
            color: 0.38, 0.43, 0.49, 1
            font_size: '18sp'
            text_size: self.size
            halign: 'left'
            valign: 'middle'
            shorten: True
            shorten_from: 'right'
    BoxLayout:
        orientation: 'vertical'
        size_hint_x: None
        width: dp(260)
        Label:
            text: root.status_text
            color: (0.7, 0.42, 0, 1) if root.awaiting else (0.08, 0.4, 0.75, 1)
            font_size: '22sp'
            bold: True
            text_size: self.size
            halign: 'right'
            valign: 'middle'
        Label:
            text: root.badges
            color: 0.78, 0.16, 0.16, 1
            font_size: '18sp'
            text_size: self.size
            halign: 'right'
            valign: 'middle'

<CasesList>:
    viewclass: 'CaseRowView'
    bar_width: dp(10)
    scroll_type: ['bars', 'content']
    RecycleBoxLayout:
        default_size: None, dp(104)
        default_size_hint: 1, None
        size_hint_y: None
        height: self.minimum_height
        orientation: 'vertical'
        spacing: dp(4)
""")


class CaseRowView(ButtonBehavior, BoxLayout):
    """One row of the list (reused by the RecycleView for whichever case scrolls into it)."""

    event_id = StringProperty("")
    title = StringProperty("")
    subtitle = StringProperty("")
    status_text = StringProperty("")
    badges = StringProperty("")
    awaiting = BooleanProperty(False)
    urgent = BooleanProperty(False)

    def on_release(self) -> None:
        """Open the case."""
        from kivy.app import App

        App.get_running_app().go("case", event_id=self.event_id)


class CasesList(RecycleView):
    """The RecycleView of cases."""


def row_data(row: Any) -> dict[str, Any]:
    """A CaseRow as the dict a CaseRowView takes."""
    english = i18n.language() == "en"
    name = (row.category_name_en if english and row.category_name_en else row.category_name) or row.category_code
    badges = []
    if row.urgent:
        badges.append(i18n.t("cases.urgent"))
    if row.micro:
        badges.append(i18n.t("cases.micro"))
    if row.failed_verifications:
        badges.append(i18n.t("cases.failed", count=row.failed_verifications))
    status = i18n.t("cases.awaiting") if row.awaiting_me else i18n.status_name(row.status)
    if row.status == "closed" and row.resolution:
        status = f"{status} · {i18n.resolution_name(row.resolution)}"
    return {
        "event_id": row.event_id,
        "title": f"{name}：{row.description}" if not english else f"{name}: {row.description}",
        "subtitle": local_time(row.reported_at),
        "status_text": status,
        "badges": "  ".join(badges),
        "awaiting": row.awaiting_me,
        "urgent": row.urgent,
    }


# --- loading off the UI thread (My cases and Home) -------------------------------------------------

_FOLD_LOCKS: "weakref.WeakKeyDictionary[Any, threading.Lock]" = weakref.WeakKeyDictionary()
_FOLD_LOCKS_GUARD = threading.Lock()
_STALE = object()
SPINNER = ("●○○", "○●○", "○○●")
SPIN_S = 0.25  # the spinner's step
SHOW_AFTER_S = 0.3  # a reload (after a sync, on coming back) shows the line only when it takes this long


class _Failure:
    """The exception a load's work raised, carried to the UI thread as its result."""

    def __init__(self, exc: BaseException):
        self.exc = exc


def fold_lock(core: Any) -> threading.Lock:
    """One lock per AppCore, taken by every off-UI load of Home and My cases.

    The store is thread-safe (one connection, ``check_same_thread=False``, behind its re-entrant lock,
    as the sync thread uses it), but the presenters' memo of folded cases (``core.cache``, and the rows
    it keeps on each fold) is plain dicts and objects: two folds at once would race on it. So loads
    take turns.
    """
    with _FOLD_LOCKS_GUARD:
        lock = _FOLD_LOCKS.get(core)
        if lock is None:
            lock = _FOLD_LOCKS[core] = threading.Lock()
        return lock


class ScreenLoad:
    """A screen's data, made off the UI thread with `run_off_ui`, with a loading line meanwhile.

    ``work()`` runs in a worker thread under `fold_lock`; its result reaches ``on_loaded(result)`` on the
    UI thread through ``schedule`` (Kivy's Clock). Rules:

    * **Stale answers are dropped.** Each `start` (and `cancel`, when the screen is left) starts a new
      generation; an answer of an older one, or one arriving while the screen is not shown, is ignored.
      A work whose generation is already stale when its turn at the lock comes is skipped.
    * **Never two at once** over one AppCore (the lock), so the memo is never folded twice concurrently.
    * **A failure is shown**, not swallowed: the line turns into "could not load: …" in red (and Kivy's
      log has it); the app goes on.
    * **The line**: a spinner and, after a second, the seconds so far; shown at once on the first load,
      and on a reload (whose rows are already on screen) only when it takes longer than SHOW_AFTER_S.
    """

    def __init__(self, screen: Any, container: Any, position: int, work: Callable[[], Any],
                 on_loaded: Callable[[Any], None]):
        self.screen = screen
        self.container = container
        self.position = position  # where the line goes among the container's widgets, from the top
        self.work = work
        self.on_loaded = on_loaded
        self.line = Text(tint=MUTED)
        self.generation = 0
        self.loading = False
        self.loaded = False  # an answer arrived at least once
        self.ticks = 0  # spinner steps of the current load (the UI thread's clock kept running)
        self.error: BaseException | None = None
        self._started = 0.0
        self._ticker: Any = None

    def shown(self) -> bool:
        """Whether the screen is the one on display."""
        manager = self.screen.manager
        return manager is not None and manager.current == self.screen.name

    def start(self) -> None:
        """Load again: supersedes any load in flight."""
        self.generation += 1
        generation = self.generation
        if self.error is not None:
            self._set_line("")  # the last failure's line; the spinner takes its place
        self.loading, self.error, self.ticks = True, None, 0
        self._started = time.monotonic()
        if self._ticker is None:
            self._ticker = Clock.schedule_interval(self._tick, SPIN_S)
        self._tick()
        lock, work = fold_lock(self.screen.core), self.work

        def run() -> Any:
            with lock:
                if generation != self.generation:
                    return _STALE
                try:
                    return work()
                except Exception as exc:  # noqa: BLE001 - shown on the UI thread, not swallowed
                    return _Failure(exc)  # handed over as the result; _done shows it

        run_off_ui(schedule, run, lambda result: self._done(generation, result),
                   lambda exc: self._failed(generation, exc))

    def cancel(self) -> None:
        """Forget the load in flight (the screen was left): its answer will be ignored."""
        self.generation += 1
        self._stop()
        self._set_line("")

    def _done(self, generation: int, result: Any) -> None:
        if isinstance(result, _Failure):
            self._failed(generation, result.exc)
            return
        if result is _STALE or generation != self.generation:
            return
        self._stop()
        if not self.shown():
            self._set_line("")
            return
        self._set_line("")
        self.loaded = True
        self.on_loaded(result)

    def _failed(self, generation: int, exc: BaseException) -> None:
        if generation != self.generation:
            return
        self._stop()
        Logger.error("GridPatrol: loading %s failed: %s: %s", self.screen.name, type(exc).__name__, exc)
        self.error = exc
        self._set_line(i18n.t("common.load_failed", error=f"{type(exc).__name__}: {exc}"), DANGER)

    def _stop(self) -> None:
        self.loading = False
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None

    def _tick(self, *_args: Any) -> None:
        if not self.loading:
            return
        self.ticks += 1
        elapsed = time.monotonic() - self._started
        if self.loaded and elapsed < SHOW_AFTER_S:
            return
        text = i18n.t("common.loading") if elapsed < 1 else i18n.t("common.loading_for", seconds=int(elapsed))
        self._set_line(f"{SPINNER[self.ticks % len(SPINNER)]}  {text}", MUTED)

    def _set_line(self, text: str, tint: Any = MUTED) -> None:
        """Show the line with this text, or take it away ("")."""
        line = self.line
        line.text, line.tint = text, tint
        if text and line.parent is None:
            # Kivy's index counts from the end of the children list, which a BoxLayout draws last (bottom).
            self.container.add_widget(line, index=max(0, len(self.container.children) - self.position))
        elif not text and line.parent is not None:
            line.parent.remove_widget(line)


# --- the screen -------------------------------------------------------------------------------------

class CasesScreen(BaseScreen):
    """The list of the worker's cases."""

    title_key = "cases.title"

    def build(self) -> None:
        self.summary = Text()
        self.list = CasesList()
        self.body.add_widget(self.summary)
        self.body.add_widget(self.list)
        self.load = ScreenLoad(self, self.body, 1, self._rows, self._show)

    def _rows(self) -> tuple[list[dict[str, Any]], int]:
        """In the worker thread: the rows as the list's dicts (in the current language), and how many await me."""
        rows = CasesPresenter(self.core).rows()
        return [row_data(row) for row in rows], sum(1 for row in rows if row.awaiting_me)

    def refresh(self) -> None:
        super().refresh()
        if not self.load.loaded:
            self.summary.text = ""
        if self.load.shown():
            self.load.start()
        else:
            self.load.cancel()  # read again when shown

    def _show(self, answer: tuple[list[dict[str, Any]], int]) -> None:
        """On the UI thread: the rows arrived."""
        data, awaiting = answer
        self.list.data = data
        self.summary.text = i18n.t("cases.count", count=len(data), awaiting=awaiting) if data else \
            i18n.t("cases.empty")

    def on_leave(self, *args: Any) -> None:
        super().on_leave(*args)
        if not self.load.shown():
            self.load.cancel()

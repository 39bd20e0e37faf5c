"""A screen's data made off the UI thread, with a loading line meanwhile (Home and My cases).

Both build from the fold of every one of the worker's cases (shared/case.py): the first time after
the app starts that takes over a second with thousands of cases, which must not freeze the app.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any, Callable

from kivy.clock import Clock
from kivy.logger import Logger

from .. import i18n
from ..background import run_off_ui
from .app import schedule
from .widgets import DANGER, MUTED, Text

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

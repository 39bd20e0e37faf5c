"""Sync in the background: one worker thread at a time, results delivered to the UI thread.

`SyncRunner` runs `mobile.sync.synchronize` off the UI thread, as often as
asked (`sync_now`) and periodically while the tablet is online
(`start_background`). It owns no state the UI reads directly: everything it
has to say (progress, the outcome) reaches listeners only through the
``schedule`` callable the UI gives it, which in the Kivy app is
``lambda fn: Clock.schedule_once(lambda dt: fn())``. That is the app's one
rule about threads: **work off the UI thread reaches the UI only through
schedule** (Kivy widgets may be touched only on the main thread).

Properties:

* **Never blocks.** `sync_now` starts a worker thread and returns at once;
  when a sync is already running it returns False and does nothing.
* **Never two at once.** A runner lock guards the start, and `synchronize`
  itself takes the store's ``sync_lock``, so even two runners over one store
  do not overlap.
* **401 touches nothing queued.** On Unauthorized the token is forgotten
  (``store.forget_token``), the outcome says ``needs_login``, the outbox and
  the photo queue stay as they were; the next sync after a log-in resumes.
* **The last outcome survives a restart.** Each outcome is written to the
  store's meta (``last_sync``; ``last_success_ms`` for the last one that
  ran to the end), so Home shows it after the app was killed.

Hazard: a listener that raises. It runs on the UI thread, inside schedule;
the runner does not catch it there (Kivy would report it). A failure inside
the worker thread, by contrast, is caught and becomes the outcome's
``error``: a background thread that dies silently would leave ``running``
true forever.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass, fields
from typing import Any, Callable, Optional

from shared.hlc import system_ms

from .sync import synchronize
from .transport import Unauthorized

__all__ = ["SyncRunner", "SyncOutcome", "LAST_SYNC_KEY", "LAST_SUCCESS_KEY", "load_outcome", "run_off_ui"]

log = logging.getLogger(__name__)

LAST_SYNC_KEY = "last_sync"
LAST_SUCCESS_KEY = "last_success_ms"

Schedule = Callable[[Callable[[], None]], Any]
ProgressListener = Callable[[str, int, Optional[int]], None]


@dataclass(frozen=True)
class SyncOutcome:
    """What one background sync did, in numbers the Home and Sync screens show.

    ``ok``: it ran to the end. ``needs_login``: the server refused the token;
    nothing queued was touched. ``error``: why it stopped (English, for the
    log; the UI shows its own words for ``ok``/``needs_login``).
    """

    ok: bool
    needs_login: bool
    pushed: int
    pulled: int
    rejected: int
    photos_failed: int
    error: str | None
    finished_at_ms: int
    photos_uploaded: int = 0
    seconds: float = 0.0
    # Per phase (issue 20): a sync that stopped may still have sent everything. uploads_done: the outbox and
    # the photos went through; pull_done: the download ran to its last page; more_to_pull: it did not.
    uploads_done: bool = False
    pull_done: bool = False
    more_to_pull: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The stored (JSON) form."""
        return asdict(self)


def load_outcome(data: Any) -> SyncOutcome | None:
    """A SyncOutcome from its stored form, or None when there is none (or it is unreadable)."""
    if not isinstance(data, dict):
        return None
    known = {f.name for f in fields(SyncOutcome)}
    try:
        return SyncOutcome(**{k: v for k, v in data.items() if k in known})
    except TypeError:
        return None


class SyncRunner:
    """Runs synchronize in a worker thread; progress and outcomes reach listeners only through ``schedule``."""

    def __init__(self, core: Any, schedule: Schedule, *, interval_s: float = 60.0,
                 is_online: Callable[[], bool] | None = None):
        self.core = core
        self.schedule = schedule
        self.interval_s = interval_s
        self.is_online = is_online or (lambda: True)
        self._progress: list[ProgressListener] = []
        self._finished: list[Callable[[SyncOutcome], None]] = []
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._ticker: threading.Thread | None = None
        self._stopping = threading.Event()

    # --- listeners --------------------------------------------------------------------------------

    def on_progress(self, callback: ProgressListener) -> Callable[[], None]:
        """Call ``callback(phase, done, total)`` (through schedule) as a sync moves; returns an unsubscribe."""
        self._progress.append(callback)
        return lambda: self._progress.remove(callback) if callback in self._progress else None

    def on_finished(self, callback: Callable[[SyncOutcome], None]) -> Callable[[], None]:
        """Call ``callback(outcome)`` (through schedule) after each sync; returns an unsubscribe."""
        self._finished.append(callback)
        return lambda: self._finished.remove(callback) if callback in self._finished else None

    # --- running ----------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether a sync is in progress."""
        with self._lock:
            return self._worker is not None

    def sync_now(self) -> bool:
        """Start a sync in a worker thread unless one runs; never blocks. True when one was started."""
        with self._lock:
            if self._worker is not None:
                return False
            worker = threading.Thread(target=self._run, name="gridpatrol-sync", daemon=True)
            self._worker = worker
        worker.start()
        return True

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the running sync (tests, app exit); True when none runs any more."""
        with self._lock:
            worker = self._worker
        if worker is not None:
            worker.join(timeout)
        return not self.running

    def start_background(self) -> None:
        """Sync now and then every interval_s while online and logged in, until stop()."""
        with self._lock:
            if self._ticker is not None:
                return
            self._stopping.clear()
            ticker = threading.Thread(target=self._tick, name="gridpatrol-sync-timer", daemon=True)
            self._ticker = ticker
        ticker.start()

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop the periodic sync and wait up to timeout for a running one (safe to cut: sync resumes)."""
        self._stopping.set()
        with self._lock:
            ticker = self._ticker
            self._ticker = None
        if ticker is not None and ticker is not threading.current_thread():
            ticker.join(timeout)
        self.join(timeout)

    def _tick(self) -> None:
        """The timer thread: one attempt per interval, skipped offline, logged out or while one runs."""
        while not self._stopping.is_set():
            try:
                if self.is_online() and not self.core.needs_login:
                    self.sync_now()
            except Exception:  # noqa: BLE001 - a broken is_online must not end the periodic sync
                log.exception("periodic sync: the online check failed")
            self._stopping.wait(self.interval_s)

    def _run(self) -> None:
        """The worker thread: one sync, its outcome stored, then announced through schedule."""
        try:
            outcome = self._synchronize()
        except Exception as exc:  # noqa: BLE001 - the outcome must come, whatever went wrong
            log.exception("sync failed")  # the outcome carries the message; the traceback goes to the log
            outcome = SyncOutcome(False, False, 0, 0, 0, 0, f"{type(exc).__name__}: {exc}", self._now())
        try:
            self._remember(outcome)
        except Exception:  # noqa: BLE001 - the store may be closing under us (app exit): the outcome still goes out
            log.warning("sync: could not store the outcome", exc_info=True)
        finally:
            with self._lock:
                self._worker = None
        for callback in list(self._finished):
            self.schedule(lambda cb=callback: cb(outcome))

    def _synchronize(self) -> SyncOutcome:
        store = self.core.store
        token = store.token
        if not token:
            return SyncOutcome(False, True, 0, 0, 0, 0, "not logged in", self._now())
        transport = self.core.transport()
        try:
            report = synchronize(store, transport, self._notify, photos=self.core.photos,
                                 fetch=self.core.fetch_evidence)
        except Unauthorized as exc:  # synchronize reports it; a transport_factory might raise it too
            store.forget_token()
            return SyncOutcome(False, True, 0, 0, 0, 0, str(exc), self._now())
        finally:
            close = getattr(transport, "close", None)
            if callable(close):
                close()
        if report.needs_login:
            # Only the token goes: the outbox, the photos and the rejections wait for the next log-in.
            store.forget_token()
        photos = report.photos
        return SyncOutcome(
            ok=report.ok, needs_login=report.needs_login, pushed=report.pushed, pulled=report.pulled,
            rejected=len(report.rejected), photos_failed=len(photos.failed) if photos else 0,
            error=report.error, finished_at_ms=self._now(), photos_uploaded=photos.uploaded if photos else 0,
            seconds=round(report.seconds, 3), uploads_done=report.uploads_done,
            pull_done=report.phases.get("pull") == "done", more_to_pull=report.more_to_pull)

    def _notify(self, phase: str, done: int, total: int | None) -> None:
        for callback in list(self._progress):
            self.schedule(lambda cb=callback: cb(phase, done, total))

    def _remember(self, outcome: SyncOutcome) -> None:
        store = self.core.store
        store.save_setting(LAST_SYNC_KEY, outcome.as_dict())
        if outcome.ok:
            store.save_setting(LAST_SUCCESS_KEY, outcome.finished_at_ms)

    def _now(self) -> int:
        """The corrected device time; the raw clock when the store is gone (closed under a running sync)."""
        try:
            return self.core.now_ms()
        except Exception:  # noqa: BLE001 - an outcome must still be made
            log.warning("sync: no corrected time (store closed?); using the raw clock", exc_info=True)
            return system_ms()


def run_off_ui(schedule: Schedule, work: Callable[[], Any], on_done: Callable[[Any], None],
               on_error: Callable[[BaseException], None] | None = None) -> threading.Thread:
    """Run ``work()`` in a thread; deliver its result to ``on_done`` (or its exception to ``on_error``) via schedule.

    For the few online calls the UI makes itself, such as ``AppCore.login``.
    """

    def run() -> None:
        try:
            result = work()
        except Exception as exc:  # noqa: BLE001 - handed to the UI thread, not swallowed
            # Bound now: Python unbinds ``exc`` when the except block ends, before the UI thread runs this.
            if on_error is not None:
                schedule(lambda error=exc: on_error(error))
            else:
                log.exception("a call off the UI thread failed and nobody asked to hear of it")
            return
        schedule(lambda: on_done(result))

    thread = threading.Thread(target=run, name="gridpatrol-call", daemon=True)
    thread.start()
    return thread

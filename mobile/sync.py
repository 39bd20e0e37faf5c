"""The sync protocol, client side: push the outbox, then pull every bucket.

`synchronize` is the protocol; read it top to bottom. It is safe to call at any
time, from a background thread, as often as wanted, and to interrupt anywhere:

* Nothing leaves the outbox before the server has acknowledged it, and a
  record edited while its push was in flight stays pending (store.py).
* A pulled page's cursor is saved in one transaction with the page's last
  changes (a page is merged in transactions of ``apply_chunk`` changes, so
  the UI never waits long for the store), so an interrupted pull resumes at
  the first page not saved whole, never skips one; what it merges twice
  changes nothing.
* Every call of the protocol is idempotent, so the transport may retry and a
  sync may repeat whatever the network did.
* The next page is asked for while the current one is applied, on a thread
  of its own and one page ahead at most (issue 19: the server and the link
  work while the store does). Only the applying thread touches the store,
  so the cursors saved are those of pages applied whole.

Hazard: a 401 in the middle of a sync (token revoked while offline). The sync
stops, reports ``needs_login`` and leaves the outbox exactly as it was; the
captures wait for the worker to log in again.

Hazard: a device clock far ahead. The server refuses the push with
``clock_skew`` and its own time. The offset is taken against the midpoint of
the request (half the round trip is the best estimate of when the server read
its clock), the unacknowledged writes are re-stamped in their order, and the
batch is pushed again, a bounded number of times.

Hazard: a rejected change. It leaves the outbox (retrying could never
succeed and would repeat forever) but is kept in the store with the server's
reason and listed in the report, so the worker sees it.

Hazard: photos. They are not records: when a `PhotoQueue` is given, a photos
phase runs after push and pull (mobile/photos.py), so records go first, both
ways: hours of queued photos never hold back a dispatch coming down. It
reports its failures in ``report.photos`` and never raises, except a 401, so a
photo that will not go up never holds back records.

Hazard: an urgent event behind a backlog (快采快报). Within one sync, urgent
events go first: they are pushed before the rest of the outbox, and their
first photos go up before any other record or photo. A capture made while the
photos phase runs does not wait for it to end: between two chunks of a photo
the outbox is checked for records written since the push, which are pushed at
once, and the first photo of an urgent one goes next.

Hazard: a push too large for the server (413). The batch is halved and tried
again, down to a single change.

Hazard: a link that drops more often than one page (issue 20). A pull page
whose answer is cut is asked again within the sync, after a backoff, and each
cut halves the page, in changes and in bytes (``max_bytes``, a budget the
server respects, counted before gzip); each page that arrives whole doubles it
again, up to where it started. A push cut in the same way is retried the same
way with a halved batch. After ``max_retries`` cuts in a row the sync gives up,
and says per phase what got through (``report.phases``): a sync whose uploads
all went through is not a failed sync, only an unfinished download.
"""

from __future__ import annotations

import gc
import inspect
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Optional

from shared.hlc import format_ms, is_hlc
from shared.records import dump_change

from .photos import DEFAULT_CHUNK_BYTES, PhotoQueue, PhotoUploadResult, upload_photos
from .store import RemoteChangeError, Rejection, Store, parse_remote_changes
from .transport import ClockSkew, LinkCut, TooLarge, Transport, TransportError, Unauthorized

log = logging.getLogger(__name__)

__all__ = ["synchronize", "SyncReport", "Progress", "apply_page", "APPLY_CHUNK", "APPLY_PAUSE_S", "PageSize",
           "PULL_MAX_BYTES"]

# Changes merged per store transaction while a page is applied. The store's lock is held for one
# transaction, and a capture on the UI thread waits for it: a whole page of 500 held it ~100 ms.
# Smaller chunks cost the sync a commit (an fsync) each; against a sync thread applying pages back to
# back on a loaded 2-core machine, a capture's p95 was ~65 ms with 100, ~35 ms with 50, ~25 ms with 25,
# while the pages applied per second halved at each step. But a first sync of 100,000 records spent
# 19.6 % of its time in the commits of chunks of 50 and 22.9 % in the pause below (issue 19: 17.6 s):
# chunks of 250 without a pause brought it to 9.6-18.4 s on the shared host (docs/benchmarks.md, "First sync").
APPLY_CHUNK = 250
# A pause between two chunks (0: none). Python's locks are not fair: a thread that releases one and at
# once asks again usually gets it back before the waiting thread wakes; a pause of 2 ms let a capture in
# between, but cost a first sync a fifth of its time, and the capture bench showed no consistent benefit.
APPLY_PAUSE_S = 0.0

# A pull page's byte budget to start with, on the JSON of its changes before gzip (a page of 500 events is about
# 570 KB, 40-150 KB gzipped). Halved on each cut down to PULL_MIN_BYTES, doubled back on each page that arrives.
PULL_MAX_BYTES = 256 * 1024
PULL_MIN_BYTES = 2 * 1024
# Cut requests in a row (a pull page, a push batch) retried within one sync, with this backoff, doubled each time.
MAX_RETRIES = 8
RETRY_BACKOFF_S = 0.25
RETRY_BACKOFF_MAX_S = 8.0

# progress(phase, done, total): phase "push" or "pull" (changes), "photos" (bytes) or "photo_files" (photos, for
# people: "照片 3 / 12"); a pull's total is
# None until its last page, because the feed does not say how much is left.
Progress = Callable[[str, int, Optional[int]], None]


@dataclass
class SyncReport:
    """What one synchronize did, and why it stopped if it did not finish."""

    pushed: int = 0  # changes acknowledged by the server (applied, stale or rejected)
    applied: int = 0
    stale: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    still_pending: int = 0  # records edited again while their push was in flight
    restamped: int = 0  # writes re-stamped after a clock-skew answer
    clock_offset_ms: int | None = None  # the offset set after a clock-skew answer
    pulled: int = 0  # remote changes received
    pages: int = 0
    needs_login: bool = False
    error: str | None = None
    seconds: float = 0.0
    photos: PhotoUploadResult | None = None  # the photos phase, when a photo queue was given
    # Per phase ("push", "pull", "photos"), what became of it: "done", "partial" (some of it went through),
    # "failed" (nothing did), "not_run" (the sync stopped before it). A phase missing did not apply.
    phases: dict[str, str] = field(default_factory=dict)
    more_to_pull: bool = False  # the server has changes for this tablet that this sync did not receive
    retries: int = 0  # cut requests asked again within this sync (pull pages, push batches)
    urgent_pushed: int = 0  # urgent events pushed ahead of the rest
    pushed_during_photos: int = 0  # changes written during the sync and pushed while photos went up
    fetched: Any = None  # what the fetch step brought (mobile/evidence.py FetchReport), when one was given

    @property
    def ok(self) -> bool:
        """Whether the sync ran to the end."""
        return not self.needs_login and self.error is None

    @property
    def uploads_done(self) -> bool:
        """Whether everything this tablet had to send went through (records, and photos when there was a queue)."""
        return self.phases.get("push") == "done" and self.phases.get("photos", "done") == "done"

    def summary(self) -> str:
        """What got through, per phase, in English (for logs and the bench; the app words it itself)."""
        parts = []
        push = self.phases.get("push", "not_run")
        parts.append(f"uploads {push}: {self.pushed} changes" + (f", {self.urgent_pushed} urgent first"
                                                                 if self.urgent_pushed else ""))
        if "photos" in self.phases:
            photos = self.photos
            parts.append(f"photos {self.phases['photos']}" + (
                f": {photos.uploaded} sent, {len(photos.failed)} failed" if photos else ""))
        pull = self.phases.get("pull", "not_run")
        parts.append(f"download {pull}: {self.pulled} changes in {self.pages} pages"
                     + (", more to come" if self.more_to_pull else ""))
        if self.retries:
            parts.append(f"{self.retries} cut requests retried")
        if self.error:
            parts.append(f"stopped: {self.error}")
        return "; ".join(parts)


@dataclass
class PageSize:
    """A pull page's size, in changes and in bytes: halved on a cut, doubled on a page that arrives."""

    limit: int
    max_bytes: int
    min_bytes: int = PULL_MIN_BYTES

    def __post_init__(self) -> None:
        self.top_limit, self.top_bytes = self.limit, self.max_bytes

    def shrink(self) -> None:
        self.limit = max(1, self.limit // 2)
        self.max_bytes = max(min(self.min_bytes, self.top_bytes), self.max_bytes // 2)

    def grow(self) -> None:
        self.limit = min(self.top_limit, self.limit * 2)
        self.max_bytes = min(self.top_bytes, self.max_bytes * 2)


def synchronize(
    store: Store,
    transport: Transport,
    progress: Progress | None = None,
    *,
    batch_size: int = 500,
    page_limit: int = 500,
    max_skew_retries: int = 2,
    photos: PhotoQueue | None = None,
    apply_chunk: int = APPLY_CHUNK,
    page_bytes: int = PULL_MAX_BYTES,
    max_retries: int = MAX_RETRIES,
    backoff: float = RETRY_BACKOFF_S,
    sleep: Callable[[float], None] = time.sleep,
    photo_chunk: int = DEFAULT_CHUNK_BYTES,
    fetch: Callable[[Transport, Progress], Any] | None = None,
) -> SyncReport:
    """Push the outbox (urgent events first), pull every bucket until `more` is false, then upload photos.

    ``fetch``: a last step, after the photos went up (mobile/evidence.py: the thumbnails of the worker's
    cases); it may raise Unauthorized, and whatever else it raises is its phase's error, not the sync's.

    Never raises a transport error: what went through is in the report, per phase.
    """
    report = SyncReport()
    if not store.sync_lock.acquire(blocking=False):
        report.error = "a sync of this store is already running"
        return report
    started = time.monotonic()
    notify = progress or (lambda phase, done, total: None)
    retry = _Retry(report, max_retries, backoff, sleep)
    report.phases = {"push": "not_run", "pull": "not_run", **({"photos": "not_run"} if photos is not None else {})}
    phase = "push"
    try:
        # 1. Urgent events, and their first photos, before anything else.
        first_photos = push_urgent(store, transport, report, batch_size=batch_size,
                                   max_skew_retries=max_skew_retries, retry=retry)
        if photos is not None and first_photos:
            report.photos = upload_photos(photos, transport, only=first_photos, chunk_bytes=photo_chunk,
                                          sleep=sleep)  # raises only Unauthorized
        # 2. The rest of the outbox.
        pushed_to = push(store, transport, report, notify, batch_size=batch_size,
                         max_skew_retries=max_skew_retries, retry=retry)
        report.phases["push"] = "done"
        # 3. Records down. A pull that fails does not hold back the photos: they are the tablet's to send.
        phase = "pull"
        try:
            pull(store, transport, report, notify, page_limit=page_limit, apply_chunk=apply_chunk,
                 page_bytes=page_bytes, retry=retry)
            report.phases["pull"] = "done"
        except (Unauthorized, ClockSkew):
            raise
        except (TransportError, RemoteChangeError) as exc:
            report.phases["pull"] = "partial" if report.pages else "failed"
            report.error = f"{type(exc).__name__}: {exc}"
        # 4. Photos, oldest first; what is captured meanwhile is pushed between two chunks.
        if photos is not None:
            phase = "photos"
            during = _DuringPhotos(store, transport, report, pushed_to, batch_size=batch_size,
                                   max_skew_retries=max_skew_retries, retry=retry)
            result = upload_photos(photos, transport, notify, between=during, chunk_bytes=photo_chunk,
                                   sleep=sleep)  # raises only Unauthorized
            report.photos = _merged(report.photos, result)
            report.phases["photos"] = "done" if not result.error and not result.failed else \
                "partial" if result.uploaded or result.confirmed or result.bytes_done else "failed"
        # 5. What the worker needs offline from others (the evidence of their cases), when all else is done.
        if fetch is not None:
            phase = "fetch"
            try:
                report.fetched = fetch(transport, notify)
                report.phases["fetch"] = "failed" if getattr(report.fetched, "error", None) else "done"
            except Unauthorized:
                raise
            except (TransportError, OSError, ValueError) as exc:
                report.phases["fetch"] = "failed"
                report.fetched = None
                log.warning("fetching the cases' photos failed: %s", exc)
    except Unauthorized as exc:
        # Stop, and touch nothing queued: the worker logs in again and the next sync resumes.
        report.needs_login = True
        report.error = str(exc)
        _stopped(report, phase)
    except (TransportError, RemoteChangeError) as exc:
        report.error = f"{type(exc).__name__}: {exc}"
        _stopped(report, phase)
    finally:
        store.sync_lock.release()
        report.seconds = time.monotonic() - started
    return report


def _stopped(report: SyncReport, phase: str) -> None:
    """The phase the sync stopped in went partly through or not at all."""
    done = {"push": report.pushed, "pull": report.pages,
            "photos": report.photos.uploaded + report.photos.confirmed if report.photos else 0}[phase]
    report.phases[phase] = "partial" if done else "failed"
    if phase == "pull":
        report.more_to_pull = True


def _merged(first: PhotoUploadResult | None, then: PhotoUploadResult) -> PhotoUploadResult:
    """The urgent photos' result and the photos phase's, as one."""
    if first is None:
        return then
    then.uploaded += first.uploaded
    then.confirmed += first.confirmed
    then.bytes_total += first.bytes_total
    then.bytes_done += first.bytes_done
    then.failed = {**first.failed, **then.failed}
    then.released += first.released
    then.error = then.error or first.error
    return then


class _Retry:
    """Cut requests in a row: each one waits longer, and too many in a row end the sync."""

    def __init__(self, report: SyncReport, limit: int, backoff: float, sleep: Callable[[float], None]):
        self.report, self.limit, self.backoff, self.sleep = report, limit, backoff, sleep
        self.in_a_row = 0

    def failed(self, exc: TransportError) -> None:
        """A request was cut: wait and go on, or raise it after ``limit`` in a row.

        Only a cut link (LinkCut) is asked again here: an error the server answered would come back the
        same, and a server that cannot be reached was already tried again, with backoff, by the transport.
        """
        if not isinstance(exc, LinkCut) or self.in_a_row >= self.limit:
            raise exc
        self.in_a_row += 1
        self.report.retries += 1
        self.sleep(min(RETRY_BACKOFF_MAX_S, self.backoff * 2 ** (self.in_a_row - 1)))

    def succeeded(self) -> None:
        self.in_a_row = 0


def push_urgent(store: Store, transport: Transport, report: SyncReport, *, batch_size: int,
                max_skew_retries: int, retry: _Retry) -> list[str]:
    """Push the urgent events that have unsynced writes, ahead of the outbox; answers their first photos."""
    pending = store.pending_ids("event")
    if not pending:
        return []
    urgent = {rid: state for rid, _bucket, state in store.states("event", where=("urgent", True)) if rid in pending}
    if not urgent:
        return []
    push(store, transport, report, lambda *_: None, batch_size=batch_size, max_skew_retries=max_skew_retries,
         retry=retry, only=lambda change: change.kind == "event" and change.id in urgent)
    report.urgent_pushed += len(urgent)
    return _first_photos(urgent.values())


def _first_photos(states: Iterable[dict]) -> list[str]:
    firsts = []
    for state in states:
        photos = state.get("photos", [None])[0]
        if isinstance(photos, list) and photos and isinstance(photos[0], str):
            firsts.append(photos[0])
    return firsts


class _DuringPhotos:
    """Between two chunks of a photo: push what was written since the push, and answer urgent first photos."""

    def __init__(self, store: Store, transport: Transport, report: SyncReport, after_seq: int, **push_options):
        self.store, self.transport, self.report, self.after_seq = store, transport, report, after_seq
        self.push_options = push_options
        self.broken = False  # a push here failed: leave the rest to the next sync, do not slow the photos

    def __call__(self) -> list[str]:
        if self.broken:
            return []
        waiting = self.store.pending_changes(1, after_seq=self.after_seq)
        if waiting.last_seq == self.after_seq:
            return []
        new = self.store.pending_changes(10_000, after_seq=self.after_seq).changes
        before = self.report.pushed
        try:
            self.after_seq = push(self.store, self.transport, self.report, lambda *_: None,
                                  after_seq=self.after_seq, **self.push_options)
        except Unauthorized:
            raise
        except (TransportError, RemoteChangeError):
            self.broken = True
            return []
        self.report.pushed_during_photos += self.report.pushed - before
        events = {c.id for c in new if c.kind == "event"}
        if not events:
            return []
        urgent = [state for rid, _bucket, state in self.store.states("event", where=("urgent", True))
                  if rid in events]
        self.report.urgent_pushed += len(urgent)
        return _first_photos(urgent)


def push(store: Store, transport: Transport, report: SyncReport, notify: Progress, *,
         batch_size: int, max_skew_retries: int, retry: _Retry | None = None, after_seq: int = 0,
         only: Callable[[object], bool] | None = None) -> int:
    """Steps 1 and 2: push the outbox in batches and mark synced what was acknowledged unchanged.

    From ``after_seq`` on, and only the changes ``only`` selects when given. Answers where the outbox
    was read to.
    """
    retry = retry or _Retry(report, 0, 0.0, time.sleep)
    total = store.counts().unsynced if only is None else 0
    notify("push", 0, total)
    done, skew_retries = 0, 0
    while True:
        # 1. Read a batch. The outbox is paged by position, so a record edited while in flight
        #    is pushed again by the next sync, not in a loop by this one.
        outgoing = store.pending_changes(batch_size, after_seq=after_seq)
        changes = outgoing.changes if only is None else [c for c in outgoing.changes if only(c)]
        if not changes:
            if outgoing.last_seq == after_seq:
                break
            after_seq = outgoing.last_seq
            continue
        physical = store.clock.physical  # raw device clock: the offset is computed against it
        sent = physical()
        try:
            # sent_at is the device's own clock, not the corrected one: from it the server records
            # the device's skew for admins, which the correction would otherwise hide after one push.
            answer = transport.push(store.node, [dump_change(c) for c in changes], sent_at=format_ms(sent))
        except ClockSkew as skew:
            if skew_retries >= max_skew_retries:
                raise
            skew_retries += 1
            # The server read its clock about halfway through the round trip.
            offset = skew.server_time_ms - (sent + physical()) // 2
            report.restamped += store.restamp_pending(offset)
            report.clock_offset_ms = offset
            continue  # the same batch again, with fresh stamps
        except TooLarge:
            if batch_size <= 1:
                raise
            batch_size = max(1, batch_size // 2)
            continue
        except Unauthorized:
            raise
        except TransportError as exc:
            # Cut on the way (the answer lost, or the request): the same changes again, fewer at a time.
            retry.failed(exc)
            batch_size = max(1, batch_size // 2)
            continue
        retry.succeeded()
        # 2. Mark synced only what was acknowledged and not edited again meanwhile; keep rejections.
        outcome = store.acknowledge(changes, answer.get("results") or [], answer.get("hlc"))
        report.pushed += len(changes)
        report.applied += outcome.applied
        report.stale += outcome.stale
        report.rejected.extend(outcome.rejected)
        report.still_pending += outcome.still_pending
        after_seq = outgoing.last_seq
        done += len(changes)
        notify("push", done, max(total, done))
    return after_seq


def _takes_max_bytes(transport: Transport) -> bool:
    """Whether the transport's pull takes a byte budget (HttpTransport does; older ones and fakes may not)."""
    try:
        return "max_bytes" in inspect.signature(transport.pull).parameters
    except (TypeError, ValueError):
        return False


def pull(store: Store, transport: Transport, report: SyncReport, notify: Progress, *, page_limit: int,
         apply_chunk: int = APPLY_CHUNK, page_bytes: int = PULL_MAX_BYTES, retry: _Retry | None = None) -> None:
    """Step 3: pull every bucket page by page; each page's cursors are saved with its last changes.

    A page whose answer is cut is asked again (``retry``), half as large; each page that arrives lets the
    next one grow back. Only a page applied whole moves the cursors (apply_page).

    Pipelined (issue 19): while page n is applied, page n+1 is asked for, from the cursors page n
    brought, on a thread of its own (`_Prefetch`), one page ahead and no more. The store is not touched
    there, so the cursors saved are still those of the pages applied whole: a sync stopped anywhere
    resumes at the first page not applied, and a page fetched ahead but not applied is simply asked
    again. The transport is used by one thread at a time: the next page is asked for only when the one
    before has arrived, and pull returns only once no request is on its way.
    """
    retry = retry or _Retry(report, 0, 0.0, time.sleep)
    cursors = store.pull_cursors()  # a bucket a discard asks for again starts from zero
    notify("pull", 0, None)
    report.more_to_pull = True  # until a page says otherwise
    # This thread's merges are background work: the fetch thread's give_way waits for captures, not for them.
    with store.background(), _fewer_collections(), \
            _Prefetch(transport, PageSize(page_limit, page_bytes), retry, store.give_way) as ahead:
        answer = ahead.fetch(cursors).result()
        while True:
            changes = answer.get("changes") or []
            new_cursors = answer.get("cursors")
            if not isinstance(new_cursors, dict):  # checked before the next page is asked for with them
                raise RemoteChangeError("the pull answer carries no cursors object")
            more = bool(answer.get("more"))
            if more and not changes and new_cursors == cursors:
                # A server that says "more" but moves nothing would keep us here forever.
                raise RemoteChangeError("the pull answer says more but neither sends changes nor moves a cursor")
            following = ahead.fetch(dict(new_cursors)) if more else None
            apply_page(store, changes, cursors, new_cursors, answer.get("hlc"), chunk=apply_chunk,
                       fields_json=getattr(answer, "fields_json", None))
            report.pages += 1
            report.pulled += len(changes)
            report.more_to_pull = more
            cursors = dict(new_cursors)
            # The total is unknown until the last page: the feed does not say how much is left.
            notify("pull", report.pulled, None if more else report.pulled)
            if following is None:
                break
            answer = following.result()


# The garbage collector's first threshold while a pull runs (Python's is 700 new containers): see _fewer_collections.
PULL_GC_THRESHOLD = 100_000


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """While pages are pulled, the garbage collector runs every PULL_GC_THRESHOLD new containers, not every 700.

    Why (issue 19): a decoded page is some 4,000 dicts and lists, alive until it is applied. Collected every
    700 new containers, they were walked again and again, kept as long-lived, and so walked once more by
    every full collection of the app's objects: about a third of the decoding's CPU. Collected ten times
    less often they are mostly freed (by their counts, as decoded JSON has no cycles) before a collection
    sees them. Cycles elsewhere in the app are still collected, later; the thresholds are put back after.
    Hazard: the thresholds are the process's; one set by another thread during a pull is undone at its end.
    """
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], PULL_GC_THRESHOLD), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


class _Prefetch:
    """Pull pages on a thread of their own, one at a time, each cut one asked again smaller (`_Retry`).

    ``fetch(cursors)`` starts asking for the page after ``cursors`` and answers a Future of it: its
    ``result()`` is the answer, or raises what the last try raised. Leaving the ``with`` stops the retries
    of a page nobody waits for any more and waits for its request to end, so the transport is free after.
    """

    def __init__(self, transport: Transport, size: PageSize, retry: _Retry,
                 give_way: Callable[[], None] = lambda: None):
        self.transport, self.size, self.retry, self.give_way = transport, size, retry, give_way
        self.sized = _takes_max_bytes(transport)
        self.stopped = threading.Event()
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pull-ahead")

    def __enter__(self) -> "_Prefetch":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.pool.shutdown(wait=True, cancel_futures=True)

    def fetch(self, cursors: dict[str, str]) -> "Future[dict[str, Any]]":
        return self.pool.submit(self._page, cursors)

    def _page(self, cursors: dict[str, str]) -> dict[str, Any]:
        while True:
            self.give_way()  # a page's decoding holds the interpreter: not while a capture is saved
            try:
                if self.sized:
                    answer = self.transport.pull(cursors, self.size.limit, max_bytes=self.size.max_bytes)
                else:
                    answer = self.transport.pull(cursors, self.size.limit)
            except Unauthorized:
                raise
            except TransportError as exc:
                if self.stopped.is_set():
                    raise
                self.retry.failed(exc)  # raises after too many in a row
                self.size.shrink()
                continue
            self.retry.succeeded()
            self.size.grow()
            return answer


def apply_page(store: Store, changes: list, cursors: dict, new_cursors: dict, hlc: str | None, *,
               chunk: int = APPLY_CHUNK, fields_json: list[str | None] | None = None) -> None:
    """Apply one pulled page in transactions of ``chunk`` changes; the new cursors go with the last one.

    The whole page is checked first, so a malformed page is refused whole, as before. The chunks
    before the last keep the old cursors: if the app stops between two chunks, the page is pulled
    again and its changes merged again, which changes nothing (merge is idempotent). No page is
    ever skipped, and the UI waits at most one chunk's transaction for the store (a chunk and a quarter:
    a short tail is merged with the chunk before it).

    ``fields_json``: the JSON text of each change's fields as received (`PulledPage.fields_json`, from
    HttpTransport), which the store keeps for a record it does not hold yet instead of encoding it again.
    """
    parsed = parse_remote_changes(changes)
    if hlc and not is_hlc(hlc):
        raise RemoteChangeError(f"the server sent {hlc!r} as its hlc")
    if fields_json is not None and len(fields_json) != len(parsed):
        fields_json = None  # not this page's: encode the states
    chunk = max(1, chunk)
    starts = list(range(0, len(parsed), chunk))
    if len(starts) > 1 and len(parsed) - starts[-1] <= chunk // 4:
        # A short tail goes with the chunk before it: a commit fewer (a page of 256 KiB of events is about 290
        # changes: one transaction, not 250 and 40), for a transaction at most a quarter longer.
        starts.pop()
    texts = (lambda start, end: {}) if fields_json is None else \
        (lambda start, end: {"fields_json": fields_json[start:end]})
    for start in starts[:-1]:
        store.apply_remote(parsed[start:start + chunk], cursors, **texts(start, start + chunk))
        if APPLY_PAUSE_S:
            time.sleep(APPLY_PAUSE_S)  # let a waiting capture take the store's lock (see APPLY_PAUSE_S)
    last = starts[-1] if starts else 0
    store.apply_remote(parsed[last:], new_cursors, hlc, **texts(last, len(parsed)))

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
phase runs between push and pull (mobile/photos.py), so records go first and
small. It reports its failures in ``report.photos`` and never raises, except
a 401, so a photo that will not go up never holds back records.

Hazard: a push too large for the server (413). The batch is halved and tried
again, down to a single change.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from shared.hlc import format_ms, is_hlc
from shared.records import dump_change

from .photos import PhotoQueue, PhotoUploadResult, upload_photos
from .store import RemoteChangeError, Rejection, Store, parse_remote_changes
from .transport import ClockSkew, TooLarge, Transport, TransportError, Unauthorized

__all__ = ["synchronize", "SyncReport", "Progress", "apply_page", "APPLY_CHUNK", "APPLY_PAUSE_S"]

# Changes merged per store transaction while a page is applied. The store's lock is held for one
# transaction, and a capture on the UI thread waits for it: a whole page of 500 held it ~100 ms.
# Smaller chunks cost the sync a commit (an fsync) each; against a sync thread applying pages back to
# back on a loaded 2-core machine, a capture's p95 was ~65 ms with 100, ~35 ms with 50, ~25 ms with 25,
# while the pages applied per second halved at each step. 50 keeps captures under 50 ms.
APPLY_CHUNK = 50
# The pause between two chunks. Python's locks are not fair: a thread that releases one and at once
# asks again usually gets it back before the waiting thread wakes, so without a pause a capture
# could wait for a whole page, chunk after chunk (p95 ~120-160 ms against ~55-110 ms with the pause).
APPLY_PAUSE_S = 0.002

# progress(phase, done, total): phase "push" or "pull" (changes), or "photos" (bytes); a pull's total is
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

    @property
    def ok(self) -> bool:
        """Whether the sync ran to the end."""
        return not self.needs_login and self.error is None


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
) -> SyncReport:
    """Push the outbox, then pull every bucket until `more` is false; never raises a transport error."""
    report = SyncReport()
    if not store.sync_lock.acquire(blocking=False):
        report.error = "a sync of this store is already running"
        return report
    started = time.monotonic()
    notify = progress or (lambda phase, done, total: None)
    try:
        push(store, transport, report, notify, batch_size=batch_size, max_skew_retries=max_skew_retries)
        if photos is not None:
            report.photos = upload_photos(photos, transport, notify)  # raises only Unauthorized
        pull(store, transport, report, notify, page_limit=page_limit, apply_chunk=apply_chunk)
    except Unauthorized as exc:
        # Stop, and touch nothing queued: the worker logs in again and the next sync resumes.
        report.needs_login = True
        report.error = str(exc)
    except (TransportError, RemoteChangeError) as exc:
        report.error = f"{type(exc).__name__}: {exc}"
    finally:
        store.sync_lock.release()
        report.seconds = time.monotonic() - started
    return report


def push(store: Store, transport: Transport, report: SyncReport, notify: Progress, *,
         batch_size: int, max_skew_retries: int) -> None:
    """Steps 1 and 2: push the outbox in batches and mark synced what was acknowledged unchanged."""
    total = store.counts().unsynced
    notify("push", 0, total)
    after_seq, done, skew_retries = 0, 0, 0
    while True:
        # 1. Read a batch. The outbox is paged by position, so a record edited while in flight
        #    is pushed again by the next sync, not in a loop by this one.
        outgoing = store.pending_changes(batch_size, after_seq=after_seq)
        if not outgoing.changes:
            if outgoing.last_seq == after_seq:
                break
            after_seq = outgoing.last_seq
            continue
        physical = store.clock.physical  # raw device clock: the offset is computed against it
        sent = physical()
        try:
            # sent_at is the device's own clock, not the corrected one: from it the server records
            # the device's skew for admins, which the correction would otherwise hide after one push.
            answer = transport.push(store.node, [dump_change(c) for c in outgoing.changes],
                                    sent_at=format_ms(sent))
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
        # 2. Mark synced only what was acknowledged and not edited again meanwhile; keep rejections.
        outcome = store.acknowledge(outgoing, answer.get("results") or [], answer.get("hlc"))
        report.pushed += len(outgoing.changes)
        report.applied += outcome.applied
        report.stale += outcome.stale
        report.rejected.extend(outcome.rejected)
        report.still_pending += outcome.still_pending
        after_seq = outgoing.last_seq
        done += len(outgoing.changes)
        notify("push", done, max(total, done))


def pull(store: Store, transport: Transport, report: SyncReport, notify: Progress, *, page_limit: int,
         apply_chunk: int = APPLY_CHUNK) -> None:
    """Step 3: pull every bucket page by page; each page's cursors are saved with its last changes."""
    cursors = store.cursors()
    notify("pull", 0, None)
    while True:
        answer = transport.pull(cursors, page_limit)
        changes = answer.get("changes") or []
        new_cursors = answer.get("cursors")
        if new_cursors is None:
            raise RemoteChangeError("the pull answer carries no cursors")
        apply_page(store, changes, cursors, new_cursors, answer.get("hlc"), chunk=apply_chunk)
        report.pages += 1
        report.pulled += len(changes)
        more = bool(answer.get("more"))
        if more and not changes and new_cursors == cursors:
            # A server that says "more" but moves nothing would keep us here forever.
            raise RemoteChangeError("the pull answer says more but neither sends changes nor moves a cursor")
        cursors = dict(new_cursors)
        # The total is unknown until the last page: the feed does not say how much is left.
        notify("pull", report.pulled, None if more else report.pulled)
        if not more:
            break


def apply_page(store: Store, changes: list, cursors: dict, new_cursors: dict, hlc: str | None, *,
               chunk: int = APPLY_CHUNK) -> None:
    """Apply one pulled page in transactions of ``chunk`` changes; the new cursors go with the last one.

    The whole page is checked first, so a malformed page is refused whole, as before. The chunks
    before the last keep the old cursors: if the app stops between two chunks, the page is pulled
    again and its changes merged again, which changes nothing (merge is idempotent). No page is
    ever skipped, and the UI waits at most one chunk's transaction for the store.
    """
    parsed = parse_remote_changes(changes)
    if hlc and not is_hlc(hlc):
        raise RemoteChangeError(f"the server sent {hlc!r} as its hlc")
    chunk = max(1, chunk)
    starts = list(range(0, len(parsed), chunk))
    for start in starts[:-1]:
        store.apply_remote(parsed[start:start + chunk], cursors)
        time.sleep(APPLY_PAUSE_S)  # let a waiting capture take the store's lock (see APPLY_PAUSE_S)
    last = parsed[starts[-1]:] if starts else []
    store.apply_remote(last, new_cursors, hlc)

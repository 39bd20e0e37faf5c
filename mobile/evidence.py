"""Evidence for the one who verifies: the photos of the worker's own cases, fetched while there is a network.

A worker verifies the rectifications of the events they reported, on site, often offline. What the
unit did (its note and its photos) must be on the tablet before that: so every sync, after the
photos went up, fetches the thumbnails of the photos on the worker's open cases that the tablet does
not hold (`fetch_thumbnails`), the cases awaiting the worker's verification first. A full photo is
fetched only when the worker asks for it (`fetch_full`). Both are kept on the tablet: thumbnails
beside the tablet's own (PhotoQueue.thumbnail_path), full photos under ``photos/remote/``.

**The budget.** What is fetched is counted in the ``fetched_photos`` table. Past the budget (the
settings show it and its use: ``Settings.photo_cache_mb``), the files of closed or foreign cases go
first, oldest first; if the budget is still full, fetching stops and the report says so. The
tablet's own photos are never counted or removed here (the photo queue keeps them until uploaded).

**Offline.** Nothing here is needed to verify: a photo without a local file shows as "not fetched
yet" (the case screen), and a full photo asked for without a network says so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from shared.case import Action, fold_case

from .photos import PhotoQueue, _write_durably
from .store import Store
from .transport import Rejected, TransportError, Unauthorized

__all__ = ["FetchReport", "wanted_photos", "fetch_thumbnails", "fetch_full", "remote_path", "cache_use",
           "DEFAULT_BUDGET_MB"]

DEFAULT_BUDGET_MB = 50

_SCHEMA = """
CREATE TABLE IF NOT EXISTS fetched_photos (
    sha256 TEXT NOT NULL,
    size TEXT NOT NULL,          -- thumb | full
    bytes INTEGER NOT NULL,
    fetched_at INTEGER NOT NULL,
    PRIMARY KEY (sha256, size)
)
"""


@dataclass
class FetchReport:
    """What a fetch did: thumbnails fetched, not found on the server, left for lack of budget, and bytes."""

    fetched: int = 0
    missing: int = 0
    over_budget: int = 0
    bytes: int = 0
    error: str | None = None


def _table(store: Store) -> None:
    with store._transaction():  # noqa: SLF001 - the tablet's one database, as photos.py uses it
        store._db.execute(_SCHEMA)  # noqa: SLF001


def remote_path(photos: PhotoQueue, sha256: str) -> Path:
    """Where a full photo fetched from the server is kept."""
    return photos.directory / "remote" / sha256[:2] / f"{sha256}.jpg"


def wanted_photos(store: Store, user_id: str | None, now_ms: int) -> list[str]:
    """The photos of the worker's open cases (event and actions), those awaiting their verification first.

    Only the worker's own reports: they are the ones the worker verifies.
    """
    if not user_id:
        return []
    awaiting, other = [], []
    for event_id, _bucket, state in store.states("event", where=("reporter", user_id)):
        values = {name: write[0] for name, write in state.items()}
        actions = store.states("case_action", where=("event", event_id), include_deleted=True)
        case = fold_case(values, [Action.from_state(rid, s) for rid, _b, s in actions], now_ms=now_ms)
        if not case.is_open:
            continue
        hashes = []
        for _rid, _b, action in actions:
            photos = action.get("photos")
            hashes += photos[0] if photos and isinstance(photos[0], list) else []
        hashes += values.get("photos") if isinstance(values.get("photos"), list) else []
        (awaiting if case.status == "rectified" else other).extend(h for h in hashes if isinstance(h, str))
    return list(dict.fromkeys(awaiting + other))


def cache_use(store: Store) -> int:
    """The bytes of fetched photos kept on the tablet."""
    _table(store)
    return store._db.execute("SELECT COALESCE(SUM(bytes), 0) FROM fetched_photos").fetchone()[0]  # noqa: SLF001


def _make_room(store: Store, photos: PhotoQueue, need: int, budget: int, keep: set[str]) -> bool:
    """Remove fetched files not in ``keep``, oldest first, until ``need`` more bytes fit; whether they do."""
    used = cache_use(store)
    if used + need <= budget:
        return True
    rows = store._db.execute(  # noqa: SLF001
        "SELECT sha256, size, bytes FROM fetched_photos ORDER BY fetched_at, sha256").fetchall()
    for sha, size, count in rows:
        if sha in keep:
            continue
        path = photos.thumbnail_path(sha) if size == "thumb" else remote_path(photos, sha)
        path.unlink(missing_ok=True)
        with store._transaction():  # noqa: SLF001
            store._db.execute("DELETE FROM fetched_photos WHERE sha256 = ? AND size = ?", (sha, size))  # noqa: SLF001
        used -= count
        if used + need <= budget:
            return True
    return False


def _keep(store: Store, photos: PhotoQueue, sha: str, size: str, data: bytes, now_ms: int) -> None:
    path = photos.thumbnail_path(sha) if size == "thumb" else remote_path(photos, sha)
    _write_durably(path, data)
    with store._transaction():  # noqa: SLF001
        store._db.execute("INSERT OR REPLACE INTO fetched_photos (sha256, size, bytes, fetched_at) VALUES (?, ?, ?, ?)",
                          (sha, size, len(data), now_ms))  # noqa: SLF001


def fetch_thumbnails(store: Store, photos: PhotoQueue, transport: Any, user_id: str | None, *, budget_bytes: int,
                     now_ms: int | None = None, notify: Callable[[str, int, int], None] | None = None) -> FetchReport:
    """Fetch the thumbnails of the worker's open cases that the tablet lacks, within the budget.

    Raises Unauthorized (the caller stops the sync as for any call); any other transport error ends
    the fetch with what it got, in ``error``.
    """
    _table(store)
    report = FetchReport()
    if not callable(getattr(transport, "photo_bytes", None)):  # a transport of tests or tools without photos
        report.error = "this transport does not fetch photos"
        return report
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    wanted = wanted_photos(store, user_id, now_ms)
    todo = [sha for sha in wanted if not photos.thumbnail_path(sha).exists()]
    keep = set(wanted)
    for done, sha in enumerate(todo, 1):
        try:
            data = transport.photo_bytes(sha, thumbnail=True)
        except Rejected as exc:
            if exc.status not in (403, 404):
                report.error = f"{type(exc).__name__}: {exc}"
                break
            report.missing += 1  # not uploaded whole yet, or not the worker's to see: asked again next sync
            continue
        except Unauthorized:
            raise
        except TransportError as exc:
            report.error = f"{type(exc).__name__}: {exc}"
            break
        if not _make_room(store, photos, len(data), budget_bytes, keep):
            report.over_budget = len(todo) - done + 1
            break
        _keep(store, photos, sha, "thumb", data, now_ms)
        report.fetched += 1
        report.bytes += len(data)
        if notify is not None:
            notify("thumbnails", done, len(todo))
    return report


def fetch_full(store: Store, photos: PhotoQueue, transport: Any, sha256: str, *, budget_bytes: int,
               now_ms: int | None = None) -> Path:
    """The full photo, fetched now if the tablet does not hold it; its path. Raises TransportError (offline:
    LinkCut or a plain TransportError; Rejected 404 when the server holds none), or ValueError past the budget."""
    _table(store)
    own = photos.path(sha256)
    if own.exists():
        return own
    path = remote_path(photos, sha256)
    if path.exists():
        return path
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    data = transport.photo_bytes(sha256)
    if not _make_room(store, photos, len(data), budget_bytes, {sha256}):
        raise ValueError("the photo cache is full")
    _keep(store, photos, sha256, "full", data, now_ms)
    return path

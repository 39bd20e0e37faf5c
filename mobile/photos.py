"""Photos on the tablet: prepared at capture, named by hash, and uploaded by their own resumable queue.

Capture (`prepare_photo`, `PhotoQueue.capture`) turns a camera image into the
photo a record refers to: the EXIF orientation applied to the pixels, the
longest edge cut to ``max_edge`` (1920 px), JPEG at ``quality``, the capture
time kept (``DateTimeOriginal`` and its time zone), the location kept only if
the worker allows it, every other EXIF field dropped (camera serials, maker
notes, the thumbnail the camera embedded), and a thumbnail for the lists. The
photo is named by the SHA-256 of its bytes.

The order of a capture matters: the photo file is written and fsynced, its
queue row committed, and only then does the caller commit the record that
refers to it (``store.write(..., {"photos": [sha]})``). A record therefore
never refers to a photo the tablet does not hold; a crash in between leaves
at worst a photo no record refers to, which is kept, not uploaded, and can be
pruned (`prune_orphans`).

The queue is separate from the record outbox (its own table, ``photo_queue``,
in the same SQLite file, under the same lock). `upload_photos` is its
protocol, run by `synchronize` after push and pull (urgent events' first photos
before both):

1. collect the photos the live records refer to that the server has not
   confirmed;
2. ask the server which of them it lacks (``POST /photos/missing``); the rest
   are confirmed;
3. for each one it lacks: append it in chunks (PATCH), from 0 for a photo
   never begun before (marked begun just before its first byte, so after an
   interruption only photos really begun cost a HEAD), else from the bytes
   the server says it holds (HEAD);
   after a drop ask again and resume from there. The server checks the hash
   and the type when the last byte arrives; a 204 at the full length is the
   confirmation;
4. delete from the tablet each confirmed photo that every record referring to
   it has synced (no pending write in the outbox, no rejected change waiting
   for the worker). Its thumbnail stays, so the records still show it.

Hazard: the server says done but a photo is missing (KoboToolbox #432). A
photo is confirmed only by the server's own statement that it holds the
complete, verified photo; the tablet's bytes are deleted only after that.

Hazard: starting over after a drop (ODK Collect #7356). The server keeps the
bytes that arrived before a cut; the client asks and resumes. The upload's
HTTP session does not retry a PATCH by itself (a blind retry would resend a
chunk the server partly holds and get 409); this loop asks HEAD instead.

Hazard: one bad photo blocking the rest. A photo the server refuses for good
(not an image, too large) is marked with the reason and skipped; a photo
that keeps failing is tried again next sync. A network that is gone ends the
phase, and `synchronize` goes on to pull, which will tell the same story.
Only a 401 stops everything, as for records.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Callable, Optional, Sequence

from PIL import ExifTags, Image, ImageOps

from shared.hlc import format_ms

from .store import Store
from .transport import HttpError, Rejected, TransportError, Unauthorized

__all__ = [
    "CaptureSettings", "PreparedPhoto", "prepare_photo", "PhotoQueue", "QueuedPhoto", "PhotoReceipt",
    "PhotoUploadResult", "upload_photos", "DEFAULT_CHUNK_BYTES",
]

DEFAULT_CHUNK_BYTES = 1024 * 1024  # one PATCH; the server keeps partial chunks, so a drop costs little
RESUME_CHUNK_BYTES = 64 * 1024  # the first PATCH after a failure, doubled after each success
MISSING_BATCH = 500  # hashes per POST /photos/missing (the server takes up to 1000)

_TAG_DATETIME_ORIGINAL = 0x9003
_TAG_OFFSET_TIME_ORIGINAL = 0x9011
_EXIF_TIME = "%Y:%m:%d %H:%M:%S"

_QUEUE_SCHEMA = """
CREATE TABLE IF NOT EXISTS photo_queue (
    sha256     TEXT PRIMARY KEY,
    bytes      INTEGER NOT NULL,
    added_at   TEXT NOT NULL,               -- ISO 8601 UTC, the corrected device time
    confirmed  INTEGER NOT NULL DEFAULT 0,  -- the server said it holds the complete, verified photo
    local      INTEGER NOT NULL DEFAULT 1,  -- the photo file is still on the tablet
    failures   INTEGER NOT NULL DEFAULT 0,  -- uploads that failed since the last success
    last_error TEXT,                        -- why the last one failed, for the worker
    refused    INTEGER NOT NULL DEFAULT 0,  -- the server refused it for good (not an image, too large)
    attempted  INTEGER NOT NULL DEFAULT 0   -- an upload was begun: the server may hold some of it
)
"""


# --- capture --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CaptureSettings:
    """How a camera image becomes the stored photo."""

    max_edge: int = 1920
    quality: int = 85
    thumb_edge: int = 320
    thumb_quality: int = 75
    keep_location: bool = False  # the worker's choice: GPS in the photo's EXIF or not


@dataclass(frozen=True)
class PreparedPhoto:
    """A photo ready to store: its JPEG bytes, their SHA-256, a thumbnail and what was kept of the EXIF."""

    sha256: str
    data: bytes
    thumbnail: bytes
    width: int
    height: int
    taken_at: str | None  # EXIF form, "2026:11:18 08:00:00"
    has_location: bool


def prepare_photo(source: bytes | str | os.PathLike[str] | BinaryIO, settings: CaptureSettings = CaptureSettings(),
                  *, taken_at: datetime | None = None, location: tuple[float, float] | None = None) -> PreparedPhoto:
    """Orient, shrink, re-encode and strip a camera image; ``taken_at``/``location`` fill in what its EXIF lacks."""
    handle: Any = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    with Image.open(handle) as image:
        source_exif = image.getexif()
        icc = image.info.get("icc_profile")
        width, height = image.size
        scale = settings.max_edge / max(width, height)
        if scale < 1:
            # JPEG can decode at 1/2, 1/4, 1/8 scale: a 12 MP photo is read at 3 MP, several times faster.
            image.draft("RGB", (max(1, int(width * scale)), max(1, int(height * scale))))
        photo = ImageOps.exif_transpose(image)  # before resizing: the box is the upright photo's
    # After draft() the step left is small (2000 -> 1920 px for a 12 MP photo): bicubic is as sharp
    # there as Lanczos, at two thirds of its cost.
    photo.thumbnail((settings.max_edge, settings.max_edge), Image.Resampling.BICUBIC)
    if photo.mode not in ("RGB", "L"):
        photo = photo.convert("RGB")

    exif = Image.Exif()
    original = source_exif.get_ifd(ExifTags.IFD.Exif)
    moment, zone = original.get(_TAG_DATETIME_ORIGINAL), original.get(_TAG_OFFSET_TIME_ORIGINAL)
    if not moment and taken_at is not None:
        # EXIF keeps the local wall time, and the time zone apart (when the clock knows it).
        moment, zone = taken_at.strftime(_EXIF_TIME), _exif_zone(taken_at)
    if moment:
        exif.get_ifd(ExifTags.IFD.Exif)[_TAG_DATETIME_ORIGINAL] = moment
        if zone:
            exif.get_ifd(ExifTags.IFD.Exif)[_TAG_OFFSET_TIME_ORIGINAL] = zone
    has_location = False
    if settings.keep_location:
        gps = dict(source_exif.get_ifd(ExifTags.IFD.GPSInfo)) or (_gps_ifd(*location) if location else {})
        if gps:
            exif.get_ifd(ExifTags.IFD.GPSInfo).update(gps)
            has_location = True

    out = io.BytesIO()
    photo.save(out, "JPEG", quality=settings.quality, optimize=True, exif=exif.tobytes(),
               **({"icc_profile": icc} if icc else {}))
    data = out.getvalue()
    small = photo.copy()
    small.thumbnail((settings.thumb_edge, settings.thumb_edge), Image.Resampling.LANCZOS)
    thumb = io.BytesIO()
    small.save(thumb, "JPEG", quality=settings.thumb_quality)
    return PreparedPhoto(hashlib.sha256(data).hexdigest(), data, thumb.getvalue(), photo.width, photo.height,
                         moment or None, has_location)


def _exif_zone(moment: datetime) -> str | None:
    """The EXIF form of a time's UTC offset, "+08:00", or None for a naive time."""
    offset = moment.utcoffset()
    if offset is None:
        return None
    minutes = int(offset.total_seconds() // 60)
    return f"{'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _gps_ifd(lat: float, lon: float) -> dict[int, Any]:
    """An EXIF GPS block for a position in degrees."""

    def dms(value: float) -> tuple[float, float, float]:
        value = abs(value)
        degrees = int(value)
        minutes = int((value - degrees) * 60)
        return float(degrees), float(minutes), round((value - degrees - minutes / 60) * 3600, 4)

    return {0: b"\x02\x03\x00\x00", 1: "N" if lat >= 0 else "S", 2: dms(lat), 3: "E" if lon >= 0 else "W",
            4: dms(lon)}


# --- the queue ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class QueuedPhoto:
    """One photo the tablet captured, and where its upload stands."""

    sha256: str
    bytes: int
    added_at: str
    confirmed: bool
    local: bool
    failures: int
    last_error: str | None
    refused: bool = False
    attempted: bool = False


@dataclass(frozen=True)
class PhotoReceipt:
    """How many of a record's photos the server has confirmed: "2 of 3 photos received"."""

    held: int
    total: int
    unknown: int = 0  # photos this tablet did not capture: the server knows, the tablet does not

    def __str__(self) -> str:
        return f"{self.held} of {self.total} photo{'' if self.total == 1 else 's'} received"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_durably(path: Path, data: bytes) -> None:
    """Write a whole file under a temporary name, fsync it, rename it into place, fsync the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)


class PhotoQueue:
    """The tablet's photos: files in ``directory``, their upload state in the store's SQLite file.

    It shares the store's connection, lock and transactions (one SQLite file, one writer), which
    Store keeps private; this module is the one other user of them, and only for its own table.
    """

    def __init__(self, store: Store, directory: str | os.PathLike[str], settings: CaptureSettings = CaptureSettings()):
        self.store = store
        self.directory = Path(directory)
        self.settings = settings
        with store._transaction():
            store._db.execute(_QUEUE_SCHEMA)

    # files
    def path(self, sha256: str) -> Path:
        """Where the photo's file is (or was) kept."""
        return self.directory / sha256[:2] / f"{sha256}.jpg"

    def thumbnail_path(self, sha256: str) -> Path:
        """Where the photo's thumbnail is kept; it outlives the photo."""
        return self.directory / "thumbs" / sha256[:2] / f"{sha256}.jpg"

    # capture
    def capture(self, source: bytes | str | os.PathLike[str] | BinaryIO, *, taken_at: datetime | None = None,
                location: tuple[float, float] | None = None) -> str:
        """Prepare a camera image and keep it; returns the SHA-256 the record should refer to."""
        return self.add(prepare_photo(source, self.settings, taken_at=taken_at, location=location))

    def add(self, photo: PreparedPhoto) -> str:
        """Keep a prepared photo: file and thumbnail on disk (fsynced), then its queue row. Commit the record after."""
        _write_durably(self.path(photo.sha256), photo.data)
        _write_durably(self.thumbnail_path(photo.sha256), photo.thumbnail)
        with self.store._transaction() as db:
            # The same bytes captured twice are one photo; if it was released, it is local again.
            db.execute(
                "INSERT INTO photo_queue (sha256, bytes, added_at) VALUES (?, ?, ?) "
                "ON CONFLICT (sha256) DO UPDATE SET local = 1",
                (photo.sha256, len(photo.data), format_ms(self.store.clock.physical_ms())))
        return photo.sha256

    def discard(self, sha256: str) -> bool:
        """Forget a photo no record refers to (the worker took it out of an unsaved form); False if one does."""
        with self.store._transaction() as db:
            if sha256 in self._referenced(db, live_only=False):
                return False
            db.execute("DELETE FROM photo_queue WHERE sha256 = ?", (sha256,))
        for path in (self.path(sha256), self.thumbnail_path(sha256)):
            path.unlink(missing_ok=True)
        return True

    def prune_orphans(self, older_than_ms: int) -> int:
        """Discard photos no record refers to that were captured more than ``older_than_ms`` ago."""
        cutoff = format_ms(self.store.physical_ms() - older_than_ms)
        with self.store._lock:
            rows = self.store._db.execute("SELECT sha256 FROM photo_queue WHERE added_at < ?", (cutoff,)).fetchall()
        return sum(1 for (sha,) in rows if self.discard(sha))

    # reads
    def get(self, sha256: str) -> QueuedPhoto | None:
        """One photo's queue row, or None."""
        with self.store._lock:
            row = self.store._db.execute(
                "SELECT sha256, bytes, added_at, confirmed, local, failures, last_error, refused, attempted FROM photo_queue "
                "WHERE sha256 = ?", (sha256,)).fetchone()
        return _queued(row) if row else None

    def photos(self) -> list[QueuedPhoto]:
        """Every photo in the queue, oldest first."""
        with self.store._lock:
            rows = self.store._db.execute(
                "SELECT sha256, bytes, added_at, confirmed, local, failures, last_error, refused, attempted FROM photo_queue "
                "ORDER BY added_at, sha256").fetchall()
        return [_queued(row) for row in rows]

    def to_upload(self) -> list[QueuedPhoto]:
        """The photos live records refer to that the server has neither confirmed nor refused, oldest first."""
        # Every record's photos: a long read at 100,000 records, so from a snapshot, not under the lock
        # every capture waits for. A record saved after the snapshot goes with the next sync.
        with self.store.snapshot() as db:
            referenced = self._referenced(db, live_only=True)
        return [p for p in self.photos() if p.local and not p.confirmed and not p.refused and p.sha256 in referenced]

    def waiting(self) -> tuple[int, int]:
        """(photos waiting for upload, of those the ones that failed before): `to_upload`'s count, cheaply.

        `to_upload` reads every record's photos (a second at 100,000 records), too slow for a screen.
        Here only the photos not yet confirmed are looked for, newest records first, and each search
        stops at the first live record that refers to it: a photo taken for a recent capture is found
        within a few rows. Only a photo no record refers to (a form abandoned) costs a full scan.
        """
        with self.store._lock:
            db = self.store._db
            rows = db.execute("SELECT sha256, failures FROM photo_queue "
                              "WHERE local = 1 AND confirmed = 0 AND refused = 0").fetchall()
            waiting = failing = 0
            for sha, failures in rows:
                # instr first: a cheap byte search, so json_each runs only on the rows that mention the hash.
                found = db.execute(
                    "SELECT 1 FROM records r WHERE r.deleted = 0 AND instr(r.state, ?) > 0 AND EXISTS "
                    "(SELECT 1 FROM json_each(r.state, '$.photos[0]') p WHERE p.value = ?) "
                    "ORDER BY r.rowid DESC LIMIT 1", (sha, sha)).fetchone()
                if found:
                    waiting += 1
                    failing += bool(failures)
        return waiting, failing

    def discard_unsaved(self, sha256: str) -> bool:
        """Forget a photo captured for a form that was not saved, when no unsynced record refers to it.

        Cheaper than `discard`, which reads every record: for a photo whose queue row was made by the
        form itself, only a record saved since (so still in the outbox) or a rejected change can refer
        to it. Callers that cannot tell use `discard`.
        """
        with self.store._transaction() as db:
            if sha256 in self._waiting(db):
                return False
            db.execute("DELETE FROM photo_queue WHERE sha256 = ?", (sha256,))
        for path in (self.path(sha256), self.thumbnail_path(sha256)):
            path.unlink(missing_ok=True)
        return True

    def receipt(self, photos: Sequence[str]) -> PhotoReceipt:
        """How many of a record's photos the server has confirmed to this tablet."""
        hashes = list(dict.fromkeys(photos))
        with self.store._lock:
            rows = dict(self.store._db.execute(
                f"SELECT sha256, confirmed FROM photo_queue WHERE sha256 IN ({','.join('?' * len(hashes))})",
                hashes).fetchall()) if hashes else {}
        return PhotoReceipt(sum(1 for h in hashes if rows.get(h)), len(hashes),
                            sum(1 for h in hashes if h not in rows))

    # upload state
    def confirm(self, sha256: str) -> None:
        """The server holds the complete photo."""
        with self.store._transaction() as db:
            db.execute("UPDATE photo_queue SET confirmed = 1, failures = 0, last_error = NULL WHERE sha256 = ?",
                       (sha256,))

    def mark_attempted(self, hashes: Sequence[str]) -> None:
        """Uploads of these photos are about to begin: from now on, ask the server before sending."""
        with self.store._transaction() as db:
            db.executemany("UPDATE photo_queue SET attempted = 1 WHERE sha256 = ?", [(h,) for h in hashes])

    def note_failure(self, sha256: str, reason: str, *, refused: bool = False) -> None:
        """An upload of the photo failed; keep why, for the worker. A refused photo is not tried again."""
        with self.store._transaction() as db:
            db.execute("UPDATE photo_queue SET failures = failures + 1, last_error = ?, refused = ? "
                       "WHERE sha256 = ?", (reason[:500], int(refused), sha256))

    def release(self) -> int:
        """Delete the files of confirmed photos whose every referring record has synced; returns how many."""
        with self.store._lock:
            held = {sha for (sha,) in self.store._db.execute(
                "SELECT sha256 FROM photo_queue WHERE confirmed = 1 AND local = 1").fetchall()}
            if not held:
                return 0
            waiting = self._waiting(self.store._db)
            done = sorted(held - waiting)
            with self.store._transaction() as db:
                db.executemany("UPDATE photo_queue SET local = 0 WHERE sha256 = ?", [(sha,) for sha in done])
        # The row says "gone" before the file goes: a crash in between leaves a stray file, never a row
        # that points at nothing.
        for sha in done:
            self.path(sha).unlink(missing_ok=True)
        return len(done)

    # queries over the records (their ``state`` is {field: [value, hlc]}, so photos are at $.photos[0])
    @staticmethod
    def _referenced(db: Any, *, live_only: bool) -> set[str]:
        sql = ("SELECT DISTINCT p.value FROM records r, json_each(r.state, '$.photos[0]') p "
               "WHERE p.type = 'text'" + (" AND r.deleted = 0" if live_only else ""))
        return {sha for (sha,) in db.execute(sql).fetchall()}

    @staticmethod
    def _waiting(db: Any) -> set[str]:
        """Photos referred to by a record with unsynced writes, or by a rejected change kept for the worker."""
        pending = db.execute(
            "SELECT DISTINCT p.value FROM outbox o JOIN records r ON r.kind = o.kind AND r.id = o.id, "
            "json_each(r.state, '$.photos[0]') p WHERE p.type = 'text'").fetchall()
        rejected = db.execute(
            "SELECT DISTINCT p.value FROM rejected j, json_each(j.fields, '$.photos[0]') p "
            "WHERE p.type = 'text'").fetchall()
        return {sha for (sha,) in pending} | {sha for (sha,) in rejected}


def _queued(row: Sequence[Any]) -> QueuedPhoto:
    sha, size, added_at, confirmed, local, failures, last_error, refused, attempted = row
    return QueuedPhoto(sha, size, added_at, bool(confirmed), bool(local), failures, last_error, bool(refused),
                       bool(attempted))


# --- upload ---------------------------------------------------------------------------------------

Progress = Callable[[str, int, Optional[int]], None]


@dataclass
class PhotoUploadResult:
    """What one photo phase did."""

    uploaded: int = 0  # photos whose last byte this phase sent
    confirmed: int = 0  # photos the server said it already held
    bytes_total: int = 0  # bytes of the photos the server lacked
    bytes_done: int = 0  # of those, the bytes the server now holds
    failed: dict[str, str] = field(default_factory=dict)  # sha256 -> reason, tried again next sync
    released: int = 0  # photo files deleted from the tablet
    error: str | None = None  # why the phase stopped early (the network), if it did


class _Gone(Exception):
    """The network is gone: stop the phase, not just this photo."""


def upload_photos(queue: PhotoQueue, transport: Any, progress: Progress | None = None, *,
                  chunk_bytes: int = DEFAULT_CHUNK_BYTES, max_failures: int = 4, backoff: float = 0.5,
                  sleep: Callable[[float], None] = time.sleep, only: Sequence[str] | None = None,
                  between: Callable[[], Sequence[str]] | None = None) -> PhotoUploadResult:
    """Upload the photos the server lacks, resuming each from the bytes it holds; raises only Unauthorized.

    ``transport`` has ``photos_missing``, ``photo_offset`` and ``photo_append`` (HttpTransport).
    Progress is ``("photos", bytes the server holds, bytes total)``. ``only``: just these photos, in
    this order (an urgent event's first photo). ``between`` is called between two chunks and before each
    photo (sync pushes the records captured meanwhile there); the photos it answers go next.
    """
    notify = progress or (lambda phase, done, total: None)
    result = PhotoUploadResult()
    waiting = queue.to_upload()
    if only is not None:
        rank = {sha: n for n, sha in enumerate(dict.fromkeys(only))}
        waiting = sorted((p for p in waiting if p.sha256 in rank), key=lambda p: rank[p.sha256])
    jump: list[str] = []  # photos the between hook asked for, to go next

    def check() -> None:
        if between is not None:
            jump.extend(between())

    try:
        # 1-2. Ask which are missing; the others are already safe on the server.
        lacking: set[str] = set()
        for start in range(0, len(waiting), MISSING_BATCH):
            batch = [p.sha256 for p in waiting[start:start + MISSING_BATCH]]
            missing = set(transport.photos_missing(batch)) & set(batch)
            for sha in batch:
                if sha not in missing:
                    queue.confirm(sha)
                    result.confirmed += 1
            lacking |= missing
        todo = [p for p in waiting if p.sha256 in lacking]
        # Each photo is marked as begun only right before its first byte goes (upload_one), so after an
        # interruption only the photos really begun cost a HEAD.
        result.bytes_total = sum(p.bytes for p in todo)
        notify("photos", 0, result.bytes_total)
        # The same progress in photos, as a worker counts it ("照片 3 / 12"): phase "photo_files".
        files = [0, len(todo)]
        notify("photo_files", 0, files[1])

        # 3. Each photo from the bytes the server holds.
        seen: set[str] = set()
        while True:
            check()
            while jump:  # captured during this phase, urgent: ahead of the queue
                sha = jump.pop()
                photo = queue.get(sha)
                if sha in seen or photo is None or photo.confirmed or photo.refused or not photo.local:
                    continue
                todo = [photo] + [p for p in todo if p.sha256 != sha]
                if sha not in lacking:
                    lacking.add(sha)
                    result.bytes_total += photo.bytes
                    files[1] += 1
            if not todo:
                break
            photo, todo = todo[0], todo[1:]
            if photo.sha256 in seen:
                continue
            seen.add(photo.sha256)
            finished_before = result.bytes_done

            def advance(held: int, base: int = finished_before) -> None:
                result.bytes_done = base + held
                notify("photos", result.bytes_done, result.bytes_total)

            try:
                _upload_one(queue, transport, photo, advance, chunk_bytes=chunk_bytes, max_failures=max_failures,
                            backoff=backoff, sleep=sleep, between=check)
            except Unauthorized:
                raise
            except _Gone as exc:
                queue.note_failure(photo.sha256, str(exc))
                result.failed[photo.sha256] = str(exc)
                result.error = str(exc)
                break
            except (TransportError, OSError) as exc:
                reason = exc.message if isinstance(exc, HttpError) else str(exc)
                # 413 and 415 would come back the same however often the photo went up again.
                queue.note_failure(photo.sha256, reason,
                                   refused=isinstance(exc, HttpError) and exc.status in (413, 415))
                result.failed[photo.sha256] = reason
                result.bytes_done = finished_before + photo.bytes  # counted as dealt with, for the progress bar
                notify("photos", result.bytes_done, result.bytes_total)
                files[0] += 1
                notify("photo_files", files[0], files[1])
                continue
            queue.confirm(photo.sha256)
            result.uploaded += 1
            files[0] += 1
            notify("photo_files", files[0], files[1])
    except Unauthorized:
        raise
    except TransportError as exc:  # the missing call itself
        result.error = f"{type(exc).__name__}: {exc}"
    # 4. Free the tablet of what is safe on the server and settled in every record.
    result.released = queue.release()
    return result


def _upload_one(queue: PhotoQueue, transport: Any, photo: QueuedPhoto, advance: Callable[[int], None], *,
                chunk_bytes: int, max_failures: int, backoff: float, sleep: Callable[[float], None],
                between: Callable[[], None] = lambda: None) -> None:
    """Append the photo from the offset the server holds until the server confirms it whole."""
    sha, size = photo.sha256, photo.bytes
    failures = 0
    restarted = False
    furthest = -1  # the most bytes the server was seen to hold
    # After a failure, resume small: right after a cut the server may still be writing the cut
    # request's last bytes, and a PATCH sent from an offset read a moment too early is refused with
    # 409 after its whole body went out. A small first chunk bounds that waste; it grows back after.
    chunk_size = chunk_bytes

    def moved(held: int) -> int:
        # Progress, whichever answer shows it (a PATCH cut mid-body still moves the offset): a photo is
        # given up only after max_failures in a row that moved nothing.
        nonlocal failures, furthest
        if held > furthest:
            furthest, failures = held, 0
        return held

    def ask() -> int:
        offset, length = transport.photo_offset(sha)
        if length is not None and length != size:
            raise Rejected(409, "length_mismatch", f"the server expects {length} bytes for this photo, not {size}")
        return moved(offset)

    def failed(exc: Exception, *, wait: bool = True) -> None:
        nonlocal failures, chunk_size
        failures += 1
        if failures > max_failures:
            if isinstance(exc, HttpError):
                raise exc
            raise _Gone(f"{type(exc).__name__}: {exc}") from exc
        chunk_size = min(chunk_bytes, RESUME_CHUNK_BYTES)
        if wait:
            sleep(backoff * 2 ** (failures - 1))

    # A photo this tablet never began to upload starts at 0 without asking, as tus's creation does
    # (a round trip saved per photo); any other asks first. Should the server hold some of it all the
    # same (another tablet with the same bytes), its 409 says how much.
    offset: int | None = None if photo.attempted else 0
    begun = photo.attempted
    with open(queue.path(sha), "rb") as handle:
        while True:
            try:
                if offset is None:
                    offset = ask()
                    advance(offset)
                handle.seek(offset)
                chunk = handle.read(min(chunk_size, size - offset))
                if not begun:
                    # From now on the server may hold some of it: a later try asks first (one commit a photo).
                    queue.mark_attempted([sha])
                    begun = True
                # At the full length with nothing to send, the empty PATCH asks the server to finish
                # (or to say it has): only its 204 at the full length confirms the photo.
                held = transport.photo_append(sha, offset, size, chunk)
            except Unauthorized:
                raise
            except Rejected as exc:
                if exc.status == 409 and exc.code in ("offset_mismatch", "upload_locked"):
                    held_now = exc.details.get("offset") if isinstance(exc.details, dict) else None
                    offset = moved(held_now) if isinstance(held_now, int) and 0 <= held_now <= size else None
                    # A wrong offset is told the right one: go on at once. A lock is another request
                    # still writing this photo (often our own, cut a moment ago): give it time.
                    failed(exc, wait=exc.code == "upload_locked")
                    continue
                if exc.code == "hash_mismatch" and not restarted:
                    # The server discarded what it held. If the tablet's file is sound, the fault was
                    # in the server's partial bytes (a crash): start over, once.
                    if _sha256_of(queue.path(sha)) != sha:
                        raise OSError(f"the photo file {sha[:12]}… on this tablet is damaged") from None
                    restarted, offset = True, None
                    continue
                raise
            except (HttpError, TransportError) as exc:  # 5xx, or the connection dropped
                offset = None
                failed(exc)
                continue
            if held < offset or held > size:
                raise TransportError(f"the server answered offset {held} to an append at {offset} of {size}")
            if held == offset and chunk:
                failed(TransportError(f"the server took none of {len(chunk)} bytes at offset {offset}"))
            else:
                chunk_size = min(chunk_bytes, chunk_size * 2)
            offset = moved(held)
            advance(offset)
            if offset == size:
                return
            between()  # records captured meanwhile go now, not after the photos


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


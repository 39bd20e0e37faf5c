"""The tablet's replica: records, the outbox, cursors and the clock, in one SQLite file.

A worker's capture is safe once `Store.write` returns: the record and its
outbox entry were committed in one transaction, after the change passed the
same validation the server applies. Sync (mobile/sync.py) only ever moves
entries *out* of the outbox after the server has acknowledged them.

What is stored
--------------
* ``records``: one row per record, its state as ``{field: [value, hlc]}``.
  Fields this app version does not know (written by a newer one) are kept as
  they came and survive every merge.
* ``outbox``: one row per record with unacknowledged local writes: the set of
  *pending fields* and a position ``seq`` (the record's first unacknowledged
  write, so a parent is pushed before the children created after it). A push
  carries each pending field with the HLC it had when the batch was read; that
  HLC is the field's version (see the next hazard), so no counter is needed.
* ``cursors``: the opaque cursor of each bucket, replaced by each pulled page.
* ``rejected``: changes the server refused, with its reason and code. They leave
  the outbox and are never retried by themselves. The record keeps the worker's
  input and is shown as refused until the worker mends and resends it
  (`resend_refused`) or discards it (`discard_refused`: the record goes back to
  the server's state, pulled again, or goes where the server never had it).
* ``meta``: node id, the clock's last HLC and offset, the write/ack floor,
  server url, device token, user.

Hazard: an edit while its push is in flight. The server acknowledges what it
was sent, not what the record holds now. `acknowledge` therefore clears a
pending field only if its HLC is still the one that was pushed. An HLC names
one write of this node, so an unchanged HLC means an unchanged write (a finer
test than a per-record version counter: the fields acknowledged unchanged are
cleared, only the ones edited in flight stay pending and go out next push).

Hazard: a clock that is far ahead. The HLC never goes backwards, so merely
correcting the offset would not help: every new write would still carry the
fast time. `restamp_pending` rewinds the clock to the *settled floor* (the
greatest HLC this store has seen from the server or had acknowledged; every
write outside the outbox is below it), applies the corrected offset and
re-stamps the unacknowledged writes in their original order. Nothing that
left the tablet is re-stamped, so causality with what others saw holds.

Hazard: a restart. The clock's last HLC and offset are stored with every
write, so after a reboot (even one that resets the device clock to 1970) the
HLC carries on from where it was and never goes backwards.

Durability: WAL with ``synchronous=FULL``. NORMAL would be faster, but in WAL
mode it may lose the last commits on power loss, and a tablet whose battery
dies must not lose a capture the worker saw saved. Writes are human-paced and
a pulled page is a few commits (mobile/sync.py, APPLY_CHUNK), so one fsync per
commit is cheap.

Speed of a pull (issue 19): a pulled chunk is merged with one read of the
records it names and one ``executemany`` (`_merge_remote`). The secondary
indexes stay in place during a first sync: dropping them and building them
at the end saved about as much as the build cost (docs/benchmarks.md). A
record not held yet takes the change's fields as its state, without a merge,
and is stored as the JSON text those fields arrived in when the transport
kept it (mobile/transport.py, `decode_pull`), not encoded again.

Hazard: a stored text that says something else than the state merged. The
text is the one the state was decoded from, by the json module's own scanner,
so the two are the same value; the one way they part is a fields object that
names a field twice, which no JSON encoder of a dict writes: Python keeps the
last, SQLite's ``json_extract`` (the "my cases" indexes) finds the first.
Every read of a state in Python decodes the text as the merge did.

Threads: one connection, guarded by one re-entrant lock, shared by the UI
thread and the sync thread. The lock also guards the `Clock`, which is not
thread-safe. Every public method holds it for a short, bounded time (a pulled
page is bounded by the page limit), so the UI waits at most one page apply.
The lock knows which threads outside a sync wait for it or hold it: the sync
gives way to them between two of its steps (`give_way`), so a capture during a
first sync waits for one chunk at most and has the interpreter to itself.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
from operator import itemgetter
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from shared.hlc import HLC, Clock, format_ms, is_hlc, system_ms
from shared.merge import canonical, is_deleted, merge_record
from shared.records import KINDS, Change, ValidationError, dump_change, load_change, uuid7

__all__ = [
    "Store", "Record", "Outgoing", "Acknowledged", "Rejection", "Counts", "RemoteChangeError", "parse_remote_changes",
    "ValidationError", "SCHEMA_VERSION",
]

SCHEMA_VERSION = 2  # 2: rejected.code (the server's machine-readable reason, issue 13)

# The longest a background step waits for foreground writes (`Store.give_way`): long enough for a burst of saves,
# short enough that a worker who keeps saving never stops a sync.
GIVE_WAY_MAX_S = 1.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    kind    TEXT NOT NULL,
    id      TEXT NOT NULL,
    bucket  TEXT NOT NULL,
    state   TEXT NOT NULL,              -- JSON {field: [value, hlc]}, unknown fields included
    deleted INTEGER NOT NULL DEFAULT 0, -- the tombstone, mirrored for queries
    PRIMARY KEY (kind, id)
);
CREATE INDEX IF NOT EXISTS records_by_id ON records (id);
CREATE INDEX IF NOT EXISTS records_by_bucket ON records (kind, bucket);
-- The field app's "my cases": a worker's events, and the case actions of a set of events (Store.states,
-- Store.children). Expression indexes: the queries must spell the expression exactly so.
CREATE INDEX IF NOT EXISTS records_by_reporter ON records (kind, json_extract(state, '$.reporter[0]'));
CREATE INDEX IF NOT EXISTS records_by_event ON records (kind, json_extract(state, '$.event[0]'));
CREATE TABLE IF NOT EXISTS outbox (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: a push pages through it
    kind    TEXT NOT NULL,
    id      TEXT NOT NULL,
    fields  TEXT NOT NULL,                     -- JSON sorted list of pending field names
    UNIQUE (kind, id)
);
CREATE TABLE IF NOT EXISTS cursors (
    bucket TEXT PRIMARY KEY,
    cursor TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rejected (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    kind   TEXT NOT NULL,
    id     TEXT NOT NULL,
    bucket TEXT NOT NULL,
    fields TEXT NOT NULL,                      -- JSON {field: [value, hlc]} as pushed
    reason TEXT NOT NULL,
    at     TEXT NOT NULL,                      -- ISO 8601 UTC, the corrected device time
    code   TEXT                                -- the server's code for the reason (None from older servers)
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL                        -- JSON
);
"""
# Patrols (issue 17, mobile/patrol.py): every kept track point, written at once, until it is sealed into a
# `track` record (batch = that record's seq); a flagged point (future, too_fast) stays here, batch NULL.
_PATROL_SCHEMA = """
CREATE TABLE IF NOT EXISTS track_points (
    patrol TEXT NOT NULL,
    n      INTEGER NOT NULL,                   -- the point's place in its patrol, from 0
    at_ms  INTEGER NOT NULL,
    lat    REAL NOT NULL,
    lon    REAL NOT NULL,
    acc    REAL,
    speed  REAL,
    flags  TEXT NOT NULL DEFAULT '',           -- comma-separated: poor_accuracy, future, too_fast
    batch  INTEGER,                            -- the seq of the track record holding it, NULL while not (yet) sent
    PRIMARY KEY (patrol, n)
);
"""


class RemoteChangeError(ValueError):
    """A pulled change that is not a change at all; the page is not applied."""


@dataclass(frozen=True)
class Record:
    """One record as the tablet holds it."""

    kind: str
    id: str
    bucket: str
    state: dict[str, tuple[Any, str]]
    pending: frozenset[str] = frozenset()

    @property
    def values(self) -> dict[str, Any]:
        """The plain values, without timestamps."""
        return {name: write[0] for name, write in self.state.items()}

    @property
    def deleted(self) -> bool:
        """Whether the tombstone is set."""
        return is_deleted(self.state)

    @property
    def synced(self) -> bool:
        """Whether the server has acknowledged every local write of this record."""
        return not self.pending


@dataclass(frozen=True)
class Outgoing:
    """A batch read from the outbox: the changes to push and where the batch ends."""

    changes: list[Change]
    last_seq: int = 0

    def __len__(self) -> int:
        return len(self.changes)

    def __iter__(self) -> Iterator[Change]:
        return iter(self.changes)


@dataclass(frozen=True)
class Rejection:
    """A change the server refused, kept to be shown to the worker."""

    seq: int
    kind: str
    id: str
    bucket: str
    fields: dict[str, tuple[Any, str]]
    reason: str
    at: str
    code: str | None = None  # the server's machine-readable code, when it sent one


@dataclass(frozen=True)
class Acknowledged:
    """What `acknowledge` did with one push answer."""

    applied: int = 0
    stale: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    still_pending: int = 0  # records edited again while the push was in flight


@dataclass(frozen=True)
class Counts:
    """Numbers for the UI."""

    records: int
    unsynced: int
    rejected: int


class _StoreLock:
    """The store's lock (reentrant), knowing which threads in the foreground wait for it or hold it.

    A thread is in the foreground unless it marked itself background (`background`, which synchronize
    does for the sync thread). `quiet` is where background work waits for the foreground to be done.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._state = threading.Condition(threading.Lock())
        self._foreground: dict[int, int] = {}  # thread id -> entries waiting or held
        self._local = threading.local()

    def __enter__(self) -> "_StoreLock":
        foreground = not getattr(self._local, "background", False)
        if foreground:
            self._count(+1)
        try:
            self._lock.acquire()
        except BaseException:
            if foreground:
                self._count(-1)
            raise
        self._local.entries = getattr(self._local, "entries", [])
        self._local.entries.append(foreground)
        return self

    def __exit__(self, *exc: object) -> None:
        foreground = self._local.entries.pop()
        self._lock.release()
        if foreground:
            self._count(-1)

    def _count(self, step: int) -> None:
        me = threading.get_ident()
        with self._state:
            held = self._foreground.get(me, 0) + step
            if held:
                self._foreground[me] = held
            else:
                self._foreground.pop(me, None)
                self._state.notify_all()

    def quiet(self, timeout: float) -> None:
        """Wait, at most ``timeout``, until no other thread in the foreground waits for the lock or holds it."""
        me = threading.get_ident()
        with self._state:
            self._state.wait_for(lambda: not (self._foreground.keys() - {me}), timeout)

    @contextmanager
    def background(self) -> Iterator[None]:
        before = getattr(self._local, "background", False)
        self._local.background = True
        try:
            yield
        finally:
            self._local.background = before

    def foreground_waiting(self) -> bool:
        """Whether any thread in the foreground waits for the lock or holds it (for tests and benches)."""
        with self._state:
            return bool(self._foreground)


class _StoredClock(Clock):
    """A Clock whose state is written to the store each time it moves."""

    def __init__(self, store: "Store", **kwargs: Any):
        super().__init__(**kwargs)
        self._store = store

    def now(self) -> HLC:
        """A timestamp for a local write, persisted before it is returned."""
        with self._store._lock:
            hlc = super().now()
            self._store._save_clock()
            return hlc

    def update(self, remote: HLC | str) -> HLC:
        """Absorb a remote timestamp, persisted before it is returned."""
        with self._store._lock:
            hlc = super().update(remote)
            self._store._save_clock()
            return hlc

    def _state(self) -> tuple[HLC, int]:
        return self.last, self.offset_ms

    def _restore(self, state: tuple[HLC, int]) -> None:
        self.rewind(*state)


class Store:
    """The tablet's SQLite replica. Safe to share between the UI and the sync thread."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        physical: Callable[[], int] = system_ms,
        node: str | None = None,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ):
        self.path = str(path)
        self._random_bytes = random_bytes
        self._lock = _StoreLock()
        # Held by synchronize for a whole sync: two syncs at once would not lose anything, but
        # the later could save an older page's cursors over the newer ones and pull twice.
        self.sync_lock = threading.Lock()
        self._in_transaction = False
        self._readers: list[sqlite3.Connection] = []  # open snapshot connections, closed with the store
        # isolation_level=None: transactions are begun and ended here, explicitly, never implicitly.
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        try:
            self._open(physical, node)
        except BaseException:
            self._db.close()
            raise

    def _open(self, physical: Callable[[], int], node: str | None) -> None:
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        with self._transaction(restore_clock=False):
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RuntimeError(f"{self.path} was written by a newer app (schema {version}); update the app")
            for statement in (_SCHEMA + _PATROL_SCHEMA).split(";"):
                if statement.strip():
                    self._db.execute(statement)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(rejected)")}
            if "code" not in columns:  # a store of schema 1
                self._db.execute("ALTER TABLE rejected ADD COLUMN code TEXT")
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            stored_node = self._get_meta("node")
            if stored_node is None:
                # Generated once: the node id is what makes this device's HLCs unique.
                stored_node = node or self._random_bytes(8).hex()
                self._set_meta("node", stored_node)
            elif node is not None and node != stored_node:
                raise ValueError(f"this store belongs to node {stored_node}, not {node}")
            last = self._get_meta("clock_last")
            self._clock = _StoredClock(
                self,
                node=stored_node,
                physical=physical,
                offset_ms=int(self._get_meta("offset_ms") or 0),
                last=HLC.parse(last) if last else None,
            )
            self._save_clock()

    # --- plumbing -----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the database connection (and the read-only ones of `snapshot`)."""
        with self._lock:
            self._db.close()
            for reader in self._readers:
                reader.close()
            self._readers.clear()

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read-only connection in one read transaction, *without* the store's lock; closed after.

        For long reads off the UI thread (the photo phase's scan of every record): WAL lets them
        see a consistent snapshot while the UI keeps writing, instead of holding the one lock that
        every save waits for. What is committed after the snapshot began is not seen. A connection
        per call (opening one costs well under a millisecond): kept ones would pile up, one per
        sync thread.
        """
        uri = Path(self.path).resolve().as_uri() + "?mode=ro"
        reader = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False, timeout=30)
        with self._lock:
            self._readers.append(reader)
        try:
            reader.execute("BEGIN")
            yield reader
        finally:
            with self._lock:
                if reader in self._readers:
                    self._readers.remove(reader)
            reader.close()  # ends the read transaction too

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def give_way(self, timeout: float = GIVE_WAY_MAX_S) -> None:
        """Wait, at most ``timeout`` seconds, while another thread in the foreground waits for the store or holds it.

        For background work, between two of its steps (a pulled chunk's merge, a page's request and
        decoding). Why: Python's locks are not fair, and a save is a dozen round trips to SQLite,
        each of which needs the interpreter's lock back from two busy sync threads; a capture
        during a first sync waited up to hundreds of milliseconds so. With the sync threads idle
        while it runs, a capture waits at most for the one step already under way. The timeout
        keeps a stream of captures from stopping a sync.
        """
        self._lock.quiet(timeout)

    def background(self) -> AbstractContextManager[None]:
        """Mark this thread's use of the store, for the block, as background work (a sync): it does not make
        background work give way, and foreground work does not wait for it in `give_way`."""
        return self._lock.background()

    @contextmanager
    def _transaction(self, *, restore_clock: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction under the lock; on failure the clock is put back as it was."""
        with self._write_transaction(restore_clock) as connection:
            yield connection

    @contextmanager
    def _write_transaction(self, restore_clock: bool) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._in_transaction:
                raise RuntimeError("nested store transaction")
            saved = self._clock._state() if restore_clock else None
            # IMMEDIATE takes the write lock now, so no other connection can make us fail half-way.
            self._db.execute("BEGIN IMMEDIATE")
            self._in_transaction = True
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:  # some errors (disk full, I/O) have rolled back already
                    self._db.execute("ROLLBACK")
                # A rewound or advanced clock must not outlive the writes it stamped.
                if saved is not None:
                    self._clock._restore(saved)
                raise
            finally:
                self._in_transaction = False

    def _get_meta(self, key: str) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def _set_meta(self, key: str, value: Any) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, json.dumps(value)),
        )

    def _save_clock(self) -> None:
        self._set_meta("clock_last", str(self._clock.last))
        self._set_meta("offset_ms", self._clock.offset_ms)

    def _raise_floor(self, hlcs: Iterable[str]) -> None:
        """Remember the greatest HLC that is settled: seen from the server or acknowledged by it."""
        top = max(hlcs, default=None)
        if top is None:
            return
        floor = self._get_meta("settled_hlc")
        if floor is None or top > floor:
            self._set_meta("settled_hlc", top)

    # --- meta ---------------------------------------------------------------------------------

    @property
    def node(self) -> str:
        """This device's node id: 16 hex digits, made once."""
        return self._clock.node

    @property
    def clock(self) -> Clock:
        """The device's HLC; every step it takes is persisted."""
        return self._clock

    def physical_ms(self) -> int:
        """The corrected physical clock, in Unix milliseconds."""
        with self._lock:
            return self._clock.physical_ms()

    def observe(self, hlc: str | None) -> None:
        """Absorb a timestamp the server sent (a push or pull answer)."""
        if not hlc:
            return
        _check_hlc(hlc)
        with self._transaction():
            self._clock.update(hlc)
            self._raise_floor([hlc])

    def save_login(self, server_url: str, token: str, user: Mapping[str, Any], buckets: Sequence[str] = ()) -> None:
        """Keep what a successful log-in returned."""
        with self._transaction():
            self._set_meta("server_url", server_url)
            self._set_meta("token", token)
            self._set_meta("user", dict(user))
            self._set_meta("buckets", list(buckets))

    def forget_token(self) -> None:
        """Drop the device token (after a 401); nothing else is touched."""
        with self._transaction():
            self._db.execute("DELETE FROM meta WHERE key = 'token'")

    def setting(self, key: str) -> Any:
        """One stored setting: server_url, token, user, buckets (None when unset)."""
        with self._lock:
            return self._get_meta(key)

    # Meta keys that only the store itself may write: the clock's state, the node, the token.
    _PRIVATE_META = frozenset({"node", "clock_last", "offset_ms", "settled_hlc", "token"})

    def save_setting(self, key: str, value: Any) -> None:
        """Keep one app setting (JSON) in meta, e.g. the last known location or the last sync outcome."""
        if key in self._PRIVATE_META:
            raise ValueError(f"{key!r} is the store's own and cannot be set this way")
        with self._transaction():
            self._set_meta(key, value)

    @property
    def server_url(self) -> str | None:
        """The server this device logged in to."""
        return self.setting("server_url")

    @property
    def token(self) -> str | None:
        """The device token, or None before log-in."""
        return self.setting("token")

    @property
    def user(self) -> dict[str, Any] | None:
        """The logged-in user: {id, name, role}."""
        return self.setting("user")

    # --- local writes -------------------------------------------------------------------------

    def create(self, kind: str, values: Mapping[str, Any], bucket: str | None = None) -> Change:
        """Create a record with a new UUIDv7 id; the change's id is the record's."""
        with self._lock:
            record_id = uuid7(self._clock.physical_ms(), self._random_bytes(10))
            return self.write(kind, record_id, values, bucket)

    def delete(self, kind: str, record_id: str) -> Change:
        """Set the record's tombstone."""
        return self.write(kind, record_id, {"_deleted": True})

    def write(self, kind: str, record_id: str, values: Mapping[str, Any], bucket: str | None = None) -> Change:
        """Stamp the given fields and commit record and outbox entry together; raises ValidationError."""
        with self._transaction():
            return self._write(kind, record_id, values, bucket)

    def write_many(self, writes: Sequence[tuple[str, str, Mapping[str, Any], str | None]]) -> list[Change]:
        """Several writes ``(kind, id, values, bucket)`` in one transaction: all are committed or none.

        They are stamped in the given order, so a parent written first sorts before its children,
        and a later write sees the earlier ones (a case action finds its new event's bucket).
        """
        with self._transaction():
            return [self._write(kind, record_id, values, bucket) for kind, record_id, values, bucket in writes]

    def new_id(self) -> str:
        """A fresh UUIDv7 for a record about to be created (by the corrected device time)."""
        with self._lock:
            return uuid7(self._clock.physical_ms(), self._random_bytes(10))

    def _write(self, kind: str, record_id: str, values: Mapping[str, Any], bucket: str | None) -> Change:
        """The body of `write`, inside a transaction the caller holds."""
        spec = KINDS.get(kind)
        if spec is None:
            raise ValidationError({"kind": [f"unknown kind {kind!r}"]})
        if not values:
            raise ValidationError({"fields": ["a write must set at least one field"]})
        row = self._db.execute(
            "SELECT bucket, state FROM records WHERE kind = ? AND id = ?", (kind, record_id)
        ).fetchone()
        local = _load_state(row[1]) if row else None
        bucket = bucket or self._bucket_for(spec, values, row[0] if row else None, local)
        hlc = str(self._clock.now())
        writes = {name: (value, hlc) for name, value in values.items()}
        change = Change(kind, record_id, bucket, writes)
        try:
            # The round trip through JSON is the wire's: it refuses what cannot travel.
            wire = json.loads(json.dumps(dump_change(change)))
        except (TypeError, ValueError) as exc:
            raise ValidationError({"fields": [f"not JSON: {exc}"]}) from None
        load_change(wire)
        if local is None:
            missing = sorted(spec.required - set(values))
            if missing:
                raise ValidationError({"fields": {name: ["required to create the record"] for name in missing}})
        # Only values that differ are stamped: a form that saves every field must not
        # override a colleague's concurrent edit of a field this worker never touched.
        writes = {
            name: (wire["fields"][name][0], hlc)
            for name in writes
            if local is None or name not in local or canonical(local[name][0]) != canonical(values[name])
        }
        merged = merge_record(local, writes, append_only=spec.append_only)
        if merged.refused:
            raise ValidationError(
                {"fields": {name: ["already set; this record is history and cannot be changed"]
                            for name in sorted(merged.refused)}}
            )
        if merged.changed:
            self._put_record(kind, record_id, bucket, merged.state)
            self._mark_pending(kind, record_id, merged.changed)
        return Change(kind, record_id, bucket, {name: writes[name] for name in sorted(merged.changed)})

    def _bucket_for(self, spec: Any, values: Mapping[str, Any], current: str | None,
                    local: Mapping[str, Any] | None) -> str:
        """The record's bucket: from its grid, else where it already is, else its parent's."""
        bucket = spec.bucket_of(values)
        if bucket:
            return bucket
        if current:
            return current
        if spec.parent:
            field_name, parent_kind = spec.parent
            parent_id = values.get(field_name)
            if parent_id is None and local:
                parent_id = local.get(field_name, (None,))[0]
            row = self._db.execute(
                "SELECT bucket FROM records WHERE kind = ? AND id = ?", (parent_kind, parent_id)
            ).fetchone()
            if row:
                return row[0]
            raise ValidationError({"bucket": [f"the {parent_kind} {parent_id!r} is not on this device; "
                                               "give the bucket explicitly"]})
        raise ValidationError({"bucket": ["cannot tell the bucket from these values; give it explicitly"]})

    def _put_record(self, kind: str, record_id: str, bucket: str, state: Mapping[str, Any]) -> None:
        self._db.execute(_PUT_RECORD, _record_row(kind, record_id, bucket, state))

    def _mark_pending(self, kind: str, record_id: str, names: Iterable[str]) -> None:
        row = self._db.execute("SELECT fields FROM outbox WHERE kind = ? AND id = ?", (kind, record_id)).fetchone()
        if row is None:
            self._db.execute(
                "INSERT INTO outbox (kind, id, fields) VALUES (?, ?, ?)",
                (kind, record_id, json.dumps(sorted(set(names)))),
            )
        else:
            # The row keeps its seq: the record goes out where its first unsent write was.
            pending = set(json.loads(row[0])) | set(names)
            self._db.execute(
                "UPDATE outbox SET fields = ? WHERE kind = ? AND id = ?",
                (json.dumps(sorted(pending)), kind, record_id),
            )

    # --- reads --------------------------------------------------------------------------------

    def get(self, kind: str | None, record_id: str) -> Record | None:
        """One record by kind and id (kind None: any kind), or None."""
        with self._lock:
            if kind is None:
                row = self._db.execute(
                    "SELECT kind, id, bucket, state FROM records WHERE id = ? LIMIT 1", (record_id,)
                ).fetchone()
            else:
                row = self._db.execute(
                    "SELECT kind, id, bucket, state FROM records WHERE kind = ? AND id = ?", (kind, record_id)
                ).fetchone()
            return self._record(row) if row else None

    def query(self, kind: str, bucket: str | None = None, *, include_deleted: bool = False) -> list[Record]:
        """The records of a kind, optionally of one bucket, by id (UUIDv7: by creation millisecond)."""
        sql = "SELECT kind, id, bucket, state FROM records WHERE kind = ?"
        args: list[Any] = [kind]
        if bucket is not None:
            sql += " AND bucket = ?"
            args.append(bucket)
        if not include_deleted:
            sql += " AND deleted = 0"
        with self._lock:
            return [self._record(row) for row in self._db.execute(sql + " ORDER BY id", args).fetchall()]

    def states(self, kind: str, *, where: tuple[str, Any] | None = None, include_deleted: bool = False,
               raw: bool = False) -> list[tuple[str, str, Any]]:
        """``(id, bucket, state)`` of a kind's records, optionally where one field equals a value; by id.

        Unlike `query` it reads no outbox row per record, so it stays one statement for thousands
        of records; use `pending_ids` for which of them have unsynced writes. ``raw``: the state as
        its stored JSON text, unparsed (for callers that compare before they parse). A ``where`` on
        ``reporter`` or ``event`` is answered from an index.
        """
        table = "records"
        sql_where = "kind = ?"
        args: list[Any] = [kind]
        if where is not None:
            name = _field_name(where[0])
            if name in _FIELD_INDEXES:
                # Named, because without statistics the planner prefers the primary key for ORDER BY id.
                table += f" INDEXED BY {_FIELD_INDEXES[name]}"
            sql_where += f" AND json_extract(state, '$.{name}[0]') = ?"
            args.append(where[1])
        if not include_deleted:
            sql_where += " AND deleted = 0"
        with self._lock:
            rows = self._db.execute(f"SELECT id, bucket, state FROM {table} WHERE {sql_where} ORDER BY id",
                                    args).fetchall()
        if raw:
            return rows
        return [(rid, bucket, _load_state(state)) for rid, bucket, state in rows]

    def children(self, kind: str, link: str, parent_ids: Iterable[str], *, include_deleted: bool = True,
                 raw: bool = False) -> list[tuple[str, str, Any]]:
        """``(parent id, id, state)`` of the records of ``kind`` whose field ``link`` is one of ``parent_ids``.

        One statement for any number of parents (the ids go in as one JSON array): e.g. the case
        actions of a worker's events, ``children("case_action", "event", event_ids)``. A ``link`` of
        ``event`` is answered from an index. ``raw`` as in `states`. Ordered by parent, then id.
        """
        name = _field_name(link)
        path = f"json_extract(state, '$.{name}[0]')"
        sql = (f"SELECT {path}, id, state FROM records WHERE kind = ? AND {path} IN (SELECT value FROM json_each(?))"
               + ("" if include_deleted else " AND deleted = 0") + " ORDER BY 1, 2")
        ids = json.dumps(list(parent_ids))
        with self._lock:
            rows = self._db.execute(sql, (kind, ids)).fetchall()
        if raw:
            return rows
        return [(parent, rid, _load_state(state)) for parent, rid, state in rows]

    def pending_ids(self, kind: str) -> set[str]:
        """The ids of the records of a kind that have unsynced local writes."""
        with self._lock:
            return {rid for (rid,) in self._db.execute("SELECT id FROM outbox WHERE kind = ?", (kind,)).fetchall()}

    def _record(self, row: Sequence[Any]) -> Record:
        kind, record_id, bucket, state = row
        pending = self._db.execute("SELECT fields FROM outbox WHERE kind = ? AND id = ?", (kind, record_id)).fetchone()
        return Record(kind, record_id, bucket, _load_state(state), frozenset(json.loads(pending[0]) if pending else ()))

    def counts(self) -> Counts:
        """How many records are held, how many have unsynced writes, how many changes were rejected."""
        with self._lock:
            (records,) = self._db.execute("SELECT count(*) FROM records").fetchone()
            (unsynced,) = self._db.execute("SELECT count(*) FROM outbox").fetchone()
            (rejected,) = self._db.execute("SELECT count(*) FROM rejected").fetchone()
            return Counts(records, unsynced, rejected)

    def cursors(self) -> dict[str, str]:
        """The saved cursor of each bucket."""
        with self._lock:
            return dict(self._db.execute("SELECT bucket, cursor FROM cursors ORDER BY bucket").fetchall())

    def rejections(self) -> list[Rejection]:
        """The changes the server refused, oldest first, with its reasons."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, kind, id, bucket, fields, reason, at, code FROM rejected ORDER BY seq"
            ).fetchall()
        return [Rejection(seq, kind, rid, bucket, _load_state(fields), reason, at, code)
                for seq, kind, rid, bucket, fields, reason, at, code in rows]

    def refusals(self, kind: str | None = None) -> dict[tuple[str, str], Rejection]:
        """The latest refusal of each refused record (of one kind, or all): ``(kind, id) -> Rejection``.

        One statement, for list rows: a record listed here is shown as refused, with the reason.
        """
        sql = "SELECT seq, kind, id, bucket, fields, reason, at, code FROM rejected"
        args: tuple[Any, ...] = ()
        if kind is not None:
            sql, args = sql + " WHERE kind = ?", (kind,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY seq", args).fetchall()
        return {(k, rid): Rejection(seq, k, rid, bucket, _load_state(fields), reason, at, code)
                for seq, k, rid, bucket, fields, reason, at, code in rows}

    def resend_refused(self, kind: str, record_id: str) -> int:
        """Push a refused record's writes again (after the worker mended it, or as they are).

        Every field a refusal of the record named goes back into the outbox with the value and HLC the
        record holds now (a field mended since carries the mend's HLC); the refusals are forgotten,
        since the next push answers anew. Returns how many fields wait to go.
        """
        with self._transaction():
            rows = self._db.execute("SELECT fields FROM rejected WHERE kind = ? AND id = ?",
                                    (kind, record_id)).fetchall()
            record = self._db.execute("SELECT state FROM records WHERE kind = ? AND id = ?",
                                      (kind, record_id)).fetchone()
            names: set[str] = set()
            for (fields,) in rows:
                names |= set(json.loads(fields))
            if record is not None:
                names &= set(_load_state(record[0]))
                if names:
                    self._mark_pending(kind, record_id, names)
            else:
                names = set()
            self._db.execute("DELETE FROM rejected WHERE kind = ? AND id = ?", (kind, record_id))
            pending = self._db.execute("SELECT fields FROM outbox WHERE kind = ? AND id = ?",
                                       (kind, record_id)).fetchone()
            return len(json.loads(pending[0])) if pending else 0

    def move_refused(self, kind: str, record_id: str, bucket: str) -> None:
        """Move a refused record the server never took into another bucket (its mended event's grid).

        Only a record with a refusal and no write the server acknowledged can move this way; anything
        else raises ValueError (a record's bucket is otherwise its grid's or its parent's, as on the server).
        """
        with self._transaction():
            refused = self._db.execute("SELECT fields FROM rejected WHERE kind = ? AND id = ?",
                                       (kind, record_id)).fetchall()
            row = self._db.execute("SELECT state FROM records WHERE kind = ? AND id = ?", (kind, record_id)).fetchone()
            if not refused or row is None:
                raise ValueError(f"{kind} {record_id} is not a refused record")
            sent: dict[str, str] = {}
            for (fields,) in refused:
                sent.update({name: write[1] for name, write in _load_state(fields).items()})
            pending_row = self._db.execute("SELECT fields FROM outbox WHERE kind = ? AND id = ?",
                                           (kind, record_id)).fetchone()
            pending = set(json.loads(pending_row[0])) if pending_row else set()
            state = _load_state(row[0])
            if any(name not in pending and sent.get(name) != write[1] for name, write in state.items()):
                raise ValueError(f"{kind} {record_id} holds writes the server took; it stays where it is")
            self._db.execute("UPDATE records SET bucket = ? WHERE kind = ? AND id = ?", (bucket, kind, record_id))

    def discard_refused(self, kind: str, record_id: str) -> bool:
        """Give up a refused record's local writes: the tablet goes back to what the server holds.

        Drops, from the record, every refused write it still holds and every write not yet sent
        (the worker's edits of a refused record); forgets the refusals and the outbox entry. What is
        left is what came from the server or was acknowledged by it; a record with nothing left is
        removed (the server never had it). The record's bucket is pulled again from its start at the
        next sync (`pull_cursors` leaves its cursor out, even if a sync pulling meanwhile saves one),
        so a field the server holds comes back with the server's value: the tablet keeps no copy of
        the value its refused write replaced. Returns whether the record was removed.
        """
        with self._transaction():
            rows = self._db.execute("SELECT fields FROM rejected WHERE kind = ? AND id = ?",
                                    (kind, record_id)).fetchall()
            row = self._db.execute("SELECT bucket, state FROM records WHERE kind = ? AND id = ?",
                                   (kind, record_id)).fetchone()
            pending = self._db.execute("SELECT fields FROM outbox WHERE kind = ? AND id = ?",
                                       (kind, record_id)).fetchone()
            self._db.execute("DELETE FROM rejected WHERE kind = ? AND id = ?", (kind, record_id))
            self._db.execute("DELETE FROM outbox WHERE kind = ? AND id = ?", (kind, record_id))
            if row is None:
                return False
            bucket, state = row[0], _load_state(row[1])
            drop = set(json.loads(pending[0])) if pending else set()
            for (fields,) in rows:
                for name, (_value, pushed) in _load_state(fields).items():
                    # A refused write still held; a field the server has written since stays.
                    if name in state and state[name][1] == pushed:
                        drop.add(name)
            kept = {name: write for name, write in state.items() if name not in drop}
            if not drop:
                return False
            buckets = set(self._get_meta("refetch_buckets") or ()) | {bucket}
            self._set_meta("refetch_buckets", sorted(buckets))
            if not kept:
                self._db.execute("DELETE FROM records WHERE kind = ? AND id = ?", (kind, record_id))
                return True
            self._put_record(kind, record_id, bucket, kept)
            return False

    def pull_cursors(self) -> dict[str, str]:
        """The cursors a pull starts from; a bucket to pull again (`discard_refused`) starts from zero.

        Clears the buckets to pull again: the pull that asked for them from zero is on its way.
        """
        with self._transaction():
            refetch = set(self._get_meta("refetch_buckets") or ())
            cursors = dict(self._db.execute("SELECT bucket, cursor FROM cursors ORDER BY bucket").fetchall())
            if refetch:
                self._db.execute("DELETE FROM meta WHERE key = 'refetch_buckets'")
            return {bucket: cursor for bucket, cursor in cursors.items() if bucket not in refetch}

    def dismiss_rejection(self, seq: int) -> None:
        """Forget a rejection the worker has seen."""
        with self._transaction():
            self._db.execute("DELETE FROM rejected WHERE seq = ?", (seq,))

    # --- push ---------------------------------------------------------------------------------

    def pending_changes(self, limit: int, *, after_seq: int = 0) -> Outgoing:
        """The next unacknowledged changes (pending fields only), in the order they were first written."""
        with self._lock:
            rows = self._db.execute(
                "SELECT o.seq, o.kind, o.id, o.fields, r.bucket, r.state FROM outbox o "
                "JOIN records r ON r.kind = o.kind AND r.id = o.id "
                "WHERE o.seq > ? ORDER BY o.seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
        changes = []
        for _seq, kind, record_id, names, bucket, state_json in rows:
            state = _load_state(state_json)
            writes = {name: state[name] for name in json.loads(names) if name in state}
            if writes:
                changes.append(Change(kind, record_id, bucket, writes))
        return Outgoing(changes, rows[-1][0] if rows else after_seq)

    def acknowledge(self, snapshot: Outgoing | Sequence[Change], results: Sequence[Mapping[str, Any]],
                    hlc: str | None = None) -> Acknowledged:
        """Apply a push answer: clear what was acknowledged unchanged, keep rejections, absorb the hlc."""
        changes = list(snapshot)
        if hlc:
            _check_hlc(hlc)
        if len(results) != len(changes):
            raise RemoteChangeError(f"the push answer has {len(results)} results for {len(changes)} changes")
        for change, result in zip(changes, results):
            if not isinstance(result, Mapping) or result.get("kind") != change.kind or result.get("id") != change.id:
                raise RemoteChangeError(f"the push answer's result {result!r} does not match {change.kind} {change.id}")
            if result.get("status") not in ("applied", "stale", "rejected"):
                raise RemoteChangeError(f"unknown push result status {result.get('status')!r}")
        applied = stale = still = 0
        rejected: list[Rejection] = []
        with self._transaction():
            at = format_ms(self._clock.physical_ms())
            for change, result in zip(changes, results):
                status = result["status"]
                if status == "rejected":
                    reason = result.get("reason") or "rejected by the server"
                    if not isinstance(reason, str):
                        reason = json.dumps(reason, ensure_ascii=False)
                    code = result.get("code")
                    code = code[:64] if isinstance(code, str) and code else None  # an older server sends none
                    cursor = self._db.execute(
                        "INSERT INTO rejected (kind, id, bucket, fields, reason, at, code) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (change.kind, change.id, change.bucket, _dump_state(change.fields), reason, at, code),
                    )
                    rejected.append(Rejection(cursor.lastrowid, change.kind, change.id, change.bucket,
                                              dict(change.fields), reason, at, code))
                elif status == "applied":
                    applied += 1
                else:
                    stale += 1
                # Rejected writes leave the outbox too: retrying them forever would block nothing
                # but would never succeed; they are listed for the worker instead.
                if self._settle(change):
                    still += 1
            self._raise_floor(change.max_hlc() for change in changes)
            if hlc:
                self._clock.update(hlc)
                self._raise_floor([hlc])
        return Acknowledged(applied, stale, rejected, still)

    def _settle(self, change: Change) -> bool:
        """Clear the pushed fields whose write is unchanged; True when the record stays pending."""
        row = self._db.execute(
            "SELECT o.fields, r.state FROM outbox o JOIN records r ON r.kind = o.kind AND r.id = o.id "
            "WHERE o.kind = ? AND o.id = ?",
            (change.kind, change.id),
        ).fetchone()
        if row is None:
            return False
        pending, state = set(json.loads(row[0])), _load_state(row[1])
        for name, (_value, pushed_hlc) in change.fields.items():
            # Same HLC, same write: an edit made while the push was in flight has a newer one.
            if name in pending and name in state and state[name][1] == pushed_hlc:
                pending.discard(name)
        self._set_pending(change.kind, change.id, pending)
        return bool(pending)

    def _set_pending(self, kind: str, record_id: str, pending: set[str]) -> None:
        if pending:
            self._db.execute("UPDATE outbox SET fields = ? WHERE kind = ? AND id = ?",
                             (json.dumps(sorted(pending)), kind, record_id))
        else:
            self._db.execute("DELETE FROM outbox WHERE kind = ? AND id = ?", (kind, record_id))

    def restamp_pending(self, offset_ms: int) -> int:
        """Correct the clock offset and re-stamp every unacknowledged write, keeping their order."""
        with self._transaction():
            floor = self._get_meta("settled_hlc")
            self._clock.rewind(HLC.parse(floor) if floor else None, offset_ms)
            rows = self._db.execute(
                "SELECT o.kind, o.id, o.fields, r.state FROM outbox o "
                "JOIN records r ON r.kind = o.kind AND r.id = o.id ORDER BY o.seq"
            ).fetchall()
            states = {(kind, rid): _load_state(state) for kind, rid, _names, state in rows}
            writes = sorted(
                (states[(kind, rid)][name][1], seq, kind, rid, name)
                for seq, (kind, rid, names, _state) in enumerate(rows)
                for name in json.loads(names)
                if name in states[(kind, rid)]
            )
            # One original write (one HLC) gets one fresh HLC, so fields written together stay together.
            fresh: dict[str, str] = {}
            for old, _seq, kind, rid, name in writes:
                if old not in fresh:
                    fresh[old] = str(self._clock.now())
                value = states[(kind, rid)][name][0]
                states[(kind, rid)][name] = (value, fresh[old])
            for kind, rid, _names, _state in rows:
                self._db.execute("UPDATE records SET state = ? WHERE kind = ? AND id = ?",
                                 (_dump_state(states[(kind, rid)]), kind, rid))
            self._save_clock()
            return len(fresh)

    # --- pull ---------------------------------------------------------------------------------

    def apply_remote(self, changes: Iterable[Mapping[str, Any] | Change], cursors: Mapping[str, str],
                     hlc: str | None = None, *, fields_json: Sequence[str | None] | None = None) -> int:
        """Merge a pulled page and save its cursors in one transaction; returns how many records changed.

        ``fields_json``: for each change, the JSON text its ``fields`` were decoded from, or None
        (mobile.transport.decode_pull); a record not held yet is stored as that text (`_merge_remote`).
        """
        remote = [_parse_remote(change) for change in changes]
        if fields_json is not None and len(fields_json) != len(remote):
            raise ValueError("fields_json must name one text (or None) per change")
        if not isinstance(cursors, Mapping) or not all(
            isinstance(b, str) and isinstance(c, str) for b, c in cursors.items()
        ):
            raise RemoteChangeError("cursors must map bucket names to cursor strings")
        if hlc:
            _check_hlc(hlc)
        self.give_way()
        with self._transaction():
            changed = self._merge_remote(remote, fields_json)
            # The answer lists every bucket the user may pull now: a bucket not in it was taken away.
            # (A bucket to pull again from zero keeps its row: `pull_cursors` leaves it out.)
            self._db.execute("DELETE FROM cursors")
            self._db.executemany("INSERT INTO cursors (bucket, cursor) VALUES (?, ?)", sorted(cursors.items()))
            # Each change's greatest HLC (Change.max_hlc, without a generator: a first sync asks it 100,000 times).
            seen = [max(map(_HLC_OF, change.fields.values())) for change in remote if change.fields]
            if hlc:
                seen.append(hlc)
            if seen:
                # Absorbing the greatest is enough: a write made after this sorts after all of them.
                self._clock.update(max(seen))
                self._raise_floor(seen)
        return changed

    def _merge_remote(self, remote: Sequence[Change], fields_json: Sequence[str | None] | None = None) -> int:
        """Merge pulled changes into the records they name, inside the caller's transaction; how many changed.

        Speed (issue 19): a statement per kind reads the records held, one reads the outbox entries (none
        on a first sync), and one ``executemany`` writes every merged record, instead of three statements
        per change. A record named twice merges its second change into the first's result.

        A record this store does not hold (the whole of a first sync) takes every remote write: that is
        what `merge_record` answers for it, so it is not asked, and when the change's fields came with
        their JSON text (``fields_json``) the record is stored as that text, whose value is the state,
        instead of the state encoded again. A record held, or named a second time in the chunk, is
        merged field by field as always; the outbox is read as always for every record written.
        """
        held = self._held("records", [(change.kind, change.id) for change in remote], "bucket, state")
        local: dict[tuple[str, str], dict[str, tuple[Any, str]] | None] = {}
        # (kind, id) -> (bucket, state, the state's JSON text when it is the text received, else None)
        merged_rows: dict[tuple[str, str], tuple[str, Mapping[str, Any], str | None]] = {}
        lost: dict[tuple[str, str], set[str]] = {}  # the fields each record's merge took from remote
        # Which fields a merge took matters only to outbox entries: none on a first sync.
        pending = bool(remote) and self._db.execute("SELECT 1 FROM outbox LIMIT 1").fetchone() is not None
        for n, change in enumerate(remote):
            key = (change.kind, change.id)
            spec = KINDS.get(change.kind)
            if key in local:
                state = local[key]
            else:
                row = held.get(key)
                if row is None:
                    # Not held: every remote write is taken (merge_record's answer for no local state).
                    state = change.fields
                    local[key] = state
                    if state:
                        bucket = (spec.bucket_of(_values(state)) if spec else None) or change.bucket
                        merged_rows[key] = (bucket, state, fields_json[n] if fields_json is not None else None)
                        if pending:
                            lost[key] = set(state)
                    continue
                state = _load_state(row[1])
            merged = merge_record(state, change.fields, append_only=bool(spec and spec.append_only))
            local[key] = state if not merged.changed else merged.state
            if not merged.changed:
                continue
            bucket = (spec.bucket_of(_values(merged.state)) if spec else None) or change.bucket
            merged_rows[key] = (bucket, merged.state, None)
            if pending:
                lost.setdefault(key, set()).update(merged.changed)
        self._db.executemany(_PUT_RECORD, [_record_row(kind, rid, bucket, state, text)
                                           for (kind, rid), (bucket, state, text) in merged_rows.items()])
        if merged_rows and pending:
            for key, (names,) in self._held("outbox", merged_rows, "fields").items():
                # A local write that lost to a newer remote one has nothing left to say.
                self._set_pending(*key, set(json.loads(names)) - lost[key])
        return len(merged_rows)

    def _held(self, table: str, keys: Iterable[tuple[str, str]], columns: str) -> dict[tuple[str, str], tuple]:
        """``(kind, id) -> columns`` of the rows of ``table`` (records or outbox) with those keys.

        One statement a kind, by the table's (kind, id) key, the ids as one JSON array (any number of them).
        """
        ids: dict[str, list[str]] = {}
        for kind, record_id in keys:
            ids.setdefault(kind, []).append(record_id)
        found: dict[tuple[str, str], tuple] = {}
        for kind, kind_ids in ids.items():
            for row in self._db.execute(f"SELECT id, {columns} FROM {table} "
                                        "WHERE kind = ? AND id IN (SELECT value FROM json_each(?))",
                                        (kind, json.dumps(kind_ids))):
                found[(kind, row[0])] = row[1:]
        return found

    # --- patrols (issue 17): track points, kept at once, and their sealing into track records ----

    def add_track_point(self, patrol: str, point: Sequence[Any], flags: Iterable[str] = (),
                        meta: Mapping[str, Any] | None = None) -> int:
        """Keep one track point of a patrol now (one commit); ``meta`` keys are set with it. Answers its n.

        ``point`` is (at_ms, lat, lon, accuracy_m, speed_mps), shared.track.Point's order.
        """
        at_ms, lat, lon, acc, speed = point
        with self._transaction():
            (top,) = self._db.execute("SELECT max(n) FROM track_points WHERE patrol = ?", (patrol,)).fetchone()
            n = 0 if top is None else top + 1
            self._db.execute(
                "INSERT INTO track_points (patrol, n, at_ms, lat, lon, acc, speed, flags) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (patrol, n, int(at_ms), float(lat), float(lon), acc, speed, ",".join(sorted(flags))))
            for key, value in (meta or {}).items():
                self._put_meta(key, value)
            return n

    def track_points(self, patrol: str) -> list[tuple[int, tuple, frozenset[str], int | None]]:
        """A patrol's kept points in the order kept: (n, (at_ms, lat, lon, accuracy_m, speed_mps), flags, batch)."""
        with self._lock:
            rows = self._db.execute("SELECT n, at_ms, lat, lon, acc, speed, flags, batch FROM track_points "
                                    "WHERE patrol = ? ORDER BY n", (patrol,)).fetchall()
        return [(n, (at, lat, lon, acc, speed), frozenset(f for f in flags.split(",") if f), batch)
                for n, at, lat, lon, acc, speed, flags, batch in rows]

    def commit_patrol(self, writes: Sequence[tuple[str, str, Mapping[str, Any], str | None]], *,
                      patrol: str | None = None, sealed: Mapping[int, Sequence[int]] | None = None,
                      meta: Mapping[str, Any] | None = None) -> list[Change]:
        """Record writes (as `write_many`), mark points sealed (batch -> their n) and set meta, in one transaction.

        A meta value None deletes the key. Sealing a batch and writing its track record together means a
        kill between the two cannot send a point twice or lose it.
        """
        if self._PRIVATE_META & set(meta or {}):
            raise ValueError("the store's own meta keys cannot be set this way")
        with self._transaction():
            changes = [self._write(kind, record_id, values, bucket) for kind, record_id, values, bucket in writes]
            for batch, ns in (sealed or {}).items():
                self._db.executemany("UPDATE track_points SET batch = ? WHERE patrol = ? AND n = ?",
                                     [(batch, patrol, n) for n in ns])
            for key, value in (meta or {}).items():
                self._put_meta(key, value)
            return changes

    def _put_meta(self, key: str, value: Any) -> None:
        if key in self._PRIVATE_META:
            raise ValueError(f"{key!r} is the store's own and cannot be set this way")
        if value is None:
            self._db.execute("DELETE FROM meta WHERE key = ?", (key,))
        else:
            self._set_meta(key, value)

# --- helpers ----------------------------------------------------------------------------------

_PUT_RECORD = ("INSERT INTO records (kind, id, bucket, state, deleted) VALUES (?, ?, ?, ?, ?) "
               "ON CONFLICT (kind, id) DO UPDATE SET bucket = excluded.bucket, state = excluded.state, "
               "deleted = excluded.deleted")


def _record_row(kind: str, record_id: str, bucket: str, state: Mapping[str, Any],
                text: str | None = None) -> tuple[str, str, str, str, int]:
    """The parameters of _PUT_RECORD for one record; ``text``: the state's JSON when it is at hand."""
    return kind, record_id, bucket, _dump_state(state) if text is None else text, int(is_deleted(state))


# One encoder for every stored state: json.dumps would build one per call. A state holds no cycles (decoded JSON,
# or values checked as JSON when written), so the encoder need not keep track of the containers it is in.
_STATE_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True, check_circular=False)


def _dump_state(state: Mapping[str, Any]) -> str:
    """A state as stored: compact, keys sorted; a write (a pair, list or tuple) as a JSON array."""
    return _STATE_ENCODER.encode(state)


def _load_state(text: str) -> dict[str, tuple[Any, str]]:
    return {name: (write[0], write[1]) for name, write in json.loads(text).items()}


_VALUE_OF, _HLC_OF = itemgetter(0), itemgetter(1)  # of a write (value, hlc)


def _values(state: Mapping[str, tuple[Any, str]]) -> dict[str, Any]:
    return dict(zip(state, map(_VALUE_OF, state.values())))


# The expression indexes of _SCHEMA, by the field they index.
_FIELD_INDEXES = {"reporter": "records_by_reporter", "event": "records_by_event"}
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def _field_name(name: str) -> str:
    """A field name fit to splice into a JSON path: letters, digits and '_' only."""
    if not isinstance(name, str) or not _FIELD_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a field name")
    return name


def _check_hlc(hlc: Any) -> None:
    if not is_hlc(hlc):
        raise RemoteChangeError(f"the server sent {hlc!r} as its hlc")


def parse_remote_changes(changes: Iterable[Mapping[str, Any] | Change]) -> list[Change]:
    """Check the shape of pulled changes (as `Store.apply_remote` does) without applying them."""
    return [_parse_remote(change) for change in changes]


_PLAIN_WRITES = frozenset({list, tuple})  # what a write decoded from JSON (or made here) is
_STRINGS = frozenset({str})
_PAIRS = frozenset({2})


def _parse_remote(data: Mapping[str, Any] | Change) -> Change:
    """Check a pulled change's shape and timestamps, not its values: unknown fields and kinds are kept.

    Speed (issue 19): the usual change (every write a list or tuple of two) is checked by C loops over its
    writes (types, lengths, each distinct HLC once: a change's fields usually share one) and kept as it is;
    any other goes through the loop below, which names what is wrong.
    """
    if isinstance(data, Change):
        return data
    if type(data) is not dict and not isinstance(data, Mapping):
        raise RemoteChangeError(f"a change must be an object, not {type(data).__name__}")
    kind, record_id, bucket, fields = data.get("kind"), data.get("id"), data.get("bucket"), data.get("fields")
    if not (type(kind) is str and kind and type(record_id) is str and record_id and type(bucket) is str and bucket) \
            and not all(isinstance(x, str) and x for x in (kind, record_id, bucket)):
        raise RemoteChangeError(f"a change needs kind, id and bucket strings: {data!r:.200}")
    if type(fields) is not dict and not isinstance(fields, Mapping):
        raise RemoteChangeError(f"{kind} {record_id}: fields must be an object")
    writes_in = fields.values()
    if _PLAIN_WRITES.issuperset(map(type, writes_in)) and _PAIRS.issuperset(map(len, writes_in)):
        hlcs = list(map(_HLC_OF, writes_in))
        if _STRINGS.issuperset(map(type, hlcs)) and all(map(is_hlc, set(hlcs))):
            # A decoded page's own dict is kept, its writes as the lists they are: nothing changes them, and
            # whatever takes them (merge_record, the state's encoding) takes a list as it takes a pair.
            return Change(kind, record_id, bucket, fields if type(fields) is dict else dict(fields))
    writes: dict[str, tuple[Any, str]] = {}
    for name, write in fields.items():
        if not isinstance(write, (list, tuple)) or len(write) != 2 or not is_hlc(write[1]):
            raise RemoteChangeError(f"{kind} {record_id}: field {name!r} is not a [value, hlc] pair")
        writes[name] = (write[0], write[1])
    return Change(kind, record_id, bucket, writes)

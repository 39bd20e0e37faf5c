"""Applying pushed changes to the central case store: check each, merge it, write it, in one transaction.

This is the one path every write takes: a tablet's push (server/sync/service.py), a page's case
action (server/cases/service.py), the CLI and the demo (`write_as_server`). A batch is applied in
one transaction:

1. validate every change (shared/records.py) and check it against the user's
   role and grids (shared/roles.py); a bad change is rejected on its own, with a
   reason, and never fails the batch;
2. lock the buckets the batch writes (server/sync/feed.py: writers of one bucket
   queue there, writers of other buckets do not wait);
3. read the records the batch touches (locking the buckets they live in, if the
   changes did not name them), merge each change into them through
   shared/merge.py, and note which changed;
4. write the changed records with fresh feed positions, taken last,
5. keep what the pages search by: fold again the cases whose event or actions
   changed into the ``cases`` table (casebook.py), numbering the events that
   arrive for the first time, the disputes into the ``disputes`` table
   (server/disputes/book.py), and index the tenants written
   (server/houses/index.py); then commit. Only then does the caller answer.

A new batch of track points is also held to the server's clock and its grid's
outline (server/patrols/checks.py) before it is merged.

Hazard: replays. A tablet retries a push whose answer it lost. Merge is
idempotent, so the replay changes nothing and every change comes back `stale`.

Hazard: lost merges. Two batches that merge into one record must not both read it before either
writes. Every record is read, merged and written under the lock of the bucket it lives in (and
of the one it moves to), so they run one after the other; `_locked_states` reads again whenever
a record turned out to live in a bucket the batch had not locked yet.
"""

from __future__ import annotations

from itertools import chain
from operator import itemgetter
from typing import Any, Iterable, NamedTuple

import msgspec
from marshmallow import ValidationError
from sqlalchemy import select

from flask import current_app

from shared.case import missing_evidence
from shared.hlc import HLC
from shared.merge import merge_record
from shared.records import KINDS, REF_BUCKET, Change, grid_bucket, load_change
from shared.roles import may_stand_in, may_take, may_write_bucket, may_write_kind

from .. import privacy
from ..clock import server_clock
from ..db import db
from ..errors import describe
from ..models import CaseRow, User
from ..disputes import book as dispute_book
from ..houses import index as house_index
from ..patrols.checks import TrackCheck
from . import casebook, feed, wire


class Result(msgspec.Struct, frozen=True, omit_defaults=True):
    """What became of one pushed change; msgspec writes it as its wire form (no reason: none written)."""

    kind: str
    id: str
    status: str  # applied | stale | rejected
    reason: str | None = None
    code: str | None = None  # the reason's machine-readable code (docs/api.md, "Refusal codes"); old clients ignore it


class Refusal(str):
    """A refusal's reason: the words as before (it is a str), and its code, for the tablet to word itself."""

    code: str | None

    def __new__(cls, text: str, code: str | None = None) -> "Refusal":
        reason = super().__new__(cls, text)
        reason.code = code
        return reason


def _rejected(kind: str, rid: str, reason: str, code: str | None = None) -> Result:
    """The Result of a refused change: its reason's words unchanged, with the code beside them."""
    return Result(kind, rid, "rejected", str(reason), code or getattr(reason, "code", None))


_STAMP = itemgetter(1)  # the HLC of a (value, hlc) write


class Writer(NamedTuple):
    """Who pushes a batch, read from the user once: ORM attributes cost more than the checks."""

    id: str
    role: str
    unit: str | None
    grids: frozenset[str]


def writer_of(user: User | Writer | None) -> Writer | None:
    """The Writer of a user (None: the server itself)."""
    if user is None or isinstance(user, Writer):
        return user
    return Writer(user.id, user.role, user.unit, frozenset(user.grid_codes))


def _may_write_bucket(writer: Writer | None, bucket: str) -> bool:
    """Whether the writer (None: the server itself) may write records in the bucket."""
    return writer is None or may_write_bucket(writer.role, writer.grids, bucket)


def authorize(user: User | Writer | None, change: Change) -> str | None:
    """Why the user may not push this change, or None when they may.

    For any kind but case_action the answer depends on the user, the kind and the bucket alone;
    validate_batch asks once per (kind, bucket). A rule that reads a change's values must keep
    that, or go in `check_author` (asked for every change).
    """
    writer = writer_of(user)
    if writer is None:  # the server itself
        return None
    kind = KINDS[change.kind]
    if not _may_write_bucket(writer, change.bucket):
        if change.bucket == REF_BUCKET:
            return Refusal("forbidden: only admins change reference data", "reference_data")
        return Refusal(f"forbidden: {change.bucket} is not one of your grids", "not_your_grid")
    if change.kind == "case_action":
        values = change.values
        action = values.get("action")
        if action is not None and not may_take(writer.role, action):
            return Refusal(f"forbidden: the {writer.role} role may not {action}", "role_may_not")
        # The fold trusts stand_in (shared/case.py, "Hazard: permission"): only here can it be refused.
        if values.get("stand_in") is True and not may_stand_in(writer.role):
            return Refusal("forbidden: only a supervisor verifies in the reporter's place", "stand_in")
    elif not may_write_kind(writer.role, change.kind, kind.reference):
        return Refusal(f"forbidden: the {writer.role} role may not write {change.kind} records", "role_may_not")
    return None


# Fields only the server writes, by kind: a push that carries one is refused.
SERVER_FIELDS = {"event": frozenset({"case_number"})}


def check_author(writer: Writer | None, change: Change) -> str | None:
    """Why the change's author field, or a field only the server writes, is refused; None when neither is.

    The author field must name the pushing user.

    The server decides who did what (design.md, principle 5): an event's reporter, a case action's
    actor, a check's or a patrol's worker is whoever pushes the change that writes it, never a name
    the tablet chose. That the field is written once is checked against the stored record, in
    `apply_changes`. The server itself (writer None) writes for whoever acted on a page.
    """
    if writer is None:
        return None
    for name in SERVER_FIELDS.get(change.kind, ()):
        if name in change.fields:
            return Refusal(f"forbidden: {name} is given by the server", "server_field")
    author = KINDS[change.kind].author
    if author is None or author not in change.fields:
        return None
    if change.fields[author][0] != writer.id:
        return Refusal(f"forbidden: {author} must be the pushing user", "author_not_you")
    return None


def max_hlc(changes: Iterable[Change]) -> HLC | None:
    """The latest timestamp of any write in the changes."""
    latest = max(map(_STAMP, chain.from_iterable(change.fields.values() for change in changes)), default=None)
    return HLC.parse(latest) if latest else None


def validate_batch(user: User | Writer | None, raw_changes: list[Any]) -> tuple[list[Change | None], dict[int, Result]]:
    """Load and authorise each change (``user`` None: the server's own); rejected ones get their Result by index.

    A change may come already loaded, as a Change (server/sync/wire.py read it from the body).
    """
    changes: list[Change | None] = []
    rejected: dict[int, Result] = {}
    writer = writer_of(user)
    # Speed: but for a case action, what authorize() says depends on the kind and the bucket alone.
    verdicts: dict[tuple[str, str], str | None] = {}
    for index, raw in enumerate(raw_changes):
        if type(raw) is Change:
            if raw.kind == "case_action":
                reason = authorize(writer, raw)
            else:
                key = (raw.kind, raw.bucket)
                reason = verdicts[key] if key in verdicts else verdicts.setdefault(key, authorize(writer, raw))
            reason = reason or check_author(writer, raw)
            if reason:
                rejected[index] = _rejected(raw.kind, raw.id, reason)
                changes.append(None)
            else:
                changes.append(raw)
            continue
        try:
            change = load_change(raw)
        except ValidationError as exc:
            kind = raw.get("kind") if isinstance(raw, dict) and isinstance(raw.get("kind"), str) else ""
            rid = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else ""
            rejected[index] = _rejected(kind[:32], rid[:64], f"invalid: {describe(exc.messages)}", "invalid")
            changes.append(None)
            continue
        reason = authorize(writer, change) or check_author(writer, change)
        if reason:
            rejected[index] = _rejected(change.kind, change.id, reason)
            changes.append(None)
            continue
        changes.append(change)
    return changes, rejected


def apply_changes(user: User | Writer | None, changes: list[Change | None],
                  rejected: dict[int, Result] | None = None, *, device: str | None = None) -> list[Result]:
    """Merge validated changes into the store in one transaction; one Result per change, in order.

    ``changes`` holds None where a change was already rejected (its Result is
    in ``rejected``). ``user`` None is the server itself. ``device`` is the id of
    the device that pushed them, kept on the records they create. Commits before
    returning.
    """
    rejected = dict(rejected or {})
    results: list[Result | None] = [rejected.get(i) for i in range(len(changes))]
    locked = feed.lock(buckets_of(c for c in changes if c is not None))
    writer = writer_of(user)

    ids = {c.id for c in changes if c is not None}
    parent_ids = {c.values[KINDS[c.kind].parent[0]] for c in changes
                  if c is not None and KINDS[c.kind].parent and KINDS[c.kind].parent[0] in c.fields}
    states, locked = _locked_states(sorted(ids | parent_ids), locked)
    held = frozenset(states)
    dirty: dict[str, None] = {}  # ordered set of ids to write
    case_units: dict[str, str | None] = {}  # event id -> the unit its case is dispatched to now

    personal = privacy.PERSONAL_KINDS
    tracks: TrackCheck | None = None  # made at the batch's first track record
    for index, change in enumerate(changes):
        if change is None:
            continue
        kind = KINDS[change.kind]
        if change.kind in personal:
            sealed = privacy.seal_change(change)
            if isinstance(sealed, str):
                results[index] = _rejected(change.kind, change.id, sealed, "server_field")
                continue
            change = sealed
        existing = states.get(change.id)
        if existing and existing[0] != change.kind:
            results[index] = _rejected(change.kind, change.id,
                                       f"invalid: id {change.id} is already a {existing[0]} record", "id_taken")
            continue
        author = kind.author
        if (existing is not None and author in change.fields and author in existing[2]
                and change.fields[author][0] != existing[2][author][0]):
            results[index] = _rejected(change.kind, change.id,
                                       f"forbidden: the {author} of a {change.kind} is written once", "written_once")
            continue
        if existing is None:
            # Speed: a new record (most of a push) takes every write as it is; merge_record would
            # copy them (a loaded Change's writes are already tuples, and nothing mutates them).
            state, changed = change.fields, True
        else:
            merged = merge_record(existing[2], change.fields, append_only=kind.append_only)
            if merged.refused:
                results[index] = _rejected(change.kind, change.id,
                                           "append-only: a " + change.kind + " cannot be changed once recorded ("
                                           + ", ".join(sorted(merged.refused)) + ")", "append_only")
                continue
            state, changed = merged.state, bool(merged.changed)
        # What an action must carry as evidence (shared/case.py, EVIDENCE), asked of a new one from a
        # person; the server's own writes (demo, CLI) and actions stored before the rule are as they are.
        if existing is None and writer is not None and change.kind == "case_action":
            missing = missing_evidence(change.values)
            if missing:
                results[index] = _rejected(change.kind, change.id,
                                           f"invalid: a {change.values.get('action')} needs " + ", ".join(missing),
                                           "missing_evidence")
                continue
        if not kind.required <= state.keys():
            results[index] = _rejected(change.kind, change.id,
                                       "invalid: a new record needs " + ", ".join(sorted(kind.required - state.keys())),
                                       "missing_fields")
            continue
        grid = state.get("grid") if "grid" in kind.fields else None
        if grid is not None:  # _bucket_of's first case, the common one, without the call
            bucket = "grid:" + grid[0]
        else:
            bucket = _bucket_of(kind, state, change, states)
            if isinstance(bucket, Result):
                results[index] = bucket
                continue
        # authorize() saw only the bucket the change names. The record may live elsewhere: a change
        # without `grid`, or whose `grid` write loses the merge, would otherwise edit another grid's record.
        # (A new record in the bucket its change names is the case authorize() already decided.)
        if existing is not None or bucket != change.bucket:
            forbidden = [b for b in ((existing[1],) if existing else ()) + (bucket,)
                         if not _may_write_bucket(writer, b)]
            if forbidden:
                results[index] = _rejected(change.kind, change.id,
                                           f"forbidden: the record lives in {forbidden[0]}, not one of your grids",
                                           "not_your_grid")
                continue
        # A new batch of track points: against the server's clock and the grid's outline (server/patrols/checks.py).
        if change.kind == "track" and existing is None:
            tracks = tracks or TrackCheck()
            refused = tracks.refusal(state, bucket)
            if refused:
                results[index] = _rejected(change.kind, change.id, refused, "bad_track")
                continue
        # A unit acts only on the cases now dispatched to it, as on the pages. Only a unit's case actions
        # pay for the fold (one query per case, per batch); workers and supervisors add no query here.
        if writer is not None and writer.role == "unit" and change.kind == "case_action":
            event_id = state["event"][0]
            if event_id not in case_units:
                case_units[event_id] = _current_unit(event_id)
            if not writer.unit or case_units[event_id] != writer.unit:
                results[index] = _rejected(change.kind, change.id,
                                           "forbidden: the case is not dispatched to your unit", "not_your_unit")
                continue
        if not changed:
            results[index] = Result(change.kind, change.id, "stale")
            continue
        states[change.id] = (change.kind, bucket, state)
        dirty[change.id] = None
        results[index] = Result(change.kind, change.id, "applied")

    if dirty:
        _number_new_events([rid for rid in dirty if rid not in held and states[rid][0] == "event"], states)
        rows, tenants = [], []
        # A record may move to a bucket its change did not name (a grid write that won the merge).
        feed.lock_more(locked, {states[rid][1] for rid in dirty})
        positions = feed.take_positions(len(dirty))
        columns = wire.record_columns
        for rid, last_position in zip(dirty, positions):
            kind_name, bucket, state = states[rid]
            parent = KINDS[kind_name].parent
            parent_id = state[parent[0]][0] if parent and parent[0] in state else None
            rows.append((rid, kind_name, bucket, *columns(state), last_position, device, parent_id))
            if kind_name == "tenant":
                tenants.append((rid, bucket, state, last_position))
        feed.write_records([row for row in rows if row[0] not in held], [row for row in rows if row[0] in held])
        _refold_cases(dirty, states, dict(zip(dirty, positions)), held)
        dispute_book.refold_written(db.session.connection(), dirty, states)  # the disputes table (server/disputes/book.py)
        # The tenant index's mark moves from just below this batch's positions to their top only when
        # no other writer's position lies between them (server/houses/index.py, reindex).
        contiguous = positions[-1] - positions[0] + 1 == len(positions)
        house_index.reindex(tenants, previous=positions[0] - 1 if contiguous else None,
                            last=positions[-1] if contiguous else None)
    db.session.commit()
    return [r for r in results if r is not None]


def buckets_of(changes: Iterable[Change]) -> set[str]:
    """The buckets a batch may write, as far as its changes tell: each change's bucket, the bucket of
    the grid it writes, and ``ref`` for a reference kind (feed.lock takes then the whole feed)."""
    buckets = set()
    for change in changes:
        buckets.add(change.bucket)
        kind = KINDS[change.kind]
        if kind.reference:
            buckets.add(REF_BUCKET)
        grid = change.fields.get("grid") if "grid" in kind.fields else None
        if grid is not None and isinstance(grid[0], str):
            buckets.add(grid_bucket(grid[0]))
    return buckets


def _locked_states(ids: list[str], locked: frozenset[str] | None) -> tuple[dict, frozenset[str] | None]:
    """The stored records among ids (feed.held_states), read under the locks of the buckets they live in.

    A record, or a parent, found in a bucket the batch has not locked: lock it and read again, since
    another writer of that bucket may have changed it since the read.
    """
    states = feed.held_states(ids)
    while locked is not None:
        found = {state[1] for state in states.values()}
        if found <= locked:
            break
        locked = feed.lock_more(locked, found)
        states = feed.held_states(ids)
    return states, locked


def _bucket_of(kind, state: dict, change: Change, states: dict) -> str | Result:
    """Where a merged record lives: its grid's bucket, its parent's, or the one the change names."""
    grid = state.get("grid")
    if grid is not None and "grid" in kind.fields:
        return grid_bucket(grid[0])
    if kind.reference:
        return REF_BUCKET
    if kind.parent:
        field, parent_kind = kind.parent
        parent_id = state[field][0]
        parent = states.get(parent_id)
        if parent is not None:
            if parent[0] != parent_kind:
                return _rejected(change.kind, change.id, f"invalid: {field} must be a {parent_kind} id", "bad_parent")
            if parent[1] != change.bucket:
                return _rejected(change.kind, change.id,
                                 f"invalid: bucket must be {parent[1]}, the bucket of its {parent_kind}", "wrong_bucket")
            return parent[1]
    return change.bucket


def _current_unit(event_id: str) -> str | None:
    """The unit a case is dispatched to now, from the cases table; None without a live case.

    Read under the lock of the event's bucket (its actions live there too), so a re-dispatch cannot
    commit between this check and the write, and the table is folded in the transaction that writes
    the actions (casebook.py).
    """
    return db.session.scalar(select(CaseRow.unit).where(CaseRow.event_id == event_id, CaseRow.deleted.is_(False)))


def _number_new_events(event_ids: list[str], states: dict) -> None:
    """Give each event arriving for the first time its case number, as a write of the server's own."""
    if not event_ids:
        return
    clock = server_clock()
    now_ms, offset = clock.physical_ms(), current_app.config["GRIDPATROL_UTC_OFFSET"]
    # In the batch's transaction: on PostgreSQL from a sequence, without a lock (casebook.py, "Case numbers").
    numbers = casebook.number_events(db.session.connection(), len(event_ids), now_ms, offset)
    hlc = str(clock.now())
    for event_id, number in zip(event_ids, numbers):
        kind, bucket, state = states[event_id]
        states[event_id] = (kind, bucket, {**state, "case_number": (number, hlc)})


def _refold_cases(dirty: Iterable[str], states: dict, positions: dict[str, int], held: frozenset[str]) -> None:
    """Fold again, into the cases table, every case whose event or action the batch wrote.

    The events the batch holds are folded from their states (``known``), not read back: those it wrote,
    and the stored events of the actions it wrote, at the position of the batch's latest write of the
    case (positions only grow under the bucket's lock: above every stored one). ``held``: the ids that
    were stored before the batch; an event not among them is new, and has no cases row yet.

    A stored case that the batch brought only new inert actions (comments: shared/case.py, INERT_ACTIONS)
    is not folded: its row moves to the batch's latest position (casebook.move).
    """
    events, categories, known, latest, folded = set(), set(), {}, {}, set()
    for rid in dirty:
        kind, bucket, state = states[rid]
        if kind == "event":
            events.add(rid)
            known[rid] = (bucket, {name: write[0] for name, write in state.items()}, positions[rid])
        elif kind == "case_action":
            event_id = state["event"][0]
            events.add(event_id)
            latest[event_id] = max(latest.get(event_id, 0), positions[rid])
            if rid in held or state.get("action", (None,))[0] not in casebook.INERT_ACTIONS:
                folded.add(event_id)
        elif kind == "category" and "code" in state:
            categories.add(state["code"][0])
    moved = {}
    for event_id, position in latest.items():
        parent = states.get(event_id)
        if event_id not in known and parent is not None and parent[0] == "event":
            if event_id in held and event_id not in folded:
                moved[event_id] = position
                events.discard(event_id)
            else:
                known[event_id] = (parent[1], {name: write[0] for name, write in parent[2].items()}, position)
    connection = db.session.connection()
    casebook.refold(connection, events, known, created=[rid for rid in known if rid not in held])
    casebook.move(connection, moved)
    casebook.refold_category(connection, categories)


def stamp(kind: str, record_id: str, values: dict[str, Any], bucket: str | None = None) -> Change:
    """A change that the server itself writes (CLI, demo, pages), stamped with its HLC."""
    hlc = str(server_clock().now())
    if bucket is None:
        bucket = KINDS[kind].bucket_of(values) or REF_BUCKET
    return load_change({"kind": kind, "id": record_id, "bucket": bucket,
                        "fields": {name: [value, hlc] for name, value in values.items()}})


def write_as_server(changes: list[Change]) -> list[Result]:
    """Apply changes made by the server itself: no role check, same merge and feed."""
    return apply_changes(None, list(changes))

"""The tenant search index: keyed hashes of what a tenant is searched by, never the values themselves.

A tenant's ID number is sealed in the store (server/privacy.py), so SQL cannot look inside it; and a
search by name or number must not leave a readable copy beside the record. Each tenant has one row
in ``tenant_index`` (server/models.py, migration 0005_house_index) holding HMAC-SHA256 digests, truncated to
128 bits, under a key derived from GRIDPATROL_ID_KEY:

* ``name_hash``     the full name, normalised (NFKC, spaces collapsed, case folded): exact-name search;
* ``id_hash``       the whole ID number: for roles an admin allowed to see numbers in full;
* ``id_tail_hash``  its last four characters: what a masked number (``4403**********0134``) shows;
* ``id_ends_hash``  its first and last four: the masked form itself, pasted or typed.

A search asks the index for the digest of the query, so the index answers only equality, and only
someone who holds the key can make a digest to ask with. Why this and not a scan: docs/privacy.md.

**Kept on write.** `reindex(tenant_states, previous=, last=)` is the hook `apply_changes` calls in
its transaction, under its buckets' locks, with the tenants it writes. It also moves the index's
high-water mark (the row ``"*"``: every tenant written at or below its position is indexed) from
``previous`` to ``last`` when it stood at ``previous``; apply gives them only when the batch's
positions are every position between the two. Any write that did not pass through the hook
(a store from before this table, a path not wired) is indexed by `catch_up`, which a search calls
first: it reads the tenants written above the mark up to the feed's horizon (server/sync/feed.py:
every position at or below it is committed or never will be, so none is skipped; on PostgreSQL,
positions of different buckets commit out of order, so the last position handed out would not
do) and raises the mark. When the mark is level with the feed, `catch_up` costs two one-row
reads; behind it (concurrent writers on PostgreSQL leave it behind), it waits an instant for the
writers in flight (feed.horizon) and re-reads the tenants written since.
`rebuild` (``flask houses reindex``) starts over, e.g. after a key change.

Rows are upserted in tenant-id order and keep the newest position, so the hook and a concurrent
catch-up neither deadlock nor let an older state overwrite a newer one.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from typing import Any, Iterable, Mapping

from flask import current_app
from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite

from .. import privacy
from ..db import db
from ..models import Record, TenantIndex
from ..sync import feed as feed_positions

MARK = "*"  # the tenant_id of the high-water row
_LABEL = b"gridpatrol/tenant-search/v1"
_CHUNK = 1000
# The mark's move, which every push asks (`reindex`): a Core statement built once and run on the session's
# connection costs 16 us of CPU a push here, where the ORM's bulk UPDATE built anew each time cost 190 us.
_TABLE = TenantIndex.__table__
_MOVE_MARK = (update(_TABLE).where(_TABLE.c.tenant_id == MARK, _TABLE.c.position == bindparam("previous"))
              .values(position=bindparam("last")))

# What a query may be, once spaces are dropped and x upper-cased.
_FULL = re.compile(r"[1-9][0-9]{16}[0-9X]")
_MASKED = re.compile(r"([0-9]{4})\*+([0-9]{3}[0-9X])")
_TAIL = re.compile(r"[0-9]{3}[0-9X]")


# --- the digests ---------------------------------------------------------------------------------

def search_key() -> bytes:
    """The search index's key: derived from GRIDPATROL_ID_KEY, never the sealing key itself. Cached per app."""
    key = current_app.extensions.get("gridpatrol.search_key")
    if key is None:
        from ..config import local_id_key

        raw = current_app.config.get("GRIDPATROL_ID_KEY") or local_id_key()
        key = hmac.new(bytes.fromhex(raw.strip()), _LABEL, hashlib.sha256).digest()
        current_app.extensions["gridpatrol.search_key"] = key
    return key


def digest(label: str, text: str, key: bytes | None = None) -> str:
    """The keyed digest of ``text`` as ``label`` (name, id, id_tail, id_ends): 32 hex digits."""
    mac = hmac.new(key or search_key(), label.encode() + b"\x00" + text.encode(), hashlib.sha256)
    return mac.hexdigest()[:32]


def normal_name(name: str) -> str:
    """A name as it is compared: NFKC, spaces collapsed, case folded ("Li  Ming" is "li ming")."""
    return " ".join(unicodedata.normalize("NFKC", name).split()).casefold()


def normal_id(text: str) -> str:
    """An ID number or part of one as it is compared: no spaces, X upper-case."""
    return "".join(text.split()).upper()


def id_digests(number: str | None, key: bytes | None = None) -> dict[str, str | None]:
    """The index's digests of a plaintext ID number (none for a missing or short one)."""
    number = normal_id(number) if isinstance(number, str) else ""
    if len(number) < 8:
        return {"id_hash": None, "id_tail_hash": None, "id_ends_hash": None}
    return {"id_hash": digest("id", number, key), "id_tail_hash": digest("id_tail", number[-4:], key),
            "id_ends_hash": digest("id_ends", number[:4] + number[-4:], key)}


def _row(tenant_id: str, values: Mapping[str, Any], position: int, key: bytes) -> dict:
    """The index row of a tenant's plain values (the ID number as stored: sealed)."""
    row = {"tenant_id": tenant_id, "position": position, "house_id": values.get("house"),
           "name_hash": None, "id_hash": None, "id_tail_hash": None, "id_ends_hash": None}
    if values.get("_deleted"):
        return row
    name = values.get("name")
    if isinstance(name, str) and normal_name(name):
        row["name_hash"] = digest("name", normal_name(name), key)
    row.update(id_digests(privacy.unseal(values.get("id_number")), key))
    return row


# --- what a search asks --------------------------------------------------------------------------

def query_conditions(query: str, full_numbers: bool) -> list:
    """The index conditions a search text matches by: its name's digest, and an ID number's as the role may.

    A role that sees masked numbers searches by what the mask shows and nothing more: four characters
    are the last four, a masked form its first and last four, and a whole number counts only by its
    first and last four (so a search cannot confirm a number the role may not see).
    """
    text = query.strip()
    if not text:
        return []
    conditions = [TenantIndex.name_hash == digest("name", normal_name(text))]
    number = normal_id(text)
    if _FULL.fullmatch(number):
        if full_numbers:
            conditions.append(TenantIndex.id_hash == digest("id", number))
        else:
            conditions.append(TenantIndex.id_ends_hash == digest("id_ends", number[:4] + number[-4:]))
    elif masked := _MASKED.fullmatch(number):
        conditions.append(TenantIndex.id_ends_hash == digest("id_ends", masked.group(1) + masked.group(2)))
    elif _TAIL.fullmatch(number):
        conditions.append(TenantIndex.id_tail_hash == digest("id_tail", number))
    return conditions


# --- keeping it ----------------------------------------------------------------------------------

def _upsert(rows: list[dict]) -> None:
    """Insert or update index rows, keeping each tenant's newest position; in tenant-id order."""
    if not rows:
        return
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    rows = sorted(rows, key=lambda r: r["tenant_id"])
    for start in range(0, len(rows), _CHUNK):
        statement = insert(TenantIndex).values(rows[start:start + _CHUNK])
        columns = ("house_id", "position", "name_hash", "id_hash", "id_tail_hash", "id_ends_hash")
        db.session.execute(statement.on_conflict_do_update(
            index_elements=[TenantIndex.tenant_id], set_={c: statement.excluded[c] for c in columns},
            where=TenantIndex.position < statement.excluded.position))


def reindex(tenant_states: Iterable[tuple[str, str, Mapping[str, Any], int]], *,
            previous: int | None = None, last: int | None = None) -> None:
    """The write path's hook: index the tenants a batch wrote, in its transaction (no commit).

    ``tenant_states``: (tenant id, bucket, state, position) for each tenant record written, ``state``
    as `apply_changes` holds it ({field: (value, hlc)}, the ID number sealed), ``position`` its new
    feed position. ``previous`` and ``last``: the feed position before and after the batch; the
    high-water mark moves from one to the other when it stood at ``previous``.
    """
    if tenant_states:
        key = search_key()
        _upsert([_row(tenant_id, {name: write[0] for name, write in state.items()}, position, key)
                 for tenant_id, _bucket, state, position in tenant_states])
    if previous is not None and last is not None and last > previous:
        db.session.connection().execute(_MOVE_MARK, {"previous": previous, "last": last})


def _mark() -> int | None:
    return db.session.scalar(select(TenantIndex.position).where(TenantIndex.tenant_id == MARK))


def _index_between(after: int, upto: int) -> int:
    """Index the tenant records whose position is in (after, upto]; how many."""
    key = search_key()
    # kind || '' keeps the planner off ix_records_kind: the position range is the narrow part.
    statement = (select(Record.id, Record.field_values, Record.position)
                 .where(Record.position > after, Record.position <= upto, Record.kind.concat("") == "tenant")
                 .execution_options(yield_per=_CHUNK))
    rows, count = [], 0
    for tenant_id, values, position in db.session.execute(statement):
        rows.append(_row(tenant_id, values, position, key))
        if len(rows) >= _CHUNK:
            count += len(rows)
            _upsert(rows)
            rows = []
    count += len(rows)
    _upsert(rows)
    return count


def _raise_mark(position: int) -> None:
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(TenantIndex).values(tenant_id=MARK, position=position)
    db.session.execute(statement.on_conflict_do_update(
        index_elements=[TenantIndex.tenant_id], set_={"position": statement.excluded.position},
        where=TenantIndex.position < statement.excluded.position))


def catch_up() -> int:
    """Index every tenant written above the high-water mark and raise it; commits when it wrote. How many.

    With the hook wired this reads two rows and writes nothing.
    """
    mark = _mark() or 0
    if feed_positions.last_position() <= mark:
        return 0
    feed = feed_positions.horizon()
    if feed <= mark:
        return 0
    count = _index_between(mark, feed)
    _raise_mark(feed)
    db.session.commit()
    return count


def rebuild() -> int:
    """Empty the index and index every tenant again (``flask houses reindex``); commits. How many."""
    db.session.execute(TenantIndex.__table__.delete())
    feed = feed_positions.horizon()
    count = _index_between(0, feed)
    _raise_mark(feed)
    db.session.commit()
    return count

"""Field-by-field merge of two replicas of one record.

A record's state is a mapping from field name to a *write*: the pair
``(value, hlc)``, where ``hlc`` is the string form of the HLC timestamp of the
write that set it. Merge keeps, for every field, the winning write of the two
sides. Because the winner is chosen by a total order on writes, merge is a
join on a semilattice: commutative, associative and idempotent. Any two
replicas that have seen the same writes, in whatever order and however often,
hold the same state. ``tests/shared/test_merge.py`` proves the three laws.

Hazard: equal timestamps. Two writes with equal HLCs come from the same node at
the same instant (a replay, or a node reusing its id). Without a rule for that
case the result would depend on arrival order, so the chain ends with the
value's canonical JSON encoding, and only identical writes tie.

Hazard: append-only history. Case actions, house checks and patrols record what
a person did. They must never be rewritten, so for those kinds the *first*
write of a field stands and a later different value is refused; the refusal is
returned to the caller, which reports it, instead of being dropped silently.
"First" uses the same total order reversed, so the laws still hold.

Deletion is the ``_deleted`` field, a tombstone that wins or loses like any
other field, so a delete and a concurrent edit resolve by HLC and a deleted
record cannot come back through an older write.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

Write = tuple[Any, str]
State = Mapping[str, Write]


def canonical(value: Any) -> str:
    """The canonical JSON encoding used to break ties between equal timestamps."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def write_key(write: Write) -> tuple[str, str]:
    """The total order on writes: HLC string first, then the canonical value."""
    value, hlc = write
    return hlc, canonical(value)


@dataclass(frozen=True)
class Merged:
    """The result of one merge.

    ``state`` is the merged record. ``changed`` names the fields whose write
    in ``state`` came from remote, replacing or adding to local (empty: remote
    was stale, nothing to store). ``refused`` names append-only fields where remote tried to replace
    an existing value and lost.
    """

    state: dict[str, Write]
    changed: frozenset[str]
    refused: frozenset[str]


def merge_record(local: State | None, remote: State, *, append_only: bool = False) -> Merged:
    """Merge remote writes into local, field by field.

    For each field present on either side:

    1. A field present on one side only takes that side's write.
    2. Otherwise the greater write wins, ordered by
       a. the HLC timestamp (its string form sorts in timestamp order, and it
          ends with the node id, so writes of two nodes never tie);
       b. then the canonical JSON encoding of the value (equal timestamps mean
          one node wrote twice at one instant; this makes even that case
          deterministic);
       c. equal on both: the writes are identical and either may be kept.
    3. For append-only records the order is reversed: the earliest write
       stands, and a remote write that differs from an existing local value
       and loses is listed in ``refused``.

    ``local`` may be None for a record not yet held. Neither input is mutated.
    Preconditions: every HLC string is well formed (records.py validates the
    wire), and both states belong to the same record.
    """
    if not local:
        # Speed: a new record (most of a push) takes every remote write; what the loop below does
        # for an empty local, without its per-field lookups, and without a copy when every write
        # is already a tuple (a loaded Change's are).
        if all(type(write) is tuple for write in remote.values()):
            state = dict(remote)
        else:
            state = {field: tuple(write) for field, write in remote.items()}  # type: ignore[misc]
        return Merged(state, frozenset(state), frozenset())
    # Every write as a tuple, whichever side it came from: a state read back from JSON holds
    # lists, and [v, h] != (v, h) would make the merged state depend on argument order.
    state: dict[str, Write] = {field: tuple(write) for field, write in local.items()}  # type: ignore[misc]
    changed: set[str] = set()
    refused: set[str] = set()
    for field, remote_write in remote.items():
        local_write = local.get(field)
        if local_write is None:
            state[field] = tuple(remote_write)  # type: ignore[assignment]
            changed.add(field)
            continue
        local_key, remote_key = write_key(local_write), write_key(remote_write)
        if local_key == remote_key:
            continue
        remote_wins = remote_key < local_key if append_only else remote_key > local_key
        if remote_wins:
            state[field] = tuple(remote_write)  # type: ignore[assignment]
            changed.add(field)
        elif append_only and canonical(remote_write[0]) != canonical(local_write[0]):
            refused.add(field)
    return Merged(state, frozenset(changed), frozenset(refused))


def values(state: State) -> dict[str, Any]:
    """The plain values of a state, without their timestamps."""
    return {field: write[0] for field, write in state.items()}


def is_deleted(state: State) -> bool:
    """Whether the record's tombstone is set."""
    write = state.get("_deleted")
    return bool(write and write[0])

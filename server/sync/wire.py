"""A push body read fast: the plain valid changes decoded and checked in C by msgspec.

Speed: a push spent most of its CPU in Python checking each value of each change
(shared/records.py's load_change, through marshmallow). Here msgspec decodes
the body straight into per-kind types whose constraints (lengths, patterns,
ranges, choices, booleans, integers) it checks while it parses, and Python only
finishes a few checks (a date that may not exist, an ID number's check
character, a position, the timestamps).

It decides nothing on its own. The types are derived from the kinds' marshmallow
schemas (`_value_type`), as tight as or tighter than them, and whatever they do
not plainly accept (a NUL escape anywhere in the body, an unknown or unusual
field, a value that misses any rule, JSON that msgspec reads differently from
json.loads) leaves that change, or the whole body, to the plain path:
``json.loads`` and `shared.records.load_change`, which accepts or refuses and
words every message exactly as before. So `read_push` accepts a subset of what
the plain path accepts and gives the same `Change` for it, up to the order of
its fields (tests/server/test_wire.py compares the two on generated bodies).
"""

from __future__ import annotations

import functools
import json
import re
from datetime import date
from operator import itemgetter
from typing import Annotated, Any, Callable, Literal, Union

import msgspec
from marshmallow import fields as ma_fields
from marshmallow import validate
from msgspec import UNSET, Meta, Raw, UnsetType
from msgspec.structs import astuple

from shared.hlc import HLC, HLCError
from shared.idcard import resident_id_error
from shared.records import (
    BUCKET_PATTERN, KINDS, REF_BUCKET, UUID_PATTERN, Bool, Change, Code, Day, FullMatch, Id, Instant, Int, Kind,
    Location, Number, ResidentId, Text, is_instant,
)

__all__ = ["read_push", "encode", "dumps", "record_columns", "loads"]

# Every NUL a decoded string can hold comes from this escape: JSON strings cannot carry a raw control
# character. A body containing it (or the harmless text "\\u0000") goes the plain way, so no string
# the fast path passes holds a NUL, which Text refuses.
_NUL_ESCAPE = b"\\u0000"

# A UTC time with milliseconds whose every part is in range, years 1970-9999 (the HLC range). Day 29-31
# may still be no date (Feb 30): those are checked in Python, the rest need nothing more.
_INSTANT = (r"(19[7-9][0-9]|[2-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
            r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\.[0-9]{3}Z")
_HLC_FAST = re.compile(_INSTANT + r"-[0-9a-f]{4}-[0-9a-f]{16}")
_DAY = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_RESIDENT_ID_SHAPE = r"[0-9]{17}[0-9X]"
# What an Int or a Number without a range takes here: float() of a bigger int overflows (Number
# refuses it); the plain path judges such values.
_INT_BOUND = 2**62


class _Pattern:
    """A whole-string match of a compiled regex, remembering the strings it passed.

    Speed: codes, grids, reporters and buckets repeat across a push; a set lookup is a fraction of a
    match (and msgspec's own ``pattern`` constraint costs more than a match from Python). Only
    passing strings are kept, at most 4,096 of them before the memory starts over.
    """

    __slots__ = ("fullmatch", "passed")

    def __init__(self, regex: str):
        self.fullmatch = re.compile(regex).fullmatch
        self.passed: set[str] = set()

    def __call__(self, text: str) -> bool:
        if text in self.passed:
            return True
        if self.fullmatch(text) is None:
            return False
        if len(self.passed) >= 4096:
            self.passed.clear()
        self.passed.add(text)
        return True


_STAMP = itemgetter(1)  # the HLC of a (value, hlc) write
_UUID_PATTERN = _Pattern(UUID_PATTERN.pattern)
_BUCKET_PATTERN = _Pattern(BUCKET_PATTERN.pattern)
_INSTANT_PATTERN = re.compile(_INSTANT).fullmatch


def _instant_exists(text: str) -> bool:
    return _INSTANT_PATTERN(text) is not None and (text[8:10] <= "28" or is_instant(text))


_DAY_PATTERN = re.compile(_DAY).fullmatch


def _day_exists(text: str) -> bool:
    if _DAY_PATTERN(text) is None:
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


_RESIDENT_ID_PATTERN = re.compile(_RESIDENT_ID_SHAPE).fullmatch


def _resident_id_valid(text: str) -> bool:
    return _RESIDENT_ID_PATTERN(text) is not None and resident_id_error(text) is None


def _every(check: Callable[[Any], bool], items: list) -> bool:
    return all(map(check, items))


def _never(value: Any) -> bool:
    return False


# (msgspec type, a check Python finishes on a non-null value or None); None: no plain type here.
_Typed = tuple[Any, Callable[[Any], bool] | None]


def _constraints(field: ma_fields.Field) -> tuple[dict[str, Any], tuple[str, ...] | None] | None:
    """The msgspec Meta of a field's Length, Range and FullMatch validators, and its OneOf choices."""
    meta: dict[str, Any] = {}
    choices = None
    for validator in field.validators:
        kind = type(validator)
        if kind is validate.Length and validator.equal is None:
            if validator.min is not None:
                meta["min_length"] = validator.min
            if validator.max is not None:
                meta["max_length"] = validator.max
        elif kind is validate.Range:
            if validator.min is not None:
                meta["ge" if validator.min_inclusive else "gt"] = validator.min
            if validator.max is not None:
                meta["le" if validator.max_inclusive else "lt"] = validator.max
        elif kind is FullMatch and "pattern" not in meta:
            meta["pattern"] = validator.regex.pattern
        elif kind is validate.OneOf and choices is None and all(type(c) is str for c in validator.choices):
            choices = tuple(validator.choices)
        else:
            return None
    return meta, choices


def _value_type(field: ma_fields.Field) -> _Typed | None:
    """The msgspec type that accepts only plain values the field accepts, and the Python check left."""
    rules = _constraints(field)
    if rules is None:
        return None
    meta, choices = rules
    kind = type(field)
    check = None
    if kind in (Text, Code, Id, Instant, Day, ResidentId):
        # A pattern is matched in Python afterwards (_Pattern); a kind's own rule is a check.
        pattern = meta.pop("pattern", None)
        check = {Id: _UUID_PATTERN, Instant: _instant_exists, Day: _day_exists,
                 ResidentId: _resident_id_valid}.get(kind)
        if pattern is not None:
            if check is not None:
                return None
            # fullmatch of FullMatch's ^…$ is its whole-string match ($ can only match at the end).
            check = _Pattern(pattern)
        if choices is not None:
            if meta or check:  # choices with other rules: rare enough to leave to the schema
                return None
            typed: Any = Literal[choices]  # type: ignore[valid-type]
        else:
            typed = Annotated[str, Meta(**meta)] if meta else str
    elif kind is Bool and not meta and choices is None:
        typed = bool
    elif kind is Int and choices is None:
        bounds = {"ge": -_INT_BOUND, "le": _INT_BOUND, **meta}
        typed = Annotated[int, Meta(**bounds)]
    elif kind is Number and choices is None:
        # The value stays as sent (an int stays an int), as load_change keeps it; msgspec reads no NaN
        # or infinity from JSON.
        bounds = {"ge": -_INT_BOUND, "le": _INT_BOUND, **meta}
        typed = Union[Annotated[int, Meta(**bounds)], Annotated[float, Meta(**meta)] if meta else float]
    elif kind is Location and not meta and choices is None:
        typed, check = dict[str, Any], Location.plain
    elif kind is ma_fields.List and choices is None and "pattern" not in meta:
        inner = _value_type(field.inner)
        if inner is None or field.inner.allow_none:
            return None
        typed = Annotated[list[inner[0]], Meta(**meta)] if meta else list[inner[0]]  # type: ignore[misc]
        if inner[1] is not None:
            check = functools.partial(_every, inner[1])
    else:
        return None
    if field.allow_none:
        typed = Union[typed, None]
    return typed, check


class _KindReader:
    """Reads changes of one kind: a struct of its writes, the checks left to Python, the bucket rules."""

    def __init__(self, kind: Kind):
        attributes: list[tuple] = []
        self.names: list[str] = []
        # (position in the struct, check, whether null passes)
        self.checks: list[tuple[int, Callable[[Any], bool], bool]] = []
        self.name, self.reference, self.has_grid = kind.name, kind.reference, "grid" in kind.fields
        # A hook of the kind's schema (pre/post_load, @validates, @validates_schema) is a rule no type here
        # says, so such a kind is read the plain way. marshmallow documents no way to list a schema's hooks;
        # SchemaMeta.resolve_hooks(), which builds the table Schema.load runs them from, is at least not private.
        hooked = any(kind.schema.resolve_hooks().values())
        for number, (name, field) in enumerate(kind.validator.load_fields.items()):
            typed = _value_type(field) if field.data_key is None and not hooked else None
            value_type, check = typed if typed is not None else (Any, _never)
            attributes.append((f"f{number}", Union[tuple[value_type, str], UnsetType],
                               msgspec.field(default=UNSET, name=name)))
            if check is not None:
                # A null skips the check only where the field takes null (msgspec let it through).
                self.checks.append((len(self.names), check, typed is not None and field.allow_none))
            self.names.append(name)
        writes = msgspec.defstruct(f"{kind.name.title()}Writes", attributes, forbid_unknown_fields=True)
        self.decoder = msgspec.json.Decoder(writes)
        # A whole change of this kind, for reading a body in one go: {"kind": <this kind>, id, bucket, fields}.
        self.change_type = msgspec.defstruct(
            f"{kind.name.title()}Change", [("id", str), ("bucket", str), ("fields", writes)],
            tag_field="kind", tag=kind.name, forbid_unknown_fields=True)

    def change(self, rid: str, bucket: str, decoded: msgspec.Struct) -> Change | None:
        """The Change of a decoded change, when every rule holds; else None."""
        slots = astuple(decoded)
        for index, check, null_passes in self.checks:
            write = slots[index]
            if write is not UNSET and not (null_passes if write[0] is None else check(write[0])):
                return None
        writes = {name: write for name, write in zip(self.names, slots) if write is not UNSET}
        if not writes or not _UUID_PATTERN(rid) or not _BUCKET_PATTERN(bucket):
            return None
        stamps = set(map(_STAMP, writes.values()))  # usually one per change
        if not (_hlc_valid(*stamps) if len(stamps) == 1 else all(map(_hlc_valid, stamps))):
            return None
        # check_values' bucket rules.
        if (bucket == REF_BUCKET) != self.reference:
            return None
        if self.has_grid:
            grid = writes.get("grid")
            if grid is not None and grid[0] and f"grid:{grid[0]}" != bucket:
                return None
        return Change(self.name, rid, bucket, writes)


def _hlc_valid(text: str) -> bool:
    """HLC.parse accepts it (checked whole for a day past the 28th)."""
    if _HLC_FAST.fullmatch(text) is None:
        return False
    if text[8:10] > "28":
        try:
            HLC.parse(text)
        except HLCError:
            return False
    return True


_readers = {name: _KindReader(kind) for name, kind in KINDS.items()}
_reader_of_type = {reader.change_type: reader for reader in _readers.values()}


class _Body(msgspec.Struct, forbid_unknown_fields=True):
    """A push body whose changes are all plainly typed: read in one go."""

    node: Any
    changes: list[Union[tuple(reader.change_type for reader in _readers.values())]]  # type: ignore[misc]
    sent_at: Any = UNSET


class _RawChange(msgspec.Struct, forbid_unknown_fields=True):
    kind: str
    id: str
    bucket: str
    fields: Raw


class _RawBody(msgspec.Struct, forbid_unknown_fields=True):
    """A push body read change by change, when some change is not plainly typed."""

    node: Any
    changes: list[Raw]
    sent_at: Any = UNSET


_body_decoder = msgspec.json.Decoder(_Body)
_raw_body_decoder = msgspec.json.Decoder(_RawBody)
_raw_change_decoder = msgspec.json.Decoder(_RawChange)


def _raw_change(raw: Raw) -> Change | None:
    """load_change of the change in raw, for a plainly valid one; None for anything else."""
    try:
        envelope = _raw_change_decoder.decode(raw)
        reader = _readers.get(envelope.kind)
        if reader is None:
            return None
        return reader.change(envelope.id, envelope.bucket, reader.decoder.decode(envelope.fields))
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None


def read_push(raw: bytes) -> dict[str, Any] | None:
    """A push body decoded as ``json.loads`` would, except that each plainly valid change is already
    the `Change` load_change would make of it; None when the body is best read the plain way.

    A body of plainly valid changes (what tablets send) is read in one msgspec call; any other is
    read again change by change, the changes msgspec cannot take by json.loads.
    """
    if _NUL_ESCAPE in raw:
        return None
    try:
        body = _body_decoder.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        body = None
    if body is not None:
        changes: list[Any] = []
        for item in body.changes:
            change = _reader_of_type[type(item)].change(item.id, item.bucket, item.fields)
            if change is None:
                break
            changes.append(change)
        else:
            return _decoded(body, changes)
    try:
        body = _raw_body_decoder.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    changes = []
    for item in body.changes:
        change = _raw_change(item)
        if change is None:
            try:
                change = json.loads(bytes(item))
            except (ValueError, RecursionError):  # msgspec skipped it, json.loads refuses it: the plain way says why
                return None
        changes.append(change)
    return _decoded(body, changes)


def _decoded(body: _Body | _RawBody, changes: list[Any]) -> dict[str, Any]:
    decoded = {"node": body.node, "changes": changes}
    if body.sent_at is not UNSET:
        decoded["sent_at"] = body.sent_at
    return decoded


# --- the JSON columns ------------------------------------------------------------------------------

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


def encode(value: Any) -> bytes:
    """JSON of a value, UTF-8: compact from msgspec; json.dumps for what it cannot write (a lone
    surrogate, written as its escape, so that the text is always valid UTF-8).

    msgspec writes NaN and the infinities as null. None can reach a column or an answer: every
    number in a record passed load_change, which refuses them (shared/records.py, Number).
    """
    try:
        return _encoder.encode(value)
    except (TypeError, ValueError, OverflowError, UnicodeError):
        return json.dumps(value, separators=(",", ":"), default=msgspec.to_builtins).encode()


def dumps(value: Any) -> str:
    """encode(value) as text: what the JSON columns store."""
    try:
        return _encoder.encode(value).decode()
    except (TypeError, ValueError, OverflowError, UnicodeError):
        return encode(value).decode()


def record_columns(state: dict[str, tuple[Any, str]]) -> tuple[str, str]:
    """The field_values and field_hlcs texts of a record's state {name: (value, hlc)}."""
    values, hlcs = {name: write[0] for name, write in state.items()}, {name: write[1] for name, write in state.items()}
    try:
        return _encoder.encode(values).decode(), _encoder.encode(hlcs).decode()
    except (TypeError, ValueError, OverflowError, UnicodeError):
        return encode(values).decode(), encode(hlcs).decode()


def loads(text: str | bytes) -> Any:
    """A stored value back from its JSON text: msgspec, json.loads for what it cannot read."""
    try:
        return _decoder.decode(text)
    except (msgspec.DecodeError, UnicodeError):
        return json.loads(text)

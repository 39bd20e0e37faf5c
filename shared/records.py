"""The record kinds both sides agree on, and the wire form of a change.

Every record has a kind, a UUID id made where it was created, a bucket and a
set of fields. The kind fixes which fields exist, which a new record must
carry, whether its history is append-only, and which bucket it lives in:

* reference data (grids, categories, units, checklists) lives in ``ref``,
  written by admins and pulled by every device;
* field data lives in ``grid:<grid code>``, pulled only by devices of that
  grid. Event, rental house and patrol carry their ``grid``; case actions,
  house checks and tenants share the bucket of the record they belong to
  (``parent``).

Reference records are referred to by their ``code`` (``grid:G-0101``,
category ``fire_hazard``, unit ``fire``); field records by their id.

Hazard: trusting the wire. Everything a tablet sends passes `load_change`,
which checks the kind, the id, the bucket, every timestamp and every value
against the kind's schema, and names the offending field in the error.
Strings may not contain NUL, which PostgreSQL cannot store.

Hazard: an older app meets a newer server. The server validates strictly, but
a client keeps unknown fields it receives instead of dropping them, so data
written by a newer version survives a round trip through an older one.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import Any, Mapping, NamedTuple

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from .hlc import HLC, HLCError, format_ms, parse_ms
from .idcard import resident_id_error

__all__ = [
    "ValidationError", "Kind", "KINDS", "REFERENCE_KINDS", "FIELD_KINDS", "Change",
    "ChangeSchema", "load_change", "dump_change", "grid_bucket", "bucket_grid", "uuid7",
    "CASE_ACTIONS", "REF_BUCKET", "UUID_PATTERN", "SHA256_PATTERN", "BUCKET_PATTERN", "is_uuid", "is_sha256",
    "is_instant", "NO_LOCATION_REASONS", "DISPUTE_ACTIONS", "DISPUTE_OUTCOMES",
]

REF_BUCKET = "ref"
CODE_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
# \Z, not $: $ also matches before a final "\n", which would let "G-0101\n" pass as a code.
# Written with ^…$ so the OpenAPI document can carry them (JavaScript regexes have no \Z), and
# matched whole by FullMatch: $ alone would also match before a final "\n" ("G-0101\n").
_CODE = re.compile(rf"^{CODE_PATTERN}$")
BUCKET_PATTERN = re.compile(rf"^(ref|grid:{CODE_PATTERN})$")
# A record id in the canonical form Id accepts and keeps (uuid.UUID prints these 32 hex digits back
# unchanged), and a photo's name, its SHA-256 in lowercase hex. Match them whole (fullmatch).
UUID_PATTERN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
_SURROGATE = re.compile("[\ud800-\udfff]")


class FullMatch(validate.Regexp):
    """A regex validator that must match the whole string, trailing newline included."""

    def __call__(self, value):
        if self.regex.fullmatch(value) is None:
            # Regexp's own message: its error with {input} and {regex} filled in, as its docs say (the
            # method Regexp does it with, _format_error, is private).
            raise ValidationError(self.error.format(input=value, regex=self.regex.pattern))
        return value


def is_uuid(text: object) -> bool:
    """Whether text is a record id in canonical form."""
    return isinstance(text, str) and UUID_PATTERN.fullmatch(text) is not None


def is_sha256(text: object) -> bool:
    """Whether text is a SHA-256 digest in lowercase hex (a photo's name)."""
    return isinstance(text, str) and SHA256_PATTERN.fullmatch(text) is not None


def is_instant(text: object) -> bool:
    """Whether text is a time as Instant takes it: UTC with milliseconds, 2026-11-27T19:48:00.123Z."""
    if not isinstance(text, str):
        return False
    try:
        # strptime also takes "2026-1-1T1:1:1.1Z" and microseconds; only the one form sorts as text.
        return format_ms(parse_ms(text)) == text
    except (ValueError, OverflowError, OSError):
        return False


def grid_bucket(grid_code: str) -> str:
    """The bucket of a grid's field data."""
    return f"grid:{grid_code}"


def bucket_grid(bucket: str) -> str | None:
    """The grid code of a grid bucket, or None for ``ref``."""
    return bucket[5:] if bucket.startswith("grid:") else None


def uuid7(unix_ms: int, random_bytes: bytes) -> str:
    """A UUIDv7 string from a time in milliseconds and 10 random bytes (RFC 9562)."""
    if len(random_bytes) < 10:
        raise ValueError("uuid7 needs 10 random bytes")
    value = (unix_ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= (int.from_bytes(random_bytes[:2], "big") & 0x0FFF) << 64
    value |= 0b10 << 62
    value |= int.from_bytes(random_bytes[2:10], "big") & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


# --- value fields -----------------------------------------------------------------------------

class _Validated:
    """Runs a field's validators only when it has some."""

    def _validate(self, value):
        # Speed: marshmallow builds an And() of the validators for every value, even of none;
        # an empty And accepts everything, so skipping it changes nothing.
        if self.validators:
            super()._validate(value)


class Text(_Validated, fields.String):
    """A string without NUL characters or lone surrogates.

    Hazard: JSON may escape half of a UTF-16 pair ("\\ud800"), which json.loads reads as a lone
    surrogate: no UTF-8 text holds one, and PostgreSQL's jsonb refuses it, which failed the whole push.
    """

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise ValidationError("must not contain NUL characters")
        if _SURROGATE.search(text):
            raise ValidationError("must be Unicode text (it holds half of a surrogate pair)")
        return text


class Code(Text):
    """A reference code: letters, digits, '_', '.', '-'; at most 64 characters."""

    def __init__(self, **kwargs):
        super().__init__(validate=FullMatch(_CODE, error="is not a code (letters, digits, _ . -)"), **kwargs)


class Bool(_Validated, fields.Field):
    """A JSON boolean, and only that: 1, "yes" and "true" are refused."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise ValidationError("must be true or false")
        return value


class Int(_Validated, fields.Integer):
    """A JSON integer (not a float, not a string, not a boolean)."""

    def __init__(self, **kwargs):
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            raise ValidationError("must be an integer")
        return super()._deserialize(value, attr, data, **kwargs)


class Number(_Validated, fields.Float):
    """A JSON number; booleans and strings are refused."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValidationError("must be a number")
        return super()._deserialize(value, attr, data, **kwargs)


class Instant(Text):
    """An ISO 8601 UTC time with milliseconds, as HLCs print it: 2026-11-27T19:48:00.123Z."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if not is_instant(text):
            raise ValidationError("must be an ISO 8601 UTC time like 2026-11-27T19:48:00.123Z")
        return text


class Day(Text):
    """An ISO 8601 date: 2026-11-27."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if not re.match(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}\Z", text):
            raise ValidationError("must be a date like 2026-11-27")
        try:
            date.fromisoformat(text)  # 2026-02-30 has the shape but is no date
        except ValueError:
            raise ValidationError("must be a date like 2026-11-27") from None
        return text


class ResidentId(Text):
    """An 18-character PRC resident ID number with a valid GB 11643 check character."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        error = resident_id_error(text)
        if error:
            raise ValidationError(f"is not a resident ID number: {error}")
        return text


class Id(Text):
    """A record id: a UUID in canonical lowercase form."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            canonical = str(uuid.UUID(text))
        except ValueError:
            raise ValidationError("is not a UUID") from None
        if canonical != text:
            raise ValidationError(f"must be written in canonical form: {canonical}")
        return text


def Photos(**kwargs):
    """A list of photo SHA-256 digests (lowercase hex)."""
    return fields.List(Text(validate=FullMatch(SHA256_PATTERN, error="is not a SHA-256 digest")),
                       validate=validate.Length(max=50), **kwargs)


def Name(max_length: int = 200, **kwargs):
    """A short human-readable text."""
    return Text(validate=validate.Length(min=1, max=max_length), **kwargs)


def Note(**kwargs):
    """A longer free text."""
    return Text(validate=validate.Length(max=4000), **kwargs)


class LocationSchema(Schema):
    """A position: WGS 84 degrees, the fix's accuracy and where it came from."""

    lat = Number(required=True, validate=validate.Range(-90, 90))
    lon = Number(required=True, validate=validate.Range(-180, 180))
    accuracy_m = Number(load_default=None, allow_none=True, validate=validate.Range(min=0))
    source = Text(required=True, validate=validate.OneOf(["gps", "manual", "last_known"]))
    # When the fix was taken (GPS, last known): a last known position's age is the report's time minus this.
    fix_at = Instant(allow_none=True)


_LOCATION_KEYS = frozenset(["lat", "lon", "accuracy_m", "source", "fix_at"])
_SOURCES = frozenset(["gps", "manual", "last_known"])


def _within(value: Any, low: float, high: float) -> bool:
    # type(), not isinstance: bool and int/float subclasses are left to marshmallow.
    return type(value) in (int, float) and low <= value <= high


class Location(fields.Nested):
    """A nested LocationSchema, with a shortcut for the plain, valid positions tablets send.

    Speed: loading a nested schema was a sixth of a push's CPU. A dict that plainly passes every
    rule of LocationSchema (known keys only, lat/lon/source present, finite numbers in range, a
    known source) gets the dict LocationSchema.load would return; anything else, valid or not,
    goes through the schema, so what is accepted and every message are as before. (Bounds are
    tighter than the schema's where that keeps the proof short: a huge accuracy goes the slow way.)
    """

    def __init__(self, **kwargs):
        super().__init__(LocationSchema, **kwargs)

    @staticmethod
    def plain(value: Any) -> bool:
        """Whether value is a plain, valid position that LocationSchema.load accepts as is."""
        if (type(value) is dict and value.keys() <= _LOCATION_KEYS
                and _within(value.get("lat"), -90, 90) and _within(value.get("lon"), -180, 180)
                and type(value.get("source")) is str and value["source"] in _SOURCES
                and (value.get("fix_at") is None or is_instant(value["fix_at"]))):
            accuracy = value.get("accuracy_m")
            return accuracy is None or _within(accuracy, 0, 1e15)
        return False

    def _deserialize(self, value, attr, data, partial=None, **kwargs):
        if self.plain(value):
            accuracy = value.get("accuracy_m")
            plain = {"lat": float(value["lat"]), "lon": float(value["lon"]),
                     "accuracy_m": None if accuracy is None else float(accuracy), "source": value["source"]}
            if "fix_at" in value:
                plain["fix_at"] = value["fix_at"]
            return plain
        return super()._deserialize(value, attr, data, partial=partial, **kwargs)


# --- the kinds --------------------------------------------------------------------------------

NO_LOCATION_REASONS = ["indoors", "no_fix", "gps_off", "other"]
MAX_VERSION = 1_000_000  # a checklist's version: every integer on the wire has a range
GRID_TYPES = ["base", "police", "safety", "traffic", "environment", "market", "cleanliness"]
CASE_ACTIONS = [
    "dispatch", "rectify", "verify_pass", "verify_fail", "close", "return", "extend",
    "comment", "handle_on_spot", "mark_duplicate", "supervise",
    "send_back", "request_extension", "grant_extension", "refuse_extension",
]


class GridFields(Schema):
    code = Code(required=True)
    name = Name(required=True)
    name_en = Name(allow_none=True)
    type = Text(validate=validate.OneOf(GRID_TYPES))
    community = Name(required=True)
    street = Name(required=True)
    district = Name(required=True)
    # The grid's outline as a GeoJSON Polygon geometry ({"type": "Polygon", "coordinates": [ring, ...]},
    # lon/lat in WGS 84), so the app can show the worker's grid; the server also checks it is simple.
    boundary = fields.Dict(allow_none=True, validate=lambda value: _check_boundary(value))
    _deleted = Bool()


MAX_BOUNDARY_POINTS = 5000


def _check_boundary(value: Any) -> bool:
    """A GeoJSON Polygon: closed rings of at least four [lon, lat] positions in range, at most 5,000 in all."""
    if value.get("type") != "Polygon" or set(value) - {"type", "coordinates"}:
        raise ValidationError("must be a GeoJSON Polygon: {type: Polygon, coordinates: [[[lon, lat], ...]]}")
    rings = value.get("coordinates")
    if not isinstance(rings, list) or not rings:
        raise ValidationError("a Polygon needs at least one ring")
    count = 0
    for ring in rings:
        if not isinstance(ring, list) or len(ring) < 4:
            raise ValidationError("each ring needs at least four positions (a closed triangle)")
        for point in ring:
            if (not isinstance(point, list) or len(point) not in (2, 3)
                    or not _within(point[0], -180, 180) or not _within(point[1], -90, 90)):
                raise ValidationError("each position must be [lon, lat] in degrees")
        if ring[0][:2] != ring[-1][:2]:
            raise ValidationError("each ring must be closed: its last position equals its first")
        count += len(ring)
    if count > MAX_BOUNDARY_POINTS:
        raise ValidationError(f"at most {MAX_BOUNDARY_POINTS} positions")
    return True


class CategoryFields(Schema):
    code = Code(required=True)
    name = Name(required=True)
    name_en = Name(allow_none=True)
    default_unit = Code(allow_none=True)
    deadline_hours = Int(validate=validate.Range(min=1, max=24 * 365))
    urgent_deadline_hours = Int(validate=validate.Range(min=1, max=24 * 365), allow_none=True)
    micro = Bool()
    duplicate_radius_m = Int(validate=validate.Range(min=0, max=100_000))
    _deleted = Bool()


class UnitFields(Schema):
    code = Code(required=True)
    name = Name(required=True)
    name_en = Name(allow_none=True)
    _deleted = Bool()


class ChecklistItem(Schema):
    code = Code(required=True)
    text = Name(required=True, max_length=500)
    text_en = Name(max_length=500, allow_none=True)
    # What a failed item is, in words (电动车在室内充电) beside its passing condition (无电动车室内充电): what the
    # tablet, the pages and the event made from it say; without it they say the passing condition.
    hazard = Name(max_length=500, allow_none=True)
    hazard_en = Name(max_length=500, allow_none=True)
    category = Code(allow_none=True)  # the event category suggested when the item fails


class ChecklistFields(Schema):
    code = Code(required=True)
    name = Name(required=True)
    name_en = Name(allow_none=True)
    version = Int(required=True, validate=validate.Range(min=1, max=MAX_VERSION))
    items = fields.List(fields.Nested(ChecklistItem), required=True, validate=validate.Length(min=1, max=200))
    _deleted = Bool()


class EventFields(Schema):
    grid = Code(required=True)
    category = Code(required=True)
    description = Note(required=True)
    location = Location(allow_none=True)
    # Why an event has no location, chosen by the worker (the report form asks when there is none).
    no_location_reason = Text(validate=validate.OneOf(NO_LOCATION_REASONS), allow_none=True)
    address = Text(validate=validate.Length(max=500), allow_none=True)
    photos = Photos()
    urgent = Bool()
    micro = Bool()
    reporter = Id(required=True)
    reported_at = Instant(required=True)
    patrol = Id(allow_none=True)  # the patrol it was reported on
    # Written by the server when the event first arrives (server/casebook.py); a push carrying it is refused.
    case_number = Text(validate=validate.Length(max=32), allow_none=True)
    _deleted = Bool()


class CaseActionFields(Schema):
    event = Id(required=True)
    action = Text(required=True, validate=validate.OneOf(CASE_ACTIONS))
    actor = Id(required=True)
    unit = Code(allow_none=True)
    deadline = Instant(allow_none=True)
    note = Note(allow_none=True)
    photos = Photos()
    stand_in = Bool()  # a supervisor verifying in the reporter's place
    duplicate_of = Id(allow_none=True)  # mark_duplicate: the event this one repeats


class RentalHouseFields(Schema):
    grid = Code(required=True)
    address = Name(required=True, max_length=500)
    owner = Name(allow_none=True)
    owner_phone = Text(validate=validate.Length(max=40), allow_none=True)
    building_head = Name(allow_none=True)
    building_head_phone = Text(validate=validate.Length(max=40), allow_none=True)
    floors = Int(validate=validate.Range(min=0, max=200), allow_none=True)
    rooms = Int(validate=validate.Range(min=0, max=10_000), allow_none=True)
    location = Location(allow_none=True)
    risk_grade = Text(validate=validate.OneOf(["low", "medium", "high"]), allow_none=True)
    notes = Note(allow_none=True)
    _deleted = Bool()


class CheckAnswer(Schema):
    item = Code(required=True)
    result = Text(required=True, validate=validate.OneOf(["pass", "fail", "na"]))
    note = Note(allow_none=True)


class CheckFields(Schema):
    """What every check of a checked place says (shared/checks.py): a rental house's, a key place's."""

    worker = Id(required=True)
    checked_at = Instant(required=True)
    checklist = Code(required=True)
    checklist_version = Int(required=True, validate=validate.Range(min=1, max=MAX_VERSION))
    answers = fields.List(fields.Nested(CheckAnswer), required=True, validate=validate.Length(max=200))
    photos = Photos()
    patrol = Id(allow_none=True)  # the patrol it was made on


class HouseCheckFields(CheckFields):
    house = Id(required=True)
    residents_seen = Int(validate=validate.Range(min=0, max=10_000), allow_none=True)


class TenantFields(Schema):
    house = Id(required=True)
    name = Name(required=True)
    phone = Text(validate=validate.Length(max=40), allow_none=True)
    room = Text(validate=validate.Length(max=40), allow_none=True)
    id_number = ResidentId(allow_none=True)
    # Written only by the server, in pulls to roles that may not see id_number (server/privacy.py):
    # the masked form, 4401**********123X, under the same timestamp. A push carrying it is refused.
    id_number_masked = Text(validate=validate.Length(max=18), allow_none=True)
    moved_in = Day(allow_none=True)
    moved_out = Day(allow_none=True)
    _deleted = Bool()


MAX_CHECK_EVERY_DAYS = 3660


class PlaceTypeFields(Schema):
    """A type of key place (重点单位, 三小场所: small shop, workshop, venue …), set by admins.

    ``checklist`` is the code of the checklist its places are checked against; ``check_every_days``
    maps a grade (``A``, ``B``, ``C`` …) to how many days may pass between two checks of a place of
    that grade (shared/checks.py, the schedule).
    """

    code = Code(required=True)
    name = Name(required=True)
    name_en = Name(allow_none=True)
    checklist = Code(allow_none=True)
    check_every_days = fields.Dict(keys=Code(), values=Int(validate=validate.Range(min=1, max=MAX_CHECK_EVERY_DAYS)),
                                   validate=validate.Length(max=20))
    _deleted = Bool()


class PlaceFields(Schema):
    """A key place (重点单位 or 三小场所) of a grid, graded by importance, bound to its responsible worker."""

    grid = Code(required=True)
    name = Name(required=True)
    type = Code(required=True)  # a place_type's code
    grade = Code(allow_none=True)  # a key of its type's check_every_days
    address = Text(validate=validate.Length(max=500), allow_none=True)
    location = Location(allow_none=True)
    person_in_charge = Name(allow_none=True)
    phone = Text(validate=validate.Length(max=40), allow_none=True)
    worker = Id(allow_none=True)  # the grid worker responsible for it (a user id)
    notes = Note(allow_none=True)
    _deleted = Bool()


class PlaceCheckFields(CheckFields):
    place = Id(required=True)


class PatrolFields(Schema):
    """A patrol (巡): one worker's walk of one grid, started and stopped on the tablet.

    Append-only: ``ended_at`` and ``distance_m`` are added once, when the patrol stops (by the
    worker, or by the app closing a patrol it finds open after being killed: ``closed_by``).
    Its points travel apart, in ``track`` records of up to 1,000 points each (shared/track.py).
    """

    grid = Code(required=True)
    worker = Id(required=True)
    started_at = Instant(required=True)
    ended_at = Instant(allow_none=True)
    distance_m = Number(validate=validate.Range(min=0, max=10_000_000), allow_none=True)
    closed_by = Text(validate=validate.OneOf(["worker", "recovery"]), allow_none=True)
    note = Note(allow_none=True)


class TrackFields(Schema):
    """A batch of a patrol's track points, packed by columns (shared/track.py says how)."""

    patrol = Id(required=True)
    worker = Id(required=True)
    seq = Int(required=True, validate=validate.Range(min=0, max=1_000_000))  # the batch's place in its patrol
    start = Instant(required=True)  # the time of the batch's first point
    points = fields.Dict(required=True, validate=lambda value: _check_packed(value))


def _check_packed(value: Any) -> bool:
    from .track import packed_error  # track.py builds on this module's patterns
    error = packed_error(value)
    if error:
        raise ValidationError(error)
    return True


class FixedPointFields(Schema):
    """A fixed patrol point (定点巡查) an admin sets in a grid: visit it at least every ``every_hours``."""

    grid = Code(required=True)
    name = Name(required=True)
    name_en = Name(allow_none=True)
    location = Location(required=True)
    radius_m = Int(required=True, validate=validate.Range(min=5, max=2_000))
    every_hours = Int(required=True, validate=validate.Range(min=1, max=24 * 366))
    _deleted = Bool()


class PointVisitFields(Schema):
    """A visit to a fixed point: seen by the track passing within its radius, or a check-in with a photo."""

    point = Id(required=True)
    worker = Id(required=True)
    visited_at = Instant(required=True)
    method = Text(required=True, validate=validate.OneOf(["track", "check_in"]))
    patrol = Id(allow_none=True)
    location = Location(allow_none=True)
    photos = Photos()
    note = Note(allow_none=True)


class PatrolPlanFields(Schema):
    """A grid's suggested patrol schedule, computed by the server from the event history (server/patrols)."""

    grid = Code(required=True)
    computed_at = Instant(required=True)
    hours = fields.List(Int(validate=validate.Range(min=0, max=23)), validate=validate.Length(max=24))
    rounds_per_day = Int(validate=validate.Range(min=0, max=48))
    busy_weekdays = fields.List(Int(validate=validate.Range(min=1, max=7)), validate=validate.Length(max=7))
    points = fields.List(Id(), validate=validate.Length(max=50))  # fixed points most in need, first first
    basis_events = Int(validate=validate.Range(min=0, max=100_000_000))
    summary = Note(allow_none=True)
    summary_en = Note(allow_none=True)


class DisputeKindFields(Schema):
    """A kind of civil dispute (矛盾纠纷: neighbours, family, labour …) and the hours to take one up (admin-set).

    ``take_up_hours`` travels with the kind so that a tablet tells an overdue dispute offline (shared/dispute.py).
    """

    code = Code(required=True)
    name = Name(required=True)
    name_en = Name(allow_none=True)
    take_up_hours = Int(required=True, validate=validate.Range(min=1, max=24 * 365))
    _deleted = Bool()


DISPUTE_ACTIONS = ["accept", "session", "outcome", "follow_up", "comment"]
DISPUTE_OUTCOMES = ["settled", "partly_settled", "not_settled", "referred"]


class DisputeParty(Schema):
    """A party to a dispute: personal data (server/privacy.py seals the whole list at rest)."""

    name = Name(required=True, max_length=100)
    phone = Text(validate=validate.Length(max=40), allow_none=True)
    role = Text(validate=validate.Length(max=40), allow_none=True)  # 申请人, 被申请人, 家属 …


class DisputeFields(Schema):
    """A civil dispute (民事纠纷) reported in a grid; its mediation steps are ``dispute_action`` records."""

    grid = Code(required=True)
    dispute_kind = Code(required=True)  # a dispute_kind code (neighbours, family, labour …)
    parties = fields.List(fields.Nested(DisputeParty), required=True, validate=validate.Length(min=1, max=20))
    # Written only by the server, in pulls to roles that may not see the parties (server/privacy.py):
    # names and phones masked (张*, 138****5678), under the same timestamp. A push carrying it is refused.
    parties_masked = fields.List(fields.Nested(DisputeParty), allow_none=True, validate=validate.Length(max=20))
    place = Text(validate=validate.Length(max=500), allow_none=True)
    location = Location(allow_none=True)
    description = Note(required=True)
    reporter = Id(required=True)
    reported_at = Instant(required=True)
    patrol = Id(allow_none=True)  # the patrol it was reported on
    _deleted = Bool()


class DisputeActionFields(Schema):
    """A mediation step (accept, session, outcome, follow-up, comment): append-only, folded by shared/dispute.py."""

    dispute = Id(required=True)
    action = Text(required=True, validate=validate.OneOf(DISPUTE_ACTIONS))
    actor = Id(required=True)
    at = Instant(allow_none=True)  # when it happened (a session held earlier), else the time of its record
    note = Note(allow_none=True)
    mediators = fields.List(Name(max_length=100), validate=validate.Length(max=20))
    outcome = Text(validate=validate.OneOf(DISPUTE_OUTCOMES), allow_none=True)
    referred_to = Name(allow_none=True)  # outcome "referred": the body it went to (法院, 劳动仲裁 …)
    photos = Photos()


@dataclass(frozen=True)
class Kind:
    """What a record kind is: its fields, its rules and where it lives."""

    name: str
    schema: type[Schema]
    reference: bool = False
    append_only: bool = False
    parent: tuple[str, str] | None = None  # (field, kind) whose bucket this record shares
    # The field naming who made the record: the server holds it to the pushing user, written once.
    author: str | None = None

    @cached_property
    def validator(self) -> Schema:
        """One schema instance, reused: building marshmallow schemas is not free."""
        return self.schema()

    @cached_property
    def fields(self) -> frozenset[str]:
        """Every field name the kind has."""
        return frozenset(self.validator.fields)

    @cached_property
    def required(self) -> frozenset[str]:
        """The fields a change that creates a record must carry."""
        return frozenset(name for name, field in self.validator.fields.items() if field.required)

    @cached_property
    def top_level(self) -> frozenset[str]:
        """The ``partial`` for loading a change's values: every top-level field, nothing nested."""
        return _TopLevel(self.fields)

    def bucket_of(self, values: Mapping[str, Any]) -> str | None:
        """The bucket the values place the record in; None when the parent decides."""
        if self.reference:
            return REF_BUCKET
        if "grid" in self.fields and values.get("grid"):
            return grid_bucket(values["grid"])
        return None


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in [
        Kind("grid", GridFields, reference=True),
        Kind("category", CategoryFields, reference=True),
        Kind("unit", UnitFields, reference=True),
        Kind("checklist", ChecklistFields, reference=True),
        Kind("event", EventFields, author="reporter"),
        Kind("case_action", CaseActionFields, append_only=True, parent=("event", "event"), author="actor"),
        Kind("rental_house", RentalHouseFields),
        Kind("house_check", HouseCheckFields, append_only=True, parent=("house", "rental_house"), author="worker"),
        Kind("tenant", TenantFields, parent=("house", "rental_house")),
        Kind("place_type", PlaceTypeFields, reference=True),
        Kind("place", PlaceFields),
        Kind("place_check", PlaceCheckFields, append_only=True, parent=("place", "place"), author="worker"),
        Kind("patrol", PatrolFields, append_only=True, author="worker"),
        Kind("track", TrackFields, append_only=True, parent=("patrol", "patrol"), author="worker"),
        Kind("fixed_point", FixedPointFields),
        Kind("point_visit", PointVisitFields, append_only=True, parent=("point", "fixed_point"), author="worker"),
        Kind("patrol_plan", PatrolPlanFields),
        Kind("dispute_kind", DisputeKindFields, reference=True),
        Kind("dispute", DisputeFields, author="reporter"),
        Kind("dispute_action", DisputeActionFields, append_only=True, parent=("dispute", "dispute"), author="actor"),
    ]
}
REFERENCE_KINDS = frozenset(k for k, v in KINDS.items() if v.reference)
FIELD_KINDS = frozenset(k for k, v in KINDS.items() if not v.reference)


# --- the wire change --------------------------------------------------------------------------

class Change(NamedTuple):
    """One record's writes as they travel: ``fields`` maps name to (value, hlc).

    A NamedTuple, not a frozen dataclass: a push makes one per change, and a frozen dataclass's
    __init__ cost more than anything else the server does to read one.
    """

    kind: str
    id: str
    bucket: str
    fields: dict[str, tuple[Any, str]]

    @property
    def values(self) -> dict[str, Any]:
        """The plain values, without timestamps."""
        return {name: write[0] for name, write in self.fields.items()}

    def max_hlc(self) -> str:
        """The latest timestamp among the writes."""
        return max(write[1] for write in self.fields.values())


class WriteField(fields.Field):
    """A ``[value, hlc]`` pair; the value is checked by the kind's schema afterwards."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise ValidationError("must be a [value, hlc] pair")
        try:
            HLC.parse(value[1])
        except HLCError as exc:
            raise ValidationError(str(exc)) from None
        return (value[0], value[1])


class Writes(fields.Dict):
    """``{name: [value, hlc]}``: a Dict of Text keys and WriteField values, checked faster.

    Speed: marshmallow runs two fields per write (key and value), which was a fifth of a push's
    CPU. The loop below accepts exactly what those fields accept: str keys without NUL (Text),
    [value, hlc] lists or tuples of two with a valid HLC (WriteField), giving the same dict.
    Anything else, even what they would accept (a bytes key), goes to fields.Dict, which builds
    the error messages, so what is accepted and every message are as before.
    """

    def __init__(self, **kwargs):
        super().__init__(keys=Text(), values=WriteField(), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if type(value) is dict:
            result = {}
            try:
                for name, write in value.items():
                    if (type(name) is not str or "\x00" in name
                            or type(write) not in (list, tuple) or len(write) != 2):
                        break
                    HLC.parse(write[1])
                    result[name] = (write[0], write[1])
                else:
                    return result
            except HLCError:
                pass
        return super()._deserialize(value, attr, data, **kwargs)


class _TopLevel(frozenset):
    """The ``partial`` of a kind's load: these top-level fields may be missing, no nested one.

    Speed: given a collection, marshmallow looks in it for each field's "field." entries to pass
    on to nested schemas, a scan of every name for every field of every change. There are none
    (a tuple of the names gave [] to each), so iterating yields nothing; ``in`` still sees them.
    """

    def __iter__(self):
        return iter(())


class ChangeSchema(Schema):
    """The wire form of a change: ``{kind, id, bucket, fields: {name: [value, hlc]}}``."""

    kind = Text(required=True, validate=validate.OneOf(sorted(KINDS), error="unknown kind {input!r}"))
    id = Id(required=True)
    bucket = Text(required=True, validate=FullMatch(BUCKET_PATTERN, error="must be 'ref' or 'grid:<grid code>'"))
    fields = Writes(required=True, validate=validate.Length(min=1, error="a change must set at least one field"))

    @validates_schema(skip_on_field_errors=True)
    def check_values(self, data, **kwargs):
        """Check each value against the kind's schema and the bucket against the values."""
        kind = KINDS[data["kind"]]
        writes = data["fields"]
        unknown = sorted(set(writes) - kind.fields)
        errors: dict[str, Any] = {name: ["unknown field"] for name in unknown}
        try:
            # Partial at the top level only (a push carries the fields it changed); partial=True
            # would propagate into nested values and accept a location without lat and lon.
            kind.validator.load({name: write[0] for name, write in writes.items() if name not in unknown},
                               partial=kind.top_level)
        except ValidationError as exc:
            errors.update(exc.messages)  # type: ignore[arg-type]
        if errors:
            raise ValidationError({"fields": errors})
        expected = kind.bucket_of({name: write[0] for name, write in writes.items()})
        if kind.reference and data["bucket"] != REF_BUCKET:
            raise ValidationError({"bucket": [f"{kind.name} records live in 'ref'"]})
        if not kind.reference and data["bucket"] == REF_BUCKET:
            raise ValidationError({"bucket": [f"{kind.name} records live in a grid bucket"]})
        if expected is not None and expected != data["bucket"]:
            raise ValidationError({"bucket": [f"must be {expected!r} for grid {writes['grid'][0]!r}"]})


_change_schema = ChangeSchema()


def load_change(data: Any) -> Change:
    """Validate one wire change; raises ValidationError whose messages name the field."""
    if not isinstance(data, dict):
        raise ValidationError({"_schema": ["a change must be a JSON object"]})
    loaded = _change_schema.load(data)
    return Change(loaded["kind"], loaded["id"], loaded["bucket"], dict(loaded["fields"]))


def dump_change(change: Change) -> dict[str, Any]:
    """The wire form of a change."""
    return {
        "kind": change.kind,
        "id": change.id,
        "bucket": change.bucket,
        "fields": {name: [value, hlc] for name, (value, hlc) in change.fields.items()},
    }

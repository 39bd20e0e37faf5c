"""The wire's limits on what a worker types, read from the record schemas (shared/records.py).

The presenters check them before writing, so the worker learns at once, offline, what the server
would refuse. They are read from the schemas rather than copied: a schema that allows more or
less changes the tablet with it.
"""

from __future__ import annotations

from marshmallow import validate

from shared.records import KINDS

__all__ = ["max_length", "DESCRIPTION_MAX", "ADDRESS_MAX", "PHOTOS_MAX", "NOTE_MAX", "ACTION_PHOTOS_MAX"]


def max_length(kind: str, field: str) -> int:
    """The most characters (or list items) the kind's field may hold: the max of its Length validator."""
    for validator in KINDS[kind].validator.fields[field].validators:
        if isinstance(validator, validate.Length) and validator.max is not None:
            return validator.max
    raise LookupError(f"{kind}.{field} has no maximum length")


DESCRIPTION_MAX = max_length("event", "description")
ADDRESS_MAX = max_length("event", "address")
PHOTOS_MAX = max_length("event", "photos")
NOTE_MAX = max_length("case_action", "note")  # the note of a verification or of handling on the spot
ACTION_PHOTOS_MAX = max_length("case_action", "photos")

"""The tablet's input limits are the record schemas' (shared/records.py), read from them, not copied."""

from __future__ import annotations

import pytest
from marshmallow import validate

from mobile import limits
from shared.records import KINDS


def schema_max(kind: str, field: str) -> int:
    """The max of the field's one Length validator, read from a fresh instance of the kind's schema."""
    (length,) = [v for v in KINDS[kind].schema().fields[field].validators if isinstance(v, validate.Length)]
    return length.max


@pytest.mark.parametrize("limit, kind, field", [
    ("DESCRIPTION_MAX", "event", "description"),
    ("ADDRESS_MAX", "event", "address"),
    ("PHOTOS_MAX", "event", "photos"),
    ("NOTE_MAX", "case_action", "note"),
    ("ACTION_PHOTOS_MAX", "case_action", "photos"),
])
def test_the_tablets_limits_are_the_schemas(limit, kind, field):
    assert getattr(limits, limit) == schema_max(kind, field)


def test_max_length_reads_a_length_with_a_minimum_too():
    assert limits.max_length("rental_house", "address") == schema_max("rental_house", "address") == 500


def test_max_length_of_a_field_without_one_is_an_error():
    with pytest.raises(LookupError, match="event.grid"):
        limits.max_length("event", "grid")

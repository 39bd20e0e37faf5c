"""Times on the pages: stored in UTC, shown and read in the district's time.

The district's time is a fixed offset (``GRIDPATROL_UTC_OFFSET``, ``+08:00`` by default): China
keeps no daylight saving, so no time-zone database is needed. The offset is checked when the app
is built (server/config.py), so a page never meets a malformed one.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

from flask import current_app

from shared.hlc import format_ms, parse_ms

from ..config import parse_offset

def district_zone() -> timezone:
    """The fixed UTC offset in which the pages show and read times."""
    return parse_offset(current_app.config["GRIDPATROL_UTC_OFFSET"])


def today() -> date:
    """The district's date now."""
    return datetime.now(district_zone()).date()


def local_time(value: Any, seconds: bool = False) -> str:
    """A UTC instant (ISO 8601 text, Unix ms or an aware datetime) as district time, to the minute; '' for none."""
    if value in (None, ""):
        return ""
    if isinstance(value, datetime):
        if value.tzinfo is None:  # SQLite gives a stored UTC time back without its zone
            value = value.replace(tzinfo=timezone.utc)
        value = int(value.timestamp() * 1000)
    try:
        ms = value if isinstance(value, int) else parse_ms(value)
    except (TypeError, ValueError):
        return str(value)
    shown = datetime.fromtimestamp(ms / 1000, district_zone())
    return shown.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def local_input(iso: str | None) -> datetime | None:
    """A UTC instant as a naive district-time datetime, for a datetime-local field."""
    if not iso:
        return None
    return datetime.fromtimestamp(parse_ms(iso) / 1000, district_zone()).replace(tzinfo=None)


def utc_instant(local: datetime) -> str:
    """A naive district-time datetime from a form as an ISO 8601 UTC instant."""
    return format_ms(int(local.replace(tzinfo=district_zone()).timestamp() * 1000))

"""Times and places as the screens show them (the tablet's local time, short forms)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from .. import i18n

__all__ = ["local_time", "location_text", "short_id"]


def local_time(value: Any) -> str:
    """Unix ms or an ISO 8601 UTC string (or an HLC) as local "YYYY-MM-DD HH:MM"; "never" for None."""
    if value in (None, "", 0):
        return i18n.t("common.never")
    try:
        if isinstance(value, (int, float)):
            moment = datetime.fromtimestamp(value / 1000, tz=timezone.utc)
        else:
            text = str(value)[:24]  # an HLC starts with its ISO wall time
            if "Z-" in text:
                text = text[:text.index("Z-") + 1]
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=timezone.utc)
    except (ValueError, OverflowError, OSError):
        return str(value)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def location_text(reading: Any, now_ms: int | None = None) -> tuple[str, str | None]:
    """(the position with its accuracy, the source in words or None) of a LocationReading, or 'no location'.

    Given ``now_ms``, a last known position says its age ("last known, 4 minutes ago").
    """
    if reading is None or getattr(reading, "lat", None) is None or getattr(reading, "lon", None) is None:
        return i18n.t("location.none"), None
    text = i18n.t("location.value", lat=reading.lat, lon=reading.lon)
    if getattr(reading, "accuracy_m", None) is not None:
        text += "  " + i18n.t("location.accuracy", accuracy=reading.accuracy_m)
    source = i18n.source_name(reading.source or "manual")
    at_ms = getattr(reading, "at_ms", None)
    if reading.source == "last_known" and now_ms is not None and isinstance(at_ms, int):
        source += i18n.t("location.age", minutes=max(0, (now_ms - at_ms) // 60_000))
    return text, source


def short_id(record_id: str) -> str:
    """The last 6 characters of a UUID: enough to tell records apart on one screen."""
    return (record_id or "")[-6:]

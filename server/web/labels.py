"""Every domain word the pages show, translated (Flask-Babel), and names of reference records.

The fold's reasons (shared/case.py) each need a label; a reason without one is a start-up error,
not a raw English string on a Chinese page.
"""

from __future__ import annotations

from typing import Any

from flask_babel import get_locale, gettext as _, lazy_gettext as _l

from shared.case import REASONS
from shared.sizes import size_text

STATUS_LABELS = {
    "open": _l("Open"), "reported": _l("Reported"), "dispatched": _l("Dispatched"),
    "rectified": _l("Rectified"), "returned": _l("Returned for rectification"), "closed": _l("Closed"),
    "all": _l("All"),
}
ACTION_LABELS = {
    "report": _l("Reported"), "dispatch": _l("Dispatch"), "rectify": _l("Rectify"),
    "verify_pass": _l("Verification passed"), "verify_fail": _l("Verification failed"), "close": _l("Close"),
    "return": _l("Return for rectification"), "extend": _l("Extend deadline"), "comment": _l("Comment"),
    "handle_on_spot": _l("Handled on the spot"), "mark_duplicate": _l("Marked as duplicate"),
    "supervise": _l("Put under supervision (督办)"), "verify": _l("Verify in the reporter's place"),
    "send_back": _l("Send back as not ours"), "request_extension": _l("Ask for more time"),
    "grant_extension": _l("Grant the extension"), "refuse_extension": _l("Refuse the extension"),
}
RESOLUTION_LABELS = {
    "verified": _l("verified by the reporter"), "handled_on_spot": _l("handled on the spot"),
    "closed": _l("closed by a supervisor"), "duplicate": _l("duplicate"),
}
SOURCE_LABELS = {"gps": _l("GPS"), "manual": _l("typed by hand"), "last_known": _l("last known position")}
NO_LOCATION_LABELS = {"indoors": _l("indoors"), "no_fix": _l("no GPS fix"), "gps_off": _l("location was off"),
                      "other": _l("another reason")}
ROLE_LABELS = {"worker": _l("Grid worker"), "supervisor": _l("Supervisor"), "unit": _l("Rectifying unit"),
               "admin": _l("Administrator")}
REASON_LABELS = {
    "superseded: case not dispatched yet": _l("superseded: the case was not dispatched yet"),
    "superseded: case not rectified yet": _l("superseded: the case was not rectified yet"),
    "superseded: case already rectified, awaiting verification":
        _l("superseded: the case was already rectified and awaits verification"),
    "superseded: case returned, not rectified again yet":
        _l("superseded: the case was returned and not rectified again yet"),
    "superseded: case already closed": _l("superseded: the case was already closed"),
    "superseded: case already dispatched": _l("superseded: the case was already dispatched"),
    "refused: unknown action": _l("refused: unknown action"),
    "refused: malformed timestamp": _l("refused: malformed timestamp"),
    "refused: only the reporter, or a supervisor standing in, verifies":
        _l("refused: only the reporter, or a supervisor standing in, verifies"),
    "refused: dispatch names no unit": _l("refused: the dispatch names no unit"),
    "refused: extend gives no deadline": _l("refused: the extension gives no deadline"),
    "refused: not a micro event": _l("refused: not a micro event"),
    "refused: only the reporter handles a micro event on the spot":
        _l("refused: only the reporter handles a micro event on the spot"),
    "refused: gives no reason": _l("refused: no reason given"),
    "refused: the deadline asked for is not later than the one in force":
        _l("refused: the deadline asked for is not later than the one in force"),
    "superseded: no extension asked for": _l("superseded: no extension was asked for"),
}
if set(REASON_LABELS) != set(REASONS):
    raise RuntimeError("every reason the fold gives needs a label: "
                       + ", ".join(sorted(set(REASONS) ^ set(REASON_LABELS))))


def english() -> bool:
    """Whether this request's pages are in English."""
    return str(get_locale()) == "en"


def name_of(record: dict | None, code: str | None = None) -> str:
    """A reference record's name in the page's language (English falls back to Chinese, then the code)."""
    if not record:
        return code or ""
    if english() and record.get("name_en"):
        return record["name_en"]
    return record.get("name") or record.get("code") or code or ""


def percent(rate: float | None) -> str:
    """A rate as a percentage with one decimal; — when there is none."""
    return "—" if rate is None else f"{rate * 100:.1f} %"


def labelled(label: Any, value: Any) -> str:
    """"label: value" in the page's language's punctuation (a full-width colon in Chinese)."""
    return _("%(label)s: %(value)s", label=label, value=value)


def template_labels() -> dict[str, Any]:
    """The labels every template may use."""
    return {"STATUS_LABELS": STATUS_LABELS, "ACTION_LABELS": ACTION_LABELS, "RESOLUTION_LABELS": RESOLUTION_LABELS,
            "ROLE_LABELS": ROLE_LABELS, "name_of": name_of, "percent": percent,
            "labelled": labelled, "size_text": size_text, "SOURCE_LABELS": SOURCE_LABELS,
            "NO_LOCATION_LABELS": NO_LOCATION_LABELS, "fix_age": fix_age}


def fix_age(location: Any, reported_at: Any) -> str | None:
    """How old a last known position was when the event was reported ("12 min"), or None when not known."""
    from shared.hlc import ms_or_none

    if not isinstance(location, dict) or location.get("source") != "last_known":
        return None
    fix, reported = ms_or_none(location.get("fix_at")), ms_or_none(reported_at)
    if fix is None or reported is None:
        return None
    return _("%(minutes)s min before the report", minutes=max(0, (reported - fix) // 60_000))

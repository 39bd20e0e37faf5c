"""The dispute pages' words: statuses, steps, outcomes and the fold's reasons, translated (Flask-Babel).

Every reason the fold gives (shared/dispute.py, REASONS) needs a label: a reason without one is a start-up error,
not a raw English string on a Chinese page.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from shared.dispute import REASONS

OUTCOME_LABELS = {"settled": _l("Settled"), "partly_settled": _l("Partly settled"),
                  "not_settled": _l("Not settled"), "referred": _l("Referred to another body")}
STATUS_LABELS = {"open": _l("Open"), "reported": _l("Not taken up"), "accepted": _l("Accepted"),
                 "mediating": _l("In mediation"), "concluded": _l("Concluded"), "all": _l("All")}
STEP_LABELS = {"accept": _l("Accept (受理)"), "session": _l("Mediation session"), "outcome": _l("Outcome"),
               "follow_up": _l("Follow-up visit (回访)"), "comment": _l("Comment")}
REASON_LABELS = {
    "superseded: dispute already concluded": _l("superseded: the dispute was already concluded"),
    "superseded: dispute already taken up": _l("superseded: the dispute was already taken up"),
    "superseded: no outcome yet to follow up": _l("superseded: there was no outcome yet to follow up"),
    "refused: unknown action": _l("refused: unknown action"),
    "refused: malformed timestamp": _l("refused: malformed timestamp"),
    "refused: gives no outcome": _l("refused: no outcome given"),
    "refused: a referral names no body": _l("refused: the referral names no body"),
}
if set(REASON_LABELS) != set(REASONS):
    raise RuntimeError("every reason the dispute fold gives needs a label")

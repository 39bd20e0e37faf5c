"""The dispute list as CSV or XLSX: the parties masked, as in the list (server/exports.py writes the files)."""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping

from flask_babel import lazy_gettext as _l

from ..reference import Reference
from ..web.labels import name_of
from .labels import OUTCOME_LABELS, STATUS_LABELS
from .service import Dispute

COLUMNS = [_l("Reported at"), _l("Grid"), _l("Community"), _l("Street"), _l("Kind of dispute"), _l("Parties"),
           _l("Place"), _l("Description"), _l("Reported by"), _l("Status"), _l("Outcome"), _l("Overdue"),
           _l("Take up by"), _l("Taken up at"), _l("Sessions"), _l("Follow-ups")]


def dispute_rows(disputes: Iterable[Dispute], reference: Reference, kinds: Mapping[str, dict],
                 names: Mapping[str, str]) -> Iterator[list[Any]]:
    """The heading (in the page's language), then one row per dispute."""
    yield [str(header) for header in COLUMNS]
    for d in disputes:
        grid, state = reference.grid(d.grid), d.state
        parties = "；".join(p["name"] + (f" {p['phone']}" if p.get("phone") else "") for p in d.masked)
        yield [d.values.get("reported_at"), d.grid, grid.get("community"), grid.get("street"),
               name_of(kinds.get(d.kind), d.kind), parties, d.values.get("place"), d.values.get("description"),
               names.get(d.values.get("reporter"), d.values.get("reporter")), str(STATUS_LABELS[state.status]),
               str(OUTCOME_LABELS[state.outcome]) if state.outcome else None, state.overdue, state.deadline,
               state.taken_up_at, state.sessions, state.follow_ups]

"""Who may do what: the one table of roles, read by sync, photos, the pages and the tablet.

Four roles use GridPatrol (domain.md): grid workers (网格员) on tablets, supervisors (网格长, 综治中心)
and rectifying units (整治单位) on the pages, and admins (区网格办), who may do everything a
supervisor may and change the reference data. What each may do is written here once:

* **Buckets.** Everyone reads the reference data (``ref``); only admins write it. A worker reads
  and writes the grids assigned to them; supervisors and admins every grid; a unit user no grid
  bucket (units see cases on the pages, not on tablets) but may write a case action in any grid,
  on a case now dispatched to their unit (the server checks the dispatch when it applies the action).
* **Kinds.** A unit user writes case actions and nothing else in a grid. Fixed patrol points and
  patrol plans are the office's (`MANAGED_KINDS`): workers read them and may not write them.
* **Case actions.** `ACTIONS_BY_ROLE` names what each role may push. Whether an action *applies* to
  a case as it stands is the fold's to say (shared/case.py), not this table's.
* **Standing in.** A supervisor or an admin may verify in the reporter's place (``stand_in``); the
  fold trusts that flag, so only the server's check of this table keeps a worker from setting it.
* **Pages.** Which roles may open which area of the web pages.

Hazard: roles change while tablets are offline. A change is judged by the pushing user's role
*now*, when it arrives; the fold never reads roles, so history is not rewritten when a role
changes (shared/case.py, "Hazard: permission").
"""

from __future__ import annotations

from typing import Iterable

from .records import REF_BUCKET, bucket_grid

__all__ = [
    "ROLES", "ACTIONS_BY_ROLE", "STAND_IN_ROLES", "PAGES", "may_take", "may_stand_in", "may_use",
    "may_write_bucket", "may_write_kind", "MANAGED_KINDS", "reads_every_grid", "readable_grids",
]

ROLES = ("worker", "supervisor", "unit", "admin")

# The case actions (case_action.action) each role may push, from a tablet or a page.
ACTIONS_BY_ROLE: dict[str, frozenset[str]] = {
    "worker": frozenset({"verify_pass", "verify_fail", "handle_on_spot", "comment"}),
    "unit": frozenset({"rectify", "comment", "send_back", "request_extension"}),
    "supervisor": frozenset({"dispatch", "close", "return", "extend", "comment", "mark_duplicate", "supervise",
                             "verify_pass", "verify_fail", "grant_extension", "refuse_extension"}),
}
# An admin acts on cases as a supervisor does. Rectifying is the unit's work (its assessment counts
# it), handling on the spot the reporter's: nobody does either in their place.
ACTIONS_BY_ROLE["admin"] = ACTIONS_BY_ROLE["supervisor"]
STAND_IN_ROLES = frozenset({"supervisor", "admin"})
# The areas of the web pages and the roles that may open them. Workers use the tablet.
PAGES: dict[str, frozenset[str]] = {
    "cases": frozenset({"supervisor", "admin", "unit"}),
    "houses": frozenset({"supervisor", "admin"}),
    "stats": frozenset({"supervisor", "admin"}),
    "patrols": frozenset({"supervisor", "admin"}),
    "disputes": frozenset({"supervisor", "admin"}),
    "places": frozenset({"supervisor", "admin"}),
    "admin": frozenset({"admin"}),
}
_EVERY_GRID = frozenset({"supervisor", "admin"})


def may_take(role: str, action: str) -> bool:
    """Whether the role may push a case action of this name."""
    return action in ACTIONS_BY_ROLE.get(role, ())


def may_stand_in(role: str) -> bool:
    """Whether the role may verify in the reporter's place."""
    return role in STAND_IN_ROLES


def may_use(role: str | None, page: str) -> bool:
    """Whether the role may open an area of the web pages (``cases``, ``houses``, ``stats``, ``admin``)."""
    return role in PAGES.get(page, ())


def reads_every_grid(role: str) -> bool:
    """Whether the role pulls every grid, not only the grids assigned to the user."""
    return role in _EVERY_GRID


def readable_grids(role: str, assigned: Iterable[str], every: Iterable[str]) -> list[str]:
    """The grid codes a user pulls: every grid, their own, or none (units)."""
    if reads_every_grid(role):
        return sorted(set(every))
    if role == "worker":
        return sorted(set(assigned))
    return []


def may_write_bucket(role: str, grids: Iterable[str], bucket: str) -> bool:
    """Whether a user of the role, assigned ``grids``, may write records in the bucket."""
    if bucket == REF_BUCKET:
        return role == "admin"
    if role in _EVERY_GRID or role == "unit":  # a unit's case actions are scoped by dispatch instead
        return True
    return role == "worker" and bucket_grid(bucket) in grids


# Field kinds set by the office, not by workers: fixed patrol points and the patrol plans.
MANAGED_KINDS: dict[str, frozenset[str]] = {
    "fixed_point": frozenset({"supervisor", "admin"}),
    "patrol_plan": frozenset({"supervisor", "admin"}),
}


def may_write_kind(role: str, kind: str, reference: bool) -> bool:
    """Whether the role may write records of the kind at all (its buckets are checked apart)."""
    if kind in MANAGED_KINDS:
        return role in MANAGED_KINDS[kind]
    return reference or role != "unit" or kind == "case_action"

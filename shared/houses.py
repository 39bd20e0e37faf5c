"""The registration rate of temporary residents (暂住人口登记率, goal ≥ 95 %), for the tablet and the pages.

A rental house's rate is its residents registered over the residents seen at its last check:

* **Registered** are its tenants living there on the day counted: no move-out day, or one after
  that day (`living_there`). A move-out day recorded ahead of time counts from that day on.
* **Seen** is ``residents_seen`` of the house's latest check. A house whose last check counted
  nobody, or did not count, has no rate: it is "not counted", neither good nor bad.
* **Capped.** Registered residents count at most up to the residents seen: more tenants on file
  than people met is 100 %, not 125 %. So a house cannot make up for another house's unregistered
  residents, and a rate is always within 0 and 1.

The rate of several houses (a grid, a community, the district) is the sum of the counted houses'
registered (capped) over the sum of their residents seen (`combined_rate`).
"""

from __future__ import annotations

from typing import Iterable

__all__ = ["REGISTRATION_GOAL", "registration_rate", "combined_rate", "below_goal", "living_there"]

REGISTRATION_GOAL = 0.95


def registration_rate(registered: int, seen: int | None) -> float | None:
    """A house's rate: registered (at most ``seen``) over residents seen; None when not counted."""
    if not isinstance(seen, int) or isinstance(seen, bool) or seen <= 0:
        return None
    return min(registered, seen) / seen


def combined_rate(pairs: Iterable[tuple[int, int | None]]) -> tuple[int, int, float | None]:
    """Several houses' (registered, seen): (registered counted, seen counted, rate or None)."""
    registered = seen = 0
    for house_registered, house_seen in pairs:
        if registration_rate(house_registered, house_seen) is None:
            continue
        registered += min(house_registered, house_seen)
        seen += house_seen
    return registered, seen, (registered / seen if seen else None)


def below_goal(rate: float | None) -> bool:
    """Whether a rate is under the 95 % goal (a house not counted is not below it)."""
    return rate is not None and rate < REGISTRATION_GOAL


def living_there(moved_out: str | None, today: str) -> bool:
    """Whether a tenant counts as registered on ``today`` (ISO date): no move-out day, or one after today."""
    return not moved_out or moved_out > today

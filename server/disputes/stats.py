"""The two dispute rates per grid, community and street (调解率 goal 100 %, 调解成功率 goal ≥ 95 %).

The rules are shared/dispute.py's (`dispute_rates`): mediation rate = disputes with a mediation step
(an applied session or outcome) ÷ disputes reported; success rate = disputes settled ÷ disputes
mediated with an outcome. A place's rates are counted from its disputes, never averaged from its
grids'. A period counts the disputes *reported* in it, with whatever steps they have now.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from shared.dispute import (MEDIATION_GOAL, SUCCESS_GOAL, DisputeRates, below_mediation_goal, below_success_goal,
                            dispute_rates)

from ..reference import Reference
from .service import Dispute, rates_by_grid

__all__ = ["MEDIATION_GOAL", "SUCCESS_GOAL", "RateRow", "RateTables", "rate_rows", "rate_tables",
           "below_mediation_goal", "below_success_goal"]


@dataclass(frozen=True)
class RateRow:
    """The counts and rates of one place (``key`` its grid code, community or street; "" for all)."""

    key: str
    rates: DisputeRates

    @property
    def below_mediation_goal(self) -> bool:
        """Whether the mediation rate is under 100 %."""
        return below_mediation_goal(self.rates.mediation_rate)

    @property
    def below_success_goal(self) -> bool:
        """Whether the success rate is under 95 %."""
        return below_success_goal(self.rates.success_rate)


@dataclass(frozen=True)
class RateTables:
    """The rows per street, community and grid, and the total."""

    by_street: list[RateRow]
    by_community: list[RateRow]
    by_grid: list[RateRow]
    total: RateRow


def rate_rows(disputes: Iterable[Dispute], key: Callable[[Dispute], str | None]) -> list[RateRow]:
    """The rates per group of disputes (``key(dispute)`` names its group), by name."""
    groups: dict[str, list[Dispute]] = {}
    for dispute in disputes:
        groups.setdefault(key(dispute) or "", []).append(dispute)
    return [RateRow(name, dispute_rates(d.state for d in members)) for name, members in sorted(groups.items())]


def _sum(parts: Iterable[DisputeRates]) -> DisputeRates:
    total = DisputeRates()
    for part in parts:
        total = total + part
    return total


def rate_tables(reference: Reference, now_ms: int, *, grids: Iterable[str] | None = None,
                start_ms: int | None = None, end_ms: int | None = None) -> RateTables:
    """The rates of the disputes of ``grids`` (None: all) reported in [start_ms, end_ms) (None: no bound).

    Counted per grid in SQL (`service.rates_by_grid`), then summed per community and street: a place's
    rates are its disputes' counts, never an average of its grids' rates.
    """
    by_grid = rates_by_grid(now_ms, grids=grids, start_ms=start_ms, end_ms=end_ms)
    groups: dict[str, dict[str, list[DisputeRates]]] = {"street": {}, "community": {}}
    for grid, rates in by_grid.items():
        for level in groups:
            groups[level].setdefault(reference.grid(grid).get(level) or "", []).append(rates)
    return RateTables(
        by_street=[RateRow(name, _sum(parts)) for name, parts in sorted(groups["street"].items())],
        by_community=[RateRow(name, _sum(parts)) for name, parts in sorted(groups["community"].items())],
        by_grid=[RateRow(grid, rates) for grid, rates in sorted(by_grid.items())],
        total=RateRow("", _sum(by_grid.values())),
    )

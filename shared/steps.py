"""What the folds of append-only steps share (a case's actions, shared/case.py; a dispute's, shared/dispute.py).

Both folds read untrusted records totally (a malformed value becomes None, never an exception) and order
them the same way, so that any replica holding the same steps, in any order and any number of times,
folds the same state:

* `ordered`: one step per id (of two different records under one id, which append-only merge should
  never let happen, the lesser (hlc, canonical values) stands, as in merge), sorted by (hlc, id);
* `text`, `instant`, `canonical`: a field read as non-empty text, as a canonical fixed-width time, or
  as the canonical JSON the tie-break compares.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, Protocol, TypeVar

from .hlc import format_ms, parse_ms

__all__ = ["MAX_MS", "text", "instant", "format_instant", "canonical", "ordered"]

MAX_MS = 253402300799999  # 9999-12-31T23:59:59.999Z, as in hlc.py: the string form stays fixed-width


class _Read(Protocol):
    id: str
    hlc: str


Step = TypeVar("Step", bound=_Read)


def text(value: Any) -> str | None:
    """A non-empty string, or None."""
    return value if isinstance(value, str) and value else None


def format_instant(ms: int) -> str | None:
    """Unix ms as canonical ISO, or None outside 1970 to 9999, where the form stops being fixed-width."""
    return format_ms(ms) if 0 <= ms <= MAX_MS else None


def instant(value: Any) -> str | None:
    """An ISO time in the canonical fixed-width form, or None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        return format_instant(parse_ms(value))
    except (ValueError, OverflowError, OSError):
        return None


def canonical(value: Any) -> str:
    """The canonical JSON of a value (sorted keys), what a tie between two records under one id compares."""
    try:
        return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=repr)
    except (TypeError, ValueError):
        return repr(value)


def _rank(action: Any, step: _Read) -> tuple[str, str]:
    return step.hlc, canonical(getattr(action, "values", None))


def ordered(actions: Iterable[Any], read: Callable[[Any], Step]) -> list[Step]:
    """One step per id, read by ``read``, sorted by (hlc, id); the lesser (hlc, values) of two under one id.

    The canonical values are made only for two records under one id (a JSON dump per action was a
    fifth of a case's fold, for a tie that append-only merge never lets happen).
    """
    chosen: dict[str, tuple[Any, Step]] = {}
    for action in actions:
        step = read(action)
        held = chosen.get(step.id)
        if held is None or _rank(action, step) < _rank(*held):
            chosen[step.id] = (action, step)
    return sorted((step for _, step in chosen.values()), key=lambda step: (step.hlc, step.id))

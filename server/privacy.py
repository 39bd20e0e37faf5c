"""Personal data in records: resident ID numbers, sealed at rest and masked for most eyes.

(Stub: issue 7 fills this in. The store calls these two functions at the only two places
where records cross the store's edge, so nothing else needs to know.)
"""

from __future__ import annotations

from typing import Any

from shared.records import Change

# The kinds that carry personal data; the store calls this module only for these.
PERSONAL_KINDS = frozenset({"tenant"})


def seal_change(change: Change) -> Change | str:
    """The change as it is stored, personal values sealed; or why it is refused. Called before merge."""
    return change


def shown_fields(kind: str, values: dict[str, Any], hlcs: dict[str, str], viewer: Any) -> dict[str, list]:
    """A stored record's fields in wire form ({name: [value, hlc]}) as ``viewer`` may see them."""
    return {name: [value, hlcs[name]] for name, value in values.items()}

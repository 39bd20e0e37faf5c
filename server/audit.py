"""The audit log: who did what, when, from which address, with the values before and after.

Every admin change (pages and CLI), every view of a full resident ID number and every export is
written here with `record`. Call it in the same transaction as the change it describes, so that a
change and its line commit together or not at all; a read (a view, an export) passes
``commit=True``.

Hazard: a log that holds what it guards. ``before`` and ``after`` carry what an admin sees on the
page, never a password hash, a device token or a full ID number: `record` drops the keys named in
``_SECRET_KEYS`` wherever they appear.

Hazard: a log that can be edited. The table has no route that writes it but this module, and the
migration (0006_admin) refuses UPDATE and DELETE by trigger on both engines.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from flask import has_request_context, request
from flask_login import current_user

from .db import db
from .models import AuditEntry, utcnow

_SECRET_KEYS = frozenset({"password", "password_hash", "token", "token_hash", "id_number"})
MAX_NOTE = 500


def record(action: str, kind: str, target: str | None = None, *, before: Any = None, after: Any = None,
           note: str | None = None, actor: Any = None, commit: bool = False) -> AuditEntry:
    """Add one line to the audit log; the caller commits (or ``commit=True`` for a read that writes nothing else).

    ``action`` is a verb (``create``, ``edit``, ``deactivate``, ``revoke``, ``view_id_numbers``,
    ``export``, a case action …), ``kind`` what it was done to (``user``, ``grid``, ``tenant``,
    ``case`` …) and ``target`` its id, code or user name. ``actor`` is the user who did it: by
    default the page's logged-in user, else ``"cli"`` (a string names an actor without an account).
    """
    who = actor if actor is not None else _page_user()
    if isinstance(who, str) or who is None:
        actor_id, actor_name, role = None, who or "cli", None
    else:
        actor_id, actor_name, role = who.id, who.username, who.role
    entry = AuditEntry(at=utcnow(), actor_id=actor_id, actor=actor_name, role=role, address=_address(),
                       action=action, kind=kind, target=target, before=_clean(before), after=_clean(after),
                       note=(note or None) and note[:MAX_NOTE])
    db.session.add(entry)
    if commit:
        db.session.commit()
    else:
        db.session.flush()
    return entry


def changes(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the keys whose values differ: (before, after), for an edit's audit line."""
    keys = sorted(set(before) | set(after))
    changed = [k for k in keys if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in changed}, {k: after.get(k) for k in changed}


def _page_user():
    if has_request_context() and current_user and current_user.is_authenticated:
        return current_user._get_current_object()
    return None


def _address() -> str | None:
    # The peer's address as the WSGI server saw it; behind a proxy, run the app with werkzeug's
    # ProxyFix (docs/operations.md) so that this is the client's.
    return request.remote_addr if has_request_context() else None


def _clean(value: Any) -> Any:
    """A JSON-safe copy without secrets (see the module's hazard)."""
    if value is None:
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items() if k not in _SECRET_KEYS}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value) if isinstance(value, (set, frozenset)) else value
        return [_clean(v) for v in items]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (str, int, float, bool)):
        return value
    return str(value)

"""Personal data in records: resident ID numbers, sealed at rest and masked for most eyes.

The store calls this module at the only two places where records cross its
edge, and only for PERSONAL_KINDS: `seal_change` before a pushed change is
merged, `shown_fields` when a stored record is served to someone. The pages
and the CSV export read numbers through `shown_id_number`. So nothing else
holds a plaintext number, and nothing else needs to know.

* **Sealed at rest.** ``tenant.id_number`` is stored as
  ``sealed:v1:<base64url>``: AES-SIV (RFC 5297) under GRIDPATROL_ID_KEY, with
  the kind and field as associated data. AES-SIV is deterministic: the same
  number seals to the same text. That is what sync needs. A replayed push must
  merge as ``stale``, and merge breaks a tie of two timestamps by comparing
  values, so sealing must be a function. The price is that equal numbers have
  equal sealed texts, which a reader of the database can see (not what they are).
* **Masked in transit.** A viewer whose role an admin allowed
  (`allowed_roles`, the ``settings`` table; by default no role) is served the
  number; everyone else gets no ``id_number`` field at all but
  ``id_number_masked`` (``4401**********123X``) under the same timestamp. The
  server itself (viewer None) sees numbers. ``id_number_masked`` is the
  server's to write: a push that carries it is refused.
* **Never in logs.** `install_log_masking` replaces every 18-character run
  that looks like an ID number in every log record of the process with its
  masked form: access logs (werkzeug, gunicorn) carry URLs with query strings.

* **A dispute's parties** (``dispute.parties``: names, phones) are sealed the same way, the whole
  list as one value (its canonical JSON), so a replay still merges as ``stale``. They are served in
  full to the roles that mediate (shared/dispute.py ``PARTY_ROLES``: the worker of the grid, who
  pulls only their grids, supervisors and admins) and as ``parties_masked`` (张*, 138****5678) to
  any other role; pages mask them in lists and audit every full view.

Hazard: a lost or changed key. Sealed numbers can only be read with the key
that sealed them; `unseal` fails loudly rather than serve garbage. Keep the
key with the database backups, but not in them. The ``v1`` in the stored form
leaves room for a second key (rotation), which is not built.

Hazard: a tablet that echoes what it pulled. A tablet that pushes a record
back whole would push ``id_number_masked`` and be refused; the tablet must keep
it as a read-only field and never push it.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from typing import Any, Iterable

from flask import current_app, g
from sqlalchemy import select

from shared.idcard import mask_resident_id
from shared.records import Change
from shared.roles import ROLES

from .db import db
from .models import Setting, utcnow

# The kinds that carry personal data; the store calls this module only for these.
PERSONAL_KINDS = frozenset({"tenant", "dispute"})
SEALED_FIELDS = {"tenant": ("id_number",), "dispute": ("parties",)}  # stored sealed; each has a <field>_masked twin
SERVER_ONLY_FIELDS = {"tenant": ("id_number_masked",), "dispute": ("parties_masked",)}
# Sealed fields whose values are not text (a dispute's list of parties): sealed whole, as canonical JSON, so that
# equal lists seal equal (see "Sealed at rest"), and opened back into the list.
_JSON_SEALED = frozenset({"parties"})
PREFIX = "sealed:v1:"
SETTING = "id_number_roles"  # the settings row: the roles that may see ID numbers in full
_AD = {field: [b"gridpatrol", f"{kind}.{field}".encode()] for kind, fields in SEALED_FIELDS.items()
       for field in fields}


class SealError(RuntimeError):
    """A sealed value that cannot be opened: another key, or a damaged value."""


# --- the key ---------------------------------------------------------------------------------

def init_app(app) -> None:
    """Load the ID-number key (start-up fails without one in production) and mask ID numbers in logs."""
    from cryptography.hazmat.primitives.ciphers.aead import AESSIV

    from .config import local_id_key

    raw = app.config.get("GRIDPATROL_ID_KEY")
    if not raw:
        if app.config.get("GRIDPATROL_ENV") == "production":
            raise RuntimeError(
                "GRIDPATROL_ID_KEY is not set: in production resident ID numbers must be sealed with a key from "
                "the configuration (32, 48 or 64 bytes as hex; every server process needs the same one). "
                "Make one with: python -c \"import secrets; print(secrets.token_hex(64))\"")
        raw = local_id_key()
    try:
        key = bytes.fromhex(raw.strip())
    except ValueError:
        raise RuntimeError("GRIDPATROL_ID_KEY must be hex digits (32, 48 or 64 bytes)") from None
    if len(key) not in (32, 48, 64):
        raise RuntimeError(f"GRIDPATROL_ID_KEY must be 32, 48 or 64 bytes as hex, not {len(key)} bytes")
    app.extensions["gridpatrol.id_key"] = AESSIV(key)
    install_log_masking()


def _cipher():
    return current_app.extensions["gridpatrol.id_key"]


def seal(value: str, field: str = "id_number") -> str:
    """The stored form of a plaintext value: deterministic, so equal values seal equal."""
    sealed = _cipher().encrypt(value.encode(), _AD[field])
    return PREFIX + base64.urlsafe_b64encode(sealed).decode().rstrip("=")


def unseal(value: str | None, field: str = "id_number") -> str | None:
    """The plaintext of a stored value; a value stored before sealing existed is returned as it is."""
    from cryptography.exceptions import InvalidTag

    if not isinstance(value, str) or not value.startswith(PREFIX):
        return value
    body = value[len(PREFIX):]
    try:
        return _cipher().decrypt(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)), _AD[field]).decode()
    except (InvalidTag, binascii.Error, ValueError):
        raise SealError(f"a sealed {field} cannot be opened: is GRIDPATROL_ID_KEY the key it was sealed "
                        "with?") from None


# --- who may see the numbers -------------------------------------------------------------------

# Every pull asks it: a Core statement built once, on the session's connection, not an ORM query built each time.
_ALLOWED_ROLES = select(Setting.__table__.c.value).where(Setting.__table__.c.name == SETTING)


def allowed_roles() -> frozenset[str]:
    """The roles that may see ID numbers in full (an admin's setting; none by default). Cached per request."""
    if "gridpatrol_id_roles" not in g:
        value = db.session.connection().execute(_ALLOWED_ROLES).scalar()  # None: never set
        g.gridpatrol_id_roles = frozenset(r for r in value if r in ROLES) if isinstance(value, list) else frozenset()
    return g.gridpatrol_id_roles


def set_allowed_roles(roles: Iterable[str], by: str) -> frozenset[str]:
    """Replace the roles that may see ID numbers in full; commits. ``by`` is a user name or "cli"."""
    chosen = sorted(set(roles))
    unknown = [r for r in chosen if r not in ROLES]
    if unknown:
        raise ValueError(f"unknown role {unknown[0]!r}; roles are {', '.join(ROLES)}")
    row = db.session.get(Setting, SETTING)
    if row is None:
        row = Setting(name=SETTING)
        db.session.add(row)
    row.value, row.updated_at, row.updated_by = chosen, utcnow(), by
    db.session.commit()
    g.pop("gridpatrol_id_roles", None)
    return frozenset(chosen)


def setting_changed() -> tuple[Any, str | None]:
    """When and by whom the setting was last changed; (None, None) when never."""
    row = db.session.get(Setting, SETTING)
    return (row.updated_at, row.updated_by) if row is not None else (None, None)


def may_see_id_numbers(viewer: Any) -> bool:
    """Whether ``viewer`` (a User; None is the server itself) is shown ID numbers in full."""
    return viewer is None or getattr(viewer, "role", None) in allowed_roles()


def shown_id_number(stored: str | None, viewer: Any) -> tuple[str | None, bool]:
    """A stored ID number as ``viewer`` may see it: (text, whether it is the full number)."""
    plain = unseal(stored)
    if plain is None:
        return None, False
    if may_see_id_numbers(viewer):
        return plain, True
    return mask_resident_id(plain), False


# --- the store's two edges -----------------------------------------------------------------------

def seal_change(change: Change) -> Change | str:
    """The change as it is stored, personal values sealed; or why it is refused. Called before merge."""
    for name in SERVER_ONLY_FIELDS.get(change.kind, ()):
        if name in change.fields:
            return f"forbidden: {name} is written only by the server; push {name.removesuffix('_masked')} instead"
    sealed_fields = [name for name in SEALED_FIELDS.get(change.kind, ()) if name in change.fields]
    if not sealed_fields:
        return change
    fields = dict(change.fields)
    for name in sealed_fields:
        value, hlc = fields[name]
        if name in _JSON_SEALED and value is not None:
            fields[name] = (seal(json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")), name),
                            hlc)
        elif isinstance(value, str):
            fields[name] = (seal(value, name), hlc)
    return Change(change.kind, change.id, change.bucket, fields)


def unseal_value(value: Any, field: str) -> Any:
    """A stored sealed value opened: the text, or for a field sealed as JSON (parties) the value it held."""
    if field in _JSON_SEALED:
        if isinstance(value, str) and value.startswith(PREFIX):
            return json.loads(unseal(value, field))
        return value
    return unseal(value, field)


def may_see_parties(viewer: Any) -> bool:
    """Whether ``viewer`` (a User; None: the server) is shown a dispute's parties in full (shared/dispute.py)."""
    from shared.dispute import PARTY_ROLES

    return viewer is None or getattr(viewer, "role", None) in PARTY_ROLES


def full_view(kind: str, viewer: Any) -> bool:
    """Whether ``viewer`` is served the kind's sealed fields opened (a dispute's parties, a tenant's number)."""
    return may_see_parties(viewer) if kind == "dispute" else may_see_id_numbers(viewer)


def _mask(field: str, plain: Any) -> Any:
    if field == "parties":
        from shared.dispute import mask_parties

        return mask_parties(plain)
    return mask_resident_id(plain)


def shown_fields(kind: str, values: dict[str, Any], hlcs: dict[str, str], viewer: Any) -> dict[str, list]:
    """A stored record's fields in wire form ({name: [value, hlc]}) as ``viewer`` may see them."""
    shown = {name: [value, hlcs[name]] for name, value in values.items()}
    full = full_view(kind, viewer)
    for name in SEALED_FIELDS.get(kind, ()):
        if name not in shown:
            continue
        value, hlc = shown.pop(name)
        plain = unseal_value(value, name)
        if full:
            shown[name] = [plain, hlc]
        else:
            shown[name + "_masked"] = [_mask(name, plain), hlc]
    return shown


# --- logs ----------------------------------------------------------------------------------------

# Eighteen characters as GB 11643 writes them (17 digits and a digit or X), not inside a longer run of digits.
_ID_LIKE = re.compile(r"(?<![0-9])[1-9][0-9]{16}[0-9Xx](?![0-9])")


def mask_text(text: str) -> str:
    """The text with everything that looks like an ID number masked (4401**********123X)."""
    return _ID_LIKE.sub(lambda m: mask_resident_id(m.group(0)), text)


class MaskIdNumbers(logging.Filter):
    """Rewrites a log record so that no ID number survives in its message or its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the handler to report
            return True
        if _ID_LIKE.search(message):
            record.msg, record.args = mask_text(message), None
        if record.exc_info and not record.exc_text:
            text = logging.Formatter().formatException(record.exc_info)
            if _ID_LIKE.search(text):
                record.exc_text = mask_text(text)  # formatters use exc_text when it is set
        if record.stack_info and _ID_LIKE.search(record.stack_info):
            record.stack_info = mask_text(record.stack_info)
        return True


_FILTER = MaskIdNumbers()


def install_log_masking() -> None:
    """Mask ID numbers in every log record this process makes, once.

    A filter on a logger sees only records logged to that very logger, not those propagated from its
    children; a filter on handlers misses handlers added later (gunicorn's, pytest's). So the filter runs
    where every record is made: the log record factory.
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "masks_id_numbers", False):
        return

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _FILTER.filter(record)
        return record

    factory.masks_id_numbers = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)

"""Users, grid assignments and devices: who may log in, and with which token.

A device token is shown once, at log-in, and only its SHA-256 is stored, so a
copy of the database does not let anyone sync as a worker. Tokens do not
expire while a device is in use (a worker may be offline for days); an admin
revokes a lost tablet instead.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, event, select
from sqlalchemy.orm import Session, joinedload
from werkzeug.security import check_password_hash, generate_password_hash

from shared.roles import ROLES

from .db import db
from .errors import ApiError
from .models import Device, DeviceCode, GridAssignment, User, UserGrid, utcnow

MIN_PASSWORD_LENGTH = 10
# Hashed once per process: a log-in with an unknown user name checks the password against it, so that
# it takes as long as one with a known name (the time does not tell which names exist).
_DUMMY_HASH: list[str] = []


class AccountError(ValueError):
    """A user or device request that cannot be carried out."""


def hash_token(token: str) -> str:
    """The stored form of a device token."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(username: str, password: str, *, name: str | None = None, role: str = "worker",
                grids: list[str] = (), unit: str | None = None) -> User:
    """Add a user; the caller commits."""
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if role == "unit" and not unit:
        raise AccountError("a unit user needs the code of their unit")
    if db.session.scalar(select(User).where(User.username == username)):
        raise AccountError(f"user {username!r} already exists")
    user = User(id=str(uuid.uuid4()), username=username, name=name or username, role=role, unit=unit,
                password_hash=generate_password_hash(password))
    db.session.add(user)
    assign_grids(user, list(grids))
    return user


def password_problem(username: str, password: str) -> str | None:
    """Why a new password is refused (the rules for new passwords), or None when it is fine."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"a password needs at least {MIN_PASSWORD_LENGTH} characters"
    if password.strip().casefold() == username.strip().casefold() or username.casefold() in password.casefold():
        return "a password must not contain the user name"
    return None


def check_new_password(username: str, password: str) -> None:
    """Raise AccountError when a new password breaks the rules (pages and CLI; the demo's are its own)."""
    problem = password_problem(username, password)
    if problem:
        raise AccountError(problem)


def assign_grids(user: User, grids: list[str], by: str | None = None) -> tuple[list[str], list[str]]:
    """Replace a user's grids and keep the history; the caller commits. Returns (added, removed).

    A new grid is pulled from zero by their devices at their next sync; what a tablet holds of a
    grid taken away stays on it, and its unsynced captures are still pushed (docs/field-app.md).
    """
    wanted = list(dict.fromkeys(grids))
    held = set(user.grid_codes)
    added = [code for code in wanted if code not in held]
    removed = sorted(held - set(wanted))
    now = utcnow()
    if removed and user.id is not None:
        open_rows = db.session.scalars(select(GridAssignment).where(
            GridAssignment.user_id == user.id, GridAssignment.grid.in_(removed), GridAssignment.ended_at.is_(None)))
        for row in open_rows:
            row.ended_at, row.ended_by = now, by
    for code in added:
        db.session.add(GridAssignment(user=user, grid=code, started_at=now, started_by=by))
    user.grids = [g for g in user.grids if g.grid in wanted] + [UserGrid(grid=code) for code in added]
    return added, removed


def grid_history(user_id: str | None = None, grid: str | None = None) -> list[GridAssignment]:
    """Who held which grid when, newest first; for one user, one grid, or all."""
    query = select(GridAssignment).options(joinedload(GridAssignment.user))
    if user_id:
        query = query.where(GridAssignment.user_id == user_id)
    if grid:
        query = query.where(GridAssignment.grid == grid)
    return list(db.session.scalars(query.order_by(GridAssignment.started_at.desc(), GridAssignment.id.desc())))


def set_password(user: User, password: str) -> None:
    """Change a user's password and end their page sessions; the caller commits."""
    user.password_hash = generate_password_hash(password)
    end_sessions(user)


def end_sessions(user: User) -> None:
    """End every page session of the user, on every server process at once; the caller commits."""
    user.session_version = (user.session_version or 0) + 1


def deactivate(user: User) -> None:
    """Stop the user from logging in, syncing and using the pages (history keeps their name); the caller commits."""
    user.active = False
    end_sessions(user)


def authenticate(username: str, password: str) -> User | None:
    """The active user with these credentials, or None."""
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        check_password_hash(_dummy_hash(), password)  # as long as a known name takes
        return None
    if not check_password_hash(user.password_hash, password) or not user.active:
        return None
    return user


def _dummy_hash() -> str:
    if not _DUMMY_HASH:
        _DUMMY_HASH.append(generate_password_hash(secrets.token_urlsafe(16)))
    return _DUMMY_HASH[0]


def register_device(user: User, device_name: str, node: str) -> tuple[Device, str]:
    """A new device for the user and its token (returned once, stored hashed). Commits."""
    token = secrets.token_urlsafe(32)
    device = Device(id=str(uuid.uuid4()), user=user, name=device_name, node=node, token_hash=hash_token(token),
                    last_seen_at=utcnow())
    db.session.add(device)
    db.session.commit()
    return device, token


# One query for the device, its user and the user's grids: every sync request needs all three. Built
# once: making the statement anew for each request (its clauses, its cache key) cost more CPU than
# running it (a third of an empty pull's, issue 19); SQLAlchemy caches its compiled form by that key.
_DEVICE_BY_TOKEN = (select(Device).where(Device.token_hash == bindparam("token_hash"))
                    .options(joinedload(Device.user).joinedload(User.grids)))


def device_for_token(token: str) -> Device | None:
    """The unrevoked device holding this token, with its active user, or None."""
    device = db.session.scalars(_DEVICE_BY_TOKEN, {"token_hash": hash_token(token)}).unique().first()
    if device is None:
        return None
    _check_holder(device.revoked_at, device.user.active)
    return device


def _check_holder(revoked_at: datetime | None, active: bool) -> None:
    """Refuse a token that stopped on purpose: its device revoked, or its user deactivated."""
    # A clear reason for the two tokens that stopped on purpose; the code stays the contract's 401
    # "unauthorized" (the tablet stops sync and asks for a new log-in), details.reason says why.
    if revoked_at is not None:
        raise ApiError(401, "this device was revoked by an administrator: ask them, then log in again",
                       code="unauthorized", details={"reason": "device_revoked"})
    if not active:
        raise ApiError(401, "this user was deactivated by an administrator", code="unauthorized",
                       details={"reason": "user_deactivated"})


# --- the caller of push and pull, without the ORM ---------------------------------------------------

@dataclass(frozen=True, slots=True)
class CallerUser:
    """The user behind a device token, as push and pull use it: who they are, their role and grids.

    A snapshot read with the device (`caller_for_token`), not an ORM object: nothing writes to it.
    It answers what `User` answers to the sync path (apply.writer_of, the buckets a user pulls,
    privacy's role checks, an audit line's actor).
    """

    id: str
    username: str
    name: str
    role: str
    unit: str | None
    active: bool
    grid_codes: list[str]


@dataclass(slots=True)
class CallerDevice:
    """The device of a token as push and pull use it; what they note on it is written at the next commit.

    `set_device` keeps each value set here in ``changed``, and `_write_devices` writes them with one
    UPDATE just before the session commits (as the ORM flushes a changed Device), in the same
    transaction; a rollback drops them with the rest.
    """

    id: str
    user_id: str
    name: str
    node: str
    last_seen_at: datetime | None
    clock_skew_ms: int | None
    app_version: str | None
    refused_count: int | None
    last_refusal: str | None
    last_refusal_at: datetime | None
    changed: dict[str, Any] = field(default_factory=dict)


_devices, _users, _user_grids = Device.__table__, User.__table__, UserGrid.__table__
# One statement for the device, its user and the user's grids (a row per grid), in SQLAlchemy Core: the
# columns come back typed (datetimes on SQLite too) without the ORM's loading of three kinds of objects,
# which cost several times the query (issue 19). Built once, so its compiled form is cached.
_CALLER_BY_TOKEN = (
    select(_devices.c.id, _devices.c.name, _devices.c.node, _devices.c.revoked_at, _devices.c.last_seen_at,
           _devices.c.clock_skew_ms, _devices.c.app_version, _devices.c.refused_count, _devices.c.last_refusal,
           _devices.c.last_refusal_at, _users.c.id, _users.c.username, _users.c.name, _users.c.role, _users.c.unit,
           _users.c.active, _user_grids.c.grid)
    .select_from(_devices.join(_users, _users.c.id == _devices.c.user_id)
                 .outerjoin(_user_grids, _user_grids.c.user_id == _users.c.id))
    .where(_devices.c.token_hash == bindparam("token_hash")))


def caller_for_token(token: str) -> tuple[CallerDevice, CallerUser] | None:
    """The unrevoked device holding this token and its active user, as snapshots, or None.

    The same checks as `device_for_token`, the same answers; for the calls that only read the user
    (push, pull), which `server.api.caller_required` serves.
    """
    rows = db.session.connection().execute(_CALLER_BY_TOKEN, {"token_hash": hash_token(token)}).all()
    if not rows:
        return None
    (device_id, name, node, revoked_at, last_seen_at, skew, app_version, refused, last_refusal, last_refusal_at,
     user_id, username, user_name, role, unit, active, _grid) = rows[0]
    _check_holder(revoked_at, active)
    grids = sorted(row[-1] for row in rows if row[-1] is not None)
    return (CallerDevice(device_id, user_id, name, node, last_seen_at, skew, app_version, refused, last_refusal,
                         last_refusal_at),
            CallerUser(user_id, username, user_name, role, unit, bool(active), grids))


_PENDING = "gridpatrol.caller_devices"  # Session.info: the CallerDevices with values to write


def set_device(device: Device | CallerDevice, **values: Any) -> None:
    """Set columns of a device: on a Device as any ORM write; on a CallerDevice, written at the next commit."""
    for name, value in values.items():
        setattr(device, name, value)
    if isinstance(device, CallerDevice):
        device.changed.update(values)
        pending = db.session.info.setdefault(_PENDING, [])
        if not any(d is device for d in pending):
            pending.append(device)


_DEVICE_UPDATES: dict[frozenset[str], Any] = {}  # the columns set -> their UPDATE, built once


def _device_update(columns: frozenset[str]):
    """``UPDATE devices SET <columns> WHERE id = :device_id``, built once per set of columns (a handful)."""
    statement = _DEVICE_UPDATES.get(columns)
    if statement is None:
        statement = (_devices.update().where(_devices.c.id == bindparam("device_id"))
                     .values({name: bindparam(name) for name in sorted(columns)}))
        _DEVICE_UPDATES[columns] = statement
    return statement


@event.listens_for(Session, "before_commit")
def _write_devices(session: Session) -> None:
    """Write what was set on CallerDevices, in the transaction about to commit (Core, as the ORM's flush would)."""
    pending = session.info.pop(_PENDING, None)
    for device in pending or ():
        if device.changed:
            session.connection().execute(_device_update(frozenset(device.changed)),
                                         {**device.changed, "device_id": device.id})
            device.changed = {}


@event.listens_for(Session, "after_rollback")
def _drop_device_writes(session: Session) -> None:
    """A rollback drops what was set on CallerDevices, as it drops an ORM object's changes."""
    for device in session.info.pop(_PENDING, None) or ():
        device.changed = {}


def touch(device: Device | CallerDevice, every_seconds: int = 60) -> bool:
    """Note that the device was seen; True when that needs a write (at most once a minute)."""
    now = utcnow()
    seen = device.last_seen_at
    if seen is not None and seen.tzinfo is None:  # SQLite hands back naive UTC
        seen = seen.replace(tzinfo=now.tzinfo)
    if seen is not None and (now - seen).total_seconds() < every_seconds:
        return False
    set_device(device, last_seen_at=now)
    return True


def revoke_device(device: Device) -> None:
    """Stop a device's token from working; the caller commits."""
    device.revoked_at = utcnow()


# --- provisioning a tablet with a one-time code --------------------------------------------------

# Letters and digits that cannot be mistaken for one another when read off a screen or said on the
# phone (no 0/O, 1/I/L, 5/S, 2/Z, 8/B): 25 symbols, so a code of 10 has 25**10 ≈ 9.5e13 values.
CODE_ALPHABET = "34679ACDEFGHJKMNPQRTUVWXY"
CODE_LENGTH = 10
DEVICE_CODE_MINUTES = 10
_NOT_CODE = re.compile(r"[\s-]+")


def normalise_code(text: str) -> str:
    """A typed code as it is stored: capitals, without blanks and dashes (``ab3d-ef7h`` = ``AB3DEF7H``)."""
    return _NOT_CODE.sub("", text or "").upper()


def format_code(code: str) -> str:
    """A code as shown to people: groups of five (``K7HQ4-MXT9C``)."""
    return "-".join(code[i:i + 5] for i in range(0, len(code), 5))


def issue_device_code(user: User, by: str | None, minutes: int = DEVICE_CODE_MINUTES) -> tuple[DeviceCode, str]:
    """A one-time code that provisions one tablet for the user, valid for ``minutes``; the caller commits.

    The code is returned once (formatted for people) and only its hash is stored. Codes of the
    user not yet used stay valid until they expire: an admin provisioning two tablets gives two codes.
    """
    if not user.active:
        raise AccountError(f"user {user.username!r} is deactivated")
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    row = DeviceCode(id=str(uuid.uuid4()), user=user, code_hash=hash_token(code), created_by=by,
                     created_at=utcnow(), expires_at=utcnow() + timedelta(minutes=minutes))
    db.session.add(row)
    return row, format_code(code)


def claim_device_code(code: str, device_name: str, node: str) -> tuple[User, Device, str] | None:
    """Register a device with a one-time code: (user, device, token), or None when the code is wrong,
    used, expired or its user deactivated. Commits.

    Taken once: the code is marked used by an UPDATE that matches only while it is unused, so two
    tablets sending one code at once cannot both get a token.
    """
    normal = normalise_code(code)
    if not normal or len(normal) > 64:
        return None
    now = utcnow()
    row = db.session.scalar(select(DeviceCode).where(DeviceCode.code_hash == hash_token(normal))
                            .options(joinedload(DeviceCode.user)))
    if row is None or row.used_at is not None or not row.user.active:
        return None
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=now.tzinfo)
    if expires <= now:
        return None
    device_id = str(uuid.uuid4())
    taken = db.session.execute(
        DeviceCode.__table__.update()
        .where(DeviceCode.id == row.id, DeviceCode.used_at.is_(None))
        .values(used_at=now, device_id=device_id)).rowcount
    if taken != 1:
        db.session.rollback()
        return None
    token = secrets.token_urlsafe(32)
    device = Device(id=device_id, user=row.user, name=device_name, node=node, token_hash=hash_token(token),
                    last_seen_at=now)
    db.session.add(device)
    db.session.commit()
    return row.user, device, token


_APP_VERSION = re.compile(r"GridPatrol-mobile/([0-9A-Za-z.+_-]{1,40})")


def note_app_version(device: Device | CallerDevice, user_agent: str | None) -> bool:
    """Keep the app version the device's User-Agent names (GridPatrol-mobile/0.1), when it changed; whether it did."""
    found = _APP_VERSION.search(user_agent or "")
    version = found.group(1) if found else None
    if version and device.app_version != version:
        set_device(device, app_version=version)
        return True
    return False


def note_refusals(device: Device | CallerDevice, reasons: list[str]) -> None:
    """Count the device's refused changes and keep the last reason; the caller commits."""
    if reasons:
        set_device(device, refused_count=(device.refused_count or 0) + len(reasons),
                   last_refusal=reasons[-1][:500], last_refusal_at=utcnow())

"""Users, grid assignments and devices: who may log in, and with which token.

A device token is shown once, at log-in, and only its SHA-256 is stored, so a
copy of the database does not let anyone sync as a worker. Tokens do not
expire while a device is in use (a worker may be offline for days); an admin
revokes a lost tablet instead.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid

from sqlalchemy import select
from sqlalchemy.orm import joinedload
from werkzeug.security import check_password_hash, generate_password_hash

from shared.roles import ROLES

from .db import db
from .models import Device, User, UserGrid, utcnow


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
    user.grids = [UserGrid(grid=code) for code in dict.fromkeys(grids)]
    db.session.add(user)
    return user


def assign_grids(user: User, grids: list[str]) -> None:
    """Replace a user's grids; the caller commits. A new grid is pulled from zero by their devices."""
    user.grids = [UserGrid(grid=code) for code in dict.fromkeys(grids)]


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
    if user is None or not user.active or not check_password_hash(user.password_hash, password):
        return None
    return user


def register_device(user: User, device_name: str, node: str) -> tuple[Device, str]:
    """A new device for the user and its token (returned once, stored hashed). Commits."""
    token = secrets.token_urlsafe(32)
    device = Device(id=str(uuid.uuid4()), user=user, name=device_name, node=node, token_hash=hash_token(token),
                    last_seen_at=utcnow())
    db.session.add(device)
    db.session.commit()
    return device, token


def device_for_token(token: str) -> Device | None:
    """The unrevoked device holding this token, with its active user, or None."""
    # One query for the device, its user and the user's grids: every sync request needs all three.
    device = db.session.scalars(
        select(Device).where(Device.token_hash == hash_token(token))
        .options(joinedload(Device.user).joinedload(User.grids))
    ).unique().first()
    if device is None or device.revoked_at is not None or not device.user.active:
        return None
    return device


def touch(device: Device, every_seconds: int = 60) -> bool:
    """Note that the device was seen; True when that needs a write (at most once a minute)."""
    now = utcnow()
    seen = device.last_seen_at
    if seen is not None and seen.tzinfo is None:  # SQLite hands back naive UTC
        seen = seen.replace(tzinfo=now.tzinfo)
    if seen is not None and (now - seen).total_seconds() < every_seconds:
        return False
    device.last_seen_at = now
    return True


def revoke_device(device: Device) -> None:
    """Stop a device's token from working; the caller commits."""
    device.revoked_at = utcnow()

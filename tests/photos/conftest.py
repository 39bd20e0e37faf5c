"""Fixtures of the photo tests: a small photo limit, and device tokens of the demo's people."""

from __future__ import annotations

import pytest

from .helpers import LIMIT


@pytest.fixture
def app_config(app_config):
    """The root settings, with a small photo limit (GRIDPATROL_MAX_PHOTO_BYTES), so 413 is cheap to reach."""
    return {**app_config, "GRIDPATROL_MAX_PHOTO_BYTES": LIMIT}


@pytest.fixture
def tokens(client, demo):
    """Device tokens of the demo's people, by user name, registered directly (a log-in hashes a password:
    slow, and tested elsewhere)."""
    from sqlalchemy import select

    from server import accounts
    from server.db import db
    from server.models import User

    def token(username: str) -> str:
        user = db.session.scalar(select(User).where(User.username == username))
        return accounts.register_device(user, f"{username}'s tablet", "ab" * 8)[1]

    return {name: token(name) for name in ("worker1", "worker2", "worker3", "supervisor1", "unit1", "admin")}

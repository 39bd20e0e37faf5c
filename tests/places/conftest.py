"""Helpers for the key-place tests: the page fixtures of tests/pages with the demo's places loaded."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from server.db import db
from server.models import Record, User

from ..pages.conftest import FreshContextClient, csrf_token, log_in, pages, user  # noqa: F401 (fixtures)


@pytest.fixture
def demo(demo):
    """The demo of the page tests (every password 'demo-pass') with its place types, places and checks."""
    from server.places.demo import load_places

    users = {u.username: u for u in db.session.scalars(select(User))}
    load_places(users, demo.ref_id)
    return demo


def place_by_name(name: str) -> Record:
    """The stored place with this name."""
    db.session.rollback()
    rows = db.session.scalars(select(Record).where(Record.kind == "place")).all()
    return next(r for r in rows if r.field_values.get("name") == name)

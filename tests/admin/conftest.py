"""Helpers for the admin tests: the page fixtures of tests/pages, the audit log read fresh."""

from __future__ import annotations

from sqlalchemy import func, select

from server.db import db
from server.models import AuditEntry

from ..pages.conftest import FreshContextClient, csrf_token, log_in, pages, user  # noqa: F401 (fixtures)


def audit_lines(**where) -> list[AuditEntry]:
    """The audit log as committed, oldest first, optionally filtered by column values."""
    db.session.rollback()
    query = select(AuditEntry).order_by(AuditEntry.id)
    for name, value in where.items():
        query = query.where(getattr(AuditEntry, name) == value)
    return list(db.session.scalars(query))


def audit_count() -> int:
    """How many lines the audit log holds."""
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(AuditEntry))

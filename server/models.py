"""The central case store's tables.

All records, of every kind, live in one table: their plain values in
``field_values``, the HLC of each field's write in ``field_hlcs``, and their
place in the pull feed in ``position``. The server knows kinds only through
shared/records.py, so a new kind needs no migration.

The feed position is the heart of change-only pull: a record's position is
raised every time it changes, and a pull asks for the positions above its
cursor in one bucket. Within a bucket, positions become visible in the order
they were handed out (server/sync/feed.py): on PostgreSQL they come from the
sequence ``feed_position_seq`` under a lock per bucket; on SQLite `feed` holds
the last position handed out and its single row is the writers' lock.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer, LargeBinary, SmallInteger,
                        String, Text)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .db import Json, db


def utcnow() -> datetime:
    """The server's wall clock, timezone-aware."""
    return datetime.now(timezone.utc)


class Record(db.Model):
    """One record of any kind, with per-field values and timestamps."""

    __tablename__ = "records"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    bucket: Mapped[str] = mapped_column(String(80))
    field_values: Mapped[dict] = mapped_column(Json)
    field_hlcs: Mapped[dict] = mapped_column(Json)
    position: Mapped[int] = mapped_column(BigInteger, unique=True)
    # The device whose push created the record; None for a record the server wrote (pages, CLI, demo).
    device_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    # The record this one belongs to (shared/records.py, Kind.parent: a case action's event, a check's or
    # a tenant's house), so that one case or one house is read without scanning its grid.
    parent_id: Mapped[str | None] = mapped_column(String(36), nullable=True)

    __table_args__ = (
        Index("ix_records_bucket_position", "bucket", "position"),
        Index("ix_records_kind", "kind"),
        Index("ix_records_parent", "parent_id"),
    )

    def state(self) -> dict:
        """The record as merge sees it: {field: (value, hlc)}."""
        return {name: (value, self.field_hlcs[name]) for name, value in self.field_values.items()}


class Feed(db.Model):
    """The last feed position handed out: one row, id 1 (SQLite; on PostgreSQL frozen since 0007_feed_sequence)."""

    __tablename__ = "feed"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger, default=0)


class User(db.Model):
    """A person who logs in: a grid worker, a supervisor, a unit's user or an admin."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    unit: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the unit code of a unit user
    password_hash: Mapped[str] = mapped_column(String(256))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Raised to end every page session of the user at once (log-out, deactivation, a new password).
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    grids: Mapped[list["UserGrid"]] = relationship(back_populates="user", cascade="all, delete-orphan")
    devices: Mapped[list["Device"]] = relationship(back_populates="user", cascade="all, delete-orphan")

    # Flask-Login's user interface (the pages' sessions), without a schema change.
    is_anonymous = False

    @property
    def is_authenticated(self) -> bool:
        """Flask-Login: a loaded user is a logged-in one."""
        return True

    @property
    def is_active(self) -> bool:
        """Flask-Login: a deactivated user's page session ends at their next request."""
        return bool(self.active)

    def get_id(self) -> str:
        """Flask-Login: what the session keeps, the user's id and session version (server/web/auth.py)."""
        return f"{self.id}:{self.session_version}"

    @property
    def grid_codes(self) -> list[str]:
        """The codes of the grids assigned to this user, sorted."""
        return sorted(g.grid for g in self.grids)


class UserGrid(db.Model):
    """A grid assigned to a user."""

    __tablename__ = "user_grids"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    grid: Mapped[str] = mapped_column(String(64), primary_key=True)

    user: Mapped[User] = relationship(back_populates="grids")


class Device(db.Model):
    """A tablet a user logged in on; it holds a token whose hash is stored here."""

    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    node: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # The device clock minus the server clock at its last push (ms); visible to admins.
    clock_skew_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # The app's version from its User-Agent (GridPatrol-mobile/0.1), as last seen.
    app_version: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # Changes of this device the server refused, counted, and the last one's reason and time.
    refused_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_refusal: Mapped[str | None] = mapped_column(String(500), nullable=True)
    last_refusal_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    user: Mapped[User] = relationship(back_populates="devices")


class DeviceCode(db.Model):
    """A one-time code an admin gives to provision a tablet for a user (server/accounts.py, issue_device_code).

    Only the code's SHA-256 is kept, as for device tokens. It works once, until ``expires_at``.
    """

    __tablename__ = "device_codes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(80), nullable=True)  # a user name, or "cli"
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    device_id: Mapped[str | None] = mapped_column(String(36), nullable=True)

    user: Mapped[User] = relationship()


class Setting(db.Model):
    """A system setting an admin changes at run time (pages or CLI), by name; e.g. who sees ID numbers."""

    __tablename__ = "settings"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[object] = mapped_column(Json)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(80), nullable=True)  # a user name, or "cli"


class PhotoUpload(db.Model):
    """A user who sent the bytes of a photo (server/photos/access.py: who may attach it)."""

    __tablename__ = "photo_uploads"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    uploaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CaseRow(db.Model):
    """One case as the pages find it: a cache of `shared.case.fold_case` over its event and actions.

    Written by server/sync/casebook.py in the transaction that writes the records it folds, and
    rebuilt from the records by ``flask cases rebuild``; never a source of truth. Times are Unix
    ms (UTC). Overdue is not here: it depends on the clock, so it is asked at read time.
    """

    __tablename__ = "cases"

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_number: Mapped[str | None] = mapped_column(String(32), unique=True, nullable=True)
    bucket: Mapped[str] = mapped_column(String(80))
    grid: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(64))
    reporter: Mapped[str | None] = mapped_column(String(36), nullable=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    # open: not closed and not deleted, the queue's usual filter, first in its index.
    open: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(16))
    resolution: Mapped[str | None] = mapped_column(String(16), nullable=True)
    unit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    micro: Mapped[bool] = mapped_column(Boolean, default=False)
    reported_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    deadline_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # The deadline, or a time after every deadline when there is none: the queue's order, in one index.
    due_sort: Mapped[int] = mapped_column(BigInteger)
    dispatched_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # the first dispatch
    rectified_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # the last rectification
    closed_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    failures: Mapped[int] = mapped_column(SmallInteger, default=0)  # applied failed verifications
    supervised: Mapped[bool] = mapped_column(Boolean, default=False)
    assessment: Mapped[bool] = mapped_column(Boolean, default=False)  # counts in assessment_unit's assessment
    assessment_unit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    extensions: Mapped[int] = mapped_column(SmallInteger, default=0)
    extension_asked_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    sent_back: Mapped[int] = mapped_column(SmallInteger, default=0)
    duplicate_of: Mapped[str | None] = mapped_column(String(36), nullable=True)
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    # What a keyword search reads: the case number, the description and the address, in one text.
    search: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[int] = mapped_column(BigInteger)  # the feed position of the last record folded

    # Every index here is written by every push that brings a new event (migration 0014 keeps the ones
    # the pages read by, and leaves a new event out of those it need not be in).
    __table_args__ = (
        Index("ix_cases_queue", "open", urgent.desc(), "due_sort", "reported_ms", "event_id"),
        Index("ix_cases_status_queue", "status", urgent.desc(), "due_sort", "reported_ms", "event_id"),
        # Only dispatched cases have a unit: a new event is not in it (migration 0014).
        Index("ix_cases_unit_status", "unit", "status", postgresql_where=unit.is_not(None),
              sqlite_where=unit.is_not(None)),
        # With the location: nearby_cases' box is a range of it (migration 0008).
        Index("ix_cases_category", "category", "open", "lat", "lon"),
        Index("ix_cases_reported", "reported_ms"),
        # Keyword search: a trigram index outside the write path, on both engines (server/cases/search.py).
        # The queue's counts: case_counts (below); ix_cases_grid_status went in migration 0014.
    )


class CaseCount(db.Model):
    """How many live (not deleted) cases each grid holds in each status: the queue's counts, kept by
    server/sync/casebook.py with the cases rows (migration 0013)."""

    __tablename__ = "case_counts"

    grid: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)


class CaseNumbers(db.Model):
    """The last case number handed out on each day, on SQLite (server/sync/casebook.py).

    PostgreSQL numbers from the sequence ``case_number_seq`` and a base per day in ``case_number_days``
    (migration 0015), neither of them a model: only casebook.py reads and writes them.
    """

    __tablename__ = "case_numbers"

    day: Mapped[str] = mapped_column(String(8), primary_key=True)  # YYYYMMDD in the district's time
    last: Mapped[int] = mapped_column(Integer)

class TenantIndex(db.Model):
    """What a tenant list is searched by, as keyed hashes: never a name or a number (server/houses/index.py).

    One row per tenant record (a deleted tenant keeps its row, without hashes), and one more row,
    ``tenant_id`` ``"*"``, whose ``position`` is the feed position up to which every tenant is indexed.
    """

    __tablename__ = "tenant_index"

    tenant_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    house_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    position: Mapped[int] = mapped_column(BigInteger)  # the feed position of the record these hashes are of
    name_hash: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    id_hash: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)  # the whole number
    id_tail_hash: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)  # its last four
    id_ends_hash: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)  # first and last four


class AuditEntry(db.Model):
    """One line of the audit log: who did what, when, from where; append-only (server/audit.py).

    Hazard: an audit log that can be edited proves nothing. No route, CLI command or role changes a
    line, and the migration (0006_admin) puts a trigger on the table that refuses UPDATE and DELETE
    on both engines, so a mistaken or malicious statement fails instead of rewriting history.
    """

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    actor_id: Mapped[str | None] = mapped_column(String(36), nullable=True)  # None: the CLI or the server
    actor: Mapped[str] = mapped_column(String(80))  # the user name then, or "cli"
    role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    address: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the client's IP address
    action: Mapped[str] = mapped_column(String(32), index=True)  # create, edit, deactivate, view_id_numbers …
    kind: Mapped[str] = mapped_column(String(32), index=True)  # what it was done to: user, grid, tenant …
    target: Mapped[str | None] = mapped_column(String(200), nullable=True)  # its id, code or user name
    before: Mapped[object | None] = mapped_column(Json, nullable=True)
    after: Mapped[object | None] = mapped_column(Json, nullable=True)
    note: Mapped[str | None] = mapped_column(String(500), nullable=True)


class GridAssignment(db.Model):
    """Who held which grid when: one row per stretch of a user holding a grid (server/accounts.py).

    ``user_grids`` says what a user holds now (sync reads it); this table keeps the history, so a
    row is opened when a grid is assigned and closed (``ended_at``) when it is taken away.
    """

    __tablename__ = "grid_assignments"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    grid: Mapped[str] = mapped_column(String(64), index=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    started_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
    ended_by: Mapped[str | None] = mapped_column(String(80), nullable=True)

    user: Mapped[User] = relationship()


class PatrolCoverage(db.Model):
    """A grid-day's coverage, as last computed from its tracks (server/patrols/coverage.py): a cache, never a source.

    ``bits`` holds one bit per cell of the grid's boundary (server/patrols/geometry.py), set where a track
    passed; a week's coverage is the union of its days'. ``signature`` says what the row was computed from
    (the grid record's feed position, and the count and last feed position of the day's track records):
    a reader whose signature differs computes the day again and writes the row over.
    """

    __tablename__ = "patrol_coverage"

    grid: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD in the district's time
    cells: Mapped[int] = mapped_column(Integer)
    covered: Mapped[int] = mapped_column(Integer)
    bits: Mapped[bytes] = mapped_column(LargeBinary)
    signature: Mapped[str] = mapped_column(String(200))
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
class DisputeRow(db.Model):
    """One dispute as the pages find it: a cache of `shared.dispute.fold_dispute` over its record and steps.

    Written by server/disputes/book.py in the transaction that writes the records it folds (and when a
    dispute kind's hours change), rebuilt by `book.rebuild`; never a source of truth, and it holds no
    party. Times are Unix ms (UTC). Overdue depends on the clock: asked at read time, as
    ``taken_up_ms IS NULL AND deadline_ms < now``.
    """

    __tablename__ = "disputes"

    dispute_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    bucket: Mapped[str] = mapped_column(String(80))
    grid: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(64))
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    reported_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    deadline_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    taken_up_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    mediated: Mapped[bool] = mapped_column(Boolean, default=False)
    sessions: Mapped[int] = mapped_column(SmallInteger, default=0)
    follow_ups: Mapped[int] = mapped_column(SmallInteger, default=0)
    position: Mapped[int] = mapped_column(BigInteger)  # the feed position of the last record folded

    __table_args__ = (
        Index("ix_disputes_grid_status", "grid", "status", "deleted"),
        Index("ix_disputes_reported", "reported_ms"),
        Index("ix_disputes_kind", "kind"),
    )

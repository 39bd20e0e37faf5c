"""cases: the store keeps its cases (a cache of the fold), case numbers, and each record's parent

Revision ID: 0004_cases
Revises: 0003_authorship
Create Date: 2026-12-06 04:40:00.000000

Records already stored get their parent (a case action's event, a check's or a tenant's house).
Events already stored get a case number, in the order they reached the server, on the day their
first write was stamped; the number is written into the event record as a write of the server's
own, at a new feed position, so tablets pull it. Then the cases table is built from the records by
the same code as ``flask cases rebuild`` (server/sync/casebook.py).
"""
import json
from datetime import datetime

from alembic import op
from flask import current_app
import sqlalchemy as sa

from server.clock import server_clock
from server.config import parse_offset
from server.sync import casebook
from shared.hlc import HLC, HLCError

# revision identifiers, used by Alembic.
revision = '0004_cases'
down_revision = '0003_authorship'
branch_labels = None
depends_on = None

_PARENTS = {"case_action": "event", "house_check": "house", "tenant": "house"}  # shared/records.py, Kind.parent


def upgrade():
    with op.batch_alter_table('records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('parent_id', sa.String(length=36), nullable=True))
        batch_op.create_index('ix_records_parent', ['parent_id'], unique=False)
    op.create_table('cases',
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('case_number', sa.String(length=32), nullable=True),
    sa.Column('bucket', sa.String(length=80), nullable=False),
    sa.Column('grid', sa.String(length=64), nullable=False),
    sa.Column('category', sa.String(length=64), nullable=False),
    sa.Column('reporter', sa.String(length=36), nullable=True),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('open', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('resolution', sa.String(length=16), nullable=True),
    sa.Column('unit', sa.String(length=64), nullable=True),
    sa.Column('urgent', sa.Boolean(), nullable=False),
    sa.Column('micro', sa.Boolean(), nullable=False),
    sa.Column('reported_ms', sa.BigInteger(), nullable=True),
    sa.Column('deadline_ms', sa.BigInteger(), nullable=True),
    sa.Column('due_sort', sa.BigInteger(), nullable=False),
    sa.Column('dispatched_ms', sa.BigInteger(), nullable=True),
    sa.Column('rectified_ms', sa.BigInteger(), nullable=True),
    sa.Column('closed_ms', sa.BigInteger(), nullable=True),
    sa.Column('failures', sa.SmallInteger(), nullable=False),
    sa.Column('supervised', sa.Boolean(), nullable=False),
    sa.Column('assessment', sa.Boolean(), nullable=False),
    sa.Column('assessment_unit', sa.String(length=64), nullable=True),
    sa.Column('extensions', sa.SmallInteger(), nullable=False),
    sa.Column('extension_asked_ms', sa.BigInteger(), nullable=True),
    sa.Column('sent_back', sa.SmallInteger(), nullable=False),
    sa.Column('duplicate_of', sa.String(length=36), nullable=True),
    sa.Column('lat', sa.Float(), nullable=True),
    sa.Column('lon', sa.Float(), nullable=True),
    sa.Column('search', sa.Text(), nullable=False),
    sa.Column('position', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('event_id'),
    sa.UniqueConstraint('case_number')
    )
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.create_index('ix_cases_queue', ['open', sa.text('urgent DESC'), 'due_sort', 'reported_ms', 'event_id'],
                              unique=False)
        batch_op.create_index('ix_cases_status_queue',
                              ['status', sa.text('urgent DESC'), 'due_sort', 'reported_ms', 'event_id'], unique=False)
        batch_op.create_index('ix_cases_grid_status', ['grid', 'status'], unique=False)
        batch_op.create_index('ix_cases_unit_status', ['unit', 'status'], unique=False)
        batch_op.create_index('ix_cases_category', ['category', 'open'], unique=False)
        batch_op.create_index('ix_cases_reported', ['reported_ms'], unique=False)
    op.create_table('case_numbers',
    sa.Column('day', sa.String(length=8), nullable=False),
    sa.Column('last', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('day')
    )
    connection = op.get_bind()
    _place_under_parents(connection)
    _number_events(connection)
    casebook.rebuild(connection)


def _load(value):
    return json.loads(value) if isinstance(value, str) else value


def _place_under_parents(connection) -> None:
    placed = []
    rows = connection.execute(sa.text(
        "SELECT id, kind, field_values FROM records WHERE kind IN ('case_action', 'house_check', 'tenant')"))
    for rid, kind, values in rows:
        parent = _load(values).get(_PARENTS[kind])
        if isinstance(parent, str):
            placed.append({"rid": rid, "parent": parent})
    if placed:
        connection.execute(sa.text("UPDATE records SET parent_id = :parent WHERE id = :rid"), placed)


def _number_events(connection) -> None:
    """Number the stored events in feed order, each on the day of its first write."""
    zone = parse_offset(current_app.config["GRIDPATROL_UTC_OFFSET"])
    rows = connection.execute(sa.text(
        "SELECT id, field_values, field_hlcs FROM records WHERE kind = 'event' ORDER BY position")).all()
    if not rows:
        return
    position = connection.execute(sa.text("SELECT position FROM feed WHERE id = 1")).scalar_one()
    stamp = str(server_clock().now())
    counters: dict[str, int] = {}
    updates = []
    for rid, values, hlcs in rows:
        values, hlcs = _load(values), _load(hlcs)
        if values.get("case_number"):
            continue
        try:
            first_ms = HLC.parse(min(hlcs.values())).wall_ms
        except (HLCError, ValueError):
            first_ms = HLC.parse(stamp).wall_ms
        day = datetime.fromtimestamp(first_ms / 1000, zone).strftime("%Y%m%d")
        counters[day] = counters.get(day, 0) + 1
        position += 1
        values["case_number"], hlcs["case_number"] = casebook.case_number(day, counters[day]), stamp
        updates.append({"rid": rid, "values": json.dumps(values, ensure_ascii=False),
                        "hlcs": json.dumps(hlcs), "position": position})
    if not updates:
        return
    cast = "CAST(:{} AS jsonb)" if connection.dialect.name == "postgresql" else ":{}"
    connection.execute(sa.text(
        f"UPDATE records SET field_values = {cast.format('values')}, field_hlcs = {cast.format('hlcs')}, "
        "position = :position WHERE id = :rid"), updates)
    connection.execute(sa.text("UPDATE feed SET position = :position WHERE id = 1"), {"position": position})
    connection.execute(sa.text("INSERT INTO case_numbers (day, last) VALUES (:day, :last)"),
                       [{"day": day, "last": last} for day, last in sorted(counters.items())])


def downgrade():
    op.drop_table('case_numbers')
    op.drop_table('cases')
    with op.batch_alter_table('records', schema=None) as batch_op:
        batch_op.drop_index('ix_records_parent')
        batch_op.drop_column('parent_id')

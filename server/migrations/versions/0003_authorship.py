"""authorship: the device each record came from, revocable page sessions, who uploaded each photo

Revision ID: 0003_authorship
Revises: 0002_settings
Create Date: 2026-12-06 02:45:00.000000

Records already stored are placed on the device whose node stamped their first write (the pages
placed them so before; from now on the server keeps the device of the push instead, which the
tablet cannot choose). Photos already referenced are taken as attached by the authors of the
records that refer to them (the rule of server/photos/access.py applies from now on; before it, a
reference was enough).
"""
import json
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0003_authorship'
down_revision = '0002_settings'
branch_labels = None
depends_on = None

# The kinds with photos and the field naming who made each record (shared/records.py, Kind.author).
_AUTHORS = {"event": "reporter", "case_action": "actor", "house_check": "worker"}


def upgrade():
    with op.batch_alter_table('records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('device_id', sa.String(length=36), nullable=True))
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_version', sa.Integer(), nullable=False, server_default='0'))
    uploads = op.create_table('photo_uploads',
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('sha256', 'user_id')
    )
    connection = op.get_bind()
    _place_records_on_devices(connection)
    users = {row[0] for row in connection.execute(sa.text("SELECT id FROM users"))}
    rows = connection.execute(sa.text(
        "SELECT kind, field_values FROM records WHERE kind IN ('event', 'case_action', 'house_check')"))
    found = set()
    for kind, values in rows:
        values = json.loads(values) if isinstance(values, str) else values
        author = values.get(_AUTHORS[kind])
        for sha in values.get("photos") or []:
            if author in users and isinstance(sha, str):
                found.add((sha, author))
    if found:
        now = datetime.now(timezone.utc)
        op.bulk_insert(uploads, [{"sha256": sha, "user_id": user, "uploaded_at": now} for sha, user in sorted(found)])


def _place_records_on_devices(connection) -> None:
    """Each stored record's device: the latest registered with the node of its earliest write's HLC."""
    devices = dict(connection.execute(sa.text("SELECT node, id FROM devices ORDER BY created_at")).all())
    if not devices:
        return
    placed = []
    for rid, hlcs in connection.execute(sa.text("SELECT id, field_hlcs FROM records")):
        hlcs = json.loads(hlcs) if isinstance(hlcs, str) else hlcs
        first = min(hlcs.values(), default="")
        device = devices.get(first[-16:]) if len(first) > 16 else None  # an HLC ends in its 16-hex node
        if device is not None:
            placed.append({"rid": rid, "device": device})
    if placed:
        connection.execute(sa.text("UPDATE records SET device_id = :device WHERE id = :rid"), placed)


def downgrade():
    op.drop_table('photo_uploads')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('session_version')
    with op.batch_alter_table('records', schema=None) as batch_op:
        batch_op.drop_column('device_id')

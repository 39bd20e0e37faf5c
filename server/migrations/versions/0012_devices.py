"""devices: the app version and refused changes seen per device; one-time provisioning codes

Revision ID: 0012_devices
Revises: 0011_disputes
Create Date: 2026-12-06 08:00:00.000000

Admins see, per tablet, which app version it runs and how many of its changes the server refused
(with the last reason), and provision a tablet with a one-time code instead of a password typed on it
(server/accounts.py, issue_device_code). Only the code's SHA-256 is stored.
"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0012_devices'
down_revision = '0011_disputes'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('app_version', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('refused_count', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('last_refusal', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('last_refusal_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        'device_codes',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('user_id', sa.String(length=36), nullable=False),
        sa.Column('code_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.String(length=80), nullable=True),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('device_id', sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('code_hash'),
    )
    with op.batch_alter_table('device_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_device_codes_user_id'), ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('device_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_device_codes_user_id'))
    op.drop_table('device_codes')
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.drop_column('last_refusal_at')
        batch_op.drop_column('last_refusal')
        batch_op.drop_column('refused_count')
        batch_op.drop_column('app_version')

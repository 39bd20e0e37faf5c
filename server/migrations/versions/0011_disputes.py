"""disputes: the store keeps its disputes (a cache of the dispute fold) for the pages to filter and page in SQL

Revision ID: 0011_disputes
Revises: 0009_patrols
Create Date: 2026-12-06 08:00:00.000000

One row per ``dispute`` record: its place, kind, folded status and outcome, when it was reported,
when it must be and was taken up, whether it was mediated (server/disputes/book.py keeps it in the
transaction of every write, as server/sync/casebook.py keeps ``cases``). No party is copied here.
Existing disputes are folded in by ``book.rebuild`` (the upgrade runs it: a new table starts full).
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0011_disputes'
down_revision = '0009_patrols'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'disputes',
        sa.Column('dispute_id', sa.String(length=36), nullable=False),
        sa.Column('bucket', sa.String(length=80), nullable=False),
        sa.Column('grid', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=64), nullable=False),
        sa.Column('deleted', sa.Boolean(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('outcome', sa.String(length=16), nullable=True),
        sa.Column('reported_ms', sa.BigInteger(), nullable=True),
        sa.Column('deadline_ms', sa.BigInteger(), nullable=True),
        sa.Column('taken_up_ms', sa.BigInteger(), nullable=True),
        sa.Column('mediated', sa.Boolean(), nullable=False),
        sa.Column('sessions', sa.SmallInteger(), nullable=False),
        sa.Column('follow_ups', sa.SmallInteger(), nullable=False),
        sa.Column('position', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('dispute_id'),
    )
    with op.batch_alter_table('disputes', schema=None) as batch_op:
        batch_op.create_index('ix_disputes_grid_status', ['grid', 'status', 'deleted'], unique=False)
        batch_op.create_index('ix_disputes_reported', ['reported_ms'], unique=False)
        batch_op.create_index('ix_disputes_kind', ['kind'], unique=False)
    from server.disputes import book  # the fold's rules live in shared/dispute.py, the rows' in book.py

    book.rebuild(op.get_bind())


def downgrade():
    op.drop_table('disputes')

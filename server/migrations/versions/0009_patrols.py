"""patrols: the coverage cache per grid and day (server/patrols/coverage.py)

Revision ID: 0009_patrols
Revises: 0008_case_indexes
Create Date: 2026-12-07 09:00:00.000000

Patrols, their packed tracks, fixed points, visits and plans are records like any other: the
``records`` table holds them, and a new kind needs no migration. What the pages cannot afford to
compute from them on every view is a district's coverage for a day or a week (every track point
against every 50 m cell of every grid): each grid-day's covered cells are kept here, with what they
were computed from, and computed again only when that changed. The table starts empty; the first
coverage page fills it. Dropping it loses nothing but time.
"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0009_patrols'
down_revision = '0008_case_indexes'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('patrol_coverage',
    sa.Column('grid', sa.String(length=64), nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('cells', sa.Integer(), nullable=False),
    sa.Column('covered', sa.Integer(), nullable=False),
    sa.Column('bits', sa.LargeBinary(), nullable=False),
    sa.Column('signature', sa.String(length=200), nullable=False),
    sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('grid', 'day')
    )


def downgrade():
    op.drop_table('patrol_coverage')

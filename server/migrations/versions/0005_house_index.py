"""house index: tenants' search hashes (keyed; never a name or a number), see server/houses/index.py

Revision ID: 0005_house_index
Revises: 0004_cases
Create Date: 2026-12-08 10:00:00.000000

The table starts empty but for its high-water row at position 0, so the first tenant search
indexes every tenant already stored (server/houses/index.py, catch_up), with the key of the
running server, which a migration does not hold.
"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0005_house_index'
down_revision = '0004_cases'
branch_labels = None
depends_on = None


def upgrade():
    table = op.create_table('tenant_index',
    sa.Column('tenant_id', sa.String(length=36), nullable=False),
    sa.Column('house_id', sa.String(length=36), nullable=True),
    sa.Column('position', sa.BigInteger(), nullable=False),
    sa.Column('name_hash', sa.String(length=32), nullable=True),
    sa.Column('id_hash', sa.String(length=32), nullable=True),
    sa.Column('id_tail_hash', sa.String(length=32), nullable=True),
    sa.Column('id_ends_hash', sa.String(length=32), nullable=True),
    sa.PrimaryKeyConstraint('tenant_id')
    )
    with op.batch_alter_table('tenant_index', schema=None) as batch_op:
        for column in ('house_id', 'name_hash', 'id_hash', 'id_tail_hash', 'id_ends_hash'):
            batch_op.create_index(f'ix_tenant_index_{column}', [column], unique=False)
    op.bulk_insert(table, [{'tenant_id': '*', 'position': 0}])


def downgrade():
    with op.batch_alter_table('tenant_index', schema=None) as batch_op:
        for column in ('house_id', 'name_hash', 'id_hash', 'id_tail_hash', 'id_ends_hash'):
            batch_op.drop_index(f'ix_tenant_index_{column}')
    op.drop_table('tenant_index')

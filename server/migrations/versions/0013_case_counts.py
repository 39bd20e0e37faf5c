"""case counts and search: the live cases per grid and status for the queue's counts; SQLite's search index

Revision ID: 0013_case_counts
Revises: 0012_devices
Create Date: 2026-12-06 10:30:00.000000

The queue shows, beside its page, how many cases of each status its filters hold. Counted in SQL,
that reads one index entry per case: 100,000 for a street of a 1,000,000-case store, where the page
itself reads 20 rows (docs/benchmarks.md, "Cases at district scale"). ``case_counts`` keeps the
count per grid and status; server/sync/casebook.py writes it with the cases rows, as a delta, in the
same transaction. It is filled here from the cases table, as ``flask cases rebuild`` counts it again.

On SQLite, keyword search read the whole cases table (2.5-3 s at 1,000,000 cases): ``case_search`` and
``case_search_fts`` (an FTS5 table, trigram tokenizer) index the cases' search text outside the write
path, caught up from the feed when a search comes (server/cases/search.py). Filled here. PostgreSQL
kept its trigram index on ``cases.search`` (migration 0008) when this was written and got neither table;
since 0014 server/cases/search.py keeps ``case_search`` (with a GIN trigram index) on PostgreSQL too, so
this migration, which calls that module, now creates it there on a fresh store, and 0014 creates it on a
store migrated before.
"""
from alembic import op
import sqlalchemy as sa

from server.cases import search
from server.sync import casebook

# revision identifiers, used by Alembic.
revision = '0013_case_counts'
down_revision = '0012_devices'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('case_counts',
    sa.Column('grid', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('grid', 'status')
    )
    connection = op.get_bind()
    casebook.recount(connection)
    search.create(connection)
    if search.in_use(connection):
        search.rebuild(connection, connection.exec_driver_sql("SELECT position FROM feed WHERE id = 1").scalar() or 0)


def downgrade():
    search.drop(op.get_bind())
    op.drop_table('case_counts')

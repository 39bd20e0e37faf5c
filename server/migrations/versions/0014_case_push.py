"""case push: fewer indexes written by a push; PostgreSQL's keyword search index out of the write path

Revision ID: 0014_case_push
Revises: 0013_case_counts
Create Date: 2026-12-06 13:30:00.000000

Every index of ``cases`` is written in the pushing transaction for each new event, and those writes
were about half of what the cases table added to a push of 500 changes (docs/benchmarks.md, "Cases
at district scale", "2026-12-06, fourth session"). So:

* PostgreSQL's GIN trigram index on ``cases.search`` (migration 0008) goes; keyword search reads
  ``case_search``, kept outside the write path and caught up from the feed when a search comes, as
  SQLite's has been since 0013 (server/cases/search.py). A store migrated through 0013 since that
  module keeps PostgreSQL's index too already has the table; an older one gets it here, filled.
* ix_cases_grid_status goes: the queue's counts come from ``case_counts`` (0013); with a filter
  beyond the place they are counted in SQL from the other filters' indexes (unit, category, the
  search) or the table.
* ix_cases_unit_status keeps only the cases that have a unit (dispatched once): the unit's queue and
  its counts (``unit = ?``) still read it; a new event is not in it.
"""
from alembic import op
import sqlalchemy as sa

from server.cases import search

# revision identifiers, used by Alembic.
revision = '0014_case_push'
down_revision = '0013_case_counts'
branch_labels = None
depends_on = None


def upgrade():
    connection = op.get_bind()
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_grid_status')
        batch_op.drop_index('ix_cases_unit_status')
        batch_op.create_index('ix_cases_unit_status', ['unit', 'status'], unique=False,
                              postgresql_where=sa.text('unit IS NOT NULL'), sqlite_where=sa.text('unit IS NOT NULL'))
    if connection.dialect.name != "postgresql":
        return
    op.drop_index("ix_cases_search_trgm", table_name="cases")
    if not search.exists(connection):
        search.create(connection)
        # Positions come from a sequence on PostgreSQL (0007); no writer runs during a migration.
        search.rebuild(connection, connection.exec_driver_sql("SELECT max(position) FROM records").scalar() or 0)


def downgrade():
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":
        # case_search stays: 0013's downgrade drops it, as a store migrated through 0013 today has it.
        op.create_index("ix_cases_search_trgm", "cases", ["search"], unique=False, postgresql_using="gin",
                        postgresql_ops={"search": "gin_trgm_ops"})
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_unit_status')
        batch_op.create_index('ix_cases_unit_status', ['unit', 'status'], unique=False)
        batch_op.create_index('ix_cases_grid_status', ['grid', 'status', 'deleted'], unique=False)

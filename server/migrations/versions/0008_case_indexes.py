"""case indexes: the queue's counts from a covering index; keyword search by trigrams (PostgreSQL)

Revision ID: 0008_case_indexes
Revises: 0007_feed_sequence
Create Date: 2026-12-06 05:00:00.000000

The queue counts its cases per grid and status (server/cases/service.py, list_cases). With
``deleted`` added to ix_cases_grid_status the count of a street reads that index alone; before, SQLite
read every row of the table for it (0.5 s for a street of a 1,000,000-case store, bench/cases_bench.py).

A case page looks for open cases of the same category near it (service.py, nearby_cases): a box
of latitude and longitude. ix_cases_category (category, open) gave it every open case of the
category, each read from the table and filtered (about 100 ms on a 1,000,000-case store); with
lat and lon in the index the box's latitude band is a range of it, the longitude checked there.

The queue's keyword search is ``search LIKE '%word%'`` on the cases table (server/cases/service.py).
No b-tree serves a pattern that starts with a wildcard, so on a district's store (1,000,000 cases,
bench/cases_bench.py) every search read the whole table twice, once for the counts and once for
the page. On PostgreSQL a GIN index of the text's trigrams (pg_trgm, a trusted extension: the
database's owner may create it) serves such a LIKE for words of three characters or more; pg_trgm
keeps CJK characters in its trigrams on a UTF-8 database. SQLite has no such index: nothing
changes there.
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0008_case_indexes'
down_revision = '0007_feed_sequence'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_grid_status')
        batch_op.create_index('ix_cases_grid_status', ['grid', 'status', 'deleted'], unique=False)
        batch_op.drop_index('ix_cases_category')
        batch_op.create_index('ix_cases_category', ['category', 'open', 'lat', 'lon'], unique=False)
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_index("ix_cases_search_trgm", "cases", ["search"], unique=False, postgresql_using="gin",
                    postgresql_ops={"search": "gin_trgm_ops"})


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_cases_search_trgm", table_name="cases")
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_grid_status')
        batch_op.create_index('ix_cases_grid_status', ['grid', 'status'], unique=False)
        batch_op.drop_index('ix_cases_category')
        batch_op.create_index('ix_cases_category', ['category', 'open'], unique=False)

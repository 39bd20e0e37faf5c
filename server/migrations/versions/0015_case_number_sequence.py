"""case number sequence: PostgreSQL's case numbers from a sequence and a base per day (server/sync/casebook.py)

Revision ID: 0015_case_number_sequence
Revises: 0014_case_push
Create Date: 2026-12-06 16:10:00.000000

Every push that brought a new event raised the day's ``case_numbers`` row, one row for the whole city;
its lock serialised pushes (issue 19). On PostgreSQL the numbers now come from ``case_number_seq``, and
a day's nth number is the sequence's value less the day's base in ``case_number_days``. A day already
numbered continues where it stood: its base is minus its last number, and the sequence starts at 1, so
its next number is last + 1. SQLite keeps ``case_numbers``: nothing to do there.

The sequence caches no values per session (CACHE 1, the default, said aloud): a day's base is read
from its ``last_value``, which must be above every value already handed out.
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0015_case_number_sequence'
down_revision = '0014_case_push'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute("CREATE SEQUENCE case_number_seq AS bigint MINVALUE 1 CACHE 1")
    op.execute("CREATE TABLE case_number_days (day varchar(8) PRIMARY KEY, base bigint NOT NULL)")
    op.execute("INSERT INTO case_number_days (day, base) SELECT day, -last FROM case_numbers")


def downgrade():
    if op.get_bind().dialect.name != 'postgresql':
        return
    # Each day's row takes over from a number at or above the day's last one: every value handed out is at
    # or below the sequence's last value, so none is given again.
    op.execute("INSERT INTO case_numbers (day, last) "
               "SELECT day, (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END "
               "FROM case_number_seq) - base FROM case_number_days "
               "ON CONFLICT (day) DO UPDATE SET last = greatest(case_numbers.last, excluded.last)")
    op.execute("DROP TABLE case_number_days")
    op.execute("DROP SEQUENCE case_number_seq")

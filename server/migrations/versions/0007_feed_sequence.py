"""feed sequence: PostgreSQL's positions from a sequence, under per-bucket locks (server/sync/feed.py)

Revision ID: 0007_feed_sequence
Revises: 0006_admin
Create Date: 2026-12-10 09:00:00.000000

The sequence starts above every position handed out so far (the feed row, and any record above
it), so every cursor a tablet holds is still below every position written from now on: old
cursors stay valid as they are. On PostgreSQL the feed row is no longer raised after this
(feed.last_position reads the sequence). SQLite keeps the feed row: nothing to do there.
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0007_feed_sequence'
down_revision = '0006_admin'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute("CREATE SEQUENCE feed_position_seq AS bigint MINVALUE 1")
    op.execute("SELECT setval('feed_position_seq', greatest(last, 1), last > 0) FROM ("
               "SELECT greatest((SELECT position FROM feed WHERE id = 1), "
               "(SELECT coalesce(max(position), 0) FROM records)) AS last) AS feed_now")


def downgrade():
    if op.get_bind().dialect.name != 'postgresql':
        return
    # The feed row takes over again from the last position handed out.
    op.execute("UPDATE feed SET position = greatest(position, (SELECT coalesce(max(position), 0) FROM records)) "
               "WHERE id = 1")
    op.execute("DROP SEQUENCE feed_position_seq")

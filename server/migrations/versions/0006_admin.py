"""admin: the append-only audit log, and the history of grid assignments

Revision ID: 0006_admin
Revises: 0005_house_index
Create Date: 2026-12-06 04:00:00.000000

The audit log refuses UPDATE and DELETE (and on PostgreSQL TRUNCATE) by trigger on both engines:
no route, CLI command or role can change it, and neither can a stray statement. Grid assignments
held today are opened in the history as held since the user was created.
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '0006_admin'
down_revision = '0005_house_index'
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP;
END;
$$ LANGUAGE plpgsql
"""


def upgrade():
    op.create_table('audit_log',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_id', sa.String(length=36), nullable=True),
    sa.Column('actor', sa.String(length=80), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=True),
    sa.Column('address', sa.String(length=64), nullable=True),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('target', sa.String(length=200), nullable=True),
    sa.Column('before', _JSON, nullable=True),
    sa.Column('after', _JSON, nullable=True),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_audit_log_at', 'audit_log', ['at'])
    op.create_index('ix_audit_log_action', 'audit_log', ['action'])
    op.create_index('ix_audit_log_kind', 'audit_log', ['kind'])
    assignments = op.create_table('grid_assignments',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('grid', sa.String(length=64), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('started_by', sa.String(length=80), nullable=True),
    sa.Column('ended_by', sa.String(length=80), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id']),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_grid_assignments_user_id', 'grid_assignments', ['user_id'])
    op.create_index('ix_grid_assignments_grid', 'grid_assignments', ['grid'])
    connection = op.get_bind()
    held = connection.execute(sa.text(
        "SELECT g.user_id, g.grid, u.created_at FROM user_grids g JOIN users u ON u.id = g.user_id")).all()
    if held:
        op.bulk_insert(assignments, [{"user_id": user_id, "grid": grid, "started_at": created, "ended_at": None,
                                      "started_by": None, "ended_by": None} for user_id, grid, created in held])
    if connection.dialect.name == 'postgresql':
        op.execute(_PG_FUNCTION)
        op.execute("CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log "
                   "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()")
        op.execute("CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
                   "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()")
    else:
        for operation in ('UPDATE', 'DELETE'):
            op.execute(f"CREATE TRIGGER audit_log_no_{operation.lower()} BEFORE {operation} ON audit_log "
                       f"BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: {operation} refused'); END")


def downgrade():
    connection = op.get_bind()
    if connection.dialect.name == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_change ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    op.drop_index('ix_grid_assignments_grid', table_name='grid_assignments')
    op.drop_index('ix_grid_assignments_user_id', table_name='grid_assignments')
    op.drop_table('grid_assignments')
    op.drop_index('ix_audit_log_kind', table_name='audit_log')
    op.drop_index('ix_audit_log_action', table_name='audit_log')
    op.drop_index('ix_audit_log_at', table_name='audit_log')
    op.drop_table('audit_log')

"""The database handle, migrations, and the per-engine connection settings."""

from __future__ import annotations

from pathlib import Path

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import JSON, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine

# Tables the migrations make that no model describes, each for its engine's sake; autogenerate (`flask db
# migrate`, `flask db check`) must neither offer to drop them nor compare them:
# * ``case_search`` and, on SQLite, its FTS5 index and shadow tables ``case_search_fts*``: the keyword
#   search's index, a different shape on each engine (server/cases/search.py, migrations 0013 and 0014);
# * ``case_number_days``: PostgreSQL's base of each day's case numbers (server/sync/casebook.py, 0015).
OUTSIDE_THE_MODELS = ("case_search", "case_number_days")


def _compared(name: str | None, type_: str, parent_names: dict) -> bool:
    """Alembic's include_name: whether autogenerate compares a table with the models."""
    if type_ != "table" or name is None:
        return True
    return not any(name == table or name.startswith(table + "_") for table in OUTSIDE_THE_MODELS)


db = SQLAlchemy()
migrate = Migrate(directory=str(Path(__file__).parent / "migrations"), include_name=_compared)

# JSON on SQLite, JSONB on PostgreSQL (smaller, and queryable by the pages).
Json = JSON().with_variant(JSONB(), "postgresql")


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    """WAL lets pulls read while a push writes; busy_timeout makes writers queue instead of failing."""
    module = type(dbapi_connection).__module__
    if "sqlite" not in module:
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def init_app(app) -> None:
    """Bind the database and migrations to the app."""
    db.init_app(app)
    migrate.init_app(app, db)

"""The migrations make the schema the models describe, on each engine: autogenerate finds nothing to do.

So a developer's `flask db migrate` writes only their own change, never a drop of a table kept outside the
models on purpose (server/db.py, OUTSIDE_THE_MODELS), and no model drifts from its table unseen.
"""

from __future__ import annotations

from flask_migrate import check


def test_autogenerate_finds_nothing_between_the_migrations_and_the_models(app):
    check()  # Flask-Migrate logs each difference and exits with 1 when there is one

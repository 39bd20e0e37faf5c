"""The GridPatrol sync server: the central case store, the sync API and the pages.

`create_app(config)` is the application factory. Settings come from the
environment (server/config.py); ``config`` overrides them, which is how tests
build apps.
"""

from __future__ import annotations

from typing import Any, Mapping

from flask import Flask

from server import db, errors, privacy
from server.admin import cli
from server.cases import views as cases_views
from server.clock import ServerClock
from server.houses import views as houses_views
from server.photos import views as photos_views
from server.sync import views as sync_views
from server.sync import wire
from server.config import from_environment


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app from the environment plus ``config``."""
    app = Flask(__name__)
    app.config.update(from_environment())
    if config:
        app.config.update(config)
    app.config["MAX_CONTENT_LENGTH"] = app.config["GRIDPATROL_MAX_PUSH_BYTES"]
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", _engine_options(app.config["SQLALCHEMY_DATABASE_URI"]))
    app.json.ensure_ascii = False  # Chinese stays readable in answers
    app.json.sort_keys = False
    db.init_app(app)
    errors.init_app(app)
    privacy.init_app(app)  # the ID-number key (required in production) and ID numbers masked in logs
    app.extensions["gridpatrol.clock"] = ServerClock(
        app.config["GRIDPATROL_NODE"], app.config["GRIDPATROL_MAX_DRIFT_SECONDS"] * 1000,
        physical=app.config.get("GRIDPATROL_PHYSICAL_CLOCK"))
    app.register_blueprint(sync_views.bp)
    app.register_blueprint(photos_views.bp)
    cases_views.init_app(app)  # the supervisor and unit pages, with log-in, CSRF and languages
    houses_views.init_app(app)  # rental houses, their checks and tenants; the ID-number setting
    cli.init_app(app)
    return app


def _engine_options(url: str) -> dict[str, Any]:
    # The JSON columns are written and read by msgspec (server/wire.py), several times faster than json.
    options: dict[str, Any] = {"json_serializer": wire.dumps, "json_deserializer": wire.loads}
    if url.startswith("sqlite"):
        # One connection per thread; pushes queue on SQLite's write lock (busy_timeout).
        return {**options, "connect_args": {"timeout": 30}}
    return {**options, "pool_pre_ping": True}

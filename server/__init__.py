"""The GridPatrol sync server: the central case store, the sync API and the pages.

`create_app(config)` is the application factory. Settings come from the
environment (server/config.py); ``config`` overrides them, which is how tests
build apps.

The layout: the core beside this file (config, db, models, clock, errors, accounts, privacy,
reference, api), what every page shares in ``web/``, and one package per feature: ``sync/``
(push and pull), ``photos/``, ``cases/`` (the supervisor and unit pages), ``houses/`` (rental
houses), ``disputes/`` (civil disputes) and ``admin/`` (admin pages, CLI, demo). A feature may use the core, ``web/`` and another
feature's service, never another feature's views.
"""

from __future__ import annotations

import time
from typing import Any, Mapping

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError

from . import api, db, errors, privacy, web
from .admin import views as admin_views
from .cases import views as cases_views
from .clock import ServerClock
from .config import settings
from .disputes import views as disputes_views
from .houses import views as houses_views
from .patrols import views as patrols_views
from .photos import views as photos_views
from .places import views as places_views
from .stats import views as stats_views
from .sync import views as sync_views
from .sync import wire


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app from ``config`` on top of the environment."""
    app = Flask(__name__)
    app.config.update(settings(config))
    app.config["MAX_CONTENT_LENGTH"] = app.config["GRIDPATROL_MAX_PUSH_BYTES"]
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {**_engine_options(app.config["SQLALCHEMY_DATABASE_URI"]),
                                               **app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {})}
    app.session_interface = _SessionInterface()
    app.json.ensure_ascii = False  # Chinese stays readable in answers
    app.json.sort_keys = False
    db.init_app(app)
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite") and not app.config[
            "SQLALCHEMY_ENGINE_OPTIONS"].get("pool_pre_ping"):
        with app.app_context():
            _ping_after_idle(db.db.engine)
    errors.init_app(app)
    privacy.init_app(app)  # the ID-number key (required in production) and ID numbers masked in logs
    app.extensions["gridpatrol.clock"] = ServerClock(
        app.config["GRIDPATROL_NODE"], app.config["GRIDPATROL_MAX_DRIFT_SECONDS"] * 1000,
        physical=app.config.get("GRIDPATROL_PHYSICAL_CLOCK"))
    app.register_blueprint(api.bp)
    app.register_blueprint(sync_views.bp)
    app.register_blueprint(photos_views.bp)
    web.init_app(app)  # log-in, CSRF, languages and error pages, before the pages that use them
    cases_views.init_app(app)
    houses_views.init_app(app)
    places_views.init_app(app)
    stats_views.init_app(app)
    patrols_views.init_app(app)
    disputes_views.init_app(app)
    admin_views.init_app(app)
    return app


def _engine_options(url: str) -> dict[str, Any]:
    # The JSON columns are written and read by msgspec (server/sync/wire.py), several times faster than
    # json; server/sync/feed.py decodes the text it reads with the same function.
    # hide_parameters: a database error is logged with its statement, never with the values bound to it
    # (record JSON, token hashes, tenants' names and phones).
    options: dict[str, Any] = {"json_serializer": wire.dumps, "json_deserializer": wire.loads,
                               "hide_parameters": True}
    if url.startswith("sqlite"):
        # One connection per thread; pushes queue on SQLite's write lock (busy_timeout).
        return {**options, "connect_args": {"timeout": 30}}
    # Each thread of a gunicorn worker holds one connection for its request, and a push takes a second,
    # short one once a day, to fix the day's case-number base (server/sync/casebook.py): 8 threads may
    # need 16 at once, one more than SQLAlchemy's default pool of 5 + 10 overflow.
    return {**options, "pool_size": 10, "max_overflow": 10}


IDLE_PING_SECONDS = 5.0  # a pooled connection idle for longer is tested before a request gets it


def _ping_after_idle(engine) -> None:
    """Test a pooled PostgreSQL connection before handing it out when it sat idle, not on every checkout.

    Hazard: a connection that died while it sat in the pool (the database restarted, a proxy or a
    firewall cut it) would fail the next request. SQLAlchemy's ``pool_pre_ping`` sends a ``SELECT 1``
    at every checkout; a busy server checks out a connection it used milliseconds ago at every
    request, and the pings were a twentieth of an empty pull's CPU (issue 19). So a connection is
    tested only after IDLE_PING_SECONDS in the pool; one that fails the test is replaced
    (DisconnectionError: the pool connects again). A database restart while connections are busy
    fails the requests in flight either way, and the first error SQLAlchemy recognises as a
    disconnect discards the whole pool.
    """

    @event.listens_for(engine, "connect")
    def _fresh(dbapi_connection, record):
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _returned(dbapi_connection, record):
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _test_if_idle(dbapi_connection, record, proxy):
        since = record.info.get("idle_since")
        if since is not None and time.monotonic() - since < IDLE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # whatever the driver raises for a dead connection
            raise DisconnectionError(f"a pooled connection failed its test: {exc.__class__.__name__}") from exc


class _SessionInterface(SecureCookieSessionInterface):
    """Page sessions in signed cookies, as Flask keeps them; push and pull start from an empty one.

    Speed: opening a session makes a signing serializer for every request; push and pull never read
    a cookie (a device token says who calls), so they get an empty session without it. Anything
    written to it would still be saved as for any request.
    """

    def open_session(self, app, request):
        if request.path in sync_views.SYNC_PATHS:
            return self.session_class()
        return super().open_session(app, request)

"""Test-wide settings: hypothesis profiles (CI runs the laws with 200 examples), and no test writes var/."""

import atexit
import os
import shutil
import tempfile

# What a server keeps in var/ when it is given no key or store (a local secret key, the ID-number key)
# goes to a folder of this test run, never into the checkout's var/. Set before any test imports
# server.config, which reads it once; server processes the tests start inherit it.
os.environ["GRIDPATROL_VAR_DIR"] = tempfile.mkdtemp(prefix="gridpatrol-test-var-")
atexit.register(shutil.rmtree, os.environ["GRIDPATROL_VAR_DIR"], True)

from hypothesis import HealthCheck, settings

# 200 in CI, 100 elsewhere: with 60 laws, 500 examples each cost CI about four minutes of a 2-core run for little
# more reach (a law's examples add up over the many CI runs). Laws that need more ask for it (the wire parser's).
settings.register_profile("ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") == "true" else "dev"))


# --- the central case store on both engines --------------------------------------------------
#
# Every store test runs on SQLite, and on PostgreSQL when one is reachable. In CI
# (CI=true) PostgreSQL is required: its tests fail instead of skipping. Each engine
# is migrated once per session into a template; each test gets a fresh copy
# (a file copy on SQLite, CREATE DATABASE ... TEMPLATE on PostgreSQL).

import contextlib  # noqa: E402
import itertools  # noqa: E402
import uuid  # noqa: E402

import pytest  # noqa: E402

PG_ADMIN_URL = os.environ.get("GRIDPATROL_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
_counter = itertools.count()


def _pg_connect(url=PG_ADMIN_URL):
    import psycopg

    return psycopg.connect(url, autocommit=True, connect_timeout=3)


def _pg_url(database: str) -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return base.replace("postgresql://", "postgresql+psycopg://", 1) + "/" + database


@pytest.fixture(scope="session")
def pg_available():
    """Whether PostgreSQL can be reached; in CI its absence fails the run."""
    try:
        _pg_connect().close()
    except Exception as exc:  # any failure to connect means: not reachable
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs PostgreSQL at {PG_ADMIN_URL}, but: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}; PostgreSQL tests skipped")
    return True


@contextlib.contextmanager
def _pg_clone(template: str):
    """A fresh PostgreSQL database cloned from the migrated template: answers its URL, drops it at the end."""
    name = f"gp_test_{os.getpid()}_{next(_counter)}"
    with _pg_connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield _pg_url(name)
    finally:
        with _pg_connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _migrate(url: str) -> None:
    from flask_migrate import upgrade

    from server import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade()
        from server.db import db

        db.engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    """A migrated SQLite file to copy for each test."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    _migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_template(pg_available):
    """A migrated PostgreSQL database to clone for each test."""
    name = f"gp_template_{os.getpid()}"
    with _pg_connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    _migrate(_pg_url(name))
    yield name
    with _pg_connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def database_url(request, tmp_path):
    """A fresh, migrated store on each engine."""
    if request.param == "sqlite":
        path = tmp_path / "store.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    with _pg_clone(request.getfixturevalue("pg_template")) as url:
        yield url


TEST_ID_KEY = "5e" * 64


@pytest.fixture
def app_config(database_url, tmp_path):
    """Settings for a test app: its own store, photo folder and node."""
    return {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": "test",
        "GRIDPATROL_ID_KEY": TEST_ID_KEY,  # with SECRET_KEY: a test app writes no key into var/
        "GRIDPATROL_NODE": uuid.uuid4().hex[:16],
        "GRIDPATROL_PHOTO_DIR": str(tmp_path / "photos"),
    }


@pytest.fixture
def app(app_config):
    """A server app on a fresh store, inside an app context."""
    from server import create_app
    from server.db import db

    app = create_app(app_config)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    """A Flask test client of the app."""
    return app.test_client()


@pytest.fixture
def demo(app):
    """The demo data set loaded, with every password 'demo-pass'."""
    from server.admin import demo as demo_data

    demo_data.load(password="demo-pass")
    return demo_data


@pytest.fixture
def pg_database(pg_template):
    """A fresh, migrated PostgreSQL store (for tests that use both engines at once)."""
    with _pg_clone(pg_template) as url:
        yield url

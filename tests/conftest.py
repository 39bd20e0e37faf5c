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
import queue  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
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


class _PgClones:
    """Fresh clones of the migrated template, made one step ahead and dropped behind, by a thread.

    ``CREATE DATABASE … TEMPLATE`` costs about 0.4 s here and ``DROP DATABASE`` 0.15-1.4 s, mostly waiting on
    the disk; done in each test's set-up and tear-down, that was a second or more of every PostgreSQL test. The
    thread makes the next clones while a test runs and drops a used one after it, so a test takes a database
    that is ready and gives it back at once. Drops come first, so used databases never pile up on disk. A
    failure in the thread is raised in the next test that asks for a database, not swallowed.
    """

    AHEAD = 2

    def __init__(self, template: str):
        self._template = template
        self._ready: queue.Queue[str] = queue.Queue(maxsize=self.AHEAD)
        self._used: queue.Queue[str] = queue.Queue()
        self._failure: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="pg-clones", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        try:
            with _pg_connect() as conn:
                while not self._stop.is_set():
                    try:
                        used = self._used.get(timeout=0.5 if self._ready.full() else 0.01)
                    except queue.Empty:
                        used = None
                    if used is not None:
                        conn.execute(f'DROP DATABASE IF EXISTS "{used}" WITH (FORCE)')
                    elif not self._ready.full():
                        name = f"gp_test_{os.getpid()}_{next(_counter)}"
                        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self._template}"')
                        self._ready.put(name)
        except BaseException as exc:  # handed to the next test that asks, which fails with it
            self._failure = exc

    @contextlib.contextmanager
    def clone(self):
        """A fresh database cloned from the template: answers its URL; given back to be dropped at the end."""
        deadline = time.monotonic() + 120
        while True:
            if self._failure is not None:
                raise RuntimeError("making a PostgreSQL clone for the tests failed") from self._failure
            try:
                name = self._ready.get(timeout=1)
                break
            except queue.Empty:
                if time.monotonic() > deadline:
                    raise RuntimeError("no PostgreSQL clone was made for the tests in 120 s") from None
        try:
            yield _pg_url(name)
        finally:
            self._used.put(name)

    def close(self) -> None:
        """Stop the thread and drop what is left: the clones not taken and the used ones not dropped yet."""
        self._stop.set()
        self._thread.join()
        left = [pending.get_nowait() for pending in (self._ready, self._used) for _ in range(pending.qsize())]
        with _pg_connect() as conn:
            for name in left:
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
def pg_clones(pg_available):
    """The migrated PostgreSQL template of this test process, and its clones (`_PgClones`)."""
    name = f"gp_template_{os.getpid()}"
    with _pg_connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    _migrate(_pg_url(name))
    clones = _PgClones(name)
    yield clones
    clones.close()
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
    with request.getfixturevalue("pg_clones").clone() as url:
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


@pytest.fixture(autouse=True, scope="session")
def cheap_password_hashes():
    """Passwords the tests set are hashed with 1,000 rounds of PBKDF2 instead of werkzeug's scrypt.

    scrypt costs about 0.16 s a hash and as much a log-in on this machine: the demo's six users and the
    log-ins of a page test made the average store test spend a second or two hashing. Only the cost is
    lowered: the check is werkzeug's own, which reads the method from the hash. Servers the tests start in
    a subprocess hash as the product does.
    """
    from werkzeug.security import generate_password_hash

    from server import accounts

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(accounts, "generate_password_hash",
                      lambda password: generate_password_hash(password, method="pbkdf2:sha256:1000"))
        yield


@pytest.fixture
def demo(app):
    """The demo data set loaded, with every password 'demo-pass'."""
    from server.admin import demo as demo_data

    demo_data.load(password="demo-pass")
    return demo_data


@pytest.fixture
def pg_database(pg_clones):
    """A fresh, migrated PostgreSQL store (for tests that use both engines at once)."""
    with pg_clones.clone() as url:
        yield url

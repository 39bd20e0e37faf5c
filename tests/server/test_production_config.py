"""Production settings: a server with GRIDPATROL_ENV=production does not start without a real secret key.

The page sessions are signed with GRIDPATROL_SECRET_KEY. Outside production a server not given one keeps
one in var/secret_key (tests/server/test_local_secret.py). In production that would be a quiet failure:
each machine behind the proxy would make its own key and a redeploy would lose it. So, like a missing
GRIDPATROL_ID_KEY (tests/houses/test_privacy.py), a missing, blank or short key stops start-up with a
RuntimeError that names the variable and says how to make one, and nothing is written to var/.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import server.config as config
from server import create_app

ROOT = Path(__file__).resolve().parents[2]
GOOD_KEY = "5f" * 32  # 64 characters, what `secrets.token_hex(32)` gives
ID_KEY = "cd" * 64
MAKE_ONE = 'python -c "import secrets; print(secrets.token_hex(32))"'


@pytest.fixture
def environment(monkeypatch, tmp_path):
    """A clean GRIDPATROL_* environment, with var/ in tmp_path (VAR is read at import: patch the module's)."""
    for name in list(os.environ):
        if name.startswith("GRIDPATROL_") and name != "GRIDPATROL_TEST_PG_URL":
            monkeypatch.delenv(name)
    var = tmp_path / "var"
    monkeypatch.setattr(config, "VAR", var)
    return var


def app_settings(tmp_path) -> dict:
    """What a test passes to create_app: a store and a photo folder, and no SECRET_KEY of its own."""
    return {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'store.db'}",
            "GRIDPATROL_PHOTO_DIR": str(tmp_path / "photos")}


# --- production ------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", [None, "", "   "], ids=["unset", "empty", "blank"])
def test_a_missing_secret_key_in_production_fails_start_up(environment, monkeypatch, tmp_path, key):
    monkeypatch.setenv("GRIDPATROL_ENV", "production")
    monkeypatch.setenv("GRIDPATROL_ID_KEY", ID_KEY)
    if key is not None:
        monkeypatch.setenv("GRIDPATROL_SECRET_KEY", key)
    with pytest.raises(RuntimeError, match="GRIDPATROL_SECRET_KEY is not set") as failure:
        create_app(app_settings(tmp_path))
    assert MAKE_ONE in str(failure.value)
    assert not (environment / "secret_key").exists()  # no key made quietly in var/


@pytest.mark.parametrize("length", [1, 16, 31])
def test_a_short_secret_key_in_production_fails_start_up(environment, monkeypatch, tmp_path, length):
    key = "#" * length  # a character the message has none of
    monkeypatch.setenv("GRIDPATROL_ENV", "production")
    monkeypatch.setenv("GRIDPATROL_ID_KEY", ID_KEY)
    monkeypatch.setenv("GRIDPATROL_SECRET_KEY", key)
    with pytest.raises(RuntimeError, match=rf"GRIDPATROL_SECRET_KEY is too short \({length} characters\)") as failure:
        create_app(app_settings(tmp_path))
    message = str(failure.value)
    assert "at least 32" in message and MAKE_ONE in message
    assert key not in message  # the message never repeats the key
    assert not (environment / "secret_key").exists()


def test_the_settings_themselves_refuse_production_without_a_key(environment, monkeypatch):
    monkeypatch.setenv("GRIDPATROL_ENV", "production")
    with pytest.raises(RuntimeError, match="GRIDPATROL_SECRET_KEY is not set"):
        config.settings()
    assert not environment.exists()


@pytest.mark.parametrize("key", [GOOD_KEY, "x" * 32], ids=["token_hex(32)", "exactly 32"])
def test_a_server_in_production_with_both_keys_starts(environment, monkeypatch, tmp_path, key):
    monkeypatch.setenv("GRIDPATROL_ENV", "production")
    monkeypatch.setenv("GRIDPATROL_SECRET_KEY", key)
    monkeypatch.setenv("GRIDPATROL_ID_KEY", ID_KEY)
    app = create_app(app_settings(tmp_path))
    assert app.config["GRIDPATROL_ENV"] == "production"
    assert app.secret_key == key
    assert "gridpatrol.id_key" in app.extensions
    assert not environment.exists()  # neither key kept in var/


def test_in_production_the_id_key_is_still_required_once_the_secret_key_is_given(environment, monkeypatch,
                                                                                  tmp_path):
    monkeypatch.setenv("GRIDPATROL_ENV", "production")
    monkeypatch.setenv("GRIDPATROL_SECRET_KEY", GOOD_KEY)
    with pytest.raises(RuntimeError, match="GRIDPATROL_ID_KEY is not set"):
        create_app(app_settings(tmp_path))


def test_gunicorns_entry_point_refuses_production_without_a_secret_key(tmp_path):
    """As gunicorn starts it (`server:create_app()`): a fresh process, VAR read from the environment."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("GRIDPATROL_")}
    env.update({"GRIDPATROL_ENV": "production", "GRIDPATROL_ID_KEY": ID_KEY, "GRIDPATROL_VAR_DIR": str(tmp_path),
                "GRIDPATROL_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}"})
    done = subprocess.run([sys.executable, "-c", "from server import create_app; create_app()"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "RuntimeError: GRIDPATROL_SECRET_KEY is not set" in done.stderr, done.stderr
    assert MAKE_ONE in done.stderr
    assert not (tmp_path / "secret_key").exists()


# --- elsewhere: as before --------------------------------------------------------------------------

@pytest.mark.parametrize("env", [None, "development", "test"])
def test_outside_production_a_missing_key_is_kept_in_var(environment, monkeypatch, tmp_path, env):
    if env is not None:
        monkeypatch.setenv("GRIDPATROL_ENV", env)
    first = create_app(app_settings(tmp_path))
    kept = (environment / "secret_key").read_text().strip()
    assert first.secret_key == kept and len(kept) == 64
    assert (environment / "secret_key").stat().st_mode & 0o777 == 0o600
    assert create_app(app_settings(tmp_path)).secret_key == kept  # the next start reads the same key
    assert first.config["GRIDPATROL_ENV"] == (env or "development")


def test_outside_production_a_given_key_is_used_as_it_is(environment, monkeypatch, tmp_path):
    monkeypatch.setenv("GRIDPATROL_SECRET_KEY", "short")
    assert create_app(app_settings(tmp_path)).secret_key == "short"
    assert not (environment / "secret_key").exists()


# --- a test's settings come first ------------------------------------------------------------------

def test_a_key_given_in_the_settings_is_held_to_the_production_rule_too(environment, tmp_path):
    with pytest.raises(RuntimeError, match=r"GRIDPATROL_SECRET_KEY is too short \(5 characters\)"):
        create_app({**app_settings(tmp_path), "GRIDPATROL_ENV": "production", "GRIDPATROL_ID_KEY": ID_KEY,
                    "SECRET_KEY": "short"})


def test_an_app_given_both_keys_writes_nothing_into_var(environment, tmp_path):
    app = create_app({**app_settings(tmp_path), "SECRET_KEY": "test", "GRIDPATROL_ID_KEY": ID_KEY})
    assert app.secret_key == "test"
    assert not environment.exists()


def test_a_setting_given_is_not_read_from_the_environment(environment, monkeypatch, tmp_path):
    monkeypatch.setenv("GRIDPATROL_PAGE_SIZE", "twenty")  # would stop start-up, were it read
    app = create_app({**app_settings(tmp_path), "SECRET_KEY": "test", "GRIDPATROL_ID_KEY": ID_KEY,
                      "GRIDPATROL_PAGE_SIZE": 5})
    assert app.config["GRIDPATROL_PAGE_SIZE"] == 5
    monkeypatch.delenv("GRIDPATROL_PAGE_SIZE")
    monkeypatch.setenv("GRIDPATROL_UTC_OFFSET", "8 hours")
    with pytest.raises(RuntimeError, match="GRIDPATROL_UTC_OFFSET must look like"):
        create_app({**app_settings(tmp_path), "SECRET_KEY": "test", "GRIDPATROL_ID_KEY": ID_KEY})

"""Configuration from the environment, with defaults that run on a laptop.

Every setting has a ``GRIDPATROL_`` environment variable; `create_app(config)`
takes a mapping on top of it, which is how tests configure an app without
patching globals.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = Path(os.environ.get("GRIDPATROL_VAR_DIR", ROOT / "var"))


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise RuntimeError(f"{name} must be an integer, not {raw!r}") from None


def _local_secret() -> str:
    """A secret kept in var/secret_key, made on first use, for a server with no GRIDPATROL_SECRET_KEY."""
    path = VAR / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    VAR.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(32)
    try:
        with open(path, "x") as handle:  # "x": two processes starting at once keep the first one's
            handle.write(secret)
    except FileExistsError:
        return path.read_text().strip()
    return secret


def from_environment() -> dict:
    """The settings read from GRIDPATROL_* variables."""
    return {
        # sqlite:///var/gridpatrol.db by default; postgresql+psycopg://user@host/db in production
        "SQLALCHEMY_DATABASE_URI": os.environ.get("GRIDPATROL_DATABASE_URL") or f"sqlite:///{VAR / 'gridpatrol.db'}",
        # Sessions of the pages are signed with it; every process of one server must share it.
        "SECRET_KEY": os.environ.get("GRIDPATROL_SECRET_KEY") or _local_secret(),
        # The server's HLC node id (16 hex). Unset: each process makes its own (server/clock.py).
        "GRIDPATROL_NODE": os.environ.get("GRIDPATROL_NODE") or None,
        # How far ahead of the server's clock a pushed timestamp may be before the push gets clock_skew.
        "GRIDPATROL_MAX_DRIFT_SECONDS": _int("GRIDPATROL_MAX_DRIFT_SECONDS", 300),
        # Limits of one push: the body (after gzip decoding) and the number of changes.
        "GRIDPATROL_MAX_PUSH_BYTES": _int("GRIDPATROL_MAX_PUSH_BYTES", 8 * 1024 * 1024),
        "GRIDPATROL_MAX_PUSH_CHANGES": _int("GRIDPATROL_MAX_PUSH_CHANGES", 1000),
        # The largest page a pull may ask for, and the page when it asks for none.
        "GRIDPATROL_MAX_PULL_LIMIT": _int("GRIDPATROL_MAX_PULL_LIMIT", 1000),
        "GRIDPATROL_DEFAULT_PULL_LIMIT": _int("GRIDPATROL_DEFAULT_PULL_LIMIT", 500),
        "GRIDPATROL_PHOTO_DIR": os.environ.get("GRIDPATROL_PHOTO_DIR") or str(VAR / "photos"),
        # The largest photo an upload may declare (413 above it); the app makes 1920 px JPEGs of ~0.5 MB.
        "GRIDPATROL_MAX_PHOTO_BYTES": _int("GRIDPATROL_MAX_PHOTO_BYTES", 15 * 1024 * 1024),
    }

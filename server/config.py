"""Configuration from the environment, with defaults that run on a laptop.

Every setting has a ``GRIDPATROL_`` environment variable; `create_app(config)`
takes a mapping on top of it, which is how tests configure an app without
patching globals. This is the only module of the server that reads the
environment.
"""

from __future__ import annotations

import importlib.util
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from datetime import timedelta, timezone
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from shared.hlc import DEFAULT_MAX_DRIFT_S

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


def _local_secret(name: str = "secret_key", nbytes: int = 32) -> str:
    """A secret kept in var/<name> (hex), made on first use, for a server not given one in the environment.

    Hazard: several processes start at once (gunicorn's workers) and all find no file. Each writes its
    own candidate to a private temporary file and publishes it with link(), which fails if the name
    exists: the first one wins, and no process can ever read a file that is created but not yet written
    (an empty key would stop a worker from booting, and gunicorn with it).
    """
    path = VAR / name
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    VAR.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(nbytes)
    candidate = VAR / f".{name}.{os.getpid()}.{secrets.token_hex(4)}"
    try:
        # 0600: only the server's user reads it.
        with os.fdopen(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
            handle.write(secret)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(candidate, path)
        except FileExistsError:
            return path.read_text().strip()
    finally:
        candidate.unlink(missing_ok=True)
    return secret


def local_id_key() -> str:
    """The ID-number key kept in var/id_key (64 bytes, hex), for a server that is not in production."""
    return _local_secret("id_key", 64)


MIN_SECRET_KEY_LENGTH = 32
_MAKE_SECRET = "Make one with: python -c \"import secrets; print(secrets.token_hex(32))\""


def secret_key(environment: str, given: str | None = None) -> str:
    """The key that signs page sessions: ``given`` (a setting), GRIDPATROL_SECRET_KEY, or outside production one
    kept in var/secret_key.

    In production a missing, empty or short key is a start-up error, as a missing GRIDPATROL_ID_KEY is
    (server/privacy.py): a key made quietly in var/ differs from machine to machine, so sessions break
    behind a proxy, and it vanishes with the directory, logging everyone out on a redeploy.
    """
    given = given if given is not None else os.environ.get("GRIDPATROL_SECRET_KEY")
    if environment != "production":
        return given or _local_secret()
    raw = (given or "").strip()  # a key of blanks only is not set either
    if not raw:
        raise RuntimeError(
            "GRIDPATROL_SECRET_KEY is not set: in production the key that signs page sessions must come from the "
            f"configuration (at least {MIN_SECRET_KEY_LENGTH} characters; every server process needs the same one). "
            + _MAKE_SECRET)
    if len(raw) < MIN_SECRET_KEY_LENGTH:
        raise RuntimeError(
            f"GRIDPATROL_SECRET_KEY is too short ({len(raw)} characters): in production it must have at least "
            f"{MIN_SECRET_KEY_LENGTH}. " + _MAKE_SECRET)
    return given


def settings(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The app's settings: ``overrides`` (a test's, for one) on top of the GRIDPATROL_* variables.

    The overrides come first: a setting they give is never read from the environment, nor made (a
    test app that passes SECRET_KEY and GRIDPATROL_ID_KEY writes no key into var/). Start-up errors
    are RuntimeErrors naming the variable: a malformed number, GRIDPATROL_UTC_OFFSET or photo store
    (GRIDPATROL_BLOB_URL and GRIDPATROL_S3_*, parsed into GRIDPATROL_S3) anywhere, and in production
    a missing or short secret key, given or not.
    """
    overrides = dict(overrides or {})
    environment = overrides.get("GRIDPATROL_ENV") or os.environ.get("GRIDPATROL_ENV") or "development"
    values = {name: read() for name, read in _READERS.items() if name not in overrides}
    values.update(overrides)
    values["GRIDPATROL_ENV"] = environment
    values["SECRET_KEY"] = secret_key(environment, overrides.get("SECRET_KEY"))
    try:
        parse_offset(values["GRIDPATROL_UTC_OFFSET"])  # fail at start-up, not on the first page
    except ValueError as exc:
        raise RuntimeError(str(exc)) from None
    values["GRIDPATROL_S3"] = s3_settings(values)  # likewise: a wrong store fails here, not on the first photo
    return values


def demo_password() -> str | None:
    """One password for every demo user (GRIDPATROL_DEMO_PASSWORD), or None for random ones."""
    return os.environ.get("GRIDPATROL_DEMO_PASSWORD") or None


_OFFSET = re.compile(r"^([+-])(\d{2}):(\d{2})\Z")


def parse_offset(raw: str) -> timezone:
    """A fixed UTC offset such as +08:00 as a timezone; ValueError for anything else."""
    match = _OFFSET.match(raw) if isinstance(raw, str) else None
    if not match:
        raise ValueError(f"GRIDPATROL_UTC_OFFSET must look like +08:00, not {raw!r}")
    sign, hours, minutes = match.groups()
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    if delta >= timedelta(hours=24):
        raise ValueError(f"GRIDPATROL_UTC_OFFSET must be less than 24 hours, not {raw!r}")
    return timezone(-delta if sign == "-" else delta)


# --- the photo store ------------------------------------------------------------------------------

@dataclass(frozen=True)
class S3Settings:
    """Where photos live when GRIDPATROL_BLOB_URL names an S3 bucket (server/photos/s3.py).

    ``prefix`` is empty or ends with "/". A setting left None is found the standard boto3 way: the region and
    the keys from AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, ~/.aws, or the machine's role.
    """

    bucket: str
    prefix: str
    endpoint_url: str | None
    region: str | None
    access_key_id: str | None
    secret_access_key: str | None
    addressing_style: str


# S3's rules for a bucket name (what MinIO and Ceph RGW also take): 3-63 lowercase letters, digits, dots, hyphens.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
# A key prefix of plain path segments: it is put in front of every key the store writes.
_PREFIX_SEGMENT = re.compile(r"[A-Za-z0-9._-]{1,100}")
ADDRESSING_STYLES = ("path", "virtual", "auto")


def s3_settings(values: Mapping[str, Any]) -> S3Settings | None:
    """The S3 settings when GRIDPATROL_BLOB_URL is set (None: the folder GRIDPATROL_PHOTO_DIR); RuntimeError, naming
    the variable, for a malformed one, for half a key pair, or for boto3 missing."""
    raw = (values.get("GRIDPATROL_BLOB_URL") or "").strip()
    if not raw:
        return None
    url = urlsplit(raw)
    if url.scheme != "s3" or not url.netloc or url.query or url.fragment:
        raise RuntimeError(f"GRIDPATROL_BLOB_URL must look like s3://bucket or s3://bucket/prefix, not {raw!r}; "
                           "leave it unset to keep photos in the folder GRIDPATROL_PHOTO_DIR")
    if not _BUCKET.fullmatch(url.netloc) or ".." in url.netloc:
        raise RuntimeError(f"GRIDPATROL_BLOB_URL: {url.netloc!r} is not a bucket name (3-63 lowercase letters, "
                           "digits, dots and hyphens, starting and ending with a letter or digit)")
    segments = [segment for segment in url.path.split("/") if segment]
    if any(not _PREFIX_SEGMENT.fullmatch(s) or s.strip(".") == "" for s in segments) or "//" in url.path.rstrip("/"):
        raise RuntimeError(f"GRIDPATROL_BLOB_URL: {url.path!r} is not a key prefix (segments of letters, digits, "
                           "'.', '_' and '-', separated by single slashes)")
    endpoint = _optional(values, "GRIDPATROL_S3_ENDPOINT_URL")
    if endpoint is not None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise RuntimeError(f"GRIDPATROL_S3_ENDPOINT_URL must be an http:// or https:// address such as "
                               f"https://minio.example:9000, not {endpoint!r}")
    key_id = _optional(values, "GRIDPATROL_S3_ACCESS_KEY_ID")
    secret = _optional(values, "GRIDPATROL_S3_SECRET_ACCESS_KEY")
    if (key_id is None) != (secret is None):
        raise RuntimeError("GRIDPATROL_S3_ACCESS_KEY_ID and GRIDPATROL_S3_SECRET_ACCESS_KEY go together: set both, "
                           "or neither (boto3 then finds the keys itself: AWS_ACCESS_KEY_ID, ~/.aws, a role)")
    # MinIO and Ceph RGW answer at one address for every bucket (path style) unless set up with a wildcard domain.
    style = _optional(values, "GRIDPATROL_S3_ADDRESSING_STYLE") or ("path" if endpoint else "auto")
    if style not in ADDRESSING_STYLES:
        raise RuntimeError(f"GRIDPATROL_S3_ADDRESSING_STYLE must be one of {', '.join(ADDRESSING_STYLES)}, "
                           f"not {style!r}")
    if importlib.util.find_spec("boto3") is None:
        raise RuntimeError("GRIDPATROL_BLOB_URL names an S3 bucket, but boto3 is not installed: "
                           "pip install 'gridpatrol[s3]'")
    return S3Settings(bucket=url.netloc, prefix="".join(f"{segment}/" for segment in segments),
                      endpoint_url=endpoint, region=_optional(values, "GRIDPATROL_S3_REGION"), access_key_id=key_id,
                      secret_access_key=secret, addressing_style=style)


def _optional(values: Mapping[str, Any], name: str) -> str | None:
    raw = values.get(name)
    return raw.strip() or None if isinstance(raw, str) else None


def _text(name: str, default: str | None = None) -> Callable[[], str | None]:
    """A reader of a text setting (an empty variable is an unset one)."""
    return lambda: os.environ.get(name) or default


# Each setting and how it is read from the environment; a setting the app is given is not read.
# (SECRET_KEY and GRIDPATROL_ENV are settled in `settings`: they depend on each other.)
_READERS: dict[str, Callable[[], Any]] = {
    # sqlite:///var/gridpatrol.db by default; postgresql+psycopg://user@host/db in production
    "SQLALCHEMY_DATABASE_URI": lambda: (os.environ.get("GRIDPATROL_DATABASE_URL")
                                        or f"sqlite:///{VAR / 'gridpatrol.db'}"),
    # The server's HLC node id (16 hex). Unset: each process makes its own (server/clock.py).
    "GRIDPATROL_NODE": _text("GRIDPATROL_NODE"),
    # How far ahead of the server's clock a pushed timestamp may be before the push gets clock_skew.
    "GRIDPATROL_MAX_DRIFT_SECONDS": lambda: _int("GRIDPATROL_MAX_DRIFT_SECONDS", DEFAULT_MAX_DRIFT_S),
    # Limits of one push: the body (after gzip decoding) and the number of changes.
    "GRIDPATROL_MAX_PUSH_BYTES": lambda: _int("GRIDPATROL_MAX_PUSH_BYTES", 8 * 1024 * 1024),
    "GRIDPATROL_MAX_PUSH_CHANGES": lambda: _int("GRIDPATROL_MAX_PUSH_CHANGES", 1000),
    # The largest page a pull may ask for, and the page when it asks for none.
    "GRIDPATROL_MAX_PULL_LIMIT": lambda: _int("GRIDPATROL_MAX_PULL_LIMIT", 1000),
    "GRIDPATROL_DEFAULT_PULL_LIMIT": lambda: _int("GRIDPATROL_DEFAULT_PULL_LIMIT", 500),
    "GRIDPATROL_PHOTO_DIR": lambda: os.environ.get("GRIDPATROL_PHOTO_DIR") or str(VAR / "photos"),
    # Photos in an S3-compatible object store instead of the folder: s3://bucket or s3://bucket/prefix (AWS S3,
    # MinIO, Ceph RGW; docs/operations.md). Unset: the folder above. The settings below are checked at start-up.
    "GRIDPATROL_BLOB_URL": _text("GRIDPATROL_BLOB_URL", ""),
    # The store's address (https://minio.example:9000); unset: AWS S3 in the region.
    "GRIDPATROL_S3_ENDPOINT_URL": _text("GRIDPATROL_S3_ENDPOINT_URL", ""),
    # The region; unset: boto3's (AWS_DEFAULT_REGION, ~/.aws/config).
    "GRIDPATROL_S3_REGION": _text("GRIDPATROL_S3_REGION", ""),
    # The keys, both or neither; unset: boto3's (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, ~/.aws, a role).
    "GRIDPATROL_S3_ACCESS_KEY_ID": _text("GRIDPATROL_S3_ACCESS_KEY_ID", ""),
    "GRIDPATROL_S3_SECRET_ACCESS_KEY": _text("GRIDPATROL_S3_SECRET_ACCESS_KEY", ""),
    # path (https://host/bucket/key), virtual (https://bucket.host/key) or auto; unset: path with an endpoint,
    # else auto.
    "GRIDPATROL_S3_ADDRESSING_STYLE": _text("GRIDPATROL_S3_ADDRESSING_STYLE", ""),
    # The largest photo an upload may declare (413 above it); the app makes 1920 px JPEGs of ~0.5 MB.
    "GRIDPATROL_MAX_PHOTO_BYTES": lambda: _int("GRIDPATROL_MAX_PHOTO_BYTES", 15 * 1024 * 1024),
    # Seals resident ID numbers at rest (AES-SIV, server/privacy.py): 32, 48 or 64 bytes as hex. Every
    # process of one server must share it, and losing it loses the numbers. Required in production;
    # elsewhere unset means a key kept in var/id_key. Generate one with: python -c
    # "import secrets; print(secrets.token_hex(64))"
    "GRIDPATROL_ID_KEY": _text("GRIDPATROL_ID_KEY"),
    # The case page's map tiles (e.g. https://tiles.example/{z}/{x}/{y}.png); empty: a plain grey map, offline.
    "GRIDPATROL_TILE_URL": _text("GRIDPATROL_TILE_URL", ""),
    "GRIDPATROL_TILE_ATTRIBUTION": _text("GRIDPATROL_TILE_ATTRIBUTION", ""),
    # The district's time on the pages: a fixed offset (China keeps no daylight saving).
    "GRIDPATROL_UTC_OFFSET": _text("GRIDPATROL_UTC_OFFSET", "+08:00"),
    # Cases per page of the queue.
    "GRIDPATROL_PAGE_SIZE": lambda: _int("GRIDPATROL_PAGE_SIZE", 20),
    # Where log-in throttling counts failures (Flask-Limiter storage URI): memory:// counts per process;
    # several processes or machines share one count in Redis, e.g. redis://127.0.0.1:6379/0.
    "GRIDPATROL_RATELIMIT_STORAGE": _text("GRIDPATROL_RATELIMIT_STORAGE", "memory://"),
    # Failed log-ins allowed per minute, per user name and per address; the next is answered 429.
    "GRIDPATROL_LOGIN_FAILURES_PER_MINUTE": lambda: _int("GRIDPATROL_LOGIN_FAILURES_PER_MINUTE", 10),
    # How many proxies in front of the server set X-Forwarded-For/-Proto/-Host (werkzeug's ProxyFix trusts that
    # many hops); 0, the default: none, the peer's address is the client's. Behind nginx, 1.
    "GRIDPATROL_PROXY_HOPS": lambda: _int("GRIDPATROL_PROXY_HOPS", 0),
}

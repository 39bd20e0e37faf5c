"""The field app's core: the store, the photo queue, the log-in, the settings, without any UI.

The Kivy screens (mobile/ui/) never touch the store, the transport or sync
directly. They hold one `AppCore` for the life of the app, one `SyncRunner`
over it, and call the presenters (mobile/presenters.py) that read and write
through it. Everything here is plain Python, tested without a window, and
imports no Kivy.

What `AppCore` owns, in ``data_dir``:

* ``gridpatrol.db``: the tablet's replica (mobile/store.py): records, the
  outbox, cursors, rejections and meta. Meta also holds what this module
  keeps: ``settings`` (language, photo size, server URL), ``last_location``,
  ``last_sync`` and ``last_success_ms``.
* ``photos/``: the photo files and thumbnails of the photo queue
  (mobile/photos.py), whose rows live in the same SQLite file.

Hazard: a re-log-in after the token was revoked (401). The store keeps the
outbox, the photo queue and the rejections across a log-in: `login` only
replaces the token, the user and the buckets, so every capture made while
logged out goes out with the next sync. The one refusal: a *different* user
logging in while the previous user's captures have not synced, because they
would be pushed under the new user's token (the server would refuse their
case actions and attribute their events to the wrong device). That user must
sync first, or an admin must deal with the tablet.

Hazard: login is online and slow. It is a plain blocking call (the
transport retries with backoff); the UI runs it off the UI thread, e.g. with
`mobile.background.run_off_ui`.
"""

from __future__ import annotations

import logging
import os
import platform
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from shared.hlc import system_ms
from shared.records import bucket_grid

from .evidence import DEFAULT_BUDGET_MB, cache_use, fetch_full, fetch_thumbnails
from .background import LAST_SUCCESS_KEY, LAST_SYNC_KEY, SyncOutcome, SyncRunner, load_outcome, run_off_ui
from .location import DesktopLocation, LocationProvider, PlyerLocation, on_android, track_provider
from .photos import CaptureSettings, PhotoQueue
from .store import Store
from .transport import HttpError, HttpTransport, Rejected, TransportError, Unauthorized

__all__ = [
    "AppCore", "Settings", "GridInfo", "LoginFailed", "SyncRunner", "SyncOutcome", "run_off_ui",
    "LANGUAGES", "DB_NAME", "PHOTO_DIR",
]

DB_NAME = "gridpatrol.db"
PHOTO_DIR = "photos"
LANGUAGES = ("zh", "en")
SETTINGS_KEY = "settings"
log = logging.getLogger(__name__)
LOGIN_NAME_KEY = "login_username"  # the user name of the last successful log-in (AppCore.login)
PHOTO_MAX_PX_RANGE = (320, 4096)
PHOTO_CACHE_MB_RANGE = (5, 2000)  # the photos fetched for verification: at least a few cases' worth, at most 2 GB
PATROL_INTERVAL_RANGE = (1, 600)  # seconds between two track points, at most
PATROL_RESUME_RANGE = (0, 24 * 60)  # minutes


@dataclass(frozen=True)
class Settings:
    """What the worker can set: the UI language, the longest edge of a stored photo, the server's URL."""

    language: str = "zh"
    photo_max_px: int = CaptureSettings().max_edge
    server_url: str | None = None
    photo_cache_mb: int = DEFAULT_BUDGET_MB  # the photos of the worker's cases fetched to verify offline
    last_known_max_minutes: int = 10  # an older last known position is not offered to a report
    # Patrols (mobile/patrol.py): a track point at most every patrol_interval_s; an open patrol found at start-up
    # resumes when the app was gone at most patrol_resume_minutes, else it is closed (closed_by recovery).
    patrol_interval_s: int = 10
    patrol_resume_minutes: int = 15


@dataclass(frozen=True)
class GridInfo:
    """One of the worker's grids, from the synced reference data (name and community None until pulled)."""

    code: str
    name: str | None
    community: str | None
    street: str | None = None
    district: str | None = None

    @property
    def bucket(self) -> str:
        """The grid's bucket: ``grid:<code>``."""
        return f"grid:{self.code}"


class LoginFailed(Exception):
    """A log-in that did not succeed: ``message`` is for people (English), ``code`` for the UI to translate.

    Codes: ``bad_url``, ``wrong_password``, ``unreachable``, ``server_error``, ``refused``,
    ``unsynced_other_user``, ``missing``.
    """

    def __init__(self, message: str, code: str = "error"):
        super().__init__(message)
        self.message = message
        self.code = code


def _revoke_quietly(transport: Any) -> None:
    """Revoke the token a transport just received; a server without the call, or no network, leaves it listed
    for an admin to revoke (the log-in is refused either way)."""
    revoke = getattr(transport, "revoke", None)
    if not callable(revoke):
        return
    try:
        revoke()
    except TransportError:
        log.warning("could not revoke the token of a refused log-in; an admin can revoke the device")


def default_device_name(node: str) -> str:
    """A tablet's name a person can tell apart: its model (or the computer's name) and four hex digits of its node."""
    model = ""
    if on_android():
        try:
            from jnius import autoclass  # pyjnius comes with python-for-android

            build = autoclass("android.os.Build")
            model = f"{build.MANUFACTURER} {build.MODEL}".strip()
        except Exception:  # noqa: BLE001 - any failure: the model is only a help
            model = ""
    if not model:
        model = platform.node() or "tablet"
    return f"{model[:40]} · {node[:4]}"


def _server_url(text: str | None) -> str:
    """The server address as typed, stripped; LoginFailed unless it looks like http(s)://host."""
    url = (text or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or " " in url:
        raise LoginFailed("The server address must look like https://example.org", "bad_url")
    return url


def parse_provisioning(text: str | None) -> tuple[str, str] | None:
    """(server address, code) from the text of a provisioning QR code (gridpatrol://provision?server=…&code=…);
    None for anything else (a code typed by hand)."""
    parts = urlsplit((text or "").strip())
    if parts.scheme != "gridpatrol" or parts.netloc != "provision":
        return None
    query = parse_qs(parts.query)
    server, code = (query.get("server") or [""])[0], (query.get("code") or [""])[0]
    return (server, code) if server and code else None


def _default_transport(server_url: str, token: str | None) -> HttpTransport:
    """The real transport: HttpTransport with its defaults (timeouts, retries, gzip)."""
    return HttpTransport(server_url, token)


def _default_location(store: Store) -> LocationProvider:
    """GPS through plyer on Android; elsewhere a recorded or simulated track (GRIDPATROL_TRACK: a file of points,
    or ``walk``) when one is given, else the last known position."""
    if on_android():
        provider = PlyerLocation()
        if provider.start():
            return provider
    track = os.environ.get("GRIDPATROL_TRACK")
    if track:
        return track_provider(track, system_ms)
    return DesktopLocation(store)


class AppCore:
    """The app's state and services: store, photo queue, log-in, settings, grids. Thread-safe as the store is."""

    def __init__(self, data_dir: str | os.PathLike[str], *,
                 transport_factory: Callable[[str, str | None], Any] | None = None,
                 location_provider: LocationProvider | None = None,
                 now_ms: Callable[[], int] | None = None):
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.transport_factory = transport_factory or _default_transport
        # The store's physical clock: reported_at, photo times and outcomes all read it.
        self._physical = now_ms or system_ms
        self.store = Store(self.data_dir / DB_NAME, physical=self._physical)
        try:
            self.photos = PhotoQueue(self.store, self.data_dir / PHOTO_DIR,
                                     CaptureSettings(max_edge=self.settings.photo_max_px))
        except BaseException:
            self.store.close()
            raise
        self.location_provider = location_provider if location_provider is not None else _default_location(self.store)
        # Presenters' memos of derived data (folded cases), keyed by presenter; never a source of truth.
        self.cache: dict[str, Any] = {}

    # --- time -------------------------------------------------------------------------------------

    def now_ms(self) -> int:
        """The corrected device time in Unix ms (the clock offset learned from the server applied)."""
        return self.store.physical_ms()

    # --- log-in -----------------------------------------------------------------------------------

    @property
    def needs_login(self) -> bool:
        """Whether there is no device token (never logged in, or the server refused it)."""
        return not self.store.token

    @property
    def user(self) -> dict[str, Any] | None:
        """The user of the last log-in: {id, name, role}; kept after a 401, so captures go on."""
        return self.store.user

    @property
    def user_id(self) -> str | None:
        """The id of the user of the last log-in, or None."""
        user = self.user
        return user.get("id") if isinstance(user, dict) else None

    @property
    def role(self) -> str | None:
        """The role of the user of the last log-in (shared/roles.py: worker, supervisor, unit, admin), or None."""
        user = self.user
        return user.get("role") if isinstance(user, dict) else None

    def login(self, server_url: str, username: str, password: str, device_name: str | None = None) -> None:
        """Log this device in (online, blocking); raises LoginFailed with a message for people.

        Keeps every unsynced capture: only the token, user and buckets are replaced.
        """
        _server_url(server_url)
        if not username or not password:
            raise LoginFailed("Enter a user name and a password", "missing")
        # Another user over unsynced captures is refused *before* the server is asked: a log-in registers a
        # device and hands out a token, and the API has no call to take one back, so asking first would
        # leave a valid token of the refused user behind on the server. The user name of the last log-in
        # is kept for this (a store from before it was kept is checked after the answer, below).
        last_name = self.store.setting(LOGIN_NAME_KEY)
        if self._unsynced_of_another() and isinstance(last_name, str) and last_name != username.strip():
            raise LoginFailed("Captures of the previous user have not synced yet; that user must log in and "
                              "sync first", "unsynced_other_user")
        device_name = device_name or default_device_name(self.store.node)
        self._log_in(server_url, lambda transport: transport.login(username, password, device_name, self.store.node),
                     "wrong_password", "Wrong user name or password", username.strip())

    def login_with_code(self, server_url: str, code: str, device_name: str | None = None) -> None:
        """Log this device in with a one-time code an admin gave (or the text of its QR code); as `login`.

        The code names the user only in the server's answer, so the check for another user's unsynced
        captures comes after it: a refused log-in then leaves a device on the server for an admin to revoke.
        """
        link = parse_provisioning(code)
        if link is not None:
            server_url, code = link
        _server_url(server_url)
        code = (code or "").strip()
        if not code:
            raise LoginFailed("Enter the code an administrator gave you", "missing")
        device_name = device_name or default_device_name(self.store.node)
        self._log_in(server_url, lambda transport: transport.login_with_code(code, device_name, self.store.node),
                     "bad_code", "This code is wrong, used or expired: ask an administrator for a new one", None)

    def _unsynced_of_another(self) -> bool:
        return bool(self.user_id) and self.store.counts().unsynced > 0

    def _log_in(self, server_url: str, ask: Callable[[Any], dict], refused_code: str, refused_text: str,
                username: str | None) -> None:
        url = _server_url(server_url)
        previous = self.user_id
        try:
            transport = self.transport_factory(url, None)
        except (ValueError, TransportError) as exc:
            raise LoginFailed(f"The server address is not usable: {exc}", "bad_url") from None
        try:
            try:
                answer = ask(transport)
            except Unauthorized:
                raise LoginFailed(refused_text, refused_code) from None
            except Rejected as exc:
                raise LoginFailed(f"The server refused the log-in ({exc.status}): {exc.message}. "
                                  "Is this the GridPatrol server's address?", "refused") from None
            except HttpError as exc:
                raise LoginFailed(f"The server had a problem ({exc.status}); try again later",
                                  "server_error") from None
            except TransportError as exc:
                raise LoginFailed(f"Cannot reach the server at {url}: check the address and the network ({exc})",
                                  "unreachable") from None
            token, user = answer.get("token"), answer.get("user")
            if not isinstance(token, str) or not token or not isinstance(user, dict) or not user.get("id"):
                raise LoginFailed("The server's answer is not a GridPatrol log-in", "refused")
            if previous and previous != user["id"] and self.store.counts().unsynced:
                # For a store whose last log-in's user name is not known (an older app's), and for codes. The
                # token just issued is not kept, so it is revoked at once (an admin sees the device revoked).
                _revoke_quietly(transport)
                raise LoginFailed("Captures of the previous user have not synced yet; that user must log in and "
                                  "sync first", "unsynced_other_user")
        finally:
            close = getattr(transport, "close", None)
            if callable(close):
                close()
        buckets = [b for b in answer.get("buckets") or [] if isinstance(b, str)]
        self.store.save_login(url, token, user, buckets)
        # A code's answer names no user name: none is kept, and the check after the answer guards the next log-in.
        self.store.save_setting(LOGIN_NAME_KEY, username)
        self.save_settings(server_url=url)

    def logout(self) -> None:
        """Forget the token (not the user or anything captured): the next sync asks for a log-in."""
        self.store.forget_token()

    def transport(self) -> Any:
        """A transport for the stored server and token (for sync)."""
        return self.transport_factory(self.store.server_url or self.settings.server_url or "", self.store.token)

    # --- settings ---------------------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        """The worker's settings (defaults for what was never set)."""
        stored = self.store.setting(SETTINGS_KEY) or {}
        known = {f.name for f in fields(Settings)}
        settings = Settings(**{k: v for k, v in stored.items() if k in known})
        if settings.server_url is None and self.store.server_url:
            settings = replace(settings, server_url=self.store.server_url)
        return settings

    def save_settings(self, **changes: Any) -> Settings:
        """Change some settings; raises ValueError for an unknown name or a value out of range."""
        known = {f.name for f in fields(Settings)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(unknown)}")
        if "language" in changes and changes["language"] not in LANGUAGES:
            raise ValueError(f"language must be one of {LANGUAGES}")
        if "photo_max_px" in changes:
            size = changes["photo_max_px"]
            low, high = PHOTO_MAX_PX_RANGE
            if isinstance(size, bool) or not isinstance(size, int) or not low <= size <= high:
                raise ValueError(f"photo_max_px must be an integer from {low} to {high}")
        for name, (low, high) in (("patrol_interval_s", PATROL_INTERVAL_RANGE),
                                  ("patrol_resume_minutes", PATROL_RESUME_RANGE)):
            if name in changes:
                value = changes[name]
                if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                    raise ValueError(f"{name} must be an integer from {low} to {high}")
        if "server_url" in changes and changes["server_url"] is not None:
            changes["server_url"] = str(changes["server_url"]).strip()
        if "last_known_max_minutes" in changes:
            minutes = changes["last_known_max_minutes"]
            if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= 24 * 60:
                raise ValueError("last_known_max_minutes must be an integer from 1 to 1440")
        if "photo_cache_mb" in changes:
            size = changes["photo_cache_mb"]
            low, high = PHOTO_CACHE_MB_RANGE
            if isinstance(size, bool) or not isinstance(size, int) or not low <= size <= high:
                raise ValueError(f"photo_cache_mb must be an integer from {low} to {high}")
        settings = replace(self.settings, **changes)
        self.store.save_setting(SETTINGS_KEY, asdict(settings))
        self.photos.settings = replace(self.photos.settings, max_edge=settings.photo_max_px)
        return settings

    # --- the evidence of the worker's cases (mobile/evidence.py) ----------------------------------

    def fetch_evidence(self, transport: Any, notify: Callable[[str, int, int], None] | None = None):
        """Fetch the thumbnails of the worker's open cases within the budget (the sync's last step)."""
        return fetch_thumbnails(self.store, self.photos, transport, self.user_id,
                                budget_bytes=self.settings.photo_cache_mb * 1024 * 1024, notify=notify)

    def fetch_full_photo(self, sha256: str) -> str:
        """A full photo, fetched now if the tablet lacks it (online, blocking); its path. Raises TransportError
        (offline, or the server has none) or ValueError (the photo cache is full)."""
        transport = self.transport()
        try:
            return str(fetch_full(self.store, self.photos, transport, sha256,
                                  budget_bytes=self.settings.photo_cache_mb * 1024 * 1024))
        finally:
            close = getattr(transport, "close", None)
            if callable(close):
                close()

    def photo_cache_use(self) -> int:
        """The bytes of photos fetched from the server kept on this tablet."""
        return cache_use(self.store)

    # --- reference data ---------------------------------------------------------------------------

    def buckets(self) -> list[str]:
        """The buckets this device pulls: the last pull's (the server's word), else the log-in's."""
        cursors = self.store.cursors()
        if cursors:
            return sorted(cursors)
        return list(self.store.setting("buckets") or [])

    def grids(self) -> list[GridInfo]:
        """The worker's grids, by code, named from the synced grid records."""
        codes = sorted({code for code in (bucket_grid(b) for b in self.buckets()) if code})
        known: dict[str, dict[str, Any]] = {}
        for _id, _bucket, state in self.store.states("grid"):
            values = {name: write[0] for name, write in state.items()}
            if isinstance(values.get("code"), str):
                known[values["code"]] = values
        return [GridInfo(code, known.get(code, {}).get("name"), known.get(code, {}).get("community"),
                         known.get(code, {}).get("street"), known.get(code, {}).get("district"))
                for code in codes]

    def categories(self) -> list[dict[str, Any]]:
        """The plain values of every live category record."""
        return [{name: write[0] for name, write in state.items()} for _id, _b, state in self.store.states("category")]

    # --- sync outcome -----------------------------------------------------------------------------

    def last_sync(self) -> SyncOutcome | None:
        """The outcome of the last sync, kept across restarts."""
        return load_outcome(self.store.setting(LAST_SYNC_KEY))

    def last_success_ms(self) -> int | None:
        """When the last sync that ran to the end finished (Unix ms), or None."""
        value = self.store.setting(LAST_SUCCESS_KEY)
        return value if isinstance(value, int) else None

    # --- lifetime ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop GPS (if any) and close the store. Stop the SyncRunner first."""
        stop = getattr(self.location_provider, "stop", None)
        if callable(stop):
            stop()
        self.store.close()

    def __enter__(self) -> "AppCore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


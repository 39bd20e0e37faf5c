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

import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from shared.hlc import system_ms
from shared.records import bucket_grid

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
LOGIN_NAME_KEY = "login_username"  # the user name of the last successful log-in (AppCore.login)
PHOTO_MAX_PX_RANGE = (320, 4096)
PATROL_INTERVAL_RANGE = (1, 600)  # seconds between two track points, at most
PATROL_RESUME_RANGE = (0, 24 * 60)  # minutes


@dataclass(frozen=True)
class Settings:
    """What the worker can set: the UI language, the longest edge of a stored photo, the server's URL."""

    language: str = "zh"
    photo_max_px: int = CaptureSettings().max_edge
    server_url: str | None = None
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

    def login(self, server_url: str, username: str, password: str, device_name: str = "tablet") -> None:
        """Log this device in (online, blocking); raises LoginFailed with a message for people.

        Keeps every unsynced capture: only the token, user and buckets are replaced.
        """
        url = (server_url or "").strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or " " in url:
            raise LoginFailed("The server address must look like https://example.org", "bad_url")
        if not username or not password:
            raise LoginFailed("Enter a user name and a password", "missing")
        # Another user over unsynced captures is refused *before* the server is asked: a log-in registers a
        # device and hands out a token, and the API has no call to take one back, so asking first would
        # leave a valid token of the refused user behind on the server. The user name of the last log-in
        # is kept for this (a store from before it was kept is checked after the answer, below).
        previous = self.user_id
        unsynced = bool(previous) and self.store.counts().unsynced > 0
        last_name = self.store.setting(LOGIN_NAME_KEY)
        if unsynced and isinstance(last_name, str) and last_name != username.strip():
            raise LoginFailed("Captures of the previous user have not synced yet; that user must log in and "
                              "sync first", "unsynced_other_user")
        try:
            transport = self.transport_factory(url, None)
        except (ValueError, TransportError) as exc:
            raise LoginFailed(f"The server address is not usable: {exc}", "bad_url") from None
        try:
            answer = transport.login(username, password, device_name, self.store.node)
        except Unauthorized:
            raise LoginFailed("Wrong user name or password", "wrong_password") from None
        except Rejected as exc:
            raise LoginFailed(f"The server refused the log-in ({exc.status}): {exc.message}. "
                              "Is this the GridPatrol server's address?", "refused") from None
        except HttpError as exc:
            raise LoginFailed(f"The server had a problem ({exc.status}); try again later", "server_error") from None
        except TransportError as exc:
            raise LoginFailed(f"Cannot reach the server at {url}: check the address and the network ({exc})",
                              "unreachable") from None
        finally:
            close = getattr(transport, "close", None)
            if callable(close):
                close()
        token, user = answer.get("token"), answer.get("user")
        if not isinstance(token, str) or not token or not isinstance(user, dict) or not user.get("id"):
            raise LoginFailed("The server's answer is not a GridPatrol log-in", "refused")
        if previous and previous != user["id"] and self.store.counts().unsynced:
            # Only for a store whose last log-in's user name is not known (an older app's). The token just
            # issued is not kept; the server lists the device for an admin to revoke.
            raise LoginFailed("Captures of the previous user have not synced yet; that user must log in and "
                              "sync first", "unsynced_other_user")
        buckets = [b for b in answer.get("buckets") or [] if isinstance(b, str)]
        self.store.save_login(url, token, user, buckets)
        self.store.save_setting(LOGIN_NAME_KEY, username.strip())
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
        settings = replace(self.settings, **changes)
        self.store.save_setting(SETTINGS_KEY, asdict(settings))
        self.photos.settings = replace(self.photos.settings, max_edge=settings.photo_max_px)
        return settings

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


"""Presenters: what each screen shows and does, as plain Python the tests drive without a window.

No business rule lives in a widget. A screen asks its presenter for a view
(a frozen dataclass of plain values) and calls its presenter's methods for
what the worker does. Presenters are language-free: they answer codes
(status ``"returned"``, source ``"gps"``, error code ``"too_long"``), never
translated labels; the UI translates them (mobile/i18n.py). Names of
reference data (grid, category) are data and come as stored, with
``name_en`` where the reference data has one.

Everything here is local and instant: reads and writes go to the tablet's
store, never to the network, so every screen works offline for days. Sync
(mobile/background.py) moves what was written here later.

Hazard: a half-saved capture. `ReportPresenter.save` checks every input
first and raises `InputError` before writing anything; then it writes the
event and, for a micro event handled on the spot, its ``handle_on_spot``
case action, in one store transaction (`Store.write_many`): both or neither.

Hazard: a slow "my cases" list. A worker's tablet may hold thousands of
events. `CasesPresenter.rows` reads the worker's events and all their case
actions in two indexed statements (`Store.states`, `Store.children`), groups the
actions by event in one pass and folds each case once, and again only when its records
changed (a memo on the AppCore): no query per row.

Hazard: a status the tablet computes differently from the server. The
status is never stored: it is `shared.case.fold_case` over the event and its
case actions, the same fold the server's pages run, so after a sync both show
the same status. Before it, the fold applies the worker's own actions (so the
same step is not offered twice), but the case page shows them as pending,
beside the status the server holds without them (`CaseView.server_status`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

from shared.case import Action, CaseState, available_actions, fold_case, is_overdue
from shared.hlc import HLC, HLCError, format_ms
from shared.records import NO_LOCATION_REASONS, ValidationError, grid_bucket

from .app_core import AppCore, GridInfo, SyncOutcome, SyncRunner
from .evidence import remote_path
from .limits import ACTION_PHOTOS_MAX, ADDRESS_MAX, DESCRIPTION_MAX, NOTE_MAX, PHOTOS_MAX
from .location import (LAST_LOCATION_KEY, NO_READING, GridOutline, LocationReading, MapTilesError, MBTiles,
                       grid_outline, reading_dict, reading_from)
from .photos import prepare_photo
from .store import Counts, Rejection
from .transport import Rejected, TransportError

__all__ = [
    "InputError", "HomePresenter", "HomeView", "ReportPresenter", "CategoryChoice", "CasesPresenter", "CaseRow",
    "CasePresenter", "CaseView", "TimelineRow", "PhotoRef", "SyncPresenter", "RejectionRow", "SyncCounts",
    "Refusal", "sync_state", "refusal_of", "resend_refused", "discard_refused", "MapArea", "MAP_TILES_KEY",
    "map_tiles_path", "set_map_tiles",
]

log = logging.getLogger(__name__)


class InputError(ValueError):
    """An input the worker must correct: ``field`` names the form field, ``code`` says what is wrong.

    Codes: ``required``, ``too_long``, ``unknown`` (not one of the choices), ``not_micro`` (handled on the
    spot, but the category is not on the micro-event list), ``not_allowed`` (handled on the spot by a role
    that may not), ``invalid``, ``too_many``, ``not_an_image``, ``not_logged_in``, ``not_awaiting`` (the
    case does not wait for this worker's verification), ``not_found``.
    """

    def __init__(self, field: str, code: str, detail: str | None = None):
        super().__init__(f"{field}: {code}" + (f" ({detail})" if detail else ""))
        self.field = field
        self.code = code
        self.detail = detail


def _plain(state: Mapping[str, tuple[Any, str]]) -> dict[str, Any]:
    """A record state's plain values."""
    return {name: write[0] for name, write in state.items()}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _reason(value: Any) -> str | None:
    """A no-location reason the contract knows, else None (a pulled record is data, not a message key)."""
    return value if value in NO_LOCATION_REASONS else None


def _hlc_time(hlc: str) -> str | None:
    """The ISO 8601 UTC wall time of an HLC, or None when it is not one."""
    try:
        return format_ms(HLC.parse(hlc).wall_ms)
    except (HLCError, ValueError, OverflowError, OSError):
        return None


def _offered(state: CaseState, event: Mapping[str, Any], user_id: str | None, role: str | None) -> tuple[str, ...]:
    """The case actions the user may take on the case now: those the role may push that the fold would apply.

    The tablet offers what this answers and nothing else, so it never offers what the server's fold
    would refuse; the rules stay in shared/case.py and shared/roles.py.
    """
    if not user_id or not role:
        return ()
    return available_actions(state, role, actor=user_id, reporter=_text(event.get("reporter")))


def _check_text(field: str, value: Any, limit: int, *, required: bool) -> str | None:
    """A trimmed text input, or InputError (required, too_long, invalid)."""
    if value is None:
        if required:
            raise InputError(field, "required")
        return None
    if not isinstance(value, str) or "\x00" in value:
        raise InputError(field, "invalid")
    text = value.strip()
    if not text:
        if required:
            raise InputError(field, "required")
        return None
    if len(text) > limit:
        raise InputError(field, "too_long", f"{len(text)} > {limit}")
    return text


# --- where a record stands ------------------------------------------------------------------------

@dataclass(frozen=True)
class Refusal:
    """Why the server refused a record's change: its code (None from an older server) and its own words."""

    code: str | None
    reason: str
    at: str


def refusal_of(rejection: Rejection | None) -> Refusal | None:
    """A stored rejection as a screen shows it."""
    return Refusal(rejection.code, rejection.reason, rejection.at) if rejection is not None else None


def sync_state(pending: bool, refusal: Refusal | Rejection | None) -> str:
    """Where a record stands: ``refused`` (the server said no; the worker's input is kept), ``local`` (saved on
    the tablet only, not yet sent or acknowledged) or ``synced`` (the server holds it)."""
    return "refused" if refusal is not None else "local" if pending else "synced"


def resend_refused(core: AppCore, kind: str, record_id: str) -> int:
    """Send a refused record again, as the worker mended it or as it is; returns the fields that wait to go."""
    return core.store.resend_refused(kind, record_id)


def discard_refused(core: AppCore, kind: str, record_id: str) -> bool:
    """Give up a refused record's local writes: it goes back to the server's state at the next sync, or away
    where the server never had it (then its photos go too, unless another record refers to them)."""
    record = core.store.get(kind, record_id)
    photos = record.values.get("photos") if record is not None else None
    removed = core.store.discard_refused(kind, record_id)
    if removed and isinstance(photos, list):
        for sha in photos:
            if isinstance(sha, str):
                core.photos.discard(sha)  # kept when a record still refers to it
    return removed


# --- reference data ------------------------------------------------------------------------------

@dataclass(frozen=True)
class CategoryChoice:
    """An event category the worker may pick; ``micro``: on the micro-event list (handled on the spot)."""

    code: str
    name: str
    name_en: str | None
    micro: bool
    default_unit: str | None = None
    deadline_hours: int | None = None


def _categories(core: AppCore) -> dict[str, dict[str, Any]]:
    """The live categories' values by code."""
    return {values["code"]: values for values in core.categories() if isinstance(values.get("code"), str)}


def _choice(values: Mapping[str, Any]) -> CategoryChoice:
    return CategoryChoice(values["code"], _text(values.get("name")) or values["code"], _text(values.get("name_en")),
                          values.get("micro") is True, _text(values.get("default_unit")),
                          values.get("deadline_hours") if isinstance(values.get("deadline_hours"), int) else None)


# --- Home ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HomeView:
    """The Home screen: who is logged in, their grids, what waits to sync, the last sync."""

    user_name: str | None
    grids: list[GridInfo]
    unsynced_records: int
    unsynced_photos: int
    rejected: int
    last_sync: SyncOutcome | None
    last_success_ms: int | None
    needs_login: bool = False
    awaiting_me: int = 0  # cases waiting for this worker's verification


class HomePresenter:
    """The Home screen's data."""

    def __init__(self, core: AppCore):
        self.core = core

    def view(self) -> HomeView:
        """Everything Home shows, read from the store (offline)."""
        core = self.core
        user = core.user or {}
        counts = core.store.counts()
        awaiting = sum(1 for row in CasesPresenter(core).rows() if row.awaiting_me)
        return HomeView(
            user_name=_text(user.get("name")),
            grids=core.grids(),
            unsynced_records=counts.unsynced,
            unsynced_photos=core.photos.waiting()[0],
            rejected=counts.rejected,
            last_sync=core.last_sync(),
            last_success_ms=core.last_success_ms(),
            needs_login=core.needs_login,
            awaiting_me=awaiting,
        )


class _PhotoForm:
    """A form that takes photos (the report form, the verification): it remembers the ones it took,
    so that removing one or abandoning the form (`discard_unsaved`) frees them cheaply."""

    core: AppCore

    def __init__(self, core: AppCore):
        self.core = core
        self._unsaved: set[str] = set()  # photos this form captured that no save has used yet

    def add_photo(self, source: Any) -> str:
        """Prepare a camera image (path or bytes) at the settings' size and keep it; returns its SHA-256.

        Raises InputError("photo", "not_an_image") for a file that is not a readable image.
        """
        from PIL import UnidentifiedImageError

        queue = self.core.photos
        # The capture time from the corrected device clock, in the tablet's zone, for a photo whose EXIF has none.
        taken_at = datetime.fromtimestamp(self.core.now_ms() / 1000, timezone.utc).astimezone()
        try:
            photo = prepare_photo(source, queue.settings, taken_at=taken_at)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            raise InputError("photo", "not_an_image", str(exc)) from None
        new = queue.get(photo.sha256) is None
        sha = queue.add(photo)
        if new:
            self._unsaved.add(sha)
        return sha

    def remove_photo(self, sha256: str) -> None:
        """Take a photo out of the unsaved form; its file goes unless a saved record refers to it."""
        if sha256 in self._unsaved:
            # Made by this form: only records saved since could refer to it, so the check is cheap.
            self.core.photos.discard_unsaved(sha256)
            self._unsaved.discard(sha256)
        else:
            self.core.photos.discard(sha256)  # reads every record's photos: slower, and always safe

    def discard_unsaved(self) -> int:
        """Forget every photo this form took that no saved record refers to (the form was abandoned)."""
        gone = 0
        for sha in list(self._unsaved):
            gone += self.core.photos.discard_unsaved(sha)
            self._unsaved.discard(sha)
        return gone


# --- the map a manual position is picked on (issue 13) ---------------------------------------------

MAP_TILES_KEY = "map_tiles"  # store meta: the path of the MBTiles file the location map draws, when one is set


@dataclass(frozen=True)
class MapArea:
    """What the location map shows: the worker's grids' outlines (those an admin drew) and the tile file, if any.

    ``tiles_problem`` is the code (MapTilesError: ``not_found``, ``not_mbtiles``) of a configured file that cannot
    be used now (e.g. the memory card was taken out): the map then draws the outlines alone, and says why.
    """

    outlines: list[GridOutline]
    tiles_path: str | None
    tiles_problem: str | None = None


def map_tiles_path(core: AppCore) -> str | None:
    """The MBTiles file set for the location map, as set (it may have gone since), or None."""
    return _text(core.store.setting(MAP_TILES_KEY)) or None


def _check_tiles(path: str) -> str:
    """The path of a usable MBTiles file, or MapTilesError."""
    tiles = MBTiles(path)
    try:
        return tiles.path
    finally:
        tiles.close()


def set_map_tiles(core: AppCore, path: Any) -> str | None:
    """Set (or, with an empty path, clear) the location map's MBTiles file; answers the path kept.

    The file is checked first (InputError("map_tiles", "not_found" | "not_mbtiles" | "invalid"), nothing kept).
    """
    if path is not None and not isinstance(path, str):
        raise InputError("map_tiles", "invalid")
    text = (path or "").strip()
    if not text:
        core.store.save_setting(MAP_TILES_KEY, None)
        return None
    if len(text) > 4096:
        raise InputError("map_tiles", "too_long")
    try:
        kept = _check_tiles(text)
    except MapTilesError as exc:
        raise InputError("map_tiles", exc.code, str(exc)) from None
    core.store.save_setting(MAP_TILES_KEY, kept)
    return kept


def grid_outlines(core: AppCore) -> list[GridOutline]:
    """The outlines of the worker's grids that have a boundary, from the synced grid records, by code."""
    mine = {grid.code: grid for grid in core.grids()}
    outlines = []
    for _id, _bucket, state in core.store.states("grid"):
        values = _plain(state)
        code = values.get("code")
        if isinstance(code, str) and code in mine:
            outline = grid_outline(code, mine[code].name, values.get("boundary"))
            if outline is not None:
                outlines.append(outline)
    return sorted(outlines, key=lambda o: o.code)


# --- Report an event -----------------------------------------------------------------------------

class ReportPresenter(_PhotoForm):
    """The report form: pick grid and category, describe, locate, photograph, save (offline, instant).

    Keep one presenter per open form: it remembers the photos it took, so that removing one, or
    abandoning the form (`discard_unsaved`), frees them cheaply.
    """

    def categories(self) -> list[CategoryChoice]:
        """The live categories: the ordinary ones first, then the micro-event ones, each by name and code."""
        choices = [_choice(values) for values in _categories(self.core).values()]
        return sorted(choices, key=lambda c: (c.micro, c.name, c.code))

    def grids(self) -> list[GridInfo]:
        """The grids the worker may report in."""
        return self.core.grids()

    def location(self) -> LocationReading:
        """Where the tablet is: a fresh GPS fix, else the last known position, else NO_READING (source None)."""
        provider = self.core.location_provider
        reading = provider.current() if provider is not None else None
        if reading is not None and reading.known and reading.problem() is None:
            return reading
        last = reading_from(self.core.store.setting(LAST_LOCATION_KEY))
        limit_ms = self.core.settings.last_known_max_minutes * 60_000
        if last is not None and (last.at_ms is None or self.core.now_ms() - last.at_ms > limit_ms):
            last = None  # too old (or of unknown age) to say where the worker is now
        if last is not None:
            return LocationReading(last.lat, last.lon, last.accuracy_m, "last_known", last.at_ms)
        return NO_READING

    def map_area(self) -> MapArea:
        """What the manual position's map shows: the worker's grid outlines, over the MBTiles file if one is set."""
        path = map_tiles_path(self.core)
        problem = None
        if path is not None:
            try:
                path = _check_tiles(path)
            except MapTilesError as exc:
                path, problem = None, exc.code
        return MapArea(grid_outlines(self.core), path, problem)

    def offers_on_spot(self, category: Any) -> bool:
        """Whether the user may close a new event of the category on the spot (a micro event, for a worker)."""
        values = _categories(self.core).get(category) if isinstance(category, str) else None
        return self._on_spot_offered(values is not None and values.get("micro") is True)

    def _on_spot_offered(self, micro: bool) -> bool:
        """Whether the fold would apply the user's handle_on_spot to a new event, micro or not, they report."""
        me = self.core.user_id
        event = {"reporter": me, "micro": micro}
        return "handle_on_spot" in _offered(fold_case(event, ()), event, me, self.core.role)

    def remember_location(self, reading: LocationReading) -> None:
        """Keep a GPS fix as the last known one (what the form falls back to without GPS, for a while).

        A typed position never becomes the last known one: the next report would carry it as if measured.
        """
        if not reading.known or reading.source != "gps":
            return
        if reading.problem() is not None:
            raise InputError("location", "invalid")
        at = reading.at_ms if reading.at_ms is not None else self.core.now_ms()
        stored = LocationReading(float(reading.lat), float(reading.lon), reading.accuracy_m,  # type: ignore[arg-type]
                                 reading.source, at)
        self.core.store.save_setting(LAST_LOCATION_KEY, reading_dict(stored))

    def check(self, *, grid: Any, category: Any, description: Any, urgent: Any = False,
              location: LocationReading | None = None, photos: Sequence[str] = (), handled_on_spot: Any = False,
              note: Any = None, address: Any = None, no_location_reason: Any = None) -> dict[str, Any]:
        """Validate the form; returns the event's values, or raises the first InputError (nothing is written).

        A report without a known position needs ``no_location_reason`` (one of NO_LOCATION_REASONS).
        """
        reporter = self.core.user_id
        if not reporter:
            raise InputError("user", "not_logged_in")
        if not grid:
            raise InputError("grid", "required")
        if not isinstance(grid, str) or grid not in {g.code for g in self.core.grids()}:
            raise InputError("grid", "unknown")
        if not category:
            raise InputError("category", "required")
        categories = _categories(self.core)
        if not isinstance(category, str) or category not in categories:
            raise InputError("category", "unknown")
        text = _check_text("description", description, DESCRIPTION_MAX, required=True)
        _check_text("note", note, NOTE_MAX, required=False)
        where = _check_text("address", address, ADDRESS_MAX, required=False)
        if not isinstance(urgent, bool):
            raise InputError("urgent", "invalid")
        if not isinstance(handled_on_spot, bool):
            raise InputError("handled_on_spot", "invalid")
        micro = categories[category].get("micro") is True
        if handled_on_spot and not self._on_spot_offered(micro):
            raise InputError("handled_on_spot", "not_allowed" if micro else "not_micro")
        if handled_on_spot:  # the evidence an on-the-spot handling carries (shared/case.py, EVIDENCE)
            if not (isinstance(note, str) and note.strip()):
                raise InputError("note", "required")
            if not photos:
                raise InputError("photos", "required")
        position = None
        if location is not None:
            if not isinstance(location, LocationReading) or location.problem() is not None:
                raise InputError("location", "invalid")
            position = location.as_record()
        if no_location_reason is not None and no_location_reason not in NO_LOCATION_REASONS:
            raise InputError("no_location_reason", "unknown")
        if position is None and no_location_reason is None:
            # The pages show why a case has no place on the map: a report without a position says why,
            # whoever calls this (the form, a draft from a house check, a script), not only the form.
            raise InputError("no_location_reason", "required")
        hashes = list(dict.fromkeys(photos or ()))
        if len(hashes) > PHOTOS_MAX:
            raise InputError("photos", "too_many", f"{len(hashes)} > {PHOTOS_MAX}")
        for sha in hashes:
            if not isinstance(sha, str) or self.core.photos.get(sha) is None:
                raise InputError("photos", "unknown", str(sha)[:64])
        values: dict[str, Any] = {
            "grid": grid, "category": category, "description": text, "urgent": urgent, "micro": micro,
            "reporter": reporter, "reported_at": format_ms(self.core.now_ms()),
        }
        if position is not None:
            values["location"] = position
        elif no_location_reason is not None:
            values["no_location_reason"] = no_location_reason
        if where is not None:
            values["address"] = where
        if hashes:
            values["photos"] = hashes
        patrol = _open_patrol(self.core, reporter)
        if patrol:
            values["patrol"] = patrol  # reported on a patrol (issue 17)
        return values

    def save(self, *, grid: Any, category: Any, description: Any, urgent: Any = False,
             location: LocationReading | None = None, photos: Sequence[str] = (), handled_on_spot: Any = False,
             note: Any = None, address: Any = None, no_location_reason: Any = None) -> str:
        """Save the event (and its handle_on_spot action, for a micro event handled on the spot); returns its id.

        Validates everything first (InputError, nothing written); then one store transaction. Offline.
        """
        values = self.check(grid=grid, category=category, description=description, urgent=urgent, location=location,
                            photos=photos, handled_on_spot=handled_on_spot, note=note, address=address,
                            no_location_reason=no_location_reason)
        store = self.core.store
        event_id = store.new_id()
        writes: list[tuple[str, str, Mapping[str, Any], str | None]] = [
            ("event", event_id, values, grid_bucket(values["grid"]))]
        if handled_on_spot:
            action: dict[str, Any] = {"event": event_id, "action": "handle_on_spot", "actor": values["reporter"]}
            action["note"] = _check_text("note", note, NOTE_MAX, required=True)
            action["photos"] = values["photos"]  # what the worker photographed on the spot
            writes.append(("case_action", store.new_id(), action, grid_bucket(values["grid"])))
        try:
            store.write_many(writes)
        except ValidationError as exc:  # the form's checks missed something the wire refuses
            raise InputError("form", "invalid", str(exc.messages)[:300]) from None
        self._unsaved.difference_update(values.get("photos", ()))
        if location is not None and location.known and location.source == "gps":  # a typed position never is
            try:
                self.remember_location(location)
            except InputError:  # the event is saved: a position not kept for next time must not undo that
                log.warning("report: could not keep the position as the last known one", exc_info=True)
        return event_id


# --- My cases ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CaseRow:
    """One of the worker's reported events in the "my cases" list; status and resolution are codes."""

    event_id: str
    category_code: str | None
    category_name: str | None
    description: str
    status: str
    resolution: str | None
    urgent: bool
    micro: bool
    reported_at: str | None
    awaiting_me: bool
    failed_verifications: int
    category_name_en: str | None = None
    grid: str | None = None
    synced: bool = True  # the event and its actions made here have all reached the server
    deadline: str | None = None
    overdue: bool = False
    supervised: bool = False
    case_number: str | None = None  # given by the server when the event first reaches it; None until then
    sync_state: str = "synced"  # synced | local (on this tablet only) | refused (see refusal)
    refusal: Refusal | None = None  # the latest refusal of the event or one of its actions


def _state_of(text: str) -> dict[str, tuple[Any, str]]:
    """A stored state (JSON text) as {field: (value, hlc)}."""
    return {name: (write[0], write[1]) for name, write in json.loads(text).items()}


@dataclass
class _Folded:
    """One case folded, with what it was folded from (the memo's key) and the last row made of it."""

    key: tuple
    values: dict[str, Any]
    state: CaseState
    action_ids: tuple[str, ...]
    row: "CaseRow | None" = None


class CasesPresenter:
    """The events this worker reported, with their folded status; awaiting this worker's verification first.

    Speed: two indexed statements read the worker's events and all their case actions, as stored
    JSON text; the actions are grouped by event in one pass. A case is parsed and folded only when
    its texts (event, actions), the categories or the user differ from the last time: the folds are
    memoised on the AppCore (``core.cache``), so after one full pass a refresh costs the two reads,
    and a new capture costs one fold.
    """

    MEMO = "cases.folds"

    def __init__(self, core: AppCore):
        self.core = core

    def rows(self) -> list[CaseRow]:
        """Every live event the worker reported: awaiting_me first, then newest first. Two queries in all."""
        me, role = self.core.user_id, self.core.role
        if not me:
            return []
        store = self.core.store
        events = store.states("event", where=("reporter", me), raw=True)
        texts: dict[str, list[tuple[str, str]]] = {}
        for event_id, action_id, text in store.children("case_action", "event", [e[0] for e in events], raw=True):
            texts.setdefault(event_id, []).append((action_id, text))
        pending = store.pending_ids("event") | store.pending_ids("case_action")
        refused = {rid: rejection for (kind, rid), rejection in store.refusals().items()
                   if kind in ("event", "case_action")}
        categories = _categories(self.core)
        categories_key = json.dumps(categories, sort_keys=True, ensure_ascii=False, default=str)
        now = self.core.now_ms()
        memo: dict[str, _Folded] = self.core.cache.get(self.MEMO, {})
        fresh: dict[str, _Folded] = {}
        rows = []
        for event_id, _bucket, text in events:
            own = tuple(texts.get(event_id, ()))
            key = (me, role, text, own, categories_key)
            folded = memo.get(event_id)
            if folded is None or folded.key != key:
                folded = self._fold(key, text, own, categories)
            fresh[event_id] = folded
            synced = event_id not in pending and not any(a in pending for a in folded.action_ids)
            overdue = is_overdue(folded.state, now)
            refusal = refusal_of(max((refused[i] for i in (event_id, *folded.action_ids) if i in refused),
                                     key=lambda r: r.seq, default=None)) if refused else None
            row = folded.row
            if row is None or row.synced != synced or row.overdue != overdue or row.refusal != refusal:
                row = folded.row = self._row(event_id, folded, categories, me, role, synced, overdue, refusal)
            rows.append(row)
        self.core.cache[self.MEMO] = fresh  # only the live events: deleted ones drop out
        # Newest first (reported_at, then the UUIDv7 id), then the awaiting ones ahead: sort is stable.
        rows.sort(key=lambda r: (r.reported_at or "", r.event_id), reverse=True)
        rows.sort(key=lambda r: not r.awaiting_me)
        return rows

    @staticmethod
    def _fold(key: tuple, text: str, own: tuple[tuple[str, str], ...],
              categories: Mapping[str, Mapping[str, Any]]) -> _Folded:
        values = _plain(_state_of(text))
        actions = [Action.from_state(action_id, _state_of(action_text)) for action_id, action_text in own]
        category = categories.get(values.get("category"))  # type: ignore[arg-type]
        state = fold_case(values, actions, category=category)
        return _Folded(key, values, state, tuple(action_id for action_id, _t in own))

    @staticmethod
    def _row(event_id: str, folded: _Folded, categories: Mapping[str, Mapping[str, Any]], me: str,
             role: str | None, synced: bool, overdue: bool, refusal: Refusal | None = None) -> "CaseRow":
        values, case = folded.values, folded.state
        category = categories.get(values.get("category"))  # type: ignore[arg-type]
        return CaseRow(
            event_id=event_id,
            category_code=_text(values.get("category")),
            category_name=_text(category.get("name")) if category else None,
            description=_text(values.get("description")) or "",
            status=case.status,
            resolution=case.resolution,
            urgent=case.urgent,
            micro=case.micro,
            reported_at=_text(values.get("reported_at")),
            awaiting_me="verify_pass" in _offered(case, values, me, role),
            failed_verifications=case.failed_verifications,
            category_name_en=_text(category.get("name_en")) if category else None,
            grid=_text(values.get("grid")),
            synced=synced,
            deadline=case.deadline,
            overdue=overdue,
            supervised=case.supervised,
            case_number=_text(values.get("case_number")),
            sync_state=sync_state(not synced, refusal),
            refusal=refusal,
        )


# --- One case ------------------------------------------------------------------------------------

class PhotoRef(tuple):
    """``(sha256, local_path or None)``: the photo file if the tablet still holds it, else its thumbnail, else None.

    A tuple of two, so ``sha, path = ref`` works; ``.thumbnail`` and ``.full`` tell which it is.
    """

    def __new__(cls, sha256: str, path: str | None, *, thumbnail: str | None = None, full: bool = False):
        ref = super().__new__(cls, (sha256, path))
        ref.thumbnail = thumbnail  # type: ignore[attr-defined]
        ref.full = full  # type: ignore[attr-defined]
        return ref

    @property
    def sha256(self) -> str:
        """The photo's hash."""
        return self[0]

    @property
    def path(self) -> str | None:
        """The best local file for it, or None."""
        return self[1]


@dataclass(frozen=True)
class TimelineRow:
    """One case action as the fold judged it: ``applied`` False with ``superseded`` or a refusal ``reason``."""

    action_id: str
    action: str
    actor: str | None
    at: str | None  # ISO 8601 UTC, from the action's HLC
    note: str | None
    photos: list[PhotoRef]
    applied: bool
    superseded: bool
    reason: str | None
    status: str  # the case's status after this entry
    by_me: bool = False
    synced: bool = True
    unit: str | None = None
    deadline: str | None = None
    refusal: Refusal | None = None  # the server refused this action (the case shows it until mended or discarded)
    # Made on this tablet and not yet acknowledged by the server (nor refused): the fold applied it here only.
    pending: bool = False


@dataclass(frozen=True)
class CaseView:
    """The case screen: the event, its status, its timeline, its photos, and whether the worker may verify."""

    event_id: str
    grid: str | None
    category_code: str | None
    category_name: str | None
    category_name_en: str | None
    description: str
    location: LocationReading | None
    address: str | None
    urgent: bool
    micro: bool
    reporter: str | None
    reported_at: str | None
    status: str
    resolution: str | None
    timeline: list[TimelineRow]
    photos: list[PhotoRef]
    can_verify: bool
    failed_verifications: int
    unit: str | None = None
    deadline: str | None = None
    overdue: bool = False
    supervised: bool = False
    synced: bool = True
    case_number: str | None = None  # given by the server when the event first reaches it; None until then
    sync_state: str = "synced"  # synced | local | refused, of the event and the actions made here
    refusal: Refusal | None = None  # the event's refusal, else the latest of its actions'
    can_mend: bool = False  # the event itself was refused: its grid, description and address may be corrected
    rectification: TimelineRow | None = None  # the unit's last applied rectification: its note and photos
    # What the server holds, as far as this tablet knows: the fold without the actions made here that the server
    # has not taken (pending or refused). ``status`` / ``resolution`` are the tablet's result, with them applied.
    server_status: str | None = None
    server_resolution: str | None = None
    pending: int = 0  # the worker's own actions on the case not yet synced (TimelineRow.pending)
    no_location_reason: str | None = None  # why a report has no position (NO_LOCATION_REASONS), as its worker chose


class CasePresenter(_PhotoForm):
    """One case: its view, and the worker's verification of a rectification (with photos: `add_photo`)."""

    def __init__(self, core: AppCore, event_id: str):
        super().__init__(core)
        self.event_id = event_id

    def _load(self) -> tuple[dict[str, Any], list[tuple[str, str, dict[str, tuple[Any, str]]]], CaseState,
                             dict[str, Any] | None]:
        values, action_rows, actions, category = self._records()
        case = fold_case(values, actions, now_ms=self.core.now_ms(), category=category)
        return values, action_rows, case, category

    def _records(self) -> tuple[dict[str, Any], list[tuple[str, str, dict[str, tuple[Any, str]]]], list[Action],
                                dict[str, Any] | None]:
        """The event's values, its action records and Actions, and its category; InputError when it is gone."""
        store = self.core.store
        record = store.get("event", self.event_id)
        if record is None or record.deleted:
            raise InputError("event", "not_found")
        values = record.values
        action_rows = store.states("case_action", where=("event", self.event_id), include_deleted=True)
        category = _categories(self.core).get(values.get("category"))  # type: ignore[arg-type]
        return values, action_rows, [Action.from_state(rid, state) for rid, _b, state in action_rows], category

    def _photo(self, sha: Any) -> PhotoRef | None:
        if not isinstance(sha, str):
            return None
        queue = self.core.photos
        full, thumb = queue.path(sha), queue.thumbnail_path(sha)
        thumb_path = str(thumb) if thumb.exists() else None
        if not full.exists():
            full = remote_path(queue, sha)  # fetched from the server on the worker's request (mobile/evidence.py)
        if full.exists():
            return PhotoRef(sha, str(full), thumbnail=thumb_path, full=True)
        return PhotoRef(sha, thumb_path, thumbnail=thumb_path, full=False)

    def view_photos(self) -> list[PhotoRef]:
        """Every photo of the case, the event's and its actions', as the tablet holds them now."""
        values, action_rows, _case, _category = self._load()
        hashes = list(values.get("photos") or [])
        for _rid, _b, state in action_rows:
            photos = state.get("photos")
            hashes += photos[0] if photos and isinstance(photos[0], list) else []
        return self._photos(list(dict.fromkeys(hashes)))

    def fetch_full_photo(self, sha256: str) -> PhotoRef:
        """The full photo, fetched from the server now if the tablet lacks it (online, blocking).

        Raises InputError("photo", "not_in_case") for a photo of no record of this case, ("photo", "offline") when
        the server cannot be reached, ("photo", "not_on_server") when it holds none yet, ("photo", "cache_full").
        """
        if sha256 not in {ref.sha256 for ref in self.view_photos()}:
            raise InputError("photo", "not_in_case")
        try:
            self.core.fetch_full_photo(sha256)
        except Rejected as exc:
            raise InputError("photo", "not_on_server" if exc.status in (403, 404) else "offline") from None
        except TransportError:
            raise InputError("photo", "offline") from None
        except ValueError:
            raise InputError("photo", "cache_full") from None
        return self._photo(sha256)

    def _photos(self, hashes: Any) -> list[PhotoRef]:
        if not isinstance(hashes, list):
            return []
        return [ref for ref in (self._photo(sha) for sha in hashes) if ref is not None]

    def view(self) -> CaseView:
        """The case as the tablet knows it now (offline); raises InputError("event", "not_found").

        Hazard: the worker's own step taken for the server's. The fold applies the actions made here at once
        (so the tablet offers no second verification), but until the server takes them they are shown as
        pending: each such timeline row is ``pending``, and ``server_status`` is the fold without them.
        """
        values, action_rows, actions, category = self._records()
        now = self.core.now_ms()
        case = fold_case(values, actions, now_ms=now, category=category)
        me = self.core.user_id
        pending = self.core.store.pending_ids("case_action")
        refused = self.core.store.refusals()
        unsent = {a.id for a in actions if a.id in pending or ("case_action", a.id) in refused}
        held = fold_case(values, [a for a in actions if a.id not in unsent], now_ms=now, category=category) \
            if unsent else case
        by_id = {rid: _plain(state) for rid, _b, state in action_rows}
        timeline = []
        for entry in case.timeline:
            action = by_id.get(entry.action_id, {})
            timeline.append(TimelineRow(
                action_id=entry.action_id, action=entry.action, actor=entry.actor, at=_hlc_time(entry.hlc),
                note=_text(action.get("note")), photos=self._photos(action.get("photos")), applied=entry.applied,
                superseded=bool(entry.reason and entry.reason.startswith("superseded:")), reason=entry.reason,
                status=entry.status, by_me=bool(me) and entry.actor == me, synced=entry.action_id not in pending,
                unit=_text(action.get("unit")), deadline=_text(action.get("deadline")),
                refusal=refusal_of(refused.get(("case_action", entry.action_id))),
                pending=entry.action_id in pending and ("case_action", entry.action_id) not in refused))
        location = values.get("location")
        reading = reading_from(location) if isinstance(location, dict) else None
        event_pending = self.event_id in self.core.store.pending_ids("event")
        event_refusal = refusal_of(refused.get(("event", self.event_id)))
        refusal = event_refusal or next((row.refusal for row in reversed(timeline) if row.refusal), None)
        synced = not event_pending and not any(row.action_id in pending for row in timeline)
        return CaseView(
            event_id=self.event_id, grid=_text(values.get("grid")), category_code=_text(values.get("category")),
            category_name=_text(category.get("name")) if category else None,
            category_name_en=_text(category.get("name_en")) if category else None,
            description=_text(values.get("description")) or "", location=reading,
            address=_text(values.get("address")), urgent=case.urgent, micro=case.micro,
            reporter=_text(values.get("reporter")), reported_at=_text(values.get("reported_at")),
            status=case.status, resolution=case.resolution, timeline=timeline,
            photos=self._photos(values.get("photos")),
            # verify_fail is offered with verify_pass: one rule of the fold judges both.
            can_verify="verify_pass" in _offered(case, values, me, self.core.role),
            failed_verifications=case.failed_verifications, unit=case.unit, deadline=case.deadline,
            overdue=case.overdue, supervised=case.supervised,
            synced=synced, case_number=_text(values.get("case_number")),
            sync_state=sync_state(not synced, refusal), refusal=refusal, can_mend=event_refusal is not None,
            rectification=next((row for row in reversed(timeline) if row.action == "rectify" and row.applied), None),
            server_status=held.status, server_resolution=held.resolution,
            pending=sum(1 for row in timeline if row.pending),
            no_location_reason=_reason(values.get("no_location_reason")))

    def _refused_ids(self) -> list[tuple[str, str]]:
        """The case's refused records: the event and its actions, as (kind, id)."""
        actions = {rid for rid, _b, _s in self.core.store.states("case_action", where=("event", self.event_id),
                                                                  include_deleted=True)}
        return [(kind, rid) for kind, rid in self.core.store.refusals()
                if (kind, rid) == ("event", self.event_id) or (kind == "case_action" and rid in actions)]

    def mend(self, *, grid: Any = None, description: Any = None, address: Any = None) -> int:
        """Correct a refused event (its grid, description, address) and send it again; returns fields to send.

        Checks the inputs first (InputError, nothing written). A grid moves the event, and its actions made
        here that the server has not taken, to that grid's bucket. Only a refused event may be mended.
        """
        store = self.core.store
        if ("event", self.event_id) not in store.refusals("event"):
            raise InputError("event", "not_refused")
        values: dict[str, Any] = {}
        if grid is not None:
            if not isinstance(grid, str) or grid not in {g.code for g in self.core.grids()}:
                raise InputError("grid", "unknown")
            values["grid"] = grid
        if description is not None:
            values["description"] = _check_text("description", description, DESCRIPTION_MAX, required=True)
        if address is not None:
            text = _check_text("address", address, ADDRESS_MAX, required=False)
            if text is not None:
                values["address"] = text
        if values:
            try:
                store.write("event", self.event_id, values)
            except ValidationError as exc:
                raise InputError("form", "invalid", str(exc.messages)[:300]) from None
        record = store.get("event", self.event_id)
        sent = 0
        for kind, rid in self._refused_ids():
            if kind == "case_action" and record is not None:
                store.move_refused(kind, rid, record.bucket)  # an action lives in its event's bucket
            sent += store.resend_refused(kind, rid)
        return sent

    def resend(self) -> int:
        """Send the case's refused records again as they are (e.g. after the worker was given the grid)."""
        return sum(self.core.store.resend_refused(kind, rid) for kind, rid in self._refused_ids())

    def discard_refused(self) -> bool:
        """Give up the case's refused writes; True when the event itself went (the server never had it)."""
        gone = False
        for kind, rid in self._refused_ids():
            removed = discard_refused(self.core, kind, rid)
            gone = gone or (removed and kind == "event")
        return gone

    def verify(self, passed: bool, note: str | None = None, photos: Sequence[str] = ()) -> str:
        """Record the worker's verification (verify_pass / verify_fail) offline; returns the action's id.

        Raises InputError when the case does not wait for this worker's verification ("case",
        "not_awaiting"), when a failure has no note ("note", "required"), or for a bad input.
        """
        me = self.core.user_id
        if not me:
            raise InputError("user", "not_logged_in")
        if not isinstance(passed, bool):
            raise InputError("passed", "invalid")
        values, _rows, case, _category = self._load()
        name = "verify_pass" if passed else "verify_fail"
        if name not in _offered(case, values, me, self.core.role):
            raise InputError("case", "not_awaiting", case.status)
        text = _check_text("note", note, NOTE_MAX, required=not passed)
        hashes = list(dict.fromkeys(photos or ()))
        if len(hashes) > ACTION_PHOTOS_MAX:
            raise InputError("photos", "too_many")
        for sha in hashes:
            if not isinstance(sha, str) or self.core.photos.get(sha) is None:
                raise InputError("photos", "unknown", str(sha)[:64])
        action: dict[str, Any] = {"event": self.event_id, "action": name, "actor": me}
        if values.get("reporter") != me:
            # Offered to someone other than the reporter only for a role that stands in (a supervisor):
            # the fold applies it only so marked.
            action["stand_in"] = True
        if text:
            action["note"] = text
        if hashes:
            action["photos"] = hashes
        record = self.core.store.get("event", self.event_id)
        try:
            change = self.core.store.create("case_action", action, record.bucket if record else None)
        except ValidationError as exc:
            raise InputError("form", "invalid", str(exc.messages)[:300]) from None
        self._unsaved.difference_update(hashes)
        return change.id


# --- Sync ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RejectionRow:
    """A change the server refused, with its reason (the server's words), for the worker to see."""

    seq: int
    kind: str
    record_id: str
    reason: str
    at: str
    summary: str | None = None  # the record's description, note or name, when the tablet has one
    code: str | None = None  # the server's code for the reason (None from an older server)
    event_id: str | None = None  # the case to open to mend it (an event, or a case action's event)


@dataclass(frozen=True)
class SyncCounts:
    """What waits: records with unsynced writes, photos not yet on the server, rejections, failing photos."""

    unsynced_records: int
    unsynced_photos: int
    rejected: int
    photos_failing: int = 0


class SyncPresenter:
    """The sync screen: the rejections, the counts, retry."""

    def __init__(self, core: AppCore, runner: SyncRunner):
        self.core = core
        self.runner = runner

    def rejections(self) -> list[RejectionRow]:
        """The changes the server refused, oldest first."""
        rows = []
        for rejection in self.core.store.rejections():
            record = self.core.store.get(rejection.kind, rejection.id)
            values = record.values if record else {n: w[0] for n, w in rejection.fields.items()}
            summary = next((v for k in ("description", "note", "name", "address")
                            if isinstance(v := values.get(k), str) and v), None)
            event_id = rejection.id if rejection.kind == "event" else \
                _text(values.get("event")) if rejection.kind == "case_action" else None
            rows.append(RejectionRow(rejection.seq, rejection.kind, rejection.id, rejection.reason, rejection.at,
                                     summary, rejection.code, event_id))
        return rows

    def _rejection(self, seq: int) -> Rejection | None:
        return next((r for r in self.core.store.rejections() if r.seq == seq), None)

    def resend(self, seq: int) -> int:
        """Send the refused record again as it is now (the worker mended it, or its cause went away)."""
        rejection = self._rejection(seq)
        return resend_refused(self.core, rejection.kind, rejection.id) if rejection else 0

    def discard(self, seq: int) -> bool:
        """Give up the refused change: the record goes back to what the server holds (next sync), or away."""
        rejection = self._rejection(seq)
        return discard_refused(self.core, rejection.kind, rejection.id) if rejection else False

    def dismiss(self, seq: int) -> None:
        """The worker gives up a refused change (as `discard`: the tablet keeps no state the server refused)."""
        self.discard(seq)

    def retry(self) -> bool:
        """Sync now (in the background); False when a sync is already running."""
        return self.runner.sync_now()

    def counts(self) -> SyncCounts:
        """The numbers the sync screen shows."""
        counts: Counts = self.core.store.counts()
        waiting, failing = self.core.photos.waiting()
        return SyncCounts(counts.unsynced, waiting, counts.rejected, failing)

    def last_sync(self) -> SyncOutcome | None:
        """The last sync's outcome (persisted)."""
        return self.core.last_sync()

    @property
    def running(self) -> bool:
        """Whether a sync runs now."""
        return self.runner.running



# --- patrols (issue 17) ---------------------------------------------------------------------------

def _open_patrol(core: AppCore, worker: str | None) -> str | None:
    """The id of the worker's patrol running on this tablet, or None: events and house checks made meanwhile carry it."""
    from .patrol import open_patrol_id  # mobile.patrol builds on this module

    return open_patrol_id(core.store, worker) if worker else None

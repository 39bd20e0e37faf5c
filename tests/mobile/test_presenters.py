"""The field app's presenters, without a window: a real Store in tmp_path, the in-memory FakeServer.

Each test opens an AppCore (conftest.py's ``core``) logged in to a FakeServer that serves two
grids and three categories (fire_hazard, the micro ebike_stairwell, a deleted one); the device and
the server share one ManualClock, so moving it orders captures without a clock-skew answer.
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mobile.app_core import SyncRunner
from mobile.limits import DESCRIPTION_MAX, NOTE_MAX
from mobile.location import NO_READING, LocationReading
from mobile.presenters import CasePresenter, CasesPresenter, HomePresenter, InputError, ReportPresenter, SyncPresenter
from mobile.sync import synchronize
from shared.case import Action, fold_case
from shared.hlc import format_ms

from .core_helpers import (
    GRID, GRID2, OTHER_WORKER, SUPERVISOR, UNIT_USER, WORKER, QueueSchedule, logged_in, open_core, put,
    seeded_server,
)
from .fakes import T0, ManualClock

HOUR_MS = 3_600_000
JPEG_CACHE: dict[int, bytes] = {}


def jpeg(seed: int = 0) -> bytes:
    """A small real JPEG, different per seed."""
    if seed not in JPEG_CACHE:
        from tests.photos.helpers import make_jpeg
        JPEG_CACHE[seed] = make_jpeg(32, 24, noise=True, seed=seed)
    return JPEG_CACHE[seed]


def sync(core, fake) -> None:
    """One synchronize, which must run to the end."""
    report = synchronize(core.store, fake, photos=core.photos)
    assert report.ok, report.error
    assert not report.rejected, report.rejected


def snapshot(core) -> tuple:
    """Everything a failed save must leave as it was."""
    counts = core.store.counts()
    return counts.records, counts.unsynced, counts.rejected, len(core.store.pending_changes(10_000).changes)


def supervisor_acts(fake, event_id: str, *actions: str, grid: str = GRID) -> None:
    """The office and the unit act on a case on the server (dispatch, rectify, close …)."""
    actors = {"dispatch": SUPERVISOR, "rectify": UNIT_USER, "close": SUPERVISOR, "return": SUPERVISOR}
    for action in actions:
        values = {"event": event_id, "action": action, "actor": actors[action]}
        if action == "dispatch":
            values["unit"] = "fire"
        put(fake, "case_action", values, f"grid:{grid}")
        fake.physical.advance(10)


# --- reference data and location ------------------------------------------------------------------

def test_categories_are_the_live_ones_with_micro_grouped_last(core):
    choices = ReportPresenter(core).categories()
    assert [(c.code, c.micro) for c in choices] == [("fire_hazard", False), ("ebike_stairwell", True)]
    assert choices[0].name == "消防隐患" and choices[0].name_en == "Fire hazard"


def test_grids_are_the_users_buckets_named_from_reference_data(core):
    grids = ReportPresenter(core).grids()
    assert [(g.code, g.name, g.community) for g in grids] == [
        (GRID, "东湖一网格", "东湖社区"), (GRID2, "东湖二网格", "东湖社区")]


def test_location_prefers_a_fresh_fix_then_the_last_known_then_none(core):
    report = ReportPresenter(core)
    assert report.location().source is None and not report.location().known
    report.remember_location(LocationReading(22.54, 114.05, 8.0, "gps"))
    assert report.location() == LocationReading(22.54, 114.05, 8.0, "last_known", T0)
    core.location_provider.reading = LocationReading(22.55, 114.06, 4.0, "gps", T0)
    assert report.location().source == "gps"


def test_a_typed_position_never_becomes_the_last_known(core):
    report = ReportPresenter(core)
    report.remember_location(LocationReading(22.54, 114.05, None, "manual"))
    assert not report.location().known
    report.save(grid=GRID, category="fire_hazard", description="x", location=LocationReading(22.5, 114.1, None, "manual"))
    assert not report.location().known


def test_a_last_known_position_older_than_the_setting_is_not_offered(core, clock):
    report = ReportPresenter(core)
    report.remember_location(LocationReading(22.54, 114.05, 8.0, "gps", T0))
    clock.advance(9 * 60_000)
    assert report.location().source == "last_known"
    clock.advance(2 * 60_000)  # 11 minutes: past the default of 10
    assert not report.location().known
    core.save_settings(last_known_max_minutes=15)
    assert report.location().source == "last_known"


def test_a_report_carries_where_its_position_came_from_and_when(core):
    report = ReportPresenter(core)
    gps = report.save(grid=GRID, category="fire_hazard", description="x",
                      location=LocationReading(22.5, 114.1, 6.0, "gps", T0))
    assert core.store.get("event", gps).values["location"] == {
        "lat": 22.5, "lon": 114.1, "accuracy_m": 6.0, "source": "gps", "fix_at": format_ms(T0)}
    typed = report.save(grid=GRID, category="fire_hazard", description="y",
                        location=LocationReading(22.5, 114.1, None, "manual", T0))
    assert "fix_at" not in core.store.get("event", typed).values["location"]
    none = report.save(grid=GRID, category="fire_hazard", description="z", no_location_reason="indoors")
    assert core.store.get("event", none).values["no_location_reason"] == "indoors"
    assert CasePresenter(core, none).view().no_location_reason == "indoors"  # the case page says why
    assert CasePresenter(core, gps).view().no_location_reason is None
    with pytest.raises(InputError) as caught:
        report.save(grid=GRID, category="fire_hazard", description="z", no_location_reason="lazy")
    assert caught.value.field == "no_location_reason"


def test_a_saved_gps_position_becomes_the_last_known(core):
    report = ReportPresenter(core)
    report.save(grid=GRID, category="fire_hazard", description="x", location=LocationReading(22.5, 114.1, 3.0, "gps"))
    assert (report.location().lat, report.location().source) == (22.5, "last_known")


# --- the map a manual position is picked on (issue 13) ----------------------------------------------

SQUARE = {"type": "Polygon", "coordinates": [[[114.0545, 22.5410], [114.0605, 22.5410], [114.0605, 22.5455],
                                              [114.0545, 22.5455], [114.0545, 22.5410]]]}


def test_the_map_shows_the_outlines_of_the_workers_grids_an_admin_drew(core, fake):
    assert ReportPresenter(core).map_area().outlines == []  # no boundary drawn yet
    grid_id = next(rid for (kind, rid), state in fake.records.items() if kind == "grid" and state["code"][0] == GRID)
    put(fake, "grid", {"boundary": SQUARE}, "ref", record_id=grid_id)
    put(fake, "grid", {"code": "G-0201", "name": "西湖一网格", "community": "西湖社区", "street": "西湖街道",
                       "district": "示范区", "boundary": SQUARE}, "ref")  # not this worker's grid
    sync(core, fake)
    area = ReportPresenter(core).map_area()
    assert [(o.code, o.name, len(o.rings[0])) for o in area.outlines] == [(GRID, "东湖一网格", 5)]
    assert area.outlines[0].rings[0][0] == (22.5410, 114.0545)  # (lat, lon), from GeoJSON's [lon, lat]
    assert (area.tiles_path, area.tiles_problem) == (None, None)


def test_the_maps_tile_file_is_checked_before_it_is_kept_and_said_when_it_goes(core, tmp_path):
    from mobile.presenters import map_tiles_path, set_map_tiles

    from .test_location import make_mbtiles

    for path, code in ((tmp_path / "none.mbtiles", "not_found"), (tmp_path, "not_found"), (3, "invalid"),
                       ("x" * 5000, "too_long")):
        with pytest.raises(InputError) as caught:
            set_map_tiles(core, str(path) if isinstance(path, Path) else path)
        assert (caught.value.field, caught.value.code) == ("map_tiles", code)
    junk = tmp_path / "junk.mbtiles"
    junk.write_bytes(b"not sqlite")
    with pytest.raises(InputError) as caught:
        set_map_tiles(core, str(junk))
    assert caught.value.code == "not_mbtiles"
    assert map_tiles_path(core) is None  # nothing kept by a refusal
    tiles = tmp_path / "city.mbtiles"
    make_mbtiles(tiles, {(16, 53531, 28553): (200, 220, 180)})
    assert set_map_tiles(core, f"  {tiles}  ") == str(tiles)
    assert ReportPresenter(core).map_area().tiles_path == str(tiles)
    tiles.unlink()  # the memory card was taken out
    area = ReportPresenter(core).map_area()
    assert (area.tiles_path, area.tiles_problem) == (None, "not_found")
    assert set_map_tiles(core, "") is None and map_tiles_path(core) is None


# --- save: validation first, nothing written -----------------------------------------------------

GOOD = {"grid": GRID, "category": "fire_hazard", "description": "消防通道被杂物堵塞", "no_location_reason": "indoors"}


@pytest.mark.parametrize("changes, field, code", [
    ({"grid": None}, "grid", "required"),
    ({"grid": ""}, "grid", "required"),
    ({"grid": "G-9999"}, "grid", "unknown"),
    ({"category": None}, "category", "required"),
    ({"category": "no_such"}, "category", "unknown"),
    ({"category": "old_thing"}, "category", "unknown"),  # deleted by the admins
    ({"description": ""}, "description", "required"),
    ({"description": "   \n "}, "description", "required"),
    ({"description": None}, "description", "required"),
    ({"description": "长" * (DESCRIPTION_MAX + 1)}, "description", "too_long"),
    ({"description": "a\x00b"}, "description", "invalid"),
    ({"note": "n" * (NOTE_MAX + 1), "handled_on_spot": False}, "note", "too_long"),
    ({"handled_on_spot": True}, "handled_on_spot", "not_micro"),
    ({"urgent": "yes"}, "urgent", "invalid"),
    ({"location": LocationReading(95.0, 114.0, 5.0, "gps")}, "location", "invalid"),
    ({"location": LocationReading(22.0, 114.0, -1.0, "gps")}, "location", "invalid"),
    ({"location": LocationReading(22.0, 114.0, 5.0, "satellite")}, "location", "invalid"),
    ({"location": LocationReading(float("nan"), 114.0, 5.0, "gps")}, "location", "invalid"),
    ({"photos": ["0" * 64]}, "photos", "unknown"),
    ({"photos": ["not a hash"]}, "photos", "unknown"),
    # No position and no reason: refused by the presenter, whoever calls it (not only by the form).
    ({"no_location_reason": None}, "no_location_reason", "required"),
    ({"no_location_reason": None, "location": NO_READING}, "no_location_reason", "required"),
])
def test_save_refuses_bad_input_before_writing_anything(core, changes, field, code):
    before = snapshot(core)
    with pytest.raises(InputError) as caught:
        ReportPresenter(core).save(**{**GOOD, **changes})
    assert (caught.value.field, caught.value.code) == (field, code)
    assert snapshot(core) == before


@pytest.mark.parametrize("fake, offered", [({"role": "worker"}, True), ({"role": "supervisor"}, False),
                                           ({"role": "unit"}, False)], indirect=["fake"])
def test_handling_on_the_spot_is_offered_for_micro_events_to_whom_the_fold_applies_it(core, offered):
    report = ReportPresenter(core)
    assert not report.offers_on_spot("fire_hazard") and not report.offers_on_spot(None)
    assert report.offers_on_spot("ebike_stairwell") is offered
    if not offered:
        with pytest.raises(InputError) as caught:
            report.save(grid=GRID, category="ebike_stairwell", description="x", handled_on_spot=True,
                        no_location_reason="indoors")
        assert (caught.value.field, caught.value.code) == ("handled_on_spot", "not_allowed")


def test_save_without_a_user_is_refused(tmp_path, fake, clock):
    core = open_core(tmp_path / "fresh", fake, clock)
    try:
        with pytest.raises(InputError) as caught:
            ReportPresenter(core).save(**GOOD)
        assert caught.value.code == "not_logged_in"
        assert core.store.counts().records == 0
    finally:
        core.close()


def test_save_writes_the_event_offline_with_every_field(core, fake):
    report = ReportPresenter(core)
    sha = report.add_photo(jpeg())
    calls = len(fake.calls)
    event_id = report.save(**GOOD, urgent=True, location=LocationReading(22.5, 114.0, 5.0, "gps"), photos=[sha],
                           address="东湖路3号")
    assert len(fake.calls) == calls  # offline: no network call
    event = core.store.get("event", event_id)
    assert event.bucket == f"grid:{GRID}" and not event.synced
    assert event.values == {
        "grid": GRID, "category": "fire_hazard", "description": GOOD["description"], "urgent": True,
        "micro": False, "reporter": WORKER, "reported_at": format_ms(T0),
        "location": {"lat": 22.5, "lon": 114.0, "accuracy_m": 5.0, "source": "gps"}, "photos": [sha],
        "address": "东湖路3号"}


def test_a_micro_event_handled_on_the_spot_is_a_closed_case_at_once_and_on_the_server(core, fake):
    report = ReportPresenter(core)
    sha = report.add_photo(jpeg())
    event_id = report.save(grid=GRID, category="ebike_stairwell", description="楼道充电", handled_on_spot=True,
                           note="已劝离", photos=[sha], no_location_reason="indoors")
    row = CasesPresenter(core).rows()[0]
    assert (row.event_id, row.status, row.resolution, row.micro) == (event_id, "closed", "handled_on_spot", True)
    view = CasePresenter(core, event_id).view()
    assert [(t.action, t.applied, t.note, t.by_me) for t in view.timeline] == [
        ("handle_on_spot", True, "已劝离", True)]
    sync(core, fake)
    held = [state for (kind, _id), state in fake.records.items() if kind == "case_action"]
    assert [(s["action"][0], s["note"][0], s["photos"][0]) for s in held] == [("handle_on_spot", "已劝离", [sha])]
    assert CasesPresenter(core).rows()[0].synced


def test_event_and_on_the_spot_action_are_one_transaction(core, monkeypatch):
    """If the second write fails, the first is not committed either."""
    from mobile import store as store_module
    before = snapshot(core)
    real = store_module.Store._write

    def failing(self, kind, record_id, values, bucket):
        if kind == "case_action":
            raise store_module.ValidationError({"fields": ["boom"]})
        return real(self, kind, record_id, values, bucket)

    monkeypatch.setattr(store_module.Store, "_write", failing)
    report = ReportPresenter(core)
    sha = report.add_photo(jpeg())
    before = snapshot(core)
    with pytest.raises(InputError):
        report.save(grid=GRID, category="ebike_stairwell", description="x", handled_on_spot=True, note="已劝离",
                    photos=[sha], no_location_reason="indoors")
    assert snapshot(core) == before


@pytest.mark.parametrize("note, with_photo, field", [(None, True, "note"), ("  ", True, "note"),
                                                     ("已劝离", False, "photos")])
def test_handling_on_the_spot_needs_a_note_and_a_photo(core, note, with_photo, field):
    report = ReportPresenter(core)
    photos = [report.add_photo(jpeg())] if with_photo else []
    before = snapshot(core)
    with pytest.raises(InputError) as caught:
        report.save(grid=GRID, category="ebike_stairwell", description="x", handled_on_spot=True, note=note,
                    photos=photos, no_location_reason="indoors")
    assert (caught.value.field, caught.value.code) == (field, "required")
    assert snapshot(core) == before


def test_add_photo_uses_the_settings_size_and_remove_discards_it(core):
    from io import BytesIO

    from PIL import Image

    from tests.photos.helpers import make_jpeg
    core.save_settings(photo_max_px=400)
    report = ReportPresenter(core)
    sha = report.add_photo(make_jpeg(1200, 900))
    with Image.open(BytesIO(core.photos.path(sha).read_bytes())) as image:
        assert max(image.size) == 400
    report.remove_photo(sha)
    assert core.photos.get(sha) is None and not core.photos.path(sha).exists()


def test_add_photo_refuses_what_is_not_an_image(core, tmp_path):
    with pytest.raises(InputError) as caught:
        ReportPresenter(core).add_photo(b"not a jpeg at all")
    assert (caught.value.field, caught.value.code) == ("photo", "not_an_image")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(grid=st.sampled_from([GRID, GRID2, "G-9999", "", None]),
       category=st.sampled_from(["fire_hazard", "ebike_stairwell", "old_thing", "nope", None]),
       description=st.one_of(st.none(), st.text(max_size=30), st.just("x" * (DESCRIPTION_MAX + 1))),
       on_spot=st.booleans(), urgent=st.booleans())
def test_law_save_writes_all_of_a_capture_or_nothing(core, grid, category, description, on_spot, urgent):
    """Whatever the form holds: an InputError and an untouched store, or exactly the capture's records."""
    before = snapshot(core)
    try:
        event_id = ReportPresenter(core).save(grid=grid, category=category, description=description,
                                              urgent=urgent, handled_on_spot=on_spot, no_location_reason="indoors")
    except InputError:
        assert snapshot(core) == before
        return
    written = 2 if on_spot else 1
    records, unsynced, _rejected, _pending = snapshot(core)
    assert (records, unsynced) == (before[0] + written, before[1] + written)
    row = next(r for r in CasesPresenter(core).rows() if r.event_id == event_id)
    assert row.status == ("closed" if on_spot else "reported")


# --- my cases ------------------------------------------------------------------------------------

def test_my_cases_lists_only_my_events_awaiting_me_first_then_newest(core, fake, clock):
    report = ReportPresenter(core)
    ids = []
    for n in range(4):
        ids.append(report.save(grid=GRID, category="fire_hazard", description=f"event {n}",
                               no_location_reason="indoors"))
        clock.advance(60_000)
    put(fake, "event", {"grid": GRID, "category": "fire_hazard", "description": "someone else's",
                        "reporter": OTHER_WORKER, "reported_at": "2026-11-18T09:00:00.000Z"}, f"grid:{GRID}")
    sync(core, fake)
    supervisor_acts(fake, ids[0], "dispatch", "rectify")  # the oldest now waits for me
    supervisor_acts(fake, ids[2], "dispatch")
    sync(core, fake)
    rows = CasesPresenter(core).rows()
    assert [r.event_id for r in rows] == [ids[0], ids[3], ids[2], ids[1]]
    assert [(r.status, r.awaiting_me) for r in rows] == [
        ("rectified", True), ("reported", False), ("dispatched", False), ("reported", False)]
    assert rows[0].deadline == format_ms(T0 + 4 * 60_000 + 72 * HOUR_MS)  # fire_hazard's 72 hours from dispatch
    assert HomePresenter(core).view().awaiting_me == 1


def test_my_cases_fold_is_the_shared_fold_over_every_action(core, fake):
    event_id = ReportPresenter(core).save(**GOOD)
    sync(core, fake)
    supervisor_acts(fake, event_id, "dispatch", "rectify")
    sync(core, fake)
    CasePresenter(core, event_id).verify(False, "还有杂物")
    sync(core, fake)  # the unit sees the failure, then rectifies again
    supervisor_acts(fake, event_id, "rectify")
    sync(core, fake)
    row = CasesPresenter(core).rows()[0]
    event = core.store.get("event", event_id).values
    actions = [Action.from_state(rid, state) for rid, _b, state in
               core.store.states("case_action", where=("event", event_id))]
    expected = fold_case(event, actions, now_ms=core.now_ms())
    assert (row.status, row.failed_verifications, row.awaiting_me) == (expected.status, 1, True)


@settings(max_examples=15, deadline=None)
@given(plan=st.lists(st.tuples(st.integers(0, 5_000), st.sampled_from(["none", "dispatched", "rectified", "closed"])),
                     min_size=1, max_size=8))
def test_law_my_cases_order_awaiting_first_then_newest_and_status_is_the_fold(plan):
    clock = ManualClock(T0)
    fake = seeded_server(clock)
    with tempfile.TemporaryDirectory() as folder:
        core = logged_in(Path(folder), fake, clock)
        try:
            report = ReportPresenter(core)
            ids = []
            for gap, _path in plan:
                clock.advance(gap * 1000)
                ids.append(report.save(grid=GRID, category="fire_hazard", description="x",
                                       no_location_reason="indoors"))
            sync(core, fake)
            chain = {"none": (), "dispatched": ("dispatch",), "rectified": ("dispatch", "rectify"),
                     "closed": ("dispatch", "close")}
            for event_id, (_gap, path) in zip(ids, plan):
                supervisor_acts(fake, event_id, *chain[path])
            sync(core, fake)
            rows = CasesPresenter(core).rows()
            assert sorted(r.event_id for r in rows) == sorted(ids)
            keys = [(not r.awaiting_me, r.reported_at) for r in rows]
            for (a_wait, a_at), (b_wait, b_at) in itertools.pairwise(keys):
                assert a_wait < b_wait or (a_wait == b_wait and a_at >= b_at)
            status = {"none": "reported", "dispatched": "dispatched", "rectified": "rectified", "closed": "closed"}
            by_id = {r.event_id: r for r in rows}
            for event_id, (_gap, path) in zip(ids, plan):
                assert by_id[event_id].status == status[path]
                assert by_id[event_id].awaiting_me == (path == "rectified")
        finally:
            core.close()


def test_my_cases_reads_thousands_of_events_in_a_few_statements(core, fake):
    """A few statements, not one per row: 3,000 events and 6,000 actions (no clock: the machine is shared)."""
    store = core.store
    writes = []
    for n in range(3000):
        event_id = store.new_id()
        writes.append(("event", event_id, {"grid": GRID, "category": "fire_hazard", "description": f"e{n}",
                                           "reporter": WORKER, "reported_at": "2026-11-18T08:00:00.000Z"}, None))
        for action, actor in (("dispatch", SUPERVISOR), ("rectify", UNIT_USER)):
            values = {"event": event_id, "action": action, "actor": actor}
            if action == "dispatch":
                values["unit"] = "fire"
            writes.append(("case_action", store.new_id(), values, f"grid:{GRID}"))
    store.write_many(writes)
    statements = []
    store._db.set_trace_callback(statements.append)
    try:
        rows = CasesPresenter(core).rows()
    finally:
        store._db.set_trace_callback(None)
    assert len(rows) == 3000 and all(r.awaiting_me for r in rows)
    assert len(statements) < 20, statements


# --- one case and verification -------------------------------------------------------------------

def test_verify_is_refused_unless_the_case_awaits_my_verification(core, fake):
    event_id = ReportPresenter(core).save(**GOOD)
    case = CasePresenter(core, event_id)
    assert not case.view().can_verify
    with pytest.raises(InputError) as caught:
        case.verify(True)
    assert (caught.value.field, caught.value.code) == ("case", "not_awaiting")


def test_verify_fail_needs_a_note_and_returns_the_case(core, fake):
    event_id = ReportPresenter(core).save(**GOOD)
    sync(core, fake)
    supervisor_acts(fake, event_id, "dispatch", "rectify")
    sync(core, fake)
    case = CasePresenter(core, event_id)
    assert case.view().can_verify
    before = snapshot(core)
    for note in (None, "", "   "):
        with pytest.raises(InputError) as caught:
            case.verify(False, note)
        assert (caught.value.field, caught.value.code) == ("note", "required")
    assert snapshot(core) == before
    case.verify(False, "灭火器仍未配备")
    view = case.view()
    assert (view.status, view.failed_verifications, view.can_verify) == ("returned", 1, False)
    assert view.timeline[-1].action == "verify_fail" and view.timeline[-1].note == "灭火器仍未配备"
    assert not view.timeline[-1].synced


def test_verify_pass_closes_the_case_after_sync_with_the_server(core, fake):
    report = ReportPresenter(core)
    sha = report.add_photo(jpeg(1))
    event_id = report.save(**GOOD, photos=[sha])
    sync(core, fake)
    supervisor_acts(fake, event_id, "dispatch", "rectify")
    sync(core, fake)
    proof = report.add_photo(jpeg(2))
    action_id = CasePresenter(core, event_id).verify(True, "已整改", photos=[proof])
    sync(core, fake)
    server_event = {n: w[0] for n, w in fake.records[("event", event_id)].items()}
    server_actions = [Action(rid, state["action"][1], {n: w[0] for n, w in state.items()})
                      for (kind, rid), state in fake.records.items() if kind == "case_action"]
    on_server = fold_case(server_event, server_actions)
    assert (on_server.status, on_server.resolution) == ("closed", "verified")
    assert proof in fake.photos and sha in fake.photos
    view = CasePresenter(core, event_id).view()
    assert (view.status, view.resolution, view.synced) == ("closed", "verified", True)
    assert view.timeline[-1].action_id == action_id and view.timeline[-1].photos[0].sha256 == proof
    assert view.photos[0][0] == sha and view.photos[0][1] is not None  # the thumbnail stays after upload


def test_an_unsynced_verification_shows_as_pending_beside_the_servers_status_until_it_syncs(core, fake):
    event_id = ReportPresenter(core).save(**GOOD)
    sync(core, fake)
    supervisor_acts(fake, event_id, "dispatch", "rectify")
    sync(core, fake)
    case = CasePresenter(core, event_id)
    before = case.view()
    assert (before.server_status, before.pending) == ("rectified", 0)
    assert not any(row.pending for row in before.timeline)
    action_id = case.verify(True, "已整改")
    view = case.view()
    # The tablet's result (no second verification offered), and apart from it what the server holds.
    assert (view.status, view.resolution, view.can_verify) == ("closed", "verified", False)
    assert (view.server_status, view.server_resolution, view.pending) == ("rectified", None, 1)
    assert [(row.action, row.pending) for row in view.timeline] == [
        ("dispatch", False), ("rectify", False), ("verify_pass", True)]
    assert view.timeline[-1].action_id == action_id
    sync(core, fake)
    view = case.view()
    assert (view.server_status, view.server_resolution, view.pending) == ("closed", "verified", 0)
    assert not view.timeline[-1].pending


def test_a_refused_own_action_is_not_the_servers_state_nor_pending(core, fake):
    event_id = ReportPresenter(core).save(**GOOD)
    _sync_once(core, fake)
    fake.reject = lambda change: ("forbidden: not now", "role_may_not") if change.kind == "case_action" else None
    supervisor_acts(fake, event_id, "dispatch", "rectify")
    _sync_once(core, fake)
    CasePresenter(core, event_id).verify(False, "还有杂物")
    _sync_once(core, fake)
    view = CasePresenter(core, event_id).view()
    assert view.status == "returned" and view.server_status == "rectified" and view.pending == 0
    assert (view.timeline[-1].action, view.timeline[-1].pending) == ("verify_fail", False)
    assert view.timeline[-1].refusal is not None


def test_a_micro_event_handled_on_the_spot_offline_is_pending_and_reported_on_the_server(core):
    report = ReportPresenter(core)
    event_id = report.save(grid=GRID, category="ebike_stairwell", description="楼道充电", handled_on_spot=True,
                           note="已劝离", photos=[report.add_photo(jpeg())], no_location_reason="indoors")
    view = CasePresenter(core, event_id).view()
    assert (view.status, view.server_status, view.pending) == ("closed", "reported", 1)
    assert [(row.action, row.applied, row.pending) for row in view.timeline] == [("handle_on_spot", True, True)]


def test_a_verification_that_lost_the_race_stays_in_the_timeline_superseded(core, fake):
    event_id = ReportPresenter(core).save(**GOOD)
    sync(core, fake)
    supervisor_acts(fake, event_id, "dispatch", "rectify")
    sync(core, fake)
    supervisor_acts(fake, event_id, "close")  # the office closes it while the tablet is offline
    fake.physical.advance(1000)  # the shared clock: the tablet's verification comes later in time
    CasePresenter(core, event_id).verify(False, "not fixed")
    sync(core, fake)
    view = CasePresenter(core, event_id).view()
    assert view.status == "closed" and view.resolution == "closed"
    last = view.timeline[-1]
    assert (last.action, last.applied, last.superseded) == ("verify_fail", False, True)


@pytest.mark.parametrize("fake, offered", [
    ({"user_id": WORKER}, True),  # the reporter
    ({"user_id": OTHER_WORKER}, False),  # another worker of the grid
    ({"user_id": SUPERVISOR, "role": "supervisor"}, True),  # standing in for the reporter
    ({"user_id": UNIT_USER, "role": "unit"}, False),  # units rectify; they never verify
], indirect=["fake"])
def test_verification_is_offered_to_whom_the_fold_applies_it(core, fake, offered):
    event_id = put(fake, "event", {"grid": GRID, "category": "fire_hazard", "description": "堵塞",
                                   "reporter": WORKER, "reported_at": format_ms(T0)}, f"grid:{GRID}")
    supervisor_acts(fake, event_id, "dispatch", "rectify")
    sync(core, fake)
    case = CasePresenter(core, event_id)
    assert case.view().can_verify is offered
    if not offered:
        with pytest.raises(InputError) as caught:
            case.verify(True)
        assert caught.value.code == "not_awaiting"
        return
    action_id = case.verify(True)
    assert core.store.get("case_action", action_id).values.get("stand_in", False) is (core.user_id != WORKER)
    sync(core, fake)
    view = case.view()
    assert (view.status, view.resolution, view.timeline[-1].applied) == ("closed", "verified", True)


def test_case_view_of_an_unknown_event_is_not_found(core):
    with pytest.raises(InputError) as caught:
        CasePresenter(core, "0193b5c8-ffff-7000-8000-000000000000").view()
    assert caught.value.code == "not_found"


# --- home and sync screens -----------------------------------------------------------------------

def test_home_counts_what_waits_and_the_rejections(core, fake):
    report = ReportPresenter(core)
    sha = report.add_photo(jpeg(3))
    report.save(**GOOD, photos=[sha])
    view = HomePresenter(core).view()
    assert (view.user_name, view.unsynced_records, view.unsynced_photos, view.rejected) == ("张伟", 1, 1, 0)
    assert [g.code for g in view.grids] == [GRID, GRID2] and view.last_sync is None and not view.needs_login
    sync(core, fake)
    view = HomePresenter(core).view()
    assert (view.unsynced_records, view.unsynced_photos) == (0, 0)


def test_sync_screen_lists_rejections_with_reasons_and_dismisses_them(core, fake):
    fake.reject = lambda change: "forbidden: not your grid" if change.kind == "event" else None
    ReportPresenter(core).save(**GOOD)
    schedule = QueueSchedule()
    runner = SyncRunner(core, schedule)
    presenter = SyncPresenter(core, runner)
    assert presenter.retry() is True
    assert runner.join(10)
    schedule.drain()
    rows = presenter.rejections()
    assert [(r.kind, r.reason, r.summary) for r in rows] == [("event", "forbidden: not your grid", GOOD["description"])]
    assert presenter.counts().rejected == 1 and core.last_sync().rejected == 1
    presenter.dismiss(rows[0].seq)
    assert presenter.rejections() == [] and presenter.counts().rejected == 0


def test_presenters_work_without_any_network(tmp_path, clock):
    """Logged in once, then the server is gone: every screen still reads and writes."""
    fake = seeded_server(clock)
    core = logged_in(tmp_path / "app", fake, clock)
    core.transport_factory = lambda url, token: (_ for _ in ()).throw(AssertionError("no network"))
    try:
        report = ReportPresenter(core)
        event_id = report.save(grid=GRID, category="ebike_stairwell", description="x", handled_on_spot=True,
                               note="已劝离", photos=[report.add_photo(jpeg())], no_location_reason="indoors")
        assert CasesPresenter(core).rows()[0].event_id == event_id
        assert CasePresenter(core, event_id).view().status == "closed"
        assert HomePresenter(core).view().unsynced_records == 2
    finally:
        core.close()


def test_no_kivy_in_the_core():
    import subprocess
    import sys
    code = ("import sys, mobile.app_core, mobile.presenters, mobile.background, mobile.location; "
            "print(any(m == 'kivy' or m.startswith('kivy.') or m.startswith('plyer') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "False"



# --- the memo of folded cases -------------------------------------------------------------------

def test_my_cases_memo_follows_every_change(core, fake, clock):
    """Rows come from the memo only while nothing they were folded from changed."""
    cases = CasesPresenter(core)
    first = ReportPresenter(core).save(**GOOD)
    second = ReportPresenter(core).save(**GOOD)
    assert [r.status for r in cases.rows()] == ["reported", "reported"]
    assert not cases.rows()[0].synced
    sync(core, fake)
    assert all(r.synced for r in cases.rows())
    supervisor_acts(fake, first, "dispatch")
    sync(core, fake)
    row = next(r for r in cases.rows() if r.event_id == first)
    assert row.status == "dispatched" and row.deadline == format_ms(T0 + 72 * HOUR_MS)
    assert not row.overdue
    clock.advance(73 * HOUR_MS)  # no write at all: the deadline passes
    assert next(r for r in cases.rows() if r.event_id == first).overdue
    # The admins change the category's hours: the fallback deadline follows.
    category_id = next(rid for (kind, rid), state in fake.records.items()
                       if kind == "category" and state["code"][0] == "fire_hazard")
    put(fake, "category", {"deadline_hours": 24}, "ref", record_id=category_id)
    sync(core, fake)
    row = next(r for r in CasesPresenter(core).rows() if r.event_id == first)
    assert row.deadline == format_ms(T0 + 24 * HOUR_MS)
    core.store.delete("event", second)
    assert [r.event_id for r in cases.rows()] == [first]
    assert set(core.cache[CasesPresenter.MEMO]) == {first}


def test_my_cases_memo_is_per_user(core, fake):
    ReportPresenter(core).save(**GOOD)
    assert len(CasesPresenter(core).rows()) == 1
    core.logout()
    fake.user = {"id": OTHER_WORKER, "name": "李娜", "role": "worker"}
    sync(core, fake)  # everything synced: another user may log in
    core.login("https://gridpatrol.test", "worker2", "secret")
    assert CasesPresenter(core).rows() == []


def test_my_cases_memo_follows_the_role(core, fake):
    event_id = ReportPresenter(core).save(**GOOD)
    sync(core, fake)
    supervisor_acts(fake, event_id, "dispatch", "rectify")
    sync(core, fake)
    assert CasesPresenter(core).rows()[0].awaiting_me
    fake.user = {**fake.user, "role": "unit"}  # the admins changed the user's role
    core.login("https://gridpatrol.test", "worker1", "secret")
    assert not CasesPresenter(core).rows()[0].awaiting_me


def test_remove_photo_frees_a_form_photo_at_once_and_keeps_a_saved_one(core):
    report = ReportPresenter(core)
    kept = report.add_photo(jpeg(4))
    report.save(**GOOD, photos=[kept])
    again = ReportPresenter(core)
    assert again.add_photo(jpeg(4)) == kept  # the same file chosen again for another event
    again.remove_photo(kept)
    assert core.photos.get(kept) is not None and core.photos.path(kept).exists()
    loose = again.add_photo(jpeg(5))
    spare = again.add_photo(jpeg(6))
    again.remove_photo(loose)
    assert core.photos.get(loose) is None
    assert again.discard_unsaved() == 1 and core.photos.get(spare) is None


# --- issue 13: where a record stands; refused records mended, resent or discarded -------------------------

def _sync_once(core, fake):
    report = synchronize(core.store, fake, photos=core.photos)
    assert report.ok, report.error
    return report


def test_every_case_row_and_page_says_where_it_stands_and_a_refused_event_is_mended_and_resent(core, fake):
    from mobile import i18n

    fake.reject = lambda change: (f"forbidden: grid:{GRID2} is not one of your grids", "not_your_grid") \
        if change.kind == "event" and change.values.get("grid") == GRID2 else None
    kept = ReportPresenter(core).save(**GOOD)
    wrong = ReportPresenter(core).save(**{**GOOD, "grid": GRID2, "description": "网格选错了"})
    states = {row.event_id: row.sync_state for row in CasesPresenter(core).rows()}
    assert states == {kept: "local", wrong: "local"}
    _sync_once(core, fake)
    rows = {row.event_id: row for row in CasesPresenter(core).rows()}
    assert rows[kept].sync_state == "synced" and rows[kept].refusal is None
    assert rows[wrong].sync_state == "refused" and rows[wrong].refusal.code == "not_your_grid"
    view = CasePresenter(core, wrong).view()
    assert view.sync_state == "refused" and view.can_mend and view.description == "网格选错了"  # nothing lost
    i18n.set_language("zh")
    assert i18n.state_text(view.sync_state, view.refusal) == "被拒绝：不是您负责的网格"
    with pytest.raises(InputError) as caught:
        CasePresenter(core, wrong).mend(grid="G-9999")
    assert caught.value.code == "unknown"
    with pytest.raises(InputError):
        CasePresenter(core, kept).mend(grid=GRID)  # not refused: nothing to mend
    assert CasePresenter(core, wrong).mend(grid=GRID) > 0
    view = CasePresenter(core, wrong).view()
    assert view.sync_state == "local" and view.refusal is None and view.grid == GRID
    _sync_once(core, fake)
    assert CasePresenter(core, wrong).view().sync_state == "synced"
    assert fake.records[("event", wrong)]["grid"][0] == GRID and core.store.rejections() == []


def test_a_discarded_refusal_leaves_no_state_the_server_does_not_hold(core, fake):
    fake.reject = lambda change: "forbidden: not your grid" if change.values.get("description") == "拒" else None
    held = ReportPresenter(core).save(**GOOD)
    _sync_once(core, fake)
    core.store.write("event", held, {"description": "拒"})  # an edit the server refuses
    never = ReportPresenter(core).save(**{**GOOD, "description": "拒"})  # a new event it refuses
    _sync_once(core, fake)
    assert {r.event_id: r.sync_state for r in CasesPresenter(core).rows()} == {held: "refused", never: "refused"}
    assert CasePresenter(core, held).view().refusal.code is None  # an older server: its words are shown
    rows = SyncPresenter(core, SyncRunner(core, QueueSchedule())).rejections()
    assert sorted(r.event_id for r in rows) == sorted([held, never])
    assert CasePresenter(core, never).discard_refused() is True  # the server never had it: gone
    assert core.store.get("event", never) is None
    assert CasePresenter(core, held).discard_refused() is False
    _sync_once(core, fake)  # the bucket is pulled again: the server's description comes back
    view = CasePresenter(core, held).view()
    assert view.description == GOOD["description"] and view.sync_state == "synced"
    assert [r.event_id for r in CasesPresenter(core).rows()] == [held]
    assert core.store.counts().unsynced == 0 and core.store.rejections() == []


def test_a_refused_verification_shows_on_the_timeline_and_is_discarded(core, fake):
    event_id = ReportPresenter(core).save(**GOOD)
    _sync_once(core, fake)
    fake.reject = lambda change: ("forbidden: the worker role may not close", "role_may_not") \
        if change.kind == "case_action" else None
    action = core.store.create("case_action", {"event": event_id, "action": "comment", "actor": core.user_id,
                                               "note": "补充说明"}).id
    _sync_once(core, fake)
    view = CasePresenter(core, event_id).view()
    assert view.sync_state == "refused" and not view.can_mend
    assert [row.refusal.code for row in view.timeline if row.action_id == action] == ["role_may_not"]
    [row] = CasesPresenter(core).rows()
    assert row.sync_state == "refused"
    CasePresenter(core, event_id).discard_refused()
    assert core.store.get("case_action", action) is None
    assert CasePresenter(core, event_id).view().sync_state == "synced"


def test_the_sync_screen_resends_or_discards_a_refusal(core, fake):
    refuse = {"on": True}
    fake.reject = lambda change: ("forbidden: not now", "role_may_not") if refuse["on"] else None
    event_id = ReportPresenter(core).save(**GOOD)
    _sync_once(core, fake)
    presenter = SyncPresenter(core, SyncRunner(core, QueueSchedule()))
    [row] = presenter.rejections()
    assert (row.code, row.event_id) == ("role_may_not", event_id)
    refuse["on"] = False  # e.g. an admin gave the worker the grid meanwhile
    assert presenter.resend(row.seq) > 0 and presenter.rejections() == []
    _sync_once(core, fake)
    assert ("event", event_id) in fake.records and CasesPresenter(core).rows()[0].sync_state == "synced"

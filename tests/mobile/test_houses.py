"""The rental-house presenter (mobile/houses.py) on a real tablet store, without a window."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import pytest
from hypothesis import given, strategies as st

from mobile.houses import HousesPresenter, normalise_resident_id
from mobile.presenters import InputError
from mobile.store import Store
from mobile.sync import synchronize
from shared.hlc import format_ms
from shared.houses import combined_rate, living_there, registration_rate
from shared.idcard import check_digit

from .fakes import DAY_MS, T0, FakeServer, ManualClock

NODE = "a1b2c3d4e5f60718"
WORKER = {"id": "0193b5c8-0000-7000-8000-0000000000aa", "name": "张伟", "role": "worker"}
SERVER_HLC = f"{format_ms(T0 - 60_000)}-0000-5e7e7e7e7e7e7e7e"
LATER_HLC = f"{format_ms(T0 - 30_000)}-0000-5e7e7e7e7e7e7e7e"
GRID_BUCKET = "grid:G-0101"
HOUSE = "0193b5c8-0000-7000-8000-0000000000b1"
ITEMS = [("extinguisher", "配备有效灭火器", "fire_hazard"), ("escape_route", "疏散通道畅通", "blocked_escape"),
         ("ebike_indoor", "无电动车室内充电", "ebike_charging")]


HAZARDS = {"ebike_indoor": "电动车在室内充电"}  # a failed item's words; the others have none and say their rule
X_SERIAL = 0  # 44030519900101000 has the check character X


def valid_id(serial: int = 1) -> str:
    body = f"44030519900101{serial:03d}"
    return body + check_digit(body)


def remote(kind, record_id, bucket, values, hlc=SERVER_HLC):
    return {"kind": kind, "id": record_id, "bucket": bucket, "fields": {k: [v, hlc] for k, v in values.items()}}


def checklist(version, items, record_id="0193b5c8-0000-7000-8000-0000000000c1", hlc=SERVER_HLC):
    return remote("checklist", record_id, "ref", {
        "code": "rental_house", "name": "出租屋安全检查", "version": version,
        "items": [{"code": c, "text": t, "category": cat, **({"hazard": HAZARDS[c]} if c in HAZARDS else {})}
                  for c, t, cat in items]}, hlc)


@pytest.fixture
def core(tmp_path):
    clock = ManualClock(T0)
    with Store(tmp_path / "t.db", physical=clock, node=NODE) as store:
        store.apply_remote([
            checklist(1, ITEMS),
            remote("rental_house", HOUSE, GRID_BUCKET, {"grid": "G-0101", "address": "白石洲 12 栋", "owner": "陈先生",
                                                        "location": {"lat": 22.54, "lon": 114.05, "accuracy_m": 5.0,
                                                                     "source": "gps"}}),
            remote("rental_house", "0193b5c8-0000-7000-8000-0000000000b2", GRID_BUCKET,
                   {"grid": "G-0101", "address": "东湖路 3 号", "owner": "刘女士"}),
        ], {"ref": "1", GRID_BUCKET: "2"})
        yield SimpleNamespace(store=store, photos=None, user=WORKER, clock=clock)


def all_pass(**overrides):
    answers = {code: ("pass", None) for code, _, _ in ITEMS}
    answers.update(overrides)
    return answers


def test_houses_are_found_by_address_or_owner(core):
    houses = HousesPresenter(core)
    assert [h.address for h in houses.houses()] == ["东湖路 3 号", "白石洲 12 栋"]
    assert [h.id for h in houses.houses("白石洲")] == [HOUSE]
    assert [h.owner for h in houses.houses("刘")] == ["刘女士"]
    assert houses.houses("nobody") == []


def test_a_failed_item_is_an_open_hazard_until_a_later_check_passes_it(core):
    houses = HousesPresenter(core)
    first = houses.save_check(HOUSE, all_pass(escape_route=("fail", "楼道堆放杂物")), residents_seen=4,
                              photos=["ab" * 32])
    view = houses.house(HOUSE)
    assert [(h.item, h.category, h.note) for h in view.hazards] == [("escape_route", "blocked_escape", "楼道堆放杂物")]
    assert view.checks[0].id == first and view.checks[0].failed == ["escape_route"] and not view.checks[0].synced
    stored = core.store.get("house_check", first).values
    assert stored["checklist"] == "rental_house" and stored["checklist_version"] == 1
    assert stored["worker"] == WORKER["id"] and stored["residents_seen"] == 4
    row = {h.id: h for h in houses.houses()}[HOUSE]
    assert row.open_hazards == 1 and row.last_check_at == stored["checked_at"]

    core.clock.advance(60_000)
    houses.save_check(HOUSE, all_pass(), residents_seen=4)
    assert houses.house(HOUSE).hazards == []


def test_a_check_answers_the_current_checklist_and_records_its_version(core):
    core.store.apply_remote([checklist(2, ITEMS + [("smoke_alarm", "安装烟感报警器", "fire_hazard")],
                                       record_id="0193b5c8-0000-7000-8000-0000000000c2")], {"ref": "3"})
    houses = HousesPresenter(core)
    assert houses.checklist().version == 2
    with pytest.raises(InputError) as missing:
        houses.save_check(HOUSE, all_pass(), residents_seen=2)  # smoke_alarm, new in version 2, unanswered
    assert missing.value.field == "answers.smoke_alarm" and missing.value.code == "required"
    check = houses.save_check(HOUSE, all_pass(smoke_alarm=("na", None)), residents_seen=2)
    assert core.store.get("house_check", check).values["checklist_version"] == 2


@pytest.mark.parametrize("answers, field, code", [
    (all_pass(escape_route=("fail", "  ")), "answers.escape_route", "note_required"),
    (all_pass(escape_route=("maybe", None)), "answers.escape_route", "invalid"),
    (all_pass(unknown=("pass", None)), "answers.unknown", "not_in_checklist"),
])
def test_a_bad_check_says_which_item_and_writes_nothing(core, answers, field, code):
    with pytest.raises(InputError) as caught:
        HousesPresenter(core).save_check(HOUSE, answers, residents_seen=1)
    assert (caught.value.field, caught.value.code) == (field, code)
    assert core.store.query("house_check") == [] and core.store.counts().unsynced == 0


def test_a_failed_item_becomes_an_event_draft_with_category_photos_and_place(core):
    houses = HousesPresenter(core)
    photo = "cd" * 32
    check = houses.save_check(HOUSE, all_pass(ebike_indoor=("fail", "一楼飞线充电")), residents_seen=3, photos=[photo])
    draft = houses.event_draft(check, "ebike_indoor")
    assert draft.category == "ebike_charging" and draft.photos == [photo] and draft.grid == "G-0101"
    assert "白石洲 12 栋" in draft.description and "电动车在室内充电" in draft.description  # the hazard, not the rule
    assert "无电动车室内充电" not in draft.description
    assert draft.location["source"] == "gps"
    with pytest.raises(InputError):
        houses.event_draft(check, "extinguisher")  # it passed: nothing to report


def test_tenants_register_with_a_checked_id_number_and_move_out(core):
    houses = HousesPresenter(core)
    with pytest.raises(InputError) as wrong:
        houses.register_tenant(HOUSE, name="李四", id_number=valid_id()[:-1] + ("0" if valid_id()[-1] != "0" else "1"))
    assert wrong.value.code == "resident_id_check_character" and "check character" in wrong.value.detail
    assert core.store.query("tenant") == []
    number = valid_id(X_SERIAL)
    assert number.endswith("X")
    typed = f"{number[:6]} {number[6:14]} {number[14:].lower()}"  # as a worker types it: spaced, a small x
    tenant = houses.register_tenant(HOUSE, name=" 李四 ", id_number=typed, room="301", moved_in="2026-11-01")
    stored = core.store.get("tenant", tenant)
    assert stored.values["id_number"] == number and stored.values["name"] == "李四"
    assert stored.bucket == GRID_BUCKET
    [row] = houses.house(HOUSE).tenants
    assert row.id_number_shown == number[:4] + "*" * 10 + number[-4:]
    with pytest.raises(InputError):
        houses.move_out(tenant, "2026-10-01")  # before moving in
    houses.move_out(tenant, "2026-11-20")
    assert houses.house(HOUSE).tenants[0].moved_out == "2026-11-20"


def test_a_number_already_registered_is_said_before_saving_and_saved_when_the_worker_confirms(core):
    houses = HousesPresenter(core)
    number = valid_id()
    first = houses.register_tenant(HOUSE, name="王五", id_number=number)
    with pytest.raises(InputError) as same:
        houses.register_tenant(HOUSE, name="王五", id_number=number.lower(), room="302")
    assert same.value.code == "same_number" and "王五" in same.value.detail
    assert [t for t, _b, _s in core.store.states("tenant")] == [first]  # nothing written until confirmed
    second = houses.register_tenant(HOUSE, name="王五", id_number=number, room="302", confirm_same_number=True)
    assert {t for t, _b, _s in core.store.states("tenant")} == {first, second}
    houses.move_out(first)  # moved out today (the tablet's day): no longer living there
    houses.move_out(second)
    houses.register_tenant(HOUSE, name="王五", id_number=number, room="303")  # nobody else lives under it now


def test_a_tenant_the_tablet_holds_only_masked_is_not_taken_for_the_same_number(core):
    """A role that pulls masked numbers: the mask (first and last four) is shared by strangers, so it is no match;
    the server flags a real pair (mobile/houses.py, same_number)."""
    number = valid_id(1)
    # Another valid number with the same masked form: another county of the city, the same sequence and check.
    stranger = next(body + number[-1] for county in range(1, 100)
                    if check_digit(body := f"{number[:4]}{county:02d}19900101{number[14:17]}") == number[-1]
                    and body[:6] != number[:6])
    assert stranger[:4] + stranger[-4:] == number[:4] + number[-4:]
    core.store.apply_remote([remote("tenant", "0193b5c8-0000-7000-8000-0000000000d1", GRID_BUCKET, {
        "house": HOUSE, "name": "赵六", "id_number_masked": number[:4] + "*" * 10 + number[-4:]})],
        {GRID_BUCKET: "3"})
    houses = HousesPresenter(core)
    assert houses.same_number(number) == [] and houses.same_number(stranger) == []
    houses.register_tenant(HOUSE, name="钱七", id_number=stranger)  # no warning naming 赵六


def test_a_move_out_made_here_can_be_undone_for_ten_minutes(core):
    houses = HousesPresenter(core)
    tenant = houses.register_tenant(HOUSE, name="赵六")
    houses.move_out(tenant)
    [row] = houses.house(HOUSE).tenants
    assert not row.current and row.undoable
    houses.undo_move_out(tenant)
    [row] = houses.house(HOUSE).tenants
    assert row.current and row.moved_out is None and not row.undoable
    with pytest.raises(InputError):
        houses.undo_move_out(tenant)  # nothing to undo
    houses.move_out(tenant)
    core.clock.advance(11 * 60_000)
    assert not houses.house(HOUSE).tenants[0].undoable
    with pytest.raises(InputError) as late:
        houses.undo_move_out(tenant)
    assert late.value.code == "not_undoable"


def test_the_registration_rate_is_current_tenants_over_residents_seen_at_the_latest_check(core):
    houses = HousesPresenter(core)
    assert {h.id: h.rate for h in houses.houses()}[HOUSE] is None  # no check yet
    houses.save_check(HOUSE, all_pass(), residents_seen=4)
    for n in range(3):
        houses.register_tenant(HOUSE, name=f"租户{n}")
    gone = houses.register_tenant(HOUSE, name="已搬走")
    houses.move_out(gone, "2026-11-16")  # the clock stands at 2026-11-18
    assert houses.house(HOUSE).rate == 0.75
    assert {h.id: (h.tenants, h.rate) for h in houses.houses()}[HOUSE] == (3, 0.75)


def test_a_move_out_day_ahead_counts_from_that_day_as_on_the_pages(core):
    houses = HousesPresenter(core)
    houses.save_check(HOUSE, all_pass(), residents_seen=2)
    houses.register_tenant(HOUSE, name="租户")
    leaving = houses.register_tenant(HOUSE, name="月底搬走")
    houses.move_out(leaving, "2026-11-30")  # recorded ahead: still living there on 2026-11-18
    view = houses.house(HOUSE)
    assert view.rate == 1.0 and all(t.current for t in view.tenants)
    core.clock.advance(13 * DAY_MS)  # 2026-12-01 (the 30th or later in any time zone): gone
    view = houses.house(HOUSE)
    assert view.rate == 0.5 and [t.name for t in view.tenants if not t.current] == ["月底搬走"]


def test_moving_out_today_leaves_the_rate_at_once(core):
    houses = HousesPresenter(core)
    houses.save_check(HOUSE, all_pass(), residents_seen=1)
    tenant = houses.register_tenant(HOUSE, name="李四")
    assert houses.house(HOUSE).rate == 1.0
    houses.move_out(tenant)
    assert core.store.get("tenant", tenant).values["moved_out"] == date.fromtimestamp(T0 / 1000).isoformat()  # local
    assert houses.house(HOUSE).rate == 0.0


def test_more_tenants_than_residents_seen_is_100_percent_not_more(core):
    houses = HousesPresenter(core)
    houses.save_check(HOUSE, all_pass(), residents_seen=4)
    for n in range(5):
        houses.register_tenant(HOUSE, name=f"租户{n}")
    assert houses.house(HOUSE).rate == 1.0
    row = {h.id: h for h in houses.houses()}[HOUSE]
    assert (row.tenants, row.residents_seen, row.rate) == (5, 4, 1.0)  # 5 on file, 4 met: capped


def test_a_check_that_counted_nobody_gives_no_rate(core):
    houses = HousesPresenter(core)
    houses.register_tenant(HOUSE, name="李四")
    houses.save_check(HOUSE, all_pass(), residents_seen=0)
    assert houses.house(HOUSE).rate is None
    core.clock.advance(1000)
    houses.save_check(HOUSE, all_pass(), residents_seen=None)  # the latest check did not count
    assert houses.house(HOUSE).rate is None


@pytest.mark.parametrize("registered, seen, rate", [
    (19, 20, 0.95),
    (20, 20, 1.0),
    (5, 4, 1.0),          # more on file than met: capped, as on the pages (it was 1.25)
    (25, 20, 1.0),
    (0, 3, 0.0),
    (0, 0, None),         # nobody met: not counted
    (4, 0, None),
    (4, None, None),      # no check, or the latest did not count residents
    (4, -1, None),
    (4, True, None),
])
def test_the_rate_of_a_house(registered, seen, rate):
    assert registration_rate(registered, seen) == (pytest.approx(rate) if rate is not None else None)


@given(st.integers(min_value=0, max_value=10_000), st.one_of(st.none(), st.integers(min_value=-5, max_value=10_000)))
def test_a_rate_is_within_0_and_1_and_a_house_alone_is_its_grids_figure(registered, seen):
    rate = registration_rate(registered, seen)
    assert (rate is None) == (seen is None or seen <= 0)
    if rate is not None:
        assert 0.0 <= rate <= 1.0
        assert rate == min(registered, seen) / seen
        assert combined_rate([(registered, seen)])[2] == rate  # a house alone: its grid's figure


@given(st.one_of(st.none(), st.just(""), st.dates().map(lambda d: d.isoformat())), st.dates())
def test_living_there_is_the_pages_rule(moved_out, today):
    # shared/houses.living_there: moved out when moved_out is set and on or before today
    assert living_there(moved_out, today.isoformat()) is not (bool(moved_out) and moved_out <= today.isoformat())


def test_a_masked_number_from_the_server_is_shown_and_never_a_full_one(core):
    tenant = "0193b5c8-0000-7000-8000-0000000000d1"
    core.store.apply_remote([remote("tenant", tenant, GRID_BUCKET, {
        "house": HOUSE, "name": "王五", "id_number_masked": "4403**********0012"})], {GRID_BUCKET: "9"})
    [row] = HousesPresenter(core).house(HOUSE).tenants
    assert row.id_number_shown == "4403**********0012"


@given(st.text(alphabet="0123456789xX \t", max_size=30))
def test_normalising_drops_spaces_and_raises_x(text):
    out = normalise_resident_id(text)
    assert " " not in out and "\t" not in out and "x" not in out
    assert out.replace("X", "") == "".join(c for c in text if c.isdigit())


def test_everything_syncs_to_a_server(core):
    server = FakeServer(ManualClock(T0))
    houses = HousesPresenter(core)
    check = houses.save_check(HOUSE, all_pass(), residents_seen=1)
    tenant = houses.register_tenant(HOUSE, name="李四", id_number=valid_id(3))
    core.store.save_login("http://fake", "token", WORKER, [GRID_BUCKET])
    report = synchronize(core.store, server)
    assert report.ok and core.store.counts().unsynced == 0
    assert {("house_check", check), ("tenant", tenant)} <= set(server.records)


def test_a_hazard_reads_as_the_version_of_the_checklist_the_check_was_made_with(core):
    houses = HousesPresenter(core)
    check = houses.save_check(HOUSE, all_pass(ebike_indoor=("fail", "阳台")), residents_seen=1)
    core.store.apply_remote([checklist(2, [("ebike_indoor", "严禁室内充电", "ebike_charging")],
                                       record_id="0193b5c8-0000-7000-8000-0000000000c2")], {})
    [hazard] = houses.house(HOUSE).hazards
    assert hazard.text == "电动车在室内充电"  # version 1's hazard words, not version 2's rule
    assert "电动车在室内充电" in houses.event_draft(check, "ebike_indoor").description

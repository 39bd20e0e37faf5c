"""The key-place presenter (mobile/places.py) on a real tablet store, without a window; and houses beside it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mobile.houses import HousesPresenter
from mobile.places import PlacesPresenter
from mobile.presenters import InputError
from mobile.store import Store
from shared.checks import DAY_MS
from shared.hlc import format_ms
from tests.mobile.fakes import T0, ManualClock

NODE = "a1b2c3d4e5f60718"
WORKER = {"id": "0193b5c8-0000-7000-8000-0000000000aa", "name": "张伟", "role": "worker"}
OTHER = "0193b5c8-0000-7000-8000-0000000000ab"
SERVER_HLC = f"{format_ms(T0 - 60_000)}-0000-5e7e7e7e7e7e7e7e"
GRID_BUCKET = "grid:G-0101"
SHOP, WORKSHOP, SCHOOL, HOUSE = (f"0193b5c8-0000-7000-8000-0000000001{n:02d}" for n in range(1, 5))
SHOP_ITEMS = [
    {"code": "extinguisher", "text": "灭火器在有效期内", "hazard": "灭火器过期", "hazard_en": "Fire extinguisher expired",
     "category": "fire_hazard"},
    {"code": "no_living", "text": "经营场所不住人", "hazard": "住人（三合一）", "category": "fire_hazard"},
]


def remote(kind, record_id, bucket, values):
    return {"kind": kind, "id": record_id, "bucket": bucket, "fields": {k: [v, SERVER_HLC] for k, v in values.items()}}


def ref(kind, n, values):
    return remote(kind, f"0193b5c8-0000-7000-8000-0000000002{n:02d}", "ref", values)


def checked(place, days_ago, failed=(), worker=OTHER, n=0):
    return remote("place_check", f"0193b5c8-0000-7000-8000-0000000003{n:02d}", GRID_BUCKET, {
        "place": place, "worker": worker, "checked_at": format_ms(T0 - days_ago * DAY_MS), "checklist": "place.shop",
        "checklist_version": 1, "photos": [],
        "answers": [{"item": i["code"], "result": "fail" if i["code"] in failed else "pass",
                     "note": "过期" if i["code"] in failed else None} for i in SHOP_ITEMS]})


@pytest.fixture
def core(tmp_path):
    clock = ManualClock(T0)
    with Store(tmp_path / "t.db", physical=clock, node=NODE) as store:
        store.apply_remote([
            ref("checklist", 1, {"code": "place.shop", "name": "小商店消防安全检查", "version": 1, "items": SHOP_ITEMS}),
            ref("checklist", 2, {"code": "rental_house", "name": "出租屋安全检查", "version": 1,
                                 "items": [{"code": "exits", "text": "疏散通道畅通"}]}),
            ref("place_type", 3, {"code": "small_shop", "name": "小商店", "name_en": "Small shop",
                                  "checklist": "place.shop", "check_every_days": {"A": 30, "B": 90}}),
            ref("place_type", 4, {"code": "small_workshop", "name": "小作坊", "checklist": "place.none",
                                  "check_every_days": {"A": 15}}),
            remote("place", SHOP, GRID_BUCKET, {"grid": "G-0101", "name": "好又多便利店", "type": "small_shop",
                                                "grade": "A", "address": "东湖路12号", "worker": WORKER["id"],
                                                "location": {"lat": 22.54, "lon": 114.05, "accuracy_m": 5.0,
                                                             "source": "gps"}}),
            remote("place", WORKSHOP, GRID_BUCKET, {"grid": "G-0101", "name": "老李加工坊", "type": "small_workshop",
                                                    "grade": "A"}),
            remote("place", SCHOOL, GRID_BUCKET, {"grid": "G-0101", "name": "东湖五金店", "type": "small_shop",
                                                  "grade": "B", "person_in_charge": "黄丽"}),
            remote("rental_house", HOUSE, GRID_BUCKET, {"grid": "G-0101", "address": "东湖村12号"}),
            checked(SHOP, 40, n=1), checked(SCHOOL, 10, failed=("no_living",), n=2),
        ], {"ref": "1", GRID_BUCKET: "2"})
        yield SimpleNamespace(store=store, photos=None, user=WORKER, clock=clock)


def test_places_come_most_pressing_first_with_their_schedule(core):
    rows = PlacesPresenter(core).places()
    assert [(r.name, r.status) for r in rows] == [("老李加工坊", "never"), ("好又多便利店", "overdue"), ("东湖五金店", "ok")]
    shop = rows[1]
    assert shop.every_days == 30 and shop.due_ms == T0 - 10 * DAY_MS and shop.mine and shop.type_name == "小商店"
    assert rows[2].open_hazards == 1 and not rows[2].mine
    assert [r.name for r in PlacesPresenter(core).places(needs_check=True)] == ["老李加工坊", "好又多便利店"]
    assert [r.name for r in PlacesPresenter(core).places("黄丽")] == ["东湖五金店"]


def test_a_check_against_the_types_checklist_makes_the_place_ok_and_hazards_open(core):
    places = PlacesPresenter(core)
    assert [i.code for i in places.checklist_for(SHOP).items] == ["extinguisher", "no_living"]
    with pytest.raises(InputError) as caught:
        places.save_check(SHOP, {"extinguisher": ("fail", " "), "no_living": ("pass", None)})
    assert (caught.value.field, caught.value.code) == ("answers.extinguisher", "note_required")
    check = places.save_check(SHOP, {"extinguisher": ("fail", "两具均过期"), "no_living": ("pass", None)},
                              photos=["ab" * 32])
    stored = core.store.get("place_check", check)
    assert stored.values["place"] == SHOP and stored.values["worker"] == WORKER["id"] and stored.bucket == GRID_BUCKET
    assert stored.values["checklist"] == "place.shop" and "residents_seen" not in stored.values
    view = places.place(SHOP)
    assert view.schedule.status == "ok" and view.schedule.due_ms == T0 + 30 * DAY_MS
    assert [(h.item, h.text, h.note) for h in view.hazards] == [("extinguisher", "灭火器过期", "两具均过期")]
    assert view.checks[0].id == check and not view.checks[0].synced
    core.clock.advance(24 * DAY_MS)
    assert places.place(SHOP).schedule.status == "due"  # within the last quarter (7 days) of 30
    core.clock.advance(7 * DAY_MS)
    assert places.place(SHOP).schedule.status == "overdue"


def test_a_failed_item_becomes_an_event_in_one_tap(core):
    places = PlacesPresenter(core)
    check = places.save_check(SHOP, {"extinguisher": ("pass", None), "no_living": ("fail", "后间住两人")},
                              photos=["cd" * 32])
    draft = places.event_draft(check, "no_living")
    assert draft.description == "好又多便利店（东湖路12号）：住人（三合一）（后间住两人）"
    assert draft.category == "fire_hazard" and draft.photos == ["cd" * 32] and draft.grid == "G-0101"
    assert draft.location["source"] == "gps"
    with pytest.raises(InputError):
        places.event_draft(check, "extinguisher")


def test_a_type_whose_checklist_is_not_held_cannot_be_checked_yet(core):
    with pytest.raises(InputError) as caught:
        PlacesPresenter(core).save_check(WORKSHOP, {})
    assert (caught.value.field, caught.value.code) == ("checklist", "not_synced")
    with pytest.raises(InputError) as caught:
        PlacesPresenter(core).place("0193b5c8-0000-7000-8000-000000000999")
    assert caught.value.code == "not_found"


def test_houses_keep_their_own_checklist_beside_the_places(core):
    houses = HousesPresenter(core)
    assert houses.checklist().code == "rental_house"
    houses.save_check(HOUSE, {"exits": ("pass", None)}, residents_seen=2)
    assert core.store.query("place_check") and len(core.store.query("house_check")) == 1
    assert PlacesPresenter(core).place(SHOP).checks[0].id.endswith("301")  # a house check is not a place's

"""Key places through the sync API: workers check the places of their grids; the server holds authorship and buckets."""

from __future__ import annotations

import os

from server.clock import server_clock
from shared.hlc import format_ms
from shared.records import uuid7

from ..houses.conftest import Tablet
from .conftest import place_by_name, user


def check_change(tablet, place, worker_id, *, bucket=None, kind="place_check"):
    values = {"place": place.id, "worker": worker_id, "checked_at": format_ms(server_clock().physical_ms()),
              "checklist": "place.small_shop", "checklist_version": 1, "photos": [],
              "answers": [{"item": "extinguisher", "result": "fail", "note": "过期"}]}
    hlc = tablet.hlc()
    return {"kind": kind, "id": uuid7(server_clock().physical_ms(), os.urandom(10)), "bucket": bucket or place.bucket,
            "fields": {name: [value, hlc] for name, value in values.items()}}


def test_a_worker_checks_a_place_of_their_grid_and_pulls_places_and_types(pages):
    tablet = Tablet(pages, "worker1")
    shop = place_by_name("好又多便利店")
    assert tablet.push(check_change(tablet, shop, user("worker1").id))[0]["status"] == "applied"
    changes, _text = tablet.pull_all()
    kinds = {c["kind"] for c in changes}
    assert {"place", "place_check", "place_type"} <= kinds
    assert {c["fields"]["name"][0] for c in changes if c["kind"] == "place"} == {
        "好又多便利店", "东湖五金店", "老李服装加工坊", "星光KTV", "东湖小学"}  # G-0101's only


def test_the_server_refuses_a_check_in_anothers_name_in_another_grid_or_of_a_house(pages, demo):
    from tests.houses.conftest import house_by_address

    demo.load_houses()
    tablet = Tablet(pages, "worker1")
    shop, far = place_by_name("好又多便利店"), place_by_name("青石网吧")
    forged = tablet.push(check_change(tablet, shop, user("worker2").id))[0]
    elsewhere = tablet.push(check_change(tablet, far, user("worker1").id))[0]
    house = house_by_address("东湖村18号")
    of_a_house = check_change(tablet, shop, user("worker1").id)
    of_a_house["fields"]["place"][0] = house.id
    wrong_kind = tablet.push(of_a_house)[0]
    assert [r["status"] for r in (forged, elsewhere, wrong_kind)] == ["rejected"] * 3
    assert "place must be a place id" in wrong_kind["reason"]


def test_only_admins_write_place_types(pages):
    tablet = Tablet(pages, "worker1")
    hlc = tablet.hlc()
    change = {"kind": "place_type", "id": uuid7(server_clock().physical_ms(), os.urandom(10)), "bucket": "ref",
              "fields": {"code": ["cafe", hlc], "name": ["咖啡馆", hlc], "check_every_days": [{"A": 1}, hlc]}}
    assert tablet.push(change)[0]["status"] == "rejected"

"""A patrol in the field app, driven by touches against a live server, with a simulated walk for a GPS.

Issue 17's GUI proof: the office (supervisor1, through the sync API) sets two fixed points in G-0101; the
worker logs in, opens the patrol from Home, starts it, walks north (a SimulatedWalk on the app's clock, which
the test moves 10 s a beat), passes the first fixed point (visited by the track), checks in at the second with
a photo, stops, and syncs; the office then pulls the patrol, its packed track and both visits.
Screenshots: test-artifacts/gui/patrol-*.png.
"""

from __future__ import annotations

import os
import time

import pytest
import requests

from shared.hlc import Clock, format_ms, parse_ms
from shared.records import uuid7
from shared.track import unpack
from tests.mobile.fakes import ManualClock
from tests.photos.helpers import make_jpeg

from .api import Desk
from .checks import assert_chinese_drawn, assert_not_blank
from .conftest import PASSWORD, close_app, idle, screenshot, tap, wait_until
from .test_field_app import check_screen, choose_photo, current, sync_and_wait

LAT, LON = 22.5430, 114.0580
M = 1 / 111_195  # a metre northwards, in degrees


def office_writes(desk: Desk, kind: str, values: dict) -> str:
    """A record in G-0101 pushed by the office's device (fixed points and plans are the office's to write)."""
    clock = Clock(desk.node)
    stamp = str(clock.now())
    record_id = uuid7(clock.physical_ms(), os.urandom(10))
    change = {"kind": kind, "id": record_id, "bucket": "grid:G-0101",
              "fields": {k: [v, stamp] for k, v in {"grid": "G-0101", **values}.items()}}
    answer = requests.post(f"{desk.base}/sync/push", headers=desk.headers,
                           json={"node": desk.node, "changes": [change]}, timeout=30)
    assert answer.status_code == 200 and answer.json()["results"][0]["status"] == "applied", answer.text
    return record_id


def office_point(desk: Desk, name: str, lat: float, lon: float, radius: int) -> str:
    """A fixed point in G-0101, visited at least every 8 hours."""
    return office_writes(desk, "fixed_point", {
        "name": name, "location": {"lat": lat, "lon": lon, "accuracy_m": None, "source": "manual"},
        "radius_m": radius, "every_hours": 8})


@pytest.fixture
def patrol_app(window, tmp_path, network, live_server):
    """The field app on a fresh tablet whose GPS is a walk north from (LAT, LON) and whose clock the test moves."""
    from mobile import i18n
    from mobile.location import SimulatedWalk
    from mobile.ui.app import GridPatrolApp

    i18n.set_language("zh")
    clock = ManualClock(int(time.time() * 1000))
    walk = SimulatedWalk([(LAT, LON), (LAT + 2000 * M, LON)], clock, speed_mps=1.3, accuracy_m=6.0)
    photo_dir = tmp_path / "camera-roll"
    photo_dir.mkdir()
    app = GridPatrolApp(tmp_path / "tablet", server_url=live_server.url, background_sync=False, photo_dir=photo_dir,
                        core_options={"transport_factory": network.transport, "location_provider": walk,
                                      "now_ms": clock})
    app._run_prepare()
    idle(3)
    try:
        yield app, clock, walk
    finally:
        close_app(window, app)


def test_a_worker_walks_a_patrol_past_a_fixed_point_checks_in_at_another_and_the_office_gets_it(
        window, patrol_app, live_server, tmp_path):
    app, clock, walk = patrol_app
    desk = Desk(live_server.url, "supervisor1")
    gate = office_point(desk, "东湖小学门口", LAT + 45 * M, LON, 25)
    garage = office_point(desk, "地下车库入口", LAT, LON + 0.003, 20)  # 300 m east: reached by a check-in only
    office_writes(desk, "patrol_plan", {
        "computed_at": format_ms(int(time.time() * 1000)), "hours": [9, 17, 20], "rounds_per_day": 3,
        "busy_weekdays": [5, 6], "points": [gate], "basis_events": 36,
        "summary": "近四周傍晚事件最多，周五、周六晚加巡一轮", "summary_en": "Evenings are busiest: add a round on Fri and Sat"})

    login = app.screen("login")
    login.username.text, login.password.text = "worker1", PASSWORD
    tap(login.submit)
    wait_until(lambda: current(app) == "home", 30, "Home after log-in")
    wait_until(lambda: app.screen("sync").outcome is not None, 40, "the first sync")
    assert app.screen("sync").outcome.ok
    home = app.screen("home")
    app.go("home")
    idle(3)
    card = home.patrol_card
    assert "待巡 2 个" in card.points.text, card.points.text
    assert "每天 3 轮，9时、17时、20时" in card.plan.text, card.plan.text
    check_screen(window, app, "patrol-01-home")
    assert_chinese_drawn(card.title)

    tap(card.open)
    assert current(app) == "patrol"
    screen = app.screen("patrol")
    idle(3)
    assert [row.row.point_id for row in screen.point_rows] == sorted(
        [gate, garage], key=lambda p: "东湖小学门口" if p == gate else "地下车库入口")
    assert all(row.row.due for row in screen.point_rows)
    assert "周五、周六" in screen.plan.text and "傍晚" in screen.plan.text
    check_screen(window, app, "patrol-02-ready")

    tap(screen.start_stop)
    presenter = screen.presenter()
    assert presenter.live().running and screen.start_stop.text == "结束巡查"
    walk.start_ms = clock()
    for step in range(1, 9):  # eighty seconds north at 1.3 m/s: past the school gate at 45 m
        clock.advance(10_000)
        wait_until(lambda: presenter.live().points >= step, 10, f"track point {step}")
    idle(2)
    visits = [r.values for r in app.core.store.query("point_visit")]
    assert [(v["point"], v["method"]) for v in visits] == [(gate, "track")]
    assert "经过定点" in screen.notice.text and "东湖小学门口" in screen.notice.text
    rows = {row.row.point_id: row for row in screen.point_rows}
    assert not rows[gate].row.due and rows[garage].row.due
    assert "轨迹点 8 个" in screen.points.text
    check_screen(window, app, "patrol-03-walking")
    assert_chinese_drawn(screen.state)

    # The garage is underground: a check-in with a photo.
    photo = tmp_path / "camera-roll" / "garage.jpg"
    photo.write_bytes(make_jpeg(640, 480, noise=True, seed=11))
    choose_photo(app, rows[garage].check_in, photo, lambda: app.core.store.query("point_visit"))
    idle(3)
    assert "已打卡" in screen.notice.text
    assert all(not row.row.due for row in screen.point_rows)

    from mobile import i18n

    i18n.set_language("en")
    idle(3)
    shot = screenshot(window, "patrol-04-walking-en")
    assert_not_blank(shot)
    assert screen.start_stop.text == "Stop patrol" and "Evenings are busiest" in screen.plan.text
    i18n.set_language("zh")
    idle(3)

    from kivy.core.window import Window

    from mobile.ui.pickers import ConfirmPopup

    tap(screen.start_stop)
    popup = wait_until(lambda: next((w for w in Window.children if isinstance(w, ConfirmPopup)), None), 5,
                       "the stop confirmation")
    tap(popup.yes)
    idle(3)
    assert not presenter.live().running and screen.start_stop.text == "开始巡查"
    check_screen(window, app, "patrol-05-stopped")

    app.go("home")
    idle(3)
    assert "今日巡查 1 次" in card.today.text and "今日已巡 2 个" in card.points.text, (card.today.text, card.points.text)
    check_screen(window, app, "patrol-06-home-after")

    outcome = sync_and_wait(app)
    assert outcome.rejected == 0 and outcome.photos_failed == 0, outcome
    changes = desk.pull_all()
    patrols = [c for c in changes if c["kind"] == "patrol"]
    assert len(patrols) == 1 and patrols[0]["fields"]["closed_by"][0] == "worker"
    tracks = [c for c in changes if c["kind"] == "track"]
    pulled = [p for c in sorted(tracks, key=lambda c: c["fields"]["seq"][0])
              for p in unpack(c["fields"]["points"][0], parse_ms(c["fields"]["start"][0]))]
    assert len(pulled) == 8
    methods = sorted(c["fields"]["method"][0] for c in changes if c["kind"] == "point_visit")
    assert methods == ["check_in", "track"]

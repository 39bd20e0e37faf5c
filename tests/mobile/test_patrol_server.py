"""Patrols against the real server: the office's fixed point and plan come down, the tablet's patrol, its packed
track, its visit and an event made on it go up, and another device pulls the track back point for point.

The tablet's whole stack (AppCore, PatrolPresenter, synchronize, HttpTransport) talks to the Flask app
in-process (tests/integration/transport.FlaskTransport). The clock is a manual one that starts at the real
time, so the server's clock-drift check sees the tablet's times as they would be.
"""

from __future__ import annotations

import os
import time

import pytest

from mobile.app_core import AppCore
from mobile.location import LocationReading
from mobile.patrol import PatrolPresenter
from mobile.presenters import ReportPresenter
from mobile.sync import synchronize
from server.sync import apply
from shared.hlc import format_ms, parse_ms
from shared.records import uuid7
from shared.track import Point, pack, unpack
from tests.integration.transport import BASE_URL, FlaskTransport

from .fakes import ManualClock

PASSWORD = "demo-pass"
LAT, LON = 22.5430, 114.0580


@pytest.fixture
def database_url(sqlite_template, tmp_path):
    """SQLite only: the tablet's side does not depend on the server's engine (tests/server cover both)."""
    import shutil
    path = tmp_path / "store.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


class Gps:
    def __init__(self, clock):
        self.clock, self.reading = clock, None

    def current(self):
        return self.reading


def tablet(client, path, username, **kwargs) -> AppCore:
    core = AppCore(path, transport_factory=lambda url, token: FlaskTransport(client, token), **kwargs)
    core.login(BASE_URL, username, PASSWORD, device_name=f"{username} tablet")
    report = synchronize(core.store, core.transport(), photos=core.photos)
    assert report.ok, report.error
    return core


def test_a_patrol_goes_up_packed_and_comes_back_point_for_point(app, client, demo, tmp_path):
    point_id = uuid7(int(time.time() * 1000), os.urandom(10))
    apply.write_as_server([
        apply.stamp("fixed_point", point_id, {
            "grid": "G-0101", "name": "东湖小学门口", "name_en": "Donghu school gate",
            "location": {"lat": LAT + 40 / 111_195, "lon": LON, "accuracy_m": None, "source": "manual"},
            "radius_m": 25, "every_hours": 8}),
        apply.stamp("patrol_plan", uuid7(int(time.time() * 1000), os.urandom(10)), {
            "grid": "G-0101", "computed_at": format_ms(int(time.time() * 1000)), "hours": [9, 19],
            "rounds_per_day": 2, "busy_weekdays": [6, 7], "points": [point_id], "basis_events": 12,
            "summary": "周末晚间事件多", "summary_en": "Weekend evenings are busy"}),
    ])
    clock = ManualClock(int(time.time() * 1000))
    gps = Gps(clock)
    worker = tablet(client, tmp_path / "worker", "worker1", now_ms=clock, location_provider=gps)
    try:
        patrol = PatrolPresenter(worker)
        [plan] = patrol.plans()
        assert (plan.hours, plan.rounds_per_day, plan.points, plan.summary) == ([9, 19], 2, ["东湖小学门口"],
                                                                                "周末晚间事件多")
        assert [(row.point_id, row.due) for row in patrol.fixed_points()] == [(point_id, True)]

        patrol_id = patrol.start("G-0101")
        lat = LAT
        for second in range(150):  # two and a half minutes north at 1.2 m/s, past the school gate
            clock.advance(1000)
            lat += 1.2 / 111_195
            gps.reading = LocationReading(lat, LON, 6.0 if second % 50 else 70.0, "gps", clock(), 1.2)
            patrol.tick()
            if second == 60:
                event_id = ReportPresenter(worker).save(grid="G-0101", category="garbage", description="巡查发现垃圾堆放",
                                                        no_location_reason="indoors")
            if second == 90:  # a sync mid-patrol: the open patrol goes up, its end follows in a later push
                mid = synchronize(worker.store, worker.transport(), photos=worker.photos)
                assert mid.ok and not mid.rejected, (mid.error, mid.rejected)
        patrol.stop()
        local = [values for _n, values, marks, _b in worker.store.track_points(patrol_id) if not marks - {"poor_accuracy"}]
        assert len(local) >= 15 and worker.store.query("point_visit")
        report = synchronize(worker.store, worker.transport(), photos=worker.photos)
        assert report.ok and not report.rejected, (report.error, report.rejected)
        assert worker.store.counts().unsynced == 0
    finally:
        worker.close()

    office = tablet(client, tmp_path / "office", "supervisor1")
    try:
        tracks = sorted((r.values for r in office.store.query("track") if r.values["patrol"] == patrol_id),
                        key=lambda v: v["seq"])
        assert tracks, "the supervisor's device pulled no track"
        pulled = [p for v in tracks for p in unpack(v["points"], parse_ms(v["start"]))]
        expected = [unpack(pack([Point(*values)], values[0]), values[0])[0] for values in local]  # as the wire rounds
        assert pulled == expected
        assert any(p.accuracy_m == 70 for p in pulled)  # poor accuracy is sent, marked by its accuracy
        record = office.store.get("patrol", patrol_id).values
        assert record["closed_by"] == "worker" and record["distance_m"] > 150
        [visit] = [r.values for r in office.store.query("point_visit")]
        assert (visit["point"], visit["method"], visit["patrol"]) == (point_id, "track", patrol_id)
        assert office.store.get("event", event_id).values["patrol"] == patrol_id
    finally:
        office.close()

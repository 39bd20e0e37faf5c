"""The patrol pages: who may open them, bad query input is 400, the map's GeoJSON, the fixed-point form (CSRF, audit)."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select

from flask import current_app

from server.clock import server_clock
from server.config import parse_offset
from server.db import db
from server.models import AuditEntry, Record
from server.patrols import service

from .conftest import (FreshContextClient, box_polygon, csrf_token, log_in, set_boundary, user, walk, write_patrol,
                       write_point, write_visit)
from ..pages.conftest import new_event

PAGES = ["/patrols", "/patrols/map.json", "/patrols/coverage", "/patrols/coverage?period=week", "/patrols/plan",
         "/patrols/points", "/patrols/points?grid=G-0101"]


@pytest.mark.parametrize("username", ["worker1", "unit1"])
def test_workers_and_units_get_403_on_every_patrol_page(pages, username):
    log_in(pages, username)
    point = write_point("G-0101", "东湖路口", 22.5436, 114.0590)
    for url in PAGES + [f"/patrols/points/{point}"]:
        assert pages.get(url).status_code == 403, url
    answer = pages.post("/patrols/points", data={"csrf_token": csrf_token(pages), "grid": "G-0101", "name": "x",
                                                 "lat": "22.54", "lon": "114.05", "radius_m": "30",
                                                 "every_hours": "24"})
    assert answer.status_code == 403
    assert not service.fixed_points(["G-0101"])[1:]


def test_anonymous_visitors_are_sent_to_log_in(pages):
    for url in PAGES:
        answer = pages.get(url)
        assert answer.status_code == 302 and "/login" in answer.location, url


@pytest.mark.parametrize("username", ["supervisor1", "admin"])
def test_supervisors_and_admins_open_every_patrol_page(pages, username):
    log_in(pages, username)
    point = write_point("G-0101", "东湖路口", 22.5436, 114.0590)
    for url in PAGES + [f"/patrols/points/{point}"]:
        assert pages.get(url).status_code == 200, url
    assert "巡查" in pages.get("/cases").get_data(as_text=True)  # the navigation's link


@pytest.mark.parametrize("query", ["day=abc", "day=2026-02-30", "day=1800-01-01", "day=２０２６-１２-０６",
                                   "grid=../x", "grid=G-9999", "grid=%00", "worker=notauuid",
                                   "worker=0190D1E4-0000-7000-8000-000000000001"])
def test_bad_query_input_is_400_not_500(supervisor, query):
    for url in ("/patrols", "/patrols/map.json"):
        answer = supervisor.get(f"{url}?{query}")
        assert answer.status_code == 400, (url, query, answer.status_code)
    assert supervisor.get("/patrols/map.json?day=abc").get_json()["error"]["code"] == "invalid"


@pytest.mark.parametrize("query", ["period=month", "period=week&day=abc", "street=nowhere", "community=../x"])
def test_bad_coverage_and_plan_input_is_400(supervisor, query):
    assert supervisor.get(f"/patrols/coverage?{query}").status_code == 400
    if "street" in query or "community" in query:
        assert supervisor.get(f"/patrols/plan?{query}").status_code == 400


def test_bad_point_ids_are_404(supervisor):
    for point_id in ("notauuid", "00000000-0000-7000-8000-000000000000"):
        assert supervisor.get(f"/patrols/points/{point_id}").status_code == 404
    event = new_event()
    assert supervisor.get(f"/patrols/points/{event}").status_code == 404  # a record, but no fixed point


def test_the_map_json_holds_the_outline_the_tracks_the_points_and_the_events_on_the_way(supervisor):
    set_boundary("G-0101", box_polygon())
    now = server_clock().physical_ms()
    zone = parse_offset(current_app.config["GRIDPATROL_UTC_OFFSET"])
    ago = 50  # minutes: 20 minutes of patrol, ended half an hour ago (the demo's events are 1 and 2 hours old)
    local = datetime.fromtimestamp(now / 1000, zone)
    since_midnight = local.hour * 60 + local.minute
    if 30 < since_midnight < 50:  # the patrol would cross the district's midnight, and a day's map shows its part
        ago = since_midnight - 1
    start = now - ago * 60_000
    points = walk(start, (22.5420, 114.0560), (22.5440, 114.0590), 120)
    patrol = write_patrol("worker1", "G-0101", points)
    other = write_patrol("worker3", "G-0201", walk(start, (22.5500, 114.0650), (22.5505, 114.0655), 10))
    visited = write_point("G-0101", "东湖路口", 22.5430, 114.0575)
    missed = write_point("G-0101", "3栋", 22.5450, 114.0550)
    write_visit(visited, "worker1", start + 600_000, patrol)
    during = new_event(reporter="worker1", reported_minutes_ago=ago - 5)  # reported during the patrol
    before = new_event(reporter="worker1", reported_minutes_ago=24 * 60)  # the day before: not on the way
    day = service.district_day(start, zone)
    answer = supervisor.get(f"/patrols/map.json?grid=G-0101&day={day.isoformat()}")
    assert answer.status_code == 200 and answer.mimetype == "application/geo+json"
    features = answer.get_json()["features"]
    kinds = {}
    for feature in features:
        kinds.setdefault(feature["properties"]["kind"], []).append(feature)
    assert [f["properties"]["code"] for f in kinds["grid"]] == ["G-0101"]
    assert [f["properties"]["patrol"] for f in kinds["track"]] == [patrol]  # the other grid's patrol is not here
    track = kinds["track"][0]
    assert track["geometry"]["type"] == "MultiLineString" and len(track["geometry"]["coordinates"][0]) == 120
    assert track["properties"]["worker_name"] == "张伟" and track["properties"]["points"] == 120
    by_point = {f["properties"]["id"]: f["properties"] for f in kinds["fixed_point"]}
    assert by_point[visited]["visited"] is True and by_point[missed]["visited"] is False
    assert [f["properties"]["id"] for f in kinds["event"]] == [during]
    assert before not in answer.get_data(as_text=True) and other not in answer.get_data(as_text=True)
    # The worker filter: worker3's patrol only, in any grid.
    answer = supervisor.get(f"/patrols/map.json?worker={user('worker3').id}&day={day.isoformat()}")
    assert [f["properties"]["patrol"] for f in answer.get_json()["features"]
            if f["properties"]["kind"] == "track"] == [other]
    # The page lists the same.
    page = supervisor.get(f"/patrols?grid=G-0101&day={day.isoformat()}").get_data(as_text=True)
    assert f'data-patrol="{patrol}"' in page and "张伟" in page and "120 个定位点" in page
    assert "/patrols/map.json?grid=G-0101" in page and "<script>" not in page  # data for the script, no inline code


def _form(pages, **values) -> dict:
    return {"csrf_token": csrf_token(pages), "grid": "G-0101", "name": "东湖路口", "name_en": "Donghu crossing",
            "lat": "22.5436", "lon": "114.059", "radius_m": "30", "every_hours": "24", **values}


def _points() -> list[Record]:
    db.session.rollback()
    return db.session.scalars(select(Record).where(Record.kind == "fixed_point")).all()


def test_a_supervisor_adds_edits_and_deletes_a_fixed_point_each_audited(supervisor):
    answer = supervisor.post("/patrols/points", data=_form(supervisor))
    assert answer.status_code == 303, answer.get_data(as_text=True)[:2000]
    [record] = _points()
    assert record.bucket == "grid:G-0101" and record.device_id is None
    assert record.field_values["location"] == {"lat": 22.5436, "lon": 114.059, "accuracy_m": None, "source": "manual"}
    assert (record.field_values["radius_m"], record.field_values["every_hours"]) == (30, 24)
    assert "东湖路口" in supervisor.get("/patrols/points?grid=G-0101").get_data(as_text=True)
    answer = supervisor.post(f"/patrols/points/{record.id}", data=_form(supervisor, every_hours="12", radius_m="50"))
    assert answer.status_code == 303
    [record] = _points()
    assert (record.field_values["radius_m"], record.field_values["every_hours"]) == (50, 12)
    answer = supervisor.post(f"/patrols/points/{record.id}", data=_form(supervisor, every_hours="12", radius_m="50",
                                                                        deleted="y"))
    assert answer.status_code == 303
    assert _points()[0].field_values["_deleted"] is True
    assert service.fixed_points(["G-0101"]) == []
    lines = db.session.scalars(select(AuditEntry).where(AuditEntry.kind == "fixed_point").order_by(AuditEntry.id)).all()
    assert [(line.action, line.actor, line.target) for line in lines] == [
        ("create", "supervisor1", record.id), ("edit", "supervisor1", record.id), ("delete", "supervisor1", record.id)]
    assert lines[1].before == {"every_hours": 24, "radius_m": 30} and lines[1].after == {"every_hours": 12,
                                                                                         "radius_m": 50}


def test_the_fixed_point_form_needs_its_csrf_token(supervisor):
    data = _form(supervisor)
    del data["csrf_token"]
    assert supervisor.post("/patrols/points", data=data).status_code == 400
    assert _points() == []
    point = write_point("G-0101", "东湖路口", 22.5436, 114.0590)
    assert supervisor.post(f"/patrols/points/{point}", data={**data, "name": "改名"}).status_code == 400
    assert _points()[0].field_values["name"] == "东湖路口"


@pytest.mark.parametrize("bad", [{"lat": "91"}, {"lon": "abc"}, {"radius_m": "2"}, {"every_hours": "0"},
                                 {"name": ""}, {"grid": "G-9999"}, {"name": "x" * 201}])
def test_a_bad_fixed_point_is_400_and_writes_nothing(supervisor, bad):
    answer = supervisor.post("/patrols/points", data=_form(supervisor, **bad))
    assert answer.status_code == 400
    assert _points() == []


def test_a_fixed_point_far_outside_its_grid_is_refused(supervisor):
    set_boundary("G-0101", box_polygon())
    answer = supervisor.post("/patrols/points", data=_form(supervisor, lat="31.2304", lon="121.4737"))  # Shanghai
    assert answer.status_code == 400 and "km outside" in answer.get_data(as_text=True)
    assert _points() == []


def test_the_coverage_and_plan_pages_say_their_definitions(supervisor, app):
    coverage = supervisor.get("/patrols/coverage").get_data(as_text=True)
    assert "无边界，无覆盖率" in coverage and "50 米见方" in coverage and "25 米以内" in coverage
    plan = supervisor.get("/patrols/plan").get_data(as_text=True)
    assert "计划如何生成" in plan and "尚未下发" in plan
    english = FreshContextClient(app, app.response_class, use_cookies=True)
    log_in(english, "admin")
    english.post("/language", data={"csrf_token": csrf_token(english), "lang": "en"})
    page = english.get("/patrols/coverage").get_data(as_text=True)
    assert "no boundary, no coverage" in page and "squares of 50 m" in page

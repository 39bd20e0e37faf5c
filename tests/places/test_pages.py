"""The key-place pages: who may open them, the list and its filters, a place, exports, bad input."""

from __future__ import annotations

import csv
import io
import json
import secrets

import pytest
import zipfile

from server.clock import server_clock
from server.photos.service import keep_photos
from server.sync import apply
from shared.hlc import format_ms
from shared.records import uuid7

from .conftest import log_in, place_by_name, user

ALL = 10  # the demo's places


@pytest.mark.parametrize("username, status", [("worker1", 403), ("unit1", 403), ("supervisor1", 200), ("admin", 200)])
def test_only_supervisors_and_admins_open_the_places(pages, username, status):
    place = place_by_name("好又多便利店")
    log_in(pages, username)
    for url in ("/places", f"/places/{place.id}", "/places/export.csv"):
        with pages.get(url) as answer:
            assert answer.status_code == status, url


def test_anonymous_visitors_are_sent_to_log_in(pages):
    answer = pages.get("/places")
    assert answer.status_code in (302, 303) and "/login" in answer.location


def test_the_list_shows_grade_last_check_schedule_and_hazards(pages):
    log_in(pages, "supervisor1")
    page = pages.get("/places").get_data(as_text=True)
    assert page.count("data-place=") == ALL and "Cache-Control" and "小商店" in page and "重点单位" in page
    row = page.split('data-place="' + place_by_name("好又多便利店").id)[1].split("</tr>")[0]
    # checked 40 days ago (grade A of a small shop: every 30 days), the later check passed everything
    assert "超期" in row and "灭火器过期" not in row and "陈志强" in row
    row = page.split('data-place="' + place_by_name("东湖五金店").id)[1].split("</tr>")[0]
    assert "住人（三合一）" in row and "电线私拉乱接" in row and "正常" in row  # 20 days of 60
    row = page.split('data-place="' + place_by_name("老李服装加工坊").id)[1].split("</tr>")[0]
    assert "从未检查" in row
    row = page.split('data-place="' + place_by_name("星光KTV").id)[1].split("</tr>")[0]
    assert "即将到期" in row  # 27 days of 30


@pytest.mark.parametrize("query, names", [
    ("grid=G-0201", {"青石木器厂", "青石网吧", "青石社区卫生站"}),
    ("community=东湖社区&type=key_unit", {"东湖小学", "东湖农贸市场"}),
    ("street=西山街道", set()),
    ("grade=C", {"阿芳小吃店", "青石社区卫生站"}),
    ("status=overdue", {"好又多便利店", "阿芳小吃店", "东湖农贸市场", "青石木器厂"}),
    ("status=never", {"老李服装加工坊"}),
    ("status=due", {"星光KTV"}),
    ("status=needs_check", {"好又多便利店", "阿芳小吃店", "东湖农贸市场", "青石木器厂", "老李服装加工坊", "星光KTV"}),
    ("hazards=1", {"东湖五金店", "阿芳小吃店", "东湖农贸市场", "青石木器厂"}),
    ("hazards=1&status=overdue", {"阿芳小吃店", "东湖农贸市场", "青石木器厂"}),
    ("q=青石", {"青石木器厂", "青石网吧", "青石社区卫生站"}),
    ("q=李国栋", {"老李服装加工坊"}),
])
def test_filters(pages, query, names):
    log_in(pages, "supervisor1")
    page = pages.get(f"/places?{query}").get_data(as_text=True)
    shown = {n for n in ("好又多便利店", "东湖五金店", "老李服装加工坊", "星光KTV", "东湖小学", "阿芳小吃店", "东湖农贸市场",
                         "青石木器厂", "青石网吧", "青石社区卫生站") if f">{n}</a>" in page}
    assert shown == names


@pytest.mark.parametrize("query", ["status=soon", "grade=A%20B", "type=小商店", "grid=G-0101%0A", "page=two",
                                   "page=-1", "hazards=yes", "page=99999999"])
def test_bad_filters_are_answered_400(pages, query):
    log_in(pages, "supervisor1")
    assert pages.get(f"/places?{query}").status_code == 400
    if not query.startswith("page="):  # an export has no pages
        with pages.get(f"/places/export.csv?{query}") as answer:
            assert answer.status_code == 400


def test_unknown_places_and_formats_are_404(pages):
    log_in(pages, "supervisor1")
    assert pages.get("/places/not-a-uuid").status_code == 404
    assert pages.get("/places/0193b5c8-0000-7000-8000-000000000000").status_code == 404
    with pages.get("/places/export.pdf") as answer:
        assert answer.status_code == 404
    house_like = place_by_name("好又多便利店").id
    assert pages.get(f"/places/{house_like}/photos/{'0' * 64}").status_code == 404


def test_a_place_page_shows_details_schedule_checks_and_photos(pages):
    from tests.houses.test_pages import _jpeg

    place = place_by_name("好又多便利店")
    photo = _jpeg()
    sha = keep_photos([photo], user("worker1").id)[0]
    now = server_clock().physical_ms()
    apply.write_as_server([apply.stamp("place_check", uuid7(now, secrets.token_bytes(10)), {
        "place": place.id, "worker": user("worker1").id, "checked_at": format_ms(now), "checklist": "place.small_shop",
        "checklist_version": 1, "answers": [{"item": "wiring", "result": "fail", "note": "收银台下拖线板"}],
        "photos": [sha]}, bucket=place.bucket)])
    log_in(pages, "admin")
    page = pages.get(f"/places/{place.id}").get_data(as_text=True)
    assert "好又多便利店" in page and "东湖一网格" in page and "陈志强" in page and "张伟" in page
    assert page.count("data-check=") == 3 and "收银台下拖线板" in page and "私拉乱接电线" in page
    assert "正常" in page and "每 30 天" in page  # checked now: up to date, grade A of a small shop
    assert pages.get(f"/places/{place.id}/photos/{sha}?size=thumb").mimetype == "image/jpeg"
    assert pages.get(f"/places/{place.id}/photos/{sha}").get_data() == photo
    other = place_by_name("东湖五金店")
    assert pages.get(f"/places/{other.id}/photos/{sha}").status_code == 404
    assert pages.get(f"/places/{place.id}").headers["Cache-Control"] == "no-store"


def test_exports_in_every_format_follow_the_filters(pages):
    log_in(pages, "supervisor1")
    with pages.get("/places/export.csv?grid=G-0101") as answer:
        assert answer.mimetype == "text/csv" and "attachment" in answer.headers["Content-Disposition"]
        rows = list(csv.reader(io.StringIO(answer.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][:3] == ["场所名称", "类型", "等级"] and len(rows) == 1 + 5 and {r[4] for r in rows[1:]} == {"G-0101"}
    shop = next(r for r in rows if r[0] == "东湖五金店")
    assert shop[1] == "小商店" and shop[2] == "B" and "住人（三合一）" in shop[-1] and shop[9] == "张伟"
    with zipfile.ZipFile(io.BytesIO(pages.get("/places/export.xlsx?status=overdue").get_data())) as book:
        sheets = "".join(book.read(n).decode() for n in book.namelist() if n.startswith("xl/worksheets/"))
    assert "阿芳小吃店" in sheets and "青石木器厂" in sheets and "东湖五金店" not in sheets
    with pages.get("/places/export.geojson") as answer:
        features = json.loads(answer.get_data(as_text=True))["features"]
    assert len(features) == ALL and all(f["geometry"]["type"] == "Point" for f in features)
    assert {f["properties"]["status"] for f in features} == {"overdue", "never", "due", "ok"}


def test_the_pages_speak_english(pages):
    log_in(pages, "supervisor1")
    from .conftest import csrf_token

    pages.post("/language", data={"csrf_token": csrf_token(pages), "lang": "en"})
    page = pages.get("/places").get_data(as_text=True)
    assert "Key places" in page and "Small shop" in page and "Overdue" in page and "Illegal wiring" in page


@pytest.mark.parametrize("username, linked", [("supervisor1", True), ("admin", True), ("unit1", False)])
def test_the_navigation_links_the_places_for_those_who_may_open_them(pages, username, linked):
    log_in(pages, username)
    queue = pages.get("/", follow_redirects=True).get_data(as_text=True)
    assert ('href="/places"' in queue) == linked


def test_a_supervisor_adds_a_place_and_edits_it_as_themselves_audited(pages):
    from sqlalchemy import select

    from server.db import db
    from server.models import AuditEntry

    from .conftest import csrf_token

    log_in(pages, "supervisor1")
    assert "新增重点场所" in pages.get("/places/new").get_data(as_text=True)
    answer = pages.post("/places/new", data={
        "csrf_token": csrf_token(pages), "grid": "G-0102", "name": "东湖烧烤", "type": "small_shop", "grade": "B",
        "address": "东湖路70号", "person_in_charge": "钱七", "phone": "13700000001", "worker": user("worker2").id,
        "lat": "22.545", "lon": "114.061"})
    assert answer.status_code == 303, answer.get_data(as_text=True)[:3000]
    place = place_by_name("东湖烧烤")
    assert place.bucket == "grid:G-0102" and place.field_values["grade"] == "B"
    assert place.field_values["location"]["source"] == "manual" and place.field_values["worker"] == user("worker2").id
    assert "从未检查" in pages.get(answer.location).get_data(as_text=True)
    edit = pages.post(f"/places/{place.id}/edit", data={
        "csrf_token": csrf_token(pages), "grid": "G-0201", "name": "东湖烧烤", "type": "small_shop", "grade": "A",
        "worker": ""})
    assert edit.status_code == 303
    place = place_by_name("东湖烧烤")
    assert place.bucket == "grid:G-0102" and place.field_values["grade"] == "A"  # the grid stays
    assert place.field_values["worker"] is None and place.field_values["address"] is None
    db.session.rollback()
    lines = db.session.scalars(select(AuditEntry).where(AuditEntry.kind == "place")).all()
    assert [(line.action, line.actor) for line in lines] == [("create", "supervisor1"), ("edit", "supervisor1")]


@pytest.mark.parametrize("form", [
    {"grid": "G-9999", "name": "x", "type": "small_shop"}, {"grid": "G-0101", "name": "", "type": "small_shop"},
    {"grid": "G-0101", "name": "x", "type": "nothing"}, {"grid": "G-0101", "name": "x", "type": "small_shop",
                                                         "grade": "A B"},
    {"grid": "G-0101", "name": "x", "type": "small_shop", "lat": "north"},
    {"grid": "G-0101", "name": "x", "type": "small_shop", "worker": "0193b5c8-0000-7000-8000-000000000000"},
])
def test_a_bad_place_form_is_400_and_writes_nothing(pages, form):
    from .conftest import csrf_token

    log_in(pages, "supervisor1")
    answer = pages.post("/places/new", data={"csrf_token": csrf_token(pages), **form})
    assert answer.status_code == 400
    with pages.get("/places/export.csv") as listing:
        assert listing.get_data(as_text=True).count("\n") == 1 + ALL


@pytest.mark.parametrize("username", ["worker1", "unit1"])
def test_only_supervisors_and_admins_add_places(pages, username):
    from .conftest import csrf_token

    log_in(pages, username)
    assert pages.get("/places/new").status_code == 403
    assert pages.post("/places/new", data={"csrf_token": csrf_token(pages), "grid": "G-0101", "name": "x",
                                           "type": "small_shop"}).status_code == 403

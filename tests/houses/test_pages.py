"""The house pages: the list and its filters, a house with its checks and photos, tenants and the export."""

from __future__ import annotations

import csv
import hashlib
import io
import secrets

from server.sync import apply
from server.photos.service import keep_photos
from server.clock import server_clock
from shared.hlc import format_ms
from shared.records import uuid7

from .conftest import csrf_token, demo_id_numbers, house_by_address, log_in, user


def test_the_list_shows_last_checks_and_open_hazards_and_filters(pages):
    log_in(pages, "supervisor1")
    page = pages.get("/houses").get_data(as_text=True)
    assert page.count("data-house=") == 6
    # 东湖村12号's last check failed these; the hazards read as hazards, not as the rules they break
    assert "疏散通道堵塞" in page and "电线私拉乱接" in page and "疏散通道畅通" not in page
    assert "电动车在室内充电" not in page.split("东湖村12号")[1].split("</tr>")[0]  # only in the older check
    assert "从未检查" in page
    hazards = pages.get("/houses?hazards=1").get_data(as_text=True)
    assert hazards.count("data-house=") == 4 and "东湖村18号" not in hazards
    grid = pages.get("/houses?grid=G-0201").get_data(as_text=True)
    assert grid.count("data-house=") == 2
    community = pages.get("/houses?community=东湖社区").get_data(as_text=True)
    assert community.count("data-house=") == 4
    below = pages.get("/houses?below_goal=1").get_data(as_text=True)
    assert "东湖村12号" in below and "东湖村18号" not in below


def test_a_house_page_shows_details_checks_hazards_tenants_and_photos(pages):
    house = house_by_address("东湖村12号")
    photo = _jpeg()
    sha = keep_photos([photo], user("worker2").id)[0]  # the check's worker sent it
    missing = hashlib.sha256(b"still on the tablet").hexdigest()
    now = server_clock().physical_ms()
    apply.write_as_server([apply.stamp("house_check", uuid7(now, secrets.token_bytes(10)), {
        "house": house.id, "worker": user("worker2").id, "checked_at": format_ms(now), "checklist": "rental_house",
        "checklist_version": 1, "answers": [{"item": "wiring", "result": "fail", "note": "仍有飞线"}],
        "photos": [sha, missing], "residents_seen": 6}, bucket=house.bucket)])
    log_in(pages, "admin")
    page = pages.get(f"/houses/{house.id}").get_data(as_text=True)
    assert "黄建国" in page and "东湖一网格" in page and "仍有飞线" in page and "私拉乱接电线" in page
    assert page.count("data-check=") == 3 and page.count("data-tenant=") == 7
    assert "4403**********" in page and not [n for n in demo_id_numbers() if n in page]
    assert f"/houses/{house.id}/photos/{sha}?size=thumb" in page and "尚未收到" in page
    thumb = pages.get(f"/houses/{house.id}/photos/{sha}?size=thumb")
    assert thumb.status_code == 200 and thumb.mimetype == "image/jpeg"
    assert pages.get(f"/houses/{house.id}/photos/{sha}").get_data() == photo
    assert pages.get(f"/houses/{house.id}/photos/{missing}").status_code == 404
    other = house_by_address("东湖村18号")
    assert pages.get(f"/houses/{other.id}/photos/{sha}").status_code == 404  # not this house's photo
    assert pages.get(f"/houses/{house.id}").headers["Cache-Control"] == "no-store"


def test_tenants_list_and_the_csv_export_mask_and_filter_alike(pages):
    log_in(pages, "supervisor1")
    page = pages.get("/houses/tenants").get_data(as_text=True)
    second = pages.get("/houses/tenants?page=2").get_data(as_text=True)  # 20 a page (GRIDPATROL_PAGE_SIZE)
    assert page.count("data-tenant=") == 20 and second.count("data-tenant=") == 9 and "29 人" in page
    assert "胡斌" not in page + second  # moved out
    assert "胡斌" in pages.get("/houses/tenants?all=1").get_data(as_text=True)
    answer = pages.get("/houses/tenants.csv?grid=G-0201")
    assert answer.mimetype == "text/csv" and "attachment" in answer.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(answer.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][:3] == ["地址", "网格", "社区"] and "身份证号" in rows[0]
    assert len(rows) == 1 + 12 and {r[1] for r in rows[1:]} == {"G-0201"}
    column = rows[0].index("身份证号")
    assert all(r[column].startswith("4403") and "*" in r[column] for r in rows[1:])


def test_a_csv_cell_that_looks_like_a_formula_is_defused(pages):
    house = house_by_address("东湖村18号")
    now = server_clock().physical_ms()
    apply.write_as_server([apply.stamp("tenant", uuid7(now, secrets.token_bytes(10)), {
        "house": house.id, "name": "=HYPERLINK(\"http://x\")", "room": "9"}, bucket=house.bucket)])
    log_in(pages, "supervisor1")
    text = pages.get("/houses/tenants.csv").get_data(as_text=True)
    assert "'=HYPERLINK" in text


def test_the_pages_speak_english_after_the_switch(pages):
    log_in(pages, "supervisor1")
    pages.post("/language", data={"csrf_token": csrf_token(pages), "lang": "en"})
    page = pages.get("/houses/registration").get_data(as_text=True)
    assert "Registration rate of temporary residents" in page and "Houses below the goal" in page
    house = house_by_address("东湖村12号")
    assert "Escape route blocked" in pages.get(f"/houses/{house.id}").get_data(as_text=True)


def _jpeg() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (320, 240), (200, 80, 40)).save(out, "JPEG")
    return out.getvalue()


def test_houses_and_tenants_export_in_every_format_without_personal_data_in_the_houses(pages):
    import io
    import json
    import zipfile

    log_in(pages, "supervisor1")
    text = pages.get("/houses/export.csv").get_data(as_text=True)
    assert text.startswith("\ufeff") and "东湖村12号" in text and "疏散通道堵塞" in text
    collection = json.loads(pages.get("/houses/export.geojson?grid=G-0201").get_data(as_text=True))
    assert len(collection["features"]) == 2 and not [n for n in demo_id_numbers() if n in json.dumps(collection)]
    def cells(data: bytes) -> str:  # constant-memory workbooks keep their strings in the sheets
        with zipfile.ZipFile(io.BytesIO(data)) as workbook:
            return "".join(workbook.read(n).decode() for n in workbook.namelist() if n.startswith("xl/worksheets/"))

    with pages.get("/houses/export.xlsx") as book:
        assert "东湖村12号" in cells(book.data)
    with pages.get("/houses/tenants.xlsx") as tenants:
        strings = cells(tenants.data)
    assert "4403**********" in strings and not [n for n in demo_id_numbers() if n in strings]  # masked as on the page
    assert pages.get("/houses/export.pdf").status_code == 404 and pages.get("/houses/tenants.pdf").status_code == 404

"""The house pages in a real browser against a live server: the list, a house with a check synced from a tablet
with its photo, the registration rate, and the admin letting supervisors see ID numbers.

Headless Debian chromium through Playwright, as tests/pages/test_browser.py
(same live server fixture). Screenshots go to test-artifacts/pages/houses-*.png.
"""

from __future__ import annotations

import hashlib
import os

import pytest
from sqlalchemy import select

from ..pages.test_browser import (ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, PASSWORD, _need_browser, live_server,  # noqa: F401
                                  photo, wait_for_true)
from .conftest import demo_id_numbers

# The pages are served by werkzeug's threaded server in this process: when the browser drops a connection while a
# static file is being sent (it does, moving on to the next page), werkzeug leaves that file for the collector to
# close. That ResourceWarning is the test server's, not the product's (gunicorn serves production).
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::ResourceWarning"),
              pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]
WORKER_NODE = "00000000000000c3"
ADDRESS = "东湖村12号"


def _push_check_with_photo(app, base: str) -> str:
    """worker2's tablet uploads a photo and pushes a failed check of the house with it; returns the photo's hash."""
    import requests

    from server.db import db
    from server.models import Record, User
    from shared.hlc import HLC, format_ms, system_ms
    from shared.records import uuid7

    with app.app_context():
        house = next(r for r in db.session.scalars(select(Record).where(Record.kind == "rental_house"))
                     if r.field_values["address"] == ADDRESS)
        house_id, bucket = house.id, house.bucket
        worker = db.session.scalar(select(User).where(User.username == "worker2")).id
        db.session.remove()
    http = requests.Session()
    login = http.post(f"{base}/api/v1/auth/device", json={"username": "worker2", "password": PASSWORD,
                                                         "device_name": "李娜的平板", "node": WORKER_NODE})
    http.headers["Authorization"] = f"Bearer {login.json()['token']}"
    data = photo((150, 110, 60), "stairwell")
    sha = hashlib.sha256(data).hexdigest()
    answer = http.patch(f"{base}/api/v1/photos/{sha}", data=data, headers={
        "Upload-Offset": "0", "Upload-Length": str(len(data)), "Content-Type": "application/offset+octet-stream"})
    assert answer.status_code == 204, answer.text
    hlc = str(HLC(system_ms(), 0, WORKER_NODE))
    values = {"house": house_id, "worker": worker, "checked_at": format_ms(system_ms() - 60_000),
              "checklist": "rental_house", "checklist_version": 1, "photos": [sha], "residents_seen": 8,
              "answers": [{"item": "extinguisher", "result": "pass"},
                          {"item": "escape_route", "result": "fail", "note": "楼梯间堆放纸箱"},
                          {"item": "ebike_indoor", "result": "fail", "note": "两辆电动车在楼道充电"},
                          {"item": "wiring", "result": "pass"}, {"item": "smoke_alarm", "result": "pass"},
                          {"item": "crowding", "result": "pass"}]}
    change = {"kind": "house_check", "id": uuid7(system_ms(), os.urandom(10)), "bucket": bucket,
              "fields": {name: [value, hlc] for name, value in values.items()}}
    pushed = http.post(f"{base}/api/v1/sync/push", json={"node": WORKER_NODE, "changes": [change]})
    assert pushed.json()["results"][0]["status"] == "applied", pushed.text
    http.close()
    return sha


def test_houses_a_house_and_the_registration_rate_in_the_browser(live_server):
    _need_browser()
    from playwright.sync_api import expect, sync_playwright

    app, base = live_server
    from server.admin import demo as demo_data

    with app.app_context():
        demo_data.load_houses()
    sha = _push_check_with_photo(app, base)
    numbers = demo_id_numbers()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
            page.set_default_timeout(15_000)

            def log_in(username: str) -> None:
                page.goto(f"{base}/login")
                page.fill("input[name=username]", username)
                page.fill("input[name=password]", PASSWORD)
                page.click("form.stack button[type=submit]")
                expect(page.locator("[data-testid=who]")).to_be_visible()

            def log_out() -> None:
                page.click("header form.inline:not(.language) button")
                expect(page.locator("input[name=username]")).to_be_visible()

            # The supervisor opens the house list from the navigation.
            log_in("supervisor1")
            page.click("header nav >> text=出租屋")
            rows = page.locator("[data-testid=houses] tr[data-house]")
            expect(rows).to_have_count(6)
            row = page.locator("tr[data-house]", has_text=ADDRESS)
            expect(row.locator("[data-testid=hazards]")).to_contain_text("疏散通道堵塞")
            expect(row.locator("[data-testid=hazards]")).to_contain_text("电动车在室内充电")
            page.screenshot(path=str(ARTIFACTS / "houses-list.png"), full_page=True)

            # The house: the check from the tablet with its photo, the tenants masked.
            row.locator("a").first.click()
            expect(page.locator("[data-testid=house-title]")).to_contain_text(ADDRESS)
            checks = page.locator("[data-testid=checks] [data-check]")
            expect(checks).to_have_count(3)
            expect(checks.first).to_contain_text("李娜")
            expect(checks.first).to_contain_text("楼梯间堆放纸箱")
            thumb = checks.first.locator("img")
            expect(thumb).to_have_count(1)
            wait_for_true(page, "Array.from(document.querySelectorAll('[data-testid=checks] img'))"
                                ".every(img => img.complete && img.naturalWidth > 0)")
            assert sha[:12] == thumb.get_attribute("alt")
            ids = page.locator("[data-testid=tenants] [data-testid=id-number]").all_inner_texts()
            assert len(ids) == 7 and all("*" in i for i in ids)
            expect(page.locator("[data-testid=registration]")).to_contain_text("已登记 6 人，最近一次检查见到 8 人")
            assert not [n for n in numbers if n in page.content()]
            page.screenshot(path=str(ARTIFACTS / "houses-house-masked.png"), full_page=True)

            # The registration rate: the definition, the communities and grids, the houses below 95 %.
            page.click("header nav >> text=登记率")
            expect(page.locator("[data-testid=definition]")).to_contain_text("最近一次检查见到的住户")
            expect(page.locator("[data-testid=below-goal]")).to_contain_text(ADDRESS)
            expect(page.locator("[data-testid=by-grid] tr[data-key=G-0101]")).to_contain_text("未达标")
            page.screenshot(path=str(ARTIFACTS / "houses-registration.png"), full_page=True)
            log_out()

            # The admin lets supervisors see ID numbers in full.
            log_in("admin")
            page.click("header nav >> text=系统管理")
            page.click("[data-testid=admin-menu] >> text=身份证号")
            page.check("[data-testid=privacy-form] input[value=supervisor]")
            page.click("[data-testid=privacy-form] button[type=submit]")
            expect(page.locator(".flash.success")).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "houses-privacy-setting.png"), full_page=True)
            log_out()

            log_in("supervisor1")
            page.click("header nav >> text=暂住人员")
            expect(page.locator("[data-testid=tenant-list]")).to_contain_text(numbers[0])
            page.screenshot(path=str(ARTIFACTS / "houses-tenants-allowed.png"), full_page=True)

            # The same house in English.
            page.click("header form.language button[value=en]")
            page.click("header nav >> text=Rental houses")
            page.locator("tr[data-house]", has_text=ADDRESS).locator("a").first.click()
            expect(page.locator("[data-testid=checks]")).to_contain_text("Escape route blocked")
            page.screenshot(path=str(ARTIFACTS / "houses-house-english.png"), full_page=True)
        finally:
            browser.close()

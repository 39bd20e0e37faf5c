"""The admin tasks in headless Chromium against a live server: create a user and assign grids, add a category
with an urgent deadline, version a checklist, provision a device by a one-time code and sync with it, revoke it
and see its next sync refused.

Driven as tests/pages/test_browser.py drives the pages (same live server). Screenshots go to
test-artifacts/admin/*.png; the policy of every page forbids inline scripts, so a page that needed
one would show a console error, which the test collects and refuses.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
import requests

from ..pages.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, PASSWORD, _need_browser, live_server  # noqa: F401

# The pages are served by werkzeug's threaded server in this process: when the browser drops a connection while a
# static file is being sent (it does, moving on to the next page), werkzeug leaves that file for the collector to
# close. That ResourceWarning is the test server's, not the product's (gunicorn serves production).
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::ResourceWarning"),
              pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]
SHOTS = ARTIFACTS.parent / "admin"
NODE = "00000000000000d1"


def test_admin_tasks_in_the_browser(live_server):
    _need_browser()
    from playwright.sync_api import expect, sync_playwright

    app, base = live_server
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
            page.set_default_timeout(15_000)
            violations = []
            page.on("console", lambda m: violations.append((page.url, m.text[:60])) if "Content Security Policy" in m.text else None)
            page.goto(f"{base}/login")
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", PASSWORD)
            page.click("form.stack button[type=submit], main form button[type=submit]")
            page.goto(f"{base}/admin/")
            expect(page.get_by_test_id("admin-menu")).to_be_visible()

            # Create a user with two grids, then move one grid: the history shows both stretches.
            page.goto(f"{base}/admin/users/new/")
            page.fill("#username", "worker9")
            page.fill("#name", "赵敏")
            page.select_option("#role", "worker")
            page.check("input[name=grid_codes][value=G-0102]")
            page.check("input[name=grid_codes][value=G-0201]")
            page.fill("#password", "zhaomin-2026-pw")
            page.locator("main form input[type=submit]").first.click()
            expect(page.locator("table.model-list")).to_contain_text("worker9")
            page.screenshot(path=str(SHOTS / "users.png"), full_page=True)
            edit = page.get_by_role("row", name="worker9").locator("a[title]").first.get_attribute("href")
            page.goto(base + edit)
            page.uncheck("input[name=grid_codes][value=G-0201]")
            page.check("input[name=grid_codes][value=G-0301]")
            page.locator("main form input[type=submit]").first.click()
            expect(page.locator("table.model-list")).to_contain_text("G-0301")
            page.goto(base + edit)
            history = page.get_by_test_id("grid-history")
            expect(history).to_contain_text("G-0201")
            expect(history).to_contain_text("G-0301")
            page.screenshot(path=str(SHOTS / "user-grids.png"), full_page=True)

            # Draw G-0302's boundary on the map: four clicks, Finish, Save; the grid keeps the polygon.
            page.goto(f"{base}/admin/grids/?code=G-0302")
            expect(page.get_by_test_id("grid-map")).to_have_attribute("data-ready", "1")
            page.get_by_test_id("draw-start").click()
            box = page.get_by_test_id("grid-map").bounding_box()
            for dx, dy in [(0.3, 0.3), (0.7, 0.3), (0.7, 0.7), (0.3, 0.7)]:
                page.mouse.click(box["x"] + box["width"] * dx, box["y"] + box["height"] * dy)
            expect(page.get_by_test_id("grid-map")).to_have_attribute("data-corners", "4")
            page.get_by_test_id("draw-finish").click()
            drawn = json.loads(page.locator("textarea[name=boundary]").input_value())
            assert drawn["type"] == "Polygon" and len(drawn["coordinates"][0]) == 5
            page.screenshot(path=str(SHOTS / "grid-draw.png"), full_page=True)
            page.get_by_test_id("save").click()
            expect(page.get_by_test_id("grid-tree")).to_contain_text("G-0302")
            with app.app_context():
                from server.admin.service import find_reference

                assert find_reference("grid", "G-0302").field_values["boundary"] == drawn

            # A category with an urgent deadline.
            page.goto(f"{base}/admin/categories/")
            page.fill("#code", "gas_leak")
            page.fill("#name", "燃气泄漏")
            page.fill("#name_en", "Gas leak")
            page.select_option("#default_unit", "fire")
            page.fill("#deadline_hours", "24")
            page.fill("#urgent_deadline_hours", "2")
            page.fill("#duplicate_radius_m", "50")
            page.get_by_test_id("save").click()
            expect(page.get_by_test_id("records")).to_contain_text("燃气泄漏")
            page.screenshot(path=str(SHOTS / "categories.png"), full_page=True)

            # A new version of the demo's checklist.
            page.goto(f"{base}/admin/checklists/?code=rental_house")
            items = page.locator("#items")
            items.fill(items.input_value() + "\ngas | 燃气管道完好 | Gas pipes intact | fire_hazard")
            page.get_by_test_id("save").click()
            expect(page.get_by_test_id("versions")).to_contain_text("燃气管道完好")
            expect(page.get_by_test_id("version")).to_have_count(2)
            page.screenshot(path=str(SHOTS / "checklists.png"), full_page=True)

            # Provision worker1's tablet with a one-time code: the tablet logs in with it and syncs.
            page.goto(f"{base}/admin/devices/")
            page.get_by_test_id("provision-link").click()
            page.get_by_test_id("provision-user").select_option(label=page.locator(
                "[data-testid=provision-user] option", has_text="worker1").first.inner_text())
            page.get_by_test_id("provision-submit").click()
            code = page.get_by_test_id("code").inner_text().strip()
            expect(page.get_by_test_id("qr")).to_be_visible()
            page.screenshot(path=str(SHOTS / "provision.png"), full_page=True)
            login = requests.post(f"{base}/api/v1/auth/device-code", json={"code": code, "device_name": "张伟的平板",
                                                                          "node": NODE}, timeout=30)
            assert login.status_code == 200, login.text
            token = login.json()["token"]

            # Revoke worker1's tablet: its next sync is refused with the reason.
            headers = {"Authorization": f"Bearer {token}"}
            assert requests.post(f"{base}/api/v1/sync/pull", json={"cursors": {}}, headers=headers,
                                 timeout=30).status_code == 200
            page.goto(f"{base}/admin/devices/")
            page.locator("button[data-testid^=revoke-]").first.click()
            expect(page.locator("main")).to_contain_text("吊销")
            page.screenshot(path=str(SHOTS / "devices.png"), full_page=True)
            refused = requests.post(f"{base}/api/v1/sync/pull", json={"cursors": {}}, headers=headers, timeout=30)
            assert refused.status_code == 401
            assert refused.json()["error"]["details"] == {"reason": "device_revoked"}

            page.goto(f"{base}/admin/audit/")
            expect(page.locator("main")).to_contain_text("gas_leak")
            page.screenshot(path=str(SHOTS / "audit.png"), full_page=True)
            # Flask-Admin's own list template carries inline event handlers, which the policy blocks (its
            # files do the work); the pages written here need none.
            flask_admin_lists = ("/admin/users/", "/admin/users/new/", "/admin/users/edit/", "/admin/devices/",
                                 "/admin/audit/")
            own = [v for v in violations if urlsplit(v[0]).path not in flask_admin_lists]
            assert not own, own
        finally:
            browser.close()

"""The patrol pages in a real browser against a live server: the map drawn from its GeoJSON, coverage, the plan,
and a fixed point added through the form.

Headless Debian chromium through Playwright, as tests/pages/test_browser.py (same live server fixture), on the
demo with its patrols (server/patrols/demo.py). Screenshots go to test-artifacts/pages/patrols-*.png.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from ..pages.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, PASSWORD, _need_browser, live_server  # noqa: F401

# The pages are served by werkzeug's threaded server in this process: when the browser drops a connection while a
# static file is being sent (it does, moving on to the next page), werkzeug leaves that file for the collector to
# close. That ResourceWarning is the test server's, not the product's (gunicorn serves production).
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::ResourceWarning"),
              pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]


def test_the_patrol_map_coverage_plan_and_fixed_points_in_the_browser(live_server):
    _need_browser()
    from playwright.sync_api import expect, sync_playwright

    from server.db import db
    from server.models import User
    from server.patrols import demo as patrols_demo

    app, base = live_server
    with app.app_context():
        patrols_demo.load({u.username: u for u in db.session.scalars(select(User))})
        db.session.remove()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
            page.set_default_timeout(15_000)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            # Any answer of 400 or more but the browser's own favicon look-up (the pages have none) is a failure.
            page.on("response", lambda answer: errors.append(f"{answer.status} {answer.url}")
                    if answer.status >= 400 and not answer.url.endswith("/favicon.ico") else None)

            def log_in(username: str) -> None:
                page.goto(f"{base}/login")
                page.fill("input[name=username]", username)
                page.fill("input[name=password]", PASSWORD)
                page.click("form.stack button[type=submit]")
                expect(page.locator("[data-testid=who]")).to_be_visible()

            # The supervisor opens the map from the navigation: the latest day with patrols, every grid.
            log_in("supervisor1")
            page.click("header nav >> text=巡查")
            expect(page.locator("#patrol-map[data-ready='1']")).to_have_count(1)
            assert int(page.locator("#patrol-map").get_attribute("data-tracks")) >= 3
            # One grid: its outline, its two patrols, its fixed points visited or not, the events on the way.
            page.select_option("[data-testid=map-filters] select[name=grid]", "G-0101")
            page.click("[data-testid=map-filters] button[type=submit]")
            expect(page.locator("#patrol-map[data-ready='1']")).to_have_count(1)
            assert page.locator("#patrol-map").get_attribute("data-tracks") == "2"
            expect(page.locator("#patrol-map path.fixed-point.visited")).not_to_have_count(0)
            expect(page.locator("#patrol-map path.fixed-point.missed")).not_to_have_count(0)
            expect(page.locator("#patrol-map .event-marker")).not_to_have_count(0)
            expect(page.locator("[data-testid=patrol-list] tr[data-patrol]")).to_have_count(2)
            expect(page.locator("[data-testid=events-on-the-way]")).to_contain_text("巡查发现消防通道口车辆乱停放")
            expect(page.locator("[data-testid=fixed-points]")).to_contain_text("东湖路口")
            page.screenshot(path=str(ARTIFACTS / "patrols-map.png"), full_page=True)

            # Coverage: the grids with an outline have a share, the one without says so; the definitions.
            page.click("[data-testid=patrol-tabs] >> text=覆盖率")
            expect(page.locator("[data-testid=coverage] tr[data-grid=G-0302]")).to_contain_text("无边界，无覆盖率")
            expect(page.locator("[data-testid=coverage] tr[data-grid=G-0101] [data-testid=rate]")).to_contain_text("%")
            expect(page.locator("[data-testid=definitions]")).to_contain_text("50 米见方")
            page.select_option("[data-testid=coverage-filters] select[name=period]", "week")
            page.click("[data-testid=coverage-filters] button[type=submit]")
            expect(page.locator("h1")).to_contain_text("–")
            page.screenshot(path=str(ARTIFACTS / "patrols-coverage.png"), full_page=True)

            # The plan: G-0102's evening hours from its history; the rule in words.
            page.click("[data-testid=patrol-tabs] >> text=巡查计划")
            expect(page.locator("[data-testid=plans] tr[data-grid=G-0102] [data-testid=hours]")).to_contain_text("19")
            expect(page.locator("[data-testid=rule]")).to_contain_text("依据")
            page.screenshot(path=str(ARTIFACTS / "patrols-plan.png"), full_page=True)

            # A fixed point added through the form.
            page.click("[data-testid=patrol-tabs] >> text=定点")
            form = page.locator("[data-testid=point-form]")
            form.locator("select[name=grid]").select_option("G-0102")
            form.locator("input[name=name]").fill("东湖路夜市")
            form.locator("input[name=lat]").fill("22.5440")
            form.locator("input[name=lon]").fill("114.0640")
            form.locator("input[name=radius_m]").fill("40")
            form.locator("input[name=every_hours]").fill("12")
            form.locator("button[type=submit]").click()
            expect(page.locator(".flash.success")).to_contain_text("东湖路夜市")
            expect(page.locator("[data-testid=points]")).to_contain_text("东湖路夜市")
            page.screenshot(path=str(ARTIFACTS / "patrols-points.png"), full_page=True)

            # The same map in English.
            page.click("header form.language button[value=en]")
            page.goto(f"{base}/patrols?grid=G-0101")
            expect(page.locator("#patrol-map[data-ready='1']")).to_have_count(1)
            expect(page.locator("[data-testid=patrol-list]")).to_contain_text("Patrols")
            page.screenshot(path=str(ARTIFACTS / "patrols-map-en.png"), full_page=True)
            assert not errors, errors
        finally:
            browser.close()

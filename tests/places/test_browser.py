"""The key-place pages in a real browser against a live server: the list with its filters, a place, the export link.

Headless Debian chromium through Playwright, as tests/houses/test_browser.py (same live server
fixture). Screenshots go to test-artifacts/pages/places-*.png.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from ..pages.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, PASSWORD, _need_browser, live_server  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::ResourceWarning"),
              pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]


def test_places_their_filters_and_a_place_in_the_browser(live_server):
    _need_browser()
    from playwright.sync_api import expect, sync_playwright

    app, base = live_server
    from server.admin import demo as demo_data
    from server.db import db
    from server.models import User
    from server.places.demo import load_places

    with app.app_context():
        load_places({u.username: u for u in db.session.scalars(select(User))}, demo_data.ref_id)
        db.session.remove()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
            page.set_default_timeout(15_000)
            page.goto(f"{base}/login")
            page.fill("input[name=username]", "supervisor1")
            page.fill("input[name=password]", PASSWORD)
            page.click("form.stack button[type=submit]")
            expect(page.locator("[data-testid=who]")).to_be_visible()

            page.click("header nav >> text=重点场所")
            rows = page.locator("[data-testid=places] tr[data-place]")
            expect(rows).to_have_count(10)
            shop = page.locator("tr[data-place]", has_text="东湖五金店")
            expect(shop.locator("[data-testid=hazards]")).to_contain_text("住人（三合一）")
            expect(shop.locator("[data-testid=schedule]")).to_contain_text("正常")
            expect(page.locator("tr[data-place]", has_text="老李服装加工坊").locator("[data-testid=schedule]")
                   ).to_contain_text("从未检查")
            page.screenshot(path=str(ARTIFACTS / "places-list.png"), full_page=True)

            # Due or overdue, small shops only: the filters of the form.
            page.select_option("[data-testid=status]", "needs_check")
            page.select_option("[data-testid=type]", "small_shop")
            page.click("form.filters button[type=submit]")
            expect(rows).to_have_count(2)
            expect(page.locator("[data-testid=places]")).to_contain_text("好又多便利店")
            expect(page.locator("[data-testid=places]")).to_contain_text("阿芳小吃店")
            href = page.locator("[data-testid=exports] a", has_text="CSV").get_attribute("href")
            assert "status=needs_check" in href and "type=small_shop" in href
            page.screenshot(path=str(ARTIFACTS / "places-filtered.png"), full_page=True)

            page.locator("tr[data-place]", has_text="阿芳小吃店").locator("a").first.click()
            expect(page.locator("[data-testid=place-title]")).to_contain_text("阿芳小吃店")
            expect(page.locator("[data-testid=schedule]")).to_contain_text("超期")
            expect(page.locator("[data-testid=checks] [data-check]")).to_have_count(1)
            expect(page.locator("[data-testid=checks]")).to_contain_text("后门堆放煤气罐")
            page.screenshot(path=str(ARTIFACTS / "places-place.png"), full_page=True)

            # A new place from the form: it opens as never checked.
            page.click("[data-testid=edit-place]")
            expect(page.locator("[data-testid=place-form] select[name=grid]")).to_be_disabled()
            page.goto(f"{base}/places/new")
            page.select_option("select[name=grid]", "G-0101")
            page.fill("input[name=name]", "东湖书吧")
            page.select_option("select[name=type]", "small_venue")
            page.fill("input[name=grade]", "C")
            page.fill("input[name=address]", "东湖路20号")
            page.screenshot(path=str(ARTIFACTS / "places-new.png"), full_page=True)
            page.click("[data-testid=save]")
            expect(page.locator("[data-testid=place-title]")).to_contain_text("东湖书吧")
            expect(page.locator("[data-testid=schedule]")).to_contain_text("从未检查")
        finally:
            browser.close()

"""The dispute pages in a real browser against a live server: the list (overdue first, parties masked), a dispute
taken through its steps by a supervisor, the rates with their definitions, the admin's dispute kinds.

Headless Debian chromium through Playwright, as tests/houses/test_browser.py (same live server fixture).
Screenshots go to test-artifacts/pages/disputes-*.png.
"""

from __future__ import annotations

import pytest

from ..pages.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, PASSWORD, _need_browser, live_server  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::ResourceWarning"),
              pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]


def test_disputes_a_dispute_through_its_steps_and_the_rates_in_the_browser(live_server):
    _need_browser()
    from playwright.sync_api import expect, sync_playwright
    from sqlalchemy import select

    from server.db import db
    from server.disputes import demo as dispute_demo
    from server.models import User

    app, base = live_server
    with app.app_context():
        dispute_demo.load({u.username: u for u in db.session.scalars(select(User))})
        db.session.remove()
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

            log_in("supervisor1")
            page.click("header nav >> text=矛盾纠纷")
            rows = page.locator("[data-testid=disputes] tr[data-dispute]")
            expect(rows).to_have_count(3)  # open: the demo's five but the two concluded
            expect(rows.first.locator("[data-testid=overdue]")).to_have_text("超期")
            expect(rows.first.locator("[data-testid=parties]")).to_contain_text("周**")
            assert "周建国" not in page.content() and "13800135678" not in page.content()
            page.screenshot(path=str(ARTIFACTS / "disputes-list.png"), full_page=True)

            # The overdue dispute: parties in full to mediate, then accepted, a session, the outcome.
            rows.first.locator("a").first.click()
            expect(page.locator("[data-testid=parties]")).to_contain_text("周建国")
            expect(page.locator("[data-testid=status]")).to_have_text("未受理")
            page.click("form[data-action=accept] button[type=submit]")
            expect(page.locator(".flash.success")).to_be_visible()
            expect(page.locator("[data-testid=status]")).to_have_text("已受理")
            session = page.locator("form[data-action=session]")
            session.locator("input[name=mediators]").fill("陈静，社区调委会 何主任")
            session.locator("textarea[name=note]").fill("双方同意由楼上业主维修防水层")
            session.locator("button[type=submit]").click()
            expect(page.locator("[data-testid=sessions]")).to_have_text("1")
            outcome = page.locator("form[data-action=outcome]")
            outcome.locator("select[name=outcome]").select_option("settled")
            outcome.locator("textarea[name=note]").fill("签订调解协议，三日内完成维修")
            outcome.locator("button[type=submit]").click()
            expect(page.locator("[data-testid=outcome]")).to_have_text("调解成功")
            expect(page.locator("form[data-action=follow_up]")).to_be_visible()
            expect(page.locator("[data-testid=timeline] tr[data-action]")).to_have_count(4)
            page.screenshot(path=str(ARTIFACTS / "disputes-dispute.png"), full_page=True)

            # The rates: the definitions, the goals, the places below them marked.
            page.goto(f"{base}/disputes/rates")
            expect(page.locator("[data-testid=dispute-definitions]")).to_contain_text("目标：100%")
            street = page.locator("[data-testid=by-street] tr[data-key=东湖街道]")
            expect(street).to_contain_text("80.0 %")  # 4 of 5 mediated now
            expect(street).to_contain_text("66.7 %")  # 2 of 3 outcomes settled
            page.screenshot(path=str(ARTIFACTS / "disputes-rates.png"), full_page=True)

            # The admin's dispute kinds with their hours.
            log_in("admin")
            page.goto(f"{base}/admin/dispute-kinds/")
            expect(page.locator("[data-testid=records]")).to_contain_text("劳资纠纷")
            page.screenshot(path=str(ARTIFACTS / "disputes-admin-kinds.png"), full_page=True)
        finally:
            browser.close()

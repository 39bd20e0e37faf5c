"""The case loop in a real browser against a live server: 巡 → 拨 → 办 → 督, through pages and the sync API.

Headless Debian chromium, driven by Playwright (its own browser download is not
possible here; scripts/install-system-deps.sh installs chromium and the CJK
fonts). The server is the real app on a werkzeug server in a thread, on a free
port of 127.0.0.1, with a SQLite store holding the demo. Screenshots of the
queue and the case page go to test-artifacts/pages/.

Locally the test is skipped when chromium is missing; in CI (CI=true) it must run.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import uuid
from pathlib import Path

import pytest

from .conftest import recent_days

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "pages"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PASSWORD = "demo-pass"
CASE_TEXT = "3栋楼道内电动车飞线充电"  # worker1's demo event: e-bike charging, default unit fire
WORKER_NODE = "00000000000000b7"

# The pages are served by werkzeug's threaded server in this process: when the browser drops a connection while a
# static file is being sent (it does, moving on to the next page), werkzeug leaves that file for the collector to
# close. That ResourceWarning is the test server's, not the product's (gunicorn serves production).
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::ResourceWarning"),
              pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]


def _need_browser():
    missing = []
    if not os.path.exists(CHROMIUM):
        missing.append(f"{CHROMIUM} (run scripts/install-system-deps.sh as root)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package (pip install -e '.[dev]')")
    if missing:
        message = "the browser test needs " + " and ".join(missing)
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def wait_for_true(page, expression: str, timeout_s: float = 15.0) -> None:
    """Poll a JavaScript expression until it is true.

    Not Playwright's wait_for_function: its poller evaluates a string predicate with eval() inside the page,
    which the pages' Content-Security-Policy (no 'unsafe-eval') refuses whenever the first check is false.
    ``page.evaluate`` goes through the DevTools protocol, which the policy does not govern.
    """
    import time

    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {expression}")
        time.sleep(0.1)


@pytest.fixture
def live_server(sqlite_template, tmp_path):
    """The app serving on a free port of 127.0.0.1, on a fresh SQLite store with the demo."""
    from werkzeug.serving import make_server

    from server import create_app
    from server.admin import demo as demo_data
    from server.db import db

    path = tmp_path / "store.db"
    shutil.copy(sqlite_template, path)
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}", "SECRET_KEY": "browser-test",
                      "GRIDPATROL_NODE": uuid.uuid4().hex[:16], "GRIDPATROL_PHOTO_DIR": str(tmp_path / "photos"),
                      "GRIDPATROL_TILE_URL": ""})
    with app.app_context():
        demo_data.load(password=PASSWORD)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
        with app.app_context():
            db.engine.dispose()


class Tablet:
    """The reporting worker's tablet, speaking the sync API over HTTP."""

    def __init__(self, base: str, username: str):
        import requests

        self.http = requests.Session()
        self.base = base
        answer = self.http.post(f"{base}/api/v1/auth/device", json={
            "username": username, "password": PASSWORD, "device_name": "张伟的平板", "node": WORKER_NODE})
        answer.raise_for_status()
        body = answer.json()
        self.user_id = body["user"]["id"]
        self.http.headers["Authorization"] = f"Bearer {body['token']}"
        self.counter = 0

    def verify(self, event_id: str, passed: bool, note: str) -> dict:
        """Push a verification of the event, stamped by this device's HLC."""
        from shared.hlc import HLC, system_ms
        from shared.records import uuid7

        self.counter += 1
        hlc = str(HLC(system_ms(), self.counter, WORKER_NODE))
        fields = {"event": event_id, "action": "verify_pass" if passed else "verify_fail",
                  "actor": self.user_id, "note": note}
        change = {"kind": "case_action", "id": uuid7(system_ms(), os.urandom(10)), "bucket": "grid:G-0101",
                  "fields": {name: [value, hlc] for name, value in fields.items()}}
        answer = self.http.post(f"{self.base}/api/v1/sync/push", json={"node": WORKER_NODE, "changes": [change]})
        answer.raise_for_status()
        result = answer.json()["results"][0]
        assert result["status"] == "applied", result
        return result

    def add_photos(self, event_id: str, photos: list[bytes], missing: int) -> list[str]:
        """Upload the photos (tus-style PATCH by hash), then set the event's photos plus ``missing`` never sent."""
        import hashlib

        from shared.hlc import HLC, system_ms

        hashes = []
        for data in photos:
            sha = hashlib.sha256(data).hexdigest()
            answer = self.http.patch(f"{self.base}/api/v1/photos/{sha}", data=data, headers={
                "Upload-Offset": "0", "Upload-Length": str(len(data)),
                "Content-Type": "application/offset+octet-stream"})
            assert answer.status_code == 204, answer.text
            hashes.append(sha)
        hashes += [hashlib.sha256(f"still on the tablet {n}".encode()).hexdigest() for n in range(missing)]
        self.counter += 1
        hlc = str(HLC(system_ms(), self.counter, WORKER_NODE))
        change = {"kind": "event", "id": event_id, "bucket": "grid:G-0101", "fields": {"photos": [hashes, hlc]}}
        answer = self.http.post(f"{self.base}/api/v1/sync/push", json={"node": WORKER_NODE, "changes": [change]})
        assert answer.json()["results"][0]["status"] == "applied", answer.text
        return hashes

    def close(self):
        self.http.close()


def photo(colour: tuple[int, int, int], label: str) -> bytes:
    """A JPEG that looks enough like a photo for a thumbnail to be seen."""
    import io

    from PIL import Image, ImageDraw

    image = Image.new("RGB", (640, 480), colour)
    draw = ImageDraw.Draw(image)
    for n in range(0, 640, 40):
        draw.line([(n, 0), (640 - n, 480)], fill=(255, 255, 255), width=3)
    draw.rectangle([200, 160, 440, 320], fill=(40, 40, 40))
    draw.text((220, 230), label, fill=(255, 255, 0))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()


def test_the_case_loop_through_the_pages_and_the_sync_api(live_server):
    _need_browser()
    from playwright.sync_api import expect, sync_playwright

    _app, base = live_server
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

            def status() -> str:
                return page.locator("[data-testid=status]").get_attribute("data-status")

            def failures() -> int:
                return int(page.locator("[data-testid=failures]").inner_text())

            # 1. The supervisor logs in, finds the case in the queue and dispatches it.
            log_in("supervisor1")
            expect(page.locator("[data-testid=queue]")).to_be_visible()
            expect(page.locator("[data-testid=status-counts]")).to_contain_text("未结案")
            page.screenshot(path=str(ARTIFACTS / "queue-supervisor.png"), full_page=True)
            page.click(f"text={CASE_TEXT}")
            case_url = page.url
            event_id = case_url.rsplit("/", 1)[1]
            assert status() == "reported"
            expect(page.locator("#map .leaflet-marker-icon")).to_be_visible()  # Leaflet, from the package
            wait_for_true(page, "document.getElementById('map').dataset.ready === '1'")
            dispatch = page.locator("form[data-action=dispatch]")
            assert dispatch.locator("select[name=unit]").input_value() == "fire"  # the category's unit
            assert dispatch.locator("input[name=deadline]").input_value()  # the category's deadline
            page.screenshot(path=str(ARTIFACTS / "case-reported.png"), full_page=True)
            dispatch.locator("button[type=submit]").click()
            expect(page.locator("[data-testid=status]")).to_have_attribute("data-status", "dispatched")
            expect(page.locator("[data-testid=unit]")).to_have_text("消防")
            log_out()

            # The reporter's tablet uploads two of the event's three photos late (the third is still queued).
            tablet = Tablet(base, "worker1")
            held = tablet.add_photos(event_id, [photo((180, 60, 40), "charging 1"),
                                                photo((40, 90, 160), "charging 2")], missing=1)[:2]

            # 2. The unit user sees it in their queue, with the photos, and records the rectification.
            log_in("unit1")
            expect(page.locator(f"tr[data-case='{event_id}']")).to_be_visible()
            page.goto(case_url)
            expect(page.locator("[data-testid=photo-count]")).to_have_text("已收到 2 / 3 张照片")
            thumbs = page.locator("[data-testid=photos] img")
            expect(thumbs).to_have_count(2)
            wait_for_true(page, "Array.from(document.querySelectorAll('[data-testid=photos] img'))"
                                ".every(img => img.complete && img.naturalWidth > 0)")
            full = page.request.get(base + page.locator("[data-testid=photos] a").first.get_attribute("href"))
            assert full.ok and full.headers["content-type"] == "image/jpeg"
            assert len(full.body()) > 1000 and held

            def rectify(note: str) -> None:
                form = page.locator("form[data-action=rectify]")
                form.locator("textarea[name=note]").fill(note)
                form.locator("button[type=submit]").click()
                expect(page.locator("[data-testid=status]")).to_have_attribute("data-status", "rectified")

            # 3-4. The reporter fails the verification on the tablet, four times; the fourth brings 督办.
            for round_number in range(1, 5):
                rectify(f"第{round_number}次整治：已拆除飞线")
                tablet.verify(event_id, passed=False, note=f"第{round_number}次核查：仍有飞线")
                page.reload()
                assert status() == "returned"
                assert failures() == round_number
                expect(page.locator("[data-testid=status]")).to_have_text("退回整治")
                supervised = page.locator("[data-testid=supervised]")
                if round_number < 4:
                    expect(supervised).to_have_count(0)
                else:
                    expect(supervised).to_have_text("督办")
            page.screenshot(path=str(ARTIFACTS / "case-supervised-unit.png"), full_page=True)

            # 5. Rectified once more, the reporter's passing verification closes the case.
            rectify("第5次整治：线路已改造，充电桩已安装")
            tablet.verify(event_id, passed=True, note="核查通过")
            tablet.close()
            page.reload()
            assert status() == "closed"
            expect(page.locator("[data-testid=status]")).to_have_text("已结案")
            timeline = page.locator("[data-testid=timeline]")
            expect(timeline).to_contain_text("平板“张伟的平板”")  # from which device
            expect(timeline).to_contain_text("核查通过")
            log_out()

            # The supervisor's view of the closed case and of the whole queue.
            log_in("supervisor1")
            page.goto(case_url)
            expect(page.locator("[data-testid=supervised]")).to_have_text("督办")
            assert failures() == 4
            page.screenshot(path=str(ARTIFACTS / "case-closed-supervisor.png"), full_page=True)
            page.goto(f"{base}/cases?status=all")
            row = page.locator(f"tr[data-case='{event_id}']")
            expect(row).to_have_attribute("data-status", "closed")
            page.screenshot(path=str(ARTIFACTS / "queue-all.png"), full_page=True)

            # The same page in English.
            page.click("header form.language button[value=en]")
            expect(page.locator("h1")).to_contain_text("Case queue")
            page.goto(case_url)
            expect(page.locator("[data-testid=status]")).to_have_text("Closed")
            page.screenshot(path=str(ARTIFACTS / "case-closed-english.png"), full_page=True)
        finally:
            browser.close()
    assert re.fullmatch(r"[0-9a-f-]{36}", event_id)


def test_a_unit_sends_back_and_asks_for_time_and_a_case_is_found_by_its_number(live_server):
    _need_browser()
    from playwright.sync_api import expect, sync_playwright

    from server.db import db
    from server.models import Record

    app, base = live_server
    with app.app_context():  # a fresh report, as a tablet's sync would bring it
        from tests.pages.conftest import new_event
        event_id = new_event(description="东湖路口井盖缺失，需尽快处理")
        number = db.session.get(Record, event_id).field_values["case_number"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
            page.set_default_timeout(15_000)

            def log_in(username: str) -> None:
                page.context.clear_cookies()
                page.goto(f"{base}/login")
                page.fill("input[name=username]", username)
                page.fill("input[name=password]", PASSWORD)
                page.click("form.stack button[type=submit]")
                expect(page.locator("[data-testid=who]")).to_be_visible()

            def find_by_number() -> None:
                page.goto(f"{base}/cases")
                page.fill("[data-testid=search]", number)
                page.locator("[data-testid=search]").press("Enter")
                expect(page.locator("[data-testid=case-number]")).to_contain_text(number)

            # The supervisor finds the case by the number read out on the phone and dispatches it.
            log_in("supervisor1")
            find_by_number()
            page.locator("form[data-action=dispatch] button[type=submit]").click()
            expect(page.locator("[data-testid=status]")).to_have_attribute("data-status", "dispatched")

            # The unit says it is not theirs (退回): the case leaves its queue.
            log_in("unit1")
            page.goto(f"{base}/cases/{event_id}")
            back = page.locator("form[data-action=send_back]")
            back.locator("textarea[name=note]").fill("井盖属于市政，不是消防")
            back.locator("button[type=submit]").click()
            expect(page.locator("[data-testid=queue], .empty").first).to_be_visible()
            expect(page.locator(f"tr[data-case='{event_id}']")).to_have_count(0)

            # Back in the supervisor's queue, reported again, counted against no one; dispatched again.
            log_in("supervisor1")
            find_by_number()
            expect(page.locator("[data-testid=status]")).to_have_attribute("data-status", "reported")
            expect(page.locator("[data-testid=sent-back]")).to_be_visible()
            expect(page.locator("[data-testid=timeline]")).to_contain_text("井盖属于市政，不是消防")
            page.screenshot(path=str(ARTIFACTS / "case-sent-back.png"), full_page=True)
            page.locator("form[data-action=dispatch] button[type=submit]").click()
            expect(page.locator("[data-testid=status]")).to_have_attribute("data-status", "dispatched")
            deadline = page.locator("[data-testid=deadline]").inner_text()

            # The unit asks for more time; only the supervisor's grant moves the deadline.
            log_in("unit1")
            page.goto(f"{base}/cases/{event_id}")
            ask = page.locator("form[data-action=request_extension]")
            ask.locator("input[name=deadline]").fill("2099-06-01T18:00")
            ask.locator("textarea[name=note]").fill("需要向市政申请新井盖")
            ask.locator("button[type=submit]").click()
            expect(page.locator("[data-testid=extensions]")).to_contain_text("待审批")
            assert page.locator("[data-testid=deadline]").inner_text() == deadline

            log_in("supervisor1")
            page.goto(f"{base}/cases?status=open")
            expect(page.locator(f"tr[data-case='{event_id}']")).to_contain_text("已申请延期")
            page.goto(f"{base}/cases/{event_id}")
            page.screenshot(path=str(ARTIFACTS / "case-extension-asked.png"), full_page=True)
            grant = page.locator("form[data-action=grant_extension]")
            assert grant.locator("input[name=deadline]").input_value() == "2099-06-01T18:00"
            grant.locator("button[type=submit]").click()
            expect(page.locator("[data-testid=deadline]")).to_contain_text("2099-06-01 18:00")
            expect(page.locator("[data-testid=extensions]")).to_contain_text("已批准 1 次")
            page.screenshot(path=str(ARTIFACTS / "case-extension-granted.png"), full_page=True)
        finally:
            browser.close()


@pytest.mark.parametrize("width", [1280, 768])
def test_the_statistics_dashboard_at_desk_and_tablet_width(live_server, width):
    _need_browser()
    from playwright.sync_api import expect, sync_playwright

    app, base = live_server
    with app.app_context():
        recent = recent_days()  # this week holds none of the demo's events in the first hour of a Monday
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900}, locale="zh-CN")
            page.set_default_timeout(15_000)
            page.goto(f"{base}/login")
            page.fill("input[name=username]", "supervisor1")
            page.fill("input[name=password]", PASSWORD)
            page.click("form.stack button[type=submit]")
            page.goto(f"{base}/stats?{recent}")
            table = page.locator("[data-testid=stats-table]")
            expect(table).to_contain_text("受理")
            expect(table.locator("tfoot")).to_contain_text("合计")
            assert int(table.locator("tfoot [data-figure=reported]").inner_text()) >= 1
            expect(page.locator("[data-testid=rhythm] svg").first).to_be_visible()
            wait_for_true(page, "document.getElementById('stats-map').dataset.ready === '1'")
            expect(page.locator("#stats-map .leaflet-interactive").first).to_be_visible()  # an open case, coloured
            page.screenshot(path=str(ARTIFACTS / f"stats-{width}.png"), full_page=True)
            table.locator("tbody a").first.click()  # drill into a street
            expect(page.locator(".crumbs")).to_contain_text("›")
            page.screenshot(path=str(ARTIFACTS / f"stats-street-{width}.png"), full_page=True)
        finally:
            browser.close()

"""The field app driven like a worker drives it: touches on the glass, a real server, the network coming and going.

One flow, end to end (issue "The field app"): log in online; go offline;
report an event with two photos and a manual location; see it counted as
unsynced; sync offline (it fails and keeps everything); go online and sync;
the server holds the event and both photos. The office dispatches and the
unit rectifies through the API; the worker syncs, fails the verification with
a note, syncs; the unit rectifies again; the worker passes it and syncs; the
server's fold says closed, verified, one failed verification. Every screen is
photographed in Chinese on the way (test-artifacts/gui/) and checked.
"""

from __future__ import annotations

import hashlib


from tests.photos.helpers import make_jpeg

from .api import Desk
from .checks import assert_chinese_drawn, assert_not_blank, render, roboto_path
from .conftest import PASSWORD, idle, screenshot, tap, wait_until

DESCRIPTION = "5栋楼道堆放纸箱，堵住消防通道"


def current(app) -> str:
    return app.sm.current


def log_in_worker(app) -> None:
    """worker1 logs in by touch; Home, once the first sync (the reference data: grids, categories) went through."""
    login = app.screen("login")
    login.username.text = "worker1"
    login.password.text = PASSWORD
    tap(login.submit)
    wait_until(lambda: current(app) == "home", 30, "Home after log-in")
    wait_until(lambda: app.screen("sync").outcome is not None, 40, "the first sync")
    assert app.screen("sync").outcome.ok, app.screen("sync").outcome


def sync_and_wait(app, *, expect_ok: bool | None = True):
    """Tap Sync (from Home) or Retry (on the Sync screen) and wait for the outcome to reach the UI."""
    screen = app.screen("sync")
    before = screen.outcome
    if current(app) == "home":
        tap(app.screen("home").sync)
    else:
        if current(app) != "sync":
            app.go("sync")
        idle(3)  # a screen just shown is laid out in the next frames
        tap(screen.retry)
    outcome = wait_until(lambda: screen.outcome is not before and screen.outcome, 40, "the sync's outcome")
    if expect_ok is not None:
        assert outcome.ok is expect_ok, outcome
    idle(2)
    return outcome


def choose_photo(app, screen_add_button, path, photos_of) -> None:
    """Tap "add photo", pick the file in the desktop file chooser popup, wait until the photo is in the form."""
    from kivy.core.window import Window

    from mobile.ui.pickers import PhotoChooser

    count = len(photos_of())
    tap(screen_add_button)
    chooser = wait_until(lambda: next((w for w in Window.children if isinstance(w, PhotoChooser)), None), 5,
                         "the file chooser")
    chooser.chooser.selection = [str(path)]
    tap(chooser.choose)
    wait_until(lambda: len(photos_of()) == count + 1, 20, "the photo to be prepared")
    # A popup still on its way out takes the next tap (a save that never happened, under load).
    wait_until(lambda: chooser not in Window.children, 5, "the file chooser to close")


def check_screen(window, app, name: str) -> None:
    """Screenshot the screen, check it is not blank and its Chinese title is drawn in glyphs."""
    path = screenshot(window, name)
    assert_not_blank(path)
    title = app.screen(current(app)).header.label
    assert any("\u4e00" <= ch <= "\u9fff" for ch in title.text), title.text
    assert_chinese_drawn(title)


def test_the_cjk_font_draws_chinese_not_boxes(window):
    from mobile.ui.fonts import register_cjk_font

    font = register_cjk_font()
    assert font is not None, "no CJK font: run scripts/install-system-deps.sh (fonts-noto-cjk)"
    report, cases = render("上报事件"), render("我的案件")
    boxes_report, boxes_cases = render("上报事件", roboto_path()), render("我的案件", roboto_path())
    assert report != boxes_report and cases != boxes_cases  # not Roboto's drawing
    assert report != cases  # two different strings look different: they are not rows of identical boxes
    assert boxes_report == boxes_cases  # (and the check can tell: Roboto draws both as the same four boxes)


def test_a_worker_reports_offline_syncs_and_verifies_until_the_case_closes(window, field_app, network,
                                                                            live_server, tmp_path):
    app = field_app

    # 1. Log in: online, once.
    assert current(app) == "login"
    login = app.screen("login")
    assert login.server.text == live_server.url
    check_screen(window, app, "01-login")
    log_in_worker(app)
    home = app.screen("home")
    # Home's figures are made off the UI thread: they arrive a few frames after the screen shows.
    wait_until(lambda: "东湖一网格" in home.grids.text, 30, "Home's grids")
    wait_until(lambda: "张伟" in home.user.text, 30, "Home's user")

    # 2. Offline from here: report an event with two photos and a manual location.
    network.mode = "offline"
    tap(home.report)
    assert current(app) == "report"
    report = app.screen("report")
    category = next(b for b in report.categories.children if b.code == "blocked_escape")
    tap(category)
    assert report.category == "blocked_escape"
    micro = next(b for b in report.categories.children if b.code == "garbage")
    assert "（微）" in micro.text
    report.description.text = DESCRIPTION
    # No GPS here: the form asks why there is no location, and will not save without a reason or a position.
    assert report.reading is None and report.reasons.opacity == 1
    tap(report.save_button)
    assert current(app) == "report"
    report.address.text = "东湖路5栋"
    screenshot(window, "03a-report-no-location")
    tap(report.urgent)
    assert report.urgent.state == "down"
    assert report.on_spot.disabled  # not a micro event
    tap(report.manual)
    from kivy.core.window import Window

    from mobile.ui.pickers import LocationPopup

    popup = wait_until(lambda: next((w for w in Window.children if isinstance(w, LocationPopup)), None), 5,
                       "the location popup")
    popup.lat.text, popup.lon.text = "22.54312", "114.05788"
    tap(popup.ok)
    assert report.reading.source == "manual"
    assert "手动输入" in report.location_source.text
    jpegs = []
    for n in range(2):
        path = tmp_path / "camera-roll" / f"photo{n}.jpg"
        path.write_bytes(make_jpeg(800, 600, noise=True, seed=n))
        jpegs.append(path)
        choose_photo(app, report.strip.add, path, lambda: report.photos)
    check_screen(window, app, "03-report")
    shas = list(report.photos)
    tap(report.save_button)
    assert current(app) == "home"
    wait_until(lambda: home.unsynced.text == "未同步：1 条记录，2 张照片", 30, "Home's unsynced count")
    check_screen(window, app, "02-home")

    # 3. Sync offline: it fails, says so, and keeps everything.
    outcome = sync_and_wait(app, expect_ok=False)
    assert not outcome.needs_login
    sync = app.screen("sync")
    assert "网络不可用" in sync.state.text, sync.state.text
    assert sync.counts.text == "未同步：1 条记录，2 张照片"
    check_screen(window, app, "06-sync-offline")

    # 4. Online again: retry; the server holds the event and both photos.
    network.mode = "online"
    outcome = sync_and_wait(app)
    assert outcome.pushed >= 1 and outcome.photos_failed == 0
    assert sync.counts.text == "未同步：0 条记录，0 张照片"
    check_screen(window, app, "06-sync")
    supervisor, unit = Desk(live_server.url, "supervisor1"), Desk(live_server.url, "unit1")
    event = supervisor.find_event(DESCRIPTION)
    assert event is not None, "the event is not on the server"
    fields = {name: write[0] for name, write in event["fields"].items()}
    assert fields["urgent"] is True and fields["category"] == "blocked_escape"
    assert fields["location"]["source"] == "manual" and "fix_at" not in fields["location"]
    assert fields["address"] == "东湖路5栋"
    assert sorted(fields["photos"]) == sorted(shas)
    for sha in shas:
        answer = supervisor.photo(sha)
        assert answer.status_code == 200
        assert hashlib.sha256(answer.content).hexdigest() == sha

    # 5. The office dispatches, the unit rectifies; the worker syncs and fails the verification.
    supervisor.act(event, "dispatch", unit="fire")
    rectified_sha = unit.upload(make_jpeg(800, 600, noise=True, seed=77))
    unit.act(event, "rectify", note="纸箱已清走", photos=[rectified_sha])
    sync_and_wait(app)
    app.go("home")
    idle(2)
    tap(home.cases)
    assert current(app) == "cases"
    cases = app.screen("cases")
    wait_until(lambda: cases.list.data and cases.list.data[0]["awaiting"], 30, "the case awaiting verification")
    assert cases.list.data[0]["event_id"] == event["id"]
    assert cases.list.data[0]["status_text"] == "待我核查"
    check_screen(window, app, "04-cases")
    row = wait_until(lambda: next((v for v in cases.list.layout_manager.children if v.event_id == event["id"]), None),
                     5, "the row on screen")
    tap(row)
    assert current(app) == "case"
    case = app.screen("case")
    assert not case.fail_button.disabled
    case.note.text = "通道内仍有杂物"
    # The unit's rectification is above the verification: its note, and its photo's thumbnail fetched by the sync.
    rectified = " ".join(w.text for w in case.rectified_box.children if hasattr(w, "text"))
    assert "纸箱已清走" in rectified and "整改情况" in rectified, rectified
    from mobile.ui.screens.case import PhotoPopup, PhotoThumb

    thumbs = [w for grid in case.rectified_box.children for w in getattr(grid, "children", [])
              if isinstance(w, PhotoThumb)]
    assert len(thumbs) == 1, "the rectification's thumbnail is not on the tablet"
    check_screen(window, app, "05-case")
    tap(thumbs[0])  # the full photo, fetched on request
    popup = wait_until(lambda: next((w for w in Window.children if isinstance(w, PhotoPopup)), None), 30,
                       "the full photo")
    assert popup.children[0].source.endswith(f"{rectified_sha}.jpg")
    screenshot(window, "05b-rectification-photo")
    popup.dismiss(animation=False)
    wait_until(lambda: popup not in Window.children, 5, "the photo to close")
    idle(2)
    tap(case.fail_button)
    assert case.fail_button.disabled  # nothing to verify until the unit rectifies again
    assert "核查不通过" in "".join(w.text for w in case.details.children if hasattr(w, "text"))
    sync_and_wait(app)
    assert supervisor.case(event).status == "returned"

    # 6. Rectified again; this time it passes, and the server closes the case.
    unit.act(event, "rectify", note="杂物全部清理")
    sync_and_wait(app)
    app.go("case", event_id=event["id"])
    idle(2)
    assert not case.pass_button.disabled
    tap(case.pass_button)
    sync_and_wait(app)
    state = supervisor.case(event)
    assert (state.status, state.resolution, state.failed_verifications) == ("closed", "verified", 1)
    app.go("cases")
    wait_until(lambda: cases.list.data and cases.list.data[0]["status_text"].startswith("已结案"), 30,
               "the closed case in My cases")

    # 7. Settings, in Chinese; then the language switches at runtime and back.
    app.go("home")
    idle(1)
    tap(home.settings_button)
    settings = app.screen("settings")
    check_screen(window, app, "07-settings")
    tap(settings.language_buttons["en"])
    assert settings.header.title == "Settings" and home.report.text == "Report event"
    app.go("home")
    wait_until(lambda: not home.load.loading, 30, "Home's figures")
    assert_not_blank(screenshot(window, "08-home-en"))
    tap(home.settings_button)
    tap(settings.language_buttons["zh"])
    assert settings.header.title == "设置" and home.report.text == "上报事件"


def test_a_refused_token_shows_log_in_again_and_keeps_the_captures(window, field_app, network, live_server,
                                                                   tmp_path):
    app = field_app
    login = app.screen("login")
    login.username.text, login.password.text = "worker1", PASSWORD
    tap(login.submit)
    wait_until(lambda: app.screen("sync").outcome is not None, 40, "the first sync")

    # A capture, then a sync whose token the server refuses (an admin revoked the device).
    report = app.screen("report")
    app.go("report", fresh=True)
    idle(2)
    tap(next(b for b in report.categories.children if b.code == "garbage"))
    assert not report.on_spot.disabled  # a micro event may be handled on the spot
    report.description.text = "路口垃圾堆放，已现场清理"
    tap(report.on_spot)
    report.on_spot_note.text = "叫来保洁员清走"
    tap(report.reason_buttons["no_fix"])  # no GPS in this window: the worker says why there is no position
    tap(report.save_button)  # handling on the spot needs a photo as evidence: the form says so, nothing is saved
    assert current(app) == "report" and app.core.store.counts().unsynced == 0
    path = tmp_path / "cleared.jpg"
    path.write_bytes(make_jpeg(800, 600, noise=True, seed=9))
    choose_photo(app, report.strip.add, path, lambda: report.photos)
    tap(report.save_button)
    assert current(app) == "home"
    network.mode = "refused"
    # The background sync is refused while the worker writes the next report: the form stays.
    app.go("report", fresh=True)
    idle(2)
    report.description.text = "还没写完"
    sync = app.screen("sync")
    before = sync.outcome
    app.sync_now()
    outcome = wait_until(lambda: sync.outcome is not before and sync.outcome, 40, "the refused sync")
    assert outcome.needs_login
    assert current(app) == "report" and report.description.text == "还没写完"
    assert "需要重新登录" in report.notice.text
    tap(report.header.back)  # leaving the form: now the log-in
    assert current(app) == "login"
    assert "重新登录" in login.hint.text
    assert app.core.store.counts().unsynced == 2  # the event and its handle_on_spot action wait (and a photo)

    # Log in again: the sync after it sends them; the server shows the micro event closed on the spot.
    network.mode = "online"
    login.password.text = PASSWORD
    tap(login.submit)
    wait_until(lambda: current(app) == "home", 30, "Home after the new log-in")
    wait_until(lambda: app.screen("sync").outcome is not outcome and app.screen("sync").outcome.ok, 40,
               "the sync after the log-in")
    assert app.core.store.counts().unsynced == 0
    supervisor = Desk(live_server.url, "supervisor1")
    event = supervisor.find_event("路口垃圾堆放，已现场清理")
    state = supervisor.case(event)
    assert (state.status, state.resolution) == ("closed", "handled_on_spot")

    # A change the server refuses (another grid's event, written past the form's checks) is listed with
    # the reason in the app's words (the server's code), kept, and shown as refused on its page; the worker
    # mends it there (moves it to the own grid) and sends it again, by touch (issue 13).
    from shared.hlc import format_ms

    app.core.store.create("event", {"grid": "G-0201", "category": "garbage", "description": "别的网格的事件",
                                    "urgent": False, "reporter": app.core.user_id,
                                    "reported_at": format_ms(app.core.now_ms())})
    app.go("sync")
    idle(2)
    sync_and_wait(app)
    sync = app.screen("sync")
    lines = [w for w in sync.rejections.children if w.children]
    assert len(lines) == 1
    text = lines[0].children[-1].text
    assert "别的网格的事件" in text and "不是您负责的网格" in text, text
    check_screen(window, app, "06-sync-rejections")
    tap(lines[0].children[2])  # 查看: the case's page
    wait_until(lambda: current(app) == "case", 10, "the refused case's page")
    idle(3)
    page = app.screen("case")
    assert page.refused_card.parent is not None and "不是您负责的网格" in page.refused_reason.text
    screenshot(window, "09-case-refused")
    [own] = [b for b in page.mend_grids.children if b.code == "G-0101"]
    tap(own)
    tap(page.resend_button)
    wait_until(lambda: not app.core.store.rejections() and app.core.store.counts().unsynced == 0
               and not app.runner.running, 40, "the mended event sent again")
    idle(3)
    page.refresh()
    idle(2)
    assert page.refused_card.parent is None
    screenshot(window, "09-case-mended")
    assert any("已同步" in getattr(w, "text", "") for w in page.details.children)
    assert supervisor.find_event("别的网格的事件")

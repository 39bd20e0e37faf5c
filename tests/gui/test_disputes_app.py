"""Disputes in the field app, driven by touches against a live server, then seen on the supervisor's pages.

Issue 22's GUI proof (disputes): a worker opens the disputes of their grid from Home (the overdue one
first, parties masked), opens it (parties in full), accepts it and records a mediation session and an
outcome, offline; reports a new dispute from Home (a party without a name is refused first); syncs; and
the supervisor's pages show the steps, the new dispute's parties masked in the list.
"""

from __future__ import annotations

import pytest

from .checks import assert_not_blank
from .conftest import demo_server, idle, screenshot, tap, wait_until
from .test_field_app import check_screen, current, log_in_worker, sync_and_wait
from .test_houses_app import pages_session

NOTE = "双方同意由楼上业主维修防水层"


@pytest.fixture(scope="module")
def live_server(sqlite_template, tmp_path_factory):
    """The full demo (with its rental houses and disputes), served by gunicorn."""
    with demo_server(sqlite_template, tmp_path_factory, houses=True) as server:
        yield server


def _button(screen, text: str):
    return next(w for w in screen.walk() if getattr(w, "text", None) == text and hasattr(w, "on_release"))


def test_a_worker_mediates_a_dispute_and_reports_one_offline_and_the_pages_show_it(window, field_app, network,
                                                                                   live_server):
    app = field_app
    log_in_worker(app)

    network.mode = "offline"
    home = app.screen("home")
    idle(2)
    check_screen(window, app, "22-home-disputes")
    tap(home.disputes)
    assert current(app) == "disputes"
    listing = app.screen("disputes")
    idle(3)
    data = listing.list.data
    assert len(data) == 3 and data[0]["overdue"] and data[0]["status_text"] == "超期未受理"
    assert "周**" in data[0]["subtitle"] and "周建国" not in data[0]["subtitle"]
    assert "1 件超期" in listing.summary.text
    check_screen(window, app, "23-disputes")

    row = wait_until(lambda: next((w for w in listing.list.children[0].children
                                   if getattr(w, "dispute_id", "") == data[0]["dispute_id"]), None), 5, "the row")
    tap(row)
    assert current(app) == "dispute"
    dispute = app.screen("dispute")
    idle(3)
    texts = [getattr(w, "text", "") for w in dispute.details.walk()]
    assert any("周建国" in t and "13800135678" in t for t in texts), texts
    assert set(dispute.step_buttons) == {"accept", "session", "outcome", "comment"}
    check_screen(window, app, "24-dispute")

    tap(dispute.step_buttons["accept"])
    idle(2)
    assert "已保存" in dispute.notice.text and "accept" not in dispute.step_buttons
    tap(dispute.step_buttons["session"])  # a session needs a note: refused, nothing saved
    assert "说明" in dispute.notice.text
    dispute.note.text = NOTE
    dispute.mediators.text = "张伟，社区调委会 何主任"
    tap(dispute.step_buttons["session"])
    idle(2)
    tap(dispute.outcome_toggles["settled"])
    dispute.note.text = "签订调解协议"
    tap(dispute.step_buttons["outcome"])
    idle(3)
    assert set(dispute.step_buttons) == {"follow_up", "comment"}
    texts = [getattr(w, "text", "") for w in dispute.details.walk()]
    assert any("已办结 · 调解成功" in t for t in texts) and any(NOTE in t for t in texts)
    check_screen(window, app, "25-dispute-mediated")

    # A new dispute from Home: a party with a phone and no name is refused, then saved.
    app.go("home")
    idle(2)
    tap(home.report_dispute)
    assert current(app) == "dispute_report"
    report = app.screen("dispute_report")
    idle(3)
    tap(next(t for t in report.kind_toggles.children if t.code == "rent"))
    report.party_inputs[0]["phone"].text = "13700001111"
    report.description.text = "押金纠纷"
    tap(report.save_button)
    assert current(app) == "dispute_report" and "当事人" in report.notice.text
    report.party_inputs[0]["name"].text = "赵一"
    report.party_inputs[0]["role"].text = "租客"
    report.party_inputs[1]["name"].text = "钱二"
    report.place.text = "东湖路9号"
    check_screen(window, app, "26-dispute-report")
    tap(report.save_button)
    wait_until(lambda: current(app) == "dispute", 5, "the new dispute")
    idle(3)
    assert "已保存" in app.screen("dispute").notice.text
    shown = screenshot(window, "27-dispute-new")
    assert_not_blank(shown)

    network.mode = "online"
    app.go("home")
    outcome = sync_and_wait(app)
    assert outcome.pushed >= 4 and outcome.rejected == 0, outcome

    pages = pages_session(live_server.url, "supervisor1")
    page = pages.get(f"{live_server.url}/disputes/{data[0]['dispute_id']}", timeout=30)
    assert page.status_code == 200 and NOTE in page.text and 'data-status="concluded"' in page.text
    listing_page = pages.get(f"{live_server.url}/disputes", timeout=30).text
    assert "押金纠纷" in listing_page and "赵*" in listing_page and "赵一" not in listing_page

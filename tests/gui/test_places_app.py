"""Key places in the field app, driven by touches against a live server, then seen on the supervisor's pages.

Issue 22's GUI proof: a worker sees on Home how many key places of the grid are due or overdue,
opens them (most pressing first), checks an overdue shop against its type's checklist offline,
fails an item with a note and a photo, reports the hazard as an event in one tap, syncs, and the
supervisor's place page shows the check, now up to date.
"""

from __future__ import annotations

import pytest

from tests.photos.helpers import make_jpeg

from .conftest import demo_server, idle, tap, wait_until
from .test_field_app import check_screen, choose_photo, current, log_in_worker, sync_and_wait
from .test_houses_app import pages_session

SHOP = "好又多便利店"  # a demo small shop of grade A in G-0101, last checked 40 days ago: overdue
NOTE = "店后隔间住两人"


@pytest.fixture(scope="module")
def live_server(sqlite_template, tmp_path_factory):
    """The demo with its rental houses and key places, served by gunicorn."""
    with demo_server(sqlite_template, tmp_path_factory, houses=True) as server:
        yield server


def toggles_of(check) -> dict[str, list]:
    """The pass / fail / n.a. toggles of the check screen, by item code."""
    found: dict[str, list] = {}
    for card in check.items.children:
        for child in card.children:
            for toggle in getattr(child, "children", ()):
                if getattr(toggle, "group", "").startswith("item-"):
                    found.setdefault(toggle.group[5:], []).append(toggle)
    return found


def test_a_worker_checks_an_overdue_place_reports_its_hazard_and_the_pages_show_it(
        window, field_app, network, live_server, tmp_path):
    app = field_app
    log_in_worker(app)

    network.mode = "offline"
    home = app.screen("home")
    app.go("home")
    idle(3)
    # G-0101's five places: the shop overdue, the workshop never checked, the KTV due; the others fine
    assert "3" in home.places.line.text and "2" in home.places.line.text, home.places.line.text
    check_screen(window, app, "20-home-places")
    tap(home.places.button)
    assert current(app) == "places"
    places = app.screen("places")
    idle(3)
    assert [row["title"].split()[0] for row in places.list.data] == ["老李服装加工坊", SHOP, "星光KTV"]
    check_screen(window, app, "21-places-due")
    tap(places.due_only)  # every place of the grid
    idle(3)
    assert len(places.list.data) == 5
    row = wait_until(lambda: next((w for w in places.list.children[0].children if w.title.startswith(SHOP)), None),
                     5, "the shop's row")
    tap(row)
    assert current(app) == "place"
    place = app.screen("place")
    place_id = place.place_id
    idle(2)
    assert any("已超期" in getattr(w, "text", "") for w in place.details.walk())
    check_screen(window, app, "22-place")

    tap(place.check_button)
    assert current(app) == "place_check"
    check = app.screen("place_check")
    idle(3)
    toggles = toggles_of(check)
    assert set(toggles) == {"extinguisher", "escape_route", "wiring", "no_living", "ebike_indoor", "license"}
    assert check.seen.parent is None  # a place check counts no residents
    for code, choices in toggles.items():
        tap(next(t for t in choices if t.text == ("不合格" if code == "no_living" else "合格")))
    tap(check.save_button)  # the failed item has no note: refused, nothing saved
    assert current(app) == "place_check" and "说明" in check.notice.text
    check.notes["no_living"].text = NOTE
    photo = tmp_path / "camera-roll" / "living.jpg"
    photo.write_bytes(make_jpeg(640, 480, noise=True, seed=11))
    choose_photo(app, check.strip.add, photo, lambda: check.photos)
    check_screen(window, app, "23-place-check")
    tap(check.save_button)
    wait_until(lambda: current(app) == "place", 5, "the place after saving the check")
    idle(3)
    texts = [getattr(w, "text", "") for w in place.details.walk()]
    assert any("正常" in t for t in texts), texts  # checked now: up to date
    reports = [w for w in place.hazards.walk() if getattr(w, "text", "") == "上报为事件"]
    assert len(reports) == 1
    check_screen(window, app, "24-place-after")

    tap(reports[0])
    assert current(app) == "report"
    report = app.screen("report")
    idle(2)
    assert report.category == "fire_hazard" and len(report.photos) == 1
    assert SHOP in report.description.text and "住人（三合一）" in report.description.text
    assert NOTE in report.description.text
    tap(report.save_button)
    wait_until(lambda: current(app) == "home", 5, "Home after reporting the hazard")
    idle(2)
    assert "2" in home.places.line.text  # the shop is checked: the workshop and the KTV are left

    network.mode = "online"
    outcome = sync_and_wait(app)
    assert outcome.pushed >= 2 and outcome.photos_failed == 0, outcome

    pages = pages_session(live_server.url, "supervisor1")
    page = pages.get(f"{live_server.url}/places/{place_id}", timeout=30)
    assert page.status_code == 200 and NOTE in page.text and "住人（三合一）" in page.text and "正常" in page.text
    assert SHOP in pages.get(f"{live_server.url}/", timeout=30).text  # the event reported from the failed item

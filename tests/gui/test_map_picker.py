"""A manual position picked on the map of the worker's grids, by touch, in the real window (issue 13).

The demo with its grid outlines (server/patrols/demo.py) is served by gunicorn; worker1 logs in, and G-0101's
outline comes down with the reference data. The report form's location popup shows the grid on a plain
background (no tile file set); a tap drops the marker and fills the fields; the report is saved with a
"manual" position there. Then an MBTiles file made here (PNG tiles drawn with Pillow) is set in Settings, and
the map draws its tiles under the outline; a second tap, a second report. No connection leaves this machine
while the map is open: the test refuses any that is not to the local server.
Screenshots: test-artifacts/gui/map-*.png.

Beside it, the case page of issue 13's last rule: a micro event handled on the spot offline shows its step as
pending (待同步) beside what the server holds, until a sync (screenshot case-pending.png).
"""

from __future__ import annotations

import socket

import pytest
from PIL import Image

from tests.mobile.test_location import make_mbtiles
from tests.photos.helpers import make_jpeg

from .checks import assert_not_blank
from .conftest import _touch_class, demo_server, idle, screenshot, tap, wait_until
from .test_field_app import choose_photo, current, log_in_worker, sync_and_wait

BOX = (22.5410, 114.0545, 22.5455, 114.0605)  # G-0101's outline in the demo (south, west, north, east)
TILE_COLOUR = (214, 196, 150)  # the test tiles' ground: a colour nothing else on the screen has


@pytest.fixture(scope="module")
def live_server(sqlite_template, tmp_path_factory):
    """The demo with its grid outlines (loaded with the houses and patrols), served by gunicorn."""
    with demo_server(sqlite_template, tmp_path_factory, houses=True) as server:
        yield server


@pytest.fixture
def local_only(monkeypatch):
    """Any connection to a host other than this machine fails the test (the map must never fetch tiles)."""
    real = socket.socket.connect

    def connect(self, address):
        host = address[0] if isinstance(address, tuple) else address
        assert host in ("127.0.0.1", "::1", "localhost"), f"a connection left the machine: {address}"
        return real(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


def tap_at(x: float, y: float) -> None:
    """A finger down and up at window coordinates (x, y)."""
    from kivy.base import EventLoop

    touch = _touch_class()(x, y)
    EventLoop.post_dispatch_input("begin", touch)
    idle(2)
    touch.move({"x": touch.sx, "y": touch.sy})
    EventLoop.post_dispatch_input("end", touch)
    idle(3)


def open_popup(app):
    """Tap the report form's manual entry; the location popup, laid out."""
    from kivy.core.window import Window

    from mobile.ui.pickers import LocationPopup

    tap(app.screen("report").manual)
    popup = wait_until(lambda: next((w for w in Window.children if isinstance(w, LocationPopup)), None), 5,
                       "the location popup")
    wait_until(lambda: popup.map.width > 100 and popup.map.outlines, 5, "the map laid out")
    idle(3)
    return popup


def pick(popup, lat: float, lon: float) -> tuple[float, float]:
    """Tap the map where it draws (lat, lon); answers the window point tapped."""
    x, y = popup.map.to_window(*popup.map.point_of(lat, lon))
    assert popup.map.collide_point(*popup.map.to_widget(x, y)), "the point is not on the map"
    tap_at(x, y)
    return x, y


def degrees_per_pixel(popup) -> float:
    """About how many degrees of latitude one pixel of the map is at its zoom (here)."""
    a = popup.map.position_at(popup.map.center_x, popup.map.center_y)
    b = popup.map.position_at(popup.map.center_x, popup.map.center_y + 1)
    return abs(b[0] - a[0])


def pixel(path, x: float, y: float) -> tuple[int, int, int]:
    """The screenshot's colour at window point (x, y) (window y counts up, the image's down)."""
    with Image.open(path) as image:
        return image.convert("RGB").getpixel((int(x), image.height - 1 - int(y)))


def write_report(app, description: str) -> None:
    """Home → report form: a category and a description."""
    tap(app.screen("home").report)
    assert current(app) == "report"
    report = app.screen("report")
    tap(next(b for b in report.categories.children if b.code == "blocked_escape"))
    report.description.text = description


def saved_event(app, description: str) -> dict:
    """The values of the event saved on the tablet with this description."""
    for _id, _bucket, state in app.core.store.states("event"):
        if state.get("description", (None,))[0] == description:
            return {name: write[0] for name, write in state.items()}
    raise AssertionError(f"no event {description!r} on the tablet")


def test_a_worker_picks_a_manual_position_on_the_map_of_the_grid_and_saves_the_report(
        window, field_app, network, tmp_path, local_only):
    app = field_app
    log_in_worker(app)  # the first sync pulls the grids' outlines
    network.mode = "offline"  # from here everything is on the tablet

    # 1. No tile file: the grid's outline on a plain background; a tap puts the marker and fills the fields.
    write_report(app, "地图选点：消防通道堵塞")
    report = app.screen("report")
    assert report.reading is None  # no GPS on this desktop
    popup = open_popup(app)
    assert [o.code for o in popup.map.outlines] == ["G-0101"] and popup.map.tiles is None
    assert "未设置离线地图" in popup.note.text
    target = (22.5440, 114.0590)
    x, y = pick(popup, *target)
    picked = (float(popup.lat.text), float(popup.lon.text))
    tolerance = 3 * degrees_per_pixel(popup)
    assert picked == pytest.approx(target, abs=tolerance)
    assert popup.map.marker == pytest.approx(picked, abs=1e-6)
    shot = screenshot(window, "map-01-outline")
    assert_not_blank(shot)
    red = pixel(shot, x, y)
    assert red[0] > 150 and red[1] < 90 and red[2] < 90, f"no red marker where the map was tapped: {red}"
    west, _ = popup.map.to_window(*popup.map.point_of((BOX[0] + BOX[2]) / 2, BOX[1]))
    edge = [pixel(shot, west + dx, y) for dx in range(-3, 4)]
    assert any(b > 150 and r < 80 for r, _g, b in edge), f"no blue outline at the grid's west edge: {edge}"
    zoom = popup.map.zoom
    tap(popup.zoom_in)
    assert popup.map.zoom == zoom + 1
    tap(popup.whole)
    assert popup.map.zoom == zoom
    tap(popup.ok)
    assert report.reading.source == "manual"
    assert (report.reading.lat, report.reading.lon) == picked
    assert "手动输入" in report.location_source.text
    screenshot(window, "map-02-report-manual")
    tap(report.save_button)
    assert current(app) == "home"
    saved = saved_event(app, "地图选点：消防通道堵塞")["location"]
    assert saved == {"lat": picked[0], "lon": picked[1], "accuracy_m": None, "source": "manual"}

    # 2. An MBTiles file (refused first when it is none): its tiles drawn under the outline.
    tiles = tmp_path / "futian.mbtiles"
    from mobile.location import to_pixels

    wanted = {}
    for zoom in (16, 17):
        (x0, y0), (x1, y1) = to_pixels(BOX[2] + 0.004, BOX[1] - 0.004, zoom), to_pixels(BOX[0] - 0.004,
                                                                                      BOX[3] + 0.004, zoom)
        for tx in range(int(x0 // 256), int(x1 // 256) + 1):
            for ty in range(int(y0 // 256), int(y1 // 256) + 1):
                wanted[(zoom, tx, ty)] = TILE_COLOUR
    make_mbtiles(tiles, wanted)
    app.go("settings")
    settings = app.screen("settings")
    idle(3)
    junk = tmp_path / "junk.mbtiles"
    junk.write_text("not a map")
    settings.tiles.text = str(junk)
    tap(settings.save_button)
    assert "不是 MBTiles" in settings.notice.text, settings.notice.text
    settings.tiles.text = str(tiles)
    tap(settings.save_button)
    assert "已保存" in settings.notice.text, settings.notice.text
    app.go("home")
    idle(2)
    write_report(app, "地图选点：离线瓦片")
    popup = open_popup(app)
    assert popup.map.tiles is not None and "离线地图" not in popup.note.text
    assert popup.map.zoom in (16, 17)
    target = (22.5420, 114.0560)
    x, y = pick(popup, *target)
    picked = (float(popup.lat.text), float(popup.lon.text))
    assert picked == pytest.approx(target, abs=3 * degrees_per_pixel(popup))
    shot = screenshot(window, "map-03-tiles")
    assert_not_blank(shot)
    left, bottom = popup.map.to_window(popup.map.x, popup.map.y)
    with Image.open(shot) as image:
        area = image.convert("RGB").crop((int(left), int(image.height - bottom - popup.map.height),
                                          int(left + popup.map.width), int(image.height - bottom)))
        colours = area.getcolors(area.width * area.height)
    ground = sum(n for n, colour in colours if all(abs(a - b) <= 3 for a, b in zip(colour, TILE_COLOUR)))
    assert ground > 0.6 * area.width * area.height, "the map does not show the file's tiles"
    tap(popup.ok)
    tap(report.save_button)
    assert current(app) == "home"
    saved = saved_event(app, "地图选点：离线瓦片")["location"]
    assert (saved["source"], saved["lat"], saved["lon"]) == ("manual", *picked)


def test_a_step_not_yet_synced_shows_as_pending_on_the_case_page(window, field_app, network, tmp_path):
    app = field_app
    log_in_worker(app)  # the first sync pulls the grids' outlines
    network.mode = "offline"
    app.go("report", fresh=True)
    idle(2)
    report = app.screen("report")
    tap(next(b for b in report.categories.children if b.code == "garbage"))
    report.description.text = "路口垃圾，已现场清理"
    tap(report.on_spot)
    report.on_spot_note.text = "叫来保洁员清走"
    tap(report.reason_buttons["no_fix"])
    assert report.reason_buttons["no_fix"].state == "down", "the fresh form had a reason chosen already"
    path = tmp_path / "cleared.jpg"
    path.write_bytes(make_jpeg(400, 300, noise=True, seed=4))
    choose_photo(app, report.strip.add, path, lambda: report.photos)
    tap(report.save_button)
    assert current(app) == "home", report.notice.text  # the form says why it did not save
    event_id = next(rid for rid, _b, s in app.core.store.states("event")
                    if s["description"][0] == "路口垃圾，已现场清理")
    app.go("case", event_id=event_id)
    case = app.screen("case")
    idle(3)
    lines = [w.text for w in case.details.children if hasattr(w, "text")]
    assert "状态：已上报" in lines  # what the server holds: not the tablet's 已结案
    assert "待同步：你的 1 项操作服务器尚未收到；本机结果为“已结案 · 现场处置”" in lines, lines
    assert any("现场处置" in line and line.endswith("· 待同步") for line in lines), lines
    screenshot(window, "case-pending")
    network.mode = "online"
    app.go("home")
    sync_and_wait(app)
    app.go("case", event_id=event_id)
    idle(3)
    lines = [w.text for w in case.details.children if hasattr(w, "text")]
    assert "状态：已结案 · 现场处置" in lines and not any("待同步" in line for line in lines), lines

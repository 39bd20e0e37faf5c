"""GUI tests of the field app: a real Kivy window (SDL offscreen, Mesa llvmpipe), real touches, a real server.

Kivy reads its environment when it is first imported, so this module sets it
before anything imports Kivy: the offscreen SDL video driver (no display
needed), a throw-away KIVY_HOME (no ~/.kivy, no config file left behind),
no command-line parsing, Python logging (pytest captures it). The window is
1280×800, the tablets' size, and is made once per session: SDL gives a
process one window.

Screenshots go to test-artifacts/gui/ (git-ignored), for people to look at;
the tests check them too (not blank, Chinese not drawn as boxes).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import pytest

_KIVY_HOME = tempfile.mkdtemp(prefix="gridpatrol-kivy-")
os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")
os.environ["KIVY_HOME"] = _KIVY_HOME
os.environ["KIVY_NO_ARGS"] = "1"
os.environ["KIVY_NO_CONSOLELOG"] = "1"
os.environ["KIVY_NO_FILELOG"] = "1"
os.environ["KIVY_LOG_MODE"] = "PYTHON"  # Kivy leaves the root logger to pytest
os.environ.setdefault("KIVY_METRICS_DENSITY", "1")  # a 10-inch 1280×800 tablet is ~150 dpi: density 1

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "gui"
WIDTH, HEIGHT = 1280, 800
PASSWORD = "demo-pass"


# --- the window and the event loop ----------------------------------------------------------------

def _require(condition: bool, message: str) -> None:
    """A system dependency (scripts/install-system-deps.sh): CI fails without it, elsewhere the test skips."""
    if not condition:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs {message}")
        pytest.skip(f"{message} missing (scripts/install-system-deps.sh installs it); GUI test skipped")


@pytest.fixture(scope="session")
def window():
    """Kivy's one window, 1280×800, offscreen."""
    import ctypes.util

    # Kivy ends the process (sys.exit) when it cannot open a window: check for OpenGL first.
    _require(bool(ctypes.util.find_library("GL") or ctypes.util.find_library("EGL")), "Mesa's OpenGL (libgl1)")
    from mobile.ui.fonts import find_cjk_font

    _require(find_cjk_font() is not None, "a CJK font (fonts-noto-cjk)")
    from kivy.config import Config

    Config.set("graphics", "width", str(WIDTH))
    Config.set("graphics", "height", str(HEIGHT))
    Config.set("graphics", "resizable", "0")
    # The system probes (mtdev, hidinput) would read real input devices; tests send their own touches.
    for option in list(Config.options("input")):
        Config.remove_option("input", option)
    from kivy.base import EventLoop

    EventLoop.ensure_window()
    from kivy.core.window import Window

    Window.size = (WIDTH, HEIGHT)
    yield Window
    shutil.rmtree(_KIVY_HOME, ignore_errors=True)


def idle(frames: int = 2) -> None:
    """Let Kivy run some frames: input, Clock callbacks (those scheduled by background threads too), drawing."""
    from kivy.base import EventLoop

    for _ in range(frames):
        EventLoop.idle()


def wait_until(condition: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Run frames until condition() is true; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        idle(1)
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


_touch_ids = itertools.count(1)


def _touch_class():
    from kivy.input.motionevent import MotionEvent

    class Touch(MotionEvent):
        """A finger on the glass, at window coordinates, as the input providers make them."""

        def __init__(self, x: float, y: float):
            from kivy.core.window import Window

            super().__init__("gui-test", next(_touch_ids),
                             {"x": x / (Window.width - 1.0), "y": y / (Window.height - 1.0)},
                             is_touch=True, type_id="touch")
            self.profile = ["pos"]

        def depack(self, args):
            self.sx, self.sy = args["x"], args["y"]
            super().depack(args)

    return Touch


def tap(widget, *, hold: float = 0.08) -> None:
    """Touch the widget's centre and lift the finger, through the window's input dispatch (as a real touch).

    The widget is first scrolled into view when it sits in a ScrollView. ``hold`` is longer than a
    ScrollView's scroll_timeout would need to be undecided; tap() keeps it short, so a ScrollView sees a tap.
    """
    from kivy.base import EventLoop
    from kivy.uix.recycleview import RecycleView
    from kivy.uix.scrollview import ScrollView

    idle(1)  # the layout of a screen just shown settles in the next frame
    parent, seen = widget.parent, set()
    while parent is not None and id(parent) not in seen:  # the window is its own parent
        seen.add(id(parent))
        if isinstance(parent, RecycleView):
            break  # its rows exist only while on screen
        if isinstance(parent, ScrollView):
            # Only when needed: Kivy's scroll_to on content shorter than the view scrolls it away.
            # In the ScrollView's parent's coordinates: its own to_widget would add its scroll offset.
            cx, cy = parent.parent.to_widget(*widget.to_window(*widget.center))
            if not parent.collide_point(cx, cy):
                parent.scroll_to(widget, padding=20, animate=False)
                idle(2)
            break
        parent = parent.parent
    assert not widget.disabled, f"{widget!r} is disabled"
    x, y = widget.to_window(*widget.center)
    from kivy.core.window import Window

    if not (0 <= x < Window.width and 0 <= y < Window.height):
        shot = screenshot(Window, "failed-tap")
        raise AssertionError(f"{widget!r} ({getattr(widget, 'text', '')!r}) is off screen at {(x, y)}; see {shot}")
    touch = _touch_class()(x, y)
    EventLoop.post_dispatch_input("begin", touch)
    idle(1)
    time.sleep(hold / 2)
    idle(1)
    touch.move({"x": touch.sx, "y": touch.sy})
    EventLoop.post_dispatch_input("end", touch)
    idle(3)


def screenshot(window, name: str) -> Path:
    """Save the window as test-artifacts/gui/<name>.png; answers the path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    idle(3)
    target = ARTIFACTS / f"{name}.png"
    made = window.screenshot(name=str(ARTIFACTS / f".{name}.png"))
    os.replace(made, target)
    return target


# --- the server -------------------------------------------------------------------------------------

@contextlib.contextmanager
def demo_server(sqlite_template, tmp_path_factory, *, houses: bool = False):
    """The real server in a gunicorn process on a free port, on a fresh SQLite store with the demo loaded
    (with its rental houses when ``houses``)."""
    from server import create_app
    from server.admin import demo as demo_data
    from server.db import db
    from tests.servers import GunicornServer

    base = tmp_path_factory.mktemp("gui-server")
    path = base / "store.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    # One ID-number key for this process (which loads the demo) and gunicorn's (which serves it).
    id_key = os.urandom(32).hex()
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "gui", "GRIDPATROL_PHOTO_DIR": str(base / "photos"),
                      "GRIDPATROL_VAR_DIR": str(base), "GRIDPATROL_ID_KEY": id_key})
    with app.app_context():
        demo_data.load(password=PASSWORD, houses=houses)
        db.session.remove()
        db.engine.dispose()
    server = GunicornServer(url, base / "photos", base / "gunicorn.log")
    server.env["GRIDPATROL_ID_KEY"] = id_key
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def live_server(sqlite_template, tmp_path_factory):
    """The demo served by gunicorn (test modules override it to serve more)."""
    with demo_server(sqlite_template, tmp_path_factory) as server:
        yield server


def dead_url() -> str:
    """A URL where nothing listens: the network is gone."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class Network:
    """The tablet's network, switchable by the test: online, offline (a dead port), or the token refused."""

    def __init__(self):
        self.mode = "online"
        self.dead = dead_url()

    def transport(self, url: str, token: str | None):
        """AppCore's transport_factory."""
        from mobile.transport import HttpTransport

        if self.mode == "offline":
            return HttpTransport(self.dead, token, timeout=(0.5, 1.0), retries=0)
        if self.mode == "refused":
            return HttpTransport(url, "revoked-token", timeout=(2.0, 15.0), retries=1, backoff_factor=0.1)
        return HttpTransport(url, token, timeout=(2.0, 15.0), retries=1, backoff_factor=0.1)


@pytest.fixture
def network():
    """The switchable network."""
    return Network()


@pytest.fixture
def field_app(window, tmp_path, network, live_server):
    """The field app running in the test window, on a fresh tablet, against the live server."""
    from mobile import i18n
    from mobile.ui.app import GridPatrolApp

    i18n.set_language("zh")
    photo_dir = tmp_path / "camera-roll"
    photo_dir.mkdir()
    app = GridPatrolApp(tmp_path / "tablet", server_url=live_server.url, background_sync=False,
                        core_options={"transport_factory": network.transport}, photo_dir=photo_dir)
    app._run_prepare()  # App.run() without its endless loop: the test runs the frames
    idle(3)
    try:
        yield app
    finally:
        close_app(window, app)


def close_app(window, app) -> None:
    """Stop an app opened in the test window: its sync thread, on_stop, its widgets, Kivy's running app."""
    from kivy.app import App

    if app.runner is not None:
        app.runner.join(20)
    app.dispatch("on_stop")
    for child in list(window.children):
        window.remove_widget(child)
    App._running_app = None
    idle(1)

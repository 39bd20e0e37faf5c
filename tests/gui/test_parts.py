"""The pieces under the screens: the catalog in both languages, the font fallback, a list of thousands of cases,
and Home and My cases made off the UI thread on a tablet holding thousands of cases."""

from __future__ import annotations

import logging
import re
import threading
import time

import pytest

from mobile import i18n

from .checks import assert_chinese_drawn, assert_not_blank
from .conftest import close_app, idle, screenshot, tap, wait_until

_PLACEHOLDER = re.compile(r"{(\w+)[^}]*}")


def test_both_languages_hold_the_same_keys_and_placeholders():
    zh, en = i18n.CATALOG["zh"], i18n.CATALOG["en"]
    assert set(zh) == set(en)
    for key in zh:
        assert set(_PLACEHOLDER.findall(zh[key])) == set(_PLACEHOLDER.findall(en[key])), key


@pytest.mark.parametrize("code, zh, en", [
    ("dispatched", "已派遣", "Dispatched"),
    ("returned", "退回整改", "Returned"),
    ("closed", "已结案", "Closed"),
])
def test_status_codes_are_translated_at_runtime(code, zh, en):
    try:
        i18n.set_language("zh")
        assert i18n.status_name(code) == zh
        i18n.set_language("en")
        assert i18n.status_name(code) == en
    finally:
        i18n.set_language("zh")


def test_sources_and_input_errors_are_words_not_codes():
    assert i18n.source_name("last_known") == "最近已知位置"
    assert i18n.source_name("manual") == "手动输入"
    assert i18n.error_text("description", "required") == "事件描述：必填"
    assert i18n.phase_name("photos") == "上传照片"


def test_without_a_cjk_font_the_app_says_so_and_keeps_roboto(monkeypatch, caplog):
    from mobile.ui import fonts

    monkeypatch.delenv(fonts.ENV_VAR, raising=False)
    monkeypatch.setattr(fonts, "CANDIDATES", ())
    monkeypatch.setattr(fonts, "_fc_match", lambda: None)
    with caplog.at_level(logging.ERROR, logger="kivy"):
        assert fonts.register_cjk_font() is None
    assert "NO CJK FONT FOUND" in caplog.text
    assert "fonts-noto-cjk" in caplog.text


def _scroll_cost(window, count: int) -> tuple[float, int]:
    """Seconds a frame while a finger scrolls a list of count cases 30 px a frame; and the row widgets made."""
    from mobile.ui.screens.cases import CasesList

    rows = [{"event_id": f"e{n}", "title": f"消防隐患：第 {n} 号楼道堆物", "subtitle": "2026-11-27 10:00",
             "status_text": "已上报", "badges": "", "awaiting": n < 3, "urgent": n % 50 == 0} for n in range(count)]
    view = CasesList(size_hint=(None, None), size=(1200, 700), pos=(40, 40))
    window.add_widget(view)
    try:
        view.data = rows
        idle(3)
        scrollable = view.layout_manager.height - view.height
        started = time.monotonic()
        for step in range(1, 51):
            view.scroll_y = 1 - step * 30 / scrollable
            idle(1)
        per_frame = (time.monotonic() - started) / 50
        made = len(view.layout_manager.children)
        view.scroll_y = 0
        idle(3)
        assert any(w.event_id == f"e{count - 1}" for w in view.layout_manager.children)  # the end is reachable
        return per_frame, made
    finally:
        window.remove_widget(view)


def test_thousands_of_cases_scroll_as_fast_as_fifty(window, capsys):
    # A RecycleView makes widgets only for the rows on screen and reuses them: the cost of a frame
    # must not grow with the length of the list. (The absolute figure is the software renderer's on
    # shared CI cores, where a label's texture update waits for the frame before; a tablet's GPU does not.)
    few, few_widgets = _scroll_cost(window, 50)
    many, many_widgets = _scroll_cost(window, 5000)
    with capsys.disabled():
        print(f"\nscrolling: {few * 1000:.1f} ms a frame with 50 cases, {many * 1000:.1f} ms with 5000")
    assert many_widgets < 20 and many_widgets <= few_widgets + 1
    assert many < 2 * few + 0.02


# --- Home and My cases load off the UI thread ------------------------------------------------------

def fill_cases(core, count: int, *, awaiting_every: int = 10) -> int:
    """``count`` events reported by the worker (every ``awaiting_every``-th dispatched and rectified, so it
    awaits their verification), written in one transaction; answers how many await."""
    from shared.hlc import format_ms
    from tests.mobile.core_helpers import GRID, SUPERVISOR, UNIT_USER, WORKER
    from tests.mobile.fakes import T0

    store = core.store
    writes, awaiting = [], 0
    for n in range(count):
        event_id = store.new_id()
        writes.append(("event", event_id, {
            "grid": GRID, "category": "fire_hazard", "description": f"第 {n} 号楼道堆放纸箱", "urgent": n % 50 == 0,
            "reporter": WORKER, "reported_at": format_ms(T0 - (count - n) * 60_000)}, None))
        if n % awaiting_every == 0:
            awaiting += 1
            dispatch = {"event": event_id, "action": "dispatch", "actor": SUPERVISOR, "unit": "fire"}
            writes.append(("case_action", store.new_id(), dispatch, f"grid:{GRID}"))
            writes.append(("case_action", store.new_id(),
                           {"event": event_id, "action": "rectify", "actor": UNIT_USER}, f"grid:{GRID}"))
    store.write_many(writes)
    return awaiting


class Gate:
    """Holds CasesPresenter.rows (the fold Home and My cases wait for) until the test opens it.

    Records which threads called it and how many were inside at once: the fold must run off the UI
    thread, and never twice at once over one store.
    """

    def __init__(self, monkeypatch, fail: BaseException | None = None):
        from mobile.presenters import CasesPresenter

        self.opened = threading.Event()
        self.entered = threading.Event()
        self.threads: list[threading.Thread] = []
        self.inside = self.most_inside = 0
        self._count = threading.Lock()
        original = CasesPresenter.rows
        gate = self

        def rows(presenter):
            with gate._count:
                gate.threads.append(threading.current_thread())
                gate.inside += 1
                gate.most_inside = max(gate.most_inside, gate.inside)
            gate.entered.set()
            try:
                assert gate.opened.wait(120), "the test never opened the gate"
                if fail is not None:
                    raise fail
                return original(presenter)
            finally:
                with gate._count:
                    gate.inside -= 1

        monkeypatch.setattr(CasesPresenter, "rows", rows)

    def open(self) -> None:
        self.opened.set()

    def close(self) -> None:
        self.opened.clear()
        self.entered.clear()


def _open_app(window, core):
    from mobile.ui.app import GridPatrolApp

    i18n.set_language("zh")
    app = GridPatrolApp(core.data_dir, core=core, background_sync=False)
    app._run_prepare()  # App.run() without its endless loop: the test runs the frames
    return app


@pytest.fixture
def tablet(tmp_path):
    """An AppCore logged in as the worker (a FakeServer's reference data pulled), nothing of its own yet."""
    from tests.mobile.core_helpers import logged_in, seeded_server
    from tests.mobile.fakes import T0, ManualClock

    clock = ManualClock(T0)
    core = logged_in(tmp_path / "tablet", seeded_server(clock), clock)
    yield core
    core.close()  # a second close (the app's on_stop closed it) does nothing


def _spinning(load, steps: int = 4) -> None:
    """Frames run on the UI thread while the load waits: the spinner moves on, step after step."""
    before = load.ticks
    wait_until(lambda: load.ticks >= before + steps, 30, "the spinner to move while the fold waits")
    assert load.loading


def test_home_and_my_cases_fold_thousands_of_cases_off_the_ui_thread(window, tablet, monkeypatch, capsys):
    count = 4000
    awaiting = fill_cases(tablet, count)
    gate = Gate(monkeypatch)
    app = _open_app(window, tablet)
    try:
        # 1. Home, the first build after the start: the fold runs in a worker thread; until it answers the
        #    window keeps drawing frames, with the loading line in the status card and the buttons usable.
        assert app.sm.current == "home"
        home = app.screen("home")
        assert gate.entered.wait(30), "Home never asked for the cases"
        assert all(t is not threading.main_thread() for t in gate.threads), "the fold ran on the UI thread"
        _spinning(home.load)
        assert home.load.line.parent is home.status and "正在加载" in home.load.line.text, home.load.line.text
        assert home.grids.text == "" and "待我核查" not in home.cases.text
        assert_chinese_drawn(home.load.line)
        assert_not_blank(screenshot(window, "parts-home-loading"))
        assert home.load.loading  # (the screenshot's frames ran while the fold still waited)

        # The real first fold of 4,000 cases, now: frames keep coming while it runs.
        gate.open()
        started, frames = time.monotonic(), 0

        def arrived():
            nonlocal frames
            frames += 1
            return "待我核查" in home.cases.text

        wait_until(arrived, 120, "Home's figures")
        with capsys.disabled():
            print(f"\nfirst fold of {count} cases off the UI thread: {time.monotonic() - started:.2f} s, "
                  f"{frames} frames drawn meanwhile")
        assert f"（{awaiting} 件待我核查）" in home.cases.text, home.cases.text
        assert "东湖一网格" in home.grids.text and "张伟" in home.user.text
        assert home.load.line.parent is None and not home.load.loading
        assert_not_blank(screenshot(window, "parts-home-loaded"))

        # 2. My cases: the list's place shows the loading line until the rows come, made off the UI thread too.
        gate.close()
        tap(home.cases)
        assert app.sm.current == "cases"
        cases = app.screen("cases")
        assert gate.entered.wait(30), "My cases never asked for the cases"
        _spinning(cases.load)
        assert cases.list.data == [] and cases.load.line.parent is cases.body
        assert "正在加载" in cases.load.line.text
        assert_not_blank(screenshot(window, "parts-cases-loading"))
        gate.open()
        wait_until(lambda: len(cases.list.data) == count, 120, "the rows of My cases")
        wait_until(lambda: len(cases.list.layout_manager.children) > 3, 30, "the rows on screen")
        assert cases.load.line.parent is None
        assert cases.summary.text == f"共 {count} 件，待我核查 {awaiting} 件", cases.summary.text
        assert cases.list.data[0]["awaiting"] and cases.list.data[0]["status_text"] == "待我核查"
        assert_not_blank(screenshot(window, "parts-cases-loaded"))
        assert all(t is not threading.main_thread() for t in gate.threads)
        assert gate.most_inside == 1
    finally:
        gate.open()
        close_app(window, app)


def test_a_superseded_or_abandoned_load_is_dropped_and_folds_never_overlap(window, tablet, monkeypatch):
    awaiting = fill_cases(tablet, 40)
    gate = Gate(monkeypatch)
    app = _open_app(window, tablet)
    try:
        home, cases = app.screen("home"), app.screen("cases")
        assert gate.entered.wait(30)
        # Three more refreshes (syncs ending, a language switch) while the first fold waits: they queue on the
        # fold lock; when the gate opens, only the newest folds (the stale ones are skipped or dropped).
        for _ in range(3):
            home.refresh()
        idle(5)
        gate.open()
        wait_until(lambda: not home.load.loading, 60, "Home's figures")
        assert f"（{awaiting} 件待我核查）" in home.cases.text
        assert gate.most_inside == 1, "two folds ran at once"
        assert len(gate.threads) == 2, gate.threads  # the first (its answer dropped) and the newest

        # My cases opened and left before its rows came: the answer is ignored, nothing shows late.
        gate.close()
        app.go("cases")
        assert gate.entered.wait(30)
        gate.close()
        app.go("home")
        idle(3)
        gate.open()
        wait_until(lambda: not home.load.loading, 60, "Home's figures again")
        idle(10)
        assert cases.list.data == [] and not cases.load.loading and cases.load.line.parent is None
        assert gate.most_inside == 1
    finally:
        gate.open()
        close_app(window, app)


def test_a_failed_load_is_an_error_line_not_a_crash(window, tablet, monkeypatch):
    fill_cases(tablet, 5)
    gate = Gate(monkeypatch, fail=RuntimeError("database disk image is malformed"))
    gate.open()
    app = _open_app(window, tablet)
    try:
        home = app.screen("home")
        wait_until(lambda: home.load.error is not None, 30, "the failure to reach Home")
        line = home.load.line
        assert line.parent is home.status
        assert line.text == "加载失败：RuntimeError: database disk image is malformed", line.text
        assert_not_blank(screenshot(window, "parts-home-load-failed"))
        # The app goes on: My cases opens and says the same; the buttons still work.
        tap(home.cases)
        cases = app.screen("cases")
        wait_until(lambda: cases.load.error is not None, 30, "the failure to reach My cases")
        assert "加载失败" in cases.load.line.text and cases.list.data == []
        tap(cases.header.back)
        assert app.sm.current == "home"
    finally:
        close_app(window, app)

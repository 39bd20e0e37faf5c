"""Every error outside /api/ is the pages' own page in the user's language; Chinese text has Chinese punctuation;
sizes read as MB; the case page's plain map names no setting (issue 21)."""

from __future__ import annotations

import re

import pytest
from babel.messages.pofile import read_po

from server.web.labels import size_text

from .conftest import csrf_token, log_in
from .test_i18n import CATALOG

MIXED = re.compile(r"[\u4e00-\u9fff][:;,?!()]|[:;,?!()][\u4e00-\u9fff]")


@pytest.mark.parametrize("method, path, status, title", [
    ("GET", "/nope", 404, "页面不存在"),
    ("GET", "/api", 404, "页面不存在"),  # not under /api/
    ("GET", "/apiv1/health", 404, "页面不存在"),
    ("GET", "/static/nope.css", 404, "页面不存在"),
    ("DELETE", "/login", 405, "此处不能这样操作"),
])
def test_addresses_outside_the_pages_answer_with_the_pages_error_page_in_chinese(pages, method, path, status, title):
    answer = pages.open(path, method=method)
    assert answer.status_code == status
    page = answer.get_data(as_text=True)
    assert answer.content_type.startswith("text/html") and 'data-testid="error-page"' in page
    assert f"<h1>{title}</h1>" in page and f"错误代码 {status}" in page and "返回首页" in page
    assert "pages.css" in page  # the pages' look


def test_the_error_page_follows_the_users_language(pages):
    pages.post("/language", data={"lang": "en", "csrf_token": csrf_token(pages)})
    page = pages.get("/nope").get_data(as_text=True)
    assert "<h1>Page not found</h1>" in page and "Error 404" in page


def test_a_role_refused_a_page_gets_the_403_page(pages):
    log_in(pages, "unit1")
    answer = pages.get("/admin/privacy")
    assert answer.status_code == 403 and "<h1>您的角色无权访问</h1>" in answer.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/nope"])
def test_under_api_errors_keep_the_json_shape(pages, path):
    answer = pages.get(path)
    assert answer.status_code == 404 and answer.get_json()["error"]["code"] == "not_found"


def test_chinese_translations_use_chinese_punctuation():
    with open(CATALOG, "rb") as handle:
        catalog = read_po(handle)
    mixed = {}
    for message in catalog:
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for text in strings:
            if text and MIXED.search(re.sub(r"%\([a-z_]+\)s", "", text)):
                mixed[message.id] = text
    assert not mixed, mixed
    translated = {m.id: m.string for m in catalog}
    assert translated["%(label)s: %(value)s"] == "%(label)s：%(value)s"


@pytest.mark.parametrize("size, text", [(900, "900 B"), (2048, "2 KB"), (1_572_864, "1.5 MB"), (15_728_640, "15 MB")])
def test_page_sizes_read_as_people_read_them(size, text):
    assert size_text(size) == text


def test_the_plain_map_names_no_setting():
    from pathlib import Path

    template = (Path(__file__).resolve().parents[2] / "server" / "templates" / "pages" / "case.html").read_text()
    assert "GRIDPATROL_TILE_URL" not in template
    with open(CATALOG, "rb") as handle:
        assert not [m.id for m in read_po(handle) if m.id and "TILE_URL" in str(m.string)]

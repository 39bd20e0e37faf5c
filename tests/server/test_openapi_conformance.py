"""The OpenAPI document is exactly as strict as the server (issue "Authorship and access the server enforces",
"Contract and small leaks").

The slow test runs scripts/openapi_conformance.py (schemathesis, every check, a fixed seed, a few hundred
requests) against a real gunicorn serving the demo on 127.0.0.1, and wants no failure. The fast ones hold the
patterns the document states to the fields that make the server refuse.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import requests
from marshmallow import ValidationError

from server.api import INSTANT_PATTERN, TEXT_PATTERN
from shared.records import Instant, Text
from tests.servers import ROOT, GunicornServer

PASSWORD = "conformance-pass"


def ecma(pattern: str) -> re.Pattern:
    """A document's pattern as JSON Schema reads it: its final $ is the end (Python's $ also takes a final newline)."""
    assert pattern.endswith("$")
    return re.compile(pattern[:-1] + r"\Z")


def _takes(field, text: str) -> bool:
    try:
        field.deserialize(text)
    except ValidationError:
        return False
    return True


def test_the_instant_pattern_takes_what_instant_takes():
    """Every month-day 01..31 of years at the edges of the range and of the leap rules, and times around them."""
    pattern, instant = ecma(INSTANT_PATTERN), Instant()
    texts = [f"{year:04d}-{month:02d}-{day:02d}T12:34:56.789Z"
             for year in (999, 1000, 1004, 1200, 1900, 1970, 2000, 2023, 2024, 2100, 9996, 9999)
             for month in range(0, 14) for day in range(0, 33)]
    texts += ["0999-12-31T23:59:59.999Z", "1000-02-29T00:00:00.000Z", "2023-02-29T00:00:00.000Z",
              "2026-11-27T24:00:00.000Z", "2026-11-27T23:60:00.000Z", "2026-11-27T23:59:60.000Z",
              "2026-11-27T19:48:00.12Z", "2026-11-27T19:48:00.1234Z", "2026-11-27T19:48:00Z", "",
              "2026-11-27 19:48:00.123Z", "2026-11-27T19:48:00.123+00:00", "2026-11-27T19:48:00.123Z\n",
              "2026-1-27T19:48:00.123Z", "２０２６-11-27T19:48:00.123Z", "2026-11-27t19:48:00.123z"]
    assert [t for t in texts if (pattern.search(t) is not None) != _takes(instant, t)] == []
    assert sum(_takes(instant, t) for t in texts) > 3000


def test_the_text_pattern_refuses_what_text_refuses():
    pattern, text = ecma(TEXT_PATTERN), Text()
    for value in ["", "worker1", "张伟", "a\x00b", "\x00", "tab\there", "line\n", "\x00\n"]:
        assert (pattern.search(value) is not None) == _takes(text, value), repr(value)


def test_the_upload_headers_state_the_photo_limit(client):
    client.application.config["GRIDPATROL_MAX_PHOTO_BYTES"] = 1234
    patch = client.get("/api/v1/openapi.json").json["paths"]["/api/v1/photos/{sha256}"]["patch"]
    headers = {p["name"]: p for p in patch["parameters"] if p["in"] == "header"}
    for name in ("Upload-Offset", "Upload-Length"):
        assert headers[name]["required"] is True
        assert headers[name]["schema"] == {"type": "integer", "minimum": 0, "maximum": 1234}


@pytest.fixture
def demo_server(sqlite_template, tmp_path):
    """The demo store served by gunicorn on 127.0.0.1."""
    import shutil

    from server import create_app
    from server.admin import demo
    from server.db import db

    path = tmp_path / "store.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    id_key = os.urandom(32).hex()  # one ID-number key for this process (which loads the demo) and gunicorn's
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "conformance",
                      "GRIDPATROL_PHOTO_DIR": str(tmp_path / "photos"), "GRIDPATROL_VAR_DIR": str(tmp_path),
                      "GRIDPATROL_ID_KEY": id_key})
    with app.app_context():
        demo.load(password=PASSWORD)
        db.session.remove()
        db.engine.dispose()
    server = GunicornServer(url, tmp_path / "photos", tmp_path / "gunicorn.log")
    server.env["GRIDPATROL_ID_KEY"] = id_key
    with server:
        yield server


@pytest.mark.slow
def test_schemathesis_finds_no_failure(demo_server, tmp_path):
    pytest.importorskip("schemathesis")
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "openapi_conformance.py"), demo_server.url,
                          "supervisor1", PASSWORD], cwd=tmp_path, capture_output=True, text=True, timeout=110,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    report = run.stdout + run.stderr
    assert run.returncode == 0, f"{report}\n--- the server's log:\n{demo_server.log_tail()}"
    sent = int(re.search(r"(\d+) requests sent", report).group(1))
    assert 200 <= sent <= 600, report  # a few hundred, as documented
    document = requests.get(f"{demo_server.url}/api/v1/openapi.json", timeout=10).json()
    operations = sum(len(methods) for methods in document["paths"].values())
    assert f"Tested: {operations}" in report, report  # every operation of the document

"""The pull's speed-ups (server/api.py, server/store.py) answer byte for byte what the plain path answers.

The plain path: store.pull_changes without ``encode`` (each JSON column decoded by the column
type, each change a dict) and jsonify of the whole page. The fast path: the view, which encodes
each change as it is made and splices the page together. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json

import pytest
from flask import jsonify

from server import api, store
from server.db import db
from server.models import Record, User
from shared.hlc import HLC, format_ms
from shared.records import uuid7
from tests.server.test_sync_api import bearer, pushed, token_of

NODE = "0123456789abcdef"
T0 = 1_764_272_880_000


def _stamp(values: dict, ms: int) -> dict:
    at = str(HLC(T0 + ms, 0, NODE))
    return {name: [value, at] for name, value in values.items()}


def _awkward_events(reporter: str) -> list[dict]:
    """Events whose values stress the encoding: non-ASCII, escapes, float digits, nesting, None."""
    texts = ["消防通道堵塞", "quote \" backslash \\ slash / tab \t newline \n", "emoji 🚒 and \u2028",
             "control \x01\x1f", "plain"]
    floats = [0.1 + 0.2, 1e-7, 22.545123456789, -0.0, 120.0]
    changes = []
    for n, (text, number) in enumerate(zip(texts, floats)):
        values = {"grid": "G-0101", "category": "fire_hazard", "description": text, "reporter": reporter,
                  "reported_at": format_ms(T0 - 60_000), "urgent": n % 2 == 0, "photos": ["ab" * 32] * n,
                  "location": None if n == 4 else {"lat": 30 + number, "lon": 120.5,
                                                   "accuracy_m": number if n else None, "source": "gps"},
                  "address": None}
        changes.append({"kind": "event", "id": uuid7(T0 + n, bytes(range(n, n + 10))), "bucket": "grid:G-0101",
                        "fields": _stamp(values, n)})
    return changes


def _plain_page(user: User, cursors: dict, limit: int, hlc: str) -> bytes:
    """What the pull answered before the speed-ups: the plain store call and jsonify."""
    answer = store.pull_changes(user, cursors, limit)
    answer["hlc"] = hlc
    return jsonify(answer).get_data()


@pytest.mark.parametrize("username", ["worker1", "supervisor1"])
def test_pull_pages_are_byte_for_byte_the_plain_answer(client, demo, username):
    token, worker = token_of(client, "worker1")
    assert {r["status"] for r in pushed(client, token, _awkward_events(worker["id"]))} == {"applied"}
    reader_token, _ = token_of(client, username, node="fedcba9876543210") if username != "worker1" else (token, None)
    user = db.session.scalar(db.select(User).where(User.username == username))
    cursors: dict = {}
    pages = 0
    while True:
        answer = client.post("/api/v1/sync/pull", headers=bearer(reader_token), json={"cursors": cursors, "limit": 7})
        assert answer.status_code == 200 and answer.mimetype == "application/json"
        body = answer.get_json()
        assert answer.get_data() == _plain_page(user, cursors, 7, body["hlc"])
        db.session.rollback()
        pages += 1
        cursors = body["cursors"]
        if not body["more"]:
            break
    assert pages > 3  # the demo and the events span several pages of 7


def test_rows_are_decoded_as_the_json_column_decodes_them(app, demo):
    """The JSON columns read as text and decoded with _json_loads give what the column type gives."""
    plain = {r.id: (r.field_values, r.field_hlcs) for r in db.session.execute(
        db.select(Record.id, Record.field_values, Record.field_hlcs))}
    loads = store._json_loads()
    rows = db.session.execute(db.select(*store._PULL_COLUMNS)).all()
    assert len(rows) == len(plain) > 0
    for row in rows:
        decoded = store._decoded(row, loads)
        values, hlcs = plain[decoded.id]
        # Equal, and in the same key order (the wire answer keeps it).
        assert list(decoded.field_values.items()) == list(values.items())
        assert list(decoded.field_hlcs.items()) == list(hlcs.items())


def test_page_json_is_the_encoders_text_of_the_whole_page(app):
    encoder = api._jsonify_encoder()
    assert encoder is not None
    for changes in ([], [{"kind": "unit", "id": "x", "bucket": "ref", "fields": {"name": ["消防", "h"]}}] * 3):
        answer = {"changes": changes, "cursors": {"ref": "3", "grid:G-0101": "0"}, "more": False, "hlc": "h"}
        spliced = {**answer, "changes": [encoder.encode(c) for c in changes]}
        assert api._page_json(spliced, encoder) + "\n" == jsonify(answer).get_data(as_text=True)
        assert json.loads(api._page_json(spliced, encoder)) == answer


def test_a_provider_other_than_the_compact_default_gets_plain_jsonify(app):
    assert api._jsonify_encoder() is not None
    app.json.sort_keys = True
    try:
        assert api._jsonify_encoder() is None
    finally:
        app.json.sort_keys = False
    app.debug = True
    try:
        assert api._jsonify_encoder() is None
    finally:
        app.debug = False


def test_pull_in_debug_mode_still_answers_the_plain_way(client, demo, app):
    token, _ = token_of(client, "worker1")
    app.debug = True
    try:
        answer = client.post("/api/v1/sync/pull", headers=bearer(token), json={"cursors": {}, "limit": 5})
    finally:
        app.debug = False
    user = db.session.scalar(db.select(User).where(User.username == "worker1"))
    body = answer.get_json()
    app.debug = True
    try:
        expected = _plain_page(user, {}, 5, body["hlc"])
    finally:
        app.debug = False
    assert answer.get_data() == expected

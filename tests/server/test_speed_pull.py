"""The pull's speed-ups (server/sync/service.py, feed.py) answer what the plain path answers.

The plain path: service.pull_changes without ``encode`` (each JSON column decoded by the column
type, each change a dict) and json.dumps of the whole page. The fast path: the view, which encodes
each change with msgspec as it is made and splices the page together. The two texts may differ in
how a float or a character is written, never in what they decode to: the same values of the same
types, keys in the same order. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json

import pytest
from server.sync import feed, service, wire
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


def _plain_page(user: User, cursors: dict, limit: int, hlc: str) -> dict:
    """What the pull answers, the plain way: the plain store call and json's own encoding."""
    answer = service.pull_changes(user, cursors, limit)
    answer["hlc"] = hlc
    return json.loads(json.dumps(answer))


def _exactly(value) -> str:
    """repr tells 1 from 1.0 and True, -0.0 from 0.0, and shows the order of keys."""
    return repr(value)


@pytest.mark.parametrize("username", ["worker1", "supervisor1"])
def test_pull_pages_decode_to_exactly_the_plain_answer(client, demo, username):
    token, worker = token_of(client, "worker1")
    assert {r["status"] for r in pushed(client, token, _awkward_events(worker["id"]))} == {"applied"}
    reader_token, _ = token_of(client, username, node="fedcba9876543210") if username != "worker1" else (token, None)
    user = db.session.scalar(db.select(User).where(User.username == username))
    cursors: dict = {}
    pages = 0
    while True:
        answer = client.post("/api/v1/sync/pull", headers=bearer(reader_token), json={"cursors": cursors, "limit": 7})
        assert answer.status_code == 200 and answer.mimetype == "application/json"
        body = json.loads(answer.get_data())
        assert _exactly(body) == _exactly(_plain_page(user, cursors, 7, body["hlc"]))
        db.session.rollback()
        pages += 1
        cursors = body["cursors"]
        if not body["more"]:
            break
    assert pages > 3  # the demo and the events span several pages of 7


def test_rows_are_decoded_as_the_json_column_decodes_them(app, demo):
    """The JSON columns feed.py reads as text and decodes with feed.loads give what the column type gives."""
    plain = {r.id: (r.bucket, r.field_values, r.field_hlcs) for r in db.session.execute(
        db.select(Record.id, Record.bucket, Record.field_values, Record.field_hlcs))}
    rows = [row for bucket in {bucket for bucket, _v, _h in plain.values()}
            for row in feed.bucket_page(bucket, 0, len(plain) + 1)]
    assert len(rows) == len(plain) > 0
    for _kind, rid, _bucket, values_text, hlcs_text, _position in rows:
        _bucket, values, hlcs = plain[rid]
        # Equal, and in the same key order (the wire answer keeps it).
        assert list(feed.loads(values_text).items()) == list(values.items())
        assert list(feed.loads(hlcs_text).items()) == list(hlcs.items())


def test_page_json_is_the_text_of_the_whole_page(app):
    for changes in ([], [{"kind": "unit", "id": "x", "bucket": "ref", "fields": {"name": ["消防", "h"]}}] * 3):
        answer = {"changes": changes, "cursors": {"ref": "3", "grid:G-0101": "0"}, "more": False, "hlc": "h"}
        spliced = {**answer, "changes": [wire.encode(c) for c in changes]}
        assert service.page_json(spliced) == wire.encode(answer)
        assert _exactly(json.loads(service.page_json(spliced))) == _exactly(answer)


def test_stored_json_reads_back_as_json_would_read_it(app):
    """The JSON columns are written and read by msgspec; what json itself cannot take goes through json."""
    values = [{"a": [1, 1.0, -0.0, 0.1 + 0.2, 1e-7, 2**70, True, None]}, "消防 \u2028 \x01 \"\\", "\ud800 lone",
              [], {}, 10**400]
    for value in values:
        text = wire.dumps(value)
        assert _exactly(wire.loads(text)) == _exactly(json.loads(text)) == _exactly(value)

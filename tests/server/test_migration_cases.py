"""Migration 0004 on a store written before it: events numbered, actions placed under them, cases folded;
then 0013 counts those cases per grid and status and indexes them for keyword search (0014 on PostgreSQL).

On SQLite and PostgreSQL, from an empty database migrated to 0003 by the project's own migrations.
"""

from __future__ import annotations

import json

from flask_migrate import upgrade
from sqlalchemy import select, text

from server import create_app
from server.db import db
from server.cases import search
from server.models import CaseCount, CaseRow, Record
from server.sync import casebook
from shared.hlc import parse_ms
from tests.conftest import TEST_ID_KEY

SERVER_NODE = "5e5e5e5e5e5e5e5e"
REPORTER = "0193b5c8-0000-7000-8000-000000000001"
EVENTS = ["0193b5c8-0000-7000-9000-000000000001", "0193b5c8-0000-7000-9000-000000000002",
          "0193b5c8-0000-7000-9000-000000000003"]
DISPATCH = "0193b5c8-0000-7000-9000-0000000000a1"


def stamp(day: int, hour: int) -> str:
    return f"2026-11-{day:02d}T{hour:02d}:00:00.000Z-0000-{SERVER_NODE}"


def test_0004_numbers_old_events_and_folds_their_cases(empty_url, tmp_path):
    app = create_app({"SQLALCHEMY_DATABASE_URI": empty_url, "SECRET_KEY": "test", "GRIDPATROL_ID_KEY": TEST_ID_KEY,
                      "GRIDPATROL_PHOTO_DIR": str(tmp_path / "photos"), "GRIDPATROL_NODE": SERVER_NODE})
    with app.app_context():
        upgrade(revision="0003_authorship")
        rows = [  # (id, kind, values, first write); two events on the 26th (district time), one on the 27th
            (EVENTS[0], "event", {"grid": "G-0101", "category": "road", "description": "旧事件一", "reporter": REPORTER,
                                  "reported_at": "2026-11-26T01:00:00.000Z"}, stamp(26, 1)),
            (EVENTS[1], "event", {"grid": "G-0101", "category": "road", "description": "旧事件二", "reporter": REPORTER,
                                  "reported_at": "2026-11-26T02:00:00.000Z"}, stamp(26, 2)),
            (EVENTS[2], "event", {"grid": "G-0102", "category": "road", "description": "旧事件三", "reporter": REPORTER,
                                  "reported_at": "2026-11-27T01:00:00.000Z"}, stamp(27, 1)),
            (DISPATCH, "case_action", {"event": EVENTS[0], "action": "dispatch", "actor": REPORTER, "unit": "fire",
                                       "deadline": "2026-12-01T00:00:00.000Z"}, stamp(26, 3)),
        ]
        with db.engine.begin() as connection:
            for position, (rid, kind, values, first) in enumerate(rows, start=1):
                connection.execute(text(
                    "INSERT INTO records (id, kind, bucket, field_values, field_hlcs, position) "
                    "VALUES (:id, :kind, :bucket, :values, :hlcs, :position)"),
                    {"id": rid, "kind": kind, "bucket": "grid:" + values.get("grid", "G-0101"),
                     "values": json.dumps(values, ensure_ascii=False),
                     "hlcs": json.dumps(dict.fromkeys(values, first)), "position": position})
            connection.execute(text("UPDATE feed SET position = 4 WHERE id = 1"))
        upgrade()
        numbers = {r.id: r.field_values.get("case_number") for r in db.session.scalars(
            select(Record).where(Record.kind == "event"))}
        positions = dict(db.session.execute(select(Record.id, Record.position)).all())
        parent = db.session.scalar(select(Record.parent_id).where(Record.id == DISPATCH))
        cases = {row.event_id: (row.case_number, row.status, row.unit) for row in db.session.scalars(select(CaseRow))}
        feed = db.session.execute(text("SELECT position FROM feed")).scalar_one()
        table = db.session.execute(select(CaseRow).order_by(CaseRow.event_id)).scalars().all()
        before = [(r.event_id, r.status, r.unit, r.deadline_ms, r.case_number, r.position) for r in table]
        counts = {(row.grid, row.status): row.count for row in db.session.scalars(select(CaseCount))}
        connection = db.session.connection()
        indexed = (connection.exec_driver_sql("SELECT position FROM case_search WHERE event_id = '*'").scalar()
                   if search.in_use(connection) else None)
        mark = search.catch_up()
        found = set(db.session.scalars(select(CaseRow.event_id).where(search.word_condition("旧事件三", "%旧事件三%", mark))))
        casebook.rebuild(db.session.connection())
        after = [(r.event_id, r.status, r.unit, r.deadline_ms, r.case_number, r.position)
                 for r in db.session.execute(select(CaseRow).order_by(CaseRow.event_id)).scalars().all()]
        # The next event to arrive on the 27th continues that day's sequence.
        again = casebook.number_events(db.session.connection(), 2, parse_ms("2026-11-27T05:00:00.000Z"), "+08:00")
        db.session.remove()
        db.engine.dispose()
    assert numbers == {EVENTS[0]: "20261126-0001", EVENTS[1]: "20261126-0002", EVENTS[2]: "20261127-0001"}
    assert parent == EVENTS[0]
    assert cases == {EVENTS[0]: ("20261126-0001", "dispatched", "fire"), EVENTS[1]: ("20261126-0002", "reported", None),
                     EVENTS[2]: ("20261127-0001", "reported", None)}
    # Each numbered event moved up the feed, so tablets pull its number; the feed knows the last position.
    assert sorted(positions[e] for e in EVENTS) == [5, 6, 7] and feed == 7
    assert before == after
    assert counts == {("G-0101", "dispatched"): 1, ("G-0101", "reported"): 1, ("G-0102", "reported"): 1}
    assert found == {EVENTS[2]}
    # Indexed up to the feed by 0013 (SQLite) or 0014 (PostgreSQL, whose positions come from a sequence).
    assert indexed == mark == 7
    assert again == ["20261127-0002", "20261127-0003"]

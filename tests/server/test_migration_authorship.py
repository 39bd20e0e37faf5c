"""Migration 0003 on a store written before it: records placed on their devices, photos on their authors.

Before 0003 the pages placed a record on the device whose node stamped its first write, and any record that
listed a photo's hash granted access to it. The migration keeps what was there: each stored record gets the
device of that node, and each referenced photo is taken as uploaded by the author of the record listing it.
On SQLite and PostgreSQL, from an empty database migrated to 0002 by the project's own migrations.
"""

from __future__ import annotations

import json

from flask_migrate import upgrade
from sqlalchemy import text

from server import create_app
from server.db import db
from tests.conftest import TEST_ID_KEY

TABLET_NODE, SERVER_NODE = "0123456789abcdef", "5e5e5e5e5e5e5e5e"
REPORTER, DEVICE = "0193b5c8-0000-7000-8000-000000000001", "0193b5c8-0000-7000-8000-0000000000d1"
EVENT, DEMO_EVENT = "0193b5c8-0000-7000-9000-000000000001", "0193b5c8-0000-7000-9000-000000000002"
PHOTO = "ab" * 32


def stamp(minute: int, node: str) -> str:
    return f"2026-11-27T08:{minute:02d}:00.000Z-0000-{node}"


def test_0003_places_old_records_on_their_devices_and_old_photos_on_their_authors(empty_url, tmp_path):
    app = create_app({"SQLALCHEMY_DATABASE_URI": empty_url, "SECRET_KEY": "test", "GRIDPATROL_ID_KEY": TEST_ID_KEY,
                      "GRIDPATROL_PHOTO_DIR": str(tmp_path / "photos")})
    with app.app_context():
        upgrade(revision="0002_settings")
        with db.engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO users (id, username, name, role, password_hash, active, created_at) "
                "VALUES (:id, 'worker1', 'w', 'worker', 'x', :yes, '2026-11-27 08:00:00')"),
                {"id": REPORTER, "yes": True})
            connection.execute(text(
                "INSERT INTO devices (id, user_id, name, node, token_hash, created_at) "
                "VALUES (:id, :user, '平板', :node, :hash, '2026-11-27 08:00:00')"),
                {"id": DEVICE, "user": REPORTER, "node": TABLET_NODE, "hash": "0" * 64})
            for position, (rid, node) in enumerate([(EVENT, TABLET_NODE), (DEMO_EVENT, SERVER_NODE)], start=1):
                values = {"reporter": REPORTER, "photos": [PHOTO], "description": "旧记录"}
                # The earliest write decides: a later edit from elsewhere does not move the record.
                hlcs = {"reporter": stamp(1, node), "photos": stamp(1, node), "description": stamp(9, SERVER_NODE)}
                connection.execute(text(
                    "INSERT INTO records (id, kind, bucket, field_values, field_hlcs, position) "
                    "VALUES (:id, 'event', 'grid:G-0101', :values, :hlcs, :position)"),
                    {"id": rid, "values": json.dumps(values), "hlcs": json.dumps(hlcs), "position": position})
        upgrade()
        devices = dict(db.session.execute(text("SELECT id, device_id FROM records")).all())
        uploads = db.session.execute(text("SELECT sha256, user_id FROM photo_uploads")).all()
        versions = db.session.execute(text("SELECT session_version FROM users")).scalars().all()
        db.session.remove()
        db.engine.dispose()
    assert devices == {EVENT: DEVICE, DEMO_EVENT: None}
    assert [tuple(row) for row in uploads] == [(PHOTO, REPORTER)]
    assert versions == [0]

"""Migration 0009 on a store written before it: patrols and their tracks stored by 0008 get their coverage.

On SQLite and PostgreSQL, from an empty database migrated to 0008 by the project's own migrations, with a grid
(its outline), a patrol and its track written as rows; then upgraded, read, downgraded and upgraded again.
"""

from __future__ import annotations

import json
from datetime import timezone

from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text

from server import create_app
from server.clock import server_clock
from server.db import db
from server.patrols import coverage, service
from shared.hlc import format_ms
from shared.track import pack
from tests.conftest import TEST_ID_KEY

from ..server.conftest import empty_url  # noqa: F401 (a fixture)
from .conftest import BOX, box_polygon, walk

NODE = "5e5e5e5e5e5e5e5e"
WORKER = "0193b5c8-0000-7000-8000-000000000001"
PATROL = "0193b5c8-0000-7000-9000-000000000001"
TRACK = "0193b5c8-0000-7000-9000-000000000002"
GRID = "0193b5c8-0000-7000-9000-000000000003"


def test_0009_adds_the_coverage_cache_to_a_store_with_patrols(empty_url, tmp_path):
    app = create_app({"SQLALCHEMY_DATABASE_URI": empty_url, "SECRET_KEY": "test", "GRIDPATROL_ID_KEY": TEST_ID_KEY,
                      "GRIDPATROL_PHOTO_DIR": str(tmp_path / "photos"), "GRIDPATROL_NODE": NODE})
    with app.app_context():
        upgrade(revision="0008_case_indexes")
        now, zone = server_clock().physical_ms(), timezone.utc
        start = now - 2 * 3_600_000
        points = walk(start, (BOX[0] + 0.001, BOX[1] + 0.001), (BOX[0] + 0.001, BOX[3] - 0.001), 60)
        hlc = f"{format_ms(start)}-0000-{NODE}"
        rows = [  # (id, kind, bucket, values, parent)
            (GRID, "grid", "ref", {"code": "G-0101", "name": "东湖一网格", "community": "东湖社区", "street": "东湖街道",
                                   "district": "示范区", "boundary": box_polygon()}, None),
            (PATROL, "patrol", "grid:G-0101", {"grid": "G-0101", "worker": WORKER, "started_at": format_ms(start),
                                               "ended_at": format_ms(points[-1].at_ms)}, None),
            (TRACK, "track", "grid:G-0101", {"patrol": PATROL, "worker": WORKER, "seq": 0, "start": format_ms(start),
                                             "points": pack(points, start)}, PATROL),
        ]
        with db.engine.begin() as connection:
            for position, (rid, kind, bucket, values, parent) in enumerate(rows, start=1):
                connection.execute(text(
                    "INSERT INTO records (id, kind, bucket, field_values, field_hlcs, position, parent_id) "
                    "VALUES (:id, :kind, :bucket, :values, :hlcs, :position, :parent)"),
                    {"id": rid, "kind": kind, "bucket": bucket, "values": json.dumps(values, ensure_ascii=False),
                     "hlcs": json.dumps(dict.fromkeys(values, hlc)), "position": position, "parent": parent})
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT setval('feed_position_seq', 3)"))
            else:
                connection.execute(text("UPDATE feed SET position = 3 WHERE id = 1"))
        assert "patrol_coverage" not in inspect(db.engine).get_table_names()
        upgrade()
        assert "patrol_coverage" in inspect(db.engine).get_table_names()
        grids = service.load_grids()
        day = service.district_day(start, zone)
        period = service.period_of("day", day, zone)
        [row] = coverage.coverage(grids, ["G-0101"], period, zone, now)
        assert row.patrols == 1 and row.cells and row.covered > 0
        cached = db.session.execute(text("SELECT grid, day, covered FROM patrol_coverage")).all()
        assert [tuple(c) for c in cached] == [("G-0101", day.isoformat(), row.covered)]
        db.session.remove()
        downgrade(revision="0008_case_indexes")
        assert "patrol_coverage" not in inspect(db.engine).get_table_names()
        upgrade()
        [again] = coverage.coverage(service.load_grids(), ["G-0101"], period, zone, now)
        assert (again.covered, again.cells) == (row.covered, row.cells)
        db.session.remove()
        db.engine.dispose()

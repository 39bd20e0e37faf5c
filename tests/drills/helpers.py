"""What the drills share: the demo users, reading the store directly, and comparing a device with it.

The real server process they run is tests/servers.py's `GunicornServer`.
"""

from __future__ import annotations

from typing import Any

PASSWORD = "drill-pass"

def drill_app(database_url: str):
    """A server app on the drill's store, for setting it up and reading it directly."""
    from server import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "drill",
                       "GRIDPATROL_NODE": "d7d7d7d7d7d7d7d7"})

def load_demo(database_url: str) -> dict[str, dict[str, Any]]:
    """Load the demo data set (every password PASSWORD); answers {username: {id, role, grids}}."""
    from server.admin import demo
    from server.db import db
    from server.models import User
    from sqlalchemy import select

    app = drill_app(database_url)
    with app.app_context():
        demo.load(password=PASSWORD)
        users = {u.username: {"id": u.id, "role": u.role, "grids": u.grid_codes}
                 for u in db.session.scalars(select(User))}
        db.session.remove()
        db.engine.dispose()
    return users

def server_records(database_url: str) -> dict[str, Any]:
    """What the store holds, read directly: rows per id, each record's state, the feed and positions."""
    from server.db import db
    from server.models import Record
    from server.sync import feed as store_feed
    from sqlalchemy import func, select

    app = drill_app(database_url)
    with app.app_context():
        duplicated = db.session.execute(
            select(Record.id, func.count()).group_by(Record.id).having(func.count() > 1)).all()
        rows = db.session.scalars(select(Record)).all()
        records = {r.id: {"kind": r.kind, "bucket": r.bucket, "position": r.position,
                          "state": {name: (value, r.field_hlcs[name]) for name, value in r.field_values.items()}}
                   for r in rows}
        feed = store_feed.last_position()  # the feed row (SQLite) or the position sequence (PostgreSQL)
        positions = [r.position for r in rows]
        db.session.remove()
        db.engine.dispose()
    return {"duplicated": duplicated, "rows": len(rows), "records": records, "feed": feed, "positions": positions}

def client_state(store) -> dict[str, dict[str, Any]]:
    """Every record a device holds, tombstoned ones too: {id: {kind, bucket, state}}."""
    from shared.records import KINDS

    return {r.id: {"kind": r.kind, "bucket": r.bucket, "state": dict(r.state)}
            for kind in KINDS for r in store.query(kind, include_deleted=True)}

def compare_with_server(store, server: dict[str, Any], buckets: list[str]) -> list[str]:
    """Differences between a device's records and the server's records in the device's buckets."""
    problems = []
    mine = client_state(store)
    theirs = {rid: rec for rid, rec in server["records"].items() if rec["bucket"] in buckets}
    for rid in sorted(set(mine) | set(theirs)):
        if rid not in theirs:
            problems.append(f"{mine[rid]['kind']} {rid} is on the device but not on the server")
        elif rid not in mine:
            problems.append(f"{theirs[rid]['kind']} {rid} is on the server but not on the device")
        else:
            a, b = mine[rid], theirs[rid]
            if (a["kind"], a["bucket"], a["state"]) != (b["kind"], b["bucket"], b["state"]):
                problems.append(f"{rid} differs: device {a} / server {b}")
    return problems

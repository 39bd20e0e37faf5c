"""The store's foundation on both engines: migrations, health, demo data, the batch service."""

import random
import shutil
import uuid

import pytest

from sqlalchemy import select

from server.admin import demo as demo_data
from server.sync import apply
from server.db import db
from server.models import CaseCount, CaseRow, Record, User
from shared.hlc import HLC, format_ms
from shared.records import uuid7


def test_health_reports_engine_and_migration(client, database_url):
    answer = client.get("/api/v1/health")
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["engine"] == ("sqlite" if database_url.startswith("sqlite") else "postgresql")
    assert body["migration"] == _newest_migration()


def _newest_migration() -> str:
    """The head of server/migrations: what a migrated store must report."""
    from pathlib import Path

    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).resolve().parents[2] / "server" / "migrations"))
    return ScriptDirectory.from_config(config).get_current_head()


def test_unknown_api_route_has_error_shape(client):
    answer = client.get("/api/v1/nothing-here")
    assert answer.status_code == 404
    assert answer.get_json()["error"]["code"] == "not_found"


def test_demo_has_district_streets_communities_grids_and_people(app, demo):
    grids = [r.field_values for r in db.session.scalars(select(Record).where(Record.kind == "grid"))]
    assert len(grids) == 6
    assert len({g["district"] for g in grids}) == 1
    assert len({g["street"] for g in grids}) == 2
    assert len({g["community"] for g in grids}) == 3
    users = {u.username: u for u in db.session.scalars(select(User))}
    assert set(users) == {"worker1", "worker2", "worker3", "supervisor1", "unit1", "admin"}
    assert users["worker1"].grid_codes == users["worker2"].grid_codes
    assert users["worker3"].grid_codes and users["worker3"].grid_codes != users["worker1"].grid_codes
    categories = [r.field_values for r in db.session.scalars(select(Record).where(Record.kind == "category"))]
    assert any(c["micro"] for c in categories) and not all(c["micro"] for c in categories)
    assert all(c["name"] and c["name_en"] for c in categories)


def test_demo_passwords_are_random_unless_set(app, monkeypatch):
    monkeypatch.delenv("GRIDPATROL_DEMO_PASSWORD", raising=False)
    logins = demo_data.load()
    assert len(set(logins.values())) == len(logins)
    assert all(len(p) >= 10 for p in logins.values())


NODES = ["a" * 16, "b" * 16, "c" * 16]
BASE_MS = 1_795_000_000_000


def make_batch(n: int, seed: int = 7) -> list[dict]:
    """n whole-record changes over n // 4 events, as three replicas would push them.

    Each change carries the required fields (as a replica that never had its
    creation acknowledged does) plus one edit or a tombstone, so any order of
    the batch is a valid history.
    """
    rng = random.Random(seed)
    reporter = str(uuid.UUID(int=rng.getrandbits(128)))
    ids = [uuid7(BASE_MS + i, rng.randbytes(10)) for i in range(max(1, n // 4))]
    changes = []
    for i in range(n):
        rid = ids[i % len(ids)]
        created = str(HLC(BASE_MS, 0, NODES[0]))
        hlc = str(HLC(BASE_MS + rng.randrange(1, 10_000), rng.randrange(0, 3), rng.choice(NODES)))
        fields = {"grid": ["G-0101", created], "category": ["garbage", created],
                  "description": [f"event {rid}", created], "reporter": [reporter, created],
                  "reported_at": [format_ms(BASE_MS), created]}
        fields.update(rng.choice([
            {"description": [f"edit {i}", hlc]},
            {"urgent": [rng.random() < 0.5, hlc]},
            {"_deleted": [rng.random() < 0.3, hlc]},
            {"location": [{"lat": 22.5, "lon": 114.0, "accuracy_m": rng.randrange(3, 50), "source": "gps"}, hlc]},
        ]))
        changes.append({"kind": "event", "id": rid, "bucket": "grid:G-0101", "fields": fields})
    return changes


def stored_state() -> dict:
    """Every event in the store: its bucket, values and timestamps (not its feed position, nor the case number
    the server gave it on arrival: the order of arrival decides that, not the merge)."""
    def merged(fields: dict) -> dict:
        return {name: value for name, value in fields.items() if name != "case_number"}
    return {r.id: (r.kind, r.bucket, merged(r.field_values), merged(r.field_hlcs))
            for r in db.session.scalars(select(Record).where(Record.kind == "event"))}


def apply_raw(raw: list[dict], size: int = 500) -> list:
    """Validate and apply raw changes as the server itself, in batches like pushes.

    The server, not a user: the events name reporters of their own, which a user's push may not.
    """
    results = []
    for start in range(0, len(raw), size):
        changes, rejected = apply.validate_batch(None, raw[start:start + size])
        results += apply.apply_changes(None, changes, rejected)
    return results


def state_after(url: str, batches: list[list[dict]]) -> list[dict]:
    """The stored events of a fresh store at url after applying each batch in turn."""
    from server import create_app

    states = []
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "GRIDPATROL_NODE": "d" * 16})
    with app.app_context():
        accounts_admin(app)
        for batch in batches:
            # A fresh start for the events, and for what the store derives from them (the cases table is their
            # cache: rows of events the store no longer holds would meet the next batch's new cases).
            for table in (CaseRow.__table__, CaseCount.__table__):
                db.session.execute(table.delete())
            db.session.execute(Record.__table__.delete().where(Record.kind == "event"))
            db.session.commit()
            results = apply_raw(batch)
            assert not [r for r in results if r.status == "rejected"]
            states.append(stored_state())
        db.session.remove()  # return the session's connection before the pool closes them all
        db.engine.dispose()
    return states


def accounts_admin(app):
    from server import accounts

    accounts.create_user("admin", "x", role="admin")
    db.session.commit()


@pytest.mark.slow
def test_ten_thousand_changes_give_one_state_on_both_engines_in_any_order(request, sqlite_template, tmp_path):
    """10,000 changes; shuffled with 2,000 duplicates; SQLite and PostgreSQL: one stored state."""
    batch = make_batch(10_000)
    shuffled = batch + random.Random(4).sample(batch, 2000)
    random.Random(3).shuffle(shuffled)
    urls = {"sqlite": f"sqlite:///{tmp_path / 's.db'}"}
    shutil.copy(sqlite_template, tmp_path / "s.db")
    urls["postgresql"] = request.getfixturevalue("pg_database")
    states = {engine: state_after(url, [batch, shuffled]) for engine, url in urls.items()}
    reference = states["sqlite"][0]
    assert len(reference) == 2500
    assert any(values.get("_deleted") for _, _, values, _ in reference.values())
    for engine, (in_order, out_of_order) in states.items():
        assert in_order == reference, engine
        assert out_of_order == reference, engine


def test_bad_change_is_rejected_alone_and_stores_nothing(app, demo):
    good = make_batch(2)[0]
    bad = {**good, "id": uuid7(1, b"x" * 10), "fields": {**good["fields"], "urgent": ["yes", good["fields"]["grid"][1]]}}
    results = apply_raw([bad, good])
    assert [r.status for r in results] == ["rejected", "applied"]
    assert "fields.urgent" in results[0].reason
    assert bad["id"] not in stored_state() and good["id"] in stored_state()


def test_replayed_batch_is_stale(app, demo):
    batch = make_batch(40)
    assert {r.status for r in apply_raw(batch)} <= {"applied", "stale"}
    assert {r.status for r in apply_raw(batch)} == {"stale"}

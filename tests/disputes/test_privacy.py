"""A dispute's parties (names, phones) on both engines: sealed at rest, masked in lists and exports, in full on the
dispute page with an audit line, in full in pulls to the grid's worker; and the tablet's writes as the server
holds them (author, grid, role, append-only)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, text

from server import privacy
from server.db import db
from server.models import AuditEntry, Record, User
from shared.dispute import mask_parties

from .conftest import PARTIES, Tablet, log_in, new_dispute, new_id, user

NAMES = [p["name"] for p in PARTIES]
PHONES = [p["phone"] for p in PARTIES]


def _dump() -> str:
    db.session.rollback()
    return "\n".join(str(values) for (values,) in db.session.execute(text("SELECT field_values FROM records")))


def test_parties_are_sealed_at_rest_as_one_value_and_open_back_into_the_list(pages, demo):
    dispute = new_dispute()
    dump = _dump()
    assert not [n for n in NAMES + PHONES if n in dump], "a party's name or phone is stored in plaintext"
    stored = db.session.get(Record, dispute).field_values["parties"]
    assert stored.startswith("sealed:v1:")
    assert privacy.unseal_value(stored, "parties") == PARTIES


def test_sealing_the_parties_is_deterministic_so_a_replay_is_stale(pages, demo):
    tablet = Tablet(pages, "worker1")
    dispute_id = new_id()
    hlc = tablet.hlc()
    change = {"kind": "dispute", "id": dispute_id, "bucket": "grid:G-0101", "fields": {
        "grid": ["G-0101", hlc], "dispute_kind": ["neighbours", hlc], "parties": [PARTIES, hlc],
        "description": ["漏水", hlc], "reporter": [user("worker1").id, hlc], "reported_at": ["2026-12-01T08:00:00.000Z", hlc]}}
    assert tablet.push(change)[0]["status"] == "applied"
    assert tablet.push(change)[0]["status"] == "stale"


def test_the_list_and_the_export_show_the_parties_masked_only(pages, demo):
    new_dispute()
    log_in(pages, "supervisor1")
    for url in ("/disputes", "/disputes?status=all", "/disputes/export.csv?status=all", "/disputes/export.xlsx"):
        body = pages.get(url).get_data(as_text=url.endswith(("all", "disputes")) or "csv" in url)
        shown = body if isinstance(body, str) else body.decode("latin-1")
        assert not [n for n in NAMES + PHONES if n in shown], url
    page = pages.get("/disputes").get_data(as_text=True)
    assert "周**" in page and "138****5678" in page


def test_the_dispute_page_shows_the_parties_in_full_and_audits_the_view(pages, demo):
    dispute = new_dispute()
    log_in(pages, "supervisor1")
    page = pages.get(f"/disputes/{dispute}").get_data(as_text=True)
    assert all(n in page for n in NAMES + PHONES)
    db.session.rollback()
    [line] = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "view_parties",
                                                         AuditEntry.target == dispute)).all()
    assert line.actor == "supervisor1" and line.after == {"parties": 2}
    assert not [n for n in NAMES + PHONES if n in json.dumps(line.after, ensure_ascii=False) + (line.note or "")]


def test_the_grids_worker_pulls_the_parties_in_full_and_other_grids_not_at_all(pages, demo):
    mine, theirs = new_dispute(grid="G-0101"), new_dispute(grid="G-0201")
    changes, raw = Tablet(pages, "worker1").pull_all()
    pulled = {c["id"]: c for c in changes}
    assert pulled[mine]["fields"]["parties"][0] == PARTIES and "parties_masked" not in pulled[mine]["fields"]
    assert theirs not in pulled and "sealed:v1:" not in raw
    # A pull that carries parties in full is a view of them, as the dispute page is: audited, without the values.
    db.session.rollback()
    lines = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "view_parties",
                                                        AuditEntry.kind == "dispute")).all()
    assert lines and {line.actor for line in lines} == {"worker1"}
    assert mine in " ".join(line.note for line in lines) and theirs not in " ".join(line.note for line in lines)
    assert not [p for p in PARTIES for v in p.values() if isinstance(v, str) and v in " ".join(
        json.dumps(line.after, ensure_ascii=False) + (line.note or "") for line in lines)]


@pytest.mark.parametrize("role, full", [("worker", True), ("supervisor", True), ("admin", True), ("unit", False)])
def test_the_roles_that_do_not_mediate_are_served_the_parties_masked(pages, demo, role, full):
    dispute = db.session.get(Record, new_dispute())
    viewer = User(id="x", username="x", name="x", role=role)
    shown = privacy.shown_fields("dispute", dispute.field_values, dispute.field_hlcs, viewer)
    if full:
        assert shown["parties"][0] == PARTIES and "parties_masked" not in shown
    else:
        assert "parties" not in shown and shown["parties_masked"][0] == mask_parties(PARTIES)
        assert shown["parties_masked"][1] == dispute.field_hlcs["parties"]


def _dispute_change(tablet: Tablet, grid: str = "G-0101", **overrides) -> dict:
    hlc = tablet.hlc()
    values = {"grid": grid, "dispute_kind": "rent", "parties": PARTIES, "description": "押金未退",
              "reporter": user("worker1").id, "reported_at": "2026-12-01T08:00:00.000Z", **overrides}
    return {"kind": "dispute", "id": new_id(), "bucket": f"grid:{grid}",
            "fields": {name: [value, hlc] for name, value in values.items()}}


@pytest.mark.parametrize("overrides, reason", [
    ({}, None),
    ({"grid": "G-0201"}, "not one of your grids"),
    ({"reporter": "0193b5c8-0000-7000-8000-000000000001"}, "reporter must be the pushing user"),
    ({"parties_masked": [{"name": "周*"}]}, "written only by the server"),
    ({"parties": []}, "invalid"),
])
def test_a_workers_pushed_dispute_is_held_to_their_grid_their_name_and_the_schema(pages, demo, overrides, reason):
    tablet = Tablet(pages, "worker1")
    [result] = tablet.push(_dispute_change(tablet, **overrides))
    if reason is None:
        assert result["status"] == "applied"
    else:
        assert result["status"] == "rejected" and reason in result["reason"], result


def test_steps_are_append_only_and_a_unit_may_write_none(pages, demo):
    dispute = new_dispute()
    worker, unit = Tablet(pages, "worker1"), Tablet(pages, "unit1", node="00000000000000b2")
    step_id, hlc = new_id(), worker.hlc()
    step = {"kind": "dispute_action", "id": step_id, "bucket": "grid:G-0101", "fields": {
        "dispute": [dispute, hlc], "action": ["accept", hlc], "actor": [user("worker1").id, hlc]}}
    assert worker.push(step)[0]["status"] == "applied"
    later = worker.hlc()
    changed = {**step, "fields": {"action": ["outcome", later], "outcome": ["settled", later]}}
    assert "append-only" in worker.push(changed)[0]["reason"]
    hlc = unit.hlc()
    refused = unit.push({"kind": "dispute_action", "id": new_id(), "bucket": "grid:G-0101", "fields": {
        "dispute": [dispute, hlc], "action": ["comment", hlc], "actor": [user("unit1").id, hlc], "note": ["x", hlc]}})
    assert refused[0]["status"] == "rejected" and "may not write" in refused[0]["reason"]

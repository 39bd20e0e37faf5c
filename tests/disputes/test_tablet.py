"""Disputes in the field app's core against the real server: AppCore and DisputesPresenter over FlaskTransport.

worker1's tablet pulls its grid's disputes (parties in full, overdue shown offline), reports one and
mediates it offline, syncs; the server folds the same state, and a supervisor's outcome on the pages
comes back to the tablet.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mobile.app_core import AppCore, SyncRunner
from mobile.disputes import DisputesPresenter
from mobile.presenters import InputError
from server.clock import server_clock
from server.db import db
from server.disputes import service
from server.models import Record, User
from tests.integration.transport import BASE_URL, FlaskTransport
from tests.mobile.core_helpers import QueueSchedule

PASSWORD = "demo-pass"
PARTIES = [{"name": "赵一", "phone": "13700001111", "role": "申请人"}, {"name": "钱二", "phone": "", "role": ""},
           {"name": "", "phone": ""}]  # an empty form line is dropped


@pytest.fixture
def database_url(sqlite_template, tmp_path):
    """SQLite only: the tablet's side does not depend on the server's engine (the page tests cover both)."""
    import shutil
    path = tmp_path / "store.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def tablet(app, client, demo, tmp_path):
    """worker1's tablet, logged in to the real server (with the demo's disputes) and synced once."""
    core = AppCore(tmp_path / "tablet", transport_factory=lambda url, token: FlaskTransport(client, token))
    core.login(BASE_URL, "worker1", PASSWORD, device_name="平板1")
    schedule = QueueSchedule()
    runner = SyncRunner(core, schedule)
    sync(runner, schedule)
    yield core, runner, schedule
    runner.stop()
    core.close()


def sync(runner: SyncRunner, schedule: QueueSchedule):
    outcomes = []
    unsubscribe = runner.on_finished(outcomes.append)
    assert runner.sync_now() and runner.join(30)
    schedule.drain()
    unsubscribe()
    [outcome] = outcomes
    assert outcome.ok and outcome.rejected == 0, outcome
    return outcome


def test_the_grids_disputes_arrive_overdue_first_with_the_parties_masked_in_the_list_and_full_on_the_page(tablet):
    core, _runner, _schedule = tablet
    disputes = DisputesPresenter(core)
    assert [k.code for k in disputes.kinds()] == ["family", "labour", "neighbours", "property", "rent"]
    rows = disputes.rows()
    assert [(r.kind, r.status, r.overdue) for r in rows] == [
        ("neighbours", "reported", True), ("rent", "mediating", False), ("labour", "concluded", False)]
    assert rows[0].parties[0] == {"name": "周**", "phone": "138****5678", "role": "申请人"}
    view = disputes.view(rows[0].id)
    assert view.parties_full and view.parties[0]["name"] == "周建国"
    assert view.offered == ("accept", "session", "outcome", "comment")
    concluded = disputes.view(rows[2].id)
    assert concluded.state.outcome == "settled" and concluded.offered == ("follow_up", "comment")
    assert [s.action for s in concluded.steps] == ["accept", "session", "outcome", "follow_up"]


def test_a_dispute_reported_and_mediated_offline_syncs_and_the_server_folds_the_same(tablet, app):
    core, runner, schedule = tablet
    disputes = DisputesPresenter(core)
    dispute_id = disputes.report(grid="G-0101", kind="neighbours", parties=PARTIES, place="东湖路9号",
                                 description="装修噪音扰民")
    disputes.step(dispute_id, "accept")
    disputes.step(dispute_id, "session", note="双方约定施工时间", mediators=["张伟"])
    local = disputes.view(dispute_id)
    assert local.state.status == "mediating" and local.sync_state == "local"
    assert [p["name"] for p in local.parties] == ["赵一", "钱二"]
    sync(runner, schedule)
    with app.app_context():
        stored = db.session.get(Record, dispute_id)
        assert stored.field_values["parties"].startswith("sealed:v1:")
        reporter = db.session.get(User, stored.field_values["reporter"]).username
        server = service.get_dispute(None, dispute_id, server_clock().physical_ms())
        assert reporter == "worker1" and server.parties[0]["phone"] == "13700001111"
        assert (server.state.status, server.state.sessions) == ("mediating", 1)
        # A supervisor records the outcome on the pages; the tablet sees it at its next sync.
        supervisor = db.session.scalar(select(User).where(User.username == "supervisor1"))
        result = service.record_step(supervisor, server, "outcome", outcome="partly_settled", note="噪音已减少")
        assert result.status == "applied"
        db.session.remove()
    sync(runner, schedule)
    view = disputes.view(dispute_id)
    assert view.sync_state == "synced" and view.state.status == "concluded"
    assert view.state.outcome == "partly_settled" and view.offered == ("follow_up", "comment")
    assert [s.mine for s in view.steps] == [True, True, False]


@pytest.mark.parametrize("values, field, code", [
    ({"parties": []}, "parties", "required"),
    ({"parties": [{"name": "", "phone": "13700001111"}]}, "parties.0.name", "required"),
    ({"parties": [{"name": "赵一", "phone": "call me"}]}, "parties.0.phone", "invalid"),
    ({"kind": "unknown"}, "dispute_kind", "required"),
    ({"description": "  "}, "description", "required"),
])
def test_a_report_with_wrong_input_writes_nothing(tablet, values, field, code):
    core, _runner, _schedule = tablet
    disputes = DisputesPresenter(core)
    before = len(disputes.rows())
    args = {"grid": "G-0101", "kind": "rent", "parties": PARTIES, "description": "押金", **values}
    with pytest.raises(InputError) as caught:
        disputes.report(**args)
    assert (caught.value.field, caught.value.code) == (field, code)
    assert len(disputes.rows()) == before


def test_a_step_that_does_not_apply_or_lacks_its_note_is_refused(tablet):
    core, _runner, _schedule = tablet
    disputes = DisputesPresenter(core)
    overdue = disputes.rows()[0].id
    for action, values, field, code in [("follow_up", {"note": "x"}, "action", "does_not_apply"),
                                        ("session", {}, "note", "required"),
                                        ("outcome", {"outcome": "referred"}, "referred_to", "required"),
                                        ("outcome", {}, "outcome", "required")]:
        with pytest.raises(InputError) as caught:
            disputes.step(overdue, action, **values)
        assert (caught.value.field, caught.value.code) == (field, code)
    assert disputes.view(overdue).steps == []

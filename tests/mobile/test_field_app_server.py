"""The field app's core against the real server: AppCore and the presenters over FlaskTransport.

The tablet's whole stack (AppCore.login, SyncRunner, synchronize, HttpTransport with
its requests going to the Flask test client) meets the real server's authorization, the
demo's reference data, and the supervisor's and unit's page actions (cases_service).
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mobile.app_core import AppCore, LoginFailed, SyncRunner
from mobile.presenters import CasePresenter, CasesPresenter, HomePresenter, InputError, ReportPresenter
from server.cases import service as cases_service
from server.db import db
from server.models import User
from tests.integration.transport import BASE_URL, FlaskTransport
from tests.photos.helpers import make_jpeg

from .core_helpers import QueueSchedule

PASSWORD = "demo-pass"


@pytest.fixture
def database_url(sqlite_template, tmp_path):
    """SQLite only: the tablet's side does not depend on the server's engine (tests/server cover both)."""
    import shutil
    path = tmp_path / "store.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def tablet(app, client, demo, tmp_path):
    """worker1's tablet, logged in to the real server and synced once."""
    core = AppCore(tmp_path / "tablet", transport_factory=lambda url, token: FlaskTransport(client, token))
    core.login(BASE_URL, "worker1", PASSWORD, device_name="平板1")
    schedule = QueueSchedule()
    runner = SyncRunner(core, schedule)
    sync(runner, schedule)
    yield core, runner, schedule
    runner.stop()
    core.close()


def sync(runner: SyncRunner, schedule: QueueSchedule):
    """One sync through the runner; its outcome, which must be clean."""
    outcomes = []
    unsubscribe = runner.on_finished(outcomes.append)
    assert runner.sync_now() and runner.join(30)
    schedule.drain()
    unsubscribe()
    [outcome] = outcomes
    assert outcome.ok and outcome.rejected == 0, outcome
    return outcome


def user(username: str) -> User:
    return db.session.scalar(select(User).where(User.username == username))


def server_case(event_id: str):
    return cases_service.load_case(event_id, cases_service.load_reference(), 0)


def test_login_failure_against_the_real_server(app, client, demo, tmp_path):
    core = AppCore(tmp_path / "tablet", transport_factory=lambda url, token: FlaskTransport(client, token))
    try:
        with pytest.raises(LoginFailed) as caught:
            core.login(BASE_URL, "worker1", "not the password")
        assert caught.value.code == "wrong_password"
    finally:
        core.close()


def test_reference_data_and_grids_come_from_the_real_server(tablet):
    core, _runner, _schedule = tablet
    assert [g.code for g in core.grids()] == ["G-0101"] and core.grids()[0].name
    choices = ReportPresenter(core).categories()
    assert {"fire_hazard", "garbage"} <= {c.code for c in choices}
    assert [c.micro for c in choices] == sorted(c.micro for c in choices)  # micro grouped last
    assert HomePresenter(core).view().user_name == "张伟"


def test_a_micro_event_handled_on_the_spot_is_closed_on_the_server(tablet):
    core, runner, schedule = tablet
    report = ReportPresenter(core)
    event_id = report.save(grid="G-0101", category="garbage", description="路口垃圾已清理", handled_on_spot=True,
                           note="当场处置", photos=[report.add_photo(make_jpeg(40, 30, noise=True, seed=3))],
                           no_location_reason="indoors")
    outcome = sync(runner, schedule)
    assert outcome.pushed == 2
    case = server_case(event_id)
    assert (case.state.status, case.state.resolution) == ("closed", "handled_on_spot")


def test_verify_pass_after_dispatch_and_rectification_closes_the_case_on_the_server(tablet):
    core, runner, schedule = tablet
    event_id = ReportPresenter(core).save(grid="G-0101", category="fire_hazard", description="灭火器过期",
                                          no_location_reason="indoors")
    sync(runner, schedule)
    cases_service.record_action(user("supervisor1"), server_case(event_id), "dispatch", unit="fire",
                                deadline="2099-01-01T00:00:00.000Z")
    cases_service.record_action(user("unit1"), server_case(event_id), "rectify", note="已更换")
    sync(runner, schedule)
    rows = CasesPresenter(core).rows()
    assert rows[0].event_id == event_id and rows[0].awaiting_me and rows[0].status == "rectified"
    case = CasePresenter(core, event_id)
    with pytest.raises(InputError):
        case.verify(False)  # a failure needs a note
    case.verify(True, "复查合格")
    assert case.view().status == "closed"
    sync(runner, schedule)
    on_server = server_case(event_id)
    assert (on_server.state.status, on_server.state.resolution) == ("closed", "verified")
    assert [e.action for e in on_server.state.timeline] == ["dispatch", "rectify", "verify_pass"]


def test_a_tablet_logs_in_with_a_one_time_code_or_its_qr_text_and_syncs(app, client, demo, tmp_path):
    from server import accounts
    from server.admin.service import provisioning_link

    def new_code():
        _row, code = accounts.issue_device_code(user("worker1"), by="admin")
        db.session.commit()
        return code

    core = AppCore(tmp_path / "tablet", transport_factory=lambda url, token: FlaskTransport(client, token))
    try:
        with pytest.raises(LoginFailed) as caught:
            core.login_with_code(BASE_URL, "WRONG-CODE1")
        assert caught.value.code == "bad_code"
        core.login_with_code(BASE_URL, new_code().lower())
        assert core.user["id"] == user("worker1").id and not core.needs_login
        schedule = QueueSchedule()
        runner = SyncRunner(core, schedule)
        sync(runner, schedule)
        runner.stop()
        assert [g.code for g in core.grids()] == ["G-0101"]
        # The QR code's text names the server too: the address typed (here none) gives way to it.
        core.login_with_code("", provisioning_link(BASE_URL, new_code()))
        assert core.settings.server_url == BASE_URL
    finally:
        core.close()


def test_a_code_log_in_of_another_user_over_unsynced_captures_is_refused_and_its_token_revoked(tablet):
    from server import accounts
    from server.models import Device

    core, _runner, _schedule = tablet
    ReportPresenter(core).save(grid="G-0101", category="fire_hazard", description="未同步的上报",
                               no_location_reason="indoors")
    _row, code = accounts.issue_device_code(user("worker2"), by="admin")
    db.session.commit()
    with pytest.raises(LoginFailed) as caught:
        core.login_with_code(BASE_URL, code)
    assert caught.value.code == "unsynced_other_user"
    db.session.rollback()
    [device] = db.session.scalars(select(Device).where(Device.user_id == user("worker2").id)).all()
    assert device.revoked_at is not None  # the token the app did not keep works no more
    assert core.user["id"] == user("worker1").id and core.store.counts().unsynced == 1


def test_a_tablet_is_listed_under_a_name_a_person_can_tell_apart(app, client, demo, tmp_path):
    from server.models import Device

    core = AppCore(tmp_path / "tablet", transport_factory=lambda url, token: FlaskTransport(client, token))
    try:
        core.login(BASE_URL, "worker1", PASSWORD)  # no name given: the model (here the computer) and the node
        device = db.session.scalars(select(Device).where(Device.node == core.store.node)).one()
        assert device.name.endswith(" · " + core.store.node[:4]) and device.name != "tablet"
    finally:
        core.close()

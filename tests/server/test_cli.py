"""The admin CLI: users, grids and devices, as an admin would type them."""

import re

import pytest

from server import accounts
from server.db import db
from server.models import Device


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def test_create_user_with_grids_prints_a_password_once(runner):
    result = runner.invoke(args=["users", "create", "worker9", "--role", "worker", "--grid", "G-0101"])
    assert result.exit_code == 0, result.output
    password = re.search(r"with password (\S+)", result.output).group(1)
    assert accounts.authenticate("worker9", password).grid_codes == ["G-0101"]


def test_duplicate_user_is_a_clear_error(runner):
    runner.invoke(args=["users", "create", "worker9"])
    result = runner.invoke(args=["users", "create", "worker9"])
    assert result.exit_code != 0 and "already exists" in result.output


def test_create_grid_then_bad_code_is_refused(runner):
    ok = runner.invoke(args=["grids", "create", "G-0401", "--name", "南岭一网格", "--community", "南岭社区",
                             "--street", "南岭街道", "--district", "示范区"])
    assert ok.exit_code == 0 and "applied" in ok.output
    bad = runner.invoke(args=["grids", "create", "G 0401", "--name", "x", "--community", "x", "--street", "x",
                              "--district", "x"])
    assert bad.exit_code != 0 and "code" in bad.output


def test_device_create_list_and_revoke(runner):
    runner.invoke(args=["users", "create", "worker9", "--password", "pw"])
    created = runner.invoke(args=["devices", "create", "worker9", "--name", "平板2"])
    assert created.exit_code == 0, created.output
    token = re.search(r"token \(shown once\): (\S+)", created.output).group(1)
    device = accounts.device_for_token(token)
    assert device is not None and device.name == "平板2"
    assert "平板2" in runner.invoke(args=["devices", "list"]).output
    assert runner.invoke(args=["devices", "revoke", device.id]).exit_code == 0
    db.session.expire_all()
    from server.errors import ApiError

    with pytest.raises(ApiError) as refused:  # a 401 that says why (device_revoked)
        accounts.device_for_token(token)
    assert refused.value.status == 401 and refused.value.details == {"reason": "device_revoked"}
    assert db.session.get(Device, device.id).revoked_at is not None


def test_demo_load_refuses_a_store_that_is_not_empty_unless_told(runner, demo):
    assert runner.invoke(args=["demo", "load"]).exit_code != 0
    result = runner.invoke(args=["demo", "load", "--if-empty"])
    assert result.exit_code == 0 and "not loaded again" in result.output


def test_every_admin_command_writes_its_audit_line(runner):
    from sqlalchemy import select

    from server.models import AuditEntry

    def lines():
        db.session.rollback()
        return [(e.action, e.kind, e.target) for e in db.session.scalars(select(AuditEntry).order_by(AuditEntry.id))]

    commands = [
        (["users", "create", "worker9", "--grid", "G-0101"], ("create", "user", "worker9")),
        (["users", "grids", "worker9", "G-0101", "G-0102"], ("assign_grids", "user", "worker9")),
        (["users", "reset-password", "worker9"], ("reset_password", "user", "worker9")),
        (["grids", "create", "G-0401", "--name", "南岭一网格", "--community", "南岭社区", "--street", "南岭街道",
          "--district", "示范区"], ("edit", "grid", "G-0401")),
        (["devices", "code", "worker9"], ("provision_code", "device", None)),
        (["privacy", "allow", "supervisor"], ("edit", "setting", "id_number_roles")),
    ]
    for args, line in commands:
        result = runner.invoke(args=args)
        assert result.exit_code == 0, result.output
        assert lines()[-1] == line, args
    created = runner.invoke(args=["devices", "create", "worker9", "--name", "平板3"])
    device_id = re.search(r"device (\S+) for", created.output).group(1)
    assert lines()[-1] == ("create", "device", device_id)
    runner.invoke(args=["devices", "revoke", device_id])
    assert lines()[-1] == ("revoke", "device", device_id)
    assert all(e.actor.startswith("cli") for e in db.session.scalars(select(AuditEntry)))
    code = re.search(r": (\S+)$", runner.invoke(args=["devices", "code", "worker9"]).output.strip()).group(1)
    assert code.replace("-", "") not in str([(e.before, e.after, e.note) for e in db.session.scalars(select(AuditEntry))])

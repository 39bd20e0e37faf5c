"""Lost demo log-ins come back: `flask demo passwords` and `flask users reset-password NAME` (issue 21)."""

import re

import pytest

from server import accounts


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def test_demo_load_prints_the_log_ins_and_how_to_get_new_ones(runner, monkeypatch):
    monkeypatch.delenv("GRIDPATROL_DEMO_PASSWORD", raising=False)
    result = runner.invoke(args=["demo", "load"])
    assert result.exit_code == 0, result.output
    assert "supervisor1" in result.output and "flask --app server demo passwords" in result.output
    assert "users reset-password" in result.output


def test_demo_passwords_gives_every_demo_user_a_new_one(runner, demo, monkeypatch):
    monkeypatch.delenv("GRIDPATROL_DEMO_PASSWORD", raising=False)
    runner.invoke(args=["users", "create", "worker9", "--password", "mine"])
    result = runner.invoke(args=["demo", "passwords"])
    assert result.exit_code == 0, result.output
    printed = dict(re.findall(r"^  (\S+)\s+(\S+)$", result.output, re.M))
    assert set(printed) == {username for username, *_ in demo.PEOPLE}
    for username, password in printed.items():
        assert accounts.authenticate(username, password) is not None, username
    assert accounts.authenticate("supervisor1", "demo-pass") is None  # the old one is gone
    assert accounts.authenticate("worker9", "mine") is not None  # not a demo user: untouched


def test_demo_passwords_takes_the_fixed_one_and_says_when_there_is_no_demo(runner, app, monkeypatch):
    assert runner.invoke(args=["demo", "passwords"]).exit_code != 0
    from server.admin import demo

    demo.load(password="first")
    monkeypatch.setenv("GRIDPATROL_DEMO_PASSWORD", "fixed-pass")
    assert runner.invoke(args=["demo", "passwords"]).exit_code == 0
    assert accounts.authenticate("unit1", "fixed-pass") is not None


def test_reset_password_of_one_user(runner, demo):
    result = runner.invoke(args=["users", "reset-password", "unit1"])
    assert result.exit_code == 0, result.output
    password = re.search(r"new password (\S+)", result.output).group(1)
    assert accounts.authenticate("unit1", password) is not None
    assert runner.invoke(args=["users", "reset-password", "unit1", "--password", "chosen"]).exit_code == 0
    assert accounts.authenticate("unit1", "chosen") is not None
    assert runner.invoke(args=["users", "reset-password", "nobody"]).exit_code != 0

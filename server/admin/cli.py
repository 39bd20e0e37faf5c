"""Command-line administration: ``flask --app server <group> <command>``.

    flask --app server db upgrade                 create or migrate the store
    flask --app server demo load [--if-empty]     load the demo data set and print its log-ins
    flask --app server demo passwords             give the demo users new passwords and print them
    flask --app server users create NAME --role worker --grid G-0101 [--password ...]
    flask --app server users list
    flask --app server users reset-password NAME [--password ...]
    flask --app server grids create G-0401 --name ... --community ... --street ... --district ...
    flask --app server devices create USERNAME --name NAME | code USERNAME | list | revoke DEVICE_ID
    flask --app server privacy show | allow ROLE | deny ROLE    who sees resident ID numbers in full
"""

from __future__ import annotations

import getpass
import secrets

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import select

from shared.roles import ROLES

from .. import accounts, audit, privacy
from ..config import demo_password
from ..db import db
from ..errors import describe
from ..models import Device, User
from ..sync import apply
from . import demo

demo_cli = AppGroup("demo", help="The demo data set.")
users_cli = AppGroup("users", help="Users and their grids.")
grids_cli = AppGroup("grids", help="Grids (reference data).")
devices_cli = AppGroup("devices", help="Devices and their tokens.")
privacy_cli = AppGroup("privacy", help="Which roles see resident ID numbers in full (by default none).")


RESET_HINT = "flask --app server demo passwords"


def print_logins(logins: dict[str, str]) -> None:
    """Print the demo log-ins as a table, and how to get new ones."""
    click.echo("Demo log-ins (passwords are stored hashed and shown once; set GRIDPATROL_DEMO_PASSWORD for fixed ones):")
    for username, password in logins.items():
        click.echo(f"  {username:<12} {password}")
    click.echo(f"Lost them? `{RESET_HINT}` gives the demo users new passwords "
               "(`flask --app server users reset-password NAME` for one user).")


@demo_cli.command("load")
@click.option("--if-empty", is_flag=True, help="Do nothing when the store already holds data.")
def demo_load(if_empty: bool) -> None:
    """Load the demo district, its grids, categories, units, people, events and rental houses."""
    if not demo.is_empty():
        if if_empty:
            click.echo("The store already holds data; the demo was not loaded again.")
            return
        raise click.ClickException("the store is not empty; the demo loads only into an empty store")
    print_logins(demo.load(houses=True))


@demo_cli.command("passwords")
def demo_passwords() -> None:
    """Give every demo user a new password (GRIDPATROL_DEMO_PASSWORD's, else a random one) and print them.

    Passwords are stored hashed, so the ones printed at load cannot be shown again; this replaces them and ends
    the users' page sessions. Users who are not the demo's keep theirs.
    """
    password = demo_password()
    logins: dict[str, str] = {}
    for username, *_ in demo.PEOPLE:
        user = db.session.scalar(select(User).where(User.username == username))
        if user is None:
            continue
        logins[username] = password or secrets.token_urlsafe(9)
        accounts.set_password(user, logins[username])
    if not logins:
        raise click.ClickException("no demo user in this store; `flask --app server demo load` loads the demo")
    db.session.commit()
    print_logins(logins)


@users_cli.command("reset-password")
@click.argument("username")
@click.option("--password", help="Default: a random one, printed once.")
def users_reset_password(username, password) -> None:
    """Give a user a new password (printed when random) and end their page sessions."""
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        raise click.ClickException(f"no user {username!r}")
    secret = password or secrets.token_urlsafe(9)
    accounts.set_password(user, secret)
    audit.record("reset_password", "user", username, actor=cli_actor())
    db.session.commit()
    click.echo(f"{username}: new password" + ("" if password else f" {secret}"))


@users_cli.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), default="worker", show_default=True)
@click.option("--name", help="Display name (default: the user name).")
@click.option("--grid", "grids", multiple=True, help="A grid code; repeat for several.")
@click.option("--unit", help="The unit code of a unit user.")
@click.option("--password", help="Default: a random one, printed once.")
def users_create(username, role, name, grids, unit, password) -> None:
    """Create a user."""
    secret = password or secrets.token_urlsafe(9)
    try:
        accounts.create_user(username, secret, name=name, role=role, grids=list(grids), unit=unit)
    except accounts.AccountError as exc:
        raise click.ClickException(str(exc)) from None
    audit.record("create", "user", username, after={"role": role, "name": name or username, "grids": list(grids),
                                                    "unit": unit}, actor=cli_actor())
    db.session.commit()
    click.echo(f"created {role} {username}" + ("" if password else f" with password {secret}"))


@users_cli.command("list")
def users_list() -> None:
    """List users with their roles and grids."""
    for user in db.session.scalars(select(User).order_by(User.username)):
        click.echo(f"{user.username:<14} {user.role:<11} {','.join(user.grid_codes) or '-':<20} {user.name}")


@users_cli.command("grids")
@click.argument("username")
@click.argument("grids", nargs=-1)
def users_grids(username, grids) -> None:
    """Replace a user's grids (their devices pull a new grid from the start)."""
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        raise click.ClickException(f"no user {username!r}")
    before = sorted(user.grid_codes)
    accounts.assign_grids(user, list(grids), by=cli_actor())
    audit.record("assign_grids", "user", username, before={"grids": before}, after={"grids": sorted(set(grids))},
                 actor=cli_actor())
    db.session.commit()
    click.echo(f"{username}: {', '.join(grids) or 'no grids'}")


@grids_cli.command("create")
@click.argument("code")
@click.option("--name", required=True)
@click.option("--community", required=True)
@click.option("--street", required=True)
@click.option("--district", required=True)
@click.option("--type", "grid_type", default="base", show_default=True)
def grids_create(code, name, community, street, district, grid_type) -> None:
    """Create or update a grid."""
    from marshmallow import ValidationError

    try:
        change = apply.stamp("grid", demo.ref_id("grid", code), {
            "code": code, "name": name, "community": community, "street": street, "district": district,
            "type": grid_type})
    except ValidationError as exc:
        raise click.ClickException(describe(exc.messages)) from None
    result = apply.write_as_server([change])[0]
    if result.status == "applied":
        audit.record("edit", "grid", code, after=change.values, actor=cli_actor(), commit=True)
    click.echo(f"grid {code}: {result.status}")


@devices_cli.command("create")
@click.argument("username")
@click.option("--name", "device_name", required=True, help="What the tablet is called, e.g. 东湖一网格-平板2.")
@click.option("--node", help="The tablet's HLC node id (16 hex); random by default.")
def devices_create(username, device_name, node) -> None:
    """Register a device for a user and print its token once (for provisioning a tablet)."""
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        raise click.ClickException(f"no user {username!r}")
    node = node or secrets.token_hex(8)
    if len(node) != 16 or any(c not in "0123456789abcdef" for c in node):
        raise click.ClickException("--node must be 16 lowercase hex digits")
    device, token = accounts.register_device(user, device_name, node)
    audit.record("create", "device", device.id, after={"name": device_name, "user": username}, actor=cli_actor(),
                 commit=True)
    click.echo(f"device {device.id} for {username}; token (shown once): {token}")


@devices_cli.command("code")
@click.argument("username")
def devices_code(username) -> None:
    """Make a one-time code that provisions a tablet for the user (valid for minutes, shown once)."""
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        raise click.ClickException(f"no user {username!r}")
    try:
        row, code = accounts.issue_device_code(user, by=cli_actor())
    except accounts.AccountError as exc:
        raise click.ClickException(str(exc)) from None
    audit.record("provision_code", "device", None, after={"user": username, "expires_at": row.expires_at},
                 actor=cli_actor())
    db.session.commit()
    click.echo(f"code for {username} (once, for {accounts.DEVICE_CODE_MINUTES} minutes): {code}")


@devices_cli.command("list")
def devices_list() -> None:
    """List devices, their users, last contact, clock skew and whether they are revoked."""
    for device in db.session.scalars(select(Device).order_by(Device.created_at)):
        state = "revoked" if device.revoked_at else "active"
        skew = "-" if device.clock_skew_ms is None else f"{device.clock_skew_ms / 1000:+.1f}s"
        click.echo(f"{device.id}  {device.user.username:<12} {device.name:<20} {state:<8} skew {skew}  "
                   f"last seen {device.last_seen_at or '-'}")


@devices_cli.command("revoke")
@click.argument("device_id")
def devices_revoke(device_id) -> None:
    """Revoke a device's token: its next sync asks for a new log-in."""
    device = db.session.get(Device, device_id)
    if device is None:
        raise click.ClickException(f"no device {device_id!r}")
    if device.revoked_at is None:
        accounts.revoke_device(device)
        audit.record("revoke", "device", device.id, before={"revoked": False}, after={"revoked": True},
                     note=f"{device.name} ({device.user.username})", actor=cli_actor())
    db.session.commit()
    click.echo(f"revoked {device_id}")


def cli_actor() -> str:
    """Who acts from the command line, for the audit log: ``cli:<the operating system's user>``."""
    try:
        return "cli:" + getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        return "cli"


def _show_roles(roles) -> None:
    click.echo("roles that see ID numbers in full: " + (", ".join(sorted(roles)) or "none (all masked)"))


@privacy_cli.command("show")
def privacy_show() -> None:
    """Show which roles see ID numbers in full, and who changed that last."""
    _show_roles(privacy.allowed_roles())
    when, who = privacy.setting_changed()
    if when is not None:
        click.echo(f"last changed {when.isoformat(timespec='seconds')} by {who}")


@privacy_cli.command("allow")
@click.argument("role", type=click.Choice(ROLES))
def privacy_allow(role) -> None:
    """Let a role see ID numbers in full: on the pages, in the export and in its tablets' pulls."""
    _show_roles(_set_roles(privacy.allowed_roles() | {role}))


@privacy_cli.command("deny")
@click.argument("role", type=click.Choice(ROLES))
def privacy_deny(role) -> None:
    """Show a role masked ID numbers only (4401**********123X)."""
    _show_roles(_set_roles(privacy.allowed_roles() - {role}))


def _set_roles(roles):
    before = sorted(privacy.allowed_roles())
    after = privacy.set_allowed_roles(roles, by=cli_actor())
    if sorted(after) != before:
        audit.record("edit", "setting", privacy.SETTING, before={"roles": before}, after={"roles": sorted(after)},
                     actor=cli_actor(), commit=True)
    return after


def init_app(app: Flask) -> None:
    """Register the command groups."""
    for group in (demo_cli, users_cli, grids_cli, devices_cli, privacy_cli):
        app.cli.add_command(group)

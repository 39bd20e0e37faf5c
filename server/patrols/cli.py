"""``flask --app server patrols plan``: compute each grid's patrol plan and write it for the tablets.

Run it once a day (cron, after midnight): each grid's ``patrol_plan`` record is written over
(server/patrols/plan.py says the rule), and tablets pull it with their grid's next sync.
"""

from __future__ import annotations

import time
from datetime import datetime

import click
from flask import current_app
from flask.cli import AppGroup

from ..clock import server_clock
from ..config import parse_offset
from . import plan, service

patrols_cli = AppGroup("patrols", help="Patrols: the frequency plan.")


@patrols_cli.command("plan")
@click.option("--grid", "grids", multiple=True, help="Only this grid (a code; may be given more than once).")
def plan_command(grids: tuple[str, ...]) -> None:
    """Write each grid's suggested patrol hours, rounds, busy weekdays and fixed points most in need."""
    known = service.load_grids()
    unknown = sorted(set(grids) - set(known))
    if unknown:
        raise click.ClickException("no such grid: " + ", ".join(unknown))
    zone = parse_offset(current_app.config["GRIDPATROL_UTC_OFFSET"])
    now_ms = server_clock().physical_ms()
    started = time.perf_counter()
    written = plan.write_plans(grids or sorted(known), datetime.fromtimestamp(now_ms / 1000, zone).date(), zone,
                               now_ms)
    for code, found in sorted(written.items()):
        click.echo(f"{code}: {found.summary(english=False)}")
    click.echo(f"Wrote {len(written)} patrol plans in {time.perf_counter() - started:.1f} s.")

"""``flask --app server houses reindex``: rebuild the tenant search index (server/houses/index.py)."""

from __future__ import annotations

import time

import click
from flask.cli import AppGroup

from . import index

houses_cli = AppGroup("houses", help="Rental houses and tenants.")


@houses_cli.command("reindex")
def reindex() -> None:
    """Rebuild the tenant search index from the stored tenants (after a change of GRIDPATROL_ID_KEY, say)."""
    started = time.perf_counter()
    count = index.rebuild()
    click.echo(f"Indexed {count} tenant records in {time.perf_counter() - started:.1f} s.")

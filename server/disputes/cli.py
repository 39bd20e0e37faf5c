"""``flask --app server disputes rebuild``: fold every dispute again into the disputes table (server/disputes/book.py)."""

from __future__ import annotations

import time

import click
from flask.cli import AppGroup

from ..db import db
from . import book

disputes_cli = AppGroup("disputes", help="The store's disputes.")


@disputes_cli.command("rebuild")
@click.option("--chunk", default=2000, show_default=True, type=click.IntRange(1, 100_000),
              help="Disputes folded and written per step.")
def rebuild(chunk: int) -> None:
    """Fold every dispute again from the records into the disputes table (and drop rows of no dispute), in one
    transaction: after restoring records from a backup, or to check the table holds what the records say."""
    started = time.perf_counter()
    count = book.rebuild(db.session.connection(), chunk=chunk)
    db.session.commit()
    click.echo(f"Folded {count} disputes in {time.perf_counter() - started:.1f} s.")

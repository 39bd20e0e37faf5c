"""``flask --app server cases rebuild``: fold every case again into the cases table (server/sync/casebook.py)."""

from __future__ import annotations

import resource
import time

import click
from flask.cli import AppGroup

from shared.records import REF_BUCKET

from ..db import db
from ..models import Record
from ..sync import casebook, feed
from . import search

cases_cli = AppGroup("cases", help="The store's cases.")


@cases_cli.command("rebuild")
@click.option("--chunk", default=2000, show_default=True, type=click.IntRange(1, 100_000),
              help="Events folded and written per step; memory grows with it, not with the store.")
def rebuild(chunk: int) -> None:
    """Fold every event again from the records into the cases table (and drop rows of no event), count
    case_counts again and index the cases for keyword search again, in one transaction.

    The table is a cache of the fold: run this after restoring records from a backup, or to check
    that the table holds what the records say. It counts case_counts again at the end, so it runs as a
    writer of every bucket (server/sync/feed.py, as a change of reference data does): pushes wait for it.
    """
    total = db.session.scalar(db.select(db.func.count()).select_from(Record).where(Record.kind == "event"))
    started = time.perf_counter()
    with click.progressbar(length=total, label="Folding cases", show_pos=True) as bar:
        seen = [0]

        def progress(done: int) -> None:
            bar.update(done - seen[0])
            seen[0] = done

        feed.lock({REF_BUCKET})  # no push writes a case, or a count, while the counts are taken again
        count = casebook.rebuild(db.session.connection(), chunk=chunk, progress=progress)
        casebook.recount(db.session.connection())
    folded = time.perf_counter() - started
    connection = db.session.connection()
    if search.in_use(connection):
        indexed = search.rebuild(connection, feed.horizon())
        click.echo(f"Indexed {indexed} cases for keyword search in {time.perf_counter() - started - folded:.1f} s.")
    db.session.commit()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    click.echo(f"Folded {count} cases in {folded:.1f} s (peak memory {peak_mb:.0f} MB).")

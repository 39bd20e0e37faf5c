"""CSV for the spreadsheets a district office keeps: one way to write a cell, one way to stream a file.

UTF-8 with a byte-order mark, so spreadsheet programs read the Chinese right. A cell that a
spreadsheet would run as a formula (=, +, -, @, a tab or a carriage return first) gets a leading
apostrophe (CSV injection). `stream_csv` yields the file line by line, so an export of a million
rows keeps memory flat.
"""

from __future__ import annotations

import csv
import io
from typing import Any, Iterable, Iterator


def cell(value: Any) -> str:
    """A CSV cell; text a spreadsheet would run as a formula is quoted with a leading apostrophe."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def stream_csv(rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """The CSV text of the rows, a byte-order mark first, one line at a time."""
    out = io.StringIO()
    writer = csv.writer(out)
    yield "\ufeff"
    for row in rows:
        writer.writerow([cell(value) for value in row])
        yield out.getvalue()
        out.seek(0)
        out.truncate()

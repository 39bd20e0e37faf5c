"""Exports for the spreadsheets and maps a district office keeps: CSV, XLSX and GeoJSON, written one way each.

UTF-8 with a byte-order mark, so spreadsheet programs read the Chinese right. A cell that a
spreadsheet would run as a formula (=, +, -, @, a tab or a carriage return first) gets a leading
apostrophe (CSV injection). `stream_csv` yields the file line by line, so an export of a million
rows keeps memory flat; `xlsx_bytes` writes a workbook row by row through a temporary file, and
`stream_geojson` a FeatureCollection feature by feature.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
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


def xlsx_bytes(rows: Iterable[Iterable[Any]], sheet: str) -> bytes:
    """The rows as an XLSX workbook of one sheet; the first row is the heading.

    XlsxWriter's constant_memory mode writes each row out to a temporary file as it comes, so memory
    holds the finished (compressed) workbook, not the rows: about 60 bytes a row of the queue's export.
    """
    import xlsxwriter  # only exports need it

    with tempfile.TemporaryFile() as out:
        book = xlsxwriter.Workbook(out, {"constant_memory": True, "strings_to_formulas": False,
                                         "strings_to_urls": False, "in_memory": False})
        worksheet = book.add_worksheet(sheet[:31])
        bold = book.add_format({"bold": True})
        for number, row in enumerate(rows):
            for column, value in enumerate(row):
                if value is None:
                    continue
                if isinstance(value, bool):
                    worksheet.write_boolean(number, column, value)
                elif isinstance(value, (int, float)):
                    worksheet.write_number(number, column, value)
                else:
                    worksheet.write_string(number, column, str(value), bold if number == 0 else None)
        book.close()
        out.seek(0)
        return out.read()


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def stream_geojson(features: Iterable[dict[str, Any]]) -> Iterator[str]:
    """A GeoJSON FeatureCollection, one feature at a time."""
    yield '{"type": "FeatureCollection", "features": ['
    for number, feature in enumerate(features):
        yield ("," if number else "") + "\n" + json.dumps(feature, ensure_ascii=False)
    yield "\n]}\n"


def point(lon: float | None, lat: float | None, properties: dict[str, Any]) -> dict[str, Any]:
    """A GeoJSON Feature at a position (none where the position is unknown)."""
    geometry = None if lon is None or lat is None else {"type": "Point", "coordinates": [lon, lat]}
    return {"type": "Feature", "geometry": geometry, "properties": properties}

"""Exports of the queue and the statistics: CSV, XLSX and GeoJSON, within what the user may see, audited."""

from __future__ import annotations

import csv
import io
import json
import zipfile

from sqlalchemy import select

from server.db import db
from server.models import AuditEntry

from .conftest import event_in, log_in, new_event


def xlsx_text(data: bytes) -> str:
    """The workbook's cell strings and sheet XML, to look for values in."""
    with zipfile.ZipFile(io.BytesIO(data)) as book:
        return "".join(book.read(name).decode() for name in book.namelist()
                       if name.startswith("xl/worksheets/") or name == "xl/sharedStrings.xml")


def test_the_queue_exports_in_three_formats_with_its_filters(pages, app):
    mine = new_event(description="=HYPERLINK(\"http://evil\") 井盖")
    other = event_in("dispatched", unit="city_management")
    log_in(pages, "supervisor1")
    text = pages.get("/cases/export.csv?status=all").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0][0] == "案件编号" and len(rows) >= 3
    assert any(r[-4].startswith("'=HYPERLINK") for r in rows[1:])  # a formula is defused
    only_reported = pages.get("/cases/export.csv?status=reported").get_data(as_text=True)
    assert "井盖" in only_reported
    with pages.get("/cases/export.xlsx?status=all") as book:
        assert book.status_code == 200 and "井盖" in xlsx_text(book.data)
    collection = json.loads(pages.get("/cases/export.geojson?status=all").get_data(as_text=True))
    ids = {f["properties"]["id"] for f in collection["features"]}
    assert {mine, other} <= ids
    assert all(f["geometry"] is None or f["geometry"]["type"] == "Point" for f in collection["features"])
    db.session.rollback()
    assert {e.target for e in db.session.scalars(select(AuditEntry).where(AuditEntry.kind == "cases"))} == \
        {"csv", "xlsx", "geojson"}
    assert pages.get("/cases/export.pdf").status_code == 404


def test_a_unit_exports_only_its_own_cases(pages, app):
    own = event_in("dispatched", unit="fire")
    other = event_in("dispatched", unit="city_management")
    log_in(pages, "unit1")
    collection = json.loads(pages.get("/cases/export.geojson?status=all").get_data(as_text=True))
    ids = {f["properties"]["id"] for f in collection["features"]}
    assert own in ids and other not in ids


def test_the_statistics_table_exports_as_xlsx(pages, app):
    event_in("dispatched")
    log_in(pages, "supervisor1")
    with pages.get("/stats/table.xlsx?group=unit") as answer:
        assert answer.status_code == 200 and "合计" in xlsx_text(answer.data)
    assert pages.get("/stats/table.pdf").status_code == 404


def test_a_case_sheet_for_the_paper_file(pages, app):
    event_id = event_in("dispatched")
    log_in(pages, "supervisor1")
    sheet = pages.get(f"/cases/{event_id}/sheet").get_data(as_text=True)
    assert 'data-testid="case-sheet"' in sheet and "派遣" in sheet and "<form" not in sheet.split("</header>")[1]

"""The statistics pages and their JSON: the weekly table, drilling down, the assessment, exports, the API."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select

from server.db import db
from server.models import AuditEntry

from .conftest import add_action, event_in, log_in, new_event, recent_days


def test_the_dashboard_shows_the_weekly_table_by_street_and_drills_to_grids(pages, app):
    event_in("dispatched")
    new_event(urgent=True)
    log_in(pages, "supervisor1")
    recent = recent_days()
    page = pages.get(f"/stats?{recent}").get_data(as_text=True)
    assert 'data-testid="stats-table"' in page and "受理" in page and "按期结案" in page
    assert "东湖街道" in page and "/stats?street=" in page  # a street's row links to its communities
    street = pages.get(f"/stats?street=东湖街道&{recent}").get_data(as_text=True)
    assert "东湖社区" in street and "community=" in street
    grids = pages.get(f"/stats?street=东湖街道&community=东湖社区&{recent}").get_data(as_text=True)
    assert "东湖一网格" in grids
    for group in ("unit", "category", "reporter"):
        assert pages.get(f"/stats?group={group}&{recent}").status_code == 200
    assert 'data-testid="rhythm"' in page and "<svg" in page


@pytest.mark.parametrize("query", ["from=2026-13-01", "from=x&to=y", "from=2026-12-10&to=2026-12-01"])
def test_a_bad_period_is_400_on_the_pages(pages, query):
    log_in(pages, "supervisor1")
    assert pages.get(f"/stats?{query}").status_code == 400


def test_the_table_exports_as_csv_and_the_export_is_audited(pages, app):
    event_in("dispatched")
    log_in(pages, "supervisor1")
    answer = pages.get(f"/stats/table.csv?group=grid&{recent_days()}")
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    text = answer.get_data(as_text=True)
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text[1:])))
    assert rows[0][0] == "网格" and rows[-1][0] == "合计"
    assert int(rows[-1][1]) >= 1  # received
    db.session.rollback()
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.kind == "statistics")).one()
    assert (entry.action, entry.actor, entry.target) == ("export", "supervisor1", "grid.csv")


def test_the_assessment_lists_the_cases_that_failed_four_times(pages, app):
    event_id = event_in("dispatched")
    for n in range(4):
        add_action(event_id, "rectify", "unit1")
        add_action(event_id, "verify_fail", "worker1")
    log_in(pages, "supervisor1")
    page = pages.get("/stats/assessment").get_data(as_text=True)
    assert f'data-case="{event_id}"' in page
    assert pages.get("/stats/assessment?month=2026-13").status_code == 400


def test_the_json_answers_the_figures_and_refuses_bad_input(pages, app):
    event_in("dispatched")
    assert pages.get("/api/v1/stats/cases").status_code == 401
    log_in(pages, "supervisor1")
    body = pages.get(f"/api/v1/stats/cases?group=grid&{recent_days()}").get_json()
    assert set(body) == {"from", "to", "group", "rows", "total"} and body["group"] == "grid"
    row = body["rows"][0]
    assert set(row) == {"key", "name", "reported", "dispatched", "due", "closed", "closed_on_time", "reworked",
                        "extended", "supervised", "overdue_open", "closure_rate", "on_time_rate", "rework_rate",
                        "extension_rate"}
    assert body["total"]["reported"] == sum(r["reported"] for r in body["rows"])
    for query in ("group=planet", "from=2026-02-30", "from=2026-12-10&to=2026-12-01", "limit=5", "to=", "from="):
        answer = pages.get(f"/api/v1/stats/cases?{query}")
        assert answer.status_code == 400 and answer.get_json()["error"]["code"] == "invalid", query


def test_the_json_takes_a_device_token_and_only_for_roles_with_the_figures(client, demo):
    for username, status in (("supervisor1", 200), ("worker1", 403)):
        token = client.post("/api/v1/auth/device", json={"username": username, "password": "demo-pass",
                                                          "device_name": "t", "node": "0123456789abcdef"}
                            ).get_json()["token"]
        assert client.get("/api/v1/stats/cases", headers={"Authorization": f"Bearer {token}"}).status_code == status

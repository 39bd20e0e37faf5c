"""Locations that do not lie (issue 13): the case page says where a position came from, and why there is none."""

from __future__ import annotations

import secrets

from server.clock import server_clock
from server.sync import apply
from shared.hlc import format_ms
from shared.records import uuid7

from .conftest import csrf_token, log_in, user


def event_with(location=None, **values) -> str:
    now = server_clock().physical_ms()
    event_id = uuid7(now, secrets.token_bytes(10))
    fields = {"grid": "G-0101", "category": "garbage", "description": "测试位置", "reporter": user("worker1").id,
              "reported_at": format_ms(now - 60_000), **values}
    if location is not None:
        fields["location"] = location
    apply.write_as_server([apply.stamp("event", event_id, fields)])
    return event_id, now


def source_line(page: str) -> str:
    """The case page's line under the map, its blanks collapsed."""
    line = page.split('data-testid="location-source">')[1].split("<br>")[0].split("</p>")[0]
    return " ".join(line.split())


def test_the_case_page_says_the_source_accuracy_and_age_of_a_position(pages):
    log_in(pages, "supervisor1")
    pages.post("/language", data={"lang": "en", "csrf_token": csrf_token(pages)})
    gps, _ = event_with({"lat": 22.5431, "lon": 114.0579, "accuracy_m": 6.0, "source": "gps"})
    page = pages.get(f"/cases/{gps}").get_data(as_text=True)
    assert source_line(page).endswith("±6 m · GPS")
    now = server_clock().physical_ms()
    last, _ = event_with({"lat": 22.5431, "lon": 114.0579, "accuracy_m": 12.0, "source": "last_known",
                          "fix_at": format_ms(now - 60_000 - 8 * 60_000)})
    page = pages.get(f"/cases/{last}").get_data(as_text=True)
    assert source_line(page).endswith("±12 m · last known position (8 min before the report)")
    typed, _ = event_with({"lat": 22.5431, "lon": 114.0579, "accuracy_m": None, "source": "manual"})
    page = pages.get(f"/cases/{typed}").get_data(as_text=True)
    assert source_line(page).endswith("· typed by hand")


def test_the_case_page_shows_the_workers_reason_for_no_position(pages):
    log_in(pages, "supervisor1")
    event_id, _ = event_with(no_location_reason="indoors")
    page = pages.get(f"/cases/{event_id}").get_data(as_text=True)
    assert 'data-testid="no-location"' in page and "室内" in page

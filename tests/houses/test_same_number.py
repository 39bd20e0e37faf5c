"""A tenant whose ID number is already registered (issue 13): flagged on the house page, both records kept."""

from __future__ import annotations

import secrets

from server.clock import server_clock
from shared.records import uuid7

from .conftest import Tablet, demo_id_numbers, house_by_address, log_in


def test_the_house_page_flags_a_number_registered_at_another_house_and_the_sync_keeps_both(pages):
    number = demo_id_numbers()[0]  # 周磊's, registered at 东湖村12号
    other = house_by_address("东湖村18号")
    tablet = Tablet(pages, "worker1")
    tenant_id = uuid7(server_clock().physical_ms(), secrets.token_bytes(10))
    hlc = tablet.hlc()
    pushed = tablet.push({"kind": "tenant", "id": tenant_id, "bucket": other.bucket, "fields": {
        "house": [other.id, hlc], "name": ["周磊", hlc], "id_number": [number, hlc]}})
    assert pushed[0]["status"] == "applied"  # a duplicate is flagged, never refused
    log_in(pages, "supervisor1")
    page = pages.get(f"/houses/{other.id}").get_data(as_text=True)
    flag = page.split('data-testid="same-number"')[1].split("</tr>")[0]
    assert "东湖村12号" in flag and "周磊" in flag
    first = house_by_address("东湖村12号")
    page = pages.get(f"/houses/{first.id}").get_data(as_text=True)
    assert page.count('data-testid="same-number"') == 1 and "东湖村18号" in page
    assert number not in page  # found by the index's digests: no number is shown to a role that may not see it

"""The registration rate of temporary residents: the rule as a table, and the page that states it (both engines).

A house's rate is its residents registered (tenants not moved out) over the
residents seen at its last check, registered counted at most up to seen; a
house whose last check counted nobody is not counted; groups add up their
counted houses.
"""

from __future__ import annotations

import secrets

import pytest

from server.sync import apply
from server.clock import server_clock
from shared.houses import below_goal, combined_rate, registration_rate
from shared.hlc import format_ms
from shared.records import uuid7

from .conftest import house_by_address, log_in, user


@pytest.mark.parametrize("registered, seen, rate, below", [
    (19, 20, 0.95, False),      # exactly the goal
    (18, 20, 0.90, True),
    (20, 20, 1.0, False),
    (25, 20, 1.0, False),       # more on file than met: capped, not above 100 %
    (0, 3, 0.0, True),
    (0, 0, None, False),        # nobody met: not counted
    (4, 0, None, False),
    (4, None, None, False),     # the last check did not count residents, or there was none
])
def test_the_rate_of_a_house(registered, seen, rate, below):
    assert registration_rate(registered, seen) == (pytest.approx(rate) if rate is not None else None)
    assert below_goal(registration_rate(registered, seen)) is below


@pytest.mark.parametrize("houses, registered, seen, rate", [
    ([(19, 20), (20, 20)], 39, 40, 39 / 40),
    ([(30, 20), (0, 10)], 20, 30, 20 / 30),      # a house's surplus does not make up for another's gap
    ([(5, None), (3, 4)], 3, 4, 0.75),           # not counted houses are left out
    ([(5, None), (1, 0)], 0, 0, None),           # nothing counted: no rate
    ([], 0, 0, None),
])
def test_the_rate_of_a_group_of_houses(houses, registered, seen, rate):
    got = combined_rate(houses)
    assert got[:2] == (registered, seen)
    assert got[2] == (pytest.approx(rate) if rate is not None else None)


def test_the_demo_rates_on_the_page_with_the_definition_and_the_houses_below_goal(pages):
    log_in(pages, "supervisor1")
    page = pages.get("/houses/registration").get_data(as_text=True)
    assert "已登记住户（未迁出的暂住人员）÷ 最近一次检查见到的住户" in page  # the definition, stated
    # 东湖村12号: 6 current tenants (one moved out) of 9 seen; 东湖村18号: 4 of 4; 东湖新村3栋: 2 of 2.
    assert 'data-key="G-0101"' in page and "66.7 %" in page
    by_street = page.split('data-testid="by-street"')[1].split("</table>")[0]
    assert 'data-key="东湖街道"' in by_street and "/houses?street=" in by_street
    below = page.split('data-testid="below-goal"')[1]
    assert "东湖村12号" in below and "东湖村18号" not in below
    assert "青石村9号" in page.split('data-testid="uncounted"')[1]  # never checked


def test_a_later_check_and_a_move_out_change_the_rate(pages):
    house = house_by_address("东湖村18号")
    now = server_clock().physical_ms()
    apply.write_as_server([apply.stamp("house_check", uuid7(now, secrets.token_bytes(10)), {
        "house": house.id, "worker": user("worker1").id, "checked_at": format_ms(now), "checklist": "rental_house",
        "checklist_version": 1, "answers": [{"item": "extinguisher", "result": "pass"}], "residents_seen": 5},
        bucket=house.bucket)])
    log_in(pages, "supervisor1")
    page = pages.get(f"/houses/{house.id}").get_data(as_text=True)
    assert "已登记 4 人，最近一次检查见到 5 人" in page and "80.0 %" in page

"""Every house page against every role (both engines): supervisors and admins see them, workers and units get 403.

Units act on the cases dispatched to them, not on residents' registers, so the
house pages are closed to them like to workers (who use the tablet). Only an
admin changes who sees ID numbers.
"""

from __future__ import annotations

import pytest

from .conftest import csrf_token, house_by_address, log_in

ROLES = ["anonymous", "worker1", "supervisor1", "admin", "unit1"]
PAGES = {"supervisor1": 200, "admin": 200}
ROWS = [  # name, method, path, {role: status}; unnamed roles: anonymous 302, others 403
    ("house list", "GET", "/houses", PAGES),
    ("house list, filtered", "GET", "/houses?grid=G-0101&community=东湖社区&street=东湖街道&hazards=1&below_goal=1",
     PAGES),
    ("a house", "GET", "/houses/{house}", PAGES),
    ("no such house", "GET", "/houses/01936f0e-0000-7000-8000-000000000000", {"supervisor1": 404, "admin": 404}),
    ("not a house id", "GET", "/houses/nope", {"supervisor1": 404, "admin": 404}),
    ("a photo not held", "GET", "/houses/{house}/photos/" + "ab" * 32, {"supervisor1": 404, "admin": 404}),
    ("tenants", "GET", "/houses/tenants?all=1", PAGES),
    ("tenant export", "GET", "/houses/tenants.csv", PAGES),
    ("tenant export, XLSX", "GET", "/houses/tenants.xlsx", PAGES),
    ("house export", "GET", "/houses/export.geojson", PAGES),
    ("registration rate", "GET", "/houses/registration", PAGES),
    ("ID-number setting", "GET", "/admin/privacy", {"admin": 200}),
    ("change the setting", "POST", "/admin/privacy", {"admin": 303}),
]


@pytest.mark.parametrize("role", ROLES)
def test_every_house_page_answers_each_role_as_the_table_says(pages, role):
    house = house_by_address("东湖村12号").id
    if role != "anonymous":
        log_in(pages, role)
    mismatches = []
    for name, method, path, statuses in ROWS:
        url = path.format(house=house)
        if method == "GET":
            answer = pages.get(url)
        else:
            answer = pages.post(url, data={"csrf_token": csrf_token(pages), "roles": ["admin"]})
        want = statuses.get(role, 302 if role == "anonymous" else 403)
        if answer.status_code != want:
            mismatches.append(f"{name}: {method} {url} as {role} -> {answer.status_code} (wanted {want})")
    assert not mismatches, "\n".join(mismatches)


def test_the_setting_refuses_a_post_without_a_csrf_token(pages):
    log_in(pages, "admin")
    assert pages.post("/admin/privacy", data={"roles": ["admin"]}).status_code == 400


@pytest.mark.parametrize("role, links", [("supervisor1", 3), ("admin", 4), ("unit1", 0)])
def test_the_navigation_links_the_pages_a_role_may_use(pages, role, links):
    log_in(pages, role)
    page = pages.get("/cases").get_data(as_text=True)
    found = sum(href in page for href in ('href="/houses"', 'href="/houses/tenants"', 'href="/houses/registration"',
                                          'href="/admin/"'))  # the admin area, which holds /admin/privacy
    assert found == links

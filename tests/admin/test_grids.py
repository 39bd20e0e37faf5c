"""Grid boundaries on the admin pages: checked as polygons, inside the district's outline when one is set (both engines)."""

from __future__ import annotations

import json

from server.admin import service

from .conftest import audit_lines, csrf_token, log_in


def square(lon, lat, size=0.004):
    return {"type": "Polygon", "coordinates": [[[lon, lat], [lon + size, lat], [lon + size, lat + size],
                                                [lon, lat + size], [lon, lat]]]}


DISTRICT = square(114.04, 22.53, 0.04)
INSIDE = square(114.055, 22.54)
ACROSS = square(114.078, 22.54)  # reaches past the district's east edge (114.08)
BOW_TIE = {"type": "Polygon", "coordinates": [[[114.05, 22.54], [114.06, 22.55], [114.06, 22.54], [114.05, 22.55],
                                               [114.05, 22.54]]]}


def save_grid(pages, boundary: str, code="G-0101"):
    data = {"csrf_token": csrf_token(pages), "code": code, "name": "东湖一网格", "name_en": "", "type": "base",
            "district": "示范区", "street": "东湖街道", "community": "东湖社区", "boundary": boundary}
    return pages.post(f"/admin/grids/?code={code}", data=data)


def stored_boundary(code="G-0101"):
    return service.find_reference("grid", code).field_values.get("boundary")


def test_a_boundary_is_saved_refused_when_not_simple_and_removed_when_emptied(pages):
    log_in(pages, "admin")
    assert save_grid(pages, json.dumps(INSIDE)).status_code == 303
    assert stored_boundary() == INSIDE
    refused = save_grid(pages, json.dumps(BOW_TIE))
    assert refused.status_code == 400 and stored_boundary() == INSIDE
    assert "simple" in refused.get_data(as_text=True)
    page = pages.get("/admin/grids/?code=G-0101").get_data(as_text=True)
    assert 'data-testid="grid-map"' in page and "grid-draw.js" in page
    assert save_grid(pages, "").status_code == 303 and stored_boundary() is None


def test_with_a_district_outline_a_grid_must_lie_inside_it(pages):
    log_in(pages, "admin")
    answer = pages.post("/admin/grids/district/", data={"csrf_token": csrf_token(pages),
                                                        "outline": json.dumps(DISTRICT)})
    assert answer.status_code == 303 and service.district_outline() == DISTRICT
    assert [line.target for line in audit_lines(action="edit", kind="setting")] == ["district_boundary"]
    refused = save_grid(pages, json.dumps(ACROSS))
    assert "outside the district" in refused.get_data(as_text=True) and stored_boundary() is None
    assert save_grid(pages, json.dumps(INSIDE)).status_code == 303 and stored_boundary() == INSIDE
    # The map shows the district and the grid's neighbours (G-0102 given a boundary here).
    assert save_grid(pages, json.dumps(square(114.06, 22.54)), code="G-0102").status_code == 303
    page = pages.get("/admin/grids/?code=G-0101").get_data(as_text=True)
    data = json.loads(page.split('id="grid-map-data" type="application/json">')[1].split("</script>")[0])
    assert data["district"] == DISTRICT and [g["code"] for g in data["others"]] == ["G-0102"]
    pages.post("/admin/grids/district/", data={"csrf_token": csrf_token(pages), "outline": ""})
    assert service.district_outline() is None
    assert save_grid(pages, json.dumps(ACROSS)).status_code == 303  # no outline: nothing to be inside of


def test_a_bad_district_outline_is_refused_with_the_reason_and_nothing_changes(pages):
    log_in(pages, "admin")
    answer = pages.post("/admin/grids/district/", data={"csrf_token": csrf_token(pages), "outline": "{not json"},
                        follow_redirects=True)
    assert "not GeoJSON" in answer.get_data(as_text=True) and service.district_outline() is None
    assert pages.post("/admin/grids/district/", data={"outline": json.dumps(DISTRICT)}).status_code in (303, 400)
    assert service.district_outline() is None  # no CSRF token, no change


def map_data(pages, code="G-0101"):
    page = pages.get(f"/admin/grids/?code={code}").get_data(as_text=True)
    return json.loads(page.split('id="grid-map-data" type="application/json">')[1].split("</script>")[0])


def test_the_map_is_centred_on_the_grids_cases_only_when_no_outline_is_there_to_fit(pages):
    from sqlalchemy import func, select

    from server.db import db
    from server.models import CaseRow

    log_in(pages, "admin")
    data = map_data(pages)  # the demo draws no outline: the map looks at the grid's cases
    lat, lon = db.session.execute(select(func.avg(CaseRow.lat), func.avg(CaseRow.lon)).where(
        CaseRow.grid == "G-0101", CaseRow.lat.is_not(None))).one()
    assert lat is not None and (data["lat"], data["lon"]) == (float(lat), float(lon))
    # With an outline to fit (its own here), grid-draw.js never reads the centre, and the page reads no case for it.
    assert save_grid(pages, json.dumps(INSIDE)).status_code == 303
    assert (map_data(pages)["lat"], map_data(pages)["lon"]) == (0.0, 0.0)

"""The admin page of place types: admins set each type's checklist and the days between checks per grade."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from server.db import db
from server.models import AuditEntry, Record
from server.places.admin import intervals_text, parse_intervals
from server.admin.service import AdminError

from .conftest import csrf_token, log_in


def place_type(code: str) -> dict | None:
    db.session.rollback()
    for record in db.session.scalars(select(Record).where(Record.kind == "place_type")):
        if record.field_values.get("code") == code:
            return record.field_values
    return None


def post(pages, url, **data):
    return pages.post(url, data={"csrf_token": csrf_token(pages), **data})


@pytest.mark.parametrize("text, parsed", [
    ("A=30, B=90, C=180", {"A": 30, "B": 90, "C": 180}), ("A：30；B：60", {"A": 30, "B": 60}),
    ("甲=30", None), ("A=0", None), ("A=3661", None), ("A", None), ("", {}), ("A=30,\nB = 45", {"A": 30, "B": 45}),
])
def test_intervals_are_read_as_grade_equals_days(text, parsed):
    if parsed is None:
        with pytest.raises(AdminError):
            parse_intervals(text)
    else:
        assert parse_intervals(text) == parsed
        assert parse_intervals(intervals_text(parsed)) == parsed


def test_an_admin_adds_and_edits_a_place_type_and_it_is_audited(pages):
    log_in(pages, "admin")
    page = pages.get("/admin/place-types/")
    assert page.status_code == 200 and "场所类型" in page.get_data(as_text=True)
    answer = post(pages, "/admin/place-types/", code="warehouse", name="仓库", name_en="Warehouse",
                  checklist="rental_house", check_every_days="A=20, B=40")
    assert answer.status_code == 303, answer.get_data(as_text=True)[:2000]
    assert place_type("warehouse") == {"code": "warehouse", "name": "仓库", "name_en": "Warehouse",
                                       "checklist": "rental_house", "check_every_days": {"A": 20, "B": 40}}
    assert "A=20, B=40" in pages.get("/admin/place-types/").get_data(as_text=True)
    assert 'value="A=20, B=40"' in pages.get("/admin/place-types/?code=warehouse").get_data(as_text=True)
    post(pages, "/admin/place-types/?code=warehouse", code="warehouse", name="仓库", checklist="rental_house",
         check_every_days="A=10")
    assert place_type("warehouse")["check_every_days"] == {"A": 10}
    db.session.rollback()
    lines = db.session.scalars(select(AuditEntry).where(AuditEntry.kind == "place_type")).all()
    assert [line.action for line in lines] == ["create", "edit"]


def test_bad_intervals_are_refused_with_a_reason_and_nothing_is_written(pages):
    log_in(pages, "admin")
    answer = post(pages, "/admin/place-types/", code="warehouse", name="仓库", check_every_days="A=thirty")
    assert answer.status_code == 400 and "A=thirty" in answer.get_data(as_text=True)
    assert place_type("warehouse") is None


@pytest.mark.parametrize("username", ["supervisor1", "worker1", "unit1"])
def test_only_admins_manage_place_types(pages, username):
    log_in(pages, username)
    assert pages.get("/admin/place-types/").status_code == 403
    assert post(pages, "/admin/place-types/", code="warehouse", name="仓库").status_code == 403
    assert place_type("warehouse") is None

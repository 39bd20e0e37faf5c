"""Every admin route against every role (both engines): only admins pass; anonymous visitors are sent to log in,
everyone else gets 403. The table must name every route under /admin (a new route without a row fails).
"""

from __future__ import annotations

import re

import pytest

from .conftest import csrf_token, log_in, user

ROLES = ["anonymous", "worker1", "supervisor1", "unit1", "admin"]
PASSWORD = "a-new-password-1"

# name, method, path, form, admin's status (every other role: anonymous 302, others 403)
ROWS = [
    ("overview", "GET", "/admin/", None, 200),
    ("privacy", "GET", "/admin/privacy", None, 200),
    ("privacy, save", "POST", "/admin/privacy", {"roles": "supervisor"}, 303),
    ("users", "GET", "/admin/users/", None, 200),
    ("users, filtered", "GET", "/admin/users/?flt0_0=worker&search=w", None, 200),
    ("new user form", "GET", "/admin/users/new/", None, 200),
    ("new user", "POST", "/admin/users/new/", {"username": "worker9", "name": "赵敏", "role": "worker",
                                               "unit": "", "grid_codes": "G-0102", "password": PASSWORD}, 302),
    ("edit user form", "GET", "/admin/users/edit/?id={worker2}", None, 200),
    ("edit user", "POST", "/admin/users/edit/?id={worker2}", {"name": "李娜", "role": "worker", "unit": "",
                                                             "grid_codes": "G-0102"}, 302),
    ("reset password", "POST", "/admin/users/password/?id={worker2}", {"password": PASSWORD}, 303),
    ("deactivate", "POST", "/admin/users/deactivate/", {"id": "{worker3}"}, 303),
    ("reactivate", "POST", "/admin/users/reactivate/", {"id": "{worker3}"}, 303),
    ("users, details (off)", "GET", "/admin/users/details/?id={worker2}", None, 302),
    ("users, delete (off)", "POST", "/admin/users/delete/", {"id": "{worker2}"}, 302),
    ("users, action (none)", "POST", "/admin/users/action/", {"action": "delete", "rowid": "{worker2}"}, 302),
    ("users, export (off)", "GET", "/admin/users/export/csv/", None, 302),
    ("users, ajax lookup", "GET", "/admin/users/ajax/lookup/?name=x&query=y", None, 404),
    ("users, ajax update", "POST", "/admin/users/ajax/update/", {"list_form_pk": "{worker2}", "name": "x"}, 404),
    ("devices", "GET", "/admin/devices/", None, 200),
    ("revoke", "POST", "/admin/devices/revoke/", {"id": "{device}"}, 303),
    ("provision, form", "GET", "/admin/devices/provision/", None, 200),
    ("provision, a code", "POST", "/admin/devices/provision/", {"user": "{worker2}"}, 200),
    ("devices, new (off)", "GET", "/admin/devices/new/", None, 302),
    ("devices, edit (off)", "GET", "/admin/devices/edit/?id={device}", None, 302),
    ("devices, details (off)", "GET", "/admin/devices/details/?id={device}", None, 302),
    ("devices, delete (off)", "POST", "/admin/devices/delete/", {"id": "{device}"}, 302),
    ("devices, action (none)", "POST", "/admin/devices/action/", {"action": "delete", "rowid": "{device}"}, 302),
    ("devices, export (off)", "GET", "/admin/devices/export/csv/", None, 302),
    ("devices, ajax lookup", "GET", "/admin/devices/ajax/lookup/?name=x&query=y", None, 404),
    ("devices, ajax update", "POST", "/admin/devices/ajax/update/", {"list_form_pk": "{device}"}, 404),
    ("grids", "GET", "/admin/grids/", None, 200),
    ("grid form", "GET", "/admin/grids/?code=G-0101", None, 200),
    ("new grid", "POST", "/admin/grids/", {"code": "G-0401", "name": "南岭一网格", "type": "police", "district": "示范区",
                                         "street": "南岭街道", "community": "南岭社区"}, 303),
    ("delete grid", "POST", "/admin/grids/delete/", {"id": "G-0302"}, 303),
    ("district outline", "POST", "/admin/grids/district/", {"outline": ""}, 303),
    ("categories", "GET", "/admin/categories/", None, 200),
    ("new category", "POST", "/admin/categories/", {"code": "gas_leak", "name": "燃气泄漏", "default_unit": "fire",
                                                  "deadline_hours": "24", "urgent_deadline_hours": "2",
                                                  "duplicate_radius_m": "50"}, 303),
    ("delete category", "POST", "/admin/categories/delete/", {"id": "posters"}, 303),
    ("units", "GET", "/admin/units/", None, 200),
    ("new unit", "POST", "/admin/units/", {"code": "water", "name": "水务"}, 303),
    ("delete unit", "POST", "/admin/units/delete/", {"id": "traffic"}, 303),
    ("checklists", "GET", "/admin/checklists/", None, 200),
    ("new checklist version", "POST", "/admin/checklists/?code=rental_house",
     {"code": "rental_house", "name": "出租屋安全检查", "items": "extinguisher | 配备有效灭火器\ngas | 燃气管道完好"}, 303),
    ("dispute kinds", "GET", "/admin/dispute-kinds/", None, 200),
    ("new dispute kind", "POST", "/admin/dispute-kinds/", {"code": "land", "name": "土地纠纷", "take_up_hours": "48"}, 303),
    ("delete dispute kind", "POST", "/admin/dispute-kinds/delete/", {"id": "land"}, 303),
    ("place types", "GET", "/admin/place-types/", None, 200),
    ("new place type", "POST", "/admin/place-types/", {"code": "warehouse", "name": "仓库", "check_every_days": "A=30"},
     303),
    ("delete place type", "POST", "/admin/place-types/delete/", {"id": "warehouse"}, 303),
    ("audit log", "GET", "/admin/audit/", None, 200),
    ("audit log, filtered", "GET", "/admin/audit/?flt0_0=admin&search=x", None, 200),
    ("audit export", "GET", "/admin/audit/export/csv/", None, 200),
    ("audit, new (off)", "GET", "/admin/audit/new/", None, 302),
    ("audit, edit (off)", "POST", "/admin/audit/edit/?id=1", {"action": "x"}, 302),
    ("audit, details (off)", "GET", "/admin/audit/details/?id=1", None, 302),
    ("audit, delete (off)", "POST", "/admin/audit/delete/", {"id": "1"}, 302),
    ("audit, action (none)", "POST", "/admin/audit/action/", {"action": "delete", "rowid": "1"}, 302),
    ("audit, ajax lookup", "GET", "/admin/audit/ajax/lookup/?name=x&query=y", None, 404),
    ("audit, ajax update", "POST", "/admin/audit/ajax/update/", {"list_form_pk": "1", "action": "x"}, 404),
    ("Flask-Admin's files", "GET", "/admin/static/vendor/jquery.min.js", None, 200),
    ("the admin style sheet", "GET", "/admin/assets/admin.css", None, 200),
]
PUBLIC = {"Flask-Admin's files", "the admin style sheet"}  # static files: the same for every role


def _setup(pages) -> dict[str, str]:
    from server import accounts

    device, _token = accounts.register_device(user("worker1"), "平板", "00000000000000aa")
    return {"worker2": user("worker2").id, "worker3": user("worker3").id, "device": device.id}


def expected(name: str, admin_status: int, role: str) -> int:
    if name in PUBLIC or role == "admin":
        return admin_status
    return 302 if role == "anonymous" else 403


@pytest.mark.parametrize("role", ROLES)
def test_every_admin_route_answers_each_role_as_the_table_says(pages, role):
    ids = _setup(pages)
    if role != "anonymous":
        log_in(pages, role)
    mismatches = []
    for name, method, path, form, admin_status in ROWS:
        url = path.format(**ids)
        if method == "GET":
            answer = pages.get(url)
        else:
            data = {k: v.format(**ids) for k, v in (form or {}).items()}
            answer = pages.post(url, data={"csrf_token": csrf_token(pages), **data})
        answer.close()
        want = expected(name, admin_status, role)
        if role == "anonymous" and want == 302 and "/login" not in (answer.location or ""):
            mismatches.append(f"{name}: anonymous was not sent to log in ({answer.location})")
        if answer.status_code != want:
            mismatches.append(f"{name}: {method} {url} as {role} -> {answer.status_code} (wanted {want})")
    assert not mismatches, "\n".join(mismatches)


def test_the_table_names_every_admin_route(app):
    rules = {rule.rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/admin")}
    covered = set()
    for _name, _method, path, _form, _status in ROWS:
        bare = path.split("?")[0]
        for rule in rules:
            pattern = "^" + re.sub(r"<[^>]+>", "[^?]+", rule) + "$"
            if re.match(pattern, bare):
                covered.add(rule)
    assert rules - covered == set()


@pytest.mark.parametrize("path, form", [
    ("/admin/users/new/", {"username": "worker9", "name": "x", "role": "worker", "password": PASSWORD}),
    ("/admin/categories/", {"code": "gas_leak", "name": "燃气泄漏", "deadline_hours": "24", "duplicate_radius_m": "5"}),
    ("/admin/devices/revoke/", {"id": "x"}),
    ("/admin/privacy", {"roles": "supervisor"}),
])
def test_an_admin_post_without_a_csrf_token_is_refused(pages, path, form):
    from .conftest import audit_count

    log_in(pages, "admin")
    before = audit_count()
    assert pages.post(path, data=form).status_code == 400
    assert audit_count() == before

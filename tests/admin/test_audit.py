"""The audit log is complete for each kind of action, and nothing can change it (both engines).

Each row does one thing through the pages as the admin (or a supervisor allowed to see ID numbers)
and names the audit line it must leave: action, kind, target and what before/after must hold.
Then every route of the audit view is tried as the admin, and the log must be unchanged; an
UPDATE or DELETE straight to the table is refused by the migration's trigger.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from server.db import db

from .conftest import audit_count, audit_lines, csrf_token, log_in, user

PASSWORD = "a-new-password-1"


def _post(pages, url, **form):
    answer = pages.post(url, data={"csrf_token": csrf_token(pages), **form})
    assert answer.status_code in (302, 303), answer.get_data(as_text=True)[:800]


def _device():
    from server import accounts

    return accounts.register_device(user("worker1"), "平板", "00000000000000ab")[0].id


# name, what to do (pages, ids), the line it leaves: (action, kind, target), checks on before/after
CASES = [
    ("create user", lambda p, ids: _post(p, "/admin/users/new/", username="worker9", name="赵敏", role="worker",
                                         unit="", grid_codes="G-0102", password=PASSWORD),
     ("create", "user", "worker9"), lambda b, a: b is None and a["grids"] == ["G-0102"] and "password" not in a),
    ("edit user", lambda p, ids: _post(p, f"/admin/users/edit/?id={ids['worker2']}", name="李娜娜", role="worker",
                                       unit="", grid_codes="G-0102"),
     ("edit", "user", "worker2"),
     lambda b, a: b == {"name": "李娜", "grids": ["G-0101"]} and a == {"name": "李娜娜", "grids": ["G-0102"]}),
    ("deactivate", lambda p, ids: _post(p, "/admin/users/deactivate/", id=ids["worker3"]),
     ("deactivate", "user", "worker3"), lambda b, a: b == {"active": True} and a == {"active": False}),
    ("reset password", lambda p, ids: _post(p, f"/admin/users/password/?id={ids['worker2']}", password=PASSWORD),
     ("reset_password", "user", "worker2"), lambda b, a: b is None and a is None),
    ("revoke device", lambda p, ids: _post(p, "/admin/devices/revoke/", id=ids["device"]),
     ("revoke", "device", "{device}"), lambda b, a: a == {"revoked": True}),
    ("new category", lambda p, ids: _post(p, "/admin/categories/", code="gas_leak", name="燃气泄漏",
                                          default_unit="fire", deadline_hours="24", urgent_deadline_hours="2",
                                          duplicate_radius_m="50"),
     ("create", "category", "gas_leak"), lambda b, a: a["urgent_deadline_hours"] == 2 and a["deadline_hours"] == 24),
    ("edit category", lambda p, ids: _post(p, "/admin/categories/?code=fire_hazard", code="fire_hazard",
                                           name="消防隐患", name_en="Fire hazard", default_unit="fire",
                                           deadline_hours="48", urgent_deadline_hours="4", duplicate_radius_m="50"),
     ("edit", "category", "fire_hazard"),
     lambda b, a: b == {"deadline_hours": 72, "urgent_deadline_hours": None}
     and a == {"deadline_hours": 48, "urgent_deadline_hours": 4}),
    ("delete unit", lambda p, ids: _post(p, "/admin/units/delete/", id="traffic"),
     ("delete", "unit", "traffic"), lambda b, a: a == {"_deleted": True}),
    ("new grid", lambda p, ids: _post(p, "/admin/grids/", code="G-0401", name="南岭警格", type="police",
                                      district="示范区", street="南岭街道", community="南岭社区"),
     ("create", "grid", "G-0401"), lambda b, a: a["type"] == "police"),
    ("checklist version", lambda p, ids: _post(p, "/admin/checklists/?code=rental_house", code="rental_house",
                                               name="出租屋安全检查", items="gas | 燃气管道完好"),
     ("new_version", "checklist", "rental_house v2"), lambda b, a: b["version"] == 1 and a["version"] == 2),
    ("privacy setting", lambda p, ids: _post(p, "/admin/privacy", roles="supervisor"),
     ("edit", "setting", "id_number_roles"), lambda b, a: b == {"roles": []} and a == {"roles": ["supervisor"]}),
    ("audit export", lambda p, ids: p.get("/admin/audit/export/csv/").close(),
     ("export", "audit_log", None), lambda b, a: True),
]


@pytest.mark.parametrize("name, act, line, check", CASES, ids=[c[0] for c in CASES])
def test_each_admin_action_leaves_one_audit_line_with_who_when_where_and_what(pages, name, act, line, check):
    ids = {"worker2": user("worker2").id, "worker3": user("worker3").id, "device": _device()}
    log_in(pages, "admin")
    before = audit_count()
    act(pages, ids)
    action, kind, target = line
    found = [e for e in audit_lines() if e.action == action and e.kind == kind
             and e.target == (target.format(**ids) if target else None)]
    assert len(found) == 1, [(e.action, e.kind, e.target) for e in audit_lines()]
    entry = found[0]
    assert audit_count() == before + 1
    assert entry.actor == "admin" and entry.role == "admin" and entry.actor_id == user("admin").id
    assert entry.address == "127.0.0.1" and entry.at is not None
    assert check(entry.before, entry.after), (entry.before, entry.after)


def test_an_admins_edit_is_a_record_change_that_syncs(pages):
    from server.reference import load_reference

    log_in(pages, "admin")
    _post(pages, "/admin/categories/", code="gas_leak", name="燃气泄漏", default_unit="fire", deadline_hours="24",
          urgent_deadline_hours="2", duplicate_radius_m="50")
    db.session.rollback()
    assert load_reference().category("gas_leak")["urgent_deadline_hours"] == 2
    login = pages.post("/api/v1/auth/device", json={"username": "worker1", "password": "demo-pass",
                                                    "device_name": "平板", "node": "00000000000000ac"})
    pulled = pages.post("/api/v1/sync/pull", json={"cursors": {"ref": None}, "limit": 1000},
                        headers={"Authorization": f"Bearer {login.get_json()['token']}"}).get_json()
    codes = {c["fields"]["code"][0]: c["fields"] for c in pulled["changes"] if c["kind"] == "category"}
    assert codes["gas_leak"]["urgent_deadline_hours"][0] == 2


@pytest.fixture
def houses(pages, demo):
    demo.load_houses()
    return pages


def test_a_view_of_full_id_numbers_and_a_tenant_export_are_audited_and_masked_views_are_not(houses):
    from server import privacy

    log_in(houses, "supervisor1")
    assert houses.get("/houses/tenants").status_code == 200
    assert audit_lines(action="view_id_numbers") == []  # masked: nothing to log
    privacy.set_allowed_roles({"supervisor"}, by="test")
    assert houses.get("/houses/tenants").status_code == 200
    views = audit_lines(action="view_id_numbers")
    assert len(views) == 1 and views[0].actor == "supervisor1" and views[0].after["tenants"]
    assert all(len(t) == 36 for t in views[0].after["tenants"])  # tenants' ids, never their numbers
    answer = houses.get("/houses/tenants.csv")
    answer.close()
    exports = audit_lines(action="export", kind="tenants")
    assert len(exports) == 1 and "full ID numbers" in exports[0].note


AUDIT_ROUTES = [
    ("POST", "/admin/audit/delete/", {"id": "{id}"}),
    ("POST", "/admin/audit/edit/?id={id}", {"action": "nothing", "actor": "someone"}),
    ("POST", "/admin/audit/new/", {"action": "forged", "kind": "user", "actor": "x"}),
    ("POST", "/admin/audit/action/", {"action": "delete", "rowid": "{id}"}),
    ("POST", "/admin/audit/ajax/update/", {"list_form_pk": "{id}", "action": "x"}),
    ("GET", "/admin/audit/details/?id={id}", None),
]


def test_no_route_changes_the_audit_log(pages):
    log_in(pages, "admin")
    _post(pages, "/admin/units/", code="water", name="水务")
    entry = audit_lines()[-1]
    snapshot = [(e.id, e.action, e.kind, e.target, e.actor, e.before, e.after) for e in audit_lines()]
    for method, path, form in AUDIT_ROUTES:
        url = path.format(id=entry.id)
        if method == "GET":
            pages.get(url).close()
        else:
            pages.post(url, data={"csrf_token": csrf_token(pages), **{k: v.format(id=entry.id)
                                                                       for k, v in form.items()}}).close()
    assert [(e.id, e.action, e.kind, e.target, e.actor, e.before, e.after) for e in audit_lines()] == snapshot


@pytest.mark.parametrize("statement", ["UPDATE audit_log SET actor = 'someone'", "DELETE FROM audit_log"])
def test_the_store_refuses_to_update_or_delete_audit_lines(app, statement):
    from server import audit

    audit.record("create", "unit", "water", actor="cli", commit=True)
    with pytest.raises(Exception, match="append-only"):
        db.session.execute(text(statement))
        db.session.commit()
    db.session.rollback()
    assert [e.actor for e in audit_lines()] == ["cli"]

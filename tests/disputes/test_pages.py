"""The dispute pages on both engines: who may open them, the filters, the step forms (CSRF, bad input), the rates,
the admin's dispute kinds and the statistics section."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from server.db import db
from server.models import AuditEntry, Record
from shared.dispute import fold_dispute

from .conftest import add_step, csrf_token, log_in, new_dispute

ROLES = ["anonymous", "worker1", "supervisor1", "admin", "unit1"]
PAGES = {"supervisor1": 200, "admin": 200}
ROWS = [  # name, method, path, {role: status}; unnamed roles: anonymous 302, others 403
    ("list", "GET", "/disputes", PAGES),
    ("list, filtered", "GET", "/disputes?status=all&kind=rent&grid=G-0101&community=东湖社区&street=东湖街道&overdue=1",
     PAGES),
    ("a dispute", "GET", "/disputes/{dispute}", PAGES),
    ("no such dispute", "GET", "/disputes/01936f0e-0000-7000-8000-000000000000", {"supervisor1": 404, "admin": 404}),
    ("not a dispute id", "GET", "/disputes/nope", {"supervisor1": 404, "admin": 404}),
    ("rates", "GET", "/disputes/rates", PAGES),
    ("export", "GET", "/disputes/export.csv", PAGES),
    ("export, XLSX", "GET", "/disputes/export.xlsx", PAGES),
    ("a comment", "POST", "/disputes/{dispute}/comment", {"supervisor1": 303, "admin": 303}),
    ("dispute kinds", "GET", "/admin/dispute-kinds/", {"admin": 200}),
]


def _ids(page: str) -> list[str]:
    return re.findall(r'data-dispute="([^"]+)"', page)


def _stored(dispute_id: str) -> Record:
    db.session.rollback()
    return db.session.get(Record, dispute_id)


@pytest.mark.parametrize("role", ROLES)
def test_every_dispute_page_answers_each_role_as_the_table_says(pages, demo, role):
    dispute = new_dispute()
    if role != "anonymous":
        log_in(pages, role)
    mismatches = []
    for name, method, path, statuses in ROWS:
        url = path.format(dispute=dispute)
        answer = pages.get(url) if method == "GET" else pages.post(url, data={"csrf_token": csrf_token(pages),
                                                                               "note": "已电话联系"})
        want = statuses.get(role, 302 if role == "anonymous" else 403)
        if answer.status_code != want:
            mismatches.append(f"{name}: {method} {url} as {role} -> {answer.status_code} (wanted {want})")
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.parametrize("role, shown", [("supervisor1", True), ("admin", True), ("unit1", False)])
def test_the_navigation_links_the_dispute_pages_to_the_roles_that_may_use_them(pages, demo, role, shown):
    log_in(pages, role)
    assert ('href="/disputes"' in pages.get("/cases").get_data(as_text=True)) == shown


@pytest.mark.parametrize("query, count", [
    ("", 4),  # open: the demo's five but the two concluded, plus one made here
    ("?status=all", 6),
    ("?status=concluded", 2),
    ("?status=reported", 2),
    ("?status=reported&overdue=1", 1),
    ("?overdue=1", 1),
    ("?status=all&kind=rent", 1),
    ("?status=all&grid=G-0201", 2),
    ("?status=all&community=青石社区", 2),
    ("?status=all&street=西山街道", 0),
])
def test_the_list_filters_by_status_kind_place_and_overdue(pages, demo, query, count):
    new_dispute(kind="family", hours_ago=1)  # reported, not yet due
    log_in(pages, "supervisor1")
    answer = pages.get("/disputes" + query)
    assert answer.status_code == 200
    assert len(_ids(answer.get_data(as_text=True))) == count


def test_overdue_disputes_come_first_and_are_marked(pages, demo):
    log_in(pages, "supervisor1")
    page = pages.get("/disputes").get_data(as_text=True)
    first = page.index("data-dispute=")
    assert 'data-testid="overdue"' in page[first:page.index("</tr>", first)]


@pytest.mark.parametrize("query", ["?status=closed", "?kind=a%20b", "?overdue=yes", "?kind=" + "x" * 70])
def test_a_malformed_filter_is_a_400(pages, demo, query):
    log_in(pages, "supervisor1")
    assert pages.get("/disputes" + query).status_code == 400
    assert pages.get("/disputes/export.csv" + query).status_code == 400


@pytest.mark.parametrize("page", ["x", "-1", "１", "9999999", "0"])
def test_a_page_number_that_is_none_is_the_first_page(pages, demo, page):
    log_in(pages, "supervisor1")
    assert pages.get(f"/disputes?page={page}").status_code == 200


def test_steps_recorded_on_the_page_move_the_dispute_and_are_audited(pages, demo):
    dispute = new_dispute()
    log_in(pages, "supervisor1")
    token = csrf_token(pages)
    assert pages.post(f"/disputes/{dispute}/accept", data={"csrf_token": token}).status_code == 303
    assert pages.post(f"/disputes/{dispute}/session", data={
        "csrf_token": token, "mediators": "陈静，社区调委会 何主任", "at": "2026-12-01T09:30",
        "note": "双方同意赔偿"}).status_code == 303
    assert pages.post(f"/disputes/{dispute}/outcome", data={
        "csrf_token": token, "outcome": "settled", "note": "签订调解协议"}).status_code == 303
    steps = db.session.scalars(select(Record).where(Record.parent_id == dispute)).all()
    assert len(steps) == 3
    session = next(s.field_values for s in steps if s.field_values["action"] == "session")
    assert session["mediators"] == ["陈静", "社区调委会 何主任"]
    assert session["at"] == "2026-12-01T01:30:00.000Z"  # district time is UTC+8
    page = pages.get(f"/disputes/{dispute}").get_data(as_text=True)
    assert 'data-status="concluded"' in page and 'data-action="follow_up"' in page
    audited = db.session.scalars(select(AuditEntry.action).where(AuditEntry.kind == "dispute",
                                                                 AuditEntry.target == dispute)).all()
    assert {"accept", "session", "outcome"} <= set(audited)


def test_a_step_that_no_longer_applies_is_not_recorded(pages, demo):
    dispute = new_dispute()
    add_step(dispute, "outcome", outcome="settled")
    log_in(pages, "supervisor1")
    answer = pages.post(f"/disputes/{dispute}/accept", data={"csrf_token": csrf_token(pages)})
    assert answer.status_code == 303
    db.session.rollback()
    assert len(db.session.scalars(select(Record).where(Record.parent_id == dispute)).all()) == 1


@pytest.mark.parametrize("step, data", [
    ("outcome", {"outcome": "referred"}),  # a referral names its body
    ("outcome", {"outcome": "won"}),
    ("session", {"note": ""}),
    ("session", {"note": "x", "at": "yesterday"}),
    ("comment", {"note": "x" * 4001}),
    ("follow_up", {"note": "x"}),  # offered only after an outcome: the form is valid, the step is not
])
def test_bad_input_to_a_step_is_refused_and_nothing_is_written(pages, demo, step, data):
    dispute = new_dispute()
    log_in(pages, "supervisor1")
    answer = pages.post(f"/disputes/{dispute}/{step}", data={"csrf_token": csrf_token(pages), **data})
    assert answer.status_code in (400, 303)
    if step != "follow_up":
        assert answer.status_code == 400
    db.session.rollback()
    assert not db.session.scalars(select(Record).where(Record.parent_id == dispute)).all()


def test_forms_without_a_csrf_token_are_refused(pages, demo):
    dispute = new_dispute()
    log_in(pages, "supervisor1")
    assert pages.post(f"/disputes/{dispute}/accept", data={}).status_code == 400
    assert pages.post("/disputes", data={"grid": "G-0101"}).status_code == 400
    db.session.rollback()
    assert not db.session.scalars(select(Record).where(Record.parent_id == dispute)).all()


def test_an_unknown_step_is_a_404(pages, demo):
    dispute = new_dispute()
    log_in(pages, "supervisor1")
    assert pages.post(f"/disputes/{dispute}/mediate", data={"csrf_token": csrf_token(pages)}).status_code == 404


def test_a_dispute_reported_at_the_office_is_the_users_and_syncs_like_any(pages, demo):
    log_in(pages, "supervisor1")
    answer = pages.post("/disputes", data={
        "csrf_token": csrf_token(pages), "grid": "G-0102", "dispute_kind": "neighbours", "party1_name": "赵一",
        "party1_phone": "13700001111", "party2_name": "钱二", "place": "东湖路5号", "description": "噪音扰民"})
    assert answer.status_code == 303
    dispute_id = answer.location.rsplit("/", 1)[1]
    stored = _stored(dispute_id)
    assert stored.bucket == "grid:G-0102" and stored.field_values["parties"].startswith("sealed:v1:")
    from server.models import User
    assert db.session.get(User, stored.field_values["reporter"]).username == "supervisor1"
    bad = pages.post("/disputes", data={"csrf_token": csrf_token(pages), "grid": "G-9999",
                                        "dispute_kind": "neighbours", "party1_name": "赵一", "description": "x"})
    assert bad.status_code == 400


def test_the_rates_page_shows_the_definitions_the_goals_and_the_figures(pages, demo):
    log_in(pages, "supervisor1")
    page = pages.get("/disputes/rates").get_data(as_text=True)
    assert "调解率" in page and "调解成功率" in page and "100%" in page and "95%" in page
    street = page[page.index('data-testid="by-street"'):page.index('data-testid="by-community"')]
    row = street[street.index('data-key="东湖街道"'):]
    row = row[:row.index("</tr>")]
    # 东湖街道 holds all five demo disputes: mediated 3 (a session, a settlement, a referral), 2 with an outcome, 1 settled
    assert [int(n) for n in re.findall(r'<td class="num">(\d+)</td>', row)] == [5, 3, 2, 1, 1]
    assert "60.0 %" in row and "50.0 %" in row and row.count("rate below") == 2


def test_the_statistics_page_has_the_dispute_rates_of_its_period(pages, demo):
    log_in(pages, "supervisor1")
    page = pages.get("/stats?from=2000-01-01&to=2099-12-31").get_data(as_text=True)
    section = page[page.index('data-testid="disputes"'):]
    assert "调解率" in section and 'data-key="东湖街道"' in section
    empty = pages.get("/stats?from=2000-01-01&to=2000-01-02").get_data(as_text=True)
    assert "没有上报的纠纷" in empty[empty.index('data-testid="disputes"'):]


def test_the_admin_sets_the_hours_and_overdue_follows(pages, demo):
    dispute = new_dispute(kind="labour", hours_ago=10)  # labour: 12 hours in the demo
    log_in(pages, "supervisor1")
    assert 'data-testid="overdue"' not in pages.get(f"/disputes/{dispute}").get_data(as_text=True)
    log_in(pages, "admin")
    answer = pages.post("/admin/dispute-kinds/?code=labour", data={
        "csrf_token": csrf_token(pages), "code": "labour", "name": "劳资纠纷", "name_en": "Labour",
        "take_up_hours": "6"})
    assert answer.status_code == 303, answer.get_data(as_text=True)[-2000:]
    assert 'data-testid="overdue"' in pages.get(f"/disputes/{dispute}").get_data(as_text=True)
    refused = pages.post("/admin/dispute-kinds/", data={"csrf_token": csrf_token(pages), "code": "x y",
                                                        "name": "坏", "take_up_hours": "0"})
    assert refused.status_code == 400


def test_the_export_holds_the_lists_rows_and_is_audited(pages, demo):
    log_in(pages, "supervisor1")
    text = pages.get("/disputes/export.csv?status=all").get_data(as_text=True)
    assert text.startswith("\ufeff") and len(text.strip().splitlines()) == 6
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.kind == "disputes",
                                                      AuditEntry.action == "export")) is not None


def test_the_pages_fold_as_the_shared_fold_does(pages, demo):
    from server.disputes import service
    from server.clock import server_clock
    from shared.case import Action

    dispute = new_dispute()
    add_step(dispute, "session")
    add_step(dispute, "outcome", outcome="partly_settled")
    db.session.rollback()
    steps = db.session.scalars(select(Record).where(Record.parent_id == dispute)).all()
    record = _stored(dispute)
    folded = fold_dispute(record.field_values, [Action.from_state(s.id, s.state()) for s in steps],
                          kind=service.load_kinds()["neighbours"], now=server_clock().physical_ms())
    got = service.get_dispute(None, dispute, server_clock().physical_ms()).state
    assert (got.status, got.outcome, got.sessions, got.timeline) == (folded.status, folded.outcome, folded.sessions,
                                                                     folded.timeline)


def test_the_disputes_table_is_what_folding_the_records_gives_and_a_rebuild_changes_nothing(pages, demo):
    from sqlalchemy import text

    from server.clock import server_clock
    from server.disputes import book, service, stats
    from server.models import DisputeRow

    dispute = new_dispute(kind="labour", hours_ago=30)
    add_step(dispute, "session", note="调解")
    add_step(dispute, "outcome", outcome="not_settled")
    gone = new_dispute()
    from server.sync import apply
    apply.write_as_server([apply.stamp("dispute", gone, {"_deleted": True}, bucket="grid:G-0101")])
    db.session.rollback()
    rows = {r.dispute_id: (r.status, r.outcome, r.mediated, r.deleted, r.sessions, r.deadline_ms)
            for r in db.session.scalars(select(DisputeRow))}
    assert rows[dispute][:5] == ("concluded", "not_settled", True, False, 1) and rows[gone][3] is True
    now = server_clock().physical_ms()
    folded = {d.id: d.state for d in service.load_disputes(None, now)}
    assert set(folded) == set(rows) - {gone}
    assert all(rows[rid][:3] == (state.status, state.outcome, state.mediated) for rid, state in folded.items())
    # The rates counted in SQL equal shared/dispute.py's over the folded disputes, per grid and in total.
    from server.reference import load_reference
    tables = stats.rate_tables(load_reference(), now)
    by_fold = stats.rate_rows(service.load_disputes(None, now), lambda d: d.grid)
    assert [(r.key, r.rates) for r in tables.by_grid] == [(r.key, r.rates) for r in by_fold]
    with db.engine.begin() as connection:
        assert book.rebuild(connection) == len(rows)
        connection.execute(text("DELETE FROM disputes WHERE dispute_id = :id"), {"id": dispute})
        book.rebuild(connection)
    db.session.rollback()
    again = {r.dispute_id: (r.status, r.outcome, r.mediated, r.deleted, r.sessions, r.deadline_ms)
             for r in db.session.scalars(select(DisputeRow))}
    assert again == rows


def test_the_rebuild_command_folds_every_dispute(app, demo):
    result = app.test_cli_runner().invoke(args=["disputes", "rebuild", "--chunk", "2"])
    assert result.exit_code == 0 and "Folded 5 disputes" in result.output
    assert app.test_cli_runner().invoke(args=["disputes", "rebuild", "--chunk", "0"]).exit_code == 2

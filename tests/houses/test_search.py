"""House and tenant lists paged and searched in SQL; a house page unseals only its own tenants (both engines).

The tenant search goes through keyed hashes (server/houses/index.py): a role that sees masked numbers
finds a tenant by what the mask shows (the last four, or the first and last four) and never more; a
role an admin allowed finds one by the whole number. The index holds no name and no number.
"""

from __future__ import annotations

import re
import secrets

from sqlalchemy import event, func, select

from server import privacy
from server.admin import demo as demo_data
from server.clock import server_clock
from server.db import db
from server.houses import index
from server.models import TenantIndex
from server.sync import apply, feed
from shared.records import uuid7

from .conftest import Tablet, demo_id_numbers, house_by_address, log_in

NAMES = [name for *_house, tenants in demo_data.HOUSES for name, *_rest in tenants]
NUMBER_OF = dict(zip(NAMES, demo_id_numbers()))  # the demo's names are distinct


def results(page: str) -> str:
    """The tenant list's table, without the search form (which echoes the query)."""
    return page.split('data-testid="tenant-list"', 1)[1].split("</table>", 1)[0] if "tenant-list" in page else ""


def tenant_names(page: str) -> list[str]:
    """The names in the tenant list's rows, in order."""
    return re.findall(r'<tr data-tenant="[^"]+"[^>]*>\s*<td>([^<]*)</td>', page)


def _allow_supervisors() -> None:
    privacy.set_allowed_roles(["supervisor"], by="test")


def _unseal_counter(monkeypatch) -> list:
    calls = []
    real = privacy.unseal

    def counting(value, field="id_number"):
        calls.append(value)
        return real(value, field)

    monkeypatch.setattr(privacy, "unseal", counting)
    return calls


def test_a_house_page_unseals_only_its_own_tenants(pages, monkeypatch):
    house = house_by_address("东湖村12号")  # 7 tenants, one moved out; the demo has 30
    log_in(pages, "supervisor1")
    calls = _unseal_counter(monkeypatch)
    statements = []
    listener = lambda *args: statements.append((args[2], repr(args[3])))  # noqa: E731 (conn, cursor, sql, ...)
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        page = pages.get(f"/houses/{house.id}").get_data(as_text=True)
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert page.count("data-tenant=") == 7
    assert len(calls) == 7 and all(c.startswith(privacy.PREFIX) for c in calls)
    tenant_reads = [(sql, params) for sql, params in statements if "records" in sql and "'tenant'" in params]
    assert len(tenant_reads) == 1  # one read of the tenants: this house's, in its bucket
    assert house.bucket in tenant_reads[0][1] and house.id in tenant_reads[0][1]


def test_the_tenant_list_pages_in_sql_and_unseals_only_its_page(pages, app, monkeypatch):
    app.config["GRIDPATROL_PAGE_SIZE"] = 7
    log_in(pages, "supervisor1")
    calls = _unseal_counter(monkeypatch)
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        first = pages.get("/houses/tenants").get_data(as_text=True)
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert len(tenant_names(first)) == 7 and len(calls) == 7 and "共 29 人" in first and "第 1 / 5 页" in first
    assert any("LIMIT" in s.upper() for s in statements)
    seen = tenant_names(first)
    for number in range(2, 6):
        seen += tenant_names(pages.get(f"/houses/tenants?page={number}").get_data(as_text=True))
    assert len(seen) == 29 and len(set(seen)) == 29 and "胡斌" not in seen  # every current tenant once
    last = pages.get("/houses/tenants?page=99").get_data(as_text=True)  # clamped to the last page
    assert "第 5 / 5 页" in last and len(tenant_names(last)) == 1
    everyone = pages.get("/houses/tenants?all=1&page=5").get_data(as_text=True)
    assert "共 30 人" in everyone
    grid = pages.get("/houses/tenants?grid=G-0201").get_data(as_text=True)
    assert "共 12 人" in grid


def test_the_house_list_pages_and_searches_in_sql(pages, app):
    app.config["GRIDPATROL_PAGE_SIZE"] = 3
    log_in(pages, "supervisor1")
    first = pages.get("/houses").get_data(as_text=True)
    second = pages.get("/houses?page=2").get_data(as_text=True)
    assert first.count("data-house=") == 3 and second.count("data-house=") == 3
    assert not set(re.findall(r'data-house="([^"]+)"', first)) & set(re.findall(r'data-house="([^"]+)"', second))
    assert "共 6 处出租屋" in first and "第 1 / 2 页" in first and 'href="/houses?page=2"' in first
    found = pages.get("/houses?q=东湖村12").get_data(as_text=True)
    assert found.count("data-house=") == 1 and "东湖村12号" in found
    owner = demo_data.HOUSES[0][2]
    assert pages.get(f"/houses?q={owner}").get_data(as_text=True).count("data-house=") >= 1
    assert pages.get("/houses?q=%25").get_data(as_text=True).count("data-house=") == 0  # % is a character
    hazards = pages.get("/houses?hazards=1&page=2").get_data(as_text=True)  # the Python path pages too
    assert hazards.count("data-house=") == 1 and "共 4 处出租屋" in hazards and "第 2 / 2 页" in hazards
    assert pages.get("/houses?hazards=1").get_data(as_text=True).count("data-house=") == 3
    community = pages.get("/houses?community=东湖社区&q=村").get_data(as_text=True)
    assert "共 3 处出租屋" in community and "东湖路88号" not in community and "青石村9号" not in community


def test_tenants_are_found_by_full_name_and_by_their_house_address(pages):
    log_in(pages, "supervisor1")
    assert tenant_names(pages.get("/houses/tenants?q=周磊").get_data(as_text=True)) == ["周磊"]
    assert tenant_names(pages.get("/houses/tenants?q= 周磊 ").get_data(as_text=True)) == ["周磊"]
    assert tenant_names(pages.get("/houses/tenants?q=周").get_data(as_text=True)) == []  # names: whole only
    by_address = tenant_names(pages.get("/houses/tenants?q=东湖村12号").get_data(as_text=True))
    assert len(by_address) == 6 and "周磊" in by_address  # current tenants of that house
    assert tenant_names(pages.get("/houses/tenants?q=周磊&grid=G-0201").get_data(as_text=True)) == []


def test_a_masked_role_searches_by_what_the_mask_shows_and_never_more(pages):
    log_in(pages, "supervisor1")
    number = NUMBER_OF["周磊"]
    for query in (number[-4:], number[:4] + "**********" + number[-4:], number):
        page = pages.get(f"/houses/tenants?q={query}").get_data(as_text=True)
        assert "周磊" in tenant_names(page) and number not in results(page) and "4403**" in results(page), query
    # A made-up number with the same first and last four finds the same tenant: the search does not
    # confirm the middle digits, which the role may not see.
    forged = number[:4] + "0" * 10 + number[-4:]
    assert "周磊" in tenant_names(pages.get(f"/houses/tenants?q={forged}").get_data(as_text=True))
    assert tenant_names(pages.get(f"/houses/tenants?q={number[6:14]}").get_data(as_text=True)) == []
    other = NUMBER_OF["吴芳"]
    assert "周磊" not in tenant_names(pages.get(f"/houses/tenants?q={other[-4:]}").get_data(as_text=True))


def test_an_allowed_role_searches_by_the_whole_number(pages):
    _allow_supervisors()
    log_in(pages, "supervisor1")
    number = NUMBER_OF["周磊"]
    page = pages.get(f"/houses/tenants?q={number}").get_data(as_text=True)
    assert tenant_names(page) == ["周磊"] and number in results(page)
    forged = number[:4] + "0" * 10 + number[-4:]
    assert tenant_names(pages.get(f"/houses/tenants?q={forged}").get_data(as_text=True)) == []
    assert "周磊" in tenant_names(pages.get(f"/houses/tenants?q={number[-4:]}").get_data(as_text=True))
    assert tenant_names(pages.get(f"/houses/tenants?q={number.lower()}").get_data(as_text=True)) == ["周磊"]


def test_the_csv_export_follows_the_search(pages):
    log_in(pages, "admin")
    text = pages.get("/houses/tenants.csv?q=周磊").get_data(as_text=True)
    assert text.count("\n") == 2 and "周磊" in text


def test_the_index_holds_no_name_and_no_number(pages):
    log_in(pages, "supervisor1")
    pages.get("/houses/tenants?q=anything")  # the first search indexes the stored tenants
    rows = db.session.scalars(select(TenantIndex)).all()
    assert len(rows) == 1 + 30
    values = {v for r in rows for v in (r.name_hash, r.id_hash, r.id_tail_hash, r.id_ends_hash) if v is not None}
    assert len(values) == 4 * 30 and all(re.fullmatch("[0-9a-f]{32}", v) for v in values)  # digests only
    text = repr(values)
    for name, number in NUMBER_OF.items():
        assert name not in text and number not in text


def test_a_tenant_a_tablet_pushes_is_found_through_the_catch_up(pages):
    house = house_by_address("东湖村18号")
    log_in(pages, "supervisor1")
    assert tenant_names(pages.get("/houses/tenants?q=钱多多").get_data(as_text=True)) == []
    tablet = Tablet(pages, "worker1")
    number = demo_data.demo_id_number("19990909", 777)
    tenant_id = uuid7(server_clock().physical_ms(), secrets.token_bytes(10))
    hlc = tablet.hlc()
    assert tablet.push({"kind": "tenant", "id": tenant_id, "bucket": house.bucket, "fields": {
        "house": [house.id, hlc], "name": ["钱多多", hlc], "room": ["501", hlc], "id_number": [number, hlc]}},
    )[0]["status"] == "applied"
    assert tenant_names(pages.get("/houses/tenants?q=钱多多").get_data(as_text=True)) == ["钱多多"]
    assert "钱多多" in tenant_names(pages.get(f"/houses/tenants?q={number[-4:]}").get_data(as_text=True))
    # renamed: the old name no longer finds the tenant, the new one does
    hlc = tablet.hlc()
    tablet.push({"kind": "tenant", "id": tenant_id, "bucket": house.bucket, "fields": {"name": ["钱少少", hlc]}})
    assert tenant_names(pages.get("/houses/tenants?q=钱多多").get_data(as_text=True)) == []
    assert tenant_names(pages.get("/houses/tenants?q=钱少少").get_data(as_text=True)) == ["钱少少"]


def test_the_write_hook_indexes_a_batch_and_moves_the_mark_only_from_where_it_stood(app, demo):
    # apply_changes calls the hook: the demo's 30 tenants were indexed as they were written.
    assert index.catch_up() == 0
    assert db.session.scalar(select(func.count()).select_from(TenantIndex)) == 30 + 1
    mark = db.session.scalar(select(TenantIndex.position).where(TenantIndex.tenant_id == index.MARK))
    assert mark == feed.last_position()  # the demo wrote its batches one after the other
    house = house_by_address("东湖村18号")
    tenant_id = uuid7(server_clock().physical_ms(), secrets.token_bytes(10))
    change = apply.stamp("tenant", tenant_id, {"house": house.id, "name": "孔明", "room": "1"}, bucket=house.bucket)
    state = dict(change.fields)
    index.reindex([(tenant_id, house.bucket, state, mark + 1)], previous=mark, last=mark + 1)
    db.session.commit()
    row = db.session.get(TenantIndex, tenant_id)
    assert row.name_hash == index.digest("name", "孔明") and row.position == mark + 1
    assert db.session.get(TenantIndex, index.MARK).position == mark + 1
    index.reindex([(tenant_id, house.bucket, state, mark)], previous=mark + 5, last=mark + 6)  # older, elsewhere
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(TenantIndex, tenant_id).position == mark + 1  # an older state does not win
    assert db.session.get(TenantIndex, index.MARK).position == mark + 1  # the mark stood elsewhere


def test_flask_houses_reindex_rebuilds_the_index(app, demo):
    db.session.execute(TenantIndex.__table__.delete())
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["houses", "reindex"])
    assert result.exit_code == 0 and "Indexed 30 tenant records" in result.output
    assert db.session.scalar(select(TenantIndex.position).where(TenantIndex.tenant_id == index.MARK)) > 0
    assert index.catch_up() == 0

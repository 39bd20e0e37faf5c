"""The pull for bad links (issue 20): a byte budget per page (`max_bytes`) and gzip-compressed answers."""

from __future__ import annotations

import gzip
import json

from tests.server.test_sync_api import bearer, event, pushed, token_of


def _pull(client, token, cursors=None, **body):
    return client.post("/api/v1/sync/pull", headers=bearer(token), json={"cursors": cursors or {}, **body})


def _pull_all(client, token, **body) -> tuple[list[dict], list[int]]:
    """Every change page by page; and each page's bytes of changes as the budget counts them."""
    cursors, changes, sizes = {}, [], []
    while True:
        answer = _pull(client, token, cursors, **body)
        assert answer.status_code == 200, answer.get_json()
        page = answer.get_json()
        assert page["changes"], "every page moves"
        changes += page["changes"]
        raw = answer.get_data()
        sizes.append(len(raw[raw.index(b"[") + 1:raw.index(b'],"cursors"')]) + 1)
        cursors = page["cursors"]
        if not page["more"]:
            return changes, sizes


def test_a_byte_budget_makes_smaller_pages_with_the_same_changes(client, demo):
    token, user = token_of(client)
    supervisor, _ = token_of(client, "supervisor1", node="fedcba9876543210")
    pushed(client, supervisor, [event(user["id"], description="长" * 400) for _ in range(3)])
    whole, [size] = _pull_all(client, token)
    budget = 2000
    paged, sizes = _pull_all(client, token, max_bytes=budget)
    assert [c["id"] for c in paged] == [c["id"] for c in whole]  # the same changes, in the same order
    assert len(sizes) > 1 and sum(sizes) == size  # the commas between pages become page ends
    change_sizes = [len(json.dumps(c, ensure_ascii=False, separators=(",", ":")).encode()) + 1 for c in whole]
    assert max(sizes) < budget + max(change_sizes)  # it stops once the budget is reached


def test_a_budget_smaller_than_one_change_still_serves_one(client, demo):
    token, _ = token_of(client)
    first = _pull(client, token, limit=1).get_json()
    page = _pull(client, token, max_bytes=1).get_json()
    assert page == {**first, "hlc": page["hlc"]}
    assert page["more"] is True
    # The cursor covers only what was served: the next page starts with the next change.
    second = _pull(client, token, page["cursors"], max_bytes=1).get_json()
    assert second["changes"][0]["id"] != page["changes"][0]["id"]


def test_more_is_exact_when_the_budget_ends_a_page_on_the_last_change(client, demo):
    token, _ = token_of(client)
    whole = _pull(client, token).get_json()
    page = _pull(client, token, max_bytes=10**9).get_json()
    assert page["more"] is False and len(page["changes"]) == len(whole["changes"])
    # A budget that the last change reaches exactly: nothing is left, so more is false.
    body = _pull(client, token).get_data()
    size = len(body[body.index(b"[") + 1:body.index(b'],"cursors"')]) + 1
    assert _pull(client, token, max_bytes=size).get_json()["more"] is False


def test_the_answer_is_gzip_only_for_a_client_that_asks(client, demo):
    token, _ = token_of(client)
    plain = _pull(client, token)
    assert "Content-Encoding" not in plain.headers
    assert "Accept-Encoding" in plain.headers.get("Vary", "")
    zipped = client.post("/api/v1/sync/pull", headers={**bearer(token), "Accept-Encoding": "gzip, deflate"},
                         json={"cursors": {}})
    assert zipped.headers["Content-Encoding"] == "gzip"
    data = gzip.decompress(zipped.get_data())
    assert json.loads(data)["changes"] == plain.get_json()["changes"]
    assert len(zipped.get_data()) < len(data) / 2
    refused = client.post("/api/v1/sync/pull", headers={**bearer(token), "Accept-Encoding": "gzip;q=0"},
                          json={"cursors": {}})
    assert "Content-Encoding" not in refused.headers


def test_a_small_answer_is_not_compressed(client, demo):
    token, _ = token_of(client)
    cursors = _pull(client, token, limit=1000).get_json()["cursors"]
    idle = client.post("/api/v1/sync/pull", headers={**bearer(token), "Accept-Encoding": "gzip"},
                       json={"cursors": cursors})
    assert idle.get_json()["changes"] == [] and "Content-Encoding" not in idle.headers


def test_max_bytes_is_in_the_openapi_document_and_checked(client, demo):
    document = client.get("/api/v1/openapi.json").get_json()
    text = json.dumps(document)
    assert "max_bytes" in text
    token, _ = token_of(client)
    for bad in (0, -1, "1000", 1.5, True):
        answer = _pull(client, token, max_bytes=bad)
        assert answer.status_code == 400, bad


def test_a_page_read_a_few_rows_at_a_time_is_the_page_read_in_one(client, demo, monkeypatch):
    """Law (issue 19): pull_changes reads a bucket's rows a few at a time, as the budget left seems to need; whatever
    the first read's size and the changes' sizes, every page (changes, cursors, more) is the page that reading
    the limit's rows at once gives."""
    import random

    from server.db import db
    from server.models import User
    from server.sync import service

    token, user = token_of(client)
    rng = random.Random(19)
    pushed(client, token, [event(user["id"], description="长" * rng.choice([1, 5, 40, 300, 900])) for _ in range(90)])
    reader = db.session.scalar(db.select(User).where(User.id == user["id"]))

    def pages(first_rows: int, limit: int, budget: int) -> list[dict]:
        monkeypatch.setattr(service, "_FIRST_ROWS", first_rows)
        cursors, out = {}, []
        while True:
            page = service.pull_changes(reader, cursors, limit, as_json=True, max_bytes=budget)
            out.append(page)
            cursors = page["cursors"]
            if not page["more"]:
                return out

    for limit, budget in [(500, 1), (500, 700), (500, 4000), (500, 25_000), (500, 10**9), (7, 3000), (40, 9000)]:
        at_once = pages(10**9, limit, budget)
        assert sum(len(p["changes"]) for p in at_once) >= 90
        for first_rows in (1, 2, 32):
            assert pages(first_rows, limit, budget) == at_once, (first_rows, limit, budget)

"""A first sync (issue 19): the next page is fetched while one is applied, and a pulled page is merged a
chunk at a time with one read per chunk; neither may change what the store ends up holding, nor let a
cursor pass records that were not stored."""

from __future__ import annotations

import json
import threading

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.hlc import HLC
from shared.merge import merge_record
from mobile.store import Store
from mobile.sync import apply_page, synchronize
from mobile.transport import TransportError, decode_pull

from .conftest import NODE, event_values
from .fakes import SERVER_NODE, T0, FakeServer, ManualClock
from .test_sync import fill

WAIT_S = 10  # how long a test waits for the other thread before it calls the pipeline broken


class Watched:
    """The in-memory server's pull, watched: which pages were asked for, and how many had been applied then."""

    def __init__(self, inner: FakeServer, store: Store):
        self.inner, self.store = inner, store
        self.asked: list[tuple[dict, int]] = []  # (cursors asked from, pages applied by then)
        self.applied = 0
        self.asked_again, self.asked_third = threading.Event(), threading.Event()

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def pull(self, cursors, limit):
        self.asked.append((dict(cursors), self.applied))
        if len(self.asked) > 1:
            self.asked_again.set()
        if len(self.asked) > 2:
            self.asked_third.set()
        return self.inner.pull(cursors, limit)


def test_the_next_page_is_asked_for_while_a_page_is_applied_and_never_two_ahead(store, server, monkeypatch):
    fill(server, 10)
    link = Watched(server, store)
    original = store.apply_remote

    def apply_remote(changes, cursors, hlc=None):
        if link.applied == 0:
            # The first page waits here until the second is asked for: a pull that fetched only after
            # applying would never ask, and the wait would time out.
            assert link.asked_again.wait(WAIT_S), "page 2 was not asked for while page 1 was applied"
        result = original(changes, cursors, hlc)
        link.applied += 1
        return result

    monkeypatch.setattr(store, "apply_remote", apply_remote)
    report = synchronize(store, link, page_limit=3)
    assert report.ok, report.error
    assert (report.pulled, report.pages) == (10, 4)
    applied_then = [applied for _cursors, applied in link.asked]
    assert applied_then[1] == 0, "page 2 was asked for before page 1 was applied"
    # Page i+1 is asked for once page i-1 is applied (one page ahead, no more); whether page i is applied by
    # then is a race between the two threads, and either way is right.
    assert all(i - 1 <= applied <= i for i, applied in enumerate(applied_then[1:], start=1)), applied_then
    assert [cursors.get("grid:G-0101") for cursors, _ in link.asked] == [None, "3", "6", "9"]
    assert store.cursors()["grid:G-0101"] == "10"


def test_a_page_fetched_ahead_of_one_that_failed_is_not_applied_and_is_asked_again(store, server, monkeypatch):
    ids = fill(server, 9)
    link = Watched(server, store)
    original = store.apply_remote

    def apply_remote(changes, cursors, hlc=None):
        if link.applied == 1:
            assert link.asked_third.wait(WAIT_S), "page 3 is asked for while page 2 is applied"
            raise TransportError("stands in for any failure while page 2 is applied")
        result = original(changes, cursors, hlc)
        link.applied += 1
        return result

    monkeypatch.setattr(store, "apply_remote", apply_remote)
    report = synchronize(store, link, page_limit=3)
    assert not report.ok and report.pages == 1 and report.more_to_pull
    assert store.cursors()["grid:G-0101"] == "3", "the cursor stays at the last page applied whole"
    assert store.counts().records == 3
    monkeypatch.setattr(store, "apply_remote", original)
    report = synchronize(store, server, page_limit=3)
    assert report.ok and (report.pulled, report.pages) == (6, 2)
    assert sorted(r.id for r in store.query("event")) == sorted(ids)


def test_a_failed_prefetch_stops_the_pull_after_the_pages_before_it_are_applied(store, server):
    fill(server, 7)

    class Broken:
        def __init__(self):
            self.calls = 0

        def __getattr__(self, name):
            return getattr(server, name)

        def pull(self, cursors, limit):
            self.calls += 1
            if self.calls == 3:
                raise TransportError("the server could not be reached")
            return server.pull(cursors, limit)

    report = synchronize(store, Broken(), page_limit=3)
    assert not report.ok and "could not be reached" in report.error
    assert (report.pages, report.pulled, report.more_to_pull) == (2, 6, True)
    assert report.phases["pull"] == "partial"
    assert store.cursors()["grid:G-0101"] == "6"


# --- the law: chunked, batched merging is merging one change at a time ---------------------------------

FIELDS = {"description": ["a", "b", "c"], "urgent": [True, False, None], "address": [None, "1 Elm St", "2 Oak St"]}
LOCAL = {"description": ["a", "b", "c"], "urgent": [True, False, True], "address": ["1 Elm St", "2 Oak St", "3 Ash St"]}
RECORDS = [f"0193b5c8-00{i:02x}-7000-8000-00000000f157" for i in range(3)]
NODES = [SERVER_NODE, "0000000000000002", NODE]
remote_changes = st.lists(st.tuples(
    st.integers(0, 2),  # record
    st.dictionaries(st.sampled_from(sorted(FIELDS)), st.integers(0, 2), min_size=1),  # field -> value index
    st.integers(-3, 3),  # ms from T0: ties and both sides of the local writes
    st.integers(0, 2),  # node
), max_size=24)
local_writes = st.lists(st.tuples(st.integers(0, 2), st.sampled_from(sorted(FIELDS)), st.integers(0, 2)),
                        max_size=6)


def _remote(record: int, fields: dict, ms: int, node: int) -> dict:
    hlc = str(HLC(T0 + ms, 0, NODES[node]))
    writes = {name: [FIELDS[name][value], hlc] for name, value in fields.items()}
    if record == 0:  # the first record arrives whole at some point, so it can be created without a grid
        writes = {**{n: [v, hlc] for n, v in event_values().items()}, **writes}
    return {"kind": "event", "id": RECORDS[record], "bucket": "grid:G-0101", "fields": writes}


def _held(store: Store) -> dict:
    return {r.id: (r.bucket, r.state, r.pending) for r in store.query("event", include_deleted=True)}


@settings(deadline=None, max_examples=60)
@given(changes=remote_changes, local=local_writes, chunk=st.integers(1, 8))
def test_a_page_merged_in_chunks_holds_what_merging_each_change_alone_holds(changes, local, chunk):
    """Whatever the page (records named several times, ties, older and newer than local pending writes) and
    whatever the chunk, apply_page leaves records, buckets, outbox and cursors as one apply_remote per change."""
    page = [_remote(*change) for change in changes]
    stores = [Store(":memory:", physical=ManualClock(T0), node=NODE) for _ in range(2)]
    try:
        for store in stores:
            for record, name, value in local:
                values = {name: LOCAL[name][value]}
                if store.get("event", RECORDS[record]) is None:
                    values = {**event_values(), **values}
                store.write("event", RECORDS[record], values)
        one_by_one, chunked = stores
        # The model: each record's writes merged in page order (shared.merge), its pending fields less those a
        # remote write took.
        model = {r.id: (dict(r.state), set(r.pending)) for r in chunked.query("event", include_deleted=True)}
        for change in page:
            state, pending = model.get(change["id"], ({}, set()))
            merged = merge_record(state, change["fields"])
            model[change["id"]] = (merged.state, pending - merged.changed)
        for change in page:
            one_by_one.apply_remote([change], {"grid:G-0101": "0"})
        one_by_one.apply_remote([], {"grid:G-0101": str(len(page))})
        # The chunked side gets the page as HttpTransport hands it over: decoded from the server's bytes, with
        # each change's fields text, which the store keeps for a record it does not hold yet.
        wire = decode_pull(json.dumps({"changes": page, "cursors": {}}, ensure_ascii=False,
                                      separators=(",", ":")).encode())
        assert wire.fields_json == [json.dumps(c["fields"], ensure_ascii=False, separators=(",", ":")) for c in page]
        apply_page(chunked, wire["changes"], {"grid:G-0101": "0"}, {"grid:G-0101": str(len(page))}, None,
                   chunk=chunk, fields_json=wire.fields_json)
        assert _held(chunked) == _held(one_by_one)
        assert {rid: (state, pending) for rid, (_bucket, state, pending) in _held(chunked).items()} == model
        assert chunked.cursors() == one_by_one.cursors()
        assert chunked.counts() == one_by_one.counts()
    finally:
        for store in stores:
            store.close()



def test_cursors_that_are_no_object_end_the_pull_before_the_next_page_is_asked_for_with_them(store, server):
    fill(server, 4)
    original = server.pull
    asked = []

    def pull(cursors, limit):
        asked.append(dict(cursors))
        return {**original(cursors, limit), "cursors": [["grid:G-0101", "2"]]}

    server.pull = pull
    report = synchronize(store, server, page_limit=2)
    assert "RemoteChangeError" in report.error and "cursors" in report.error
    assert len(asked) == 1 and store.counts().records == 0 and store.cursors() == {}


def test_a_record_held_is_merged_whatever_text_came_with_it(store):
    """The text received stands for the state only for a record not held: a held one, with a pending local
    write, is merged field by field (the local write newer than the remote one stays, and stays pending)."""
    mine = store.create("event", event_values(description="mine"))
    older = str(HLC(T0 - 60_000, 0, SERVER_NODE))
    change = {"kind": "event", "id": mine.id, "bucket": "grid:G-0101",
              "fields": {"description": ["theirs", older], "address": ["2 Oak St", older]}}
    apply_page(store, [change], {}, {"grid:G-0101": "1"}, None, fields_json=['{"not":"this record\'s state"}'])
    record = store.get("event", mine.id)
    assert record.values["description"] == "mine" and record.values["address"] == "2 Oak St"
    assert "description" in record.pending


def test_a_record_not_held_is_stored_as_the_text_received(store):
    new = str(HLC(T0, 0, SERVER_NODE))
    change = {"kind": "event", "id": "0193b5c8-0000-7000-8000-00000000beef", "bucket": "grid:G-0101",
              "fields": {n: [v, new] for n, v in event_values().items()}}
    text = json.dumps(change["fields"], ensure_ascii=False, separators=(",", ":"))
    page = decode_pull(json.dumps({"changes": [change], "cursors": {"grid:G-0101": "1"}, "more": False},
                                  ensure_ascii=False, separators=(",", ":")).encode())
    apply_page(store, page["changes"], {}, page["cursors"], None, fields_json=page.fields_json)
    assert store.states("event", raw=True) == [(change["id"], "grid:G-0101", text)]
    assert store.get("event", change["id"]).values == event_values() and store.get("event", change["id"]).synced


def test_a_page_is_applied_in_chunks_and_a_short_tail_goes_with_the_chunk_before(store, monkeypatch):
    sizes = []
    original = store.apply_remote

    def apply_remote(changes, cursors, hlc=None, **texts):
        sizes.append(len(changes))
        return original(changes, cursors, hlc, **texts)

    monkeypatch.setattr(store, "apply_remote", apply_remote)
    hlc = str(HLC(T0, 0, SERVER_NODE))
    page = [{"kind": "event", "id": f"0193b5c8-0000-7000-8000-{n:012x}", "bucket": "grid:G-0101",
             "fields": {k: [v, hlc] for k, v in event_values().items()}} for n in range(11)]
    for chunk, expected in [(4, [4, 4, 3]), (5, [5, 6]), (10, [11]), (11, [11]), (20, [11]), (3, [3, 3, 3, 2])]:
        sizes.clear()
        apply_page(store, page, {}, {"grid:G-0101": "11"}, None, chunk=chunk)
        assert sizes == expected, chunk
    assert store.counts().records == 11


def test_a_pull_collects_garbage_less_often_and_puts_the_thresholds_back(store, server, monkeypatch):
    import gc

    import mobile.sync

    fill(server, 5)
    before = gc.get_threshold()
    seen = []
    original = store.apply_remote

    def apply_remote(changes, cursors, hlc=None, **texts):
        seen.append(gc.get_threshold())
        return original(changes, cursors, hlc, **texts)

    monkeypatch.setattr(store, "apply_remote", apply_remote)
    report = synchronize(store, server, page_limit=2)
    assert report.ok and report.pulled == 5
    assert seen and all(t[0] == max(before[0], mobile.sync.PULL_GC_THRESHOLD) and t[1:] == before[1:] for t in seen)
    assert gc.get_threshold() == before

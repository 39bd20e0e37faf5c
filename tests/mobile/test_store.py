"""The tablet's store: atomic writes, the outbox, acknowledgements, re-stamping, pulled pages, the clock."""

from __future__ import annotations

import json
import sqlite3
import threading

import pytest

from shared.hlc import HLC, format_ms
from shared.records import Change, ValidationError
import mobile.store
from mobile.store import RemoteChangeError, Store

from .conftest import NODE, REPORTER, event_values, new_id
from .fakes import DAY_MS, SERVER_NODE, T0, ManualClock


def remote_hlc(ms: int = T0, counter: int = 0, node: str = SERVER_NODE) -> str:
    return str(HLC(ms, counter, node))


def acked(change: Change, status: str = "applied", **extra) -> dict:
    return {"kind": change.kind, "id": change.id, "status": status, **extra}


# --- the file -----------------------------------------------------------------------------------

def test_the_store_uses_wal_and_full_sync(store):
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_the_node_id_is_made_once_and_kept(tmp_path, device_clock):
    with Store(tmp_path / "a.db", physical=device_clock) as first:
        node = first.node
    with Store(tmp_path / "a.db", physical=device_clock) as again:
        assert again.node == node
    assert len(node) == 16 and int(node, 16) >= 0


def test_a_store_refuses_to_change_its_node(tmp_path, device_clock):
    Store(tmp_path / "a.db", physical=device_clock, node=NODE).close()
    with pytest.raises(ValueError, match="belongs to node"):
        Store(tmp_path / "a.db", physical=device_clock, node="ffffffffffffffff")


def test_a_store_written_by_a_newer_app_is_not_opened(tmp_path, device_clock):
    Store(tmp_path / "a.db", physical=device_clock).close()
    with sqlite3.connect(tmp_path / "a.db") as db:
        db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(RuntimeError, match="newer app"):
        Store(tmp_path / "a.db", physical=device_clock)


def test_login_settings_are_kept(tmp_path, device_clock):
    with Store(tmp_path / "a.db", physical=device_clock) as store:
        store.save_login("https://gp.example", "tok", {"id": "u1", "name": "Li", "role": "worker"}, ["ref"])
    with Store(tmp_path / "a.db", physical=device_clock) as store:
        assert (store.server_url, store.token, store.user["name"]) == ("https://gp.example", "tok", "Li")
        store.forget_token()
        assert store.token is None and store.server_url == "https://gp.example"


# --- local writes -------------------------------------------------------------------------------

def test_a_write_stores_the_record_and_its_outbox_entry(store):
    change = store.create("event", event_values())
    record = store.get("event", change.id)
    assert record.values == event_values()
    assert record.bucket == "grid:G-0101"
    assert record.pending == frozenset(event_values())
    assert {hlc for _v, hlc in record.state.values()} == {change.max_hlc()}
    assert store.counts().unsynced == 1


def test_create_makes_a_uuid7_id(store, device_clock):
    change = store.create("event", event_values())
    assert change.id[14] == "7"
    assert int(change.id.replace("-", "")[:12], 16) == device_clock.ms


def test_a_write_that_fails_half_way_leaves_nothing(store, monkeypatch):
    before = store.clock.last

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(store, "_mark_pending", crash)
    record_id = new_id()
    with pytest.raises(OSError):
        store.write("event", record_id, event_values())
    assert store.get("event", record_id) is None
    assert store.counts().unsynced == 0
    assert store.clock.last == before


def test_an_edit_that_fails_half_way_keeps_the_old_state(store, monkeypatch):
    change = store.create("event", event_values())
    store.acknowledge([change], [acked(change)])
    monkeypatch.setattr(store, "_mark_pending", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        store.write("event", change.id, {"description": "changed"})
    record = store.get("event", change.id)
    assert record.values["description"] == "blocked fire exit"
    assert record.synced


@pytest.mark.parametrize("kind, values, field", [
    ("event", event_values(category="not a code!"), "category"),
    ("event", event_values(urgent="yes"), "urgent"),
    ("event", event_values(description="nul\x00byte"), "description"),
    ("event", event_values(colour="red"), "colour"),
    ("event", {"description": "no grid, no reporter"}, "bucket"),
    ("nonsense", {"x": 1}, "kind"),
])
def test_an_invalid_write_raises_and_stores_nothing(store, kind, values, field):
    with pytest.raises(ValidationError) as caught:
        store.write(kind, new_id(), values)
    assert field in json.dumps(caught.value.messages)
    assert store.counts() == store.counts().__class__(0, 0, 0)


def test_creating_a_record_needs_its_required_fields(store):
    with pytest.raises(ValidationError, match="required"):
        store.write("event", new_id(), {"grid": "G-0101", "description": "x"})


def test_a_value_that_cannot_travel_as_json_is_refused(store):
    with pytest.raises(ValidationError):
        store.write("event", new_id(), event_values(address=object()))


def test_a_bucket_that_contradicts_the_grid_is_refused(store):
    with pytest.raises(ValidationError, match="bucket"):
        store.write("event", new_id(), event_values(), bucket="grid:G-0999")


def test_a_child_record_lives_in_its_parents_bucket(store):
    event = store.create("event", event_values(grid="G-0202"))
    action = store.create("case_action", {"event": event.id, "action": "comment", "actor": REPORTER, "note": "seen"})
    assert action.bucket == "grid:G-0202"


def test_a_child_of_an_unknown_parent_needs_an_explicit_bucket(store):
    values = {"event": new_id(), "action": "comment", "actor": REPORTER}
    with pytest.raises(ValidationError, match="not on this device"):
        store.create("case_action", values)
    assert store.create("case_action", values, bucket="grid:G-0101").bucket == "grid:G-0101"


def test_only_changed_values_are_stamped(store):
    change = store.create("event", event_values())
    store.acknowledge([change], [acked(change)])
    edit = store.write("event", change.id, event_values(description="fire exit cleared"))
    assert set(edit.fields) == {"description"}
    assert store.get("event", change.id).pending == {"description"}
    assert store.write("event", change.id, event_values(description="fire exit cleared")).fields == {}


def test_history_cannot_be_rewritten(store):
    event = store.create("event", event_values())
    action = store.create("case_action", {"event": event.id, "action": "comment", "actor": REPORTER, "note": "a"})
    with pytest.raises(ValidationError, match="history"):
        store.write("case_action", action.id, {"note": "b"})
    assert store.get("case_action", action.id).values["note"] == "a"


def test_a_delete_is_a_tombstone(store):
    change = store.create("event", event_values())
    store.delete("event", change.id)
    assert store.get("event", change.id).deleted
    assert store.query("event") == []
    assert [r.id for r in store.query("event", include_deleted=True)] == [change.id]


def test_query_filters_by_kind_and_bucket(store, device_clock):
    a = store.create("event", event_values(grid="G-0101"))
    device_clock.advance(1)  # UUIDv7 ids sort by their millisecond
    b = store.create("event", event_values(grid="G-0202"))
    assert [r.id for r in store.query("event")] == [a.id, b.id]
    assert [r.id for r in store.query("event", "grid:G-0202")] == [b.id]
    assert store.get(None, b.id).kind == "event"
    assert store.query("tenant") == []


# --- the outbox -----------------------------------------------------------------------------------

def test_pending_changes_come_in_the_order_first_written(store):
    a = store.create("event", event_values())
    b = store.create("event", event_values())
    store.write("event", a.id, {"description": "edited after b"})
    out = store.pending_changes(10)
    assert [c.id for c in out.changes] == [a.id, b.id]
    assert out.changes[0].fields["description"][0] == "edited after b"
    assert [c.id for c in store.pending_changes(1).changes] == [a.id]
    assert [c.id for c in store.pending_changes(10, after_seq=store.pending_changes(1).last_seq).changes] == [b.id]


def test_pending_changes_carry_only_the_pending_fields(store):
    change = store.create("event", event_values())
    store.acknowledge([change], [acked(change)])
    store.write("event", change.id, {"urgent": True})
    [pending] = store.pending_changes(10).changes
    assert set(pending.fields) == {"urgent"}


def test_acknowledged_changes_leave_the_outbox(store):
    change = store.create("event", event_values())
    outcome = store.acknowledge(store.pending_changes(10), [acked(change)])
    assert outcome.applied == 1
    assert store.counts().unsynced == 0
    assert store.get("event", change.id).synced


def test_stale_is_an_acknowledgement_too(store):
    change = store.create("event", event_values())
    assert store.acknowledge([change], [acked(change, "stale")]).stale == 1
    assert store.counts().unsynced == 0


def test_an_edit_while_the_push_is_in_flight_stays_pending(store):
    change = store.create("event", event_values())
    snapshot = store.pending_changes(10)
    store.write("event", change.id, {"description": "edited in flight"})
    outcome = store.acknowledge(snapshot, [acked(change)])
    assert outcome.still_pending == 1
    record = store.get("event", change.id)
    assert record.pending == {"description"}  # the rest was acknowledged unchanged
    [again] = store.pending_changes(10).changes
    assert again.fields["description"][0] == "edited in flight"


def test_a_rejection_is_kept_with_its_reason_and_leaves_the_outbox(store):
    change = store.create("event", event_values())
    outcome = store.acknowledge([change], [acked(change, "rejected", reason="grid:G-0101 is not yours")])
    assert store.counts().unsynced == 0
    assert store.counts().rejected == 1
    [kept] = store.rejections()
    assert kept == outcome.rejected[0]
    assert (kept.kind, kept.id, kept.reason) == ("event", change.id, "grid:G-0101 is not yours")
    assert kept.fields == change.fields
    assert store.get("event", change.id) is not None  # the capture itself is not thrown away
    store.dismiss_rejection(kept.seq)
    assert store.rejections() == []


@pytest.mark.parametrize("results", [
    [],
    [{"kind": "event", "id": "0193b5c8-ffff-7000-8000-000000000000", "status": "applied"}],
    [{"kind": "event", "id": None, "status": "whatever"}],
])
def test_an_answer_that_does_not_match_the_push_acknowledges_nothing(store, results):
    change = store.create("event", event_values())
    if results and results[0]["id"] is None:
        results = [dict(results[0], id=change.id)]
    with pytest.raises(RemoteChangeError):
        store.acknowledge([change], results)
    assert store.counts().unsynced == 1


# --- re-stamping ------------------------------------------------------------------------------------

def test_restamp_rewrites_only_unacknowledged_writes_in_their_order(store, device_clock):
    sent = store.create("event", event_values())
    store.acknowledge([sent], [acked(sent)], hlc=remote_hlc(T0 + 10))
    device_clock.advance(DAY_MS)  # the tablet's clock jumps a day ahead
    a = store.create("event", event_values(description="a"))
    b = store.create("event", event_values(description="b"))
    a2 = store.write("event", a.id, {"urgent": True})
    old = [a.max_hlc(), b.max_hlc(), a2.max_hlc()]
    assert old == sorted(old) and HLC.parse(old[0]).wall_ms == T0 + DAY_MS

    assert store.restamp_pending(-DAY_MS) == 3

    a_state, b_state = store.get("event", a.id).state, store.get("event", b.id).state
    new = [a_state["description"][1], b_state["description"][1], a_state["urgent"][1]]
    assert new == sorted(new) and len(set(new)) == 3
    assert all(h > remote_hlc(T0 + 10) for h in new)  # still after everything seen from the server
    assert all(HLC.parse(h).wall_ms == T0 + 10 for h in new)  # no longer a day ahead
    assert {h for n, (_v, h) in a_state.items() if n != "urgent"} == {new[0]}  # one write, one stamp
    assert store.get("event", sent.id).state == {n: tuple(w) for n, w in sent.fields.items()}
    assert store.clock.offset_ms == -DAY_MS
    assert HLC.parse(str(store.clock.now())).wall_ms == T0 + 10


def test_restamp_survives_reopen(tmp_path, device_clock):
    device_clock.advance(DAY_MS)
    with Store(tmp_path / "a.db", physical=device_clock, node=NODE) as store:
        store.create("event", event_values())
        store.restamp_pending(-DAY_MS)
        last = store.clock.last
    with Store(tmp_path / "a.db", physical=device_clock, node=NODE) as store:
        assert store.clock.offset_ms == -DAY_MS
        assert store.clock.last == last
        assert store.clock.now() > last


def test_a_failed_restamp_leaves_the_clock_as_it_was(store, device_clock, monkeypatch):
    device_clock.advance(DAY_MS)
    store.create("event", event_values())
    before = (store.clock.last, store.clock.offset_ms)
    monkeypatch.setattr("mobile.store._dump_state", lambda state: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        store.restamp_pending(-DAY_MS)
    assert (store.clock.last, store.clock.offset_ms) == before


# --- pulled pages -------------------------------------------------------------------------------------

def remote_event(record_id: str, hlc: str, **values) -> dict:
    return {"kind": "event", "id": record_id, "bucket": "grid:G-0101",
            "fields": {n: [v, hlc] for n, v in event_values(**values).items()}}


def test_a_pulled_page_is_merged_and_its_cursors_saved(store):
    rid = new_id()
    assert store.apply_remote([remote_event(rid, remote_hlc())], {"ref": "0", "grid:G-0101": "1"}) == 1
    assert store.get("event", rid).values == event_values()
    assert store.get("event", rid).synced
    assert store.cursors() == {"ref": "0", "grid:G-0101": "1"}


def test_a_page_that_fails_half_way_saves_neither_records_nor_cursor(store, monkeypatch):
    first, second = new_id(), new_id()
    store.apply_remote([], {"grid:G-0101": "0"})
    original = mobile.store._record_row
    calls = []

    def crash_on_second(kind, record_id, bucket, state, text=None):
        calls.append(record_id)
        if len(calls) == 2:
            raise OSError("power lost")
        return original(kind, record_id, bucket, state, text)

    monkeypatch.setattr(mobile.store, "_record_row", crash_on_second)
    with pytest.raises(OSError):
        store.apply_remote([remote_event(first, remote_hlc()), remote_event(second, remote_hlc())],
                           {"grid:G-0101": "2"})
    assert store.get("event", first) is None
    assert store.cursors() == {"grid:G-0101": "0"}


def test_a_record_named_twice_in_a_page_merges_both_changes_in_order(store, device_clock):
    # A page is merged with one read of the records it names: the second change of a record must meet the
    # first's result, not the state before the page, whichever of the two wins each field.
    rid, mine = new_id(), store.create("event", event_values(description="mine", address="1 Elm St"))
    older, newer = remote_hlc(device_clock.ms - 5_000), remote_hlc(device_clock.ms + 5_000)
    page = [remote_event(rid, older, description="first"),
            {"kind": "event", "id": rid, "bucket": "grid:G-0101", "fields": {"description": ["second", newer]}},
            {"kind": "event", "id": rid, "bucket": "grid:G-0101", "fields": {"urgent": [True, older]}},
            {"kind": "event", "id": mine.id, "bucket": "grid:G-0101", "fields": {"description": ["theirs", newer]}},
            {"kind": "event", "id": mine.id, "bucket": "grid:G-0101", "fields": {"address": ["2 Oak St", older]}}]
    assert store.apply_remote(page, {"grid:G-0101": "5"}) == 2
    assert store.get("event", rid).values == {**event_values(description="second"), "urgent": True}
    record = store.get("event", mine.id)
    assert (record.values["description"], record.values["address"]) == ("theirs", "1 Elm St")
    assert record.pending == frozenset(event_values(address="")) - {"description"}, \
        "the field a newer remote write took leaves the outbox; the one an older write missed stays"


def test_a_bucket_missing_from_the_answer_is_dropped(store):
    store.apply_remote([], {"ref": "5", "grid:G-0101": "7"})
    store.apply_remote([], {"ref": "6"})
    assert store.cursors() == {"ref": "6"}


def test_unknown_fields_and_kinds_from_the_server_are_kept(store):
    rid = new_id()
    change = remote_event(rid, remote_hlc())
    change["fields"]["colour"] = [{"r": 1}, remote_hlc()]
    future = {"kind": "streetlight", "id": new_id(), "bucket": "grid:G-0101", "fields": {"lux": [40, remote_hlc()]}}
    store.apply_remote([change, future], {})
    store.write("event", rid, {"description": "edited by this older app"})
    record = store.get("event", rid)
    assert record.values["colour"] == {"r": 1}
    assert set(store.pending_changes(10).changes[0].fields) == {"description"}
    assert store.get("streetlight", future["id"]).values == {"lux": 40}
    # a later remote write of the unknown field still merges
    store.apply_remote([{**change, "fields": {"colour": [{"r": 2}, remote_hlc(T0 + 1)]}}], {})
    assert store.get("event", rid).values["colour"] == {"r": 2}


def test_a_newer_remote_write_wins_over_a_pending_one_and_clears_it(store, device_clock):
    change = store.create("event", event_values())
    store.write("event", change.id, {"urgent": True})
    newer = remote_hlc(device_clock.ms + 10_000)
    store.apply_remote([{"kind": "event", "id": change.id, "bucket": "grid:G-0101",
                         "fields": {"description": ["from the supervisor", newer]}}], {})
    record = store.get("event", change.id)
    assert record.values["description"] == "from the supervisor"
    assert "description" not in record.pending and "urgent" in record.pending


def test_an_older_remote_write_does_not_touch_a_pending_one(store, device_clock):
    change = store.create("event", event_values(description="mine"))
    older = remote_hlc(device_clock.ms - 10_000)
    store.apply_remote([remote_event(change.id, older, description="theirs")], {})
    record = store.get("event", change.id)
    assert record.values["description"] == "mine"
    assert record.pending == frozenset(event_values())


@pytest.mark.parametrize("bad", [
    "not an object",
    {"kind": "event", "id": "x", "bucket": "grid:G-0101", "fields": {"a": [1]}},
    {"kind": "event", "id": "x", "bucket": "grid:G-0101", "fields": {"a": [1, "yesterday"]}},
    {"kind": "event", "bucket": "grid:G-0101", "fields": {}},
    {"kind": "event", "id": "x", "bucket": "grid:G-0101", "fields": {"a": [1, None]}},
    # one HLC checked per change would let the second through
    {"kind": "event", "id": "x", "bucket": "grid:G-0101", "fields": {"a": [1, remote_hlc()], "b": [2, "yesterday"]}},
    # what the checks by C loops over the writes must refuse as the loop does
    {"kind": "event", "id": "x", "bucket": "grid:G-0101", "fields": {"a": [1, remote_hlc(), 3]}},
    {"kind": "event", "id": "x", "bucket": "grid:G-0101", "fields": {"a": [1, [remote_hlc()]]}},
    {"kind": "event", "id": "x", "bucket": "grid:G-0101", "fields": {"a": [1, {"h": 1}]}},
    {"kind": "event", "id": "x", "bucket": "grid:G-0101", "fields": {"a": "x" + remote_hlc()[:1]}},
    {"kind": "event", "id": "x", "bucket": "grid:G-0101", "fields": {"a": {"v": 1, remote_hlc(): 2}}},
    {"kind": "event", "id": "x", "bucket": "grid:G-0101", "fields": {"a": [1, remote_hlc() + "\n"]}},
])
def test_a_malformed_page_is_not_applied(store, bad):
    with pytest.raises(RemoteChangeError):
        store.apply_remote([remote_event(new_id(), remote_hlc()), bad], {"ref": "1"})
    assert store.counts().records == 0
    assert store.cursors() == {}


# --- the clock -------------------------------------------------------------------------------------------

def test_the_clock_absorbs_pulled_timestamps(store, device_clock):
    ahead = remote_hlc(device_clock.ms + 60_000, 3)
    store.apply_remote([remote_event(new_id(), ahead)], {})
    assert str(store.create("event", event_values()).max_hlc()) > ahead


def test_the_clock_never_goes_backwards_across_reopen(tmp_path):
    clock = ManualClock(T0 + DAY_MS)
    with Store(tmp_path / "a.db", physical=clock, node=NODE) as store:
        last = store.create("event", event_values()).max_hlc()
    clock.ms = 0  # the battery died and the clock restarted at 1970
    with Store(tmp_path / "a.db", physical=clock, node=NODE) as store:
        after = store.create("event", event_values()).max_hlc()
        assert after > last
        assert store.clock.physical_ms() == 0


def test_clock_steps_taken_outside_a_write_are_persisted(tmp_path, device_clock):
    with Store(tmp_path / "a.db", physical=device_clock, node=NODE) as store:
        stamped = store.clock.now()
        store.observe(remote_hlc(T0 + 5_000))
        seen = store.clock.last
    with Store(tmp_path / "a.db", physical=device_clock, node=NODE) as store:
        assert store.clock.last == seen and seen > stamped


def test_the_ui_and_a_sync_thread_can_share_the_store(store):
    errors = []

    def capture(n):
        try:
            for _ in range(n):
                store.create("event", event_values())
        except Exception as exc:  # collected and asserted below: a thread's exception is otherwise lost
            errors.append(exc)

    def drain():
        try:
            for _ in range(40):
                out = store.pending_changes(5)
                store.acknowledge(out, [acked(c) for c in out.changes])
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=capture, args=(30,)), threading.Thread(target=capture, args=(30,)),
               threading.Thread(target=drain)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.counts().records == 60
    hlcs = [r.state["grid"][1] for r in store.query("event")]
    assert len(set(hlcs)) == 60  # one lock: the clock never handed out a stamp twice
    assert format_ms(T0) in hlcs[0]


@pytest.mark.parametrize("call", [
    lambda store: store.apply_remote([], {"ref": "1"}, hlc="yesterday"),
    lambda store: store.observe("yesterday"),
])
def test_a_server_hlc_that_is_not_one_is_refused(store, call):
    with pytest.raises(RemoteChangeError):
        call(store)
    assert store.cursors() == {}


# --- background work gives way to a capture -----------------------------------------------------

def _hold_a_capture_open(store):
    """A foreground write held open on a thread until released: (started, release, the thread)."""
    started, release = threading.Event(), threading.Event()

    def capture():
        with store._transaction():
            started.set()
            release.wait(10)

    thread = threading.Thread(target=capture)
    thread.start()
    assert started.wait(10)
    return release, thread


def test_background_work_gives_way_while_a_capture_waits_for_the_store_and_while_it_runs(store):
    """A merge holds the store; a capture comes and waits for it; the sync's next step must wait for the capture."""
    merging, merge_done = threading.Event(), threading.Event()
    order = []

    def merge():
        with store.background(), store._transaction():
            merging.set()
            merge_done.wait(10)

    def capture():
        store.create("event", event_values())
        order.append("capture")

    def next_step():
        store.give_way(timeout=30)
        order.append("next step")

    first = threading.Thread(target=merge)
    first.start()
    assert merging.wait(10)
    saving = threading.Thread(target=capture)
    saving.start()
    while not store._lock.foreground_waiting():  # the capture waits for the store (it cannot have it yet)
        saving.join(0.01)
    step = threading.Thread(target=next_step)
    step.start()
    step.join(1.0)
    assert step.is_alive() and not order  # waiting, not racing the capture for the store
    merge_done.set()
    for thread in (first, saving, step):
        thread.join(10)
    assert order == ["capture", "next step"]


def test_a_pulled_chunk_gives_way_before_it_asks_for_the_store(store, monkeypatch):
    calls = []
    monkeypatch.setattr(store, "give_way", lambda *a, **k: calls.append(store._in_transaction))
    store.apply_remote([], {"grid:G": "7"})
    assert calls == [False] and store.pull_cursors() == {"grid:G": "7"}


def test_giving_way_has_a_limit_so_a_stream_of_captures_never_stops_a_sync(store):
    release, capture = _hold_a_capture_open(store)
    try:
        store.give_way(timeout=0.05)  # returns although the capture still runs
    finally:
        release.set()
        capture.join(10)
    store.give_way()  # nothing in the foreground: at once


def test_a_background_merge_does_not_make_the_fetch_thread_wait(store):
    """Only the foreground is waited for: the fetch thread never waits for the sync thread's merge."""
    entered, release = threading.Event(), threading.Event()

    def merge():
        with store.background(), store._transaction():
            entered.set()
            release.wait(10)

    thread = threading.Thread(target=merge)
    thread.start()
    assert entered.wait(10)
    done = threading.Thread(target=store.give_way, kwargs={"timeout": 10})
    done.start()
    done.join(5)
    try:
        assert not done.is_alive()
    finally:
        release.set()
        thread.join(10)

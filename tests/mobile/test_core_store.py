"""What the field app added to the store and the photo queue: write_many, settings, indexed reads, cheap photo counts."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mobile.photos import PhotoQueue
from mobile.store import Store, ValidationError

from .conftest import REPORTER, event_values, new_id


@pytest.fixture
def queue(store, tmp_path):
    """A photo queue over the test store."""
    return PhotoQueue(store, tmp_path / "photos")


def test_write_many_commits_all_or_nothing_and_in_order(store):
    event_id, action_id = new_id(), new_id()
    changes = store.write_many([
        ("event", event_id, event_values(), None),
        ("case_action", action_id, {"event": event_id, "action": "comment", "actor": REPORTER}, None),
    ])
    assert [c.kind for c in changes] == ["event", "case_action"]
    assert changes[1].bucket == "grid:G-0101"  # found from the event written a moment before, same transaction
    assert changes[0].max_hlc() < changes[1].max_hlc()
    before = (store.counts(), str(store.clock.last))
    with pytest.raises(ValidationError):
        store.write_many([("event", new_id(), event_values(description="ok"), None),
                          ("event", new_id(), event_values(description=7), None)])
    assert (store.counts(), str(store.clock.last)) == before  # the clock is put back too


def test_save_setting_keeps_json_and_refuses_the_stores_own_keys(store):
    store.save_setting("last_location", {"lat": 1.5, "lon": 2.0})
    assert store.setting("last_location") == {"lat": 1.5, "lon": 2.0}
    for key in ("token", "node", "clock_last", "offset_ms", "settled_hlc"):
        with pytest.raises(ValueError):
            store.save_setting(key, "x")


def test_new_ids_are_uuid7_in_time_order(store, device_clock):
    first = store.new_id()
    device_clock.advance(1)
    second = store.new_id()
    assert first < second and first[14] == "7"


def test_states_and_children_answer_by_field_from_the_indexes(store):
    mine = [new_id(), new_id()]
    for event_id in mine:
        store.write("event", event_id, event_values())
    other = new_id()
    store.write("event", other, event_values(reporter="0193b5c8-0000-7000-8000-0000000000ff"))
    actions = {}
    for event_id in mine + [other]:
        actions[event_id] = new_id()
        store.write("case_action", actions[event_id], {"event": event_id, "action": "comment", "actor": REPORTER})
    assert [rid for rid, _b, _s in store.states("event", where=("reporter", REPORTER))] == mine
    raw = store.states("event", where=("reporter", REPORTER), raw=True)
    assert all(isinstance(text, str) for _id, _b, text in raw)
    children = store.children("case_action", "event", mine)
    assert [(parent, rid) for parent, rid, _s in children] == [(e, actions[e]) for e in mine]
    assert children[0][2]["action"][0] == "comment"
    assert store.children("case_action", "event", []) == []
    store.delete("event", mine[0])
    assert [rid for rid, _b, _s in store.states("event", where=("reporter", REPORTER))] == [mine[1]]
    plan = " ".join(str(row) for row in store._db.execute(
        "EXPLAIN QUERY PLAN SELECT id FROM records INDEXED BY records_by_reporter "
        "WHERE kind = 'event' AND json_extract(state, '$.reporter[0]') = 'x'"))
    assert "records_by_reporter" in plan
    with pytest.raises(ValueError):
        store.states("event", where=("reporter') OR 1=1 --", "x"))


def test_the_indexes_are_added_to_a_store_made_before_them(tmp_path):
    with Store(tmp_path / "old.db") as old:
        old._db.execute("DROP INDEX records_by_reporter")
        old._db.execute("DROP INDEX records_by_event")
    with Store(tmp_path / "old.db") as reopened:
        names = {row[0] for row in reopened._db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"records_by_reporter", "records_by_event"} <= names


def _jpeg(seed: int) -> bytes:
    from tests.photos.helpers import make_jpeg
    return make_jpeg(16, 12, noise=True, seed=seed)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=st.lists(st.tuples(st.sampled_from(["event", "orphan", "deleted", "confirmed", "refused", "failed"]),
                               st.integers(0, 3)), max_size=8))
def test_law_waiting_counts_what_to_upload_lists(store, queue, plan):
    """waiting() is len(to_upload()) and its failures, however the photos stand."""
    for n, (fate, seed) in enumerate(plan):
        sha = queue.capture(_jpeg(seed * 10 + n % 3))
        if fate != "orphan":
            event_id = new_id()
            store.write("event", event_id, event_values(photos=[sha]))
            if fate == "deleted":
                store.delete("event", event_id)
        if fate == "confirmed":
            queue.confirm(sha)
        elif fate in ("refused", "failed"):
            queue.note_failure(sha, "boom", refused=fate == "refused")
    listed = queue.to_upload()
    assert queue.waiting() == (len(listed), sum(1 for p in listed if p.failures))


def test_discard_unsaved_frees_a_form_photo_but_not_one_a_record_uses(store, queue):
    loose = queue.capture(_jpeg(1))
    assert queue.discard_unsaved(loose) and queue.get(loose) is None and not queue.path(loose).exists()
    used = queue.capture(_jpeg(2))
    store.write("event", new_id(), event_values(photos=[used]))
    assert not queue.discard_unsaved(used) and queue.get(used) is not None and queue.path(used).exists()


# --- pulled pages applied in chunks (mobile/sync.py, apply_page) --------------------------------

def _remote_events(server, n):
    ids = []
    for _ in range(n):
        ids.append(new_id())
        hlc = str(server.clock.now())
        server.put({"kind": "event", "id": ids[-1], "bucket": "grid:G-0101",
                    "fields": {name: [value, hlc] for name, value in event_values().items()}})
    return ids


def test_a_page_is_applied_in_chunks_and_its_cursor_goes_with_the_last(store, server, monkeypatch):
    from mobile.sync import synchronize
    ids = _remote_events(server, 7)
    seen = []
    original = store.apply_remote

    def spy(changes, cursors, hlc=None):
        seen.append((len(list(changes)), dict(cursors)))
        return original(changes, cursors, hlc)

    monkeypatch.setattr(store, "apply_remote", spy)
    report = synchronize(store, server, page_limit=10, apply_chunk=3)
    assert report.ok and report.pulled == 7 and report.pages == 1
    assert [n for n, _c in seen] == [3, 3, 1]
    assert seen[0][1] == seen[1][1] == {} and seen[2][1]["grid:G-0101"] == "7"
    assert sorted(r.id for r in store.query("event")) == sorted(ids)


def test_a_page_cut_between_chunks_keeps_its_cursor_and_is_merged_again_harmlessly(store, server, monkeypatch):
    from mobile.sync import synchronize
    ids = _remote_events(server, 5)
    original = store.apply_remote
    calls = []

    def crash_on_second(changes, cursors, hlc=None):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("the app is killed between two chunks")
        return original(changes, cursors, hlc)

    monkeypatch.setattr(store, "apply_remote", crash_on_second)
    with pytest.raises(RuntimeError):
        synchronize(store, server, page_limit=10, apply_chunk=2)
    assert store.counts().records == 2 and store.cursors() == {}
    monkeypatch.setattr(store, "apply_remote", original)
    report = synchronize(store, server, page_limit=10, apply_chunk=2)
    assert report.ok and sorted(r.id for r in store.query("event")) == sorted(ids)
    assert store.cursors()["grid:G-0101"] == "5"


def test_a_malformed_page_is_refused_whole_before_any_chunk(store, server):
    from mobile.sync import synchronize
    _remote_events(server, 4)

    class Garbled:
        def push(self, *a, **k):
            return server.push(*a, **k)

        def pull(self, cursors, limit):
            answer = server.pull(cursors, limit)
            answer["changes"][-1] = {"kind": "event"}
            return answer

    report = synchronize(store, Garbled(), apply_chunk=1)
    assert not report.ok and "RemoteChangeError" in report.error
    assert store.counts().records == 0 and store.cursors() == {}


def test_a_snapshot_reads_without_the_lock_sees_a_fixed_state_and_closes(store):
    first = new_id()
    store.write("event", first, event_values())
    with store.snapshot() as db:
        (before,) = db.execute("SELECT count(*) FROM records").fetchone()
        store.write("event", new_id(), event_values())  # the lock is free: a capture goes on meanwhile
        assert db.execute("SELECT count(*) FROM records").fetchone() == (before,)
        with pytest.raises(sqlite3.OperationalError):
            db.execute("DELETE FROM records")  # read-only
    assert store.counts().records == before + 1 and store._readers == []

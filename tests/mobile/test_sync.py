"""synchronize() per concern, against the in-memory server: push, acknowledgements, rejections,
log-in loss, clock skew, paging, interrupted syncs, and convergence of several tablets."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.hlc import HLC, format_ms
from shared.records import Change
from mobile.store import Store
from mobile.sync import synchronize
from mobile.transport import LinkCut, Rejected, TooLarge, TransportError, Unauthorized

from .conftest import NODE, event_values, new_id
from .fakes import DAY_MS, T0, FakeServer, FlakyTransport, HookedTransport, ManualClock


def server_values(server: FakeServer, change: Change) -> dict:
    return {n: w[0] for n, w in server.records[(change.kind, change.id)].items()}


def snapshot(store: Store) -> dict:
    """Every record the store holds, with the outbox, for before/after comparisons."""
    records = {}
    for kind in ("event", "case_action", "tenant"):
        for record in store.query(kind, include_deleted=True):
            records[(kind, record.id)] = (record.state, record.pending)
    return records


# --- push --------------------------------------------------------------------------------------

def test_a_sync_pushes_the_outbox_and_marks_it_synced(store, server):
    changes = [store.create("event", event_values(description=f"n{i}")) for i in range(5)]
    report = synchronize(store, server, batch_size=2)
    assert report.ok, report.error
    assert (report.pushed, report.applied) == (5, 5)
    assert len(server.pushes()) == 3  # batches of 2, 2, 1
    assert [c["id"] for p in server.pushes() for c in p["changes"]] == [c.id for c in changes]
    assert store.counts().unsynced == 0
    assert server_values(server, changes[0]) == event_values(description="n0")


def test_the_push_carries_node_and_the_device_clock_uncorrected(store, server, device_clock):
    # sent_at is the device's own clock, so the server can show admins how far off it is even after
    # the tablet corrected its offset (with the corrected time it would see 0 from then on).
    store.create("event", event_values())
    store.restamp_pending(-1234)
    synchronize(store, server)
    [push] = server.pushes()
    assert push["node"] == NODE
    assert push["sent_at"] == format_ms(T0) == "2026-11-18T11:06:40.000Z"


def test_pushing_again_after_a_lost_answer_changes_nothing(store, server):
    change = store.create("event", event_values())
    flaky = FlakyTransport(server, plan=["after"])  # the server applied, the answer was lost
    report = synchronize(store, flaky)
    assert not report.ok and "after the server acted" in report.error
    assert store.counts().unsynced == 1
    report = synchronize(store, flaky)
    assert report.ok and report.stale == 1
    assert store.counts().unsynced == 0
    assert server.position == 1  # stored once
    assert server_values(server, change) == event_values()


def test_an_edit_while_the_push_is_in_flight_stays_pending(store, server):
    change = store.create("event", event_values())
    edit = HookedTransport(server, during_push=lambda: store.write("event", change.id, {"description": "in flight"}))
    report = synchronize(store, edit)
    assert report.ok and report.still_pending == 1
    assert store.get("event", change.id).pending == {"description"}
    assert server_values(server, change)["description"] == "blocked fire exit"
    report = synchronize(store, server)
    assert report.ok
    assert store.counts().unsynced == 0
    assert server_values(server, change)["description"] == "in flight"


def test_rejections_are_kept_with_their_reasons(store, server):
    server.reject = lambda change: "workers may not report in G-0202" if change.bucket == "grid:G-0202" else None
    ok = store.create("event", event_values())
    bad = store.create("event", event_values(grid="G-0202"))
    report = synchronize(store, server)
    assert report.ok
    assert (report.applied, [r.id for r in report.rejected]) == (1, [bad.id])
    assert store.counts().unsynced == 0  # a rejected change is not retried forever
    [kept] = store.rejections()
    assert (kept.id, kept.reason) == (bad.id, "workers may not report in G-0202")
    assert (ok.kind, ok.id) in server.records and (bad.kind, bad.id) not in server.records
    assert synchronize(store, server).pushed == 0


def test_a_401_stops_the_sync_and_leaves_the_outbox_untouched(store, server):
    for i in range(3):
        store.create("event", event_values(description=f"n{i}"))
    before = snapshot(store)
    server.revoked = True
    report = synchronize(store, server)
    assert report.needs_login and not report.ok
    assert snapshot(store) == before
    assert store.counts().unsynced == 3
    server.login("li", "secret", "tablet", NODE)
    assert synchronize(store, server).pushed == 3


def test_a_401_in_the_middle_of_a_sync_keeps_what_was_not_acknowledged(store, server):
    for i in range(4):
        store.create("event", event_values(description=f"n{i}"))

    class RevokeAfterFirstPush:
        def __init__(self):
            self.pushes = 0

        def push(self, *args, **kwargs):
            self.pushes += 1
            if self.pushes > 1:
                raise Unauthorized(401, "unauthorized", "revoked")
            return server.push(*args, **kwargs)

        def pull(self, *args, **kwargs):
            return server.pull(*args, **kwargs)

    report = synchronize(store, RevokeAfterFirstPush(), batch_size=2)
    assert report.needs_login and report.pushed == 2
    assert store.counts().unsynced == 2


def test_a_push_too_large_is_split(store, server):
    for i in range(5):
        store.create("event", event_values(description=f"n{i}"))
    original = server.push

    def at_most_two(node, changes, sent_at):
        if len(changes) > 2:
            raise TooLarge(413, "too_large", "a push may carry at most 2 changes")
        return original(node, changes, sent_at)

    server.push = at_most_two
    report = synchronize(store, server, batch_size=8)
    assert report.ok and report.applied == 5


def test_another_4xx_stops_the_sync_and_keeps_the_outbox(store, server):
    store.create("event", event_values())

    def malformed(*args, **kwargs):
        raise Rejected(400, "malformed", "the body is not valid JSON")

    server.push = malformed
    report = synchronize(store, server)
    assert "malformed" in report.error and not report.needs_login
    assert store.counts().unsynced == 1


# --- clock skew ------------------------------------------------------------------------------------

def test_clock_skew_restamps_only_unacknowledged_writes_in_order_and_retries(store, server, device_clock):
    early = store.create("event", event_values(description="acknowledged before the skew"))
    assert synchronize(store, server).ok
    device_clock.advance(DAY_MS)  # the tablet's clock jumps a day ahead
    a = store.create("event", event_values(description="a"))
    b = store.create("event", event_values(description="b"))
    store.write("event", a.id, {"urgent": True})

    report = synchronize(store, server)

    assert report.ok, report.error
    assert report.restamped == 3 and report.clock_offset_ms == -DAY_MS
    assert store.counts().unsynced == 0
    stored = {key: state for key, state in server.records.items()}
    assert stored[("event", early.id)] == dict(early.fields)  # not re-stamped
    a_state, b_state = stored[("event", a.id)], stored[("event", b.id)]
    order = [a_state["description"][1], b_state["description"][1], a_state["urgent"][1]]
    assert order == sorted(order)
    assert all(abs(HLC.parse(h).wall_ms - T0) < 60_000 for h in order)
    # the first push was refused whole; the second carried the fresh stamps. The urgent event a goes
    # first, on its own, then b.
    pushes = server.pushes()
    assert len(pushes) == 4 and pushes[1]["changes"][0]["fields"]["description"][1] > order[0]
    assert [[c["id"] for c in p["changes"]] for p in pushes[1:]] == [[a.id], [a.id], [b.id]]


def test_after_the_correction_new_writes_carry_the_server_time(store, server, device_clock):
    device_clock.advance(DAY_MS)
    store.create("event", event_values())
    assert synchronize(store, server).ok
    later = store.create("event", event_values())
    assert abs(HLC.parse(later.max_hlc()).wall_ms - T0) < 60_000
    assert synchronize(store, server).restamped == 0


def test_clock_skew_retries_are_bounded(store, server, device_clock):
    device_clock.advance(DAY_MS)
    store.create("event", event_values())
    server.clock.max_drift_ms = -DAY_MS * 10  # a server that refuses every timestamp
    report = synchronize(store, server, max_skew_retries=2)
    assert "clock_skew" in report.error
    assert len(server.pushes()) == 3
    assert store.counts().unsynced == 1


# --- pull --------------------------------------------------------------------------------------------

def fill(server: FakeServer, n: int, grid: str = "G-0101") -> list[str]:
    ids = []
    for i in range(n):
        rid = new_id()
        hlc = str(HLC(T0 - 1000, i, "0000000000000001"))
        server.put({"kind": "event", "id": rid, "bucket": f"grid:{grid}",
                    "fields": {k: [v, hlc] for k, v in event_values(grid=grid, description=f"r{i}").items()}})
        ids.append(rid)
    return ids


def test_pull_pages_until_more_is_false(store, server):
    ids = fill(server, 7, "G-0101") + fill(server, 3, "G-0202")
    seen = []
    report = synchronize(store, server, page_limit=3, progress=lambda *a: seen.append(a))
    assert report.ok and (report.pulled, report.pages) == (10, 4)
    assert sorted(r.id for r in store.query("event")) == sorted(ids)
    assert store.cursors() == {"grid:G-0101": "7", "grid:G-0202": "10", "ref": "0"}
    assert seen[0] == ("push", 0, 0)
    assert [s for s in seen if s[0] == "pull"] == [("pull", 0, None), ("pull", 3, None), ("pull", 6, None),
                                                     ("pull", 9, None), ("pull", 10, 10)]
    assert synchronize(store, server).pulled == 0  # change-only: nothing new, nothing sent


def test_an_interrupted_pull_resumes_where_it_stopped(store, server):
    ids = fill(server, 10)
    flaky = FlakyTransport(server, plan=["ok", "ok", "after"])  # pages 1, 2 saved; page 3 lost on the way
    report = synchronize(store, flaky, page_limit=3)
    assert not report.ok and report.pulled == 6
    assert store.cursors()["grid:G-0101"] == "6"
    report = synchronize(store, server, page_limit=3)
    assert report.ok and report.pulled == 4  # no page skipped, none repeated
    assert sorted(r.id for r in store.query("event")) == sorted(ids)


def test_a_page_that_cannot_be_saved_does_not_move_the_cursor(store, server, monkeypatch):
    fill(server, 4)
    original = store.apply_remote
    calls = []

    def crash_on_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise TransportError("stands in for any failure while the page is applied")
        return original(*args, **kwargs)

    monkeypatch.setattr(store, "apply_remote", crash_on_second)
    report = synchronize(store, server, page_limit=2)
    assert not report.ok
    assert store.cursors()["grid:G-0101"] == "2" and store.counts().records == 2


def test_a_grid_taken_away_loses_its_cursor_and_a_new_one_starts_from_zero(store, server):
    fill(server, 2, "G-0101")
    old = fill(server, 2, "G-0202")
    server.allowed = {"ref", "grid:G-0101"}
    synchronize(store, server)
    assert set(store.cursors()) == {"ref", "grid:G-0101"}
    server.allowed = {"ref", "grid:G-0202"}  # reassigned: G-0202's old records predate every cursor
    synchronize(store, server)
    assert set(store.cursors()) == {"ref", "grid:G-0202"}
    assert {r.id for r in store.query("event", "grid:G-0202")} == set(old)


def test_a_server_that_says_more_but_moves_nothing_does_not_loop(store):
    class Stuck:
        def push(self, *a, **k):
            return {"results": [], "hlc": None}

        def pull(self, cursors, limit):
            return {"changes": [], "cursors": dict(cursors), "more": True, "hlc": None}

    report = synchronize(store, Stuck())
    assert "more" in report.error


def test_an_answer_outside_the_contract_stops_the_sync_without_raising(store, server):
    store.create("event", event_values())
    original = server.pull
    server.pull = lambda cursors, limit: {**original(cursors, limit), "hlc": "yesterday"}
    report = synchronize(store, server)
    assert "RemoteChangeError" in report.error
    assert store.counts().unsynced == 0 and store.cursors() == {}


def test_only_one_sync_runs_at_a_time(store, server):
    store.create("event", event_values())
    inner = []
    hooked = HookedTransport(server, during_push=lambda: inner.append(synchronize(store, server)))
    report = synchronize(store, hooked)
    assert report.ok and report.pushed == 1
    assert "already running" in inner[0].error
    assert len(server.pushes()) == 1


def test_pulled_edits_of_another_device_reach_this_one(store, server, device_clock):
    change = store.create("event", event_values())
    synchronize(store, server)
    other = str(HLC(device_clock.ms + 5_000, 0, "0000000000000002"))
    server.put({"kind": "event", "id": change.id, "bucket": "grid:G-0101",
                "fields": {"description": ["closed by the unit", other]}})
    synchronize(store, server)
    assert store.get("event", change.id).values["description"] == "closed by the unit"
    assert store.clock.last > HLC.parse(other)


# --- convergence -------------------------------------------------------------------------------------

RECORDS = [f"0193b5c8-00{i:02x}-7000-8000-00000000c0de" for i in range(3)]
edits = st.tuples(
    st.sampled_from(["write", "sync", "sync", "tick"]),
    st.integers(0, 2),  # which tablet
    st.integers(0, 2),  # which record
    st.sampled_from(["description", "urgent", "_deleted", "address"]),
    st.integers(0, 3),  # which value
)
VALUES = {"description": ["a", "b", "c", "d"], "urgent": [True, False, True, False],
          "_deleted": [False, True, False, True], "address": [None, "1 Elm St", "2 Oak St", "3 Ash St"]}


@settings(deadline=None)
@given(script=st.lists(edits, max_size=30), skews=st.lists(st.integers(-120_000, 120_000), min_size=3, max_size=3),
       seed=st.integers(0, 2**32), rate=st.sampled_from([0.0, 0.3]))
def test_tablets_converge_whatever_the_order_and_the_network(script, skews, seed, rate):
    """Random edits of the same records, some made while a push is in flight, random syncs over a
    network that drops 30 % of calls before or after the server acts: after a final round every
    tablet holds what the server holds, and every outbox is empty."""
    server_clock = ManualClock(T0)
    server = FakeServer(server_clock)
    clocks = [ManualClock(T0 + skew) for skew in skews]
    tablets = [Store(":memory:", physical=clock, node=f"{i + 1:016x}") for i, clock in enumerate(clocks)]
    chance = random.Random(seed)

    def edit_in_flight(tablet):
        def edit():
            held = tablet.query("event", include_deleted=True)
            if held and chance.random() < 0.7:
                record, field = chance.choice(held), chance.choice(sorted(VALUES))
                fresh = [v for v in VALUES[field] if record.values.get(field, "unset") != v]
                tablet.write("event", record.id, {field: chance.choice(fresh)})
        return edit

    networks = [FlakyTransport(HookedTransport(server, during_push=edit_in_flight(tablet)), rate=rate, seed=seed + i)
                for i, tablet in enumerate(tablets)]
    try:
        for action, t, r, field, v in script:
            tablet, rid = tablets[t], RECORDS[r]
            if action == "write":
                values = {field: VALUES[field][v]}
                if tablet.get("event", rid) is None:
                    values = {**event_values(), **values}
                tablet.write("event", rid, values)
            elif action == "sync":
                synchronize(tablets[t], networks[t], batch_size=2, page_limit=2)
            else:
                for clock in [server_clock, *clocks]:
                    clock.advance(1 + v * 1000)
        for _ in range(2):
            for tablet in tablets:
                report = synchronize(tablet, server, batch_size=2, page_limit=2)
                assert report.ok, report.error
        expected = {("event", rid): state for (kind, rid), state in server.records.items()}
        for tablet in tablets:
            held = {("event", r.id): r.state for r in tablet.query("event", include_deleted=True)}
            assert held == expected
            assert tablet.counts().unsynced == 0 and tablet.rejections() == []
    finally:
        for tablet in tablets:
            tablet.close()


# --- a bad link (issue 20): cut pages asked again smaller, per-phase results, urgent first -------------

class CutLink:
    """The in-memory server behind a link that cuts a pull answer larger than ``fits`` changes (LinkCut).

    Its pull takes ``max_bytes`` as HttpTransport's does, and honours it as the real server does (at least one
    change); ``cuts`` scripts extra cuts: a list of booleans, one per call, before ``fits`` decides.
    """

    def __init__(self, inner: FakeServer, fits: int = 10**9, cuts=(), push_cuts=()):
        self.inner, self.fits, self.cuts, self.push_cuts = inner, fits, list(cuts), list(push_cuts)
        self.asked: list[tuple[int, int | None]] = []  # (limit, max_bytes) of every pull

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def push(self, *args, **kwargs):
        answer = self.inner.push(*args, **kwargs)
        if self.push_cuts and self.push_cuts.pop(0):
            raise LinkCut("POST /sync/push: connection reset (the server acted, the answer was lost)")
        return answer

    def pull(self, cursors, limit, max_bytes=None):
        self.asked.append((limit, max_bytes))
        if max_bytes is not None:
            # About 300 bytes a change here: the budget as changes, at least one.
            limit = min(limit, max(1, max_bytes // 300))
        if (self.cuts and self.cuts.pop(0)) or limit > self.fits:
            raise LinkCut("POST /sync/pull: IncompleteRead(4096 bytes read, 9000 more expected)")
        return self.inner.pull(cursors, limit)


def _backlog(server: FakeServer, n: int) -> None:
    for i in range(n):
        server.put(Change("event", new_id(), "grid:G-0101",
                          {name: (value, str(HLC(T0 - DAY_MS + i, 0, "5e7e7e7e7e7e7e7e")))
                           for name, value in event_values(description=f"backlog {i}").items()}))


def test_a_cut_page_is_asked_again_smaller_and_grows_back(store, server):
    _backlog(server, 40)
    link = CutLink(server, fits=5)
    waits = []
    report = synchronize(store, link, page_limit=16, page_bytes=10**9, sleep=waits.append)
    assert report.ok, report.error
    assert report.pulled == 40 and not report.more_to_pull and report.phases["pull"] == "done"
    limits = [limit for limit, _ in link.asked]
    assert limits[:4] == [16, 8, 4, 8], "halved on each cut, doubled after a page that arrived"
    assert report.retries == sum(1 for limit in limits if limit > 5) == len(waits)
    assert waits[0] == 0.25 and max(waits) <= 8.0
    assert len(store.query("event")) == 40


def test_the_byte_budget_halves_on_a_cut_and_goes_to_a_transport_that_takes_it(store, server):
    _backlog(server, 40)
    link = CutLink(server, cuts=[True, True])
    report = synchronize(store, link, page_bytes=16000, sleep=lambda s: None)
    assert report.ok and report.retries == 2 and report.pulled == 40
    assert [b for _, b in link.asked[:4]] == [16000, 8000, 4000, 8000], "halved on a cut, grown back after a page"


def test_a_transport_without_a_byte_budget_is_paged_by_limit_alone(store, server):
    _backlog(server, 3)
    report = synchronize(store, server)  # FakeServer.pull(cursors, limit): no max_bytes
    assert report.ok and report.pulled == 3


def test_a_cut_page_never_moves_the_cursor_and_too_many_cuts_end_the_sync_with_what_went_through(store, server):
    _backlog(server, 6)
    store.create("event", event_values(description="captured in the field"))
    link = CutLink(server, fits=2)
    report = synchronize(store, link, page_limit=2, max_retries=3, sleep=lambda s: None)
    assert report.ok and report.pages == 4  # two at a time fit: the backlog and the tablet's own event
    _backlog(server, 4)
    before = store.cursors()
    store.create("event", event_values(description="another"))
    link.fits = 0  # now every page is cut
    report = synchronize(store, link, page_limit=2, max_retries=3, sleep=lambda s: None)
    assert not report.ok and "IncompleteRead" in report.error and report.retries == 3
    assert report.phases == {"push": "done", "pull": "failed"} and report.uploads_done and report.more_to_pull
    assert report.pushed == 1 and store.counts().unsynced == 0, "the upload went through all the same"
    assert store.cursors() == before, "a page not applied whole moves no cursor"
    assert "uploads done" in report.summary() and "more to come" in report.summary()


def test_an_error_the_server_answered_is_not_asked_again(store, server):
    def refuse(*args, **kwargs):
        raise Rejected(400, "invalid", "cursor 'x' is not one this server gave")

    server.pull = refuse
    waits = []
    report = synchronize(store, server, sleep=waits.append)
    assert "invalid" in report.error and report.retries == 0 and waits == []


def test_a_push_whose_answer_is_cut_is_pushed_again_within_the_sync(store, server):
    changes = [store.create("event", event_values(description=f"n{i}")) for i in range(4)]
    link = CutLink(server, push_cuts=[True])
    report = synchronize(store, link, batch_size=4, sleep=lambda s: None)
    assert report.ok and report.retries == 1 and store.counts().unsynced == 0
    sizes = [len(p["changes"]) for p in server.pushes()]
    assert sizes == [4, 2, 2], "the cut batch went again, halved"  # the first reached the server: stale after
    assert all(server.records[("event", c.id)] for c in changes)


def test_urgent_events_are_pushed_before_the_rest_of_the_outbox(store, server):
    plain = [store.create("event", event_values(description=f"plain {i}")) for i in range(3)]
    urgent = store.create("event", event_values(description="fire", urgent=True))
    report = synchronize(store, server)
    assert report.ok and report.urgent_pushed == 1
    first, second = server.pushes()
    assert [c["id"] for c in first["changes"]] == [urgent.id]
    assert [c["id"] for c in second["changes"]] == [c.id for c in plain]


def test_the_report_says_per_phase_what_went_through(store, server):
    store.create("event", event_values())
    report = synchronize(store, server)
    assert report.phases == {"push": "done", "pull": "done"} and report.uploads_done and not report.more_to_pull


# --- photos within the sync ----------------------------------------------------------------------------

def _jpeg(seed: int) -> bytes:
    import io

    from PIL import Image

    noise = random.Random(seed).randbytes(160 * 120 * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (160, 120), noise).save(out, "JPEG", quality=95)
    return out.getvalue()


class PhotoLink:
    """The in-memory server's photo calls, counted; ``on_append(n)`` runs before the n-th append (from 1)."""

    def __init__(self, inner: FakeServer, on_append=None, failing: bool = False):
        self.inner, self.on_append, self.failing = inner, on_append, failing
        self.log: list[tuple] = []
        self.appends = 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def push(self, node, changes, sent_at):
        self.log.append(("push", tuple(c["id"] for c in changes)))
        return self.inner.push(node, changes, sent_at)

    def photo_offset(self, sha256):
        self.log.append(("head", sha256))
        return self.inner.photo_offset(sha256)

    def photo_append(self, sha256, offset, length, data):
        self.appends += 1
        if self.on_append:
            self.on_append(self.appends)
        self.log.append(("append", sha256, offset, len(data)))
        if self.failing:
            raise TransportError("connection reset by peer")
        return self.inner.photo_append(sha256, offset, length, data)


def test_after_an_interruption_only_the_photos_really_begun_are_asked_about(store, server, tmp_path):
    from mobile.photos import PhotoQueue

    queue = PhotoQueue(store, tmp_path / "photos")
    names = [queue.capture(_jpeg(n)) for n in range(3)]
    for name in names:
        store.create("event", event_values(photos=[name]))
    broken = PhotoLink(server, failing=True)
    report = synchronize(store, broken, photos=queue, sleep=lambda s: None)
    assert report.phases["photos"] == "failed" and report.uploads_done is False
    begun = [entry[1] for entry in broken.log if entry[0] == "append"]
    assert len(set(begun)) == 1, "the phase ended on the first photo's cuts"
    assert [n for n in names if queue.get(n).attempted] == begun[:1], "only the photo really begun is marked"
    link = PhotoLink(server)
    report = synchronize(store, link, photos=queue)
    assert report.photos.uploaded == 3 and report.phases["photos"] == "done" and report.uploads_done
    assert [entry for entry in link.log if entry[0] == "head"] == [("head", begun[0])], "one HEAD, not three"


def test_a_capture_during_the_photos_phase_is_pushed_at_once_and_its_urgent_photo_goes_next(store, server, tmp_path):
    from mobile.photos import PhotoQueue

    queue = PhotoQueue(store, tmp_path / "photos")
    backlog = [queue.capture(_jpeg(n)) for n in range(3)]
    for name in backlog:
        store.create("event", event_values(photos=[name]))
    urgent = {}

    def capture(n):
        if n == 2:  # the worker reports a fire while the first backlog photo is on its way
            name = queue.capture(_jpeg(99))
            urgent["photo"] = name
            urgent["event"] = store.create("event", event_values(description="fire", urgent=True, photos=[name])).id

    link = PhotoLink(server, on_append=capture)
    report = synchronize(store, link, photos=queue, photo_chunk=4 * 1024)
    assert report.ok and report.pushed_during_photos == 1 and report.urgent_pushed == 1
    assert store.counts().unsynced == 0
    pushed_at = link.log.index(("push", (urgent["event"],)))
    appends = [(i, entry[1]) for i, entry in enumerate(link.log) if entry[0] == "append"]
    order = list(dict.fromkeys(sha for _, sha in appends))
    first_done = max(i for i, sha in appends if sha == order[0])
    assert pushed_at < first_done, "pushed between two chunks, before the photo being sent was done"
    assert order[1] == urgent["photo"] and sorted(order[2:] + order[:1]) == sorted(backlog), \
        "the urgent photo goes next, then the backlog"
    assert all(server._complete(name) for name in order)

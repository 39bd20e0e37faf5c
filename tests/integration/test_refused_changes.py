"""Issue 13's proof: refused changes mended or discarded leave the tablet holding what the server holds.

One tablet (worker1, grid G-0101) syncs with the real server app through its own HttpTransport (see
transport.py). Hypothesis chooses what the worker does and so which changes the server refuses: events
reported in the worker's grid (accepted) or in G-0201 (refused, ``not_your_grid``), edits of held events
(accepted), edits that rename the reporter (refused, ``author_not_you``, on a record the server holds), a
dispatch the worker's role may not take (refused, ``role_may_not``); syncs; mends (a refused event moved to
the worker's grid and sent again), plain resends, and discards. At the end every refusal left is
discarded, the tablet syncs, and it holds exactly what the server holds.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mobile.store import Store
from mobile.sync import synchronize
from tests.mobile.fakes import T0, ManualClock

from .test_convergence import (ConvergenceServer, dispose, event_values, examples, scratch_directory,
                               server_state, tablet_state)
from .transport import FlaskTransport

OTHER_GRID = "G-0201"  # worker3's: a worker1 event there is refused


@pytest.fixture(scope="module")
def refusal_server(sqlite_template, tmp_path_factory):
    server = ConvergenceServer(tmp_path_factory.mktemp("refused"), sqlite_template)
    yield server
    dispose(server.app)


REPORT = st.tuples(st.just("report"), st.booleans(), st.integers(0, 3))
EDIT = st.tuples(st.just("edit"), st.integers(0, 7), st.sampled_from(["description", "urgent", "reporter"]),
                 st.integers(0, 3))
RENAME = st.tuples(st.just("edit"), st.integers(0, 7), st.just("reporter"), st.just(1))  # refused, server-held
DISPATCH = st.tuples(st.just("dispatch"), st.integers(0, 7))
SYNC = st.tuples(st.just("sync"), st.sampled_from([1, 3, 500]))
MEND = st.tuples(st.just("mend"), st.integers(0, 7))
RESEND = st.tuples(st.just("resend"), st.integers(0, 7))
DISCARD = st.tuples(st.just("discard"), st.integers(0, 7))
STEP = st.one_of(REPORT, REPORT, EDIT, RENAME, DISPATCH, SYNC, SYNC, MEND, RESEND, DISCARD, DISCARD)
TEXTS = ["楼道堆放杂物", "已清理", "still blocked", "电动车在室内充电"]


@settings(max_examples=examples(), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=st.lists(STEP, min_size=3, max_size=25))
def test_after_refusals_mends_and_discards_the_tablet_holds_what_the_server_holds(refusal_server, script):
    server = refusal_server
    login = server.logins[0]  # worker1
    other = server.logins[1].user["id"]  # worker2: a reporter worker1 may not name
    with scratch_directory() as directory:
        server.reset(Path(directory))
        clock = ManualClock(T0)
        store = Store(Path(directory) / f"{login.username}.db", physical=clock, node=login.node)
        transport = FlaskTransport(server.app.test_client(), store.token)
        me = login.user["id"]
        mine: list[str] = []  # the events this tablet reported, in order
        codes: set[str] = set()
        try:
            for step in script:
                clock.advance(1_000)
                if step[0] == "report":
                    _, own_grid, text = step
                    grid = "G-0101" if own_grid else OTHER_GRID
                    values = event_values(me, grid=grid, description=TEXTS[text])
                    mine.append(store.create("event", values).id)
                elif step[0] == "edit" and mine:
                    _, index, name, value = step
                    rid = mine[index % len(mine)]
                    if store.get("event", rid) is None:
                        continue  # discarded: the server never had it
                    new = {"description": TEXTS[value], "urgent": value % 2 == 0,
                           "reporter": other if value % 2 else me}[name]
                    store.write("event", rid, {name: new})
                elif step[0] == "dispatch" and mine:
                    rid = mine[step[1] % len(mine)]
                    record = store.get("event", rid)
                    if record is None:
                        continue
                    store.create("case_action", {"event": rid, "action": "dispatch", "actor": me, "unit": "U-FIRE",
                                                 "deadline": "2030-01-01T00:00:00.000Z"}, record.bucket)
                elif step[0] == "sync":
                    report = synchronize(store, transport, batch_size=step[1])
                    assert report.ok, report.error
                    codes.update(r.code for r in report.rejected)
                elif step[0] in ("mend", "resend", "discard"):
                    refused = sorted(store.refusals().items(), key=lambda item: item[1].seq)
                    if not refused:
                        continue
                    (kind, rid), rejection = refused[step[1] % len(refused)]
                    if step[0] == "discard":
                        store.discard_refused(kind, rid)
                        event("a discard")
                    elif step[0] == "mend" and kind == "event" and rejection.code == "not_your_grid":
                        store.write("event", rid, {"grid": "G-0101"})
                        store.resend_refused(kind, rid)
                        event("a refused event mended into the worker's grid")
                    else:
                        store.resend_refused(kind, rid)
            # The end: whatever is still refused is discarded, and the tablet syncs until nothing waits.
            for _ in range(4):
                for kind, rid in list(store.refusals()):
                    store.discard_refused(kind, rid)
                report = synchronize(store, transport)
                assert report.ok, report.error
                codes.update(r.code for r in report.rejected)
                if not store.refusals() and store.counts().unsynced == 0:
                    break
            report = synchronize(store, transport)  # one more pull: nothing left to push
            assert report.ok and report.pushed == 0, report
            for code in sorted(codes):
                event(f"refused: {code}")
            assert store.rejections() == [] and store.counts().unsynced == 0
            assert tablet_state(store) == server_state(server.app)
        finally:
            store.close()


def test_a_discarded_refused_edit_of_a_held_record_comes_back_with_the_servers_value(refusal_server):
    server = refusal_server
    login, other = server.logins[0], server.logins[1].user["id"]
    with scratch_directory() as directory:
        server.reset(Path(directory))
        clock = ManualClock(T0)
        with Store(Path(directory) / f"{login.username}.db", physical=clock, node=login.node) as store:
            transport = FlaskTransport(server.app.test_client(), store.token)
            rid = store.create("event", event_values(login.user["id"])).id
            assert synchronize(store, transport).applied == 1
            clock.advance(1_000)
            store.write("event", rid, {"reporter": other, "description": "改过的描述"})
            report = synchronize(store, transport)
            [refused] = report.rejected
            assert refused.code == "author_not_you" and refused.reason == "forbidden: reporter must be the pushing user"
            # Kept, and shown as refused: the worker's input is not lost.
            assert store.get("event", rid).values["description"] == "改过的描述"
            assert ("event", rid) in store.refusals()
            store.discard_refused("event", rid)
            assert "reporter" not in store.get("event", rid).values  # until the bucket is pulled again
            assert synchronize(store, transport).ok
            assert store.get("event", rid).values["reporter"] == login.user["id"]
            assert store.get("event", rid).values["description"] == event_values("x")["description"]
            assert tablet_state(store) == server_state(server.app)

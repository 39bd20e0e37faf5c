"""AppCore (log-in, settings, grids, reopening) and SyncRunner (threads, schedule, 401, the last outcome)."""

from __future__ import annotations

import threading
import time

import pytest

from mobile.app_core import AppCore, LoginFailed, Settings, SyncOutcome, SyncRunner
from mobile.presenters import CasesPresenter, HomePresenter, ReportPresenter
from mobile.sync import synchronize
from mobile.transport import HttpTransport

from .core_helpers import GRID, GRID2, SERVER_URL, WORKER, QueueSchedule, logged_in, open_core
from .fakes import T0, FakeServer, FlakyTransport, LocalHttpServer, error_body, serve_fake

GOOD = {"grid": GRID, "category": "fire_hazard", "description": "消防通道被杂物堵塞", "no_location_reason": "indoors"}


def run(runner: SyncRunner, schedule: QueueSchedule) -> list[SyncOutcome]:
    """One sync through the runner, its callbacks drained; the outcomes delivered."""
    outcomes: list[SyncOutcome] = []
    unsubscribe = runner.on_finished(outcomes.append)
    assert runner.sync_now()
    assert runner.join(10)
    schedule.drain()
    unsubscribe()
    return outcomes


# --- log-in ---------------------------------------------------------------------------------------

def test_a_fresh_core_needs_a_login_and_has_defaults(tmp_path, fake, clock):
    core = open_core(tmp_path / "app", fake, clock)
    try:
        assert core.needs_login and core.user is None and core.grids() == []
        assert core.settings == Settings(language="zh", photo_max_px=1920, server_url=None)
        assert (tmp_path / "app" / "gridpatrol.db").exists()
    finally:
        core.close()


def test_login_keeps_token_user_buckets_and_server_url(tmp_path, fake, clock):
    core = open_core(tmp_path / "app", fake, clock)
    try:
        core.login(SERVER_URL + "/ ", "worker1", "secret", device_name="平板1")
        assert not core.needs_login and core.user["id"] == WORKER
        assert core.settings.server_url == SERVER_URL + "/"
        assert [g.code for g in core.grids()] == [GRID, GRID2]  # named once ref data is pulled
        assert core.grids()[0].name is None
    finally:
        core.close()


@pytest.mark.parametrize("url, code", [("", "bad_url"), ("gridpatrol.example", "bad_url"),
                                       ("ftp://gridpatrol.example", "bad_url"), ("https://", "bad_url"),
                                       ("http://exa mple.org", "bad_url")])
def test_login_refuses_a_bad_url_without_calling_anyone(tmp_path, fake, clock, url, code):
    core = open_core(tmp_path / "app", fake, clock)
    try:
        with pytest.raises(LoginFailed) as caught:
            core.login(url, "worker1", "secret")
        assert caught.value.code == code and "address" in caught.value.message
        assert fake.calls == [] and core.needs_login
    finally:
        core.close()


def test_login_with_a_wrong_password_says_so(tmp_path, fake, clock):
    core = open_core(tmp_path / "app", fake, clock)
    try:
        with pytest.raises(LoginFailed) as caught:
            core.login(SERVER_URL, "worker1", "wrong")
        assert (caught.value.code, caught.value.message) == ("wrong_password", "Wrong user name or password")
        assert core.needs_login
    finally:
        core.close()


def test_login_to_an_unreachable_server_says_so(tmp_path, clock):
    import socket
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    core = AppCore(tmp_path / "app", now_ms=clock,
                   transport_factory=lambda url, token: HttpTransport(url, token, retries=0, timeout=2))
    try:
        with pytest.raises(LoginFailed) as caught:
            core.login(f"http://127.0.0.1:{port}", "worker1", "secret")
        assert caught.value.code == "unreachable" and "Cannot reach the server" in caught.value.message
    finally:
        core.close()


@pytest.mark.parametrize("status, code", [(404, "refused"), (500, "server_error"), (503, "server_error")])
def test_login_to_a_server_that_answers_an_error_says_so(tmp_path, clock, status, code):
    with LocalHttpServer(lambda request: (status, error_body("oops", "not here"), {})) as http:
        core = AppCore(tmp_path / "app", now_ms=clock,
                       transport_factory=lambda url, token: HttpTransport(url, token, retries=0, timeout=5))
        try:
            with pytest.raises(LoginFailed) as caught:
                core.login(http.url, "worker1", "secret")
            assert caught.value.code == code
        finally:
            core.close()


def test_login_over_http_with_the_real_transport(tmp_path, fake, clock):
    with serve_fake(fake) as http:
        core = AppCore(tmp_path / "app", now_ms=clock)  # the default factory: HttpTransport
        try:
            core.login(http.url, "worker1", "secret")
            assert core.user["name"] == "张伟" and core.store.token == f"token-{core.store.node}"
        finally:
            core.close()


def test_relogin_after_a_revoke_keeps_every_unsynced_capture(core, fake):
    report = ReportPresenter(core)
    sha = report.add_photo(_jpeg())
    ids = [report.save(**GOOD, photos=[sha]), report.save(grid=GRID, category="ebike_stairwell", description="x",
                                                          handled_on_spot=True, note="已劝离", photos=[sha],
                                                          no_location_reason="indoors")]
    fake.revoked = True
    schedule = QueueSchedule()
    runner = SyncRunner(core, schedule)
    [outcome] = run(runner, schedule)
    assert outcome.needs_login and not outcome.ok and core.needs_login
    assert core.store.counts().unsynced == 3
    report.save(**GOOD)  # captures go on while logged out
    core.login(SERVER_URL, "worker1", "secret")
    [outcome] = run(runner, schedule)
    assert outcome.ok and outcome.pushed == 4
    assert core.store.counts().unsynced == 0 and sha in fake.photos
    assert {("event", ids[0]), ("event", ids[1])} <= set(fake.records)


def test_another_user_may_not_log_in_over_unsynced_captures(core, fake):
    ReportPresenter(core).save(**GOOD)
    core.logout()
    fake.user = {"id": "0193b5c8-0000-7000-8000-0000000000ee", "name": "李娜", "role": "worker"}
    with pytest.raises(LoginFailed) as caught:
        core.login(SERVER_URL, "worker2", "secret")
    assert caught.value.code == "unsynced_other_user"
    assert core.user["id"] == WORKER and core.needs_login


# --- settings -------------------------------------------------------------------------------------

def test_settings_are_saved_checked_and_applied_to_photos(core):
    core.save_settings(language="en", photo_max_px=1280)
    assert core.settings.language == "en" and core.photos.settings.max_edge == 1280
    for bad in ({"language": "fr"}, {"photo_max_px": 10}, {"photo_max_px": "big"}, {"colour": "red"}):
        with pytest.raises(ValueError):
            core.save_settings(**bad)
    assert core.settings.language == "en"


def test_settings_survive_reopening(tmp_path, fake, clock):
    core = logged_in(tmp_path / "app", fake, clock)
    core.save_settings(language="en", photo_max_px=1024)
    core.close()
    again = open_core(tmp_path / "app", fake, clock)
    try:
        assert again.settings == Settings("en", 1024, SERVER_URL)
        assert again.photos.settings.max_edge == 1024
    finally:
        again.close()


# --- SyncRunner -----------------------------------------------------------------------------------

def test_runner_delivers_callbacks_only_through_schedule(core, fake):
    ReportPresenter(core).save(**GOOD)
    schedule = QueueSchedule()
    runner = SyncRunner(core, schedule)
    seen: list[tuple[str, object, str]] = []
    runner.on_progress(lambda phase, done, total: seen.append(("progress", phase, threading.current_thread().name)))
    runner.on_finished(lambda outcome: seen.append(("finished", outcome.ok, threading.current_thread().name)))
    assert runner.sync_now()
    assert runner.join(10)
    assert seen == []  # the worker thread called nobody directly
    assert schedule.drain() > 2
    assert seen[-1] == ("finished", True, threading.current_thread().name)
    assert {name for _what, _x, name in seen} == {threading.current_thread().name}
    assert [phase for what, phase, _n in seen if what == "progress"][:2] == ["push", "push"]


class Gate:
    """A transport around the fake whose pull waits for the test, counting syncs in flight."""

    def __init__(self, inner: FakeServer):
        self.inner = inner
        self.release = threading.Event()
        self.inside = 0
        self.most = 0
        self.pulls = 0
        self.lock = threading.Lock()

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def pull(self, cursors, limit):
        with self.lock:
            self.inside += 1
            self.pulls += 1
            self.most = max(self.most, self.inside)
        try:
            self.release.wait(10)
            return self.inner.pull(cursors, limit)
        finally:
            with self.lock:
                self.inside -= 1


def test_runner_never_runs_two_syncs_at_once_and_sync_now_never_blocks(core, fake):
    gate = Gate(fake)
    core.transport_factory = lambda url, token: gate
    schedule = QueueSchedule()
    runner = SyncRunner(core, schedule, interval_s=0.01)
    started = time.monotonic()
    assert runner.sync_now() is True
    assert runner.running
    assert runner.sync_now() is False  # one runs: nothing started, nothing waited for
    runner.start_background()  # the timer keeps asking, too
    time.sleep(0.1)
    assert time.monotonic() - started < 1.0
    gate.release.set()
    runner.stop()
    assert runner.join(10) and not runner.running
    assert gate.most == 1
    schedule.drain()


def periodic(core, is_online) -> tuple[SyncRunner, QueueSchedule, list[SyncOutcome]]:
    """A runner started to sync every 20 ms while is_online() says so; the list its outcomes are delivered to."""
    schedule = QueueSchedule()
    runner = SyncRunner(core, schedule, interval_s=0.02, is_online=is_online)
    outcomes: list[SyncOutcome] = []
    runner.on_finished(outcomes.append)
    runner.start_background()
    return runner, schedule, outcomes


def stop_after_an_outcome(runner: SyncRunner, schedule: QueueSchedule, outcomes: list[SyncOutcome]) -> None:
    """Play the UI thread until the runner has delivered an outcome (5 s at most), then stop the runner."""
    deadline = time.monotonic() + 5
    while not outcomes and time.monotonic() < deadline:
        time.sleep(0.02)
        schedule.drain()
    runner.stop()
    schedule.drain()


def test_background_sync_runs_only_when_online_and_logged_in(core, fake):
    online = threading.Event()
    runner, schedule, outcomes = periodic(core, online.is_set)
    time.sleep(0.15)
    runner.join(5)
    schedule.drain()
    assert outcomes == []  # offline: no attempt at all
    online.set()
    stop_after_an_outcome(runner, schedule, outcomes)
    assert outcomes and all(o.ok for o in outcomes)


def test_a_broken_online_check_is_logged_and_the_periodic_sync_goes_on(core, fake, caplog):
    checks = iter([RuntimeError("no connectivity service")])

    def is_online() -> bool:
        failure = next(checks, None)
        if failure is not None:
            raise failure
        return True

    runner, schedule, outcomes = periodic(core, is_online)
    stop_after_an_outcome(runner, schedule, outcomes)
    assert outcomes and outcomes[0].ok  # the check after the failed one let the sync run
    [record] = [r for r in caplog.records if "online check failed" in r.getMessage()]
    assert record.exc_info and "no connectivity service" in str(record.exc_info[1])


def test_a_401_forgets_the_token_reports_needs_login_and_leaves_the_outbox(core, fake):
    report = ReportPresenter(core)
    report.save(**GOOD)
    report.save(grid=GRID2, category="fire_hazard", description="second", no_location_reason="indoors")
    outbox = core.store.pending_changes(100).changes
    fake.revoked = True
    schedule = QueueSchedule()
    [outcome] = run(SyncRunner(core, schedule), schedule)
    assert outcome.needs_login and not outcome.ok and outcome.error
    assert core.needs_login and core.store.token is None and core.user["id"] == WORKER
    assert core.store.pending_changes(100).changes == outbox
    assert HomePresenter(core).view().needs_login


def test_without_a_token_the_runner_reports_needs_login_without_calling_the_server(core, fake):
    core.logout()
    calls = len(fake.calls)
    schedule = QueueSchedule()
    [outcome] = run(SyncRunner(core, schedule), schedule)
    assert outcome.needs_login and len(fake.calls) == calls


def test_a_failing_network_is_an_outcome_with_an_error_not_a_dead_thread(core, fake):
    ReportPresenter(core).save(**GOOD)
    core.transport_factory = lambda url, token: FlakyTransport(fake, plan=["before"])
    schedule = QueueSchedule()
    runner = SyncRunner(core, schedule)
    [outcome] = run(runner, schedule)
    assert not outcome.ok and not outcome.needs_login and "TransportError" in outcome.error
    assert core.store.counts().unsynced == 1 and not runner.running
    core.transport_factory = lambda url, token: (_ for _ in ()).throw(RuntimeError("broken factory"))
    [outcome] = run(runner, schedule)
    assert outcome.error == "RuntimeError: broken factory" and not runner.running


def test_the_last_outcome_and_last_success_persist_across_reopening(tmp_path, fake, clock):
    core = logged_in(tmp_path / "app", fake, clock)
    ReportPresenter(core).save(**GOOD)
    schedule = QueueSchedule()
    runner = SyncRunner(core, schedule)
    clock.advance(5000)
    [good] = run(runner, schedule)
    assert good.ok and good.pushed == 1 and good.finished_at_ms == T0 + 5000
    clock.advance(5000)
    core.transport_factory = lambda url, token: FlakyTransport(fake, plan=["before"])
    [bad] = run(runner, schedule)
    runner.stop()
    core.close()
    again = open_core(tmp_path / "app", fake, clock)
    try:
        view = HomePresenter(again).view()
        assert view.last_sync == bad and not view.last_sync.ok
        assert view.last_success_ms == T0 + 5000
    finally:
        again.close()


# --- the app killed ------------------------------------------------------------------------------

def test_everything_survives_closing_and_reopening_mid_way(tmp_path, fake, clock):
    """Captures, a photo, a half-done sync (answer lost): reopen, sync, and the server holds each once."""
    core = logged_in(tmp_path / "app", fake, clock)
    report = ReportPresenter(core)
    sha = report.add_photo(_jpeg())
    first = report.save(**GOOD, photos=[sha])
    # The push reaches the server, the answer is lost: the app is killed before it is acknowledged.
    result = synchronize(core.store, FlakyTransport(fake, plan=["after"]), photos=core.photos)
    assert not result.ok
    second = report.save(grid=GRID, category="ebike_stairwell", description="x", handled_on_spot=True, note="已劝离",
                         photos=[sha], no_location_reason="indoors")
    core.close()  # killed

    again = open_core(tmp_path / "app", fake, clock)
    try:
        assert not again.needs_login and again.user["id"] == WORKER
        rows = CasesPresenter(again).rows()
        assert {r.event_id for r in rows} == {first, second}
        assert again.store.counts().unsynced == 3 and again.photos.get(sha) is not None
        schedule = QueueSchedule()
        runner = SyncRunner(again, schedule)
        [outcome] = run(runner, schedule)
        assert outcome.ok and again.store.counts().unsynced == 0 and sha in fake.photos
        assert sum(1 for kind, _id in fake.records if kind == "event") == 2
        assert next(r for r in CasesPresenter(again).rows() if r.event_id == second).status == "closed"
    finally:
        again.close()


def test_a_capture_is_durable_the_moment_save_returns(tmp_path, fake, clock):
    """Another connection (as after a crash) sees the saved capture at once."""
    from mobile.store import Store
    core = logged_in(tmp_path / "app", fake, clock)
    try:
        event_id = ReportPresenter(core).save(**GOOD)
        with Store(tmp_path / "app" / "gridpatrol.db") as other:
            assert other.get("event", event_id) is not None and other.counts().unsynced == 1
    finally:
        core.close()


def _jpeg() -> bytes:
    from tests.photos.helpers import make_jpeg
    return make_jpeg(40, 30, noise=True, seed=7)


def test_closing_the_app_under_a_running_sync_still_ends_the_runner(tmp_path, fake, clock, caplog):
    core = logged_in(tmp_path / "app", fake, clock)
    gate = Gate(fake)
    core.transport_factory = lambda url, token: gate
    schedule = QueueSchedule()
    runner = SyncRunner(core, schedule)
    outcomes: list[SyncOutcome] = []
    runner.on_finished(outcomes.append)
    assert runner.sync_now()
    core.close()  # the app exits without stopping the runner first
    gate.release.set()
    assert runner.join(10) and not runner.running
    schedule.drain()
    assert len(outcomes) == 1 and not outcomes[0].ok and outcomes[0].error
    assert any("could not store the outcome" in r.getMessage() and r.exc_info for r in caplog.records)


def test_run_off_ui_hands_the_result_or_the_exception_to_the_ui_thread():
    from mobile.background import run_off_ui

    schedule, got = QueueSchedule(), []

    def fail():
        raise LoginFailed("no route to host", "unreachable")

    for delivered, work in enumerate((lambda: 42, fail)):
        run_off_ui(schedule, work, on_done=lambda result: got.append(("done", result)),
                   on_error=lambda error: got.append(("error", error))).join(10)
        assert len(got) == delivered  # nothing reaches the UI until its thread runs what was scheduled
        assert schedule.drain() == 1
    assert got[0] == ("done", 42)
    assert got[1][0] == "error" and isinstance(got[1][1], LoginFailed) and got[1][1].code == "unreachable"


def test_run_off_ui_logs_a_failure_nobody_asked_to_hear_of(caplog):
    from mobile.background import run_off_ui

    schedule = QueueSchedule()

    def fail():
        raise RuntimeError("disk full")

    run_off_ui(schedule, fail, on_done=lambda result: None).join(10)
    assert schedule.drain() == 0
    [record] = [r for r in caplog.records if r.name == "mobile.background"]
    assert record.exc_info and "disk full" in str(record.exc_info[1])


def test_another_user_over_unsynced_captures_is_refused_before_the_server_issues_a_token(core, fake):
    """Issue 13: the refusal must not leave a valid token of the refused user on the server: the server is
    not asked at all (its API has no call to take a token back)."""
    ReportPresenter(core).save(**GOOD)
    core.logout()
    logins = len([c for c in fake.calls if c[0] == "login"])
    with pytest.raises(LoginFailed) as caught:
        core.login(SERVER_URL, "worker2", "secret")
    assert caught.value.code == "unsynced_other_user"
    assert len([c for c in fake.calls if c[0] == "login"]) == logins  # no device registered, no token issued
    core.login(SERVER_URL, "worker1", "secret")  # the same user logs in again as before
    assert not core.needs_login

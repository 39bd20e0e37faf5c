#!/usr/bin/env python
"""Cases at district scale: the cases table on a store of 1,000,000 events (issue 15, "Scale to reach").

Run from the repository root::

    .venv/bin/python bench/cases_bench.py [--engine sqlite|postgresql|both] [--events N] [--quick]

For each engine a scratch store (bench/sync_bench.py's `scratch_store`: a temporary SQLite file or a
``gp_bench_*`` PostgreSQL database, migrated with flask_migrate) is bulk-loaded straight into
``records`` (COPY on PostgreSQL, executemany in chunks on SQLite; rows come from a generator, so
the bench never holds the store): reference data (200 grids = 10 streets x 4 communities x 5 grids,
10 categories with deadline hours, 6 units), then N events over a year (Chinese descriptions with
some English, addresses, locations, case numbers) and their case actions, with ``parent_id`` set
and field_values / field_hlcs as apply.py writes them, positions increasing in arrival order.
About a third of the events are dispatched; most of those are rectified, verified or closed, a few
fail verification four times (督办). Of the rest, micro events are mostly handled on the spot and
some are closed or marked duplicate by a supervisor.

Then:

1. ``flask --app server cases rebuild`` in a subprocess: its time and its peak memory (the
   command's own ru_maxrss, and VmRSS sampled every 5 ms), on the big store and on one a tenth of
   its size, to show that memory does not grow with the store;
2. the queue's first page, filtered by street and status ``dispatched``: through
   `server.cases.service.list_cases` and through the Flask test client (``GET /cases?street=…&
   status=dispatched``, a logged-in supervisor); on the big store and on a 10,000-event store built
   the same way, measurements alternating between the two so machine noise hits both;
3. a case page (random cases): `get_case` + `nearby_cases`, and ``GET /cases/<id>``;
4. keyword search (``QueueFilters(q=…)`` and ``GET /cases?q=…``): a rare word (a few dozen cases),
   an address (a few hundred), and a word that is nowhere;
5. the push of 500 changes (``POST /api/v1/sync/push`` with a device token, test client) with the
   cases table kept, and without it (`server.sync.apply._refold_cases` and `_number_new_events`
   patched to no-ops), rounds alternating: 500 new events, and 400 new events + 100 comments on
   stored events; wall time, and the CPU time of this process (on SQLite the database's work too);
   ``--push-only`` builds one store (20,000 events unless ``--events``) and runs this step and the next;
6. a search right after those pushes, whose catch-up indexes the events they brought
   (server/cases/search.py), then the same search again.

``flask cases rebuild`` also counts case_counts again and, on SQLite, fills the search index; the
queue's counts come from case_counts (the street's grids summed), its plan is printed with the others.

The plans of the queue and search queries on the big store are printed (EXPLAIN). Progress goes
to stderr, figures with pass/fail to stdout.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sync_bench as sb  # noqa: E402  (sets the scratch var dir and secret key before server is imported)

from sqlalchemy import event as sa_event, func, select  # noqa: E402
from werkzeug.security import generate_password_hash  # noqa: E402

from server import accounts, process  # noqa: E402
from server.cases import search, service  # noqa: E402
from server.db import db  # noqa: E402
from server.models import CaseRow, Record, User  # noqa: E402
from server.reference import load_reference  # noqa: E402
from server.sync import apply as apply_module  # noqa: E402
from server.sync import feed  # noqa: E402
from shared.hlc import HLC, format_ms  # noqa: E402
from shared.records import uuid7  # noqa: E402

progress = sb.progress
DAY_MS, HOUR_MS = 86_400_000, 3_600_000
TZ = timezone(timedelta(hours=8))
NODE, SERVER_NODE, PUSH_NODE = "c1" * 8, "5e" * 8, "a1" * 8

STREETS = ["东湖街道", "翠竹街道", "桂园街道", "黄贝街道", "莲塘街道", "南湖街道", "笋岗街道", "清水河街道",
           "东门街道", "东晓街道"]
ROADS = ["东湖路", "翠竹路", "桂园路", "黄贝路", "莲塘路", "南湖路", "笋岗路", "清水河路", "东门路", "东晓路"]
COMMUNITY_NAMES = ["一社区", "二社区", "三社区", "四社区"]
UNITS = {"fire": "消防大队", "urban": "城管执法中队", "housing": "住建所", "traffic": "交警中队",
         "env": "环卫所", "market": "市场监管所"}
# code: (name, unit, deadline hours, urgent hours)
CATEGORIES = {
    "fire_hazard": ("消防隐患", "fire", 24, 4), "ebike_charging": ("电动车违规充电", "fire", 48, 12),
    "blocked_escape": ("疏散通道堵塞", "fire", 24, 4), "illegal_wiring": ("私拉电线", "housing", 72, 12),
    "illegal_construction": ("违法建设", "urban", 168, 48), "street_vendor": ("占道经营", "urban", 48, None),
    "illegal_parking": ("违章停车", "traffic", 24, 4), "garbage": ("垃圾堆放", "env", 48, 12),
    "sewage": ("污水外溢", "env", 72, 12), "unlicensed_business": ("无照经营", "market", 168, None),
}
PHRASES = {
    "fire_hazard": ["楼道内堆放易燃杂物", "消防栓被遮挡，无法使用", "灭火器过期未更换", "fire extinguisher missing"],
    "ebike_charging": ["楼道内电动车飞线充电", "电动车停放在楼梯间充电", "e-bike charging in the stairwell"],
    "blocked_escape": ["出租屋疏散通道被杂物堵塞", "安全出口上锁", "escape route blocked by boxes"],
    "illegal_wiring": ["私拉电线至楼外", "电线裸露，存在漏电风险", "loose wiring over the alley"],
    "illegal_construction": ["违建加层，已拍照取证", "天台搭建铁皮房", "illegal rooftop extension"],
    "street_vendor": ["商铺门前占道经营", "流动摊贩占用人行道", "street vendor blocking the pavement"],
    "illegal_parking": ["车辆占用消防通道", "人行道违章停车", "car parked on the fire lane"],
    "garbage": ["路口垃圾堆放，影响通行", "建筑垃圾随意倾倒", "Dumped garbage next to the bus stop"],
    "sewage": ["化粪池满溢，污水外流", "下水道堵塞，路面积水", "sewage overflowing onto the road"],
    "unlicensed_business": ["无证经营小作坊", "出租屋内开设无照网吧", "unlicensed workshop in a flat"],
}
# A word in about one description in 20,000: the search that finds a few cases.
RARE_WORD, RARE_SHARE = "煤气罐泄漏", 1 / 20_000
MISSING_WORD = "hoverboard"
NOTES = ["已到现场核实", "已整改完毕，附照片", "请尽快处理", "复查未通过，仍有杂物", "已联系业主", "checked on site"]


def grids() -> list[dict]:
    """200 grids: 10 streets x 4 communities x 5 grids."""
    found = []
    for s, street in enumerate(STREETS):
        for c, community in enumerate(COMMUNITY_NAMES):
            for g in range(5):
                n = len(found) + 1
                found.append({"code": f"G-{n:04d}", "name": f"{street[:-2]}{community[:-2]}第{g + 1}网格",
                              "type": "base", "community": street[:-2] + community, "street": street,
                              "district": "示范区"})
    return found


def dumps(values: dict) -> str:
    return json.dumps(values, ensure_ascii=False, separators=(",", ":"))


class Generator:
    """Records rows (id, kind, bucket, field_values, field_hlcs, position, device_id, parent_id), streamed.

    Events come in time order over a year ending two hours ago; each event's actions are queued in
    a heap by their time and come out between later events, as they would arrive.
    """

    def __init__(self, events: int, seed: int, reporters: list[str], supervisor: str, end_ms: int):
        self.events, self.rng = events, random.Random(seed)
        self.reporters, self.supervisor = reporters, supervisor
        self.end_ms = end_ms
        self.start_ms = end_ms - 365 * DAY_MS
        self.grids = grids()
        self.days: dict[str, int] = {}  # case numbers handed out per day
        self.counts = {"events": 0, "actions": 0}

    def reference_rows(self) -> Iterator[tuple]:
        hlc = str(HLC(self.start_ms - DAY_MS, 0, SERVER_NODE))
        rng = self.rng
        items = [("grid", g) for g in self.grids]
        items += [("category", {"code": code, "name": name, "default_unit": unit, "deadline_hours": hours,
                                "urgent_deadline_hours": urgent, "micro": code in ("garbage", "street_vendor"),
                                "duplicate_radius_m": 50})
                  for code, (name, unit, hours, urgent) in CATEGORIES.items()]
        items += [("unit", {"code": code, "name": name}) for code, name in UNITS.items()]
        for kind, values in items:
            yield (uuid7(self.start_ms - DAY_MS, rng.randbytes(10)), kind, "ref", dumps(values),
                   dumps({k: hlc for k in values}), None, None)

    def _event(self, at_ms: int) -> tuple[tuple, list[tuple[int, str, dict]]]:
        rng = self.rng
        g = rng.randrange(len(self.grids))
        grid = self.grids[g]["code"]
        category = rng.choice(list(CATEGORIES))
        phrase = rng.choice(PHRASES[category])
        if rng.random() < RARE_SHARE:
            phrase = f"{RARE_WORD}，{phrase}"
        road = ROADS[g // 20]
        micro = category in ("garbage", "street_vendor") and rng.random() < 0.6
        urgent = rng.random() < 0.08
        reporter = self.reporters[g % len(self.reporters)]
        day = datetime.fromtimestamp(at_ms / 1000, TZ).strftime("%Y%m%d")
        self.days[day] = self.days.get(day, 0) + 1
        values = {
            "grid": grid, "category": category,
            "description": f"{phrase}（{rng.randrange(1, 40)}栋{rng.randrange(1, 30)}0{rng.randrange(1, 6)}）",
            "location": {"lat": round(22.50 + (g % 20) / 200 + rng.random() / 200, 6),
                         "lon": round(114.00 + (g // 20) / 100 + rng.random() / 100, 6),
                         "accuracy_m": float(rng.randrange(3, 30)), "source": "gps"},
            "address": f"{road}{rng.randrange(1, 300)}号", "photos": [rng.randbytes(32).hex()],
            "urgent": urgent, "micro": micro, "reporter": reporter, "reported_at": format_ms(at_ms),
        }
        hlc = str(HLC(at_ms, 0, NODE))
        hlcs = {k: hlc for k in values}
        values["case_number"] = f"{day}-{self.days[day]:04d}"
        hlcs["case_number"] = str(HLC(at_ms + 1500, 0, SERVER_NODE))
        event_id = uuid7(at_ms, rng.randbytes(10))
        row = (event_id, "event", f"grid:{grid}", dumps(values), dumps(hlcs), None, None)
        return row, self._actions(event_id, category, reporter, micro, at_ms)

    def _actions(self, event_id: str, category: str, reporter: str, micro: bool,
                 at_ms: int) -> list[tuple[int, str, dict]]:
        """The case's story: (time, action, extra values), stopping at the present."""
        rng = self.rng
        unit, hours = CATEGORIES[category][1], CATEGORIES[category][2]
        story: list[tuple[int, str, dict]] = []
        t = at_ms

        def then(after_ms: float, action: str, actor: str, **extra) -> None:
            nonlocal t
            t += int(after_ms)
            story.append((t, action, {"actor": actor, **extra}))

        sup, r = self.supervisor, rng.random()
        if rng.random() < 0.1:
            then(rng.uniform(0.1, 3) * HOUR_MS, "comment", sup, note=rng.choice(NOTES))
        if r < 1 / 3:  # dispatched
            then(rng.uniform(0.5, 6) * HOUR_MS, "dispatch", sup, unit=unit)
            fate = rng.random()
            if fate < 0.003:  # four failed verifications: 督办
                for _ in range(4):
                    then(rng.uniform(0.3, 0.9) * hours * HOUR_MS, "rectify", f"unit-{unit}", note="已整改")
                    then(rng.uniform(1, 24) * HOUR_MS, "verify_fail", reporter, note=rng.choice(NOTES))
            elif fate < 0.30:
                pass  # still with the unit
            else:
                then(rng.uniform(0.2, 0.9) * hours * HOUR_MS, "rectify", f"unit-{unit}", note="已整改",
                     photos=[rng.randbytes(32).hex()])
                verdict = rng.random()
                if verdict < 0.65:
                    then(rng.uniform(1, 48) * HOUR_MS, "verify_pass", reporter)
                elif verdict < 0.75:
                    then(rng.uniform(1, 48) * HOUR_MS, "close", sup, note="经核查已办结")
                elif verdict < 0.80:
                    then(rng.uniform(1, 24) * HOUR_MS, "verify_fail", reporter, note=rng.choice(NOTES))
                    then(rng.uniform(0.2, 0.9) * hours * HOUR_MS, "rectify", f"unit-{unit}", note="再次整改")
                    then(rng.uniform(1, 48) * HOUR_MS, "verify_pass", reporter)
                # else: rectified, awaiting verification
        elif micro and r < 0.75:
            then(rng.uniform(0.05, 1) * HOUR_MS, "handle_on_spot", reporter, note="现场已处理",
                 photos=[rng.randbytes(32).hex()])
        elif r < 0.70:
            then(rng.uniform(1, 72) * HOUR_MS, "close", sup, note="不属于处置范围，已办结")
        elif r < 0.72:
            then(rng.uniform(1, 24) * HOUR_MS, "mark_duplicate", sup, note="重复上报")
        # else: still reported
        return [step for step in story if step[0] < self.end_ms]

    def rows(self) -> Iterator[tuple]:
        """Every row, positions 1…: the reference data, then events and actions in arrival order."""
        position = 0
        for row in self.reference_rows():
            position += 1
            yield (*row[:5], position, *row[5:])
        pending: list[tuple[int, str, str, str, str, dict]] = []  # (time, id, event id, bucket, action, values)
        span = self.end_ms - self.start_ms
        rng = self.rng
        for n in range(self.events):
            at_ms = self.start_ms + span * n // self.events
            while pending and pending[0][0] <= at_ms:
                position += 1
                item = heapq.heappop(pending)
                yield (*self._action_row(item), position, None, item[2])
            row, story = self._event(at_ms)
            position += 1
            self.counts["events"] += 1
            yield (*row[:5], position, None, None)
            for when, action, values in story:
                heapq.heappush(pending, (when, uuid7(when, rng.randbytes(10)), row[0], row[2], action, values))
        while pending:
            position += 1
            item = heapq.heappop(pending)
            yield (*self._action_row(item), position, None, item[2])

    def _action_row(self, item) -> tuple:
        when, rid, event_id, bucket, action, extra = item
        values = {"event": event_id, "action": action, **extra}
        hlc = str(HLC(when, 0, NODE))
        self.counts["actions"] += 1
        return (rid, "case_action", bucket, dumps(values), dumps({k: hlc for k in values}))


COLUMNS = "id, kind, bucket, field_values, field_hlcs, position, device_id, parent_id"


def bulk_load(app, generator: Generator, what: str) -> float:
    """Load the rows straight into records (COPY, or executemany in chunks), number the days, raise the feed."""
    started = time.perf_counter()
    with app.app_context():
        engine = db.engine
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            n = 0
            if engine.dialect.name == "postgresql":
                with cursor.copy(f"COPY records ({COLUMNS}) FROM STDIN") as copy:
                    for n, row in enumerate(generator.rows(), 1):
                        copy.write_row(row)
                        if n % 250_000 == 0:
                            progress(f"  {what}: {n:,} rows")
                mark = "%s"
            else:
                sql = f"INSERT INTO records ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?)"
                batch: list[tuple] = []
                for n, row in enumerate(generator.rows(), 1):
                    batch.append(row)
                    if len(batch) == 20_000:
                        cursor.executemany(sql, batch)
                        batch.clear()
                    if n % 250_000 == 0:
                        progress(f"  {what}: {n:,} rows")
                if batch:
                    cursor.executemany(sql, batch)
                mark = "?"
            if engine.dialect.name == "postgresql":  # each day's base, as migration 0015 sets it (casebook.py)
                cursor.executemany("INSERT INTO case_number_days (day, base) VALUES (%s, %s)",
                                   [(day, -last) for day, last in sorted(generator.days.items())])
            else:
                cursor.executemany(f"INSERT INTO case_numbers (day, last) VALUES ({mark}, {mark})",
                                   sorted(generator.days.items()))
            cursor.execute("UPDATE feed SET position = (SELECT max(position) FROM records) WHERE id = 1")
            if engine.dialect.name == "postgresql":  # where its positions come from (server/sync/feed.py)
                cursor.execute("SELECT setval('feed_position_seq', (SELECT max(position) FROM records))")
            raw.commit()
            cursor.execute("ANALYZE")
            raw.commit()
        finally:
            raw.close()
        count = db.session.scalar(select(func.count()).select_from(Record))
        db.session.remove()
    assert count == n, (count, n)
    return time.perf_counter() - started


# --- the stores ---------------------------------------------------------------------------------

class Store:
    """A loaded, rebuilt store and its users."""

    def __init__(self, engine: str, url: str, events: int):
        self.engine, self.url, self.events = engine, url, events
        self.app = sb.make_app(url)
        self.figures: dict[str, Any] = {}

    def analyze(self) -> None:
        with self.app.app_context():
            with db.engine.connect() as conn:
                if self.engine == "postgresql":
                    # What autovacuum does to a freshly filled table (PostgreSQL 13+: after inserts too):
                    # the visibility map, without which no index-only scan.
                    conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
                else:
                    conn.exec_driver_sql("ANALYZE")
                    conn.commit()


def make_users(app) -> dict[str, Any]:
    """A supervisor, and 20 workers of 10 grids each (the reporters); cheap password hashes."""
    cheap = lambda password: generate_password_hash(password, method="pbkdf2:sha256:1000")  # noqa: E731
    codes = [g["code"] for g in grids()]
    with mock.patch.object(accounts, "generate_password_hash", cheap), app.app_context():
        supervisor = accounts.create_user("supervisor", sb.PASSWORD, role="supervisor")
        workers = [accounts.create_user(f"worker{w:02d}", sb.PASSWORD, role="worker",
                                        grids=[c for i, c in enumerate(codes) if i % 20 == w])
                   for w in range(20)]
        db.session.commit()
        return {"supervisor": supervisor.id, "workers": [w.id for w in workers],
                "pusher_grids": [c for i, c in enumerate(codes) if i % 20 == 0]}


def build_store(stack: ExitStack, engine: str, events: int, seed: int) -> Store:
    url = stack.enter_context(sb.scratch_store(engine))
    store = Store(engine, url, events)
    store.users = make_users(store.app)
    end_ms = int(time.time() * 1000) - 2 * HOUR_MS
    generator = Generator(events, seed, store.users["workers"], store.users["supervisor"], end_ms)
    progress(f"[{engine}] loading {events:,} events and their actions")
    seconds = bulk_load(store.app, generator, f"{events:,} store")
    store.figures["load"] = {"seconds": seconds, **generator.counts}
    progress(f"[{engine}]   {generator.counts['events']:,} events, {generator.counts['actions']:,} actions "
             f"in {seconds:.1f} s")
    stack.callback(lambda: _dispose(store.app))
    return store


def _dispose(app) -> None:
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


# --- 1. rebuild -----------------------------------------------------------------------------------

def rebuild(store: Store) -> dict[str, Any]:
    """``flask cases rebuild`` in a subprocess: seconds, its reported peak and sampled VmRSS peak (KiB)."""
    _dispose(store.app)
    env = {**os.environ, "GRIDPATROL_DATABASE_URL": store.url, "GRIDPATROL_NODE": SERVER_NODE,
           "GRIDPATROL_PHOTO_DIR": str(sb.TMP / "photos"), "PYTHONPATH": str(sb.ROOT)}
    command = [sys.executable, "-m", "flask", "--app", "server", "cases", "rebuild"]
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=sb.ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    peak, samples = 0, 0
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(proc.stdout), daemon=True)
    reader.start()
    while proc.poll() is None:
        try:
            peak = max(peak, sb.proc_status_kib(proc.pid, "VmHWM"), sb.proc_status_kib(proc.pid, "VmRSS"))
            samples += 1
        except (OSError, KeyError):  # exiting
            pass
        time.sleep(0.005)
    seconds = time.perf_counter() - started
    reader.join()
    text_out = "".join(output)
    assert proc.returncode == 0, text_out[-2000:]
    last = [line for line in text_out.splitlines() if line.startswith("Folded")][-1]
    reported_mb = float(last.rsplit("peak memory ", 1)[1].split()[0])
    with store.app.app_context():
        count = db.session.scalar(select(func.count()).select_from(CaseRow))
    assert count == store.events, (count, store.events)
    store.analyze()
    return {"seconds": seconds, "reported_mb": reported_mb, "sampled_kib": peak, "line": last.strip(),
            "command": " ".join(command[1:])}


# --- timing helpers --------------------------------------------------------------------------------

def p95(times: list[float]) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def summary(times: list[float]) -> dict[str, float]:
    return {"median": statistics.median(times), "p95": p95(times), "max": max(times), "n": len(times)}


def timed(function: Callable[[], Any]) -> float:
    started = time.perf_counter()
    function()
    return (time.perf_counter() - started) * 1000


class Pages:
    """A logged-in supervisor's test client on a store, and direct service calls."""

    def __init__(self, store: Store, seed: int):
        self.store, self.app = store, store.app
        self.client = self.app.test_client()
        page = self.client.get("/login").get_data(as_text=True)
        token = page.split('name="csrf_token" type="hidden" value="', 1)[1].split('"', 1)[0]
        answer = self.client.post("/login", data={"csrf_token": token, "username": "supervisor",
                                                  "password": sb.PASSWORD})
        assert answer.status_code == 303, answer.status_code
        self.rng = random.Random(seed)
        with self.app.app_context():
            self.case_ids = list(db.session.scalars(
                select(CaseRow.event_id).where(CaseRow.position % 97 == 0).limit(400)))
            self.number = db.session.scalar(select(CaseRow.case_number).where(CaseRow.case_number.is_not(None))
                                            .order_by(CaseRow.event_id.desc()).limit(1))
            self.address = db.session.scalar(select(Record.field_values).where(
                Record.id == self.case_ids[len(self.case_ids) // 2]))["address"]

    def get(self, path: str, expect: int = 200) -> None:
        answer = self.client.get(path)
        assert answer.status_code == expect, (path, answer.status_code, answer.get_data(as_text=True)[:300])

    def service(self, call: Callable[[User, Any, int], Any]) -> float:
        """Time call(user, reference, now_ms) inside an app context; the reference loaded beforehand."""
        with self.app.app_context():
            user = db.session.get(User, self.store.users["supervisor"])
            reference = load_reference()
            now_ms = int(time.time() * 1000)
            try:
                return timed(lambda: call(user, reference, now_ms))
            finally:
                db.session.remove()


def queue_call(street: str):
    return lambda user, reference, now_ms: service.list_cases(
        user, service.QueueFilters(street=street, status="dispatched"), 1, 20, now_ms, reference)


def search_call(words: str):
    return lambda user, reference, now_ms: service.list_cases(
        user, service.QueueFilters(q=words), 1, 20, now_ms, reference)


def case_call(event_id: str):
    def call(user, reference, now_ms):
        case = service.get_case(user, event_id, now_ms, reference)
        service.nearby_cases(user, case, now_ms, reference)
    return call


# --- 2-4. reading ----------------------------------------------------------------------------------

def bench_reads(big: Pages, small: Pages, args) -> dict[str, Any]:
    results: dict[str, Any] = {}
    process.settle()
    try:
        # warm both (caches, plans)
        for pages in (big, small):
            for street in STREETS[:3]:
                pages.get(f"/cases?street={street}&status=dispatched")
                pages.service(queue_call(street))
        progress(f"queue, street + dispatched: {args.requests} requests per store and path, alternating")
        times = {(size, path): [] for size in ("big", "small") for path in ("service", "client")}
        for n in range(args.requests):
            street = STREETS[n % len(STREETS)]
            order = (("big", big), ("small", small)) if n % 2 == 0 else (("small", small), ("big", big))
            for size, pages in order:
                times[(size, "service")].append(pages.service(queue_call(street)))
                times[(size, "client")].append(timed(lambda: pages.get(f"/cases?street={street}&status=dispatched")))
        results["queue"] = {key: summary(value) for key, value in times.items()}

        progress(f"case page: {args.requests} random cases, service and client")
        service_times, client_times = [], []
        for n in range(args.requests):
            event_id = big.rng.choice(big.case_ids)
            service_times.append(big.service(case_call(event_id)))
            client_times.append(timed(lambda: big.get(f"/cases/{event_id}")))
        results["case"] = {"service": summary(service_times), "client": summary(client_times)}

        words = {"rare word": RARE_WORD, "address": big.address, "word that is nowhere": MISSING_WORD}
        results["search"] = {}
        for label, word in words.items():
            progress(f"search {label} ({word}): {args.search_requests} requests, service and client")
            with big.app.app_context():
                found = service.list_cases(db.session.get(User, big.store.users["supervisor"]),
                                           service.QueueFilters(q=word, status="all"), 1, 20)
                hits = found.total
                db.session.remove()
            service_times, client_times = [], []
            for n in range(args.search_requests):
                service_times.append(big.service(search_call(word)))
                client_times.append(timed(lambda: big.get(f"/cases?q={word}")))
            results["search"][label] = {"word": word, "hits": hits, "service": summary(service_times),
                                        "client": summary(client_times)}
    finally:
        process.unsettle()
    results["plans"] = plans(big)
    return results


def plans(pages: Pages) -> dict[str, list[str]]:
    """EXPLAIN of the statements the queue and a search run on the store."""
    found: dict[str, list[str]] = {}
    for label, call in (("queue (street + dispatched)", queue_call(STREETS[3])),
                        (f"search '{RARE_WORD}'", search_call(RARE_WORD)),
                        (f"search '{MISSING_WORD}'", search_call(MISSING_WORD))):
        captured: list[tuple[str, Any]] = []

        def capture(conn, cursor, statement, parameters, context, executemany):
            if "FROM cases" in statement or "FROM case_counts" in statement:
                captured.append((statement, parameters))

        with pages.app.app_context():
            engine = db.engine
        sa_event.listen(engine, "before_cursor_execute", capture)
        try:
            pages.service(call)
        finally:
            sa_event.remove(engine, "before_cursor_execute", capture)
        with pages.app.app_context():
            with db.engine.connect() as conn:
                for n, (statement, parameters) in enumerate(captured):
                    if conn.dialect.name == "postgresql":
                        lines = [r[0] for r in conn.exec_driver_sql("EXPLAIN (ANALYZE, COSTS OFF) " + statement,
                                                                    parameters)]
                    else:
                        lines = [r[-1] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement,
                                                                     parameters)]
                    kind = "counts" if "count(" in statement or "case_counts" in statement else "page"
                    found[f"{label}, {kind}"] = lines
    return found


# --- 5. push ---------------------------------------------------------------------------------------

def bench_push(store: Store, args) -> dict[str, Any]:
    """Push 500 changes with and without the cases table kept, alternating; ms per push."""
    app, users = store.app, store.users
    token = sb.device_token(app, "worker00", PUSH_NODE)
    pusher = users["workers"][0]
    with app.app_context():
        # Up to 5,000 stored events of the pusher's grids to comment on (every one of them on a small
        # store: a pool of a few dozen, as every 13th event gave on 20,000, piled 40 comments on each
        # case in a run, and the push then timed the fold of long histories, not a usual push).
        stored = list(db.session.scalars(select(Record.id).where(
            Record.kind == "event", Record.bucket.in_([f"grid:{g}" for g in users["pusher_grids"]]))
            .order_by(Record.position).limit(5000)))
        db.session.remove()
    api = sb.ClientApi(app)
    rng = random.Random(11)
    generator = Generator(1, 3, [pusher], users["supervisor"], int(time.time() * 1000))

    def body(events: int, comments: int) -> bytes:
        now = int(time.time() * 1000) - 5_000
        changes = []
        for i in range(events):
            hlc = str(HLC(now, i, PUSH_NODE))
            grid = rng.choice(users["pusher_grids"])
            row, _ = generator._event(now)
            values = json.loads(row[3])
            values.pop("case_number")
            values.update(grid=grid, reporter=pusher)
            changes.append({"kind": "event", "id": uuid7(now, rng.randbytes(10)), "bucket": f"grid:{grid}",
                            "fields": {k: [v, hlc] for k, v in values.items()}})
        for i in range(comments):
            hlc = str(HLC(now, events + i, PUSH_NODE))
            event_id = rng.choice(stored)
            with app.app_context():
                bucket = db.session.get(Record, event_id).bucket
                db.session.remove()
            values = {"event": event_id, "action": "comment", "actor": pusher, "note": rng.choice(NOTES)}
            changes.append({"kind": "case_action", "id": uuid7(now, rng.randbytes(10)), "bucket": bucket,
                            "fields": {k: [v, hlc] for k, v in values.items()}})
        return sb.push_body(changes, PUSH_NODE)

    cpu: dict[str, list[float]] = {}

    def push(data: bytes, expected: int, mode: str = "warm-up") -> float:
        """One push: its wall time (ms); its CPU time in this process goes to cpu[mode] (on SQLite, the
        database's work too: it runs in the process; machine load stretches it less than the wall time)."""
        started, started_cpu = time.perf_counter(), time.process_time()
        status, answer = api.post("/sync/push", data=data, token=token, gzipped=True)
        elapsed = (time.perf_counter() - started) * 1000
        cpu.setdefault(mode, []).append((time.process_time() - started_cpu) * 1000)
        assert status == 200, answer
        applied = sum(r["status"] == "applied" for r in answer["results"])
        assert applied == expected, (applied, expected, answer["results"][:3])
        return elapsed

    @contextmanager
    def without_cases():
        with mock.patch.object(apply_module, "_refold_cases", lambda *args: None), \
                mock.patch.object(apply_module, "_number_new_events", lambda ids, states: None):
            yield

    results = {}
    process.settle()
    try:
        for label, (events, comments) in (("500 new events", (500, 0)),
                                           ("400 new events + 100 comments on stored cases", (400, 100))):
            progress(f"[{store.engine}] push of {label}: {args.push_rounds} rounds with and without the cases table")
            push(body(events, comments), events + comments)  # warm up
            times: dict[str, list[float]] = {"with": [], "without": []}
            for n in range(args.push_rounds):
                order = ("with", "without") if n % 2 == 0 else ("without", "with")
                for mode in order:
                    data = body(events, comments)
                    if mode == "with":
                        times[mode].append(push(data, events + comments, label + mode))
                    else:
                        with without_cases():
                            times[mode].append(push(data, events + comments, label + mode))
            results[label] = {mode: {**summary(value), "cpu": statistics.median(cpu[label + mode])}
                              for mode, value in times.items()}
    finally:
        process.unsettle()
    return results


def bench_catch_up(pages: Pages) -> dict[str, Any] | None:
    """A search right after the pushes, whose catch-up indexes the events pushed since the last one."""
    with pages.app.app_context():
        connection = db.session.connection()
        if not search.in_use(connection):
            return None
        behind = connection.exec_driver_sql(
            "SELECT count(*) FROM records WHERE kind = 'event' AND position > "
            f"(SELECT position FROM case_search WHERE event_id = {feed.placeholder(connection)})", (search.MARK,)).scalar()
        db.session.remove()
    first = pages.service(search_call(RARE_WORD))
    then = [pages.service(search_call(RARE_WORD)) for _ in range(5)]
    return {"behind": behind, "first": first, "then": statistics.median(then)}


# --- report -----------------------------------------------------------------------------------------

def ms(value: float) -> str:
    return f"{value:7.1f} ms"


def report(engine: str, big: Store, small_rebuild: dict, reads: dict, push: dict, args,
           failures: list[str]) -> None:
    def check(ok: bool, what: str) -> str:
        if not ok:
            failures.append(f"{engine}: {what}")
        return sb.verdict(ok)

    load = big.figures["load"]
    rb = big.figures["rebuild"]
    print(f"store: {load['events']:,} events + {load['actions']:,} case actions over 200 grids, "
          f"bulk-loaded in {load['seconds']:.0f} s")
    print(f"1. rebuild ({rb['command']}):")
    for size, r in ((args.small_rebuild, small_rebuild), (big.events, rb)):
        print(f"   {size:>9,} events: {r['seconds']:6.1f} s, peak memory {r['reported_mb']:.0f} MB (ru_maxrss)"
              f", sampled VmHWM/VmRSS {r['sampled_kib'] / 1024:.0f} MiB")
    ratio = rb["reported_mb"] / small_rebuild["reported_mb"]
    print(f"   peak {big.events:,} ÷ {args.small_rebuild:,} = {ratio:.2f}×  (flat ≤ 1.2×): "
          f"{check(ratio <= 1.2, f'rebuild memory ratio {ratio:.2f}')}")
    q = reads["queue"]
    print(f"2. queue, first page, street + status dispatched ({args.requests} requests each, alternating stores)")
    for path in ("service", "client"):
        b, s = q[("big", path)], q[("small", "service" if path == "service" else "client")]
        label = "list_cases()" if path == "service" else "GET /cases?street=…&status=dispatched"
        print(f"   {label}")
        print(f"     {big.events:>9,} events: median {ms(b['median'])}, p95 {ms(b['p95'])}")
        print(f"     {args.small:>9,} events: median {ms(s['median'])}, p95 {ms(s['p95'])}")
        ratio = b["p95"] / s["p95"]
        worst = b["p95"]
        print(f"     p95 < 300 ms: {check(worst < 300, f'queue p95 ({path}) {worst:.0f} ms')};"
              f"  p95 ratio {ratio:.2f}× (≤ 1.5×): {check(ratio <= 1.5, f'queue ratio ({path}) {ratio:.2f}')}"
              f"  (median ratio {b['median'] / s['median']:.2f}×)")
    c = reads["case"]
    print(f"3. case page, random cases ({args.requests} requests)")
    for path, label in (("service", "get_case() + nearby_cases()"), ("client", "GET /cases/<id>")):
        r = c[path]
        worst = r["p95"]
        print(f"   {label:<40} median {ms(r['median'])}, p95 {ms(r['p95'])}  p95 < 200 ms: "
              f"{check(worst < 200, f'case page p95 ({path}) {worst:.0f} ms')}")
    print(f"4. keyword search, status open ({args.search_requests} requests each)")
    for label, r in reads["search"].items():
        print(f"   {label} '{r['word']}' ({r['hits']:,} cases of any status)")
        for path, name in (("service", "list_cases(q=…)"), ("client", "GET /cases?q=…")):
            x = r[path]
            worst = x["p95"]
            print(f"     {name:<20} median {ms(x['median'])}, p95 {ms(x['p95'])}  p95 < 500 ms: "
                  f"{check(worst < 500, f'search {label} p95 ({path}) {worst:.0f} ms')}")
    report_push(engine, push, args, failures, heading="5. ")
    print("plans on the big store:")
    for label, lines in reads["plans"].items():
        print(f"   {label}:")
        for line in lines:
            print(f"     {line}")


def report_push(engine: str, push: dict, args, failures: list[str], heading: str = "") -> None:
    """The push comparison's lines (step 5 of the full report, or the whole of --push-only)."""
    def check(ok: bool, what: str) -> str:
        if not ok:
            failures.append(f"{engine}: {what}")
        return sb.verdict(ok)

    print(f"{heading}push of 500 changes, POST /api/v1/sync/push (test client), {args.push_rounds} rounds each, "
          "alternating")
    catch_up = push.pop("catch-up", None)
    for label, r in push.items():
        w, wo = r["with"], r["without"]
        ratio = w["median"] / wo["median"]
        print(f"   {label}: with cases {w['median']:.1f} ms (p95 {w['p95']:.0f}), without {wo['median']:.1f} ms"
              f" (p95 {wo['p95']:.0f}); median ratio {ratio:.2f}× (≤ 1.3×): "
              f"{check(ratio <= 1.3, f'push cost ratio ({label}) {ratio:.2f}')}")
        print(f"      CPU time of this process, median: with {w['cpu']:.1f} ms, without {wo['cpu']:.1f} ms: "
              f"{w['cpu'] / wo['cpu']:.2f}×")
    if catch_up:
        print(f"   a search right after the pushes, its index {catch_up['behind']:,} events behind: "
              f"{catch_up['first']:.0f} ms (catching up), then {catch_up['then']:.1f} ms (median of 5)")


def run_push_only(engine: str, args, failures: list[str]) -> None:
    """--push-only: one store of --events, rebuilt, and the push comparison alone (step 5, then 6)."""
    with ExitStack() as stack:
        store = build_store(stack, engine, args.events, seed=1)
        progress(f"[{engine}] rebuild of {args.events:,}")
        store.figures["rebuild"] = rebuild(store)
        progress(f"[{engine}]   {store.figures['rebuild']['line']}")
        pages = Pages(store, 1)
        push = bench_push(store, args)
        push["catch-up"] = bench_catch_up(pages)
        print(f"\n== {engine}, {args.events:,} events ==")
        report_push(engine, push, args, failures)
        sys.stdout.flush()


def run_engine(engine: str, args, failures: list[str]) -> None:
    if args.push_only:
        run_push_only(engine, args, failures)
        return
    small_rebuild = None
    if args.small_rebuild != args.small:
        with ExitStack() as stack:
            store = build_store(stack, engine, args.small_rebuild, seed=7)
            progress(f"[{engine}] rebuild of {args.small_rebuild:,}")
            small_rebuild = rebuild(store)
            progress(f"[{engine}]   {small_rebuild['line']}")
    with ExitStack() as stack:
        small = build_store(stack, engine, args.small, seed=5)
        progress(f"[{engine}] rebuild of {args.small:,}")
        first = rebuild(small)
        progress(f"[{engine}]   {first['line']}")
        small_rebuild = small_rebuild or first
        big = build_store(stack, engine, args.events, seed=1)
        progress(f"[{engine}] rebuild of {args.events:,}")
        big.figures["rebuild"] = rebuild(big)
        progress(f"[{engine}]   {big.figures['rebuild']['line']}")
        pages = Pages(big, 1)
        reads = bench_reads(pages, Pages(small, 2), args)
        push = bench_push(big, args)
        push["catch-up"] = bench_catch_up(pages)
        print(f"\n== {engine} ==")
        report(engine, big, small_rebuild, reads, push, args, failures)
        sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--events", type=int, default=None, help="1,000,000 (20,000 with --push-only)")
    parser.add_argument("--quick", action="store_true", help="100,000 events instead of 1,000,000")
    parser.add_argument("--requests", type=int, default=50, help="requests per measurement")
    parser.add_argument("--search-requests", type=int, default=50, help="requests per keyword search")
    parser.add_argument("--push-rounds", type=int, default=10, help="pushes with and without, each")
    parser.add_argument("--push-only", action="store_true",
                        help="build one store (--events, 20,000 unless given) and run the push comparison alone")
    args = parser.parse_args(argv)
    if args.events is None:
        args.events = 20_000 if args.push_only else 1_000_000
    if args.events <= 0 or args.requests <= 0 or args.search_requests <= 0 or args.push_rounds <= 0:
        parser.error("--events, --requests, --search-requests and --push-rounds must be positive")
    if args.quick:
        args.events = 100_000
    args.small = 10_000
    args.small_rebuild = max(args.small, args.events // 10)
    engines = ["sqlite", "postgresql"] if args.engine == "both" else [args.engine]
    print(f"GridPatrol cases benchmark: {args.events:,} events (issue 15, Scale to reach)")
    for line in sb.machine():
        print("  " + line)
    if "postgresql" in engines:
        print(f"  PostgreSQL {sb.pg_version()}")
    print(f"  load average at start: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}"
          " (2 cores shared with other work: figures are noisy)")
    started = time.perf_counter()
    failures: list[str] = []
    for engine in engines:
        run_engine(engine, args, failures)
    print(f"\nload average at end: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    print(f"total {time.perf_counter() - started:.0f} s; "
          + ("all goals met" if not failures else "missed: " + "; ".join(failures)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

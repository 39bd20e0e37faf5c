"""The dispute list and the rates with 2,000 disputes of 3 steps each (SQLite): they answer, and how long they take.

No timing assertion (machines differ): the figures are printed for docs and reviews. Run with
``pytest -s -m slow tests/disputes/test_scale.py``.
"""

from __future__ import annotations

import time

import pytest

from server.clock import server_clock
from server.sync import apply
from shared.hlc import format_ms

from .conftest import PARTIES, log_in, new_id, user

pytestmark = pytest.mark.slow
DISPUTES = 2000


@pytest.fixture
def database_url(sqlite_template, tmp_path):
    import shutil
    path = tmp_path / "store.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


def test_the_list_and_the_rates_of_two_thousand_disputes(pages, demo, capsys):
    worker = user("worker1").id
    now = server_clock().physical_ms()
    grids = ["G-0101", "G-0102", "G-0201", "G-0202", "G-0301", "G-0302"]
    changes = []
    for n in range(DISPUTES):
        dispute_id, grid = new_id(), grids[n % len(grids)]
        changes.append(apply.stamp("dispute", dispute_id, {
            "grid": grid, "dispute_kind": ["neighbours", "rent", "labour"][n % 3], "parties": PARTIES,
            "description": f"纠纷 {n}", "reporter": worker, "reported_at": format_ms(now - n * 600_000)}))
        for action, extra in [("accept", {}), ("session", {"note": "调解"}), ("outcome", {"outcome": "settled"})][:n % 4]:
            changes.append(apply.stamp("dispute_action", new_id(), {"dispute": dispute_id, "action": action,
                                                                    "actor": worker, **extra}, bucket=f"grid:{grid}"))
    for start in range(0, len(changes), 1000):
        apply.write_as_server(changes[start:start + 1000])
    log_in(pages, "supervisor1")
    timings = {}
    for url in ("/disputes", "/disputes?status=all&overdue=1", "/disputes?grid=G-0101", "/disputes/rates"):
        started = time.perf_counter()
        answer = pages.get(url)
        timings[url] = time.perf_counter() - started
        assert answer.status_code == 200
    with capsys.disabled():
        print(f"\n{DISPUTES} disputes, {len(changes) - DISPUTES} steps:")
        for url, seconds in timings.items():
            print(f"  GET {url}: {seconds * 1000:.0f} ms")

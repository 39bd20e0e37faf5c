"""The benches that give issue 19's figures still run end to end: a tiny run of each, against a real gunicorn
and a scratch PostgreSQL database, as docs/benchmarks.md runs them.

Their figures are not checked (timing belongs in the benches, not in tests); what is checked is that each one
finishes and prints its result, so a change to a helper the benches share cannot leave one broken unseen
(load_bench's gunicorn helper once changed shape and peer_bench failed at its first round).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _bench(*args: str) -> str:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_the_load_bench_runs_a_few_tablets_without_an_error(pg_available):
    out = _bench("bench/load_bench.py", "--tablets", "4", "--seconds", "2", "--warmup", "1", "--interval", "1")
    [row] = [line for line in out.splitlines() if line.startswith("| after")]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[2] == "4" and cells[6] == "0"  # pushes/s wanted (4 tablets, one push a second each); no error
    assert "PostgreSQL" in cells[8] and "app servers" in cells[8]  # the cores each part used


@pytest.mark.slow
def test_the_patrol_bench_runs_a_few_worker_days(pg_available):
    out = _bench("bench/patrol_bench.py", "--workers", "2", "--clients", "1")
    assert "push:" in out and "coverage of the district-day" in out

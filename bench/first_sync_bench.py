"""First sync: a fresh tablet's first full pull of 100,000 records, timed from the client (goal: under 10 s).

Loads ``--records`` events of one grid straight into a scratch server store (SQLite or PostgreSQL,
bench/sync_bench.py's bulk load), starts gunicorn on it (one sync worker, bench/sync_bench.py), and
runs the tablet's own pull (mobile.sync.pull: pages of 500, each applied by mobile.sync.apply_page
into a fresh mobile Store on disk, WAL and synchronous=FULL) in a fresh process, ``--runs`` times.
It prints the wall time, the client's CPU time per pulled record and its peak RSS.

Run it against another checkout's client with ``--client`` (the server, its store and the bench's
helpers are this checkout's; PYTHONPATH does not reach the client, which inherits the bench's path)::

    PYTHONPATH=$PWD .venv/bin/python bench/first_sync_bench.py --engine sqlite                      # after
    PYTHONPATH=$PWD .venv/bin/python bench/first_sync_bench.py --engine sqlite --client /work/main  # before

``--against DIR`` runs, in the same invocation and on the same server and store, this checkout's client and
DIR's, alternately, run by run (DIR first in odd rounds, this one in even), and prints both; for a before and
after on a shared machine, whose load moves from minute to minute. ``--server DIR`` serves the store from
another checkout's server code (a before of the server's side of the pull). The load average is printed at the
start and the end, and for each run the CPU per record of the gunicorn worker (and, on PostgreSQL, of the
database's backends) beside the client's.

The store is bulk-loaded and then analysed (``ANALYZE``, bench/sync_bench.py's bulk load), as autovacuum
would have done by the time a store so filled is pulled from: without statistics PostgreSQL served each
page from a bitmap scan of the whole bucket and a sort (docs/benchmarks.md, "Against a peer").

``--profile FILE`` adds a first run under cProfile, not counted, and writes its statistics to FILE;
``--transport-only`` receives and decodes the same pages without applying them (the transport's share
of the client's CPU).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sync_bench as sb  # noqa: E402  (sets the bench's var dir and secret key before the server is imported)
from http_ready import wait_ready  # noqa: E402


def use_client(client: str | None) -> None:
    """Import mobile/ and shared/ from the checkout ``client`` from now on (None: this one)."""
    if client:
        for name in [n for n in sys.modules if n.split(".")[0] in ("mobile", "shared")]:
            del sys.modules[name]
        sys.path.insert(0, client)


def pull_into_fresh_store(base: str, token: str, out, profile: str | None = None, client: str | None = None) -> None:
    """In a fresh process: the tablet's first pull into an empty store; (seconds, CPU s, peak RSS KiB, pulled).

    ``profile``: a file to write the pull's cProfile statistics to (it sees only the thread that calls
    pull). ``client``: the checkout whose mobile/ and shared/ run here (the bench's own were imported
    with the server's, so they are dropped first).
    """
    import cProfile

    use_client(client)
    import mobile.sync as sync
    from mobile.store import Store
    from mobile.transport import HttpTransport

    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "tablet.db")
        transport = HttpTransport(base, token)
        report = sync.SyncReport()
        profiler = cProfile.Profile() if profile else None
        cpu, started = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        sync.pull(store, transport, report, lambda *_: None, page_limit=500)
        if profiler:
            profiler.disable()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        store.close()
        if profiler:
            profiler.dump_stats(profile)
    out.put((elapsed, cpu, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, report.pulled,
             getattr(sync, "APPLY_CHUNK", None), getattr(sync, "APPLY_PAUSE_S", None), sync.__file__))


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU seconds of these processes so far (those gone count 0)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def database_backends(app) -> list[int]:
    """The PostgreSQL backends of the bench's database (the gunicorn worker's, once it has connected)."""
    with app.app_context():
        engine = sb.db.engine
        if engine.dialect.name != "postgresql":
            return []
        with engine.connect() as connection:
            return [pid for (pid,) in connection.exec_driver_sql(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")]


@contextmanager
def serving(url: str, root: str | None) -> Iterator[tuple[str, int]]:
    """sync_bench's gunicorn (one sync worker) on the store, from this checkout or from the checkout ``root``."""
    if root is None:
        with sb.gunicorn(url) as served:
            yield served
        return
    root = str(Path(root).resolve())
    port = sb.free_port()
    env = {**os.environ, "GRIDPATROL_DATABASE_URL": url, "GRIDPATROL_NODE": uuid.uuid4().hex[:16],
           "GRIDPATROL_PHOTO_DIR": str(sb.TMP / "photos"), "PYTHONPATH": root}
    with open(sb.TMP / f"gunicorn-{port}.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "--workers", "1", "--worker-class", "sync",
                                 "--timeout", "300", "--bind", f"127.0.0.1:{port}", "server:create_app()"],
                                cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_ready(base + "/api/v1/health", proc, 60, log.name)
            yield base, sb._children(proc.pid)[0]
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def transport_only(base: str, token: str, out, profile: str | None = None, client: str | None = None) -> None:
    """In a fresh process: the same pages, received and decoded by HttpTransport but not applied; as above.

    ``profile`` is not taken here (the process is the transport's alone).
    """
    use_client(client)
    from mobile.sync import PULL_MAX_BYTES
    from mobile.transport import HttpTransport

    transport, cursors, pulled, more = HttpTransport(base, token), {}, 0, True
    cpu, started = time.process_time(), time.perf_counter()
    while more:
        answer = transport.pull(cursors, 500, max_bytes=PULL_MAX_BYTES)
        pulled, cursors, more = pulled + len(answer["changes"]), answer["cursors"], answer["more"]
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    out.put((elapsed, cpu, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, pulled, None, None,
             "HttpTransport.pull alone"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--client", metavar="DIR", help="the checkout whose tablet client runs (default: this one)")
    parser.add_argument("--against", metavar="DIR", help="also run DIR's client, alternating with --client's run "
                        "by run, in this invocation")
    parser.add_argument("--server", metavar="DIR", help="the checkout whose server serves the pull (default: this one)")
    parser.add_argument("--transport-only", action="store_true",
                        help="receive and decode the pages without applying them (the transport's share)")
    parser.add_argument("--profile", metavar="FILE", help="first, one more run under cProfile, not counted: its "
                        "client's statistics go to FILE (read them with python -m pstats FILE)")
    args = parser.parse_args(argv)
    started_load = load_average()
    sb.progress(f"load average {started_load}")
    clients = [args.client] if not args.against else [args.client, args.against]
    with sb.scratch_store(args.engine) as url:
        app = sb.make_app(url)
        sb.add_worker(app, "first", ["S-0001"])
        rows = sb.bulk_rows(args.records, [("grid:S-0001", args.records)], seed=19, ref=0, exact=True)
        sb.progress(f"loaded {args.records:,} records in {sb.bulk_load(app, rows, args.records, 'store'):.1f} s "
                    "(then ANALYZE)")
        token = sb.device_token(app, "first", "f1f1f1f1f1f1f1f1")
        results: dict[str | None, list[tuple]] = {client: [] for client in clients}
        with serving(url, args.server) as (base, worker):
            spawn = multiprocessing.get_context("spawn")
            runs = [(args.profile, clients[0])] * bool(args.profile) + [
                (None, clients[(n + (n // len(clients))) % len(clients)] if len(clients) > 1 else clients[0])
                for n in range(args.runs * len(clients))]
            for run, (profile, client) in enumerate(runs):
                queue = spawn.Queue()
                target = transport_only if args.transport_only else pull_into_fresh_store
                proc = spawn.Process(target=target, args=(base, token, queue, profile, client))
                server_pids = [worker] + database_backends(app)
                server_cpu = cpu_seconds(server_pids)
                proc.start()
                result = queue.get(timeout=600)
                proc.join()
                server_cpu = cpu_seconds(server_pids) - server_cpu
                elapsed, cpu, rss, pulled, chunk, pause, where = result
                sb.progress(f"run {run + 1} ({client or 'this checkout'}){' (profiled, not counted)' if profile else ''}: "
                            f"{pulled:,} records in {elapsed:.1f} s, client CPU {cpu:.1f} s "
                            f"({1e6 * cpu / max(1, pulled):.0f} µs a record), server CPU "
                            f"{1e6 * server_cpu / max(1, pulled):.0f} µs a record, peak RSS {rss / 1024:.0f} MiB, "
                            f"load average {load_average()}")
                if not profile:
                    results[client].append((*result, server_cpu))
        with app.app_context():
            sb.db.engine.dispose()
    print(f"First sync of {args.records:,} records from {args.engine} (gunicorn, 1 sync worker, server "
          f"{args.server or 'this checkout'}), load average {started_load} at the start, {load_average()} at the end:")
    for client, rows_of in results.items():
        times = [r[0] for r in rows_of]
        per_record = [1e6 * r[1] / max(1, r[3]) for r in rows_of]
        server = [1e6 * r[7] / max(1, r[3]) for r in rows_of]
        print(f"| {client or 'this checkout'} | {', '.join(f'{t:.1f}' for t in times)} s | median "
              f"{statistics.median(times):.1f} s | client CPU {statistics.median(per_record):.0f} µs a record "
              f"[{min(per_record):.0f}-{max(per_record):.0f}] | server CPU {statistics.median(server):.0f} µs a record | "
              f"peak client RSS {max(r[2] for r in rows_of) / 1024:.0f} MiB | {rows_of[0][6]} "
              f"(APPLY_CHUNK={rows_of[0][4]}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

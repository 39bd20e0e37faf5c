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

``--profile FILE`` adds a first run under cProfile, not counted, and writes its statistics to FILE;
``--transport-only`` receives and decodes the same pages without applying them (the transport's share
of the client's CPU).
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sync_bench as sb  # noqa: E402  (sets the bench's var dir and secret key before the server is imported)


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
    parser.add_argument("--transport-only", action="store_true",
                        help="receive and decode the pages without applying them (the transport's share)")
    parser.add_argument("--profile", metavar="FILE", help="first, one more run under cProfile, not counted: its "
                        "client's statistics go to FILE (read them with python -m pstats FILE)")
    args = parser.parse_args(argv)
    with sb.scratch_store(args.engine) as url:
        app = sb.make_app(url)
        sb.add_worker(app, "first", ["S-0001"])
        rows = sb.bulk_rows(args.records, [("grid:S-0001", args.records)], seed=19, ref=0, exact=True)
        sb.progress(f"loaded {args.records:,} records in {sb.bulk_load(app, rows, args.records, 'store'):.1f} s")
        token = sb.device_token(app, "first", "f1f1f1f1f1f1f1f1")
        results = []
        with sb.gunicorn(url) as (base, _pid):
            spawn = multiprocessing.get_context("spawn")
            runs = [args.profile] * bool(args.profile) + [None] * args.runs
            for run, profile in enumerate(runs):
                queue = spawn.Queue()
                target = transport_only if args.transport_only else pull_into_fresh_store
                proc = spawn.Process(target=target, args=(base, token, queue, profile, args.client))
                proc.start()
                result = queue.get(timeout=600)
                proc.join()
                elapsed, cpu, rss, pulled, chunk, pause, where = result
                sb.progress(f"run {run + 1}{' (profiled, not counted)' if profile else ''}: {pulled:,} records in "
                            f"{elapsed:.1f} s, client CPU {cpu:.1f} s ({1e6 * cpu / max(1, pulled):.0f} µs a record), "
                            f"peak RSS {rss / 1024:.0f} MiB")
                if not profile:
                    results.append(result)
        with app.app_context():
            sb.db.engine.dispose()
    times = [r[0] for r in results]
    per_record = [1e6 * r[1] / max(1, r[3]) for r in results]
    print(f"First sync of {results[0][3]:,} records from {args.engine} (gunicorn, 1 sync worker), client "
          f"{results[0][6]} (APPLY_CHUNK={results[0][4]}, pause {results[0][5]} s), {len(results)} runs:")
    print(f"| median {statistics.median(times):.1f} s [{min(times):.1f}-{max(times):.1f}] | client CPU "
          f"{statistics.median(per_record):.0f} µs a record | peak client RSS {max(r[2] for r in results) / 1024:.0f} MiB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

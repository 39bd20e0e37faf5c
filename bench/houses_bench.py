#!/usr/bin/env python
"""Tenant search on a district: 100,000 tenants in 20,000 rental houses over 200 grids.

Run from the repository root::

    .venv/bin/python bench/houses_bench.py [--engine sqlite|postgresql] [--tenants 100000]

A scratch store (a temporary SQLite file, or a ``gp_bench_houses_*`` database on the PostgreSQL of
GRIDPATROL_TEST_PG_URL) is migrated, and houses and tenants (names, valid ID numbers sealed as the
server seals them) are inserted straight into ``records``, with 20 events per grid beside them. Then:

1. the first build of the search index (`server.houses.index.catch_up`, what the first search after
   migration 0006 does; ``flask houses reindex`` does the same work), timed once;
2. the tenant list as the pages ask for it (`server.houses.service.list_tenants`, a supervisor who
   sees masked numbers, or one allowed full numbers), 30 times each, median and p95: its first page
   unfiltered and of one grid, and a search by full name, by the last four of an ID number, by a whole
   number (allowed role), and by a part of an address;
3. a house page (`get_house`), which reads and unseals one house's tenants.

Progress goes to stderr, the figures to stdout.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRIDPATROL_VAR_DIR", tempfile.mkdtemp(prefix="gp-bench-var-"))

KEY = "5e" * 64
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰涛明超秀霞平刚桂英华玉兰"


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def timed(function, runs: int = 30) -> tuple[float, float]:
    """Median and p95 of ``runs`` calls, in ms."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.95))]


def scratch_url(engine: str):
    if engine == "sqlite":
        folder = tempfile.mkdtemp(prefix="gp-bench-houses-")
        return f"sqlite:///{folder}/store.db", lambda: shutil.rmtree(folder, True)
    import psycopg

    admin = os.environ.get("GRIDPATROL_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"gp_bench_houses_{os.getpid()}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop():
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    url = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1) + "/" + name
    return url, drop


def load(tenants: int, rng: random.Random) -> dict:
    """Insert houses, tenants and some events straight into records; what the searches look for."""
    from shared.idcard import check_digit
    from server import privacy
    from server.db import db
    from server.models import Feed, Record
    from sqlalchemy import text as sa_text

    grids = [f"G-{g:04d}" for g in range(1, 201)]
    houses_count = max(1, tenants // 5)
    position, rows, sample = 0, [], {}
    hlc = "2026-12-01T00:00:00.000Z-0000-00000000000000b1"

    def add(kind, rid, bucket, values):
        nonlocal position
        position += 1
        rows.append({"id": rid, "kind": kind, "bucket": bucket, "field_values": values,
                     "field_hlcs": {k: hlc for k in values}, "position": position, "device_id": None})
        if len(rows) >= 5000:
            flush()

    def flush():
        if rows:
            db.session.execute(Record.__table__.insert(), rows)
            rows.clear()

    houses = []
    for number in range(houses_count):
        grid = grids[number % len(grids)]
        house_id = str(uuid.UUID(int=rng.getrandbits(128)))
        address = f"{grid}路{number}号"
        houses.append((house_id, grid, address))
        add("rental_house", house_id, f"grid:{grid}", {"grid": grid, "address": address, "owner": f"房东{number}"})
    for grid in grids:
        for number in range(20):
            add("event", str(uuid.UUID(int=rng.getrandbits(128))), f"grid:{grid}",
                {"grid": grid, "category": "ebike_charging", "description": f"事件 {number}"})
    for number in range(tenants):
        house_id, grid, address = houses[number % houses_count]
        name = rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN)
        first17 = f"440304{1960 + number % 40}{1 + number % 12:02d}{1 + number % 28:02d}{number % 1000:03d}"
        id_number = first17 + check_digit(first17)
        add("tenant", str(uuid.UUID(int=rng.getrandbits(128))), f"grid:{grid}",
            {"house": house_id, "name": name, "room": str(100 + number % 30),
             "id_number": privacy.seal(id_number)})
        if number == tenants // 2:
            sample = {"name": name, "id_number": id_number, "address": address, "grid": grid, "house": house_id}
    flush()
    db.session.execute(Feed.__table__.update().where(Feed.id == 1).values(position=position))
    if db.engine.dialect.name == "postgresql":  # where PostgreSQL's positions come from (server/sync/feed.py)
        db.session.execute(sa_text("SELECT setval('feed_position_seq', :position)"), {"position": position})
    db.session.commit()
    return sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--tenants", type=int, default=100_000)
    arguments = parser.parse_args()

    from flask_migrate import upgrade

    from server import create_app
    from server.db import db
    from server.houses import index, service
    from server.reference import load_reference

    url, cleanup = scratch_url(arguments.engine)
    try:
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "GRIDPATROL_ID_KEY": KEY})
        with app.app_context():
            upgrade()
            progress(f"loading {arguments.tenants} tenants into {arguments.engine} ...")
            sample = load(arguments.tenants, random.Random(15))
            if arguments.engine == "postgresql":
                db.session.execute(db.text("ANALYZE"))
                db.session.commit()
            started = time.perf_counter()
            indexed = index.catch_up()
            build = time.perf_counter() - started
            reference = load_reference()
            today = date(2026, 12, 8)
            masked = SimpleNamespace(role="supervisor")
            allowed = SimpleNamespace(role="admin")  # viewer None is the server, which sees numbers
            everyone = service.HouseFilters()
            grid = service.HouseFilters(grid=sample["grid"])

            def tenants(viewer, query="", filters=everyone, expect=None):
                def run():
                    from flask import g

                    g.gridpatrol_id_roles = frozenset({"admin"})  # admins allowed, supervisors masked
                    result = service.list_tenants(viewer, filters, reference, today, query=query)
                    if expect is not None:
                        assert expect(result), (query, result.total)
                return run

            found = lambda r: any(t.values.get("name") == sample["name"] for _h, t in r.rows)  # noqa: E731
            cases = [
                ("first page, whole district", tenants(masked)),
                ("first page, one grid", tenants(masked, filters=grid)),
                ("search: full name", tenants(masked, sample["name"], expect=found)),
                ("search: last four of the ID number (masked role)",
                 tenants(masked, sample["id_number"][-4:], expect=lambda r: r.total >= 1)),
                ("search: whole ID number (allowed role)",
                 tenants(allowed, sample["id_number"], expect=lambda r: r.total >= 1)),
                ("search: part of an address", tenants(masked, sample["address"][:-1],
                                                       expect=lambda r: r.total >= 1)),
                ("house page (one house, its tenants unsealed)",
                 lambda: service.get_house(allowed, sample["house"], today)),
            ]
            print(f"engine {arguments.engine}: {arguments.tenants} tenants, {max(1, arguments.tenants // 5)} "
                  f"houses, 200 grids")
            print(f"index first build (catch_up): {indexed} tenants in {build:.1f} s")
            for label, run in cases:
                median, p95 = timed(run)
                print(f"{label:<52} median {median:7.1f} ms   p95 {p95:7.1f} ms")
            db.session.remove()
            db.engine.dispose()
    finally:
        cleanup()


if __name__ == "__main__":
    main()

"""Case numbers: never one twice, under concurrent writers, across midnight, rollbacks and migration 0015.

On PostgreSQL they come from a sequence and a base per day (server/sync/casebook.py, "Case numbers");
on SQLite from a row per day. Either way: a day's numbers are distinct and grow in arrival order,
a new day starts at 0001, and a store numbered before 0015 goes on where its day stood.
"""

from __future__ import annotations

import random
import threading

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from server import create_app
from server.db import db
from server.sync import casebook
from shared.hlc import parse_ms
from tests.conftest import TEST_ID_KEY

OFFSET = "+08:00"
DAY_ONE = parse_ms("2026-12-06T04:00:00.000Z")  # 20261206 in the district's time
DAY_TWO = parse_ms("2026-12-06T17:00:00.000Z")  # 20261207 there
WRITERS, ROUNDS = 6, 15


class Refused(Exception):
    """A batch that fails after it took its numbers: its transaction rolls back."""


def test_concurrent_writers_across_midnight_never_take_one_number_twice(app):
    kept: list[list[str]] = [[] for _ in range(WRITERS)]
    failures: list[BaseException] = []
    start = threading.Barrier(WRITERS)

    def writer(n: int) -> None:
        rng = random.Random(n)
        try:
            with app.app_context():
                start.wait()
                for _ in range(ROUNDS):
                    # Mostly today, sometimes a writer whose clock is already past midnight, then back.
                    now = rng.choice([DAY_ONE, DAY_ONE, DAY_TWO])
                    try:
                        with db.engine.begin() as connection:
                            numbers = casebook.number_events(connection, rng.randint(1, 5), now, OFFSET)
                            if rng.random() < 0.2:
                                raise Refused
                    except Refused:
                        continue
                    kept[n] += numbers
        except BaseException as exc:  # the assertion below names it
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    numbers = [number for mine in kept for number in mine]
    assert len(numbers) == len(set(numbers)) > WRITERS * ROUNDS
    assert {number[:8] for number in numbers} == {"20261206", "20261207"}
    for mine in kept:  # in arrival order: each writer's numbers of a day grow
        for day in ("20261206", "20261207"):
            sequence = [int(number[9:]) for number in mine if number.startswith(day)]
            assert sequence == sorted(sequence) and all(value > 0 for value in sequence)


def test_a_new_day_starts_at_one_and_a_late_writer_goes_on_with_the_day_before(app):
    with db.engine.begin() as connection:
        first = casebook.number_events(connection, 30, DAY_ONE, OFFSET)
        second = casebook.number_events(connection, 2, DAY_TWO, OFFSET)
        late = casebook.number_events(connection, 1, DAY_ONE, OFFSET)  # a clock still before midnight
    assert first[0] == "20261206-0001" and first[-1] == "20261206-0030"
    assert second == ["20261207-0001", "20261207-0002"]
    assert late[0] > first[-1] and late[0].startswith("20261206-")


def test_a_batch_that_rolls_back_after_the_days_first_number_leaves_no_number_to_repeat(app):
    # Two pooled connections, alternating: the first takes the day's first number and rolls back. Had it
    # kept a base of its own that never committed, the other would fix another one, and the two would
    # hand out the same numbers from then on.
    numbers = []
    with db.engine.connect() as one, db.engine.connect() as other:
        with one.begin() as batch:
            casebook.number_events(one, 1, DAY_ONE, OFFSET)
            batch.rollback()
        for _ in range(4):
            for connection in (other, one):
                with connection.begin():
                    numbers += casebook.number_events(connection, 1, DAY_ONE, OFFSET)
    assert len(numbers) == len(set(numbers)) == 8


@pytest.mark.pg
def test_0015_goes_on_from_the_days_last_number_and_its_downgrade_gives_none_again(pg_database, tmp_path):
    app = create_app({"SQLALCHEMY_DATABASE_URI": pg_database, "SECRET_KEY": "test", "GRIDPATROL_ID_KEY": TEST_ID_KEY,
                      "GRIDPATROL_PHOTO_DIR": str(tmp_path / "photos")})
    with app.app_context():
        downgrade(revision="0014_case_push")
        with db.engine.begin() as connection:
            connection.execute(text("INSERT INTO case_numbers (day, last) VALUES ('20261206', 41), ('20261205', 7)"))
        upgrade()
        with db.engine.begin() as connection:
            after = casebook.number_events(connection, 2, DAY_ONE, OFFSET)
            tomorrow = casebook.number_events(connection, 1, DAY_TWO, OFFSET)
        db.engine.dispose()  # the pooled connections' kept bases go with them
        downgrade(revision="0014_case_push")
        kept = dict(db.session.execute(text("SELECT day, last FROM case_numbers")).all())
        db.session.commit()
        upgrade()
        with db.engine.begin() as connection:
            again = casebook.number_events(connection, 1, DAY_ONE, OFFSET)
        db.session.remove()
        db.engine.dispose()
    assert after == ["20261206-0042", "20261206-0043"] and tomorrow == ["20261207-0001"]
    # The downgrade's rows stand at or above each day's last number, so neither engine's way repeats one.
    assert kept["20261206"] >= 43 and kept["20261207"] >= 1 and kept["20261205"] >= 7
    assert again[0] > "20261206-0043"

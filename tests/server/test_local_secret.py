"""The keys a server without configuration keeps in var/: many processes starting at once agree on one.

gunicorn starts its workers together, and each reads var/secret_key and var/id_key or makes them. A
process that read the file between another's create and write got an empty key, and a worker that
cannot boot stops gunicorn (seen in the flaky-network drill). Here 24 forked processes race, again
and again, each in a fresh directory.
"""

from __future__ import annotations

import multiprocessing
import os

import pytest

import server.config  # noqa: F401 - imported once here, so the forked processes only reload the module

ROUNDS = 8


def _read_key(directory: str, barrier, answers) -> None:
    os.environ["GRIDPATROL_VAR_DIR"] = directory
    import importlib

    import server.config as config

    importlib.reload(config)  # VAR is read at import: point it at this round's directory
    barrier.wait()
    answers.put(config.local_id_key())


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_processes_starting_at_once_share_one_full_key(tmp_path, round_):
    context = multiprocessing.get_context("fork")
    processes = 24
    barrier, answers = context.Barrier(processes), context.Queue()
    workers = [context.Process(target=_read_key, args=(str(tmp_path), barrier, answers)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    keys = [answers.get(timeout=30) for _ in workers]
    for worker in workers:
        worker.join(10)
        assert worker.exitcode == 0
    assert len(set(keys)) == 1 and len(keys[0]) == 128, keys
    assert sorted(os.listdir(tmp_path)) == ["id_key"]  # no candidate file left behind
    assert (tmp_path / "id_key").stat().st_mode & 0o777 == 0o600

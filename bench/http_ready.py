"""Waiting for a server a bench started: one loop for every bench (no import of the server, so a bench that runs
another checkout's code, as load_bench does, can use it too)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path


def wait_ready(url: str, proc: subprocess.Popen, timeout: float, log: Path | str) -> None:
    """Until url answers 200; a server that exits or stays silent for ``timeout`` s is an error naming its log."""
    import requests

    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):  # not up yet, or slow to start on a busy machine
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not come up; see {log}")
        time.sleep(0.1)

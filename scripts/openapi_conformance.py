#!/usr/bin/env python
"""Run schemathesis against a running GridPatrol server: is the server what /api/v1/openapi.json says?

Run from the repository root, against a server with the demo loaded (README, `make run`)::

    .venv/bin/python scripts/openapi_conformance.py http://127.0.0.1:5000 supervisor1 PASSWORD [schemathesis options]

It logs in as the user (POST /api/v1/auth/device) and runs ``schemathesis run`` on the server's document
with that device token, every check (``--checks all``), every phase, a fixed seed and a bounded number of
examples, so that two runs send the same requests; the options after the password are passed on
(``--max-examples 50``, ``--seed 2``). Settings are in scripts/schemathesis.toml beside this file.
It prints schemathesis's report and the number of requests sent, and exits with schemathesis's code:
0 when no check failed. tests/server/test_openapi_conformance.py runs it on a server of its own.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "schemathesis.toml"
# The run: all checks, all phases, one worker (requests in a reproducible order), a fixed seed,
# and a bound on examples per operation that keeps it to a few hundred requests.
OPTIONS = ["--checks", "all", "--phases", "examples,coverage,fuzzing,stateful", "--workers", "1",
           "--seed", "1", "--max-examples", "10", "--continue-on-failure", "--request-timeout", "10",
           "--no-color"]
NODE = "5c4e3a0f00000001"  # the HLC node of the run's device


def device_token(url: str, username: str, password: str) -> str:
    """Log in once, as a device does."""
    answer = requests.post(f"{url}/api/v1/auth/device", timeout=10, json={
        "username": username, "password": password, "device_name": "schemathesis", "node": NODE})
    answer.raise_for_status()
    return answer.json()["token"]


def run(url: str, token: str, extra: list[str] = ()) -> int:
    """schemathesis on url's document with the token; prints its report and the requests sent. Its exit code."""
    import schemathesis
    from schemathesis.cli import schemathesis as cli

    # A photo's bytes go as application/offset+octet-stream (tus), which schemathesis sends as it sends bytes.
    schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")

    with tempfile.TemporaryDirectory(prefix="gridpatrol-schemathesis-") as reports:
        har = Path(reports) / "requests.har"
        args = ["--config-file", str(CONFIG), "run", f"{url}/api/v1/openapi.json",
                "--header", f"Authorization: Bearer {token}", *OPTIONS,
                "--report", "har", "--report-har-path", str(har), *extra]
        try:
            code = cli.main(args=args, prog_name="schemathesis", standalone_mode=False)
        except SystemExit as exc:
            code = exc.code
        sent = len(json.loads(har.read_text())["log"]["entries"]) if har.exists() else 0
    print(f"schemathesis {schemathesis.__version__}: {sent} requests sent", flush=True)
    return int(code or 0)


def main() -> int:
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    url, username, password, *extra = sys.argv[1:]
    url = url.rstrip("/")
    return run(url, device_token(url, username, password), extra)


if __name__ == "__main__":
    sys.exit(main())

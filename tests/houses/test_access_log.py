"""gunicorn's access log, as `make run` serves (``--access-logfile``), masks ID numbers in URLs.

A real gunicorn process on a copy of the migrated SQLite template: the access
log line carries the request line with its query string and the referrer, and
both pass through the log masking that `server.privacy` installs in every
process that builds the app.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import requests

from shared.idcard import check_digit, mask_resident_id

from ..servers import free_port

ROOT = Path(__file__).resolve().parents[2]
NUMBER = "11010519491231002"
NUMBER += check_digit(NUMBER)


def test_the_gunicorn_access_log_masks_id_numbers_in_urls(sqlite_template, tmp_path):
    store = tmp_path / "store.db"
    shutil.copy(sqlite_template, store)
    access, errors, port = tmp_path / "access.log", tmp_path / "error.log", free_port()
    env = {**os.environ, "GRIDPATROL_DATABASE_URL": f"sqlite:///{store}", "GRIDPATROL_SECRET_KEY": "log-test",
           "GRIDPATROL_VAR_DIR": str(tmp_path), "GRIDPATROL_PHOTO_DIR": str(tmp_path / "photos")}
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1",
         "--access-logfile", str(access), "--error-logfile", str(errors), "server:create_app()"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                requests.get(f"{base}/api/v1/health", timeout=10).close()
                break
            except requests.RequestException:  # not listening yet, or a busy machine
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError("gunicorn did not start: " + errors.read_text()) from None
                time.sleep(0.2)
        requests.get(f"{base}/houses/tenants?q={NUMBER}", allow_redirects=False, timeout=10,
                     headers={"Referer": f"{base}/houses?id={NUMBER}"}).close()
        requests.get(f"{base}/api/v1/health?id_number={NUMBER}", timeout=10).close()
    finally:
        process.terminate()
        process.wait(30)
    logged = access.read_text() + errors.read_text()
    assert f"/houses/tenants?q={mask_resident_id(NUMBER)}" in logged, logged
    assert NUMBER not in logged

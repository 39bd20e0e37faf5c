"""Fixtures of the photo tests: a small photo limit, device tokens of the demo's people, and the blob store on
both backends: the folder, and S3 over HTTP (moto's server mode on 127.0.0.1)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import pytest

from tests.servers import free_port

from .helpers import LIMIT

BUCKET = "gridpatrol-test"
MOTO_START_SECONDS = 60.0  # moto imports every service it emulates: on a busy 2-core machine, seconds


@pytest.fixture
def photo_backend() -> str:
    """Where the test app keeps photos: "folder" (the default), or "s3" (moto); a test parametrizes it to choose."""
    return "folder"


@pytest.fixture
def app_config(app_config, photo_backend, request):
    """The root settings, with a small photo limit (GRIDPATROL_MAX_PHOTO_BYTES), so 413 is cheap to reach, and the
    photo store of ``photo_backend``."""
    config = {**app_config, "GRIDPATROL_MAX_PHOTO_BYTES": LIMIT}
    if photo_backend == "s3":
        config.update(s3_app_settings(request.getfixturevalue("s3_settings")))
    return config


def s3_app_settings(settings) -> dict[str, str]:
    """The app's settings (as an operator would write them) that name an S3 store."""
    return {"GRIDPATROL_BLOB_URL": f"s3://{settings.bucket}/{settings.prefix}",
            "GRIDPATROL_S3_ENDPOINT_URL": settings.endpoint_url, "GRIDPATROL_S3_REGION": settings.region,
            "GRIDPATROL_S3_ACCESS_KEY_ID": settings.access_key_id,
            "GRIDPATROL_S3_SECRET_ACCESS_KEY": settings.secret_access_key}


@pytest.fixture
def tokens(client, demo):
    """Device tokens of the demo's people, by user name, registered directly (a log-in hashes a password:
    slow, and tested elsewhere)."""
    from sqlalchemy import select

    from server import accounts
    from server.db import db
    from server.models import User

    def token(username: str) -> str:
        user = db.session.scalar(select(User).where(User.username == username))
        return accounts.register_device(user, f"{username}'s tablet", "ab" * 8)[1]

    return {name: token(name) for name in ("worker1", "worker2", "worker3", "supervisor1", "unit1", "admin")}


# --- S3 over HTTP ---------------------------------------------------------------------------------

def _unavailable(reason: str):
    """Without moto the S3 tests cannot run: a failure in CI (CI=true), a skip that says why elsewhere."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI needs moto's S3 server (pip install 'moto[server]'), but: {reason}")
    pytest.skip(f"moto's S3 server is not available ({reason}); S3 tests skipped")


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory):
    """moto's S3-compatible server (``python -m moto.server``) on a free port of 127.0.0.1 for the session, with
    the bucket BUCKET made; answers its endpoint URL."""
    try:
        import boto3  # noqa: F401
        import moto.server  # noqa: F401
    except ImportError as exc:
        _unavailable(str(exc))
    port = free_port()
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log_path, "wb") as log:  # moto logs every request: a file, not a pipe nobody reads
        process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        client = _wait_for_s3(process, endpoint, log_path)
        client.create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for_s3(process: subprocess.Popen, endpoint: str, log_path) -> object:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.session.Session().client("s3", endpoint_url=endpoint, region_name="us-east-1",
                                            aws_access_key_id="test", aws_secret_access_key="test")
    deadline = time.monotonic() + MOTO_START_SECONDS
    while True:
        if process.poll() is not None:
            _unavailable(f"it exited with {process.returncode}: {log_path.read_text(errors='replace')[-500:]}")
        try:
            client.list_buckets()
            return client
        except (BotoCoreError, ClientError) as exc:
            if time.monotonic() > deadline:
                _unavailable(f"it did not answer at {endpoint} within {MOTO_START_SECONDS:.0f} s: {exc}")
            time.sleep(0.1)


@pytest.fixture
def s3_settings(moto_s3):
    """The settings of a store in the moto bucket, under a prefix of this test's own."""
    from server.config import S3Settings

    return S3Settings(bucket=BUCKET, prefix=f"t-{uuid.uuid4().hex[:12]}/", endpoint_url=moto_s3, region="us-east-1",
                      access_key_id="test", secret_access_key="test", addressing_style="path")


@pytest.fixture(scope="session")
def s3_client(moto_s3):
    """One boto3 client of the moto server for the session's stores (a client costs a second to make: boto3
    loads S3's API description; an app server makes one, once)."""
    from server.config import S3Settings
    from server.photos.s3 import make_client

    return make_client(S3Settings(bucket=BUCKET, prefix="", endpoint_url=moto_s3, region="us-east-1",
                                  access_key_id="test", secret_access_key="test", addressing_style="path"))


@pytest.fixture(params=["folder", "s3"])
def blobs(request, tmp_path):
    """A blob store on each backend: a folder in tmp_path, and a prefix of the moto bucket."""
    if request.param == "folder":
        from server.photos.blobs import FolderBlobStore

        return FolderBlobStore(tmp_path / "blobs")
    from server.photos.s3 import S3BlobStore

    settings = request.getfixturevalue("s3_settings")
    return S3BlobStore(request.getfixturevalue("s3_client"), settings.bucket, settings.prefix)

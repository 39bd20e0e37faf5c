#!/usr/bin/env python
"""Photo benchmark: preparing a 12-megapixel photo at capture, and resumable upload against a plain PUT.

Run from the repository root::

    .venv/bin/python bench/photo_bench.py [--photos 200] [--repeat 10]

It answers the two questions of issue 4, section "Benchmark":

1. Capture. A 4000 x 3000 camera JPEG (smooth shapes with sensor noise, at
   quality 92, with Orientation 6, a capture time, GPS and camera fields, the
   way a phone writes one) is turned into the stored photo by
   ``mobile.photos.prepare_photo``: orientation applied, longest edge 1920,
   JPEG quality 85, EXIF stripped to the capture time, thumbnail, SHA-256.
   The median and the best of ``--repeat`` runs are reported.
2. Upload. ``--photos`` photos of about 500 KB (1920 x 1440, as the app makes
   them) go from a tablet's PhotoQueue through ``mobile.photos.upload_photos``
   and HttpTransport (``POST /photos/missing``, then a PATCH per photo; HEAD
   only to resume, which a clean run never needs; the queue's SQLite
   bookkeeping included) to the real server under gunicorn
   on 127.0.0.1 (2 workers x 4 threads). In the same run the same bytes go to
   a plain PUT endpoint of this bench (not of the product) under the same
   gunicorn settings, one ``PUT`` per photo over one keep-alive session: it
   writes the body to a file, fsyncs and renames it, and answers 204, with no
   token check, no hash check and no image check. Both throughputs are in MB/s
   of photo bytes; the difference is the price of resumability and of the
   checks that make "the server has it" true.

Scratch folders are made in a temporary directory and removed at the end.
Progress goes to stderr; the figures (markdown) go to stdout.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SCRATCH = Path(tempfile.mkdtemp(prefix="gp_photo_bench_"))
# Before importing server: keep the bench's secret key and var/ out of the working tree.
os.environ.setdefault("GRIDPATROL_VAR_DIR", str(SCRATCH / "var"))
os.environ.setdefault("GRIDPATROL_SECRET_KEY", "bench")

import PIL  # noqa: E402
import requests  # noqa: E402
from PIL import ExifTags, Image, ImageFilter  # noqa: E402

WORKERS, THREADS = 2, 4


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- images -------------------------------------------------------------------------------------

def camera_image(width: int, height: int, seed: int) -> Image.Image:
    """Something like a photo: smooth coloured shapes, some edges, and sensor noise."""
    rng = random.Random(seed)
    small = Image.frombytes("RGB", (width // 64, height // 64), rng.randbytes((width // 64) * (height // 64) * 3))
    image = small.resize((width, height), Image.Resampling.BICUBIC).filter(ImageFilter.GaussianBlur(2))
    edges = Image.frombytes("L", (width // 8, height // 8), rng.randbytes((width // 8) * (height // 8)))
    edges = edges.resize((width, height), Image.Resampling.NEAREST)
    noise = Image.effect_noise((width, height), 28)
    textured = Image.merge("RGB", [Image.blend(channel, noise, 0.18) for channel in image.split()])
    # Tuned so that a 1920 x 1440 JPEG at quality 85 is about 500 KB, as a phone photo is.
    return Image.blend(textured, Image.merge("RGB", [edges] * 3), 0.1)


def camera_jpeg(width: int, height: int, seed: int, quality: int = 92) -> bytes:
    """A camera JPEG with the EXIF a phone writes."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Make] = "Bench"
    exif[ExifTags.Base.Model] = "Phone 12MP"
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = "2026:11:18 08:15:30"
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.OffsetTimeOriginal] = "+08:00"
    exif.get_ifd(ExifTags.IFD.GPSInfo).update({1: "N", 2: (22.0, 32.0, 35.0), 3: "E", 4: (114.0, 3.0, 28.0)})
    out = io.BytesIO()
    camera_image(width, height, seed).save(out, "JPEG", quality=quality, exif=exif.tobytes())
    return out.getvalue()


# --- 1. capture ---------------------------------------------------------------------------------

def bench_capture(repeat: int) -> dict:
    from mobile.photos import prepare_photo

    source = camera_jpeg(4000, 3000, seed=1)
    log(f"capture: source {len(source) / 1e6:.1f} MB, 4000 x 3000")
    prepare_photo(source)  # warm up: imports, codec tables
    times, photo = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        photo = prepare_photo(source)
        times.append(time.perf_counter() - started)
    return {"source_bytes": len(source), "photo_bytes": len(photo.data), "thumb_bytes": len(photo.thumbnail),
            "size": (photo.width, photo.height), "median_s": statistics.median(times), "best_s": min(times),
            "repeat": repeat}


# --- 2. upload ----------------------------------------------------------------------------------

PUT_APP = '''
import os, tempfile

ROOT = os.environ["BENCH_PUT_DIR"]


def app(environ, start_response):
    """PUT /<name>: keep the body as a file (written, fsynced, renamed); nothing else."""
    if environ["REQUEST_METHOD"] != "PUT":
        start_response("405 Method Not Allowed", [("Content-Length", "0")])
        return [b""]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"]
    fd, temp = tempfile.mkstemp(dir=ROOT)
    with os.fdopen(fd, "wb") as handle:
        while length:
            block = body.read(min(length, 1 << 20))
            if not block:
                break
            handle.write(block)
            length -= len(block)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, os.path.join(ROOT, os.path.basename(environ["PATH_INFO"])))
    start_response("204 No Content", [])
    return [b""]
'''


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Gunicorn:
    """A gunicorn on a free port, started and waited for."""

    def __init__(self, app: str, env: dict, cwd: Path, probe: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.probe = probe
        self.log = open(SCRATCH / f"gunicorn-{self.port}.log", "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{self.port}", "--workers", str(WORKERS),
             "--threads", str(THREADS), "--timeout", "120", app],
            cwd=cwd, env={**os.environ, **env}, stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)

    def __enter__(self) -> "Gunicorn":
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.request("OPTIONS" if self.probe == "*" else "GET", self.url + (
                    "/" if self.probe == "*" else self.probe), timeout=1)
                return self
            except requests.RequestException:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn did not start: {(SCRATCH / f'gunicorn-{self.port}.log').read_text()}")
                time.sleep(0.1)

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.wait(20)
        self.log.close()


def product_server() -> tuple[dict, str]:
    """A migrated SQLite store with the demo loaded, and a device token for worker1."""
    from flask_migrate import upgrade
    from sqlalchemy import select

    from server import accounts, create_app
    from server.admin import demo
    from server.db import db
    from server.models import User

    url = f"sqlite:///{SCRATCH / 'bench.db'}"
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "GRIDPATROL_PHOTO_DIR": str(SCRATCH / "server-photos")})
    with app.app_context():
        upgrade()
        demo.load(password="bench-pass")
        user = db.session.scalar(select(User).where(User.username == "worker1"))
        token = accounts.register_device(user, "bench tablet", "be" * 8)[1]
        db.session.remove()
        db.engine.dispose()
    env = {"GRIDPATROL_DATABASE_URL": url, "GRIDPATROL_PHOTO_DIR": str(SCRATCH / "server-photos")}
    return env, token


def bench_upload(count: int) -> dict:
    from mobile.photos import PhotoQueue, upload_photos
    from mobile.store import Store
    from mobile.transport import HttpTransport
    from shared.records import uuid7

    log(f"upload: making {count} photos of about 500 KB")
    tablet = Store(SCRATCH / "tablet.db")
    queue = PhotoQueue(tablet, SCRATCH / "tablet-photos")
    names = []
    for n in range(count):
        out = io.BytesIO()
        camera_image(1920, 1440, seed=1000 + n).save(out, "JPEG", quality=85)
        name = queue.capture(out.getvalue())
        tablet.create("event", {"grid": "G-0101", "category": "fire_hazard", "description": f"bench {n}",
                                "photos": [name], "reporter": uuid7(0, bytes(10)),
                                "reported_at": "2026-11-18T08:00:00.000Z"})
        names.append(name)
    sizes = [queue.get(name).bytes for name in names]
    total = sum(sizes)
    log(f"upload: {count} photos, {total / 1e6:.1f} MB, {statistics.mean(sizes) / 1e3:.0f} KB each on average")

    env, token = product_server()
    (SCRATCH / "put").mkdir()
    (SCRATCH / "put_app.py").write_text(PUT_APP)
    with Gunicorn("server:create_app()", env, ROOT, "/api/v1/health") as server:
        with HttpTransport(server.url, token) as transport:
            log("upload: resumable (missing, then PATCH per photo) ...")
            started = time.perf_counter()
            result = upload_photos(queue, transport)
            resumable_s = time.perf_counter() - started
    assert result.uploaded == count and not result.failed, result
    stored = sum(1 for _ in (SCRATCH / "server-photos").glob("??/??/*"))
    assert stored == count, f"the server holds {stored} photos, not {count}"

    with Gunicorn("put_app:app", {"BENCH_PUT_DIR": str(SCRATCH / "put")}, SCRATCH, "*") as put_server, \
            requests.Session() as session:
        log("upload: plain PUT, one per photo ...")
        bodies = [queue.path(name).read_bytes() for name in names]
        started = time.perf_counter()
        for name, body in zip(names, bodies):
            answer = session.put(f"{put_server.url}/{name}", data=body)
            assert answer.status_code == 204, answer.status_code
        put_s = time.perf_counter() - started
    tablet.close()
    return {"count": count, "bytes": total, "mean_bytes": statistics.mean(sizes), "resumable_s": resumable_s,
            "put_s": put_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    try:
        capture = bench_capture(args.repeat)
        upload = bench_upload(args.photos)
    finally:
        shutil.rmtree(SCRATCH, ignore_errors=True)

    mb = upload["bytes"] / 1e6
    resumable, put = mb / upload["resumable_s"], mb / upload["put_s"]
    load = os.getloadavg()
    print(f"Machine: {os.cpu_count()} CPUs, load average {load[0]:.1f} at the start of the report; "
          f"Python {platform.python_version()}, Pillow {PIL.__version__}.\n")
    print("| capture: one 12 MP camera JPEG → stored photo | figure |")
    print("|---|---|")
    print(f"| source | 4000 × 3000, {capture['source_bytes'] / 1e6:.1f} MB, Orientation 6, EXIF with GPS |")
    print(f"| result | {capture['size'][0]} × {capture['size'][1]}, {capture['photo_bytes'] / 1e3:.0f} KB "
          f"+ thumbnail {capture['thumb_bytes'] / 1e3:.0f} KB |")
    print(f"| time, median of {capture['repeat']} | {capture['median_s'] * 1000:.0f} ms |")
    print(f"| time, best | {capture['best_s'] * 1000:.0f} ms |")
    print()
    print(f"| upload: {upload['count']} photos, {mb:.1f} MB ({upload['mean_bytes'] / 1e3:.0f} KB each), loopback "
          "| seconds | MB/s | photos/s |")
    print("|---|---|---|---|")
    print(f"| resumable: missing, then PATCH per photo; token, hash and image checked | {upload['resumable_s']:.2f} "
          f"| {resumable:.1f} | {upload['count'] / upload['resumable_s']:.0f} |")
    print(f"| plain PUT per photo (bench endpoint: write, fsync, rename) | {upload['put_s']:.2f} | {put:.1f} "
          f"| {upload['count'] / upload['put_s']:.0f} |")
    print(f"| resumable / plain | | {resumable / put:.2f} | |")


if __name__ == "__main__":
    main()

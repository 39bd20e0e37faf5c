"""The capture pipeline on the tablet: orientation, size, JPEG, the EXIF kept and dropped, thumbnail, name."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

import pytest
from PIL import ExifTags, Image

from mobile.photos import CaptureSettings, prepare_photo

from .helpers import make_jpeg, sha

RED, BLUE = (255, 0, 0), (0, 0, 255)


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def near(pixel, colour, tolerance=40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour))


# The source is 400 x 200, red on the left half and blue on the right. A camera held another way
# writes Orientation; after preparing, the pixels must be upright and the tag gone.
@pytest.mark.parametrize("orientation, size, red_at, blue_at", [
    (1, (400, 200), (10, 100), (390, 100)),      # upright
    (3, (400, 200), (390, 100), (10, 100)),      # rotated 180
    (6, (200, 400), (100, 10), (100, 390)),      # rotated 90 clockwise to view: left half goes on top
    (8, (200, 400), (100, 390), (100, 10)),      # rotated 90 counter-clockwise to view
    (2, (400, 200), (390, 100), (10, 100)),      # mirrored
], ids=["1", "3", "6", "8", "2"])
def test_the_exif_orientation_is_applied_to_the_pixels(orientation, size, red_at, blue_at):
    photo = prepare_photo(make_jpeg(400, 200, orientation=orientation))
    image = opened(photo.data)
    assert image.size == size == (photo.width, photo.height)
    assert near(image.getpixel(red_at), RED) and near(image.getpixel(blue_at), BLUE)
    assert ExifTags.Base.Orientation not in image.getexif()


@pytest.mark.parametrize("source, orientation, expected", [
    ((4000, 3000), None, (1920, 1440)),
    ((3000, 4000), None, (1440, 1920)),
    ((4000, 3000), 6, (1440, 1920)),   # a portrait shot stored landscape: the long edge is still cut to 1920
    ((1600, 1200), None, (1600, 1200)),  # never enlarged
], ids=["landscape", "portrait", "portrait-by-exif", "small"])
def test_the_longest_edge_is_cut_to_the_maximum(source, orientation, expected):
    photo = prepare_photo(make_jpeg(*source, orientation=orientation, quality=70))
    assert opened(photo.data).size == expected


def test_the_maximum_and_the_quality_are_settings():
    source = make_jpeg(1000, 800, noise=True, quality=95)
    small = prepare_photo(source, CaptureSettings(max_edge=500, quality=50))
    fine = prepare_photo(source, CaptureSettings(max_edge=500, quality=95))
    assert opened(small.data).size == (500, 400)
    assert len(small.data) < len(fine.data)
    assert opened(small.data).format == "JPEG"


def test_the_capture_time_is_kept_and_every_other_field_dropped():
    photo = prepare_photo(make_jpeg(800, 600, taken="2026:11:18 08:15:30", zone="+08:00", gps=True))
    exif = opened(photo.data).getexif()
    inner = exif.get_ifd(ExifTags.IFD.Exif)
    assert inner[ExifTags.Base.DateTimeOriginal] == "2026:11:18 08:15:30"
    assert inner[ExifTags.Base.OffsetTimeOriginal] == "+08:00"
    assert set(inner) == {ExifTags.Base.DateTimeOriginal, ExifTags.Base.OffsetTimeOriginal}, "serial number dropped"
    assert not exif.get_ifd(ExifTags.IFD.GPSInfo), "location only if the worker allows it"
    assert {ExifTags.Base.Make, ExifTags.Base.Model, ExifTags.Base.Software}.isdisjoint(exif)
    assert photo.taken_at == "2026:11:18 08:15:30" and not photo.has_location


def test_the_location_is_kept_when_the_worker_allows_it():
    photo = prepare_photo(make_jpeg(800, 600, gps=True), CaptureSettings(keep_location=True))
    gps = opened(photo.data).getexif().get_ifd(ExifTags.IFD.GPSInfo)
    assert gps[1] == "N" and gps[3] == "E" and float(gps[2][0]) == 22.0 and float(gps[4][0]) == 114.0
    assert photo.has_location


def test_the_apps_own_fix_and_clock_fill_in_what_the_camera_did_not_write():
    moment = datetime(2026, 11, 18, 9, 30, 5, tzinfo=timezone(timedelta(hours=8)))
    photo = prepare_photo(make_jpeg(640, 480, make=None), CaptureSettings(keep_location=True),
                          taken_at=moment, location=(22.5431, -114.0579))
    exif = opened(photo.data).getexif()
    assert exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] == "2026:11:18 09:30:05"
    assert exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.OffsetTimeOriginal] == "+08:00"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    degrees = float(gps[2][0]) + float(gps[2][1]) / 60 + float(gps[2][2]) / 3600
    assert gps[1] == "N" and gps[3] == "W" and abs(degrees - 22.5431) < 1e-4
    without = prepare_photo(make_jpeg(640, 480, make=None), taken_at=moment, location=(22.5, 114.0))
    assert not opened(without.data).getexif().get_ifd(ExifTags.IFD.GPSInfo)


def test_a_thumbnail_is_made_and_the_photo_is_named_by_its_hash():
    photo = prepare_photo(make_jpeg(4000, 3000, quality=70))
    assert photo.sha256 == sha(photo.data)
    assert opened(photo.thumbnail).size == (320, 240)
    assert prepare_photo(make_jpeg(4000, 3000, quality=70)).sha256 == photo.sha256, "the same image, the same name"


@pytest.mark.parametrize("mode", ["RGBA", "P", "L", "CMYK"])
def test_other_colour_modes_become_a_jpeg(mode):
    out = io.BytesIO()
    Image.new(mode, (50, 40)).save(out, "PNG" if mode in ("RGBA", "P", "L") else "TIFF")
    photo = prepare_photo(out.getvalue())
    assert opened(photo.data).format == "JPEG" and opened(photo.data).mode in ("RGB", "L")


def test_a_file_path_is_a_source_too(tmp_path):
    path = tmp_path / "camera.jpg"
    path.write_bytes(make_jpeg(100, 50))
    assert opened(prepare_photo(path).data).size == (100, 50)

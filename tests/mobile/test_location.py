"""Location: readings, their checks and stored form, the desktop fallback, the GPS provider without plyer's GPS."""

from __future__ import annotations

import math
import sys
import types

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobile.location import (
    LAST_LOCATION_KEY, NO_READING, TILE_PX, DesktopLocation, LocationReading, MapTilesError, MBTiles, PlyerLocation,
    fit_view, from_pixels, grid_outline, reading_dict, reading_from, to_pixels,
)
from mobile.store import Store


@pytest.fixture
def store(tmp_path):
    """A fresh store."""
    with Store(tmp_path / "replica.db") as opened:
        yield opened


def test_no_reading_is_unknown_and_has_no_record_form():
    assert not NO_READING.known and NO_READING.source is None
    assert NO_READING.as_record() is None and NO_READING.problem() is None


@given(lat=st.floats(-90, 90), lon=st.floats(-180, 180),
       accuracy=st.one_of(st.none(), st.floats(0, 10_000)), source=st.sampled_from(["gps", "last_known", "manual"]))
def test_law_a_valid_reading_makes_a_location_the_wire_accepts_and_round_trips(lat, lon, accuracy, source):
    from shared.records import LocationSchema
    reading = LocationReading(lat, lon, accuracy, source, 1)
    assert reading.problem() is None
    record = reading.as_record()
    assert LocationSchema().load(record) == record
    assert reading_from(reading_dict(reading)) == reading


@pytest.mark.parametrize("reading", [
    LocationReading(90.5, 0, None, "gps"), LocationReading(0, -180.1, None, "gps"),
    LocationReading(math.inf, 0, None, "gps"), LocationReading(0, 0, math.nan, "gps"),
    LocationReading(0, 0, -1, "gps"), LocationReading(0, 0, 1, "cell"), LocationReading(True, 0, 1, "gps"),
    LocationReading("22.5", 0, 1, "gps"),
])
def test_a_reading_out_of_range_or_of_unknown_source_is_invalid(reading):
    assert reading.problem() == "invalid"


@pytest.mark.parametrize("data", [None, 3, "x", {}, {"lat": 1}, {"lat": 100, "lon": 0, "source": "gps"},
                                  {"lat": 1, "lon": 2, "source": "satellite"}])
def test_unreadable_stored_positions_are_none(data):
    assert reading_from(data) is None


def test_desktop_location_answers_the_stored_last_known_position(store):
    provider = DesktopLocation(store)
    assert provider.current() is None
    store.save_setting(LAST_LOCATION_KEY, reading_dict(LocationReading(22.5, 114.0, 10.0, "gps", 5)))
    assert provider.current() == LocationReading(22.5, 114.0, 10.0, "last_known", 5)


class FakePlyerGps(types.ModuleType):
    """Stands in for plyer.gps: records configure/start/stop, lets the test send fixes."""

    def __init__(self):
        super().__init__("plyer.gps")
        self.on_location = None
        self.started = 0

    def configure(self, on_location, on_status=None):
        self.on_location = on_location
        self.on_status = on_status

    def start(self, minTime, minDistance):
        self.started += 1

    def stop(self):
        self.started -= 1


def test_plyer_location_keeps_the_latest_fix_while_it_is_fresh(monkeypatch):
    gps = FakePlyerGps()
    plyer = types.ModuleType("plyer")
    plyer.gps = gps  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "plyer", plyer)
    now = [1000.0]
    provider = PlyerLocation(max_age_s=60, clock=lambda: now[0])
    assert provider.current() is None
    assert provider.start() and gps.started == 1
    gps.on_location(lat=22.5, lon=114.0, accuracy=6.5, speed=0)
    assert provider.current() == LocationReading(22.5, 114.0, 6.5, "gps", 1_000_000, 0.0)  # the speed too (patrols)
    gps.on_location(lat="nonsense", lon=1)  # ignored
    gps.on_location(lat=95, lon=1)  # out of range: ignored
    assert provider.current().lat == 22.5
    now[0] += 61
    assert provider.current() is None  # stale: the form falls back to last_known
    gps.on_status("provider-disabled", "gps")
    assert provider.status == "provider-disabled: gps"
    provider.stop()
    assert gps.started == 0


def test_plyer_location_without_a_gps_says_unavailable(monkeypatch):
    plyer = types.ModuleType("plyer")

    class Missing:
        def configure(self, **kwargs):
            raise NotImplementedError()

    plyer.gps = Missing()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "plyer", plyer)
    provider = PlyerLocation()
    assert provider.start() is False and provider.status.startswith("unavailable")
    assert provider.current() is None


def test_plyer_location_keeps_the_speed_where_the_gps_gives_one(monkeypatch):
    gps = FakePlyerGps()
    plyer = types.ModuleType("plyer")
    plyer.gps = gps  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "plyer", plyer)
    provider = PlyerLocation(clock=lambda: 1000.0)
    provider.start()
    readings = []
    for speed in (1.4, None, -1, "fast", float("nan")):
        gps.on_location(lat=22.5, lon=114.0, accuracy=5, speed=speed)
        readings.append(provider.current().speed_mps)
    assert readings == [1.4, None, None, None, None]


# --- the map a manual position is picked on (issue 13) ------------------------------------------------------------

def make_mbtiles(path, tiles) -> None:
    """An MBTiles file of PNG tiles: ``tiles`` maps (zoom, x, y) in the map's (XYZ) numbering to an RGB colour;
    stored as the format says, with rows counted from the south (TMS). Each tile has a dark cross on it."""
    import io
    import sqlite3

    from PIL import Image, ImageDraw

    db = sqlite3.connect(path)
    db.execute("CREATE TABLE metadata (name TEXT, value TEXT)")
    db.execute("CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB)")
    db.executemany("INSERT INTO metadata VALUES (?, ?)", [("name", "test"), ("format", "png")])
    for (zoom, x, y), colour in tiles.items():
        image = Image.new("RGB", (TILE_PX, TILE_PX), colour)
        draw = ImageDraw.Draw(image)
        draw.line([(0, 128), (255, 128)], fill=(40, 40, 40), width=3)
        draw.line([(128, 0), (128, 255)], fill=(40, 40, 40), width=3)
        out = io.BytesIO()
        image.save(out, "PNG")
        db.execute("INSERT INTO tiles VALUES (?, ?, ?, ?)", (zoom, x, 2 ** zoom - 1 - y, out.getvalue()))
    db.commit()
    db.close()


@pytest.mark.parametrize("lat, lon, zoom, expected", [
    (0.0, 0.0, 0, (128.0, 128.0)),  # the middle of the one tile of zoom 0
    (0.0, -180.0, 1, (0.0, 256.0)),
    (85.05112878, 180.0, 2, (1024.0, 0.0)),  # the north-east corner of the square world
])
def test_to_pixels_places_known_points_of_web_mercator(lat, lon, zoom, expected):
    assert to_pixels(lat, lon, zoom) == pytest.approx(expected, abs=1e-6)


@given(lat=st.floats(-85, 85), lon=st.floats(-180, 180), zoom=st.integers(0, 20))
def test_law_from_pixels_undoes_to_pixels(lat, lon, zoom):
    back = from_pixels(*to_pixels(lat, lon, zoom), zoom)
    assert back == pytest.approx((lat, lon), abs=1e-9)


@given(lat=st.floats(-85, 85), lon=st.floats(-179.999, 179.999), zoom=st.integers(0, 19))
def test_law_a_position_falls_in_the_tile_the_slippy_map_formula_names(lat, lon, zoom):
    # The tile numbering of every slippy map, written the other way (asinh of tan), as an independent oracle.
    n = 2 ** zoom
    tile_x = (lon + 180) / 360 * n
    tile_y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    x, y = to_pixels(lat, lon, zoom)
    assert x / TILE_PX == pytest.approx(tile_x, abs=1e-6) and y / TILE_PX == pytest.approx(tile_y, abs=1e-6)


def test_a_grid_outline_is_read_from_a_geojson_polygon_of_lon_lat():
    square = {"type": "Polygon", "coordinates": [[[114.05, 22.54], [114.06, 22.54], [114.06, 22.55],
                                                  [114.05, 22.54]]]}
    outline = grid_outline("G-0101", "东湖一网格", square)
    assert outline.rings == (((22.54, 114.05), (22.54, 114.06), (22.55, 114.06), (22.54, 114.05)),)


@pytest.mark.parametrize("boundary", [
    None, "x", {"type": "Point", "coordinates": [114, 22]}, {"type": "Polygon", "coordinates": []},
    {"type": "Polygon", "coordinates": [[[114, 22], [114.1, 22]]]},  # too few points
    {"type": "Polygon", "coordinates": [[[114, 22], [math.nan, 22], [200, 22], [114, True], "x"]]},
])
def test_a_boundary_that_is_no_polygon_gives_no_outline(boundary):
    assert grid_outline("G-1", None, boundary) is None


def test_fit_view_shows_every_point_as_large_as_it_fits():
    box = [(22.5410, 114.0545), (22.5455, 114.0605)]  # the demo's G-0101, about 620 m × 500 m
    lat, lon, zoom = fit_view(box, 800, 600)
    assert (lat, lon) == pytest.approx((22.54325, 114.0575), abs=1e-4)
    size = [abs(a - b) for a, b in zip(to_pixels(*box[0], zoom), to_pixels(*box[1], zoom))]
    assert size[0] <= 800 * 0.8 and size[1] <= 600 * 0.8
    bigger = [abs(a - b) for a, b in zip(to_pixels(*box[0], zoom + 1), to_pixels(*box[1], zoom + 1))]
    assert bigger[0] > 800 * 0.8 or bigger[1] > 600 * 0.8  # one zoom more would not fit
    assert fit_view(box, 800, 600, max_zoom=12)[2] == 12
    assert fit_view([], 800, 600)[2] == 2


def test_mbtiles_answers_tiles_in_the_maps_numbering_from_the_files_south_counted_rows(tmp_path):
    path = tmp_path / "city.mbtiles"
    make_mbtiles(path, {(16, 53531, 28553): (200, 220, 180), (17, 107062, 57106): (10, 20, 30)})
    tiles = MBTiles(path)
    try:
        assert (tiles.min_zoom, tiles.max_zoom) == (16, 17)
        data = tiles.tile(16, 53531, 28553)
        assert data is not None and data.startswith(b"\x89PNG")
        assert tiles.tile(16, 53531, 2 ** 16 - 1 - 28553) is None  # the stored row is not the map's row
        assert tiles.tile(16, 53532, 28553) is None and tiles.tile(16, -1, 0) is None and tiles.tile(3, 8, 0) is None
        (north, west), (south, east) = tiles.bounds()  # of tile 53531/28553, the file's one tile at zoom 16
        assert from_pixels(53531 * TILE_PX, 28553 * TILE_PX, 16) == pytest.approx((north, west))
        assert from_pixels(53532 * TILE_PX, 28554 * TILE_PX, 16) == pytest.approx((south, east))
        assert south < 22.5432 < north and west < 114.0575 < east
    finally:
        tiles.close()
    assert tiles.tile(16, 53531, 28553) is None and tiles.bounds() is None  # closed


def test_a_tile_file_that_is_missing_or_not_mbtiles_is_refused_and_left_unchanged(tmp_path):
    with pytest.raises(MapTilesError) as caught:
        MBTiles(tmp_path / "nowhere.mbtiles")
    assert caught.value.code == "not_found"
    with pytest.raises(MapTilesError) as caught:
        MBTiles(tmp_path)  # a folder
    assert caught.value.code == "not_found"
    with pytest.raises(MapTilesError) as caught:
        MBTiles("bad\x00name")
    assert caught.value.code == "not_found"
    text = tmp_path / "notes.mbtiles"
    text.write_text("not a database")
    with pytest.raises(MapTilesError) as caught:
        MBTiles(text)
    assert caught.value.code == "not_mbtiles"
    with Store(tmp_path / "replica.db"):  # an SQLite file, but no tiles table
        pass
    with pytest.raises(MapTilesError) as caught:
        MBTiles(tmp_path / "replica.db")
    assert caught.value.code == "not_mbtiles"
    empty = tmp_path / "empty.mbtiles"
    make_mbtiles(empty, {})
    with pytest.raises(MapTilesError) as caught:
        MBTiles(empty)
    assert caught.value.code == "not_mbtiles"
    assert text.read_text() == "not a database"  # opened read-only, never written

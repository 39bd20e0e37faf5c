"""Location: readings, their checks and stored form, the desktop fallback, the GPS provider without plyer's GPS."""

from __future__ import annotations

import math
import sys
import types

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobile.location import (
    LAST_LOCATION_KEY, NO_READING, DesktopLocation, LocationReading, PlyerLocation, reading_dict, reading_from,
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

"""A map to pick a position on by tapping: the worker's grid outlines, over offline MBTiles tiles when there are some.

Why a widget of its own and not kivy_garden.mapview: mapview's map sources fetch their tiles over HTTP
through a shared download pool that keeps a cache folder (its default source is OpenStreetMap's
servers), and its MBTiles source opens its SQLite file on one thread and reads it through that pool.
A tablet that may be offline for days, and tests that must never reach a tile server, want a map
that cannot go online by construction; and mapview has no "outlines on a blank background" mode for
a tablet without a tile file. What is needed here is small: one zoom level at a time, pan, zoom
buttons, a tap that drops a marker. The projection and the tile file are plain Python in
mobile/location.py (tested without a window); this module only draws and takes touches.
"""

from __future__ import annotations

import io
import logging
from typing import Any, Callable

from kivy.core.image import Image as CoreImage
from kivy.core.text import Label as CoreLabel
from kivy.graphics import Color, Ellipse, Line, Rectangle
from kivy.metrics import dp, sp
from kivy.uix.stencilview import StencilView

from ..location import MAX_ZOOM, MIN_ZOOM, TILE_PX, MapTilesError, MBTiles, fit_view, from_pixels, to_pixels
from .widgets import DANGER, PRIMARY, TEXT

__all__ = ["TapMap"]

log = logging.getLogger(__name__)

PAPER = (0.95, 0.94, 0.90, 1)  # the blank map: a light, paper-like ground the outlines read on
PAN_SLOP = dp(12)  # a finger that moves less than this taps; more, and it drags the map
TEXTURES_KEPT = 96  # decoded tiles kept (a 1280×800 view shows about 24)
_KINDS = ((b"\x89PNG", "png"), (b"\xff\xd8", "jpg"), (b"RIFF", "webp"))


class TapMap(StencilView):
    """The map. ``area`` is a presenters.MapArea; ``marker`` (lat, lon) or None; ``on_pick(lat, lon)`` after a tap.

    Drawing is clipped to the widget (StencilView). Call `close` when done: it closes the tile file.
    """

    def __init__(self, area: Any, marker: tuple[float, float] | None, on_pick: Callable[[float, float], None],
                 **kwargs: Any):
        super().__init__(**kwargs)
        self.outlines = list(area.outlines)
        self.marker = marker
        self.on_pick = on_pick
        self.tiles: MBTiles | None = None
        if area.tiles_path:
            try:
                self.tiles = MBTiles(area.tiles_path)
            except MapTilesError:
                log.warning("map: the tile file %s cannot be read; outlines only", area.tiles_path, exc_info=True)
        self.min_zoom = self.tiles.min_zoom if self.tiles else MIN_ZOOM
        self.max_zoom = self.tiles.max_zoom if self.tiles else MAX_ZOOM - 1
        self.zoom = self.min_zoom
        self.cx = self.cy = 0.0  # the world-map pixel at the widget's centre, at self.zoom
        self._moved = False  # the worker panned or zoomed: until then the view follows the widget's size
        self._textures: dict[tuple[int, int, int], Any] = {}
        self._labels: dict[str, Any] = {}
        self.bind(pos=self.redraw, size=self.redraw)

    # --- where things are ------------------------------------------------------------------------

    def fit(self) -> None:
        """Show every grid outline and the marker, as large as they fit."""
        points = [p for outline in self.outlines for ring in outline.rings[:1] for p in ring]
        if self.marker is not None:
            points.append(self.marker)
        if not points and self.tiles is not None:
            points = list(self.tiles.bounds() or ())  # nothing to show yet: the area the tile file covers
        lat, lon, zoom = fit_view(points, self.width, self.height, max_zoom=self.max_zoom)
        self._look_at(lat, lon, max(self.min_zoom, min(self.max_zoom, zoom)))
        self._moved = False

    def _look_at(self, lat: float, lon: float, zoom: int) -> None:
        self.zoom = zoom
        self.cx, self.cy = to_pixels(lat, lon, zoom)

    def point_of(self, lat: float, lon: float) -> tuple[float, float]:
        """Where a position is drawn, in the widget's parent's coordinates (as ``pos``)."""
        x, y = to_pixels(lat, lon, self.zoom)
        return self.center_x + (x - self.cx), self.center_y - (y - self.cy)

    def position_at(self, x: float, y: float) -> tuple[float, float]:
        """The position (lat, lon) drawn at (x, y), in the widget's parent's coordinates."""
        return from_pixels(self.cx + (x - self.center_x), self.cy - (y - self.center_y), self.zoom)

    def zoom_by(self, steps: int) -> None:
        """Zoom in (steps > 0) or out around the centre, within the zooms the map has."""
        zoom = max(self.min_zoom, min(self.max_zoom, self.zoom + steps))
        if zoom != self.zoom:
            lat, lon = from_pixels(self.cx, self.cy, self.zoom)
            self._look_at(lat, lon, zoom)
            self._moved = True
            self.redraw()

    def set_marker(self, lat: float, lon: float) -> None:
        """Put the marker at a position (typed, or tapped)."""
        self.marker = (lat, lon)
        self.redraw()

    def close(self) -> None:
        """Close the tile file."""
        if self.tiles is not None:
            self.tiles.close()
            self.tiles = None
        self._textures.clear()

    # --- touches ------------------------------------------------------------------------------------

    def on_touch_down(self, touch: Any) -> bool:
        if not self.collide_point(*touch.pos):
            return super().on_touch_down(touch)
        if getattr(touch, "is_mouse_scrolling", False):  # a desktop's wheel zooms
            self.zoom_by(1 if touch.button == "scrolldown" else -1)
            return True
        touch.grab(self)
        touch.ud[self] = {"start": touch.pos, "panned": False}
        return True

    def on_touch_move(self, touch: Any) -> bool:
        if touch.grab_current is not self:
            return super().on_touch_move(touch)
        state = touch.ud[self]
        sx, sy = state["start"]
        if not state["panned"] and abs(touch.x - sx) + abs(touch.y - sy) > PAN_SLOP:
            state["panned"] = True
        if state["panned"]:
            self.cx -= touch.dx
            self.cy += touch.dy
            self._moved = True
            self.redraw()
        return True

    def on_touch_up(self, touch: Any) -> bool:
        if touch.grab_current is not self:
            return super().on_touch_up(touch)
        touch.ungrab(self)
        state = touch.ud.get(self) or {}
        if not state.get("panned"):
            lat, lon = self.position_at(*touch.pos)
            self.set_marker(lat, lon)
            self.on_pick(lat, lon)
        return True

    # --- drawing ----------------------------------------------------------------------------------------

    def redraw(self, *_: Any) -> None:
        """Draw the ground, the tiles, the outlines and the marker."""
        if self.width <= 1 or self.height <= 1:
            return
        if not self._moved:
            self.fit()  # a popup lays out in steps: fit the size it has now
        self.canvas.clear()
        with self.canvas:
            Color(*PAPER)
            Rectangle(pos=self.pos, size=self.size)
            self._draw_tiles()
            self._draw_outlines()
            self._draw_marker()

    def _draw_tiles(self) -> None:
        if self.tiles is None:
            return
        left, top = self.cx - self.width / 2, self.cy - self.height / 2
        count = 2 ** self.zoom
        first_x, first_y = int(left // TILE_PX), int(top // TILE_PX)
        last_x, last_y = int((left + self.width) // TILE_PX), int((top + self.height) // TILE_PX)
        Color(1, 1, 1, 1)
        for ty in range(max(0, first_y), min(count - 1, last_y) + 1):
            for tx in range(max(0, first_x), min(count - 1, last_x) + 1):
                texture = self._texture(self.zoom, tx, ty)
                if texture is not None:
                    x = self.center_x + tx * TILE_PX - self.cx
                    y = self.center_y - (ty + 1) * TILE_PX + self.cy
                    Rectangle(texture=texture, pos=(x, y), size=(TILE_PX, TILE_PX))

    def _texture(self, zoom: int, x: int, y: int) -> Any:
        key = (zoom, x, y)
        if key not in self._textures:
            if len(self._textures) >= TEXTURES_KEPT:
                self._textures.clear()
            self._textures[key] = self._decode(self.tiles.tile(zoom, x, y) if self.tiles else None, key)
        return self._textures[key]

    @staticmethod
    def _decode(data: bytes | None, key: tuple[int, int, int]) -> Any:
        """A tile's texture, or None for a missing or unreadable tile (the ground shows through)."""
        if not data:
            return None
        kind = next((ext for magic, ext in _KINDS if data.startswith(magic)), None)
        if kind is None:
            return None
        try:
            return CoreImage(io.BytesIO(data), ext=kind).texture
        except Exception:  # noqa: BLE001 - a broken tile in a file from elsewhere must not break the form
            log.warning("map: tile %s/%s/%s is not a readable image", *key, exc_info=True)
            return None

    def _draw_outlines(self) -> None:
        for outline in self.outlines:
            Color(*PRIMARY)
            for ring in outline.rings:
                points = [c for lat, lon in ring for c in self.point_of(lat, lon)]
                Line(points=points, width=dp(2), close=True)
            label = self._label(outline.name or outline.code)
            lats = [p[0] for p in outline.rings[0]]
            lons = [p[1] for p in outline.rings[0]]
            x, y = self.point_of(sum(lats) / len(lats), sum(lons) / len(lons))
            Color(*TEXT)
            Rectangle(texture=label, pos=(x - label.width / 2, y - label.height / 2), size=label.size)

    def _label(self, text: str) -> Any:
        if text not in self._labels:
            core = CoreLabel(text=text, font_size=sp(20), bold=True)
            core.refresh()
            self._labels[text] = core.texture
        return self._labels[text]

    def _draw_marker(self) -> None:
        if self.marker is None:
            return
        x, y = self.point_of(*self.marker)
        outer, inner = dp(14), dp(9)
        Color(1, 1, 1, 1)
        Ellipse(pos=(x - outer, y - outer), size=(2 * outer, 2 * outer))
        Color(*DANGER)
        Ellipse(pos=(x - inner, y - inner), size=(2 * inner, 2 * inner))
        Line(points=[x - 2.2 * outer, y, x - outer, y], width=dp(1.5))
        Line(points=[x + outer, y, x + 2.2 * outer, y], width=dp(1.5))
        Line(points=[x, y - 2.2 * outer, x, y - outer], width=dp(1.5))
        Line(points=[x, y + outer, x, y + 2.2 * outer], width=dp(1.5))

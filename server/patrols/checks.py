"""What the server refuses of a pushed ``track`` batch, beyond the wire's checks (server/sync/apply.py asks).

The wire (shared/records.py, shared/track.py ``packed_error``) has already checked the packed
columns' shape. Here, against what only the server knows:

1. **Its clock and the contract's rules** (shared/track.py ``refusal``): no point more than the
   HLC drift limit (``GRIDPATROL_MAX_DRIFT_SECONDS``, the one pushes' timestamps are held to) ahead
   of the server's clock, no jump faster than ``MAX_SPEED_MPS``.
2. **The grid's outline**: no point more than ``FAR_OUTSIDE_M`` (50 km) outside the box of the
   boundary of the grid whose bucket the batch lives in, when that grid has a boundary. A worker may
   step outside their grid (a street on its edge, a detour); 50 km outside is a fix from elsewhere
   (a swapped latitude and longitude, a tablet's stale position, a test device).

Both refuse the whole batch with the reason and the code ``bad_track``; nothing of it is stored.
Only a new track record is judged: a replay of a stored one is ``stale`` as any replay is.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy import select

from shared.hlc import parse_ms
from shared.records import REF_BUCKET, bucket_grid
from shared.track import refusal, unpack

from ..clock import server_clock
from ..db import db
from ..models import Record
from .geometry import boundary_box, far_outside

FAR_OUTSIDE_M = 50_000.0
CODE = "bad_track"


class TrackCheck:
    """The checks of one batch: the server's time read once, each grid's boundary box read once."""

    def __init__(self):
        self.now_ms = server_clock().physical_ms()
        self.max_drift_ms = current_app.config["GRIDPATROL_MAX_DRIFT_SECONDS"] * 1000
        self._boxes: dict[str, Any] = {}

    def box(self, grid: str | None):
        """The (south, west, north, east) box of the grid's boundary; None without one (or an unknown grid)."""
        if grid is None:
            return None
        if grid not in self._boxes:
            found = None
            # The one grid record of the code (read whole only when it matches: boundaries may be large).
            for values in db.session.scalars(select(Record.field_values).where(
                    Record.bucket == REF_BUCKET, Record.kind == "grid",
                    Record.field_values["code"].as_string() == grid)):
                if values.get("code") == grid and not values.get("_deleted"):
                    found = boundary_box(values.get("boundary"))
                    break
            self._boxes[grid] = found
        return self._boxes[grid]

    def refusal(self, state: dict[str, tuple[Any, str]], bucket: str) -> str | None:
        """Why a new track record (its merged state, the bucket it lives in) is refused; None when it is not."""
        if "points" not in state or "start" not in state:
            return None  # the required fields' check says what is missing
        points = unpack(state["points"][0], parse_ms(state["start"][0]))
        reason = refusal(points, self.now_ms, self.max_drift_ms)
        if reason:
            return f"bad track: {reason}"
        grid = bucket_grid(bucket)
        box = self.box(grid)
        if box is not None:
            for index, point in enumerate(points):
                if far_outside(point.lat, point.lon, box, FAR_OUTSIDE_M):
                    return (f"bad track: point {index} ({point.lat:.6f}, {point.lon:.6f}) is more than "
                            f"{FAR_OUTSIDE_M / 1000:g} km outside the boundary of grid {grid}")
        return None

"""Hybrid logical clocks: timestamps that sort in causal and (nearly) wall-clock order.

Every field write in GridPatrol carries an HLC timestamp, and merge picks the
write with the greater one. The clock follows Kulkarni et al., "Logical
Physical Clocks" (2014): a timestamp is a pair (wall time, counter) that never
goes backwards on one node, never falls behind the node's physical clock, and
absorbs every timestamp the node has seen from elsewhere, so a write made after
seeing another write always sorts after it.

The string form is the wire form and the stored form::

    2026-11-27T19:48:00.123Z-0000-9f86d081884c7d65
    └─ UTC wall time, ms ──┘ └ctr┘ └─ node (16 hex) ─┘

It is fixed-width, so string order equals timestamp order, and the node id at
the end makes two timestamps from different nodes never equal.

Hazard: a fast physical clock. A node whose clock runs a day ahead would stamp
writes that win every conflict for a day. `check_drift` refuses a remote
timestamp too far ahead of the local physical clock with `ClockDriftError`,
which carries both times; the server turns it into the `clock_skew` answer and
the tablet corrects its clock offset (see design.md, "Clock skew").

Hazard: counter overflow. The counter has four hex digits. Should a node stamp
more than 65,536 writes within one millisecond of stalled wall time, the clock
moves its logical wall time one millisecond forward instead of overflowing;
order and uniqueness still hold, and the lead is absorbed by the physical clock
within milliseconds.

Nothing here reads the real clock unless asked to: the physical clock is an
injected callable returning Unix time in milliseconds.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Callable

MAX_COUNTER = 0xFFFF
# How far ahead of the server's clock a write may be stamped, unless the server is configured otherwise
# (GRIDPATROL_MAX_DRIFT_SECONDS); tablets flag track points beyond it (mobile/patrol.py).
DEFAULT_MAX_DRIFT_S = 300
_PATTERN = re.compile(
    # ASCII digits and \Z, not \d and $: "\n" at the end or a full-width "２０２６" would
    # parse to a valid HLC while the raw string, which merge compares, sorts elsewhere.
    r"^([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3})Z-([0-9a-f]{4})-([0-9a-f]{16})\Z"
)
_NODE = re.compile(r"^[0-9a-f]{16}\Z")
_MIN_MS = 0
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MAX_MS = 253402300799999  # 9999-12-31T23:59:59.999Z: the string form stays fixed-width
# The canonical form only, ASCII digits only (see _PATTERN): the fast path of parse_ms.
_FIXED_MS = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})\.([0-9]{3})Z\Z")
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


class HLCError(ValueError):
    """A string that is not an HLC timestamp, or a clock used wrongly."""


class ClockDriftError(HLCError):
    """A remote timestamp is further ahead of the local physical clock than allowed."""

    def __init__(self, remote: "HLC", physical_ms: int, max_drift_ms: int):
        self.remote = remote
        self.physical_ms = physical_ms
        self.max_drift_ms = max_drift_ms
        ahead = remote.wall_ms - physical_ms
        super().__init__(
            f"timestamp {remote} is {ahead} ms ahead of the clock here "
            f"({format_ms(physical_ms)}); at most {max_drift_ms} ms is allowed"
        )


def format_ms(ms: int) -> str:
    """Unix milliseconds as ISO 8601 UTC with milliseconds and a Z."""
    # Speed: strftime was most of validating a time (Instant formats what it parsed). Within the
    # range of HLCs the text is put together from integers and the date's own strftime, cached per
    # day; the time of day is the floor of ms (fromtimestamp's float never crosses a second there:
    # tests/shared/test_fast_paths.py). Anything else goes the datetime way, errors included.
    if type(ms) is int and 0 <= ms <= _MAX_MS:
        days, milli = divmod(ms, 86_400_000)
        seconds, milli = divmod(milli, 1000)
        minutes, second = divmod(seconds, 60)
        hour, minute = divmod(minutes, 60)
        return f"{_day_text(days)}T{hour:02d}:{minute:02d}:{second:02d}.{milli:03d}Z"
    return _format_ms_datetime(ms)


def _format_ms_datetime(ms: int) -> str:
    """format_ms through datetime, for every input."""
    dt = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


@lru_cache(maxsize=1024)
def _day_text(days: int) -> str:
    """The %Y-%m-%d of a day since 1970-01-01, as datetime.strftime writes it."""
    return date.fromordinal(_EPOCH_ORDINAL + days).strftime("%Y-%m-%d")


@lru_cache(maxsize=1024)
def _day_number(text: str) -> int | None:
    """Days since 1970-01-01 of a YYYY-MM-DD of ASCII digits; None when it is no date (Feb 30, year 0)."""
    try:
        return date(int(text[0:4]), int(text[5:7]), int(text[8:10])).toordinal() - _EPOCH_ORDINAL
    except ValueError:
        return None


def parse_ms(text: str) -> int:
    """ISO 8601 UTC (with Z and milliseconds) back to Unix milliseconds."""
    # Speed: strptime was a quarter of a push's CPU (every HLC of every change passes here). The
    # canonical fixed-width form is read with integer arithmetic instead; date() refuses what
    # strptime refuses (month 13, Feb 30, year 0), the hour/minute/second checks do the rest. Any
    # other input, and every refusal, goes to strptime, so what is accepted and the error raised
    # are exactly as before.
    # The date's validity and number are cached per day (most times of a push share a few days).
    if type(text) is str and _FIXED_MS.match(text) is not None:
        # Fixed width: YYYY-MM-DDTHH:MM:SS.mmmZ
        hour, minute, second = int(text[11:13]), int(text[14:16]), int(text[17:19])
        days = _day_number(text[:10])
        if hour < 24 and minute < 60 and second < 60 and days is not None:
            return ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + int(text[20:23])
    return _parse_ms_strptime(text)


def ms_or_none(text: Any) -> int | None:
    """Unix milliseconds of an ISO 8601 UTC instant, or None for anything else (None, a bad text, a number)."""
    if not isinstance(text, str):
        return None
    try:
        return parse_ms(text)
    except ValueError:
        return None


def _parse_ms_strptime(text: str) -> int:
    """parse_ms for every form strptime takes, and its error message for the rest."""
    dt = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    # Integer arithmetic: int(dt.timestamp()) truncates towards zero, wrong before 1970.
    return (dt - _EPOCH) // timedelta(milliseconds=1)


@dataclass(frozen=True, order=True, slots=True)
class HLC:
    """One timestamp. Field order is comparison order: wall, counter, node."""

    wall_ms: int
    counter: int
    node: str

    def __post_init__(self):
        if not (_MIN_MS <= self.wall_ms <= _MAX_MS):
            raise HLCError(f"wall time {self.wall_ms} ms is out of range")
        if not (0 <= self.counter <= MAX_COUNTER):
            raise HLCError(f"counter {self.counter} is out of range")
        if not _NODE.match(self.node):
            raise HLCError(f"node {self.node!r} is not 16 lowercase hex digits")

    def __str__(self) -> str:
        return f"{format_ms(self.wall_ms)}-{self.counter:04x}-{self.node}"

    @classmethod
    def parse(cls, text: str) -> "HLC":
        """Read the string form; raises HLCError naming what is wrong."""
        if not isinstance(text, str):
            raise HLCError(f"an HLC timestamp must be a string, not {type(text).__name__}")
        if cls is HLC:
            # Speed: a change usually stamps all its fields with one HLC, and validation and the
            # server's max_hlc parse it again; HLC is frozen, so parsing each string once is safe.
            # Refusals raise, and lru_cache keeps no exceptions, so they are checked every time.
            # 4,096 strings (about 1.5 MB) hold several 500-change pushes: the repeats are near.
            return _parse_cached(text)
        return cls._parse(text)

    @classmethod
    def _parse(cls, text: str) -> "HLC":
        match = _PATTERN.match(text)
        if not match:
            raise HLCError(f"{text!r} is not an HLC timestamp: {_what_is_wrong(text)} "
                           f"(like 2026-11-27T19:48:00.123Z-0000-9f86d081884c7d65)")
        wall, counter, node = match.groups()
        try:
            wall_ms = parse_ms(wall + "Z")
        except ValueError as exc:
            raise HLCError(f"{text!r} has no valid date: {exc}") from None
        return cls(wall_ms, int(counter, 16), node)


@lru_cache(maxsize=4096)
def _parse_cached(text: str) -> HLC:
    return HLC._parse(text)


def _what_is_wrong(text: str) -> str:
    """Which part of a string that failed _PATTERN is wrong, for the error message."""
    parts = text.rsplit("-", 2)
    if len(parts) != 3:
        return "it needs wall time, counter and node joined by '-'"
    wall, counter, node = parts
    if not _NODE.match(node):
        return f"node {node!r} is not 16 lowercase hex digits"
    if not re.match(r"^[0-9a-f]{4}\Z", counter):
        return f"counter {counter!r} is not 4 lowercase hex digits"
    return f"wall time {wall!r} is not UTC to the millisecond with a Z"


# The canonical string form with every field in range, as one pattern: what `is_hlc` accepts without building
# an HLC. Only the day of the month is left to `_day_number` (Feb 30), and the year to a text comparison.
_CANONICAL = re.compile(
    r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\.[0-9]{3}Z"
    r"-[0-9a-f]{4}-[0-9a-f]{16}\Z"
)


def is_hlc(text: object) -> bool:
    """Whether text is a well-formed HLC string."""
    # Speed (issue 19): a pulled change brings an HLC this process has not seen, so parse's cache misses and
    # the check cost building an HLC. The canonical form, in range, is recognised by one pattern and a date
    # cached per day; everything else, refusals included, goes the whole way. Both answer alike for every
    # string (tests/shared/test_hlc.py, test_is_hlc_fast_path_agrees_with_parse).
    if type(text) is str and _CANONICAL.match(text) is not None and text[:4] >= "1970" \
            and _day_number(text[:10]) is not None:
        return True
    try:
        HLC.parse(text)  # type: ignore[arg-type]
    except HLCError:
        return False
    return True


def system_ms() -> int:
    """The machine's physical clock in Unix milliseconds."""
    return time.time_ns() // 1_000_000


class Clock:
    """The HLC of one node. Not thread-safe: callers that share one hold a lock.

    `physical` returns Unix milliseconds; `offset_ms` is added to it, which is
    how a tablet corrects a clock the server found skewed without touching the
    device's own clock.
    """

    def __init__(
        self,
        node: str,
        physical: Callable[[], int] = system_ms,
        *,
        max_drift_ms: int | None = None,
        offset_ms: int = 0,
        last: HLC | None = None,
    ):
        if not _NODE.match(node):
            raise HLCError(f"node {node!r} is not 16 lowercase hex digits")
        self.node = node
        self.physical = physical
        self.max_drift_ms = max_drift_ms
        self.offset_ms = offset_ms
        self._wall = last.wall_ms if last else 0
        self._counter = last.counter if last else 0

    @property
    def last(self) -> HLC:
        """The latest timestamp this clock issued or absorbed."""
        return HLC(self._wall, self._counter, self.node)

    def physical_ms(self) -> int:
        """The corrected physical clock."""
        return self.physical() + self.offset_ms

    def now(self) -> HLC:
        """A timestamp for a local write: after everything seen, never behind physical time."""
        pt = self.physical_ms()
        if pt > self._wall:
            self._wall, self._counter = pt, 0
        else:
            self._tick()
        return self.last

    def update(self, remote: HLC | str) -> HLC:
        """Absorb a timestamp received from elsewhere and return one after both."""
        if isinstance(remote, str):
            remote = HLC.parse(remote)
        pt = self.physical_ms()
        self.check_drift(remote, pt)
        if pt > self._wall and pt > remote.wall_ms:
            self._wall, self._counter = pt, 0
        elif remote.wall_ms > self._wall:
            self._wall, self._counter = remote.wall_ms, remote.counter
            self._tick()
        elif remote.wall_ms == self._wall:
            self._counter = max(self._counter, remote.counter)
            self._tick()
        else:
            self._tick()
        return self.last

    def check_drift(self, remote: HLC | str, physical_ms: int | None = None) -> None:
        """Raise ClockDriftError when remote is further ahead than max_drift_ms."""
        if self.max_drift_ms is None:
            return
        if isinstance(remote, str):
            remote = HLC.parse(remote)
        pt = self.physical_ms() if physical_ms is None else physical_ms
        if remote.wall_ms - pt > self.max_drift_ms:
            raise ClockDriftError(remote, pt, self.max_drift_ms)

    def rewind(self, last: HLC | None, offset_ms: int | None = None) -> None:
        """Set the clock back to ``last`` (and a new offset): the one sanctioned step backwards.

        Only for a node whose clock was found far ahead: it rewinds to the
        greatest timestamp others have seen from it, corrects its offset, and
        re-stamps the writes nobody has seen yet (mobile/store.py). Any other
        use breaks monotonicity.
        """
        self._wall, self._counter = (last.wall_ms, last.counter) if last else (0, 0)
        if offset_ms is not None:
            self.offset_ms = offset_ms

    def _tick(self) -> None:
        if self._counter < MAX_COUNTER:
            self._counter += 1
        else:
            self._wall, self._counter = self._wall + 1, 0

"""The server's hybrid logical clock, shared by the threads of one process.

The clock's state is process memory, but nothing depends on it surviving a
restart: a new process starts from the physical clock, which is already
past every timestamp it stamped before (the drift check keeps pushed
timestamps near it too).
"""

from __future__ import annotations

import threading

from flask import current_app

from shared.hlc import HLC, Clock, format_ms


class ServerClock:
    """A thread-safe HLC with the server's drift limit."""

    def __init__(self, node: str, max_drift_ms: int, physical=None):
        kwargs = {"physical": physical} if physical else {}
        self._clock = Clock(node, max_drift_ms=max_drift_ms, **kwargs)
        self._lock = threading.Lock()

    def now(self) -> HLC:
        """A timestamp for a write made on the server (a page's case action)."""
        with self._lock:
            return self._clock.now()

    def update(self, remote: HLC) -> HLC:
        """Absorb a pushed timestamp; raises ClockDriftError when it is too far ahead."""
        with self._lock:
            return self._clock.update(remote)

    def check_drift(self, remote: HLC) -> None:
        """Raise ClockDriftError when remote is too far ahead, without moving the clock."""
        with self._lock:
            self._clock.check_drift(remote)

    def physical_ms(self) -> int:
        """The server's physical time in Unix ms."""
        return self._clock.physical_ms()

    def physical_iso(self) -> str:
        """The server's physical time, ISO 8601 UTC."""
        return format_ms(self.physical_ms())


def server_clock() -> ServerClock:
    """The current app's clock."""
    return current_app.extensions["gridpatrol.clock"]

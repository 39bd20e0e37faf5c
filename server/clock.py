"""The server's hybrid logical clock, shared by the threads of one process.

The clock's state is process memory, but nothing depends on it surviving a
restart: a new process starts from the physical clock, which is already
past every timestamp it stamped before (the drift check keeps pushed
timestamps near it too).
"""

from __future__ import annotations

import os
import secrets
import threading

from flask import current_app

from shared.hlc import HLC, Clock, format_ms


class ServerClock:
    """A thread-safe HLC with the server's drift limit.

    Hazard: forked workers. Two processes with one node id could stamp equal
    HLCs. With no node configured, each process makes its own on first use
    after a fork (gunicorn --preload builds the app before forking).
    """

    def __init__(self, node: str | None, max_drift_ms: int, physical=None):
        self._fixed_node = node
        self._max_drift_ms = max_drift_ms
        self._physical = physical
        self._lock = threading.Lock()
        self._pid = -1
        self._clock: Clock

    def _current(self) -> Clock:
        """The clock of this process (called with the lock held)."""
        if self._pid != os.getpid():
            kwargs = {"physical": self._physical} if self._physical else {}
            self._clock = Clock(self._fixed_node or secrets.token_hex(8), max_drift_ms=self._max_drift_ms,
                                **kwargs)
            self._pid = os.getpid()
        return self._clock

    @property
    def node(self) -> str:
        """This process's node id."""
        with self._lock:
            return self._current().node

    def now(self) -> HLC:
        """A timestamp for a write made on the server (a page's case action)."""
        with self._lock:
            return self._current().now()

    def update(self, remote: HLC) -> HLC:
        """Absorb a pushed timestamp; raises ClockDriftError when it is too far ahead."""
        with self._lock:
            return self._current().update(remote)

    def check_drift(self, remote: HLC) -> None:
        """Raise ClockDriftError when remote is too far ahead, without moving the clock."""
        with self._lock:
            self._current().check_drift(remote)

    def physical_ms(self) -> int:
        """The server's physical time in Unix ms."""
        with self._lock:
            return self._current().physical_ms()

    def physical_iso(self) -> str:
        """The server's physical time, ISO 8601 UTC."""
        return format_ms(self.physical_ms())


def server_clock() -> ServerClock:
    """The current app's clock."""
    return current_app.extensions["gridpatrol.clock"]

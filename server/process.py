"""How a server process runs once its app is loaded (gunicorn.conf.py calls this in each worker).

Hazard: the garbage collector. The app, its modules and their objects (about 100,000) live as long
as the process, and a push of 500 changes allocates some 15,000 more that live until its answer.
With Python's defaults a full collection, walking everything, came about every other push, and
young collections about ten times a push: together a seventh of a push's CPU (bench/sync_bench.py).
Frozen, the loaded objects are never walked again; with a larger first threshold, a request's own
objects are mostly freed before a collection would look at them. Cyclic garbage waits a little
longer to be collected, which costs a few hundred kilobytes at most.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000  # Python's default is 700


def settle() -> None:
    """Freeze what is alive now out of the collector's walks, and let young collections come less often."""
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


def unsettle() -> None:
    """Undo settle(): for a process that goes on to other work (the benchmark between its rounds)."""
    gc.unfreeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(700, middle, old)

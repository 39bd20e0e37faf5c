"""gunicorn's settings for GridPatrol.

gunicorn reads this file from the directory it starts in (the repository root: ``make run``, the
drills); the command line still names the app (``'server:create_app()'``) and the bind address.
"""

import gc


def post_worker_init(worker):
    """Once the worker has loaded the app: move what it loaded out of the garbage collector's sight.

    The app, its modules and their objects (about 100,000) live as long as the worker. Left tracked,
    every full collection walks them all again; a push of 500 changes allocates enough to set one
    off about every other request, which was a tenth of the push's CPU (bench/sync_bench.py).
    Frozen, only what requests allocate is walked.
    """
    gc.freeze()

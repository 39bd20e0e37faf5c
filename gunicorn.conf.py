"""gunicorn's settings for GridPatrol.

gunicorn reads this file from the directory it starts in (the repository root: ``make run``, the
drills); the command line still names the app (``'server:create_app()'``) and the bind address.
"""


def post_worker_init(worker):
    """Once the worker has loaded the app: the garbage collector settings of a server process."""
    from server import process

    process.settle()


# Keep an idle connection open longer than a tablet stays idle between two requests. A tablet pushes
# and pulls every couple of seconds over one keep-alive connection; with gunicorn's default of 2 s,
# the server closed the connection just as the tablet sent its next request on it, and that request
# failed with a connection reset (issue 19). 75 s is also above nginx's default upstream keep-alive
# (60 s), so behind a proxy it is the proxy that closes first, never the app in the proxy's face.
# Only the gthread and async workers keep connections alive (the sync worker closes after each
# request); an idle kept-alive connection waits in the worker's poller and holds no thread.
keepalive = 75

# Two processes of eight threads, for a machine of two cores (issue 19; docs/operations.md, "Sizing").
# A process runs Python on one core at a time (the GIL), so two keep both cores busy; the threads are
# for the waits on PostgreSQL (a commit's WAL flush, a query), during which another thread of the
# process runs. More processes only took turns on the same cores: with five workers of four threads
# the load bench served fewer pushes at a higher p99 than with two of eight (docs/benchmarks.md). On
# a machine of N cores, N workers; give each enough threads to cover its requests' waits on the
# database (eight here), and the pool enough connections for them (server/__init__.py). More than one
# thread makes gunicorn's worker the threaded one (gthread); the command line overrides both.
workers = 2
threads = 8

"""gunicorn's settings for GridPatrol.

gunicorn reads this file from the directory it starts in (the repository root: ``make run``, the
drills); the command line still names the app (``'server:create_app()'``) and the bind address.
"""


def post_worker_init(worker):
    """Once the worker has loaded the app: the garbage collector settings of a server process."""
    from server import process

    process.settle()

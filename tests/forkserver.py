"""Start gunicorn serving ``server.create_app()`` in a fraction of a second, as often as a test asks.

    python -m tests.forkserver 127.0.0.1:PORT WORKERS THREADS

Importing the server costs a second or two of CPU, and the crash drill
restarts it after every SIGKILL (``fast_restart`` in tests/servers.py). So
this process imports everything once, then, for each line it reads on stdin,
forks a child that becomes its own process group (the test kills the whole
group) and runs gunicorn there: the master builds the app with `create_app()`
(a fresh app, node and engine in each server) and forks its workers, as
``gunicorn --preload 'server:create_app()'`` does. It answers each line with
the child's pid. It never serves anything itself, and it ends at EOF.
"""

from __future__ import annotations

import os
import signal
import sys

from gunicorn.app.base import BaseApplication

import gunicorn.arbiter
import gunicorn.workers.gthread
import server

# The expensive imports, done once, before any fork (gunicorn would import its worker class later).
PRELOADED = (server, gunicorn.arbiter, gunicorn.workers.gthread)


class Server(BaseApplication):
    """gunicorn with the app built in the master, before it forks its workers."""

    def __init__(self, options: dict):
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        return server.create_app()


def main() -> None:
    bind, workers, threads = sys.argv[1:4]
    options = {"bind": bind, "workers": int(workers), "threads": int(threads), "timeout": 60,
               "graceful_timeout": 2, "preload_app": True}
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the servers that die
    for _line in sys.stdin:
        pid = os.fork()
        if pid == 0:
            try:
                os.setsid()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                null = os.open(os.devnull, os.O_RDONLY)
                os.dup2(null, 0)
                os.dup2(2, 1)  # the pid pipe is the fork server's, not the server's
                Server(options).run()
            finally:
                os._exit(1)
        sys.stdout.write(f"{pid}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()

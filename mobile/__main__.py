"""Start the field app: ``python -m mobile [--data DIR] [--server URL]``.

On a desktop the window is 1280×800, the size of the 10-inch tablets the app
is made for. On Android (buildozer.spec) the data folder is the app's private
storage.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

DEFAULT_SERVER = "http://127.0.0.1:5000"


def _default_data_dir() -> str:
    private = os.environ.get("ANDROID_PRIVATE")  # python-for-android's app-private folder
    if private:
        return str(Path(private) / "gridpatrol")
    return str(Path("var") / "tablet")


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, prepare Kivy's window, run the app."""
    parser = argparse.ArgumentParser(prog="python -m mobile", description="GridPatrol field app (网格巡查)")
    parser.add_argument("--data", default=_default_data_dir(),
                        help="the tablet's data folder: its SQLite store and photos (default: var/tablet)")
    parser.add_argument("--server", default=None,
                        help=f"the server's URL, prefilled at log-in (default: {DEFAULT_SERVER})")
    parser.add_argument("--photos", default=None, help="where the desktop file chooser opens")
    args = parser.parse_args(argv)

    from mobile.ui.window import prepare

    prepare()  # before the window exists, so before mobile.ui.app
    from mobile.ui.app import GridPatrolApp

    GridPatrolApp(args.data, server_url=args.server or DEFAULT_SERVER, photo_dir=args.photos).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())

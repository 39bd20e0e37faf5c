"""Kivy's settings that must be made before its window exists (``python -m mobile`` calls `prepare`)."""

from __future__ import annotations

import os


def prepare() -> None:
    """Keep Kivy off our command line; on a desktop, a 1280x800 window with a plain mouse."""
    # Kivy reads its own command line unless told not to; ours is argparse's.
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    from kivy.config import Config

    if "ANDROID_ARGUMENT" not in os.environ:
        Config.set("graphics", "width", "1280")
        Config.set("graphics", "height", "800")
        Config.set("input", "mouse", "mouse,disable_multitouch")

"""The CJK font: Kivy's bundled Roboto has no Chinese glyphs and draws boxes.

`register_cjk_font` finds Noto Sans CJK (Debian's ``fonts-noto-cjk``, or the
font the APK build puts beside the app, see docs/field-app.md "Font") and
registers it under Kivy's default font name, so every Label, Button and
TextInput draws Chinese without naming a font. No font file is kept in the
repository (OFL fonts are large, and the system or the build brings one).

When none is found the app logs it loudly and keeps Roboto: English still
reads, Chinese shows boxes, and the log says why.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

__all__ = ["find_cjk_font", "register_cjk_font", "CANDIDATES", "ENV_VAR"]

log = logging.getLogger("kivy")  # Kivy's logger: its console and log file show it

ENV_VAR = "GRIDPATROL_CJK_FONT"  # a font file to use instead of searching
_HERE = Path(__file__).resolve().parent
# In search order: beside the app (the APK ships one there), then the usual system places.
CANDIDATES = (
    _HERE / "fonts" / "NotoSansSC-Regular.otf",
    _HERE / "fonts" / "NotoSansCJK-Regular.ttc",
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf"),
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/system/fonts/NotoSansCJK-Regular.ttc"),  # Android's own
    Path("/System/Library/Fonts/PingFang.ttc"),
)


def _fc_match() -> Path | None:
    """Ask fontconfig for a font with Chinese glyphs, if fontconfig is there."""
    if not shutil.which("fc-match"):
        return None
    try:
        out = subprocess.run(["fc-match", "-f", "%{file}", ":lang=zh-cn"], capture_output=True, text=True,
                             timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    # fontconfig answers *something* even without a CJK font (DejaVu): accept only known CJK families.
    if out and any(mark in out for mark in ("CJK", "SC", "wqy", "Hei", "Song", "Ming", "PingFang")):
        return Path(out)
    return None


def find_cjk_font() -> Path | None:
    """The regular CJK font file to use, or None."""
    chosen = os.environ.get(ENV_VAR)
    if chosen:
        if Path(chosen).is_file():
            return Path(chosen)
        log.error("fonts: %s=%s is not a file; searching instead", ENV_VAR, chosen)
    for path in CANDIDATES:
        if path.is_file():
            return path
    return _fc_match()


def _bold_of(regular: Path) -> Path | None:
    bold = regular.with_name(regular.name.replace("Regular", "Bold"))
    return bold if bold != regular and bold.is_file() else None


def register_cjk_font() -> Path | None:
    """Make the CJK font Kivy's default font; returns its path, or None (logged) when there is none."""
    from kivy.core.text import DEFAULT_FONT, LabelBase

    regular = find_cjk_font()
    if regular is None:
        log.error("fonts: NO CJK FONT FOUND - Chinese text will be drawn as boxes. Install Debian's "
                  "fonts-noto-cjk (scripts/install-system-deps.sh) or set %s to a .ttc/.otf/.ttf file. "
                  "Falling back to Kivy's Roboto.", ENV_VAR)
        return None
    bold = _bold_of(regular)
    LabelBase.register(DEFAULT_FONT, str(regular), None, str(bold) if bold else None, None)
    log.info("fonts: CJK font %s (bold: %s) registered as the default %r", regular, bold, DEFAULT_FONT)
    return regular

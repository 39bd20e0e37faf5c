"""Assemble the APK's source tree for buildozer: ``python -m mobile.ui.android_build [--font FILE]``.

python-for-android starts ``main.py`` at the root of buildozer's ``source.dir``.
The repository has no such file (the desktop entry point is ``python -m
mobile``), and the APK must not carry the server, the tests or a font kept in
git. So this step writes ``build/android/`` (git-ignored):

* ``main.py``: three lines that call ``mobile.__main__.main``;
* ``shared/`` and ``mobile/`` copied from the repository (Python files only);
* the CJK font, ``mobile/ui/fonts/NotoSansSC-Regular.otf``: Noto Sans SC
  (SIL Open Font License 1.1), downloaded from the Noto CJK project at build
  time, or copied from ``--font FILE`` for an offline build (Debian's
  ``/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc`` works too), with
  its licence beside it. `mobile.ui.fonts` finds it there first.

buildozer.spec points ``source.dir`` at ``build/android``. No Kivy is imported here.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TARGET = REPO / "build" / "android"
FONT_URL = "https://github.com/notofonts/noto-cjk/raw/main/Sans/SubsetOTF/SC/NotoSansSC-Regular.otf"
LICENSE_URL = "https://raw.githubusercontent.com/notofonts/noto-cjk/main/Sans/LICENSE"
FONT_NAME = "NotoSansSC-Regular.otf"

MAIN = '''"""The APK's entry point (written by mobile/ui/android_build.py): the field app."""

from mobile.__main__ import main

main([])
'''


def _copy_package(name: str) -> None:
    source, target = REPO / name, TARGET / name
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "fonts"))


def _fetch(url: str, path: Path) -> None:
    with urllib.request.urlopen(url, timeout=120) as answer, open(path, "wb") as out:  # noqa: S310 - fixed URL
        shutil.copyfileobj(answer, out)


def build(font: Path | None = None) -> Path:
    """Write build/android/ and answer its path."""
    if TARGET.exists():
        shutil.rmtree(TARGET)
    TARGET.mkdir(parents=True)
    (TARGET / "main.py").write_text(MAIN, encoding="utf-8")
    for package in ("shared", "mobile"):
        _copy_package(package)
    fonts = TARGET / "mobile" / "ui" / "fonts"
    fonts.mkdir(parents=True, exist_ok=True)
    if font is not None:
        shutil.copy(font, fonts / (FONT_NAME if font.suffix == ".otf" else font.name))
    else:
        _fetch(FONT_URL, fonts / FONT_NAME)
        _fetch(LICENSE_URL, fonts / "LICENSE-OFL.txt")
    return TARGET


def main(argv: list[str] | None = None) -> int:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m mobile.ui.android_build", description=__doc__.splitlines()[0])
    parser.add_argument("--font", type=Path, help="a local CJK font (.otf/.ttc) instead of downloading Noto Sans SC")
    args = parser.parse_args(argv)
    if args.font is not None and not args.font.is_file():
        parser.error(f"{args.font} is not a file")
    target = build(args.font)
    print(f"APK source tree ready in {target}; now run: buildozer android debug")
    return 0


if __name__ == "__main__":
    sys.exit(main())

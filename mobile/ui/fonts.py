"""The CJK font: Kivy's bundled Roboto has no Chinese glyphs and draws boxes.

`register_cjk_font` finds Noto Sans CJK (Debian's ``fonts-noto-cjk``, or the
font the APK build puts beside the app, see docs/field-app.md "Font") and
registers it under Kivy's default font name, so every Label, Button and
TextInput draws Chinese without naming a font. No font file is kept in the
repository (OFL fonts are large, and the system or the build brings one).

When none is found the app logs it loudly and keeps Roboto: English still
reads, Chinese shows boxes, and the log says why.

The face is the Simplified Chinese one on every platform. A font collection
(``.ttc``: Debian's and Android's NotoSansCJK-Regular.ttc hold the Japanese,
Korean, Simplified and Traditional Chinese faces, Japanese first) is read for
its faces' names, and the face named SC is chosen: Japanese glyphs differ in
the small things a Chinese reader notices (a full-width colon "：" is centred,
some characters take other shapes). Kivy's SDL2 text provider opens only a
collection's first face, so a face that is not the first is copied once into
a font file of its own (`face_file`, in the user's cache folder): the tables
of one face, byte for byte, as a plain OpenType file.
"""

from __future__ import annotations

import logging
import os
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

__all__ = ["find_cjk_font", "register_cjk_font", "CANDIDATES", "ENV_VAR", "face_names", "simplified_face",
           "face_file"]

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
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
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


# --- the faces of a font collection (.ttc) -----------------------------------------------------------

def _face_offsets(data: bytes) -> list[int]:
    """Where each face's table directory starts: one face at 0 for a plain font file."""
    if data[:4] != b"ttcf":
        return [0]
    (count,) = struct.unpack_from(">I", data, 8)
    return list(struct.unpack_from(f">{count}I", data, 12))


def _tables(data: bytes, offset: int) -> dict[bytes, tuple[int, int, int]]:
    """A face's tables: tag -> (checksum, offset, length)."""
    (count,) = struct.unpack_from(">H", data, offset + 4)
    tables = {}
    for i in range(count):
        tag, checksum, start, length = struct.unpack_from(">4sIII", data, offset + 12 + 16 * i)
        tables[tag] = (checksum, start, length)
    return tables


def _family(data: bytes, offset: int) -> str:
    """A face's family name from its name table (typographic family first, Windows Unicode English first)."""
    entry = _tables(data, offset).get(b"name")
    if entry is None:
        return ""
    _, start, _ = entry
    _, count, strings = struct.unpack_from(">HHH", data, start)
    found: dict[int, str] = {}
    for i in range(count):
        platform, encoding, language, name_id, length, at = struct.unpack_from(">6H", data, start + 6 + 12 * i)
        if name_id not in (1, 16) or name_id in found:
            continue
        raw = data[start + strings + at:start + strings + at + length]
        if platform == 3 and language == 0x409:
            found[name_id] = raw.decode("utf-16-be", "replace")
        elif platform == 1 and language == 0:
            found[name_id] = raw.decode("mac_roman", "replace")
    return found.get(16) or found.get(1, "")


def face_names(path: Path) -> list[str]:
    """The family name of each face of a font file (one for a plain .otf/.ttf)."""
    data = Path(path).read_bytes()
    return [_family(data, offset) for offset in _face_offsets(data)]


_SIMPLIFIED_MARKS = (" SC", "Simplified", " GB", "Micro Hei", "Zen Hei", "WenQuanYi")


def simplified_face(names: list[str]) -> int:
    """The index of the Simplified Chinese face among a collection's family names (0 when none says it)."""
    for index, name in enumerate(names):
        if any(name.endswith(mark) or f"{mark} " in name for mark in _SIMPLIFIED_MARKS):
            return index
    return 0


def _cache_folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gridpatrol" / "fonts"


def face_file(path: Path, index: int, folder: Path | None = None) -> Path:
    """Face ``index`` of a collection as a plain font file (made once, then reused); the file itself for face 0.

    The copy holds that face's tables unchanged, each at a new offset, so its glyphs are the collection's own.
    It goes to the user's cache folder, else the temp folder (a read-only home, as on some devices).
    """
    path = Path(path)
    if index == 0:
        return path
    stat = path.stat()
    name = f"{path.stem}-face{index}-{stat.st_size}-{int(stat.st_mtime)}.otf"
    folders = [folder] if folder is not None else [_cache_folder(), Path(tempfile.gettempdir()) / "gridpatrol-fonts"]
    for place in folders:
        target = place / name
        if target.is_file():
            return target
        try:
            place.mkdir(parents=True, exist_ok=True)
            _write_face(path.read_bytes(), index, target)
            return target
        except OSError as exc:
            log.warning("fonts: cannot write %s (%s)", target, exc)
    raise OSError(f"no folder to write face {index} of {path} to")


def _write_face(data: bytes, index: int, target: Path) -> None:
    offset = _face_offsets(data)[index]
    version = data[offset:offset + 4]
    tables = sorted(_tables(data, offset).items())
    count = len(tables)
    power = 1 << (count.bit_length() - 1)
    header = version + struct.pack(">HHHH", count, power * 16, power.bit_length() - 1, count * 16 - power * 16)
    directory, body = [], []
    at = len(header) + 16 * count
    for tag, (checksum, start, length) in tables:
        directory.append(struct.pack(">4sIII", tag, checksum, at, length))
        chunk = data[start:start + length]
        chunk += b"\0" * (-len(chunk) % 4)
        body.append(chunk)
        at += len(chunk)
    building = target.with_name(f".{target.name}.{os.getpid()}")
    building.write_bytes(header + b"".join(directory) + b"".join(body))
    os.replace(building, target)  # atomic: two apps starting at once both end with a whole file


def _simplified(path: Path) -> Path:
    """The Simplified Chinese face of ``path`` as a file Kivy can open (its first face when that fails)."""
    try:
        names = face_names(path)
        index = simplified_face(names)
        if index:
            chosen = face_file(path, index)
            log.info("fonts: face %d (%s) of %s, as %s", index, names[index], path, chosen)
            return chosen
    except (OSError, struct.error, IndexError) as exc:
        log.warning("fonts: cannot choose the Simplified Chinese face of %s (%s); its first face is used",
                    path, exc)
    return path


def find_cjk_font() -> Path | None:
    """The regular CJK font file to use (its Simplified Chinese face, as a file of its own if need be), or None."""
    found = _search()
    return None if found is None else _simplified(found)


def _search() -> Path | None:
    chosen = os.environ.get(ENV_VAR)
    if chosen:
        if Path(chosen).is_file():
            return Path(chosen)
        log.error("fonts: %s=%s is not a file; searching instead", ENV_VAR, chosen)
    for path in CANDIDATES:
        if path.is_file():
            return path
    return _fc_match()


def _bold_of(source: Path) -> Path | None:
    """The bold face beside the regular file found (the Simplified Chinese face of its Bold collection)."""
    bold = source.with_name(source.name.replace("Regular", "Bold"))
    if bold == source or not bold.is_file():
        return None
    return _simplified(bold)


def register_cjk_font() -> Path | None:
    """Make the CJK font Kivy's default font; returns its path, or None (logged) when there is none."""
    from kivy.core.text import DEFAULT_FONT, LabelBase

    source = _search()
    if source is None:
        log.error("fonts: NO CJK FONT FOUND - Chinese text will be drawn as boxes. Install Debian's "
                  "fonts-noto-cjk (scripts/install-system-deps.sh) or set %s to a .ttc/.otf/.ttf file. "
                  "Falling back to Kivy's Roboto.", ENV_VAR)
        return None
    regular, bold = _simplified(source), _bold_of(source)
    LabelBase.register(DEFAULT_FONT, str(regular), None, str(bold) if bold else None, None)
    log.info("fonts: CJK font %s (bold: %s) registered as the default %r", regular, bold, DEFAULT_FONT)
    return regular

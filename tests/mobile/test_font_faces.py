"""mobile/ui/fonts.py chooses a collection's Simplified Chinese face (no Kivy needed to choose it)."""

from __future__ import annotations

import struct

from mobile.ui import fonts


def _name_table(family: str) -> bytes:
    raw = family.encode("utf-16-be")
    return struct.pack(">HHH", 0, 1, 6 + 12) + struct.pack(">6H", 3, 1, 0x409, 1, len(raw), 0) + raw


def _collection(families: list[str]) -> bytes:
    """A font collection whose faces hold one table each: a name table naming the family."""
    header_size = 12 + 4 * len(families)
    directories, tables = [], []
    at = header_size + (12 + 16) * len(families)
    for family in families:
        table = _name_table(family)
        directories.append(b"OTTO" + struct.pack(">HHHH", 1, 16, 0, 0) + struct.pack(">4sIII", b"name", 0, at,
                                                                                     len(table)))
        tables.append(table + b"\0" * (-len(table) % 4))
        at += len(tables[-1])
    offsets = [header_size + (12 + 16) * i for i in range(len(families))]
    header = b"ttcf" + struct.pack(">HHI", 2, 0, len(families)) + struct.pack(f">{len(families)}I", *offsets)
    return header + b"".join(directories) + b"".join(tables)


def test_the_simplified_chinese_face_is_chosen_wherever_it_is():
    assert fonts.simplified_face(["Noto Sans CJK JP", "Noto Sans CJK KR", "Noto Sans CJK SC"]) == 2
    assert fonts.simplified_face(["WenQuanYi Micro Hei", "WenQuanYi Micro Hei Mono"]) == 0
    assert fonts.simplified_face(["PingFang HK", "PingFang SC", "PingFang TC"]) == 1
    assert fonts.simplified_face(["Some Font"]) == 0  # none says it: the first


def test_a_face_of_a_collection_becomes_a_file_of_its_own(tmp_path):
    source = tmp_path / "Collection-Regular.ttc"
    source.write_bytes(_collection(["Noto Sans CJK JP", "Noto Sans CJK KR", "Noto Sans CJK SC"]))
    assert fonts.face_names(source) == ["Noto Sans CJK JP", "Noto Sans CJK KR", "Noto Sans CJK SC"]
    copy = fonts.face_file(source, 2, tmp_path / "cache")
    assert copy.read_bytes()[:4] == b"OTTO" and fonts.face_names(copy) == ["Noto Sans CJK SC"]
    assert fonts.face_file(source, 0, tmp_path / "cache") == source

"""Sizes as people read them, the same on the tablet and the pages."""

from __future__ import annotations

__all__ = ["size_text"]


def size_text(size: int) -> str:
    """A number of bytes as people read it: 850 B, 12 KB, 1.5 MB, 15 MB (1 KB = 1024 B)."""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KB", "MB", "GB"):
        value /= 1024
        if value < 1024 or unit == "GB":
            break
    text = f"{value:.1f}" if value < 10 else f"{value:.0f}"
    return f"{text.removesuffix('.0')} {unit}"

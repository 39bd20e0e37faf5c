"""What a screenshot must show: something (not a blank window), and Chinese in glyphs, not boxes."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageStat


def assert_not_blank(path: Path, min_stddev: float = 12.0) -> None:
    """The picture has contrast: a blank or single-colour window has a pixel standard deviation near 0."""
    with Image.open(path) as image:
        gray = image.convert("L")
        stddev = ImageStat.Stat(gray).stddev[0]
        colours = len(gray.resize((320, 200)).getcolors(256) or [])
    assert stddev >= min_stddev, f"{path.name} looks blank (stddev {stddev:.1f})"
    assert colours >= 16, f"{path.name} has only {colours} grey levels"


def roboto_path() -> str:
    """Kivy's bundled Roboto: it has no CJK glyphs."""
    from kivy import kivy_data_dir

    return str(Path(kivy_data_dir) / "fonts" / "Roboto-Regular.ttf")


def render(text: str, font_name: str | None = None, font_size: float = 32) -> tuple[tuple[int, int], bytes]:
    """The text rendered by Kivy's text provider: (size, RGBA bytes)."""
    from kivy.core.text import DEFAULT_FONT
    from kivy.core.text import Label as CoreLabel

    label = CoreLabel(text=text, font_size=font_size, font_name=font_name or DEFAULT_FONT)
    label.refresh()
    texture = label.texture
    return tuple(texture.size), bytes(texture.pixels)


def assert_chinese_drawn(label) -> None:
    """A label showing Chinese is drawn in glyphs: it differs from the same text in Roboto (boxes)."""
    label.texture_update()
    ours = (tuple(label.texture.size), bytes(label.texture.pixels))
    boxes = render(label.text, roboto_path(), label.font_size)
    assert ours != boxes, f"{label.text!r} is drawn like Roboto draws it: boxes"

"""What a photo must be, and its thumbnail: Pillow, kept to the formats a camera makes.

An upload is a photo only when it decodes, whole, as a JPEG, PNG or WebP image of a sane number
of pixels (`check_image`): a truncated, damaged or forged file fails, and so does a decompression
bomb. Pillow can open many more formats, some through external programs, and none of them is a
photo of a case.
"""

from __future__ import annotations

import io
import warnings
from typing import BinaryIO

from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_FORMATS = ("JPEG", "PNG", "WEBP")
MAX_PIXELS = 64_000_000  # about 9000 x 7000: far above any phone camera, far below a decompression bomb
THUMB_EDGE = 320
THUMB_QUALITY = 75


class NotAnImage(ValueError):
    """An upload that does not decode as a JPEG, PNG or WebP image."""


class TooManyPixels(ValueError):
    """An image larger in pixels than the server decodes."""


def check_image(handle: BinaryIO) -> str:
    """Decode the image (a truncated, damaged or forged one fails); returns its format."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "corrupt EXIF" and the like: the pixels decide
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(handle, formats=IMAGE_FORMATS) as image:
                if image.width * image.height > MAX_PIXELS:
                    raise TooManyPixels(f"the image has {image.width} x {image.height} pixels; "
                                        f"at most {MAX_PIXELS} are accepted")
                # A JPEG decoded at 1/8 scale still reads every entropy-coded byte, so a damaged or
                # truncated one fails all the same, at a third of the cost of a full decode.
                image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
                image.load()
                return image.format
    except TooManyPixels:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise TooManyPixels(str(exc)) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        # Pillow reports bad input through all of these, depending on the format and the damage.
        raise NotAnImage(f"the upload is not a {', '.join(IMAGE_FORMATS)} image: {exc}") from None


def make_thumbnail(handle: BinaryIO) -> bytes:
    """A JPEG of the image, upright (EXIF), its longest edge THUMB_EDGE."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Image.open(handle, formats=IMAGE_FORMATS) as image:
            image.draft("RGB", (THUMB_EDGE, THUMB_EDGE))  # JPEG: decode at 1/2..1/8 scale, much faster
            small = ImageOps.exif_transpose(image)
            small.thumbnail((THUMB_EDGE, THUMB_EDGE))
            if small.mode not in ("RGB", "L"):
                small = small.convert("RGB")
            out = io.BytesIO()
            small.save(out, "JPEG", quality=THUMB_QUALITY)
    return out.getvalue()

"""Safe image decoding: a format allowlist, a pixel limit enforced as an error, EXIF orientation.

``probe`` reads only the header (cheap: the API calls it on every upload to refuse bad input
at once); ``decode`` does the full decode (in the worker). Both raise ``ApiError`` with one of
``unsupported_media_type``, ``image_decode_failed``, ``image_too_large``, ``image_too_small``.

Given the size the crop policy works at (``work``), ``decode`` lets a JPEG decode at a reduced
scale in the DCT domain (1/2, 1/4 or 1/8, never below that size): a large photo is scored at about
half its resolution, and decoding it at full size only to shrink it costs most of its decode time.
The reported ``ImageInfo`` keeps the image's own size.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image, UnidentifiedImageError, features

from ..images import draft, oriented_size, to_rgb
from .errors import ApiError

# No process-wide Pillow setting is changed here: the pixel limit is checked on the header (_check), and a
# truncated file stays an error because Pillow's LOAD_TRUNCATED_IMAGES defaults to False. Pillow's own
# bomb guard (a warning above Image.MAX_IMAGE_PIXELS, an error above twice that) stays as a backstop.

# What browsers show and Pillow decodes safely. MPO is how Pillow names many camera JPEGs.
ALLOWED_FORMATS = ["JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP", "TIFF"]
if features.check("avif"):
    ALLOWED_FORMATS.append("AVIF")
Image.init()  # register every plugin, then keep the allowlisted ones that this Pillow has
ALLOWED_FORMATS = [f for f in ALLOWED_FORMATS if f in Image.OPEN]
FORMAT_NAMES = {"MPO": "JPEG"}  # reported format


@dataclass(frozen=True)
class ImageInfo:
    format: str   # JPEG, PNG, WEBP, GIF, BMP, TIFF, AVIF
    width: int    # after EXIF orientation
    height: int

    def to_dict(self) -> dict:
        return {"format": self.format, "width": self.width, "height": self.height}


def _open(data: bytes, max_pixels: int) -> Image.Image:
    if not data:
        raise ApiError("image_decode_failed", "the image is empty (zero bytes)")
    try:
        return Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ApiError("image_too_large", f"the image has more than {max_pixels} pixels") from exc
    except UnidentifiedImageError as exc:
        if sniff(data):   # an allowed format's signature, but Pillow could not parse the file
            raise ApiError("image_decode_failed", f"the {sniff(data)} file is corrupt") from exc
        raise ApiError("unsupported_media_type",
                       "not an image in a supported format (" + ", ".join(_public_formats()) + ")") from exc
    except Exception as exc:  # a header so broken that the plugin itself fails
        raise ApiError("image_decode_failed", f"the image header could not be read ({type(exc).__name__})") from exc


def sniff(data: bytes) -> str | None:
    """The allowed format whose signature starts `data`, if any."""
    head = data[:32]
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:2] == b"BM":
        return "BMP"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis"):
        return "AVIF"
    return None


def _public_formats() -> list[str]:
    return [f for f in ALLOWED_FORMATS if f != "MPO"]


def _check(image: Image.Image, max_pixels: int, min_side: int) -> ImageInfo:
    width, height = oriented_size(image)
    if width * height > max_pixels:
        raise ApiError("image_too_large", f"the image is {width}x{height}; at most {max_pixels} pixels are allowed")
    if min(width, height) < max(1, min_side):
        raise ApiError("image_too_small", f"the image is {width}x{height}; the short side must be at least {min_side} px")
    return ImageInfo(FORMAT_NAMES.get(image.format, image.format), width, height)


def probe(data: bytes, *, max_pixels: int, min_side: int = 1) -> ImageInfo:
    """Format, size and limits from the header alone (no pixel decoding)."""
    with _open(data, max_pixels) as image:
        return _check(image, max_pixels, min_side)


def decode(data: bytes, *, max_pixels: int, min_side: int = 1,
           work: Callable[[int, int], tuple[int, int]] | None = None) -> tuple[np.ndarray, ImageInfo]:
    """Decode to HxWx3 uint8 RGB (first frame; EXIF orientation; palette/CMYK/16-bit/alpha converted).

    ``work(height, width)`` (e.g. ``CropPolicy.working_size``) gives the smallest size the caller needs for
    an image of that (oriented) size; a JPEG is then decoded at the largest DCT reduction that is not smaller
    (the array may be smaller than ``info`` says; the policy plans with ``native=(info.height, info.width)``).
    """
    with _open(data, max_pixels) as image:
        info = _check(image, max_pixels, min_side)
        try:
            image.seek(0)
            if work is not None:
                draft(image, work)
            image.load()
            rgb = to_rgb(image)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ApiError("image_too_large", f"the image has more than {max_pixels} pixels") from exc
        except MemoryError as exc:
            raise ApiError("image_too_large", "the image is too large to decode") from exc
        except Exception as exc:  # truncated, corrupt, unsupported variant of an allowed format
            raise ApiError("image_decode_failed", f"the image could not be decoded ({_reason(exc)})") from exc
    if work is None and (rgb.shape[0] != info.height or rgb.shape[1] != info.width):
        info = ImageInfo(info.format, int(rgb.shape[1]), int(rgb.shape[0]))
    return rgb, info


def _reason(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:120]

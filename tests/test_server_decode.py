import io

import numpy as np
import pytest
import server_support  # noqa: F401  (sets the test key prefix first)
from PIL import Image, features

from gamma_detect.server.decode import ALLOWED_FORMATS, decode, probe
from gamma_detect.server.errors import ApiError
from stub_detector import image_bytes

LIMIT = 50_000_000


def encode(image: Image.Image, fmt: str, **kw) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kw)
    return buffer.getvalue()


def code_of(data: bytes, **kw) -> str:
    with pytest.raises(ApiError) as info:
        decode(data, max_pixels=kw.pop("max_pixels", LIMIT), **kw)
    return info.value.code


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF"])
def test_allowed_formats_decode_to_rgb(fmt):
    data = image_bytes(120, 90, fmt)
    rgb, info = decode(data, max_pixels=LIMIT)
    assert rgb.shape == (90, 120, 3) and rgb.dtype == np.uint8
    assert info.format == fmt and (info.width, info.height) == (120, 90)
    assert probe(data, max_pixels=LIMIT) == info


@pytest.mark.skipif(not features.check("avif"), reason="this Pillow has no AVIF support")
def test_avif_when_supported():
    rgb, info = decode(image_bytes(100, 80, "AVIF"), max_pixels=LIMIT)
    assert info.format == "AVIF" and rgb.shape == (80, 100, 3)


def test_gif_first_frame_only():
    frames = [Image.new("RGB", (80, 70), color) for color in ((255, 0, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    rgb, info = decode(data, max_pixels=LIMIT)
    assert rgb[0, 0, 0] > 200 and rgb[0, 0, 2] < 50


def test_exif_orientation_applied():
    image = Image.new("RGB", (120, 80), (10, 20, 30))
    exif = Image.Exif()
    exif[0x0112] = 6   # rotate 90
    data = encode(image, "JPEG", exif=exif)
    info = probe(data, max_pixels=LIMIT)
    rgb, decoded = decode(data, max_pixels=LIMIT)
    assert (info.width, info.height) == (80, 120) == (decoded.width, decoded.height)
    assert rgb.shape == (120, 80, 3)


@pytest.mark.parametrize("mode,fmt", [("P", "PNG"), ("CMYK", "JPEG"), ("I;16", "PNG"), ("RGBA", "PNG"),
                                      ("LA", "PNG"), ("L", "PNG"), ("1", "BMP")])
def test_modes_converted(mode, fmt):
    image = Image.new(mode, (70, 70))
    if mode == "P":
        image.putpalette([i % 256 for i in range(768)])
        image.info["transparency"] = 0
    if mode == "I;16":
        image = Image.fromarray(np.full((70, 70), 40000, np.uint16))
    rgb, _ = decode(encode(image, fmt), max_pixels=LIMIT)
    assert rgb.shape == (70, 70, 3) and rgb.dtype == np.uint8


def test_alpha_composited_on_white():
    rgb, _ = decode(encode(Image.new("RGBA", (70, 70), (0, 0, 0, 0)), "PNG"), max_pixels=LIMIT)
    assert rgb.min() == 255


def test_zero_byte():
    assert code_of(b"") == "image_decode_failed"


def test_non_image():
    assert code_of(b"%PDF-1.4 hello, not an image" * 10) == "unsupported_media_type"
    assert code_of(b"<html><body>hi</body></html>") == "unsupported_media_type"


def test_format_outside_allowlist():
    data = encode(Image.new("RGB", (80, 80)), "ICO")
    assert "ICO" not in ALLOWED_FORMATS
    assert code_of(data) == "unsupported_media_type"


def test_truncated():
    data = image_bytes(300, 300, "JPEG", quality=95)
    assert code_of(data[: len(data) // 2]) == "image_decode_failed"
    png = image_bytes(300, 300, "PNG")
    assert code_of(png[: len(png) // 2]) == "image_decode_failed"


def test_corrupt():
    png = bytearray(image_bytes(300, 300, "PNG"))
    at = png.index(b"IHDR")
    png[at + 17] ^= 0xFF            # header checksum broken
    assert code_of(bytes(png)) == "image_decode_failed"
    jpeg = bytearray(image_bytes(300, 300, "JPEG"))
    at = jpeg.index(b"\xff\xc4")   # Huffman table garbage
    jpeg[at + 4:at + 40] = b"\xff" * 36
    assert code_of(bytes(jpeg)) == "image_decode_failed"


def test_tiny():
    data = image_bytes(40, 200, "PNG")
    assert code_of(data, min_side=64) == "image_too_small"
    with pytest.raises(ApiError) as info:
        probe(data, max_pixels=LIMIT, min_side=64)
    assert info.value.code == "image_too_small"


def test_decompression_bomb_is_an_error():
    bomb = encode(Image.new("1", (12000, 12000)), "PNG")   # 144 Mpx in a few kB
    assert len(bomb) < 100_000
    assert code_of(bomb) == "image_too_large"
    with pytest.raises(ApiError) as info:
        probe(bomb, max_pixels=LIMIT)
    assert info.value.code == "image_too_large"


def test_pixel_limit_between_limit_and_twice_is_an_error_too():
    # Pillow alone only *warns* between MAX_IMAGE_PIXELS and twice that.
    data = image_bytes(300, 300, "PNG")
    assert code_of(data, max_pixels=60_000) == "image_too_large"


def _photo(width: int, height: int) -> Image.Image:
    """Smooth content with some texture (a JPEG of noise would not show what DCT scaling keeps)."""
    yy, xx = np.mgrid[0:height, 0:width]
    rgb = np.stack([128 + 100 * np.sin(xx / 37.0), 128 + 100 * np.cos(yy / 23.0), (xx + yy) % 256], -1)
    return Image.fromarray(rgb.astype(np.uint8))


def test_jpeg_decodes_reduced_to_the_working_size_but_reports_its_own():
    data = encode(_photo(2400, 1600), "JPEG", quality=90)
    rgb, info = decode(data, max_pixels=LIMIT, work=lambda h, w: (h // 2, w // 2))
    assert (info.width, info.height) == (2400, 1600)    # the image's own size, as the API reports it
    assert rgb.shape == (800, 1200, 3)                   # the 1/2 DCT scale: exactly what was asked for
    full, _ = decode(data, max_pixels=LIMIT)
    shrunk = np.asarray(Image.fromarray(full).resize((1200, 800), Image.BOX), np.int16)
    assert np.abs(rgb.astype(np.int16) - shrunk).mean() < 3   # the same picture, at the reduced size


def test_reduction_never_goes_below_the_working_size():
    data = encode(_photo(2400, 1600), "JPEG")
    rgb, _ = decode(data, max_pixels=LIMIT, work=lambda h, w: (700, 1050))
    assert rgb.shape == (800, 1200, 3)   # 1/4 would be 400x600, smaller than needed: 1/2 it is
    rgb, _ = decode(data, max_pixels=LIMIT, work=lambda h, w: (h, w))
    assert rgb.shape == (1600, 2400, 3)


def test_reduction_asks_in_stored_orientation():
    exif = Image.Exif()
    exif[0x0112] = 6   # stored 2400x1200, shown 1200x2400
    data = encode(_photo(2400, 1200), "JPEG", exif=exif)
    rgb, info = decode(data, max_pixels=LIMIT, work=lambda h, w: (h // 2, w // 2))
    assert (info.width, info.height) == (1200, 2400)
    assert rgb.shape == (1200, 600, 3)


def test_formats_without_dct_scaling_decode_whole():
    data = encode(_photo(900, 600), "PNG")
    rgb, info = decode(data, max_pixels=LIMIT, work=lambda h, w: (h // 4, w // 4))
    assert rgb.shape == (600, 900, 3) and (info.width, info.height) == (900, 600)

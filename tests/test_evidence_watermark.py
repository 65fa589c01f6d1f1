"""The torch-free DWT-DCT watermark decoder against invisible-watermark's own encoder and decoder."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from evidence_support import encode, textured

from gamma_detect.images import load_rgb
from gamma_detect.runtime.evidence import EvidenceConfig, combine, read_evidence
from gamma_detect.runtime.evidence import watermark

# The reference implementation; tests/run.sh installs it with --no-deps (it declares a bare torch).
imwatermark = pytest.importorskip("imwatermark.maxDct", reason="pip install --no-deps invisible-watermark==0.2.0")
STARTER = Path(__file__).resolve().parents[1] / "work" / "starter"
SDXL = next(m for m in watermark.MESSAGES if m.name == "Stable Diffusion XL")


def embed(rgb: np.ndarray, bits: tuple[int, ...]) -> np.ndarray:
    """What the reference pipelines do: EmbedMaxDct (method dwtDct, default scales) on the BGR image."""
    bgr = imwatermark.EmbedMaxDct(list(bits), wmLen=len(bits)).encode(np.ascontiguousarray(rgb[:, :, ::-1]))
    return np.ascontiguousarray(bgr[:, :, ::-1])


def found(data: bytes) -> list:
    return [e for e in read_evidence(data, EvidenceConfig()) if e.source == "watermark"]


@pytest.mark.parametrize("seed", [0, 1])
def test_decoder_matches_the_reference_decoder_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    bits = tuple(int(b) for b in rng.integers(0, 2, 48))
    marked = embed(textured(320, 400, seed=seed), bits)
    for image in (marked, textured(320, 400, seed=seed + 10)):   # marked and unmarked alike
        reference = imwatermark.EmbedMaxDct([], wmLen=48).decode(np.ascontiguousarray(image[:, :, ::-1]))
        assert np.array_equal(watermark.decode(watermark.block_bits(image), 48), reference.astype(np.uint8))


@pytest.mark.parametrize("message", watermark.MESSAGES, ids=lambda m: m.name)
def test_each_reference_message_survives_a_png_round_trip(message):
    (item,) = found(encode(embed(textured(), message.bits), "PNG"))
    assert (item.status, item.strength, item.reason) == ("ok", "strong", "ai_generated")
    assert item.details["message"] == message.name
    assert item.details["bit_errors"] <= watermark.MAX_BIT_ERROR_RATE * len(message.bits)
    assert combine("likely_real", [item]).verdict_reason == "watermark:ai_generated"


@pytest.mark.parametrize("quality", [95, 70])
def test_jpeg_reencoding_erases_the_sdxl_mark(quality):
    # Documented in the README: the mark is in exact coefficient values; JPEG q95 already erases it here.
    assert found(encode(embed(textured(), SDXL.bits), "JPEG", quality=quality)) == []


def test_unmarked_image_and_small_image_are_not_flagged():
    assert found(encode(textured(), "PNG")) == []
    assert found(encode(embed(textured(256, 256), SDXL.bits)[:200, :200], "PNG")) == []   # under 256x256: not read


def starter_photos() -> list[Path]:
    index = STARTER / "index.csv"
    if not index.exists():
        return []
    with index.open() as f:
        return [STARTER / row["path"] for row in csv.DictReader(f) if row["label"] == "real"]


@pytest.mark.slow
@pytest.mark.skipif(not starter_photos(), reason="the starter set is not built (gamma data starter)")
def test_no_starter_photo_is_flagged():
    flagged = [path.name for path in starter_photos() if path.exists() and watermark.read(load_rgb(path))]
    assert flagged == []


@pytest.mark.parametrize("shape", [(256, 256), (301, 517), (1080, 1920)])
def test_block_votes_equal_the_full_dwt2_the_reference_decoder_runs(shape):
    """block_bits computes only the approximation band; the votes must be those of pywt.dwt2 (and BGR->YUV) bit
    for bit, as the reference decoder computes them."""
    import cv2
    import pywt

    from gamma_detect.runtime.evidence.watermark import BLOCK, SCALE, block_bits

    rgb = np.random.default_rng(sum(shape)).integers(0, 256, (*shape, 3), dtype=np.uint8)
    rows, cols = shape[0] // 4 * 4, shape[1] // 4 * 4
    yuv = cv2.cvtColor(np.ascontiguousarray(rgb[:, :, ::-1]), cv2.COLOR_BGR2YUV)
    approximation, _ = pywt.dwt2(yuv[:rows, :cols, 1], "haar")
    h, w = approximation.shape[0] // BLOCK, approximation.shape[1] // BLOCK
    blocks = approximation[:h * BLOCK, :w * BLOCK].reshape(h, BLOCK, w, BLOCK).transpose(0, 2, 1, 3)
    coefficients = np.abs(blocks.reshape(h * w, BLOCK * BLOCK)[:, 1:])
    expected = (coefficients[np.arange(h * w), coefficients.argmax(axis=1)] % SCALE > 0.5 * SCALE).astype(np.float64)
    np.testing.assert_array_equal(block_bits(rgb), expected)

"""The key-free DWT-DCT invisible watermark of the Stable Diffusion, SDXL and FLUX reference pipelines.

A torch-free re-implementation (PyWavelets + OpenCV) of the decoder of `invisible-watermark`
0.2.0 (`imwatermark.maxDct.EmbedMaxDct.decode`, method "dwtDct", default scales [0, 36, 36],
4x4 blocks), whose package imports torch at import time. It is tested against that package's
encoder. The image is read as BGR, converted to YUV; the U channel's Haar DWT approximation is
cut into 4x4 blocks; each block's largest-magnitude non-DC coefficient gives one bit
((|c| mod 36) > 18), bit k being read from every block whose index is k modulo the message
length, and the per-bit averages thresholded at 127/255.

Messages decoded (as their pipelines embed them; `bin(m)[2:]` drops FLUX's two leading zeros):
- "StableDiffusionV1" (136 bits): CompVis stable-diffusion scripts/txt2img.py
- "SDV2" (32 bits): Stability-AI stablediffusion scripts/txt2img.py
- 0b101100111110110010010000011110111011000110011110 (48 bits): SDXL (generative-models, diffusers)
- 0b001010101111111010000111100111001111010100101110 (46 bits): FLUX.1 (black-forest-labs/flux)

A message counts as found when at most MAX_BIT_ERROR_RATE of its bits differ. On the 298
starter photos of at least 256x256 px the closest any came to any message was 25 % of the bits
(SD 2.x's 32 bits; 30 % or more for the others), and bench/evidence.py asserts that none is
flagged. The mark lives in exact coefficient values: a PNG round trip keeps it; JPEG re-encoding
erases it already at quality 95 (23-56 % of the bits wrong on 1080p starter photos, past the
threshold on the tests' image too), and so do resizing and cropping off the 8 px grid
(tests/test_evidence_watermark.py; numbers in the README).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pywt

from .items import Evidence

SCALE, BLOCK = 36, 4
MIN_PIXELS = 256 * 256          # the reference decoder refuses smaller images
MAX_BIT_ERROR_RATE = 0.1


def _bits_of_bytes(text: bytes) -> tuple[int, ...]:
    return tuple(int(b) for b in np.unpackbits(np.frombuffer(text, dtype=np.uint8)))


def _bits_of_int(message: int) -> tuple[int, ...]:
    return tuple(int(b) for b in bin(message)[2:])


@dataclass(frozen=True)
class Message:
    name: str        # what embeds it
    bits: tuple[int, ...]


MESSAGES = (
    Message("Stable Diffusion 1.x", _bits_of_bytes(b"StableDiffusionV1")),
    Message("Stable Diffusion 2.x", _bits_of_bytes(b"SDV2")),
    Message("Stable Diffusion XL", _bits_of_int(0b101100111110110010010000011110111011000110011110)),
    Message("FLUX.1", _bits_of_int(0b001010101111111010000111100111001111010100101110)),
)


def block_bits(rgb: np.ndarray) -> np.ndarray:
    """One 0/1 vote per 4x4 block of the U channel's DWT approximation, in the decoder's row-major block order."""
    rows, cols = rgb.shape[0] // 4 * 4, rgb.shape[1] // 4 * 4
    u = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2YUV)[:rows, :cols, 1]
    # The approximation alone, one axis at a time as pywt.dwt2 runs them (the same arithmetic, so the same
    # values bit for bit), without the three detail bands it would also compute: the check's time fell by a third.
    approximation = pywt.dwt(pywt.dwt(u, "haar", axis=0)[0], "haar", axis=1)[0]
    h, w = approximation.shape[0] // BLOCK, approximation.shape[1] // BLOCK
    blocks = approximation[:h * BLOCK, :w * BLOCK].reshape(h, BLOCK, w, BLOCK).transpose(0, 2, 1, 3)
    strongest = np.abs(blocks.reshape(h * w, BLOCK * BLOCK)[:, 1:]).max(axis=1)
    return (strongest % SCALE > 0.5 * SCALE).astype(np.float64)


def decode(votes: np.ndarray, length: int) -> np.ndarray:
    """The bits of a message of `length` bits: bit k is the mean vote of every block k modulo `length`."""
    slots = np.arange(votes.size) % length
    means = np.bincount(slots, weights=votes, minlength=length) / np.maximum(np.bincount(slots, minlength=length), 1)
    return (means * 255 > 127).astype(np.uint8)


def read(rgb: np.ndarray) -> list[Evidence]:
    """The watermark item for one decoded HxWx3 uint8 RGB image (none when no message is found)."""
    if rgb.shape[0] * rgb.shape[1] < MIN_PIXELS:
        return []
    votes = block_bits(rgb)
    for message in MESSAGES:
        errors = int(np.count_nonzero(decode(votes, len(message.bits)) != np.array(message.bits)))
        if errors <= MAX_BIT_ERROR_RATE * len(message.bits):
            return [Evidence(source="watermark", status="ok", strength="strong", reason="ai_generated",
                             summary=f"Invisible watermark: {message.name} reference pipeline",
                             details={"message": message.name, "method": "dwtDct", "bits": len(message.bits),
                                      "bit_errors": errors})]
    return []

"""Limits and settings of the evidence reader: every cap is checked before any parser or native call sees the bytes."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# A PEM bundle of C2PA trust anchors (see the README's "Provenance evidence"): only a claim whose
# signer chains to one of them is `proof`. Unset by default: then no claim is proof.
TRUST_ANCHORS_ENV = "GAMMA_C2PA_TRUST_ANCHORS"


@dataclass(frozen=True)
class EvidenceConfig:
    max_bytes: int = 64 << 20              # a larger file gets one `file_too_large` item, nothing is parsed
    max_text_chunks: int = 64              # PNG tEXt/zTXt/iTXt chunks (generators write 1 to 5)
    max_text_chunk_bytes: int = 4 << 20    # one PNG text chunk (large ComfyUI workflows reach ~1 MB)
    max_xmp_bytes: int = 1 << 20           # one XMP packet (a JPEG segment holds at most 64 KiB)
    c2pa_timeout_s: float = 5.0            # wall clock of the C2PA child process
    c2pa_memory_bytes: int = 1 << 30       # address-space limit of the C2PA child process
    watermark_max_pixels: int = 40_000_000  # larger images skip the watermark check (an `error` item)
    trust_anchors: Path | None = None      # PEM bundle; None: no C2PA claim is `proof`

    @classmethod
    def from_env(cls) -> "EvidenceConfig":
        path = os.environ.get(TRUST_ANCHORS_ENV)
        if path and not Path(path).is_file():
            raise FileNotFoundError(f"{TRUST_ANCHORS_ENV}={path} is not a file: point it at a PEM bundle "
                                    "of C2PA trust anchors, or unset it")
        return cls(trust_anchors=Path(path) if path else None)

"""Cheap, bounded looks at the raw bytes before any parser runs: the file type, and the PNG text-chunk caps.

Pillow would read every PNG text chunk it meets (up to its own 64 MB budget); walking the
chunk headers first lets a file with thousands of chunks or one huge chunk fail as one
clear evidence error instead.
"""

from __future__ import annotations

import struct

from .config import EvidenceConfig
from .items import EvidenceError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")


def mime_type(data: bytes) -> str | None:
    """The MIME type from the file's signature, for the formats the C2PA reader and Pillow share."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(PNG_SIGNATURE):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp" and data[8:12] in (b"avif", b"avis"):
        return "image/avif"
    if data[4:8] == b"ftyp" and data[8:12] in (b"heic", b"heix", b"mif1"):
        return "image/heic"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return None


def check_png_text(data: bytes, config: EvidenceConfig) -> None:
    """Raise EvidenceError unless every PNG chunk fits in the file and the text chunks are within the caps."""
    offset, text_chunks = len(PNG_SIGNATURE), 0
    while offset + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        if length > 0x7FFFFFFF or offset + 12 + length > len(data):
            raise EvidenceError("png_malformed", f"the PNG chunk {kind!r} at byte {offset} runs past the end of the file")
        if kind in TEXT_CHUNKS:
            text_chunks += 1
            if text_chunks > config.max_text_chunks:
                raise EvidenceError("png_too_many_chunks",
                                    f"the PNG has more than {config.max_text_chunks} text chunks")
            if length > config.max_text_chunk_bytes:
                raise EvidenceError("png_chunk_too_large", f"a PNG text chunk holds {length} bytes, over the "
                                    f"{config.max_text_chunk_bytes}-byte limit")
        if kind == b"IEND":
            return
        offset += 12 + length

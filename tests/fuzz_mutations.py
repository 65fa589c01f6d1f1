"""Structure-aware mutations of image files, for the fuzz targets (tests/fuzz_support.py).

``mutate(data, rnd)`` parses the file into its container's units (PNG chunks, JPEG segments, RIFF chunks of a
WebP, GIF blocks), applies one to three edits a hostile file would carry (a unit deleted, duplicated or moved, a
lying length field, a wrong CRC, huge or many PNG text chunks, an EXIF block with lying offsets, nested or huge
XMP, a huge canvas) and writes the file back; byte-level edits (flips, cuts, splices) mix in. ``rnd`` is a
``random.Random``: hypothesis passes its own (shrinkable, derandomized), atheris's custom mutator a seeded one.
Large payloads are patterns or come from a seeded local generator, so that hypothesis draws only sizes and seeds.

The crawl reader's inputs have their own: ``mutate_html`` edits a page at its tag and attribute level (hostile
URLs and srcsets in every reference form), ``mutate_warc`` a WARC file at its record level (lengths that lie,
header fields, HTTP payloads chunked or gzipped wrongly, gzip members cut short, garbage between records).
"""

from __future__ import annotations

import functools
import gzip
import random
import re
import struct
import zlib
from typing import Callable

from gamma_detect.runtime.evidence.container import PNG_SIGNATURE, mime_type

HUGE_LENGTHS = (0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFF, 0x10000)
XMP_NS = b'xmlns:x="adobe:ns:meta/" xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
IPTC_NS = b'xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"'


@functools.lru_cache(maxsize=None)
def zeros_deflated(size: int) -> bytes:
    """`size` zero bytes, deflated: a few KB that inflate to megabytes (a decompression bomb)."""
    return zlib.compress(b"\x00" * size, 9)


def _filler(rnd: random.Random, size: int) -> bytes:
    """`size` bytes: a pattern or seeded noise (the seed is the only thing drawn from `rnd`)."""
    kind = rnd.randrange(3)
    if kind == 0:
        return b"\x00" * size
    if kind == 1:
        return (b"A" * 7 + b"\xff") * (size // 8) + b"A" * (size % 8)
    return random.Random(rnd.getrandbits(32)).randbytes(size)


def _size(rnd: random.Random) -> int:
    """A payload size from tiny to past every cap (4 MiB text chunk, 1 MiB XMP, 64 KiB JPEG segment)."""
    return rnd.choice((0, 1, 17, 255, 4096, 65_533, 70_000, 1 << 20, (1 << 20) + 1, (4 << 20) + 1))


# --------------------------------------------------------------------------- payloads that hostile files carry
def xmp_packet(rnd: random.Random) -> bytes:
    """An XMP packet: well formed, deeply nested, huge, entity-laden, in UTF-16, or cut short."""
    value = rnd.choice((b"http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia",
                        b"digitalCapture", b"", b"\xff\xfe", b"&amp;x"))
    body = b'<rdf:Description Iptc4xmpExt:DigitalSourceType="' + value + b'" ' + IPTC_NS + b' xmp:CreatorTool="T" ' \
        b'xmlns:xmp="http://ns.adobe.com/xap/1.0/"/>'
    kind = rnd.randrange(7)
    if kind == 1:     # nested: deep structure under an Iptc4xmpExt element
        depth = rnd.choice((10, 1000, 50_000))
        body = b"<Iptc4xmpExt:DigitalSourceType " + IPTC_NS + b">" + b"<a>" * depth + value + b"</a>" * depth + \
            b"</Iptc4xmpExt:DigitalSourceType>"
    elif kind == 2:   # huge: many attributes or one long value
        count = rnd.choice((100, 10_000, 60_000))
        body = b"<rdf:Description " + IPTC_NS + b" " + b" ".join(b"Iptc4xmpExt:F%d=\"v\"" % i for i in range(count)) + \
            b"/>"
    elif kind == 3:   # entity expansion, the classic way and in UTF-16 (which a byte search for DOCTYPE misses)
        bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">' + b"".join(
            b'<!ENTITY %c "&%c;&%c;&%c;&%c;&%c;&%c;&%c;&%c;&%c;&%c;">' % ((98 + i,) + (97 + i,) * 10)
            for i in range(8)) + b"]><x:xmpmeta " + XMP_NS + b">&i;</x:xmpmeta>"
        if rnd.random() < 0.5:
            bomb = bomb[:bomb.index(b"]>")] + b']><x:xmpmeta ' + XMP_NS + b">&a;</x:xmpmeta>"   # one small entity
        return b"\xfe\xff" + bomb.decode().encode("utf-16-be") if rnd.random() < 0.5 else bomb
    elif kind == 4:
        return _filler(rnd, _size(rnd))
    packet = b'<?xpacket begin="\xef\xbb\xbf"?><x:xmpmeta ' + XMP_NS + b"><rdf:RDF>" + body + \
        b"</rdf:RDF></x:xmpmeta><?xpacket end=\"w\"?>"
    if kind == 5:
        return packet[:rnd.randrange(len(packet) + 1)]
    return packet


def tiff_block(rnd: random.Random) -> bytes:
    """A TIFF/EXIF block whose offsets lie: past the end, into itself (a loop), counts that overflow."""
    order = rnd.choice(("<", ">"))
    header = (b"II*\x00" if order == "<" else b"MM\x00*") + struct.pack(order + "I", 8)
    entries = []
    for _ in range(rnd.randrange(1, 6)):
        tag = rnd.choice((0x010F, 0x0110, 0x0131, 0x0112, 0x8769, 0x8825, 0x9286, 0xA005, rnd.randrange(65536)))
        kind = rnd.choice((1, 2, 3, 4, 5, 7, 10, 12, 13, rnd.randrange(256)))
        count = rnd.choice((0, 1, 4, 200, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF))
        value = rnd.choice((8, 0, 0xFFFFFFF0, 26, rnd.getrandbits(32)))    # 8: the IFD itself
        entries.append(struct.pack(order + "HHII", tag, kind, count, value))
    next_ifd = rnd.choice((0, 8, 0xFFFFFFFF))
    ifd = struct.pack(order + "H", rnd.choice((len(entries), 0xFFFF))) + b"".join(entries) + \
        struct.pack(order + "I", next_ifd)
    return header + ifd + _filler(rnd, rnd.choice((0, 16, 300)))


def _text_chunk(rnd: random.Random) -> tuple[bytes, bytes]:
    keyword = rnd.choice((b"parameters", b"prompt", b"workflow", b"Comment", b"XML:com.adobe.xmp", b"", b"k" * 90))
    text = xmp_packet(rnd) if keyword.startswith(b"XML") else _filler(rnd, _size(rnd))
    kind = rnd.choice((b"tEXt", b"zTXt", b"iTXt"))
    if kind == b"tEXt":
        return kind, keyword + b"\x00" + text
    if kind == b"zTXt":   # a small chunk that inflates past Pillow's text budget, or a broken stream
        inflated = zeros_deflated(rnd.choice((1 << 20, 64 << 20))) if rnd.random() < 0.3 else zlib.compress(text)
        return kind, keyword + b"\x00" + rnd.choice((b"\x00", b"\x07")) + inflated[:rnd.choice((None, 10))]
    compressed = rnd.random() < 0.5
    payload = zlib.compress(text) if compressed else text
    return kind, keyword + b"\x00" + bytes([compressed, rnd.choice((0, 5))]) + b"en\x00\x00" + payload


# --------------------------------------------------------------------------- PNG


def _png_split(data: bytes) -> tuple[list[list], bytes]:
    chunks, offset = [], len(PNG_SIGNATURE)
    while offset + 12 <= len(data):
        (length,) = struct.unpack(">I", data[offset:offset + 4])
        if offset + 12 + length > len(data):
            break
        kind, body = data[offset + 4:offset + 8], data[offset + 8:offset + 8 + length]
        chunks.append([kind, body, None, None])    # type, data, forced length, forced CRC
        offset += 12 + length
    return chunks, data[offset:]


def _png_join(chunks: list[list], tail: bytes) -> bytes:
    out = [PNG_SIGNATURE]
    for kind, body, length, crc in chunks:
        out.append(struct.pack(">I", len(body) if length is None else length) + kind + body)
        out.append(struct.pack(">I", zlib.crc32(kind + body) if crc is None else crc))
    return b"".join(out) + tail


def _png_edit(chunks: list[list], rnd: random.Random) -> None:
    i = rnd.randrange(len(chunks))
    op = rnd.randrange(9)
    if op == 0:
        chunks.insert(rnd.randrange(len(chunks) + 1), list(_text_chunk(rnd)) + [None, None])
    elif op == 1:   # many text chunks (the reader caps them at 64)
        chunks[1:1] = [[b"tEXt", b"k%d\x00v" % n, None, None] for n in range(rnd.choice((65, 2000)))]
    elif op == 2:
        chunks[i][3] = rnd.getrandbits(32)                      # wrong CRC
    elif op == 3:
        chunks[i][2] = rnd.choice(HUGE_LENGTHS + (len(chunks[i][1]) + rnd.randrange(1, 9),))   # lying length
    elif op == 4:   # IHDR dimensions, depth, colour type
        if chunks[0][0] == b"IHDR" and len(chunks[0][1]) == 13:
            width, height = (rnd.choice((0, 1, 65535, 1 << 24, 0x7FFFFFFF, rnd.getrandbits(32))) for _ in range(2))
            chunks[0][1] = struct.pack(">II", width, height) + bytes([rnd.choice((1, 2, 4, 8, 16, 3)),
                                                                     rnd.choice((0, 2, 3, 4, 6, 7))]) + chunks[0][1][10:]
    elif op == 5:
        chunks.insert(rnd.randrange(len(chunks) + 1), [rnd.choice((b"eXIf", b"iCCP", b"acTL", b"fcTL", b"tRNS",
                                                                   b"PLTE", b"IDAT", b"pHYs", b"caBX")),
                                                       rnd.choice((tiff_block(rnd), b"p\x00\x00" + zeros_deflated(8 << 20), _filler(rnd, rnd.choice((0, 8, 26))),
                                                           b"c2pa" + _filler(rnd, 40))), None, None])
    else:
        _unit_edit(chunks, i, op - 6, rnd)


# --------------------------------------------------------------------------- JPEG
def _jpeg_split(data: bytes) -> tuple[list[list], bytes]:
    """Segments up to and including SOS (each [marker, payload, forced length]); the entropy data and EOI after."""
    segments, offset = [], 2
    while offset + 4 <= len(data) and data[offset] == 0xFF:
        marker = data[offset + 1]
        (length,) = struct.unpack(">H", data[offset + 2:offset + 4])
        if length < 2 or offset + 2 + length > len(data):
            break
        segments.append([marker, data[offset + 4:offset + 2 + length], None])
        offset += 2 + length
        if marker == 0xDA:
            break
    return segments, data[offset:]


def _jpeg_join(segments: list[list], tail: bytes) -> bytes:
    out = [b"\xff\xd8"]
    for marker, body, length in segments:
        out.append(bytes([0xFF, marker]) + struct.pack(">H", (len(body) + 2 if length is None else length) & 0xFFFF)
                   + body)
    return b"".join(out) + tail


def _jpeg_edit(segments: list[list], rnd: random.Random) -> None:
    i = rnd.randrange(len(segments))
    op = rnd.randrange(8)
    where = rnd.randrange(len(segments))   # before SOS keeps the scan last
    if op == 0:   # APP1 EXIF with lying offsets
        segments.insert(where, [0xE1, b"Exif\x00\x00" + tiff_block(rnd), None])
    elif op == 1:   # APP1 XMP (a segment holds at most 65533 bytes: a bigger packet is cut, its length wraps)
        packet = b"http://ns.adobe.com/xap/1.0/\x00" + xmp_packet(rnd)
        segments.insert(where, [0xE1, packet[:rnd.choice((65533, 70_000))], None])
    elif op == 2:   # APP2 (ICC, MPF with lying offsets), APP13 Photoshop, APP14 Adobe, COM
        marker, head = rnd.choice(((0xE2, b"MPF\x00"), (0xE2, b"ICC_PROFILE\x00\x01\x01"), (0xED, b"Photoshop 3.0\x00"),
                                   (0xEE, b"Adobe"), (0xFE, b"")))
        segments.insert(where, [marker, head + rnd.choice((tiff_block(rnd), _filler(rnd, rnd.choice((0, 12, 600)))))
                                , None])
    elif op == 3:   # SOF dimensions
        for segment in segments:
            if segment[0] in (0xC0, 0xC1, 0xC2) and len(segment[1]) >= 5:
                segment[1] = segment[1][:1] + struct.pack(">HH", *(rnd.choice((0, 1, 65535, rnd.getrandbits(16)))
                                                                    for _ in range(2))) + segment[1][5:]
    elif op == 4:
        segments[i][2] = rnd.choice((0, 1, 2, 0xFFFF, len(segments[i][1]) + rnd.randrange(3, 40)))  # lying length
    else:
        _unit_edit(segments, i, op - 5, rnd)


# --------------------------------------------------------------------------- WebP (RIFF)
def _riff_split(data: bytes) -> tuple[list[list], bytes]:
    chunks, offset = [], 12
    while offset + 8 <= len(data):
        kind, (size,) = data[offset:offset + 4], struct.unpack("<I", data[offset + 4:offset + 8])
        if offset + 8 + size > len(data):
            break
        chunks.append([kind, data[offset + 8:offset + 8 + size], None])
        offset += 8 + size + (size & 1)
    return chunks, data[offset:]


def _riff_join(chunks: list[list], tail: bytes, riff_size: int | None = None) -> bytes:
    body = b"WEBP" + b"".join(kind + struct.pack("<I", len(payload) if size is None else size) + payload
                              + b"\x00" * (len(payload) & 1) for kind, payload, size in chunks) + tail
    return b"RIFF" + struct.pack("<I", len(body) if riff_size is None else riff_size) + body


def _riff_edit(chunks: list[list], rnd: random.Random) -> None:
    i = rnd.randrange(len(chunks))
    op = rnd.randrange(7)
    if op == 0:   # VP8X with a huge canvas and every flag
        flags = rnd.choice((0x3E, 0x02, 0x10, 0x08, 0x04, 0x20))
        canvas = struct.pack("<I", rnd.choice((0, 0xFFFFFF, 16383, rnd.getrandbits(24))))[:3]
        chunks.insert(0, [b"VP8X", bytes([flags, 0, 0, 0]) + canvas + canvas, None])
    elif op == 1:
        kind = rnd.choice((b"EXIF", b"XMP ", b"ICCP", b"ANIM", b"ANMF", b"ALPH"))
        payload = {b"EXIF": tiff_block, b"XMP ": xmp_packet}.get(kind, lambda r: _filler(r, r.choice((0, 6, 16, 300))))
        chunks.insert(rnd.randrange(len(chunks) + 1), [kind, payload(rnd), None])
    elif op == 2:
        chunks[i][2] = rnd.choice(HUGE_LENGTHS + (len(chunks[i][1]) + rnd.randrange(1, 9), 0))   # lying chunk size
    elif op == 3:   # VP8/VP8L frame header dimensions
        for chunk in chunks:
            if chunk[0] == b"VP8L" and len(chunk[1]) >= 5:
                chunk[1] = b"\x2f" + struct.pack("<I", rnd.getrandbits(32)) + chunk[1][5:]
            elif chunk[0] == b"VP8 " and len(chunk[1]) >= 10:
                chunk[1] = chunk[1][:6] + struct.pack("<HH", rnd.getrandbits(16), rnd.getrandbits(16)) + chunk[1][10:]
    else:
        _unit_edit(chunks, i, op - 4, rnd)


# --------------------------------------------------------------------------- GIF
def _gif_split(data: bytes) -> tuple[list[list], bytes]:
    """[header (signature, screen descriptor, global table)] then one unit per extension or image block."""
    flags = data[10] if len(data) > 10 else 0
    offset = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    units = [[b"head", data[:offset]]]
    while offset < len(data) and data[offset] in (0x21, 0x2C):
        start = offset
        if data[offset] == 0x21:
            offset += 2
        else:
            local = data[offset + 9] if offset + 9 < len(data) else 0
            offset += 10 + (3 << ((local & 7) + 1) if local & 0x80 else 0) + 1   # descriptor, table, LZW code size
        while offset < len(data) and data[offset]:   # sub-blocks up to the zero terminator
            offset += 1 + data[offset]
        offset += 1
        if offset > len(data):
            offset = start
            break
        units.append([b"block", data[start:offset]])
    return units, data[offset:]


def _gif_join(units: list[list], tail: bytes) -> bytes:
    return b"".join(unit[1] for unit in units) + tail


def _gif_edit(units: list[list], rnd: random.Random) -> None:
    op = rnd.randrange(6)
    head = units[0][1]
    if op == 0 and len(head) >= 10:   # logical screen size
        units[0][1] = head[:6] + struct.pack("<HH", rnd.choice((0, 65535, rnd.getrandbits(16))),
                                             rnd.choice((0, 65535, rnd.getrandbits(16)))) + head[10:]
        return
    blocks = [i for i, unit in enumerate(units) if unit[0] == b"block"]
    if not blocks:
        units.append([b"block", b"\x21\xfe\x03abc\x00"])
        return
    i = rnd.choice(blocks)
    body = units[i][1]
    if op == 1 and body[0] == 0x2C and len(body) >= 11:   # frame placed past the canvas, huge, or a bogus LZW size
        units[i][1] = body[:1] + struct.pack("<HHHH", *(rnd.choice((0, 1, 65535, rnd.getrandbits(16)))
                                                        for _ in range(4))) + body[9:10] + bytes(
            [rnd.choice((0, 1, 8, 12, 255))]) + body[11:]
    elif op == 2:   # many frames
        units[i + 1:i + 1] = [list(units[i]) for _ in range(rnd.choice((2, 300)))]
    elif op == 3:   # a sub-block length that lies, a comment or NETSCAPE extension
        units.insert(i, [b"block", rnd.choice((b"\x21\xfe\xff" + b"c" * 10 + b"\x00",
                                               b"\x21\xff\x0bNETSCAPE2.0\x03\x01\xff\xff\x00",
                                               b"\x21\xf9\x04\x05\x00\x00\x00\x00"))])
    else:
        _unit_edit(units, i, op - 4, rnd)


# --------------------------------------------------------------------------- shared unit edits and the entry point
def _unit_edit(units: list[list], i: int, op: int, rnd: random.Random) -> None:
    """0: delete, duplicate or move unit i; 1: flip bytes inside its payload (the framing stays valid)."""
    if op == 0:
        choice = rnd.randrange(3)
        if choice == 0 and len(units) > 1:
            del units[i]
        elif choice == 1:
            units.insert(i, list(units[i]))
        else:
            units.insert(rnd.randrange(len(units) + 1), units.pop(i))
    else:
        body = bytearray(units[i][1])   # every format keeps a unit's payload second
        for _ in range(rnd.randrange(1, 9)):
            if body:
                body[rnd.randrange(len(body))] = rnd.getrandbits(8)
        units[i][1] = bytes(body)


def byte_edit(data: bytes, rnd: random.Random, donors: list[bytes] = ()) -> bytes:
    """A format-blind edit: flip, insert, delete, repeat, truncate, or splice in a piece of another file."""
    if not data:
        return _filler(rnd, rnd.choice((1, 8, 64)))
    # Mostly past the signature (a broken one only meets the format sniffers), sometimes anywhere.
    op, at = rnd.randrange(6), rnd.randrange(0 if rnd.random() < 0.1 else min(12, len(data) - 1), len(data))
    if op == 0:
        out = bytearray(data)
        for _ in range(rnd.randrange(1, 17)):
            out[rnd.randrange(len(out))] = rnd.getrandbits(8)
        return bytes(out)
    if op == 1:
        return data[:at] + _filler(rnd, rnd.choice((1, 4, 64, 1024))) + data[at:]
    if op == 2:
        return data[:at] + data[at + rnd.randrange(1, 4096):]
    if op == 3:
        return data[:at] + data[at:at + rnd.randrange(1, 256)] * rnd.choice((2, 100)) + data[at:]
    if op == 4 and donors:
        donor = rnd.choice(donors)
        start = rnd.randrange(len(donor))
        return data[:at] + donor[start:start + rnd.randrange(1, 2048)] + data[at:]
    return data[:at]


Format = tuple[Callable[[bytes], tuple[list[list], bytes]], Callable[[list[list], random.Random], None],
               Callable[..., bytes]]
FORMATS: dict[str | None, Format] = {   # by the MIME type the evidence reader sniffs
    "image/png": (_png_split, _png_edit, _png_join),
    "image/jpeg": (_jpeg_split, _jpeg_edit, _jpeg_join),
    "image/webp": (_riff_split, _riff_edit, _riff_join),
    "image/gif": (_gif_split, _gif_edit, _gif_join),
}


def mutate(data: bytes, rnd: random.Random, donors: list[bytes] = ()) -> bytes:
    """One to three edits of `data`: mostly at its container's level, some at the byte level."""
    for _ in range(rnd.randrange(1, 4)):
        kind = mime_type(data)
        if kind not in FORMATS or rnd.random() < 0.25:
            data = byte_edit(data, rnd, donors)
            continue
        split, edit, join = FORMATS[kind]
        units, tail = split(data)
        if not units:
            data = byte_edit(data, rnd, donors)
            continue
        edit(units, rnd)
        if kind == "image/webp" and rnd.random() < 0.2:   # the RIFF size itself lies
            data = join(units, tail, rnd.choice(HUGE_LENGTHS + (0, 4)))
        else:
            data = join(units, tail)
    return data


# --------------------------------------------------------------------------- HTML pages (tag and attribute level)
HOSTILE_URLS = ("http://[::1", "http://[x/a.png", "https://a b/c.png", "//cdn.test/p.png", "../../../../a.png",
                "javascript:alert(1)", "data:image/png;base64,@@", "data:,", "data:image/png;base64,iVBORw0KGgo=",
                "data:" + "A" * 70_000, "http://site.test:99999/a.png", "http://site.test:-1/", "HTTP://SITE.TEST:80/%7e",
                "http://b\u00fccher.test/\u00e4.png", "http://\u0000x/", "\t\n a.png \r", "%zz%", "http:", "#top",
                "http://site.test/" + "a" * 10_000, "mailto:x@y", "http://[fe80::1%25eth0]/a.png", "\ud800.png",
                "http://site.test/a.png?q=\u00fc#f", "blob:http://site.test/1", "?", "/%2e%2e/a.png")
HOSTILE_SRCSETS = ("a.png 1x, b.png 2x", ",,,,", "a.png (((((", "data:image/png;base64,AA,BB 2x, c.png",
                   ", ".join(f"i{n}.png {n}w" for n in range(2000)), "a.png 1x,", " \t\n", "a.png )))), b.png")
HTML_ATTRIBUTES = ("src", "data-src", "data-lazy-src", "data-original", "srcset", "data-srcset", "style", "content",
                   "href", "property", "name")
HTML_SNIPPETS = (
    '<img src="{u}">', '<img srcset="{s}">', '<img data-srcset="{s}" data-src="{u}">',
    '<picture><source srcset="{s}"><img src="{u}"></picture>', '<noscript><img src="{u}"></noscript>',
    '<noscript><noscript><img src="{u}"></noscript></noscript>', '<noscript>&lt;img src="{u}"&gt;</noscript>',
    '<meta property="og:image" content="{u}">', '<meta name="TWITTER:IMAGE" content="{u}">', '<base href="{u}">',
    '<div style="background: url({u}) , url(\'{u}\'), url(&quot;{u}&quot;)">', '<div style="url(">',
    '<svg><image href="{u}"/><style>div{{background:url({u})}}</style></svg>', '<img src>', '<img src="{u}"',
    '<template><img src="{u}"></template>', '<iframe srcdoc="<img src={u}>"></iframe>', '<math><mi><img src="{u}">',
    '<table><img src="{u}"><tr><td>', '<!-- <img src="{u}"> -->', '<script><img src="{u}"></script>',
    '<plaintext><img src="{u}">', '<select><img src="{u}"></select>', '<img src=&#0;&#x110000;&#xd800;>',
)


def html_snippet(rnd: random.Random) -> bytes:
    """One element a hostile page carries: every reference form, with a hostile URL or srcset."""
    snippet = rnd.choice(HTML_SNIPPETS).format(u=rnd.choice(HOSTILE_URLS).replace('"', "&quot;"),
                                               s=rnd.choice(HOSTILE_SRCSETS))
    return snippet.encode("utf-8", "surrogatepass")


_TAG = re.compile(rb"<[^<>]*>")
# A name starts where no name character precedes it: else each position of a long run (data:AAAA...) is tried
# and backtracked, quadratic (a 70,000-character data: URL took a minute).
_ATTRIBUTE = re.compile(rb"""(?<![\w:-])([\w:-]+)(\s*=\s*)("[^"]*"|'[^']*'|[^\s>]+)""")
HTML_MAX_BYTES = 1 << 20   # repeated edits stay within a large real page (and the fuzzer keeps its pace)
# Deep enough that the scan's depth limit (server/crawl/html.py, 512) refuses it; Lexbor alone took a minute.
MAX_DEPTH = 100_000
HTML_ENCODINGS = ("utf-16", "utf-16-be", "latin-1", "shift_jis", "cp1252")


def mutate_html(data: bytes, rnd: random.Random) -> bytes:
    """One to three edits of a page: an element inserted, a tag deleted, repeated, moved or left open, an
    attribute's name or value replaced, many or deeply nested elements, another encoding, or byte edits."""
    for _ in range(rnd.randrange(1, 4)):
        tags = list(_TAG.finditer(data))
        attributes = list(_ATTRIBUTE.finditer(data))
        op = rnd.randrange(9)
        at = rnd.choice(tags).start() if tags else 0
        if op == 0:
            data = data[:at] + html_snippet(rnd) + data[at:]
        elif op == 1 and tags:
            tag = rnd.choice(tags)
            data = rnd.choice((data[:tag.start()] + data[tag.end():],                       # deleted
                               data[:tag.end()] + tag.group() * rnd.choice((2, 50)) + data[tag.end():],
                               data[:tag.end() - 1] + data[tag.end():],                     # left open
                               data[:tag.start()] + data[tag.end():at] + tag.group() + data[at:]
                               if tag.end() <= at else data))
        elif op in (2, 3) and attributes:
            attribute = rnd.choice(attributes)
            name, equals, value = attribute.groups()
            if op == 2:
                name = rnd.choice(HTML_ATTRIBUTES).encode()
            else:
                text = rnd.choice(HOSTILE_SRCSETS if b"srcset" in name else HOSTILE_URLS)
                value = b'"' + text.replace('"', "&quot;").encode("utf-8", "surrogatepass") + b'"'
            data = data[:attribute.start()] + name + equals + value + data[attribute.end():]
        elif op == 4:   # many elements (256 KiB at most), or elements nested deep
            snippet, count = html_snippet(rnd), rnd.choice((100, 2000, MAX_DEPTH))
            data = data[:at] + rnd.choice((snippet * min(count, (256 << 10) // len(snippet)), b"<div>" * count + snippet,
                                           b"<noscript>" * count)) + data[at:]
        elif op == 5:
            text = data.decode("utf-8", "replace")
            encoding = rnd.choice(HTML_ENCODINGS)
            declared = rnd.choice(("", f'<meta charset="{encoding}">', '<meta charset="x-bogus">'))
            data = (declared + text).encode(encoding, "replace")
        else:
            data = byte_edit(data, rnd)
        data = data[:HTML_MAX_BYTES]
    return data


# --------------------------------------------------------------------------- WARC files (record level)
WARC_URIS = ("http://site.test/p.html", "<http://site.test/p.html>", "HTTP://SITE.TEST:80/p.html#f", "http://[::1",
             "https://site.test", "dns:site.test", "", " ", "http://site.test/a b.html", "http://b\u00fccher.test/",
             "metadata://gnu.org/software/wget/warc/MANIFEST.txt", "<http://site.test/", "http://site.test:0/",
             "http://site.test/" + "x" * 5000, "http://site.test/img/a.png", "http://site.test/r.png")
WARC_TYPES = (b"response", b"revisit", b"request", b"metadata", b"resource", b"warcinfo", b"conversion", b"RESPONSE",
              b"")
WARC_DATES = (b"2026-01-02T03:04:05Z", b"", b"yesterday", b"9999-99-99T99:99:99Z", b"2026-01-02T03:04:05.123456Z",
              b"-4713-11-24T12:00:00Z")
HTTP_STATUS_LINES = (b"HTTP/1.1 200 OK", b"HTTP/1.1 301 Moved", b"HTTP/1.1 302 Found", b"HTTP/1.1 404 Not Found",
                     b"HTTP/1.1 abc", b"HTTP/1.1", b"HTTP/1.0 200", b"ICY 200 OK", b"", b"HTTP/1.1 99999999999999999999 x",
                     b"HTTP/1.1 -200 OK")
HTTP_HEADERS = (b"Transfer-Encoding: chunked", b"Content-Encoding: gzip", b"Content-Encoding: br",
                b"Content-Encoding: deflate", b"Content-Encoding: gzip, gzip", b"Location: http://[::1",
                b"Location: /p.html", b"Location: \x00", b"Content-Type: text/html; charset=x-bogus",
                b"Content-Type: application/xhtml+xml", b"Content-Type:", b"Content-Length: 99999999", b"X: " + b"y" * 70_000,
                b"no colon at all")
WARC_LENGTHS = (b"0", b"1", b"-1", b"abc", b"", b"99999999999", b"18446744073709551617", b" 12 ", b"1e3")


def _warc_record(text: bytes) -> tuple[list | None, bytes]:
    """The first record of uncompressed WARC text as [version, headers, block, length, compress, cut], and the rest;
    None when the text does not start with a well-formed record."""
    head, sep, rest = text.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    if not sep or not lines[0].startswith(b"WARC/"):
        return None, text
    headers = [line.split(b":", 1) for line in lines[1:]]
    if any(len(pair) != 2 for pair in headers):
        return None, text
    lengths = [value.strip() for name, value in headers if name.strip().lower() == b"content-length"]
    if len(lengths) != 1 or not lengths[0].isdigit() or rest[int(lengths[0]):int(lengths[0]) + 4] != b"\r\n\r\n":
        return None, text
    length = int(lengths[0])
    headers = [[name, value.strip()] for name, value in headers if name.strip().lower() != b"content-length"]
    return [lines[0], headers, rest[:length], None, False, None], rest[length + 4:]


def warc_split(data: bytes) -> tuple[list[list], bytes]:
    """A WARC file's records (each gzip member one record, or the records of a plain file) and what follows them."""
    records = []
    while data:
        if data[:2] == b"\x1f\x8b":
            member = zlib.decompressobj(wbits=31)
            try:
                text = member.decompress(data, 64 << 20)
            except zlib.error:
                break
            record, rest = _warc_record(text)
            if record is None or rest or not member.eof:
                break
            record[4] = True
            records.append(record)
            data = member.unused_data
        else:
            record, data = _warc_record(data)
            if record is None:
                break
            records.append(record)
    return records, data


def warc_join(records: list[list], tail: bytes) -> bytes:
    out = []
    for version, headers, block, length, compress, cut in records:
        declared = str(len(block)).encode() if length is None else length
        text = b"\r\n".join([version] + [name + b": " + value for name, value in headers]
                            + [b"Content-Length: " + declared]) + b"\r\n\r\n" + block + b"\r\n\r\n"
        if compress:
            text = gzip.compress(text, 6, mtime=0)
        out.append(text if cut is None else text[:cut])
    return b"".join(out) + tail


def _set_header(headers: list[list], name: bytes, value: bytes | None) -> None:
    """The header replaced where it stands (appended when absent), or removed when ``value`` is None."""
    at = next((i for i, pair in enumerate(headers) if pair[0].lower() == name.lower()), len(headers))
    headers[:] = [pair for pair in headers if pair[0].lower() != name.lower()]
    if value is not None:
        headers.insert(at, [name, value])


def _http_edit(block: bytes, rnd: random.Random) -> bytes:
    """The HTTP response inside a record: its status line, a header that lies, or its payload (HTML mutated,
    chunking or gzip that breaks, a payload that inflates to megabytes)."""
    head, sep, payload = block.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    op = rnd.randrange(5)
    if op == 0:
        lines[0] = rnd.choice(HTTP_STATUS_LINES)
    elif op == 1:
        lines.insert(rnd.randrange(1, len(lines) + 1), rnd.choice(HTTP_HEADERS))
    elif op == 2 and b"<" in payload:
        payload = mutate_html(payload, rnd)
    elif op == 3:
        lines.append(rnd.choice((b"Transfer-Encoding: chunked", b"Content-Encoding: gzip")))
        payload = rnd.choice((
            b"".join(b"%x\r\n%s\r\n" % (len(payload[i:i + 50]), payload[i:i + 50]) for i in range(0, len(payload), 50)),
            b"fffffffff\r\n" + payload, b"5\r\nab", b"-1\r\n\r\n",
            gzip.compress(payload)[:rnd.choice((None, 10, -8))], zeros_deflated(16 << 20)))
    else:
        payload = byte_edit(payload, rnd)
    return b"\r\n".join(lines) + (sep or b"\r\n\r\n") + payload


def _warc_edit(records: list[list], rnd: random.Random) -> None:
    i = rnd.randrange(len(records))
    record = records[i]
    op = rnd.randrange(10)
    if op == 0:
        record[3] = rnd.choice(WARC_LENGTHS + (str(len(record[2]) + rnd.choice((-3, -1, 1, 100))).encode(),))
    elif op == 1:
        _set_header(record[1], b"WARC-Target-URI", rnd.choice(WARC_URIS).encode("utf-8"))
    elif op == 2:
        _set_header(record[1], b"WARC-Type", rnd.choice(WARC_TYPES))
    elif op == 3:
        name = rnd.choice((b"WARC-Date", b"WARC-Record-ID", b"WARC-Payload-Digest", b"WARC-Refers-To",
                           b"WARC-Refers-To-Target-URI", b"WARC-Refers-To-Date", b"WARC-Profile"))
        value = rnd.choice(WARC_DATES + (None, b"<urn:uuid:00000000-0000-0000-0000-000000000000>", b"sha1:AAAA",
                                         b"\xff\xfe", records[rnd.randrange(len(records))][2][:40]))
        _set_header(record[1], name, value)
    elif op == 4:
        record[2] = _http_edit(record[2], rnd)
    elif op == 5:   # a gzip member cut short, or a record compressed differently from its neighbours
        if record[4] and rnd.random() < 0.6:
            record[5] = rnd.choice((10, 30, -1, -20, len(record[2]) // 2))
        else:
            record[4] = not record[4]
    elif op == 6:
        record[0] = rnd.choice((b"WARC/1.0", b"WARC/1.1", b"WARC/0.9", b"WARC/2", b"WARC/", b"warc/1.0"))
    else:   # deleted, duplicated or moved
        _unit_edit(records, i, 0, rnd)


def mutate_warc(data: bytes, rnd: random.Random) -> bytes:
    """One to three edits of a WARC file at its record level (lengths, headers, HTTP payloads, gzip members),
    garbage between records, or byte edits of the file as written."""
    for _ in range(rnd.randrange(1, 4)):
        records, tail = warc_split(data)
        if not records or rnd.random() < 0.2:
            data = byte_edit(data, rnd)
            continue
        _warc_edit(records, rnd)
        if rnd.random() < 0.15:   # garbage between two records
            at = rnd.randrange(len(records) + 1)
            garbage = rnd.choice((b"\r\n", b"\x00" * 16, b"WARC/1.1\r\n", b"\x1f\x8b\x08\x00", _filler(rnd, 64)))
            data = warc_join(records[:at], garbage) + warc_join(records[at:], tail)
        else:
            data = warc_join(records, tail)
    return data

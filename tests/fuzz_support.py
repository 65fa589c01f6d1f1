"""Fuzz targets for every parser of untrusted bytes, their seeds, and the sandbox that runs each input.

Used by tests/test_fuzz.py (hypothesis, bounded) and bench/fuzz.py (atheris, the long run). A target is a
``check(data) -> label`` that runs one parser the way the service runs it and returns a label for the outcome
(``ok:JPEG``, ``ApiError:image_decode_failed``...). The outcomes a parser documents are labels; anything else
raises, and the sandbox reports it as a finding: an exception that escapes the project's error type, an
exception raised in the project's own code (a reader's ``TypeError`` that its caller's guard would have hidden
as ``metadata_unreadable``), a result that breaks an invariant (a URL accepted whose request line cannot be
sent), a hang past 5 s, an allocation past 1 GiB of address space, or a crashed process.

A new target is one ``Target`` entry in ``TARGETS`` (a check, its seeds and its mutation).

The sandbox's child (``Sandbox``, program ``CHILD``) sets its address-space limit first, then answers
``(target, data)`` requests on stdin with one JSON line each on stdout.
"""

from __future__ import annotations

import functools
import gzip
import ipaddress
import io
import json
import os
import random
import re
import select
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from xml.parsers import expat

import numpy as np
from PIL import Image, PngImagePlugin
from werkzeug.http import parse_options_header

import fuzz_mutations
from crawl_support import DATE, WarcBuilder, chunked, digest_of, reference_forms_page
from evidence_support import IPTC, created, make_chain, sign, xmp_packet
from gamma_detect import images
from gamma_detect.contract import CRAWL_ERRORS, CRAWL_STATUSES, LIMITS
from gamma_detect.crops import CropPolicy, ImageTooSmall
from gamma_detect.runtime import default_model_path
from gamma_detect.runtime.evidence import ERROR_CODES, Evidence, EvidenceConfig, EvidenceError, read_evidence
from gamma_detect.runtime.evidence import c2pa, exif, generators, reader, watermark, xmp
from gamma_detect.runtime.evidence.container import check_png_text, mime_type
from gamma_detect.runtime.manifest import Manifest
from gamma_detect.server import decode as server_decode
from gamma_detect.server.crawl.html import TooDeep, image_references
from gamma_detect.server.crawl.index import CrawlIndex
from gamma_detect.server.crawl.pages import pages
from gamma_detect.server.crawl.urls import normalize
from gamma_detect.server.crawl.warc import CrawlInputError, RecordError, input_kind
from gamma_detect.server.crawl_scan import ScanOptions
from gamma_detect.server.errors import ApiError
from gamma_detect.server.fetch import Target as FetchTarget
from gamma_detect.server.fetch import address_allowed, redirect_url, resolve
from gamma_detect.server.multipart import file_field

ASSETS = Path(__file__).with_name("assets")
TIMEOUT_S = 5.0                     # per input
MEMORY_BYTES = 1 << 30              # RLIMIT_AS of the process that runs the inputs
STARTUP_S = 120.0                   # a new sandbox child's imports, on a loaded 2-core machine
IMAGE_ERRORS = {"unsupported_media_type", "image_decode_failed", "image_too_large", "image_too_small"}
CONFIG = EvidenceConfig()
PROJECT_DIRS = tuple(str(Path(m.__file__).resolve().parent) + os.sep for m in (images, server_decode))
# A host name as a resolver takes it as written (letters, digits, hyphens, underscores, dots), or an IP literal.
HOST_NAME = re.compile(r"[A-Za-z0-9_.-]+")


class Finding(AssertionError):
    """An input that broke a parser's contract (raised by a check, reported by the sandbox)."""


def _own_fault(exc: BaseException) -> bool:
    """Whether the innermost frame of the exception is the project's code (not a library it calls)."""
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and str(Path(frames[-1].filename).resolve()).startswith(PROJECT_DIRS)


def _library_failure(exc: Exception) -> str:
    """The label of an exception a library raised on hostile bytes (the reader's guard turns it into an `error`
    item); a fault of the project's own code, or memory exhausted, is a finding instead."""
    if isinstance(exc, (MemoryError, Finding)) or _own_fault(exc):
        raise exc
    return f"library:{type(exc).__name__}"


def _check_items(items: list[Evidence]) -> str:
    """Every item well formed, its error code the contract's, the whole JSON that a browser can parse."""
    for item in items:
        if not isinstance(item, Evidence) or (item.status == "error") != (item.error is not None):
            raise Finding(f"malformed evidence item {item!r}")
        if item.error is not None and item.error not in ERROR_CODES:
            raise Finding(f"error code {item.error!r} is not in the contract")
    try:
        json.dumps([item.to_dict() for item in items], allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise Finding(f"an evidence item is not strict JSON ({exc})") from exc
    return ",".join(f"{i.source}={i.error or i.status}" for i in items) or "none"


# --------------------------------------------------------------------------- checks (one per parser)
@functools.lru_cache(maxsize=1)
def _policy() -> CropPolicy:
    return Manifest.read(default_model_path()).policy


def check_decode(data: bytes) -> str:
    """server/decode.py: probe (what the API runs), decode whole, and decode as the worker does (the model's short
    side, at the crop policy's DCT scale)."""
    limit, policy = LIMITS["image_pixels"], _policy()
    # The code alone is kept: a kept exception would keep its frames, and with them the image Pillow opened.
    probed, refused = None, None
    try:
        probed = server_decode.probe(data, max_pixels=limit)
    except ApiError as exc:
        refused = exc.code
    labels = [f"probe=ApiError:{refused}" if refused else "probe=ok"]
    for min_side, work in ((1, None), (policy.min_side, policy.working_size)):
        try:
            rgb, info = server_decode.decode(data, max_pixels=limit, min_side=min_side, work=work)
        except ApiError as exc:
            if exc.code not in IMAGE_ERRORS:
                raise Finding(f"decode raised the unexpected code {exc.code}") from exc
            if refused and exc.code != refused:
                raise Finding(f"probe said {refused}, decode {exc.code}") from exc
            labels.append(f"ApiError:{exc.code}")
            continue
        if refused:
            raise Finding(f"probe refused the image ({refused}) but decode read it")
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or not rgb.flags.c_contiguous:
            raise Finding(f"decode returned {rgb.dtype} {rgb.shape}")
        if work is not None and (info.width, info.height) != (probed.width, probed.height):
            raise Finding(f"probe said {probed.width}x{probed.height}, decode {info.width}x{info.height}")
        labels.append(f"ok:{info.format}")
    return " ".join(labels)


def check_images(data: bytes) -> str:
    """gamma_detect/images.py as the CLI and the training folders use it (whatever Pillow opens)."""
    try:
        rgb, native = images.load_rgb_reduced(data, _policy().working_size)
    except ImageTooSmall:
        return "ImageTooSmall"
    except Exception as exc:
        return _library_failure(exc)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or min(native) < 1:
        raise Finding(f"load_rgb_reduced returned {rgb.dtype} {rgb.shape} for native {native}")
    return "ok"


def check_multipart(data: bytes) -> str:
    """server/multipart.py: the first line is the Content-Type header (as WSGI hands it: latin-1), the rest the body;
    the boundary is read from the header as Flask's ``request.mimetype_params`` reads it."""
    header, _, body = data.partition(b"\n")
    mimetype, params = parse_options_header(header.decode("latin-1"))
    try:
        part = file_field(body, params.get("boundary", ""), "image")
    except ApiError as exc:
        if exc.code != "bad_request":
            raise Finding(f"file_field raised {exc.code}") from exc
        return "ApiError:bad_request"
    if part is None:
        return "no-image-field"
    content, filename = part
    if content not in body or not (filename is None or isinstance(filename, str)):
        raise Finding(f"file_field returned {len(content)} bytes not in the body, file name {filename!r}")
    return "ok"


def _resolver(addresses: list[str]) -> Callable[..., list]:
    """The fetcher's resolver seam, never a lookup: numeric hosts as getaddrinfo parses them (AI_NUMERICHOST:
    decimal, hex and short IPv4 forms included), any name answered with the input's own addresses (a public one
    when it names none, no address when it names only invalid ones)."""
    answers = [] if addresses else ["93.184.215.14"]
    for text in addresses:
        try:
            answers.append(str(ipaddress.ip_address(text)))
        except ValueError:
            pass

    def getaddrinfo(host: str, port: int, **kwargs: Any) -> list:
        try:
            return socket.getaddrinfo(host, port, flags=socket.AI_NUMERICHOST, **kwargs)
        except socket.gaierror:
            if not answers:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in answers]

    return getaddrinfo


def _check_target(target: FetchTarget) -> None:
    """What a URL the guard lets through must be: a request the connection can send, to an allowed address."""
    if target.scheme not in ("http", "https") or not 0 < target.port < 65536:
        raise Finding(f"accepted {target}")
    if not HOST_NAME.fullmatch(target.host) and target.host.split("%", 1)[0] != target.address:   # nor an IP
        raise Finding(f"accepted the host {target.host!r}, which a resolver would not take as written")
    if not target.path.startswith("/"):   # any other character is urllib3's to percent-encode, as it does
        raise Finding(f"accepted the path {target.path!r}")
    if not address_allowed(target.address):
        raise Finding(f"accepted the address {target.address}")


def check_url(data: bytes) -> str:
    """server/fetch.py's parse and check: line 1 the URL, line 2 a redirect's Location (optional), line 3 the
    addresses the fake resolver gives a name. The URL is checked, then the redirect as fetch follows it."""
    url, _, rest = data.decode("utf-8", "replace").partition("\n")
    location, _, addresses = rest.partition("\n")
    resolver = _resolver(addresses.split())
    labels = []
    for step in ("url", "redirect"):
        try:
            if step == "redirect":
                if not location:
                    break
                url = redirect_url(url, location)
            _check_target(resolve(url, resolver=resolver))
            labels.append("ok")
        except ApiError as exc:
            if exc.code not in ("url_not_allowed", "fetch_failed"):
                raise Finding(f"the URL check raised {exc.code}") from exc
            labels.append(f"ApiError:{exc.code}")
            break
    return " ".join(labels)


def _declares_doctype(packet: bytes) -> bool:
    """Whether expat meets a DOCTYPE in the packet, in whatever encoding it is written (the oracle of check_xmp)."""
    found = []
    scanner = expat.ParserCreate()
    scanner.StartDoctypeDeclHandler = lambda *args: found.append(args)
    try:
        scanner.Parse(packet.strip(b"\x00 \r\n\t"), True)
    except expat.ExpatError:
        pass
    return bool(found)


def check_xmp(data: bytes) -> str:
    """xmp.read: items or its documented errors; a packet it read declares no DOCTYPE (entity attacks)."""
    try:
        items = xmp.read(data, CONFIG)
        if _declares_doctype(data):
            raise Finding("the XMP reader parsed a packet that declares a DOCTYPE")
        return _check_items(items)
    except EvidenceError as exc:
        return f"EvidenceError:{exc.code}"
    except Exception as exc:
        return _library_failure(exc)


def check_png_chunks(data: bytes) -> str:
    try:
        check_png_text(data, CONFIG)
        return "ok"
    except EvidenceError as exc:
        return f"EvidenceError:{exc.code}"


def _with_image(read: Callable[[Image.Image], list[Evidence]]) -> Callable[[bytes], str]:
    """A check of a reader that takes Pillow's header parse (as reader._metadata opens it)."""
    def check(data: bytes) -> str:
        try:
            image = Image.open(io.BytesIO(data))
        except Exception as exc:
            return "unopened:" + _library_failure(exc)
        with image:
            try:
                return _check_items(read(image))
            except Exception as exc:
                return _library_failure(exc)
    return check


def check_watermark(data: bytes) -> str:
    """The watermark check on the file's own decode (reader._pixels: any Pillow format, within its pixel limit)."""
    try:
        return _check_items(watermark.read(reader._pixels(data, CONFIG)))
    except EvidenceError as exc:
        return f"EvidenceError:{exc.code}"
    except Exception as exc:
        return _library_failure(exc)


def check_evidence(data: bytes) -> str:
    """read_evidence whole: never raises, every item well formed."""
    return _check_items(read_evidence(data, CONFIG))


def check_c2pa(data: bytes) -> str:
    """The C2PA reader on a file (its native parse runs in its own limited child process)."""
    try:
        return _check_items(c2pa.read(data, mime_type(data), CONFIG))
    except EvidenceError as exc:
        return f"EvidenceError:{exc.code}"


def check_c2pa_store(data: bytes) -> str:
    """c2pa.interpret on a manifest store as JSON (what the child hands back from a signed, hostile file)."""
    try:
        answer = json.loads(data)
    except ValueError:
        return "not-json"
    if not isinstance(answer, dict):
        return "not-an-object"
    return _check_items(c2pa.interpret(answer))


def check_html(data: bytes) -> str:
    """server/crawl/html.py and urls.py: line 1 the page's URL, the rest its HTML. Every reference found is an
    absolute http(s) or data: URL, listed once, whose index key (``normalize``) is its own normal form."""
    page_url, _, html = data.partition(b"\n")
    try:
        urls = image_references(html, page_url.decode("utf-8", "replace"))
    except TooDeep:
        return "too-deep"
    if len(set(urls)) != len(urls):
        raise Finding(f"a reference listed twice in {urls[:20]}")
    for url in urls:
        if not isinstance(url, str) or not url[:6].lower().startswith(("http:", "https:", "data:")):
            raise Finding(f"image_references returned {url!r}")
        key = normalize(url)
        if not url[:5].lower() == "data:" and normalize(key) != key:
            raise Finding(f"normalize({url!r}) = {key!r}, which normalizes to {normalize(key)!r}")
    kinds = sorted({url.split(":", 1)[0].lower() for url in urls})
    return f"refs:{min(len(urls), 10)}{'+' if len(urls) > 10 else ''}:{'+'.join(kinds) or 'none'}"


def _check_archive_error(error: dict, path: str, size: int) -> str:
    """An archive error as the scan writes it: a contract code, and the file and an offset inside it named."""
    if error["code"] not in CRAWL_ERRORS or error["warc_file"] != path or not 0 <= error["offset"] <= size:
        raise Finding(f"malformed archive error {error}")
    if f"{path} at offset {error['offset']}" not in error["message"]:
        raise Finding(f"the error does not name its file and offset: {error['message']}")
    return error["code"]


def check_warc(data: bytes) -> str:
    """The crawl reader's two passes on one file, as `gamma scan` runs them: sniffed (input_kind), indexed, then
    every page read with its references resolved and each archived image read within the scan's limits. Every
    error is the reader's documented one (a CRAWL_ERRORS code naming file and offset), never another exception."""
    options = ScanOptions("unused.jsonl")
    outcomes: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="gamma-fuzz-warc-") as work:
        path = os.path.join(work, "input.warc.gz")
        Path(path).write_bytes(data)
        try:
            if input_kind(path) != "warc":
                return "jsonl"
        except CrawlInputError as exc:
            if not str(exc).startswith(path):
                raise Finding(f"the input error does not name the file: {exc}") from exc
            return "CrawlInputError"
        index = CrawlIndex(os.path.join(work, "index.sqlite"))
        try:
            outcomes |= {"index:" + _check_archive_error(e.to_dict(), path, len(data)) for e in index.add(path)}
            for page in pages(index, max_html_bytes=options.max_html_bytes):
                if page.error is not None:
                    outcomes.add("page:" + _check_archive_error(page.error, path, len(data)))
                for ref in page.images:
                    if ref.status not in (None,) + CRAWL_STATUSES or (ref.error and ref.error["code"] not in CRAWL_ERRORS):
                        raise Finding(f"an image reference {ref.url!r} with status {ref.status}, error {ref.error}")
                    if ref.status is not None:
                        outcomes.add(ref.status + (":" + ref.error["code"] if ref.error else ""))
                        continue
                    try:
                        ref.read(options.max_image_bytes)
                        outcomes.add("image")
                    except RecordError as exc:
                        outcomes.add("image:" + _check_archive_error(exc.error.to_dict(), path, len(data)))
                    except OverflowError:
                        outcomes.add("image:too_large")
                outcomes.add("page")
        finally:
            index.close()
    return " ".join(sorted(outcomes)) or "empty"


# --------------------------------------------------------------------------- seeds
def _encode(image: Image.Image, fmt: str, **params: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


@functools.lru_cache(maxsize=1)
def image_seeds() -> tuple[bytes, ...]:
    """The real files in tests/assets, and a real photo in every other container and mode the decoder takes."""
    real = [p.read_bytes() for p in sorted(ASSETS.rglob("*")) if p.suffix in (".jpg", ".png", ".webp")]
    with Image.open(ASSETS / "photos" / "tree.jpg") as opened:
        photo = opened.convert("RGB")
    small = photo.resize((96, 64))
    packet = XMP_SEEDS[0]
    text = PngImagePlugin.PngInfo()
    text.add_text("parameters", "a photo of a tree\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Model: m")
    text.add_itxt("XML:com.adobe.xmp", packet.decode())
    rotated = Image.Exif()
    rotated[0x0112], rotated[0x010F], rotated[0x0110] = 6, "Canon", "Canon EOS 70D"
    frames = [small, small.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    derived = [
        _encode(photo.resize((256, 256)), "PNG", pnginfo=text),               # big enough for the watermark check
        _encode(small.convert("RGBA"), "PNG"), _encode(small.convert("I;16"), "PNG"),
        _encode(small.convert("P"), "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0,
                transparency=0),
        _encode(small, "WEBP", lossless=True, exif=rotated.tobytes(), xmp=packet),
        _encode(small, "JPEG", exif=rotated.tobytes(), xmp=packet, progressive=True),
        _encode(small.convert("CMYK"), "JPEG"), _encode(small, "BMP"), _encode(small, "TIFF", compression="tiff_lzw"),
    ]
    return tuple(real + derived)


@functools.lru_cache(maxsize=1)
def c2pa_seeds() -> tuple[bytes, ...]:
    """A real photo signed with Content Credentials (an AI claim on an ingredient), made here as the tests do."""
    chain = make_chain("Fuzz Signer")
    jpeg = (ASSETS / "photos" / "lake.jpg").read_bytes()
    parent = sign(jpeg, "image/jpeg", chain, [created("trainedAlgorithmicMedia", "Gen")])
    edit = {"action": "c2pa.edited", "digitalSourceType": IPTC + "compositeWithTrainedAlgorithmicMedia"}
    return parent, sign(jpeg, "image/jpeg", chain, [edit], ingredient=parent)


@functools.lru_cache(maxsize=1)
def store_seeds() -> tuple[bytes, ...]:
    return tuple(json.dumps(c2pa.read_store(data, "image/jpeg", CONFIG)).encode() for data in c2pa_seeds())


def multipart_body(image: bytes, boundary: str = "fuzzBoundary1234", filename: str = "a.jpg") -> bytes:
    """A form as browsers send it: a text field, then the image field (header line first, as check_multipart)."""
    delimiter = b"--" + boundary.encode()
    return (b"multipart/form-data; boundary=" + boundary.encode() + b"\n" + delimiter
            + b'\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n' + delimiter
            + b'\r\nContent-Disposition: form-data; name="image"; filename="' + filename.encode()
            + b'"\r\nContent-Type: image/jpeg\r\n\r\n' + image + b"\r\n" + delimiter + b"--\r\n")


URL_SEEDS = ("https://example.com/images/photo.jpg?w=640#frag", "http://93.184.215.14:8080/a.png",
             "https://[2606:4700:4700::1111]/x.webp", "https://bücher.example/bild.png",
             "http://images.example.com/a.jpg\n/next.jpg\n8.8.8.8",
             "https://cdn.example.net/a.gif\nhttps://other.example.org/b.gif\n10.0.0.1 1.1.1.1")
XMP_SEEDS = (xmp_packet(f'Iptc4xmpExt:DigitalSourceType="{IPTC}trainedAlgorithmicMedia" xmp:CreatorTool="Gen">'
                        '<Iptc4xmpExt:AIPromptInformation>a tree</Iptc4xmpExt:AIPromptInformation>'),) \
    + tuple(fuzz_mutations.xmp_packet(random.Random(seed)) for seed in range(8))


SITE = "http://site.test"
HTML_SEEDS = (
    f"{SITE}/dir/page.html\n{reference_forms_page()}",
    f"{SITE}/\n<!doctype html><html><head><meta charset=utf-8><title>News</title>"
    '<link rel=stylesheet href="/s.css"><meta property="og:image:secure_url" content="https://cdn.site.test/og.jpg">'
    '</head><body><article><figure><picture><source type="image/webp" srcset="/a.webp 1x, /a@2x.webp 2x">'
    '<img src="/a.jpg" alt="A" loading="lazy" width="640" height="480"></picture><figcaption>A</figcaption></figure>'
    '<img class="lazyload" data-src="//cdn.site.test/b.png" data-srcset="//cdn.site.test/b-320.png 320w, '
    '//cdn.site.test/b-640.png 640w" src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">'
    "<div style=\"background-image:url('/hero%20image.jpg');color:red\"></div>"
    '<noscript><img src="/c.jpg?w=1&amp;h=2"></noscript></article></body></html>',
    "<http://site.test/wget/>\n<html><base href=\"../img/\"><img src=\"caf\u00e9.png\"><img src=\"%7Ex.png\">"
    "<img srcset=\"data:image/png;base64,AA,BB 2x, x.png 3x\"></html>",
)


@functools.lru_cache(maxsize=1)
def warc_seeds() -> tuple[bytes, ...]:
    """Small crawls as warcio writes them (gzip and plain): a page using every reference form, its images
    archived, redirected, revisited by digest, chunked and gzip-encoded, or missing; Wget's metadata records."""
    image, other = _encode(Image.new("RGB", (8, 8), (200, 40, 90)), "PNG"), _encode(Image.new("L", (8, 8), 99), "GIF")
    seeds = []
    with tempfile.TemporaryDirectory(prefix="gamma-fuzz-seeds-") as work:
        for number, (compress, version) in enumerate(((True, "WARC/1.1"), (False, "WARC/1.0"), (True, "WARC/1.0"))):
            path = Path(work) / f"{number}.warc"
            with WarcBuilder(path, gzip=compress, warc_version=version) as w:
                w.metadata("metadata://gnu.org/software/wget/warc/MANIFEST.txt", b"wget log")
                w.response(f"<{SITE}/p.html>" if number == 1 else f"{SITE}/p.html", (
                    reference_forms_page() + '<img src="/img/r.png"><img src="/img/copy.png"><img src="/img/c.png">'
                    '<img src="/img/gone.png">').encode())
                w.response(f"{SITE}/img/src.png", image, "image/png")
                w.response(f"{SITE}/img/r.png", b"", "text/html", "301 Moved Permanently", [("Location", "/img/set1.png")])
                w.response(f"{SITE}/img/set1.png", other, "image/gif")
                w.revisit(f"{SITE}/img/copy.png", f"{SITE}/img/src.png", DATE, digest_of(image))
                w.response(f"{SITE}/img/c.png", chunked(gzip.compress(image), 40), "image/png",
                           headers=[("Transfer-Encoding", "chunked"), ("Content-Encoding", "gzip")])
                w.response(f"{SITE}/img/gone.png", b"gone", "text/plain", "404 Not Found")
            seeds.append(path.read_bytes())
    return tuple(seeds)


# --------------------------------------------------------------------------- mutations per input kind
def _mutate_image(data: bytes, rnd: random.Random) -> bytes:
    return fuzz_mutations.mutate(data, rnd, image_seeds())


URL_PIECES = {
    "scheme": ("http://", "https://", "HTTP://", "ftp://", "file://", "http:/", "//", "", "javascript:"),
    "userinfo": ("", "", "", "user:pw@", "@", "a@b@", "%40@"),
    "host": ("example.com", "127.0.0.1", "0x7f.1", "2130706433", "[::1]", "[::ffff:127.0.0.1]", "[fe80::1%25eth0]",
             "[64:ff9b::a00:1]", "localhost", "EXAMPLE.com.", "xn--bcher-kva.example", "bücher.example", "例え.jp",
             "a" * 64 + ".com", "a..b", "ex ample.com", "ex\x00ample.com", "exa\u200bmple.com", "[::1", "evil.com\\@x",
             "1.1.1.1.", "[2002:a00:1::1]", "\uff45xample.com", "169.254.169.254", "%65xample.com", ""),
    "port": ("", "", ":80", ":0", ":65535", ":65536", ":-1", ":abc", ":８０", ":"),
    "path": ("/a.jpg", "", "/a b.jpg", "/bild-ä.png", "/a\x01b", "/%zz", "/../../etc/passwd", "/a.jpg?q=ü",
             "/a\tb\r\nc", "/a#frag", "?only=query", "/\x7f", "/" + "a" * 5000),
}


def _mutate_url(data: bytes, rnd: random.Random) -> bytes:
    """A URL (and a redirect Location, and resolver addresses) built from pieces hostile URLs are made of."""
    if rnd.random() < 0.3:
        return fuzz_mutations.byte_edit(data, rnd)
    # Each part well formed half the time (its first choice), so that whole URLs get through to the redirect.
    url = "".join(URL_PIECES[part][0] if rnd.random() < 0.5 else rnd.choice(URL_PIECES[part])
                  for part in ("scheme", "userinfo", "host", "port", "path"))
    location = rnd.choice(("", "/next.jpg", "//127.0.0.1/x", "http://[::1", "https://example.org/b.png", "..",
                           "http://example.com:99999/", "\x00", url))
    addresses = " ".join(rnd.choice(("8.8.8.8", "10.0.0.1", "::1", "2606:4700::1", "::ffff:10.0.0.1", "fe80::1%1",
                                     "x")) for _ in range(rnd.randrange(3)))
    return "\n".join((url, location, addresses)).encode("utf-8", "surrogatepass")


def _mutate_multipart(data: bytes, rnd: random.Random) -> bytes:
    """The image inside the form, the boundary parameter, the part headers or the framing."""
    header, _, body = data.partition(b"\n")
    op = rnd.randrange(6)
    if op == 0:
        boundary = rnd.choice(("", "x" * 201, "a b", '"quoted"', "é", "--", "\r\n", "b" * 70))
        header = rnd.choice((b"multipart/form-data; boundary=" + boundary.encode("utf-8"),
                             b"multipart/form-data; boundary*=UTF-8''%E2%82%AC",
                             b"multipart/form-data; boundary*=UTF-8''" + boundary.encode("utf-8").hex().encode(),
                             b"multipart/form-data", b"multipart/form-data; boundary=\"unterminated"))
    elif op == 1:
        name = rnd.choice((b'name="image"; filename*=UTF-8\'\'%E2%82%AC.jpg', b"name=image", b'name="image',
                           b'name="image"; filename="../../x"', b"", b'name="IMAGE"'))
        body = body.replace(b'name="image"; filename="a.jpg"', name, 1)
    elif op == 2:
        start = body.find(b"\r\n\r\n", body.find(b'name="image"'))
        end = body.rfind(b"\r\n--")
        if 0 <= start < end:
            body = body[:start + 4] + _mutate_image(body[start + 4:end], rnd) + body[end:]
    elif op == 3:   # framing: CRLFs dropped, the closing delimiter gone, a part repeated
        body = rnd.choice((body.replace(b"\r\n", b"\n"), body[:body.rfind(b"--")], body * 2,
                           body.replace(b"\r\n\r\n", b"\r\n", 1)))
    else:
        body = fuzz_mutations.byte_edit(body, rnd)
    return header + b"\n" + body


def _mutate_xmp(data: bytes, rnd: random.Random) -> bytes:
    return fuzz_mutations.xmp_packet(rnd) if rnd.random() < 0.4 else fuzz_mutations.byte_edit(data, rnd)


def _mutate_c2pa(data: bytes, rnd: random.Random) -> bytes:
    """Bytes flipped, cut or repeated inside the manifest store (the JUMBF box), so the native parser goes deep."""
    start = data.find(b"jumb")
    if start < 0 or rnd.random() < 0.2:
        return _mutate_image(data, rnd)
    end = min(len(data), start + 40_000)
    middle = fuzz_mutations.byte_edit(data[start:end], rnd)
    return data[:start] + middle + data[end:]


HOSTILE_STRINGS = ("", " ", "x" * 100_000, "\u202e\u0000\ud7ff", IPTC + "trainedAlgorithmicMedia/",
                   "HTTPS://CV.IPTC.ORG/newscodes/digitalsourcetype/trainedAlgorithmicMedia", "c2pa.created",
                   "compositeWithTrainedAlgorithmicMedia", "digitalCapture", "c2pa.edited")


def _mutate_store(data: bytes, rnd: random.Random) -> bytes:
    """The manifest store as a hostile signer can shape it through the C2PA reader, whose output is typed: strings
    changed, optional fields dropped, lists emptied or repeated, ingredients pointing at any manifest (cycles)."""
    try:
        tree = json.loads(data)
        manifests = tree["store"]["manifests"]
    except (ValueError, KeyError, TypeError):
        return fuzz_mutations.byte_edit(data, rnd)
    nodes: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, child in list(children):
            nodes.append((node, key))
            walk(child)

    walk(manifests)
    for _ in range(rnd.randrange(1, 4)):
        if not nodes:
            break
        parent, key = rnd.choice(nodes)
        value = parent[key]
        if isinstance(value, str):
            parent[key] = rnd.choice(HOSTILE_STRINGS + tuple(manifests))
        elif isinstance(value, list):
            parent[key] = rnd.choice(([], value * rnd.choice((2, 200))))
        elif isinstance(parent, dict):
            del parent[key]
            nodes = [(p, k) for p, k in nodes if not (p is parent and k == key)]
    if rnd.random() < 0.3:   # an ingredient whose manifest is any manifest of the store, itself included
        for manifest in manifests.values():
            manifest["ingredients"] = [{"active_manifest": rnd.choice(tuple(manifests))}]
    return json.dumps(tree).encode()


@dataclass(frozen=True)
class Target:
    check: Callable[[bytes], str]
    seeds: Callable[[], tuple[bytes, ...]]
    mutate: Callable[[bytes, random.Random], bytes]
    byte_mutations: bool = True   # whether blind byte edits (libFuzzer's) make inputs the parser can meet


TARGETS: dict[str, Target] = {
    "decode": Target(check_decode, image_seeds, _mutate_image),
    "images": Target(check_images, image_seeds, _mutate_image),
    "multipart": Target(check_multipart, lambda: tuple(multipart_body(s) for s in image_seeds()[:4]), _mutate_multipart),
    "url": Target(check_url, lambda: tuple(u.encode() for u in URL_SEEDS), _mutate_url),
    "png_text": Target(check_png_chunks, lambda: tuple(s for s in image_seeds() if s.startswith(b"\x89PNG")),
                       _mutate_image),
    "xmp": Target(check_xmp, lambda: XMP_SEEDS, _mutate_xmp),
    "exif": Target(_with_image(exif.read), image_seeds, _mutate_image),
    "generators": Target(_with_image(generators.read), image_seeds, _mutate_image),
    "watermark": Target(check_watermark, image_seeds, _mutate_image),
    "evidence": Target(check_evidence, image_seeds, _mutate_image),
    "c2pa": Target(check_c2pa, c2pa_seeds, _mutate_c2pa),
    # The C2PA reader's output is typed JSON: a byte edit would make stores it never hands on.
    "c2pa_store": Target(check_c2pa_store, store_seeds, _mutate_store, byte_mutations=False),
    "html": Target(check_html, lambda: tuple(seed.encode() for seed in HTML_SEEDS), fuzz_mutations.mutate_html),
    "warc": Target(check_warc, warc_seeds, fuzz_mutations.mutate_warc),
}


# --------------------------------------------------------------------------- the sandbox
@dataclass(frozen=True)
class Outcome:
    label: str                   # the parser's answer, or "finding", "hang", "memory", "crashed"
    finding: str | None = None   # what went wrong (a traceback, the signal), None when the parser kept its contract


# Targets that misbehave on purpose, to show that the limits hold (tests/test_fuzz.py, bench/fuzz.py --target hang).
PROBES: dict[str, Target] = {name: Target(check, lambda: (b"probe",), lambda data, rnd: data) for name, check in (
    ("hang", lambda data: str(time.sleep(3600))),
    ("allocate", lambda data: str(len(bytearray(2 * MEMORY_BYTES)))),
    ("abort", lambda data: str(os.abort())))}


def run_check(name: str, data: bytes) -> Outcome:
    """One input through one target (or probe), in this process (the sandbox's child calls it)."""
    try:
        return Outcome({**TARGETS, **PROBES}[name].check(data))
    except MemoryError:
        return Outcome("memory", f"{name}: MemoryError under the {MEMORY_BYTES >> 20} MiB address-space limit")
    except Exception:
        return Outcome("finding", traceback.format_exc(limit=-8))


def child_environment() -> dict[str, str]:
    """One thread per native library (thread stacks count against the address-space limit)."""
    return dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENCV_FOR_THREADS_NUM="1")


class Sandbox:
    """A child process that runs inputs under the limits: TIMEOUT_S per input (then it is killed and replaced) and
    RLIMIT_AS of MEMORY_BYTES (set in the child before it imports anything heavy)."""

    def __init__(self, timeout_s: float = TIMEOUT_S):
        self.timeout_s = timeout_s
        self._child: subprocess.Popen | None = None
        self._stderr = tempfile.TemporaryFile()

    def _start(self) -> subprocess.Popen:
        """The child, started (and waited for: its imports are not an input's time) when there is none."""
        if self._child is None or self._child.poll() is not None:
            self._child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE,
                                           stdout=subprocess.PIPE, stderr=self._stderr, env=child_environment(),
                                           cwd=Path(__file__).parent)
            ready, _, _ = select.select([self._child.stdout], [], [], STARTUP_S)
            if not ready or self._child.stdout.readline() != b"ready\n":
                raise RuntimeError(f"the fuzz sandbox did not start: {self._stderr_tail()}")
        return self._child

    def check(self, name: str, data: bytes) -> Outcome:
        child = self._start()
        try:
            child.stdin.write(struct.pack(">II", len(name), len(data)) + name.encode() + data)
            child.stdin.flush()
        except BrokenPipeError:
            return self._died(name)
        ready, _, _ = select.select([child.stdout], [], [], self.timeout_s)
        if not ready:
            self.close()
            return Outcome("hang", f"{name}: no answer within {self.timeout_s} s")
        line = child.stdout.readline()
        if not line:
            return self._died(name)
        outcome = Outcome(**json.loads(line))
        if outcome.label == "memory":
            self.close()   # a process that ran out of memory is not trusted with the next input
        return outcome

    def _stderr_tail(self) -> str:
        self._stderr.seek(0)
        tail = self._stderr.read().decode("utf-8", "replace")[-2000:]
        self._stderr.seek(0)
        self._stderr.truncate()
        return tail

    def _died(self, name: str) -> Outcome:
        code = self._child.wait()
        self._child = None
        return Outcome("crashed", f"{name}: the child process ended with status {code}\n{self._stderr_tail()}")

    def close(self) -> None:
        if self._child is not None:
            self._child.kill()
            self._child.wait()
            self._child = None


def serve() -> None:
    """The sandbox's child (under its limit already): one JSON answer per request until stdin closes."""
    stdin, stdout = sys.stdin.buffer, sys.stdout
    stdout.write("ready\n")
    stdout.flush()
    while header := stdin.read(8):
        name_length, data_length = struct.unpack(">II", header)
        name = stdin.read(name_length).decode()
        data = stdin.read(data_length)
        outcome = run_check(name, data)
        stdout.write(json.dumps({"label": outcome.label, "finding": outcome.finding}) + "\n")
        stdout.flush()



# The child's program: the limit set before any import, so the parsers' libraries load under it too.
CHILD = f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({MEMORY_BYTES}, {MEMORY_BYTES})); " \
        "import fuzz_support; fuzz_support.serve()"

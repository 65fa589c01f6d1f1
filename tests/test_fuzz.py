"""Fuzzing of every parser of untrusted bytes (tests/fuzz_support.py): hypothesis, derandomized and bounded, from
real files and structure-aware mutations of them, each input run in the sandbox child (5 s, 1 GiB address space).
The long run is bench/fuzz.py (atheris)."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import server_support  # noqa: F401  (sets the test key prefix first)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from server_support import image_server  # noqa: F401
from werkzeug.http import parse_options_header

from crawl_support import WarcBuilder
from fuzz_support import TARGETS, Sandbox
from gamma_detect.runtime.evidence import EvidenceConfig, EvidenceError, xmp
from gamma_detect.server.crawl.html import image_references
from gamma_detect.server.crawl.index import CrawlIndex
from gamma_detect.server.crawl.pages import resolve as resolve_capture
from gamma_detect.server.crawl import warc
from gamma_detect.server.crawl.warc import CrawlInputError, input_kind
from gamma_detect.server.errors import ApiError
from gamma_detect.server.fetch import fetch, resolve
from gamma_detect.server.multipart import file_field

BENCH_FUZZ = Path(__file__).resolve().parent.parent / "bench" / "fuzz.py"
# Inputs per target: the whole file stays well under a minute on 2 cores (the C2PA reader starts a process each).
# A new target in fuzz_support.TARGETS runs here with DEFAULT_EXAMPLES.
EXAMPLES = {"decode": 60, "images": 40, "multipart": 150, "url": 600, "png_text": 150, "xmp": 150, "exif": 80,
            "generators": 80, "watermark": 40, "evidence": 50, "c2pa": 8, "c2pa_store": 150, "html": 250, "warc": 100}
DEFAULT_EXAMPLES = 50


@pytest.fixture(scope="module")
def sandbox():
    box = Sandbox()
    yield box
    box.close()


@st.composite
def inputs(draw: st.DrawFn, name: str) -> bytes:
    """A seed of the target, mutated by its structure-aware mutation (driven by hypothesis's own random)."""
    target = TARGETS[name]
    seed = draw(st.sampled_from(target.seeds()))
    return target.mutate(seed, draw(st.randoms(use_true_random=False)))


@pytest.mark.parametrize("name", TARGETS)
def test_every_input_gets_a_result_or_a_clear_error(sandbox, name):
    @settings(derandomize=True, database=None, max_examples=EXAMPLES.get(name, DEFAULT_EXAMPLES), deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(inputs(name))
    def fuzz(data: bytes) -> None:
        outcome = sandbox.check(name, data)
        assert outcome.finding is None, f"{outcome.label}: {outcome.finding}"

    fuzz()


def test_the_seeds_are_real_images_that_every_parser_reads_cleanly(sandbox):
    for name, target in TARGETS.items():
        for seed in target.seeds():
            outcome = sandbox.check(name, seed)
            assert outcome.finding is None, f"{name}: {outcome.finding}"
            if name == "decode":
                assert outcome.label.startswith("probe=ok ok:"), outcome.label


@pytest.mark.parametrize("probe, label", [("hang", "hang"), ("allocate", "memory"), ("abort", "crashed")])
def test_the_sandbox_stops_hangs_and_allocations_and_survives_crashes(probe, label):
    box = Sandbox(timeout_s=2)
    try:
        outcome = box.check(probe, b"")
        assert outcome.label == label and outcome.finding
        assert box.check("png_text", TARGETS["png_text"].seeds()[0]).label == "ok"   # a fresh child takes over
    finally:
        box.close()


# ----------------------------------------------------------------------------- regressions: minimal failing inputs
def test_a_boundary_outside_ascii_is_a_bad_request_not_a_500():
    """RFC 2231 lets a header parameter carry any character: boundary*=UTF-8''%E2%82%AC is the boundary '€',
    which file_field encoded as latin-1 (UnicodeEncodeError, a 500)."""
    _, params = parse_options_header("multipart/form-data; boundary*=UTF-8''%E2%82%AC")
    assert params["boundary"] == "\u20ac"
    with pytest.raises(ApiError) as info:
        file_field(b"--\xe2\x82\xac\r\n\r\n", params["boundary"], "image")
    assert info.value.code == "bad_request" and "ASCII" in info.value.message


def test_a_host_with_a_nul_is_refused_before_any_lookup():
    """getaddrinfo cuts a host at a NUL ('93.1\\x0084.215.14' was looked up as '93.1', a public 93.0.0.1) while
    the Host header and TLS name keep the whole string: the name checked is not the name used."""
    def resolver(*args, **kwargs):
        raise AssertionError("no lookup for an invalid host name")

    for url in ("http://93.1\x0084.215.14/a.png", "http://example.com\x00.evil.org/", "http://exa mple.com/",
                "http://%65xample.com/"):
        with pytest.raises(ApiError) as info:
            resolve(url, resolver=resolver)
        assert info.value.code == "url_not_allowed" and "host name is not valid" in info.value.message


def test_a_redirect_to_a_malformed_url_fails_the_fetch_clearly(image_server):
    """urljoin raises ValueError on a Location such as 'http://[::1' (an unclosed IPv6 literal): fetch let it
    escape instead of failing with fetch_failed."""
    image_server.add("/r", b"", status=302, headers={"Location": "http://[::1"})
    with pytest.raises(ApiError) as info:
        fetch(image_server.url("/r"), max_bytes=1000, timeout=3, allow={("127.0.0.1", image_server.port)})
    assert info.value.code == "fetch_failed" and "malformed URL" in info.value.message


def test_a_doctype_in_a_utf16_xmp_packet_is_refused_before_its_entities():
    """The DOCTYPE guard searched the bytes for b"<!DOCTYPE", which a UTF-16 packet does not contain: its entity
    was expanded (a billion-laughs packet stopped only at expat's own amplification limit)."""
    packet = ('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY a "trainedAlgorithmicMedia">]>'
              '<r xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" Iptc4xmpExt:DigitalSourceType="&a;"/>')
    for raw in (b"\xfe\xff" + packet.encode("utf-16-be"), packet.replace("UTF-16", "UTF-8").encode()):
        with pytest.raises(EvidenceError) as info:
            xmp.parse(raw, EvidenceConfig())
        assert info.value.code == "xmp_malformed" and "DOCTYPE" in str(info.value)


def test_the_long_run_command_reports_inputs_and_outcomes(tmp_path):
    """bench/fuzz.py, briefly (one atheris child: its instrumented imports cost most of the time)."""
    pytest.importorskip("atheris", reason="atheris is in the dev extra: pip install -e '.[dev]'")
    out = tmp_path / "report.json"
    subprocess.run([sys.executable, str(BENCH_FUZZ), "--target", "png_text", "--seconds", "3", "--work",
                    str(tmp_path / "work"), "--out", str(out)], check=True, capture_output=True, timeout=300)
    report = json.loads(out.read_text())
    assert report["cpu"] and report["limits"] == {"timeout_s": 5.0, "address_space_bytes": 1 << 30}
    png = report["targets"]["png_text"]
    assert png["inputs"] > png["seeds"] and png["distinct_outcomes"] >= 2
    assert not (png["findings"] or png["hangs"] or png["crashes"])


def test_the_long_run_command_fuzzes_the_extensions_parsers_too(tmp_path):
    """bench/fuzz.py --target js_*: the extension's targets in Node, merged beside the server's entries."""
    pytest.importorskip("atheris", reason="atheris is in the dev extra: pip install -e '.[dev]'")
    if shutil.which("node") is None:
        pytest.skip("Node.js is not installed (apt-get install -y nodejs): the extension's targets run in Node")
    out = tmp_path / "report.json"
    out.write_text(json.dumps({"targets": {"decode": {"inputs": 1, "command": "earlier", "cpu": "x", "nice": 0}}}))
    subprocess.run([sys.executable, str(BENCH_FUZZ), "--target", "js_header", "--seconds", "3", "--work",
                    str(tmp_path / "work"), "--out", str(out)], check=True, capture_output=True, timeout=300)
    report = json.loads(out.read_text())
    header = report["targets"]["js_header"]
    assert report["targets"]["decode"]["command"] == "earlier" and "js_header" in header["command"]
    assert header["inputs"] > header["seeds"] and header["distinct_outcomes"] >= 2
    assert header["engine"].startswith("node")
    assert not (header["findings"] or header["hangs"] or header["crashes"])


def test_a_webp_header_past_the_pixel_limit_is_too_large_in_probe_and_decode_alike(sandbox):
    """A small lossless WebP whose VP8L header claims 4308x14357 px (what bench/fuzz.py made): Pillow reserves its canvas when it opens
    the file, so under the 1 GiB limit the answer must not depend on what an earlier open still holds."""
    buffer = io.BytesIO()
    Image.new("RGB", (96, 64), (40, 120, 200)).save(buffer, "WEBP", lossless=True)
    seed = buffer.getvalue()
    at = seed.index(b"VP8L") + 9   # the 14-bit width-1 and height-1 after the 0x2f signature byte
    size = (4308 - 1) | (14357 - 1) << 14 | int.from_bytes(seed[at:at + 4], "little") & ~((1 << 28) - 1)
    claiming = seed[:at] + size.to_bytes(4, "little") + seed[at + 4:]
    outcome = sandbox.check("decode", claiming)
    assert outcome.label == " ".join(["probe=ApiError:image_too_large"] + ["ApiError:image_too_large"] * 2), outcome


def test_a_reference_or_base_that_urlsplit_refuses_is_left_out():
    """urljoin raises ValueError on 'http://[::1' (an unclosed IPv6 literal): one such <img src> or <base href>,
    or a page URL of that form, ended image_references and with it the crawl scan."""
    page = b'<base href="http://[x/"><img src="http://[::1"><img src="a.png"><img src="data:,x">'
    assert image_references(page, "http://site.test/p/") == ["http://site.test/p/a.png", "data:,x"]
    assert image_references(page, "http://[::1/") == ["data:,x"]


def test_thousands_of_nested_noscripts_end_quickly(sandbox):
    """Each <noscript>'s deep text was read for the fallback markup: 30,000 nested ones (300 KB) took 17 s. Now
    its own text only is parsed again, and so many open elements are refused before parsing."""
    outcome = sandbox.check("html", b"http://site.test/\n" + b"<noscript>" * 30_000 + b'<img src="a.png">')
    assert outcome.label == "too-deep", outcome
    outcome = sandbox.check("html", b"http://site.test/\n" + b"<noscript>" * 500 + b'<img src="a.png">')
    assert outcome.label == "refs:1:http", outcome


def test_an_archived_redirect_to_a_malformed_location_is_an_archived_error(tmp_path):
    """Following 'Location: http://[::1' raised ValueError out of the second pass (a 500 of the whole scan)."""
    path = str(tmp_path / "a.warc.gz")
    with WarcBuilder(path) as w:
        w.response("http://site.test/r.png", b"", "text/html", "302 Found", [("Location", "http://[::1")])
    index = CrawlIndex(str(tmp_path / "index.sqlite"))
    assert index.add(path) == []
    ref = resolve_capture(index, "http://site.test/r.png", "2026-01-02T03:04:05Z")
    assert (ref.status, ref.http_status) == ("archived_error", 302)


def test_a_gzip_member_with_a_bad_checksum_is_a_clear_error(tmp_path):
    """A corrupt deflate stream or CRC raises zlib.error, which is not an OSError: it escaped input_kind's guard,
    and the check that the last member is complete (a record warcio had read as whole, its CRC unchecked)."""
    good = str(tmp_path / "good.warc.gz")
    with WarcBuilder(good) as w:
        w.response("http://site.test/p.html", b"<html>" + b"x" * 200 + b"</html>")
    data = open(good, "rb").read()
    bad = tmp_path / "bad.warc.gz"
    bad.write_bytes(data[:-8] + bytes(b ^ 0xFF for b in data[-8:-4]) + data[-4:])   # the CRC-32 flipped
    with open(bad, "rb") as handle:
        assert warc._member_complete(handle, 0, len(data)) is False
    broken = tmp_path / "broken.warc.gz"
    broken.write_bytes(data[:10] + b"\xff" * 8 + data[18:])   # the deflate stream itself
    with pytest.raises(CrawlInputError, match="a gzip file that cannot be read"):
        input_kind(str(broken))


def test_a_negative_content_length_or_a_huge_http_status_is_a_clear_error(tmp_path):
    """'Content-Length: -1' in a gzip member made warcio report a negative record length, so the error's offset
    was negative; an HTTP status of 20 digits overflowed SQLite's INTEGER (OverflowError out of the index)."""
    record = (b"WARC/1.1\r\nWARC-Type: response\r\nWARC-Target-URI: http://site.test/p.html\r\n"
              b"Content-Type: application/http; msgtype=response\r\nContent-Length: %d\r\n\r\n%s\r\n\r\n")
    http = b"HTTP/1.1 99999999999999999999 OK\r\nContent-Type: text/html\r\n\r\n<img src=a.png>"
    huge, negative = tmp_path / "huge.warc", tmp_path / "negative.warc"
    huge.write_bytes(record % (len(http), http))
    negative.write_bytes(gzip.compress(record % (-1, http) + record % (len(http), http)))   # one gzip member
    index = CrawlIndex(str(tmp_path / "index.sqlite"))
    assert index.add(str(huge)) == [] and index.page_count() == 0   # no status: not a 2xx page
    [error] = index.add(str(negative))
    assert (error.code, error.offset) == ("warc_unreadable", 0)
    assert "Content-Length is negative" in error.message

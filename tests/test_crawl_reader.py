"""server/crawl: the WARC reader alone (no detector): URLs, HTML references, the index, resolution, bad input."""

import gzip

import pytest

from crawl_support import DATE, FORM_IMAGES, WarcBuilder, chunked, digest_of, reference_forms_page
from gamma_detect.server.crawl.html import MAX_DEPTH, TooDeep, image_references, nesting_bound, srcset_urls
from gamma_detect.server.crawl.index import CrawlIndex
from gamma_detect.server.crawl.pages import pages, resolve
from gamma_detect.server.crawl.urls import normalize
from gamma_detect.server.crawl.warc import CrawlInputError, input_kind, read_payload
from stub_detector import image_bytes

SITE = "http://site.test"


@pytest.mark.parametrize("url, normal", [
    ("HTTP://Site.TEST:80/a/b.png#frag", "http://site.test/a/b.png"),
    ("https://site.test:443", "https://site.test/"),
    ("http://site.test:8080/%7euser/%2f%e4?q=%7e", "http://site.test:8080/~user/%2F%E4?q=~"),
    ("<http://site.test/a b.png>", "http://site.test/a%20b.png"),
    ("http://site.test/caf\u00e9.png", "http://site.test/caf%C3%A9.png"),
])
def test_normalize(url, normal):
    assert normalize(url) == normal
    assert normalize(normal) == normal


def test_srcset_every_candidate_and_commas_inside_urls():
    assert srcset_urls("a.png 1x, b.png 2x,c.png,  d.png (x, y) 4w") == ["a.png", "b.png", "c.png", "d.png"]
    assert srcset_urls("data:image/png;base64,AA,BB 2x, e.png") == ["data:image/png;base64,AA,BB", "e.png"]


def test_every_reference_form_resolved_against_base_href():
    found = image_references(reference_forms_page().encode(), f"{SITE}/dir/page.html")
    urls = [u for u in found if not u.startswith("data:")]
    assert sorted(urls) == sorted(f"{SITE}/img/{name}" for name in FORM_IMAGES)
    assert sum(u.startswith("data:image/png;base64,") for u in found) == 1
    html = b'<img src="javascript:x"><img src="#top"><img src="a.png"><img src="a.png"><img src="">'
    assert image_references(html, f"{SITE}/p/") == [f"{SITE}/p/a.png"]


def test_nesting_bound_counts_what_the_parser_keeps_open():
    assert nesting_bound(b"<html><body><div><DIV><span>x</span></div></Div>") == 3
    assert nesting_bound(b"<div/><div/>") == 2                   # the slash does not close a div
    assert nesting_bound(b"<p>a" * 5000 + b"<li>" * 5000 + b"<option><img><br>" * 5000) == 0   # closed by the parser
    assert nesting_bound(b"<!-- x --><b>" + b"</b>" * 5) == 1    # end tags with none open close nothing
    # End tags that close nothing in the parser close nothing here either: other names, or a name with a NUL.
    assert nesting_bound(b"<div></span>" * 3000) == 3000
    assert nesting_bound(b"<div\x00x></div>" * 3000) == 3000
    assert nesting_bound(b"<a-very-long-custom-element-name></a-very-long-custom-element-name>" * 3000) == 3000
    assert nesting_bound(b"<my-card></my-card>" * 3000) == 1


def test_a_page_nested_deeper_than_browsers_nest_is_refused_before_parsing():
    page = b"<div>" * 100_000 + b'<img src="a.png">'    # Lexbor: tens of seconds
    with pytest.raises(TooDeep, match=f"more than {MAX_DEPTH}"):
        image_references(page, f"{SITE}/p/")
    with pytest.raises(TooDeep):
        image_references("<noscript>" + "<div>" * (MAX_DEPTH + 1) + "</noscript>", f"{SITE}/p/")   # parsed again
    assert image_references(b"<div>" * MAX_DEPTH + b'<img src="a.png">', f"{SITE}/p/") == [f"{SITE}/p/a.png"]


def test_input_kind_by_content_not_name(tmp_path):
    warc = tmp_path / "crawl.jsonl"            # a WARC named like JSONL
    with WarcBuilder(warc, gzip=True) as w:
        w.response(f"{SITE}/", b"<html></html>")
    plain = tmp_path / "plain.data"
    with WarcBuilder(plain, gzip=False) as w:
        w.response(f"{SITE}/", b"<html></html>")
    jsonl = tmp_path / "pages.warc.gz"          # JSONL named like a WARC
    jsonl.write_text('{"page_url": "x", "image_urls": []}\n')
    other = tmp_path / "notes.warc"
    other.write_bytes(gzip.compress(b"hello, not a WARC"))
    assert (input_kind(str(warc)), input_kind(str(plain)), input_kind(str(jsonl))) == ("warc", "warc", "jsonl")
    with pytest.raises(CrawlInputError, match="neither a WARC file"):
        input_kind(str(other))


def test_index_and_resolution(tmp_path):
    """Angle-bracket URIs, Wget's metadata/resource records skipped, a 3xx chain followed, a revisit resolved by
    digest in another file, chunked + gzip undone, non-2xx reported with its status, the rest not archived."""
    image, other = image_bytes(seed=1), image_bytes(seed=2)
    first, second = tmp_path / "a.warc.gz", tmp_path / "b.warc"
    with WarcBuilder(first) as w:
        w.metadata("metadata://gnu.org/software/wget/warc/MANIFEST.txt", b"wget log")
        w.resource("metadata://gnu.org/software/wget/warc/wget_arguments.txt", b"--warc-file")
        w.response(f"<{SITE}/img/original.png>", image, "image/png")
        w.response(f"{SITE}/old.png", b"", "text/html", status="301 Moved Permanently",
                   headers=[("Location", "/middle.png")])
        w.response(f"{SITE}/middle.png", b"", "text/html", status="302 Found", headers=[("Location", "/final.png")])
        w.response(f"{SITE}/final.png", chunked(gzip.compress(other)), "image/png",
                   headers=[("Transfer-Encoding", "chunked"), ("Content-Encoding", "gzip")])
        w.response(f"{SITE}/gone.png", b"not here", "text/html", status="404 Not Found")
        w.response(f"{SITE}/loop.png", b"", "text/html", status="302 Found", headers=[("Location", "/loop.png")])
    with WarcBuilder(second, gzip=False) as w:
        w.revisit(f"{SITE}/copy.png", f"{SITE}/img/original.png", DATE, digest_of(image))
        w.revisit(f"{SITE}/lost.png", f"{SITE}/elsewhere.png", DATE, digest_of(b"never archived"))
    index = CrawlIndex(str(tmp_path / "index.sqlite"))
    assert index.add(str(first)) == [] and index.add(str(second)) == []
    assert index.db.execute("SELECT count(*) FROM captures").fetchone()[0] == 8   # no metadata/resource rows

    original = resolve(index, "HTTP://SITE.test:80/img/original.png#x", DATE)
    assert original.status is None and original.read(10**6) == image and original.capture.file == str(first)
    final = resolve(index, f"{SITE}/old.png", DATE)
    assert final.status is None and final.read(10**6) == other and final.capture.uri == f"{SITE}/final.png"
    copy = resolve(index, f"{SITE}/copy.png", DATE)
    assert copy.status is None and copy.capture.file == str(first) and copy.read(10**6) == image
    gone = resolve(index, f"{SITE}/gone.png", DATE)
    assert (gone.status, gone.http_status) == ("archived_error", 404)
    assert resolve(index, f"{SITE}/missing.png", DATE).status == "not_archived"
    loop = resolve(index, f"{SITE}/loop.png", DATE)
    assert loop.status == "failed" and loop.error["code"] == "too_many_redirects"
    lost = resolve(index, f"{SITE}/lost.png", DATE)
    assert lost.status == "failed" and lost.error["code"] == "revisit_unresolved" and str(second) in lost.error["message"]
    with pytest.raises(OverflowError):
        read_payload(original.capture.file, original.capture.offset, len(image) - 1)
    # Indexing again changes nothing (the file is known by size and mtime).
    assert index.add(str(first)) == []
    assert index.db.execute("SELECT count(*) FROM captures").fetchone()[0] == 8


def test_pages_yield_references_with_their_records(tmp_path):
    path = tmp_path / "crawl.warc.gz"
    with WarcBuilder(path) as w:
        w.response(f"{SITE}/p.html", '<img src="/a.png"><img src="/b.png"><img src="data:image/png;base64,@@">'.encode())
        w.response(f"{SITE}/a.png", image_bytes(), "image/png")
        w.response(f"{SITE}/x.css", b"body{}", "text/css")
        w.response(f"{SITE}/deep.html", b"<div>" * 20_000 + b'<img src="/a.png">')
    index = CrawlIndex(str(tmp_path / "i.sqlite"))
    index.add(str(path))
    page, deep = list(pages(index, max_html_bytes=10**6))
    assert deep.images == [] and deep.error["code"] == "html_too_deep"
    assert f"{path} at offset {deep.capture.offset}" in deep.error["message"]
    assert page.url == f"{SITE}/p.html" and page.capture.date == DATE and page.error is None
    a, b, data = page.images
    assert a.status is None and a.capture.uri == f"{SITE}/a.png" and a.capture.record_id.startswith("<urn:uuid:")
    assert b.status == "not_archived" and b.capture is None
    assert data.status == "failed" and data.error["code"] == "bad_data_url"

"""A real crawl: GNU Wget archives a loopback site into WARC files; `gamma scan` scores them with the site stopped,
in process (--local) and through the API (--server, the batch endpoint for bytes)."""

import json
import shutil
import subprocess
import threading
from urllib.parse import urlsplit

import flask
import pytest
from werkzeug.serving import make_server

import server_support
from crawl_support import FORM_IMAGES, chunked, reference_forms_page
from gamma_detect.server import cli
from server_support import ImageServer
from stub_detector import image_bytes

pytestmark = pytest.mark.skipif(shutil.which("wget") is None, reason="GNU Wget is not installed (tests/run.sh installs it)")


def serve_site(site: ImageServer) -> None:
    """Pages with every reference form, an image on two pages, an excluded image, a redirect, a chunked response,
    a 404; third.html (crawled second, deduplicated against the first crawl) shows an image already archived."""
    html = {"Content-Type": "text/html; charset=utf-8"}
    site.add("/index.html", reference_forms_page().replace("</body>", '<a href="/second.html">next</a></body>')
             .encode(), headers=html)
    for seed, name in enumerate(FORM_IMAGES):
        site.add(f"/img/{name}", image_bytes(96, 80, seed=seed))
    site.add("/second.html", b'<html><body><img src="/img/src.png"><img src="/excluded/x.png"><img src="/moved.png">'
                             b'<img src="/chunked.png"><img src="/gone.png"></body></html>', headers=html)
    site.add("/excluded/x.png", image_bytes(seed=40))
    site.add("/moved.png", b"", status=301, headers={"Location": "/img/final.png"})
    site.add("/img/final.png", image_bytes(seed=41))
    body = image_bytes(seed=42)

    def send_chunked(handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "image/png")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        handler.wfile.write(chunked(body, 500))

    site.add("/chunked.png", send_chunked)
    site.add("/gone.png", b"not found", status=404, headers=html)
    site.add("/third.html", b'<html><body><img src="/img/src.png"></body></html>', headers=html)


def wget(*args: str, cwd) -> None:
    done = subprocess.run(["wget", "--no-verbose", "--no-proxy", "--tries=1", "--timeout=10", "-e", "robots=off",
                           "--no-directories", *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode in (0, 8), done.stderr   # 8: some response was an error (the 404, on purpose)


@pytest.fixture(scope="module")
def crawl(tmp_path_factory):
    """Two WARC files (the second deduplicated against the first: revisit records) and what Wget asked for."""
    folder = tmp_path_factory.mktemp("wget")
    (folder / "warcs").mkdir()
    site = ImageServer()
    try:
        serve_site(site)
        wget("--recursive", "--level=2", "--page-requisites", "--exclude-directories=/excluded",
             "--warc-file=warcs/one", "--warc-cdx", site.url("/index.html"), cwd=folder)
        wget("--page-requisites", "--warc-file=warcs/two", "--warc-dedup=warcs/one.cdx", site.url("/third.html"),
             cwd=folder)
        requested = {urlsplit(seen["path"]).path for seen in site.seen}
        statuses = {path: route[0] for path, route in site.routes.items()}
        base = site.url("")
    finally:
        site.close()   # the site is stopped: the scan has only the archive
    (folder / "warcs" / "one.cdx").unlink()   # not a WARC: leave the folder to the WARC files
    return {"folder": folder, "warcs": folder / "warcs", "requested": requested, "statuses": statuses, "base": base}


def expected_status(crawl, url: str) -> str:
    path = urlsplit(url).path
    if url.startswith("data:"):
        return "scored"
    if path not in crawl["requested"]:
        return "not_archived"
    return "archived_error" if crawl["statuses"][path] >= 400 else "scored"


def check_results(crawl, out) -> dict[str, dict]:
    records = {urlsplit(r["page_url"]).path: r for r in map(json.loads, open(out, encoding="utf-8"))}
    assert set(records) == {"/index.html", "/second.html", "/third.html"}
    for record in records.values():
        for entry in record["images"]:
            assert entry["status"] == expected_status(crawl, entry["url"]), entry
            assert ("result" in entry) == (entry["status"] == "scored"), entry
            if entry["status"] == "scored" and not entry["url"].startswith("data:"):
                assert entry["warc_file"].startswith(str(crawl["warcs"])) and entry["record_id"] and entry["warc_date"]
    forms = {urlsplit(e["url"]).path: e for e in records["/index.html"]["images"]}
    # Wget fetches what its HTML parser finds (src, srcset, style url(), noscript markup), not lazy-loading
    # attributes or meta tags: those are referenced but not archived, and reported so.
    assert forms["/img/src.png"]["status"] == "scored" and forms["/img/bg.png"]["status"] == "scored"
    assert forms["/img/lazy.png"]["status"] == "not_archived" and forms["/img/og.png"]["status"] == "not_archived"
    second = {urlsplit(e["url"]).path: e for e in records["/second.html"]["images"]}
    assert second["/excluded/x.png"]["status"] == "not_archived"
    assert second["/moved.png"]["status"] == "scored" and second["/chunked.png"]["status"] == "scored"
    assert (second["/gone.png"]["status"], second["/gone.png"]["http_status"]) == ("archived_error", 404)
    assert second["/img/src.png"]["sha256"] == forms["/img/src.png"]["sha256"]   # one image, two pages
    # third.html is in two.warc.gz; its image is a revisit there, scored from the payload in one.warc.gz.
    [revisited] = records["/third.html"]["images"]
    assert records["/third.html"]["warc_file"].endswith("two.warc.gz") and revisited["warc_file"].endswith("one.warc.gz")
    assert revisited["result"]["verdict"] == forms["/img/src.png"]["result"]["verdict"]
    return records


def test_wget_records_what_the_reader_handles(crawl):
    """The crawl really holds what the reader must handle: metadata/resource records and a revisit."""
    from warcio.archiveiterator import ArchiveIterator

    types = set()
    for path in crawl["warcs"].iterdir():
        with open(path, "rb") as handle:
            types |= {record.rec_type for record in ArchiveIterator(handle)}
    assert {"warcinfo", "request", "response", "metadata", "resource", "revisit"} <= types


def test_local_scan_of_a_wget_crawl(crawl, monkeypatch, capsys):
    monkeypatch.setenv("GAMMA_DETECTOR", server_support.STUB)
    out = crawl["folder"] / "local.jsonl"
    assert cli.scan_main([str(crawl["warcs"]), "--local", "--out", str(out), "--json", "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    records = check_results(crawl, out)
    assert summary["pages"] == 3 and summary["statuses"]["archived_error"] == 1
    assert summary["images"] == sum(len(r["images"]) for r in records.values())


def test_server_scan_of_a_wget_crawl_sends_bytes(crawl, capsys):
    backend = server_support.backend_with()
    paths = []
    backend.app.before_request(lambda: paths.append(flask.request.path))
    http = make_server("127.0.0.1", 0, backend.app, threaded=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    try:
        backend.start_worker()
        out = crawl["folder"] / "server.jsonl"
        code = cli.scan_main([str(crawl["warcs"]), "--out", str(out), "--server", f"http://127.0.0.1:{http.port}",
                              "--json", "--no-progress"])
        assert code == 0, capsys.readouterr()
        records = check_results(crawl, out)
        assert "/v1/scan/bytes" in paths and "/v1/scan" not in paths and "/v1/analyze" not in paths
        entry = records["/second.html"]["images"][0]
        assert entry["result"]["model"]["name"] == "stub" and entry["result"]["image"]["sha256"] == entry["sha256"]
    finally:
        http.shutdown()
        backend.stop()
        server_support.delete_keys()

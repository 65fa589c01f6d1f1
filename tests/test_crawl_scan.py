"""`gamma scan` on WARC files in process (--local, the stub detector): entries, dedupe, Parquet, summary, bad archives."""

import base64
import gzip
import json
import os

import pytest

import server_support
from server_support import image_server  # noqa: F401
from crawl_support import DATE, WarcBuilder, digest_of
from gamma_detect.contract import CRAWL_IMAGE_FIELDS, CRAWL_PAGE_FIELDS, CRAWL_STATUSES, RESULT_FIELDS
from gamma_detect.server import cli
from gamma_detect.server.config import Settings
from gamma_detect.server.crawl_output import parquet_rows
from gamma_detect.server.crawl_scan import ScanOptions, scan_crawl
from gamma_detect.server.crawl_scorers import LocalScorer
from stub_detector import image_bytes

SITE = "http://site.test"


@pytest.fixture
def stub_env(monkeypatch):
    monkeypatch.setenv("GAMMA_DETECTOR", server_support.STUB)


def small_crawl(tmp_path) -> tuple[str, str]:
    """Two files: page one shows a, b (twice: src and srcset), a 404 and a missing image; page two (in the second
    file) shows a again through a revisit and a data: URL. Returns the two paths."""
    a, b = image_bytes(seed=1), image_bytes(seed=2)
    first, second = str(tmp_path / "one.warc.gz"), str(tmp_path / "two.warc.gz")
    with WarcBuilder(first) as w:
        w.response(f"{SITE}/one.html", b'<img src="/a.png"><img src="/b.png" srcset="/b.png 2x"><img src="/404.png">'
                                       b'<img src="/missing.png">')
        w.response(f"{SITE}/a.png", a, "image/png")
        w.response(f"{SITE}/b.png", b, "image/png")
        w.response(f"{SITE}/404.png", b"nope", "text/html", status="404 Not Found")
    data_url = "data:image/png;base64," + base64.b64encode(image_bytes(seed=3)).decode()
    with WarcBuilder(second) as w:
        w.response(f"{SITE}/two.html", f'<img src="/copy.png"><img src="{data_url}">'.encode())
        w.revisit(f"{SITE}/copy.png", f"{SITE}/a.png", DATE, digest_of(a))
    return first, second


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def test_local_scan_scores_every_archived_image_once(tmp_path):
    first, second = small_crawl(tmp_path)
    scorer = LocalScorer(Settings(detector=server_support.STUB), batch_images=2)
    out = tmp_path / "results.jsonl"
    summary = scan_crawl([first, second], scorer, ScanOptions(str(out), progress=False))
    one, two = read_jsonl(out)
    assert [e["status"] for e in one["images"]] == ["scored", "scored", "archived_error", "not_archived"]
    assert one["images"][2]["http_status"] == 404 and "result" not in one["images"][2]
    assert one["counts"] == {"scored": 2, "archived_error": 1, "not_archived": 1}
    assert [e["status"] for e in two["images"]] == ["scored", "scored"]
    a_entry, copy_entry = one["images"][0], two["images"][0]
    assert copy_entry["sha256"] == a_entry["sha256"] and copy_entry["result"] == a_entry["result"]
    assert copy_entry["warc_file"] == first and copy_entry["offset"] == a_entry["offset"]   # the revisit's original
    for entry in (a_entry, copy_entry, two["images"][1]):
        assert entry["result"]["verdict"] and entry["result"]["model"]["name"] == "stub"
        assert entry["record_id"].startswith("<urn:uuid:") and entry["warc_date"] == DATE
    assert two["images"][1]["url"].startswith("data:image/png;base64,") and two["images"][1]["warc_file"] == second
    assert one["crawl_date"] == DATE and one["warc_file"] == first and one["offset"] == 0
    # a, b and the data: image: three inferences for four scored entries.
    assert sum(scorer.detector.calls) == 3 and summary.unique_images == 3
    report = summary.to_dict()
    assert report["statuses"] == {"scored": 4, "archived_error": 1, "not_archived": 1}
    assert report["pages"] == 2 and report["images"] == 6 and report["failed"] is False
    assert sum(report["verdicts"].values()) == 4 and set(report["statuses"]) <= set(CRAWL_STATUSES)


def test_cli_parquet_reads_back_the_same_rows(tmp_path, stub_env, capsys):
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow is the parquet extra (installed by the dev extra)")
    small_crawl(tmp_path)
    out, table = tmp_path / "out" / "r.jsonl", tmp_path / "out" / "r.parquet"
    out.parent.mkdir()
    code = cli.scan_main([str(tmp_path), "--local", "--out", str(out), "--parquet", str(table), "--json",
                          "--no-progress"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["pages"] == 2 and summary["unique_images"] == 3 and summary["images_per_s"] > 0
    rows = pq.read_table(table).to_pylist()
    expected = [row for record in read_jsonl(out) for row in parquet_rows(record)]
    assert rows == expected and len(rows) == 6
    assert list(rows[0]) == [*CRAWL_PAGE_FIELDS, *CRAWL_IMAGE_FIELDS, *(f"result_{f}" for f in RESULT_FIELDS)]
    assert rows[0]["result_verdict"] and json.loads(rows[0]["result_sources"])
    assert sorted(os.listdir(out.parent)) == ["r.jsonl", "r.parquet"]   # no temporary left


def test_parquet_without_pyarrow_says_what_to_install(tmp_path, stub_env, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name.startswith("pyarrow"):
            raise ImportError("No module named 'pyarrow'")
        return real_import(name, *args, **kwargs)

    small_crawl(tmp_path)
    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    with pytest.raises(SystemExit, match=r"pip install 'gamma-detect\[parquet\]'"):
        cli.scan_main([str(tmp_path), "--local", "--out", str(tmp_path / "r.jsonl"), "--parquet",
                       str(tmp_path / "r.parquet"), "--no-progress"])
    assert not (tmp_path / "r.jsonl").exists()


def bad_archives(tmp_path) -> dict:
    """A good file, and one of each kind of bad input; returns name -> path."""
    folder = tmp_path / "crawl"
    folder.mkdir()
    paths = {name: str(folder / f"{name}.warc.gz") for name in ("good", "truncated", "lying", "huge")}
    with WarcBuilder(paths["good"]) as w:
        w.response(f"{SITE}/good.html", b'<img src="/g.png">')
        w.response(f"{SITE}/g.png", image_bytes(seed=7), "image/png")
    with WarcBuilder(paths["truncated"]) as w:
        w.response(f"{SITE}/t.html", b'<img src="/t.png">')
        cut = w.response(f"{SITE}/t.png", image_bytes(seed=8), "image/png")
    data = open(paths["truncated"], "rb").read()
    open(paths["truncated"], "wb").write(data[:cut + (len(data) - cut) // 2])   # the last member cut in half
    with WarcBuilder(paths["lying"], gzip=False) as w:
        w.response(f"{SITE}/l.html", b'<img src="/l.png">')
        liar = w.response(f"{SITE}/l.png", image_bytes(seed=9), "image/png")
    data = open(paths["lying"], "rb").read()
    head_end = data.index(b"\r\n\r\n", liar)
    block = data[liar:head_end]
    declared = int(block.split(b"Content-Length: ")[1].split(b"\r\n")[0])
    open(paths["lying"], "wb").write(data[:liar] + block.replace(b"Content-Length: %d" % declared,
                                                                  b"Content-Length: %d" % (declared - 300))
                                     + data[head_end:])
    # A 50 MB HTML page and a 200 MB image record (gzip makes them small on disk).
    with WarcBuilder(paths["huge"]) as w:
        w.response(f"{SITE}/big.html", b'<img src="/big.png">' + b"<p>filler</p>" * (50 * 1024 * 1024 // 13))
        w.response(f"{SITE}/small.html", b'<img src="/big.png"><img src="/g.png">')
        w.response(f"{SITE}/big.png", image_bytes(seed=10) + b"\0" * (200 * 1024 * 1024), "image/png")
    not_warc = folder / "notes.txt"
    not_warc.write_bytes(gzip.compress(b"just some text"))
    paths["not_warc"] = str(not_warc)
    return paths


@pytest.mark.timeout(120)
def test_bad_archives_are_reported_and_the_rest_scanned(tmp_path):
    """In a process of its own, whose peak memory shows that the 50 MB page and the 200 MB record were not read."""
    import subprocess
    import sys

    paths = bad_archives(tmp_path)
    out = tmp_path / "results.jsonl"
    env = {**os.environ, "GAMMA_DETECTOR": server_support.STUB,
           "PYTHONPATH": os.pathsep.join([os.path.dirname(__file__), os.environ.get("PYTHONPATH", "")])}
    # The child's own high-water mark (VmHWM starts afresh at exec; ru_maxrss would count this process's too).
    code = ("import sys\nfrom gamma_detect.cli import main\ncode = main(sys.argv[1:])\n"
            "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0], file=sys.stderr)\n"
            "sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", code, "scan", str(tmp_path / "crawl"), "--local",
                           "--out", str(out), "--json", "--no-progress"], env=env, capture_output=True, text=True,
                          timeout=100)
    assert done.returncode == 1, done.stderr   # something could not be read
    peak_mb = int(done.stderr.rsplit("VmHWM:", 1)[1].split()[0]) / 1024
    assert peak_mb < 200, f"the scan peaked at {peak_mb:.0f} MB: was the 200 MB record read whole?"
    summary = json.loads(done.stdout)
    records = {r["page_url"]: r for r in read_jsonl(out)}
    assert records[f"{SITE}/good.html"]["images"][0]["status"] == "scored"
    problems = {e["warc_file"]: e for e in summary["archive_errors"]}
    assert set(problems) == {paths["truncated"], paths["lying"], paths["not_warc"]}
    for name in ("truncated", "lying", "not_warc"):
        assert problems[paths[name]]["code"] == "warc_unreadable"
        assert problems[paths[name]]["message"].startswith(f"{paths[name]} at offset {problems[paths[name]]['offset']}")
    assert "neither a WARC file" in problems[paths["not_warc"]]["message"]
    # The records before the break are still scanned; the cut image fails (its bytes end early), it is not scored.
    assert problems[paths["truncated"]]["offset"] > 0 and "truncated" in problems[paths["truncated"]]["message"]
    for page in ("t.html", "l.html"):
        entry = records[f"{SITE}/{page}"]["images"][0]
        assert entry["status"] == "failed" and entry["error"]["code"] == "image_decode_failed" and "result" not in entry
    big_page = records[f"{SITE}/big.html"]
    assert big_page["error"]["code"] == "html_too_large" and big_page["images"] == []
    assert paths["huge"] in big_page["error"]["message"] and "at offset 0" in big_page["error"]["message"]
    big_image, good_image = records[f"{SITE}/small.html"]["images"]
    assert big_image["status"] == "failed" and big_image["error"]["code"] == "payload_too_large"
    assert f"{paths['huge']} at offset {big_image['offset']}" in big_image["error"]["message"]
    assert good_image["status"] == "scored"   # archived in another file: the index spans the crawl


def test_ten_thousand_images_on_one_page(tmp_path):
    """Scored in batches while the page is read (its references hold no bytes), every entry in page order."""
    path = str(tmp_path / "many.warc.gz")
    with WarcBuilder(path) as w:
        w.response(f"{SITE}/many.html", "".join(f'<img src="/i/{i}.png">' for i in range(10_000)).encode())
        for i in range(0, 10_000, 100):
            w.response(f"{SITE}/i/{i}.png", image_bytes(seed=i), "image/png")
    scorer = LocalScorer(Settings(detector=server_support.STUB), batch_images=16)
    out = tmp_path / "r.jsonl"
    summary = scan_crawl([path], scorer, ScanOptions(str(out), progress=False))
    [page] = read_jsonl(out)
    assert [e["url"] for e in page["images"]] == [f"{SITE}/i/{i}.png" for i in range(10_000)]
    assert page["counts"] == {"scored": 100, "not_archived": 9_900}
    assert all(e["status"] == "scored" for e in page["images"][::100])
    assert sum(scorer.detector.calls) == 100 and max(scorer.detector.calls) <= 16 and summary.unique_images == 100


def test_fetch_missing_scores_what_the_archive_lacks(tmp_path, stub_env, monkeypatch, image_server, capsys):
    """--fetch-missing: a referenced image not in the archive is fetched at scan time (the SSRF-safe fetcher) and
    marked `fetched`; one that cannot be fetched stays not_archived and says why."""
    live = image_server.add("/live.png", image_bytes(seed=70))
    gone = image_server.url("/gone.png")
    path = str(tmp_path / "c.warc.gz")
    with WarcBuilder(path) as w:
        w.response(f"{SITE}/p.html", f'<img src="{live}"><img src="{gone}"><img src="/a.png">'.encode())
        w.response(f"{SITE}/a.png", image_bytes(seed=71), "image/png")
    monkeypatch.setenv("GAMMA_FETCH_TEST_ALLOW", image_server.allow)
    out = tmp_path / "r.jsonl"
    assert cli.scan_main([path, "--local", "--fetch-missing", "--out", str(out), "--json", "--no-progress"]) == 0
    fetched, missing, archived = read_jsonl(out)[0]["images"]
    assert fetched["status"] == "fetched" and fetched["result"]["verdict"] and fetched["warc_file"] is None
    assert missing["status"] == "not_archived" and missing["fetch_error"]["code"] == "fetch_failed"
    assert archived["status"] == "scored"
    assert json.loads(capsys.readouterr().out)["statuses"] == {"fetched": 1, "not_archived": 1, "scored": 1}
    # Without the flag nothing is fetched.
    before = len(image_server.seen)
    assert cli.scan_main([path, "--local", "--out", str(out), "--no-progress"]) == 0
    assert len(image_server.seen) == before and read_jsonl(out)[0]["counts"] == {"not_archived": 2, "scored": 1}


def test_a_failing_scorer_fails_its_images_not_the_crawl(tmp_path):
    class Broken:
        batch_images = 2

        def score(self, images):
            raise RuntimeError("model went away")

    first, second = small_crawl(tmp_path)
    out = tmp_path / "r.jsonl"
    summary = scan_crawl([first, second], Broken(), ScanOptions(str(out), progress=False))
    entries = [e for record in read_jsonl(out) for e in record["images"]]
    failed = [e for e in entries if e["status"] == "failed"]
    assert len(failed) == 4 and all("model went away" in e["error"]["message"] for e in failed)
    assert summary.failed and summary.to_dict()["errors"] == {"internal_error": 4}

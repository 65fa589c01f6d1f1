"""Fixtures for the browser extension's end-to-end tests (imported by test_extension_e2e.py).

- ``gamma_server``: the real backend, ``gamma serve`` on an embedded Redis with the bundled
  default model, an API key created beforehand, CORS for the extension's fixed ID, and the
  test-only fetch allowance for the local test page (the server refuses loopback otherwise).
- ``test_site``: a local page with camera photos (Apache-2.0/BSD, ``tests/assets/photos``) and
  AI-generated images (MIT, ``tests/assets/ai``), both from the starter training set, a synthetic
  render added later, a small image, a thumbnail, an SVG logo, an image below the fold and a
  duplicate; it logs who fetched what (browser or the server's fetcher). ``add_edit_page`` adds a
  page with a photo given an AI-edited region (``edited_photo``) and the untouched photo.
- ``browser``: Debian's chromium (Playwright's ``executable_path``) with the unpacked
  extension in a persistent context, headless, one for every test that uses it in a row (closed after the last).
"""

from __future__ import annotations

import contextlib
import http.server
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, PngImagePlugin

from loopback import LoopbackServer

REPO = Path(__file__).resolve().parents[1]
AI_ASSETS = REPO / "tests" / "assets" / "ai"
PHOTO_ASSETS = REPO / "tests" / "assets" / "photos"
EXTENSION_DIR = REPO / "extension"
EXTENSION_ID = "adekeboiokppcnjpkdfkccinkodhhgab"  # from the manifest's fixed "key"
EXTENSION_ORIGIN = f"chrome-extension://{EXTENSION_ID}"
ARTIFACTS = Path(os.environ.get("GAMMA_E2E_ARTIFACTS", REPO / "test-artifacts" / "extension"))


def _require(condition: bool, reason: str) -> None:
    """Skip on a developer machine without the tools; fail in CI, where a skip would hide a gap."""
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def chromium_path() -> str | None:
    for candidate in (os.environ.get("GAMMA_E2E_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- test page

def _synthetic_render(seed: int, size: int = 384) -> Image.Image:
    """A clean procedural render (smooth gradients, perfect shapes): a stand-in 'generated' image."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    top, bottom = rng.uniform(0.2, 1.0, 3), rng.uniform(0.0, 0.6, 3)
    sky = (top[None, None, :] * (1 - y[..., None]) + bottom[None, None, :] * y[..., None])
    image = (sky * 255).astype(np.uint8)
    picture = Image.fromarray(image)
    draw = ImageDraw.Draw(picture)
    cx, cy, r = rng.uniform(0.25, 0.75) * size, rng.uniform(0.2, 0.4) * size, size * 0.12
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=tuple(int(v) for v in rng.integers(200, 256, 3)))
    for layer in range(3):
        phase, amp = rng.uniform(0, 6.28), rng.uniform(0.04, 0.1)
        base = 0.55 + 0.12 * layer
        colour = tuple(int(v) for v in rng.integers(20, 120, 3))
        points = [(0, size)] + [(i, size * (base + amp * np.sin(i / size * 9 + phase))) for i in range(0, size + 1, 4)] + [(size, size)]
        draw.polygon(points, fill=colour)
    return picture.filter(ImageFilter.GaussianBlur(0.6))


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


SVG_LOGO = b"""<svg xmlns="http://www.w3.org/2000/svg" width="200" height="200" viewBox="0 0 200 200">
<rect width="200" height="200" rx="32" fill="#1d4ed8"/><circle cx="100" cy="100" r="56" fill="#fde047"/></svg>"""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>The Daily Pixel — test page</title>
<style>
  body {{ font: 16px/1.5 Georgia, serif; margin: 0; background: #fff; color: #222; }}
  header {{ display: flex; align-items: center; gap: 12px; padding: 10px 32px; border-bottom: 3px solid #222; }}
  header h1 {{ font-size: 26px; margin: 0; }}
  main {{ max-width: 980px; margin: 0 auto; padding: 16px 32px; }}
  .grid {{ display: grid; grid-template-columns: repeat(3, 1fr); gap: 20px 24px; align-items: start; }}
  figure {{ margin: 0; }}
  figcaption {{ font-size: 13px; color: #666; }}
  img {{ display: block; }}
  /* pages restyle everything; the extension's overlays must not care */
  div, button, span {{ font-family: "Comic Sans MS", cursive !important; color: magenta; }}
  .spacer {{ height: 1600px; }}
</style></head>
<body>
<header><img id="logo" src="logo.svg" width="40" height="40" alt="logo"><h1>The Daily Pixel</h1>
  <img id="small" src="small.png" width="64" height="64" alt="avatar"></header>
<main>
  <p>Which of these pictures were made by an image generator?</p>
  <div class="grid">
    <figure><img id="real1" src="photos/robin.jpg" width="300" height="200" alt="robin"><figcaption>A robin (photo, Apache-2.0/BSD)</figcaption></figure>
    <figure><img id="ai1" src="ai/flux1.webp" width="256" height="256" alt="flux"><figcaption>FLUX.1 (AI-generated, MIT)</figcaption></figure>
    <figure><img id="real2" src="photos/lake.jpg" width="300" height="200" alt="lake"><figcaption>A lake (photo, Apache-2.0/BSD)</figcaption></figure>
    <figure><img id="ai2" src="ai/qwen-image.webp" width="220" height="220" alt="qwen"><figcaption>Qwen-Image (AI-generated, MIT)</figcaption></figure>
    <figure><img id="real1dup" src="photos/robin.jpg#again" width="210" height="140" alt="robin again"><figcaption>The same robin again</figcaption></figure>
    <aside><img id="thumb" src="photos/tree.jpg" width="96" height="64" alt="tree thumbnail">
      <p>Related: a thumbnail (too small to check on a scan).</p></aside>
  </div>
  <div class="spacer"></div>
  <figure><img id="lazy" src="photos/street.jpg" loading="lazy" width="480" height="360" alt="street"><figcaption>A street (photo, Apache-2.0/BSD)</figcaption></figure>
</main>
</body></html>
"""


# Provenance evidence (README: Provenance evidence): a C2PA-signed AI image whose signer the server trusts,
# generator parameters in a PNG, and a camera photo with EXIF.
PROVENANCE_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Provenance</title></head><body>
<img id="signed" src="provenance/signed.jpg" width="300" height="200" alt="signed">
<img id="params" src="provenance/params.png" width="256" height="256" alt="parameters">
<img id="camera" src="photos/street.jpg" width="320" height="240" alt="camera">
</body></html>"""


def _provenance_files() -> tuple[dict[str, bytes], bytes]:
    """The provenance page's files, and the root certificate the server is told to trust."""
    from evidence_support import created, encode, make_chain, sign, textured

    chain = make_chain("Gamma E2E Signer")
    signed = sign((PHOTO_ASSETS / "lake.jpg").read_bytes(), "image/jpeg", chain,
                  [created("trainedAlgorithmicMedia", agent="Acme Diffusion 3")])
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a lighthouse\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 256x256, "
                                "Model: lighthouseXL")
    files = {"provenance.html": PROVENANCE_PAGE.encode(), "provenance/signed.jpg": signed,
             "provenance/params.png": encode(textured(256, 256), "PNG", pnginfo=info)}
    return files, chain.root


# A photo with an AI-edited region (made as train/local_edit.py makes the local-edit protocol's edits) beside the
# untouched photo, each shown at another size than its own (the outline is drawn at the displayed size).
EDIT_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>An edited photo</title>
<style>body { margin: 0; padding: 24px; font: 15px/1.4 Georgia, serif; } img { display: block; margin-bottom: 360px; }</style>
</head><body>
<img id="edited" src="edits/robin-edited.jpg" width="570" height="381" alt="a robin with an AI-edited region">
<img id="untouched" src="photos/robin.jpg" width="300" height="200" alt="the robin, untouched">
</body></html>"""


def edited_photo(photo: str = "robin.jpg", donor: str = "qwen-image.webp", seed: int = 1) -> bytes:
    """A fixture photo with a region of a fixture AI image pasted in by the project's own local edit
    (gamma_detect.train.local_edit), as a JPEG (quality 90). The default, robin.jpg with a box of
    qwen-image.webp Poisson-cloned in (seed 1), is a region the default model marks."""
    from gamma_detect.train.local_edit import local_edit

    image = np.asarray(Image.open(PHOTO_ASSETS / photo).convert("RGB"))
    region = np.asarray(Image.open(AI_ASSETS / donor).convert("RGB"))
    edited, _, _ = local_edit(image, region, np.random.default_rng(seed))
    buffer = io.BytesIO()
    Image.fromarray(edited).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def add_edit_page(site: "LocalSite") -> str:
    """Serve EDIT_PAGE and its edited photo from ``site``; returns the page's URL."""
    if "edits/robin-edited.jpg" not in site.files:
        site.files["edits/robin-edited.jpg"] = edited_photo()
        site.files["photos/robin.jpg"] = (PHOTO_ASSETS / "robin.jpg").read_bytes()
        site.files["edited.html"] = EDIT_PAGE.encode()
    return site.page("edited.html")


@dataclass
class LocalSite:
    url: str
    port: int
    files: dict[str, bytes]
    requests: list[tuple[str, str]] = field(default_factory=list)  # (path, user agent)
    trust_anchor: bytes = b""   # PEM root the server trusts for C2PA (the signer of provenance/signed.jpg)

    def page(self, name: str = "index.html") -> str:
        return f"{self.url}/{name}"

    def fetched_by(self, path: str) -> list[str]:
        return [agent for p, agent in self.requests if p.split("?")[0] == path]


def _site_files() -> dict[str, bytes]:
    photos = {name: (PHOTO_ASSETS / name).read_bytes() for name in ("robin.jpg", "lake.jpg", "tree.jpg", "street.jpg")}
    files = {
        "index.html": PAGE.format().encode(),
        "logo.svg": SVG_LOGO,
        "small.png": _png(Image.open(io.BytesIO(photos["tree.jpg"])).resize((64, 64))),
        # Training-set photos and AI-generated images, as published (tests/assets/*/README.md).
        **{f"photos/{name}": data for name, data in photos.items()},
        "ai/flux1.webp": (AI_ASSETS / "flux1.webp").read_bytes(),
        "ai/qwen-image.webp": (AI_ASSETS / "qwen-image.webp").read_bytes(),
        "renders/later.png": _png(_synthetic_render(11, 300)),
    }
    return files


@contextlib.contextmanager
def serve_files(files: dict[str, bytes], trust_anchor: bytes = b""):
    """A local site serving ``files`` (path -> bytes; the dict may grow while it runs), logging every request.
    Also used by bench/extension_device.py."""
    site = LocalSite(url="", port=0, files=files, trust_anchor=trust_anchor)
    types = {".html": "text/html; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png", ".jpg": "image/jpeg", ".webp": "image/webp"}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            path = self.path.split("#")[0]
            name = path.split("?")[0].lstrip("/") or "index.html"
            site.requests.append(("/" + name + (("?" + path.split("?", 1)[1]) if "?" in path else ""), self.headers.get("User-Agent", "")))
            body = files.get(name)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", types.get(os.path.splitext(name)[1], "application/octet-stream"))
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = LoopbackServer(("127.0.0.1", 0), Handler)
    site.port = server.server_address[1]
    site.url = f"http://127.0.0.1:{site.port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def test_site():
    files = _site_files()
    provenance, anchor = _provenance_files()
    files.update(provenance)
    with serve_files(files, anchor) as site:
        yield site


# --------------------------------------------------------------------------- the backend

def _http_json(method: str, url: str, body: bytes | None = None, headers: dict | None = None, timeout: float = 40):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


@dataclass
class GammaServer:
    url: str
    port: int
    api_key: str
    slow_key: str
    env: dict
    log_path: Path
    process: subprocess.Popen | None = None

    def start(self, timeout: float = 180) -> None:
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gamma_detect.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=str(REPO))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gamma serve exited ({self.process.returncode}):\n{self.log_tail()}")
            with contextlib.suppress(OSError, ValueError):
                status, body = _http_json("GET", self.url + "/readyz", timeout=2)
                if status == 200:
                    return
            time.sleep(0.3)
        raise RuntimeError(f"gamma serve not ready in {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ensure_running(self) -> "GammaServer":
        if not self.running:
            self.start()
        return self

    def log_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    # direct API calls: what the backend itself says, to compare with what the extension shows
    def analyze_bytes(self, data: bytes, filename: str = "image.jpg") -> dict:
        boundary = "gammae2e" + os.urandom(6).hex()
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{filename}\"\r\n"
                f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}", "Authorization": f"Bearer {self.api_key}"}
        status, answer = _http_json("POST", self.url + "/v1/analyze", body, headers)
        if status == 200:
            return answer
        assert status == 202, (status, answer)
        for _ in range(10):
            status, job = _http_json("GET", self.url + answer["status_url"] + "?wait=20",
                                     headers={"Authorization": f"Bearer {self.api_key}"})
            if job["status"] == "finished":
                return job["result"]
            assert job["status"] in ("queued", "started"), job
        raise AssertionError("the job did not finish")

    def metric(self, name: str, **labels) -> float:
        with urllib.request.urlopen(self.url + "/metrics", timeout=10) as response:
            text = response.read().decode()
        total = 0.0
        for line in text.splitlines():
            if not line.startswith(name) or line.startswith("#"):
                continue
            head, _, value = line.rpartition(" ")
            if all(f'{k}="{v}"' in head for k, v in labels.items()):
                total += float(value)
        return total


def default_model_present() -> bool:
    return (REPO / "models" / "default" / "manifest.json").is_file()


@pytest.fixture(scope="session")
def gamma_server(test_site, tmp_path_factory):
    detector = os.environ.get("GAMMA_E2E_DETECTOR", "")  # e.g. stub_detector:make_detector (tests/stub_detector.py)
    model = os.environ.get("GAMMA_E2E_MODEL", "")  # another model folder instead of the bundled default
    _require(bool(detector or model) or default_model_present(),
             "no bundled default model in models/default (GAMMA_E2E_MODEL or GAMMA_E2E_DETECTOR name another)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    data_dir = tmp_path_factory.mktemp("gamma-data")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAMMA_") and k != "REDIS_URL"}
    env.update({
        "GAMMA_DATA_DIR": str(data_dir),
        "GAMMA_ALLOWED_ORIGINS": EXTENSION_ORIGIN,
        # TESTS ONLY: the server may fetch from the local test page (it refuses loopback otherwise)
        "GAMMA_FETCH_TEST_ALLOW": f"127.0.0.1:{test_site.port}",
        "GAMMA_LOG_LEVEL": "WARNING",
        "GAMMA_C2PA_TRUST_ANCHORS": str(data_dir / "c2pa-anchors.pem"),
        "PYTHONUNBUFFERED": "1",
    })
    (data_dir / "c2pa-anchors.pem").write_bytes(test_site.trust_anchor)
    if detector:
        env["GAMMA_DETECTOR"] = detector
        # The test doubles live in tests/, which the server's process imports them from.
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "tests"), env.get("PYTHONPATH")) if p)
    if model:
        env["GAMMA_MODEL"] = model
    # A key makes the server require keys: the extension's Authorization header is tested too.
    # A second key allows one check every 5 s: the extension's 429 handling meets the real limiter.
    # (Keys are created before the server starts: the embedded Redis belongs to one process at a time.)
    keys = []
    for name, extra in (("extension-e2e", []), ("extension-e2e-slow", ["--rate", "0.2", "--burst", "1"])):
        created = subprocess.run([sys.executable, "-m", "gamma_detect.cli", "keys", "create", name, *extra],
                                 env=env, capture_output=True, text=True, timeout=120, cwd=str(REPO))
        assert created.returncode == 0, created.stderr
        keys.append(created.stdout.strip().splitlines()[-1])
    port = free_port()
    server = GammaServer(url=f"http://127.0.0.1:{port}", port=port, api_key=keys[0], slow_key=keys[1],
                         env=env, log_path=ARTIFACTS / "gamma-serve.log")
    server.log_path.write_bytes(b"")
    server.start()
    yield server
    server.stop()


# --------------------------------------------------------------------------- the browser

@dataclass
class ExtensionBrowser:
    context: object
    worker: object

    def sw(self, expression: str, arg=None):
        """Evaluate in the extension's service worker (globalThis.gammaDetect is its handle)."""
        return self.worker.evaluate(expression, arg)

    def configure(self, **settings) -> None:
        self.sw("(s) => chrome.storage.local.set(s)", settings)
        # the worker re-reads settings on the storage change; wait until it has
        for _ in range(50):
            current = self.sw("() => gammaDetect.getSettings()")
            if all(current.get(k) == v for k, v in settings.items() if k != "serverUrl"):
                return
            time.sleep(0.1)

    def tab_id(self, page) -> int:
        tab_id = self.sw("async (url) => { const tabs = await chrome.tabs.query({}); "
                         "const t = tabs.find((t) => t.url === url); return t ? t.id : null; }", page.url)
        assert tab_id is not None, f"no tab for {page.url}"
        return tab_id

    def state(self, page) -> dict:
        return self.sw("([id]) => gammaDetect.tabState(id, true)", [self.tab_id(page)])

    def context_click(self, page, selector: str) -> dict:
        """Right-click the image (the content script notes the target), then run the menu's handler."""
        page.locator(selector).scroll_into_view_if_needed()
        page.click(selector, button="right")
        page.keyboard.press("Escape")
        src = page.eval_on_selector(selector, "img => img.currentSrc || img.src")
        return self.sw(
            "async ([id, src, pageUrl]) => gammaDetect.handleContextMenuClick("
            "{menuItemId: gammaDetect.MENU_ID, srcUrl: src, pageUrl, frameId: 0, mediaType: 'image'}, "
            "await chrome.tabs.get(id))",
            [self.tab_id(page), src, page.url])

    def marked(self, heatmap_url: str) -> np.ndarray:
        """The pixels of a result's heatmap (the server's or the device's PNG, through the worker) that stand out:
        the overlay's alpha is floor(m * HEATMAP_MAX_ALPHA / 255) with m = round(255 * map), so the alpha of m = 128
        (90) or more says exactly that the map is above 0.5 (its colour channels are lost where it is transparent:
        canvases keep premultiplied pixels)."""
        from gamma_detect.contract import HEATMAP_MAX_ALPHA
        import base64

        answer = self.sw("(path) => gammaDetect.handlers['gamma:heatmap']({path})", heatmap_url)
        assert answer and answer["ok"], answer
        rgba = np.asarray(Image.open(io.BytesIO(base64.b64decode(answer["base64"]))).convert("RGBA"))
        return rgba[..., 3] >= 128 * HEATMAP_MAX_ALPHA // 255

    def wait_for(self, page, predicate, timeout: float = 180, what: str = "condition") -> dict:
        deadline = time.monotonic() + timeout
        state = None
        while time.monotonic() < deadline:
            state = self.state(page)
            if state.get("ok") and predicate(state):
                return state
            time.sleep(0.25)
        raise AssertionError(f"timed out waiting for {what}; last page state:\n{json.dumps(state, indent=1)[:4000]}")


@contextlib.contextmanager
def launch_extension(profile: Path, extension: Path = EXTENSION_DIR):
    """Debian's chromium with the unpacked extension in a persistent context (headless): an ExtensionBrowser.
    Also used by bench/extension_device.py."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=chromium_path(),
            headless=True,  # Chromium's own headless mode, which loads extensions
            viewport={"width": 1280, "height": 900},
            args=[
                f"--disable-extensions-except={extension}",
                f"--load-extension={extension}",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
            ],
        )
        try:
            worker = context.service_workers[0] if context.service_workers else context.wait_for_event("serviceworker", timeout=30000)
            assert worker.url == f"{EXTENSION_ORIGIN}/service_worker.js", worker.url
            yield ExtensionBrowser(context, worker)
        finally:
            context.close()


# One browser for the tests that use it, whichever modules they are in (each module that imports ext_browser gets its
# own fixture, and a second sync_playwright() while one is open fails: "Sync API inside the asyncio loop"). It closes
# once no test still to run needs it: left open, Playwright's driver is a child of this process while other modules
# run, where tests/test_worker_processes.py kills this process's children.
_SHARED = contextlib.ExitStack()
_BROWSER: list[ExtensionBrowser] = []


def _needed_later(request: pytest.FixtureRequest) -> bool:
    items = request.session.items
    last = max(i for i, item in enumerate(items) if getattr(item, "module", None) is request.module)
    return any("ext_browser" in getattr(item, "fixturenames", ()) for item in items[last + 1:])


def _close_browser() -> None:
    _BROWSER.clear()
    _SHARED.close()


@pytest.fixture(scope="module")
def ext_browser(request, tmp_path_factory):
    _require(chromium_path() is not None, "Debian's chromium is not installed (apt-get install -y chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _require(False, "Playwright for Python is not installed (pip install playwright)")
    if not _BROWSER:
        _BROWSER.append(_SHARED.enter_context(launch_extension(tmp_path_factory.mktemp("chromium-profile"))))
        request.config.add_cleanup(_close_browser)   # a run stopped early (-x, Ctrl-C)
    yield _BROWSER[0]
    if not _needed_later(request):
        _close_browser()


@pytest.fixture()
def ext_page(ext_browser):
    page = ext_browser.context.new_page()
    yield page
    page.close()


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path))
    return path


__all__ = ["EXTENSION_ID", "EXTENSION_ORIGIN", "ARTIFACTS", "GammaServer", "ExtensionBrowser", "LocalSite", "launch_extension", "serve_files",
           "add_edit_page", "edited_photo",
           "ext_browser", "ext_page", "gamma_server", "test_site", "screenshot"]

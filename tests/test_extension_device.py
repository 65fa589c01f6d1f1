"""The extension on device (issue 23): Debian's chromium with the unpacked extension (its vendor/
folder built by `npm run build`), mode "device", and no gamma server running: a listener on the
configured server's port records any connection, the local test site records every request.

Needs what test_extension_e2e.py needs, plus `npm ci && npm run build` in extension/ (tests/run.sh).
"""

from __future__ import annotations

import socket
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest_extension import EXTENSION_DIR, ext_browser, ext_page, test_site  # noqa: E402,F401

pytestmark = pytest.mark.slow

VERDICTS = ("real", "likely_real", "uncertain", "likely_ai", "ai")
FINAL = ("done", "error", "skipped")


class Listener:
    """A TCP port where the gamma server would be: counts every connection (none may come)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self):
        self.sock.close()


@pytest.fixture(scope="module")
def no_server():
    listener = Listener()
    yield listener
    listener.close()


@pytest.fixture()
def device(ext_browser, no_server):
    assert (EXTENSION_DIR / "vendor" / "model" / "bundle.json").is_file(), \
        "the on-device runtime is not built: run `npm ci && npm run build` in extension/"
    ext_browser.configure(serverUrl=f"http://127.0.0.1:{no_server.port}", apiKey="", sendMode="url",
                          sendPageUrl=False, badgeUncertain=True, autoScanSites=[], mode="device")
    ext_browser.sw("() => gammaDetect.cache.clear()")
    yield ext_browser
    ext_browser.configure(mode="server")


def image(state: dict, element_id: str) -> dict | None:
    return next((e for e in state.get("images", []) if e.get("elementId") == element_id), None)


def final(element_id: str):
    return lambda s: (image(s, element_id) or {}).get("state") in FINAL


def test_device_check_from_the_menu_without_a_server(device, ext_page, test_site, no_server):
    page = ext_page
    page.goto(test_site.page())
    page.wait_for_load_state("load")
    before = list(test_site.requests)
    for selector in ("#ai1", "#real1"):
        answer = device.context_click(page, selector)
        assert answer and answer["ok"] and answer["found"], answer
        state = device.wait_for(page, final(selector[1:]), timeout=120, what=f"the on-device result on {selector}")
        entry = image(state, selector[1:])
        assert entry["state"] == "done", entry["error"]
        assert entry["verdict"] in VERDICTS
        assert "Checked on this device" in entry["panel"]["text"], entry["panel"]["text"]
    assert no_server.connections == 0
    fetched = [path for path, _ in test_site.requests[len(before):]]
    assert sorted(set(fetched)) <= ["/ai/flux1.webp", "/photos/robin.jpg"], fetched

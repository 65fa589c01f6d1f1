"""End-to-end tests of the browser extension: Debian's chromium driven by Playwright for Python,
the unpacked extension loaded in a persistent context, the real backend (`gamma serve`, embedded
Redis, bundled default model) started by the fixture, and a local test page.

Native context menus can't be clicked by Playwright: the tests right-click the image (so the
content script sees the target) and then call the menu's handler in the service worker.
The overlays live in a closed shadow root: the tests read them through the extension
(`gammaDetect.tabState(tab, true)` asks the content script) and click them with the mouse at
the coordinates it reports. Screenshots go to test-artifacts/extension/.

Needs: `apt-get install -y chromium`, `pip install playwright` (no `playwright install`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest_extension import (  # noqa: E402,F401  (fixtures are used by name)
    EXTENSION_ID,
    add_edit_page,
    ext_browser,
    ext_page,
    gamma_server,
    screenshot,
    test_site,
)

pytestmark = pytest.mark.slow

WORDS = {"real": "Real", "likely_real": "Likely real", "uncertain": "Uncertain", "likely_ai": "Likely AI-generated",
         "ai": "AI-generated"}
SHORT = {"real": "Real", "likely_real": "Likely real", "uncertain": "Unsure", "likely_ai": "Likely AI", "ai": "AI"}
FINAL = ("done", "error", "skipped")


def percent(p: float) -> str:
    """The extension's formatProbability."""
    pct = round(min(1.0, max(0.0, p)) * 100 + 1e-9)
    if pct == 0 and p > 0:
        return "<1%"
    if pct == 100 and p < 1:
        return ">99%"
    return f"{pct}%"


def image(state: dict, element_id: str) -> dict | None:
    for entry in state.get("images", []):
        if entry.get("elementId") == element_id:
            return entry
    return None


def image_state(element_id: str):
    def check(state):
        entry = image(state, element_id)
        return entry is not None and entry["state"] in FINAL
    return check


def click_center(page, rect: dict) -> None:
    page.mouse.click(rect["x"] + rect["width"] / 2, rect["y"] + rect["height"] / 2)


def click_settled(ready, page, element_id: str, button: str) -> None:
    """Click a panel button once its box has stopped moving. The panel lays out over several frames (its text
    arrives, it moves off the picture), and a click computed from an earlier frame lands beside the button
    (seen in CI): three equal reads, a quarter second apart, before clicking."""
    seen: list = []

    def settled(state) -> bool:
        panel = (image(state, element_id) or {}).get("panel") or {}
        seen.append(panel.get("buttons", {}).get(button))
        return seen[-1] is not None and seen[-3:] == [seen[-1]] * 3

    ready.wait_for(page, settled, what=f"the {button} button of {element_id} to settle")
    click_center(page, seen[-1])


def beside(panel: dict, img: dict) -> bool:
    """Whether a panel's box leaves the image's box uncovered."""
    return (panel["x"] >= img["x"] + img["width"] or panel["x"] + panel["width"] <= img["x"]
            or panel["y"] >= img["y"] + img["height"] or panel["y"] + panel["height"] <= img["y"])


def placed_beside(ext, page, element_id: str) -> dict:
    """The image's entry once its open panel sits beside the picture. The layout places a panel on the next
    animation frame after its content changes (a result is taller than the progress it replaces), later on a
    loaded machine: CI once read the panel still where the shorter one had fitted, over the picture."""
    def check(state) -> bool:
        entry = image(state, element_id) or {}
        return bool(entry.get("panel")) and beside(entry["panel"]["rect"], entry["imageRect"])
    return image(ext.wait_for(page, check, timeout=10, what=f"the panel of {element_id} beside its picture"), element_id)


def _decode_alpha(data_url: str):
    import base64
    import io

    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))).convert("RGBA"))[..., 3]


def check_outlines(ext, page, site) -> dict:
    """Right-click the edit page's edited photo, then its untouched one (server or device mode: one code path). The
    edited one's outline is drawn over the picture on the boundary of what its heatmap marks and around the result's
    region; the untouched one says that no region stands out and draws none; neither panel covers its image.
    Returns the edited photo's entry."""
    import cv2
    import numpy as np

    page.goto(add_edit_page(site))
    page.wait_for_load_state("load")
    answer = ext.context_click(page, "#edited")
    assert answer and answer["ok"] and answer["found"], answer

    def outlined(s) -> bool:
        e = image(s, "edited") or {}
        drawn = ((e.get("heatmap") or {}).get("outline") or {}).get("png")
        return e.get("state") in FINAL and (e["state"] != "done" or e["region"] is None or bool(drawn))
    entry = image(ext.wait_for(page, outlined, what="the edited photo's outline"), "edited")
    assert entry["state"] == "done", entry["error"]
    assert entry["region"], "the model marks no region on the edited photo: pick an edit it marks (conftest_extension.edited_photo)"
    outline, img = entry["heatmap"]["outline"], entry["imageRect"]
    assert outline["segments"] > 0 and not entry["heatmap"]["shown"]   # the outline alone, without "Show where"
    for key in ("x", "y", "width", "height"):
        assert outline["rect"][key] == pytest.approx(img[key], abs=1.5), key
    assert "Outlined on the picture: the region that stands out" in entry["panel"]["text"]
    placed_beside(ext, page, "edited")

    # every pixel drawn lies on the boundary of the map's marked pixels, shown at the picture's size (within the
    # line's half width, its anti-aliasing and a map pixel's rounding), and the whole boundary is drawn
    drawn = _decode_alpha(outline["png"]) > 0
    h, w = drawn.shape
    shown = cv2.resize(ext.marked(entry["heatmap"]["path"]).astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
    kernel = np.ones((3, 3), np.uint8)
    inner = shown != cv2.erode(shown, kernel, borderValue=0)
    edge = inner | (shown != cv2.dilate(shown, kernel))
    from_edge = cv2.distanceTransform((~edge).astype(np.uint8), cv2.DIST_L2, 5)
    assert drawn.any() and from_edge[drawn].max() <= 4.5, from_edge[drawn].max()
    from_line = cv2.distanceTransform((~drawn).astype(np.uint8), cv2.DIST_L2, 5)
    assert np.mean(from_line[inner] <= 1.5) >= 0.98, np.mean(from_line[inner] <= 1.5)
    # and it goes round the region the result names (its box: fractions of the picture)
    ys, xs = np.nonzero(drawn)
    x0, y0, x1, y1 = (v * s for v, s in zip(entry["region"]["box"], (w, h, w, h)))
    assert xs.min() <= x0 + 3 and ys.min() <= y0 + 3 and xs.max() >= x1 - 4 and ys.max() >= y1 - 4, (entry["region"], xs.min(), ys.min(), xs.max(), ys.max())

    answer = ext.context_click(page, "#untouched")
    assert answer and answer["ok"] and answer["found"], answer
    untouched = image(ext.wait_for(page, image_state("untouched"), what="the untouched photo's result"), "untouched")
    assert untouched["state"] == "done", untouched["error"]
    assert untouched["region"] is None, untouched
    assert "No region stands out" in untouched["panel"]["text"]
    assert untouched["panel"]["buttons"]["where"]["disabled"]
    assert (untouched["heatmap"] or {}).get("outline") is None
    placed_beside(ext, page, "untouched")
    return entry


@pytest.fixture()
def ready(gamma_server, ext_browser):
    """The extension pointed at the running server (default privacy mode: URL), its cache empty."""
    gamma_server.ensure_running()
    ext_browser.configure(serverUrl=gamma_server.url, apiKey=gamma_server.api_key, sendMode="url",
                          sendPageUrl=False, badgeUncertain=True, autoScanSites=[])
    ext_browser.sw("() => gammaDetect.cache.clear()")
    return ext_browser


def open_page(page, test_site):
    page.goto(test_site.page())
    page.wait_for_load_state("load")
    return page


def check_from_menu(ext, page, selector: str) -> dict:
    answer = ext.context_click(page, selector)
    assert answer and answer["ok"] and answer["found"], answer
    state = ext.wait_for(page, image_state(selector.lstrip("#")), what=f"the result on {selector}")
    return image(state, selector.lstrip("#"))


def test_context_menu_overlay_shows_the_backends_verdict(ready, ext_page, gamma_server, test_site):
    page = open_page(ext_page, test_site)
    for selector, path in (("#real1", "photos/robin.jpg"), ("#ai1", "ai/flux1.webp")):
        entry = check_from_menu(ready, page, selector)
        assert entry["state"] == "done", entry["error"]
        expected = gamma_server.analyze_bytes(test_site.files[path], Path(path).name)
        assert entry["verdict"] == expected["verdict"]
        assert entry["probability"] == pytest.approx(expected["ai_probability"], abs=1e-9)
        assert entry["sha256"] == expected["image"]["sha256"]
        text = entry["panel"]["text"]
        assert WORDS[expected["verdict"]] in text
        assert percent(expected["ai_probability"]) in text
        assert expected["model"]["name"] in text and str(expected["model"]["version"]) in text
        assert "What does this score mean? It can be wrong." in text
        assert {"where", "report", "explain", "close"} <= set(entry["panel"]["buttons"])
        # the page's `div, span { font-family: Comic Sans !important }` doesn't reach the shadow root
        assert "Comic" not in entry["panel"]["style"]["fontFamily"]
        # the panel sits beside the image, not over it
        placed_beside(ready, page, selector.lstrip("#"))
    # URL mode (the default): the server fetched the image itself, the extension uploaded nothing
    assert any(agent.startswith("gamma-detect/") for agent in test_site.fetched_by("/photos/robin.jpg"))
    page.mouse.move(0, 0)
    screenshot(page, "context-menu-overlay.png")


def test_show_where_draws_the_heatmap_over_the_image(ready, ext_page, test_site):
    page = open_page(ext_page, test_site)
    entry = check_from_menu(ready, page, "#ai1")
    assert entry["state"] == "done", entry["error"]
    where = entry["panel"]["buttons"]["where"]
    assert where["text"] == "Show where" and not where["disabled"]
    click_settled(ready, page, "ai1", "where")
    def drawn_and_uncovered(s):
        e = image(s, "ai1")
        # the panel moves off the picture while the heatmap shows
        return (e["heatmap"] or {}).get("drawn") and e["heatmap"]["shown"] and \
            e["panel"]["rect"]["y"] >= e["imageRect"]["y"] + e["imageRect"]["height"]
    state = ready.wait_for(page, drawn_and_uncovered, what="the heatmap, uncovered")
    entry = image(state, "ai1")
    heatmap, img = entry["heatmap"], entry["imageRect"]
    assert heatmap["error"] is None
    # the server renders the overlay at the image's own size; it is stretched over the image box
    assert (heatmap["canvas"]["width"], heatmap["canvas"]["height"]) == (400, 400)  # flux1.webp
    for key in ("x", "y", "width", "height"):
        assert heatmap["rect"][key] == pytest.approx(img[key], abs=1.5), key
    assert entry["panel"]["buttons"]["where"]["text"] == "Hide where"
    page.mouse.move(0, 0)
    screenshot(page, "heatmap.png")
    click_settled(ready, page, "ai1", "where")
    ready.wait_for(page, lambda s: not image(s, "ai1")["heatmap"]["shown"], what="the heatmap to hide")


def test_outline_marks_the_edited_region_and_none_on_the_untouched_photo(ready, ext_page, test_site):
    check_outlines(ready, ext_page, test_site)
    ext_page.mouse.move(0, 0)
    screenshot(ext_page, "outline.png")


def test_page_scan_badges_every_eligible_image_and_skips_small_ones(ready, ext_browser, ext_page, gamma_server, test_site):
    page = open_page(ext_page, test_site)
    tab = ready.tab_id(page)
    # the popup's switch sends this to the worker
    answer = ready.sw("([tabId]) => gammaDetect.handlers['gamma:scanTab']({tabId, on: true})", [tab])
    assert answer["ok"] and answer["scanning"], answer
    eligible = {"real1": "photos/robin.jpg", "ai1": "ai/flux1.webp", "real2": "photos/lake.jpg",
                "ai2": "ai/qwen-image.webp", "real1dup": "photos/robin.jpg"}
    skipped = {"logo": "graphic", "small": "too_small", "thumb": "too_small"}
    state = ready.wait_for(page, lambda s: all(image_state(i)(s) for i in [*eligible, *skipped]) and s["counts"]["pending"] == 0,
                           what="the scan of the visible images")
    assert state["scanning"]
    for element_id, path in eligible.items():
        entry = image(state, element_id)
        assert entry["state"] == "done", (element_id, entry["error"])
        expected = gamma_server.analyze_bytes(test_site.files[path], Path(path).name)
        assert entry["verdict"] == expected["verdict"], element_id
        assert entry["badge"]["text"] == f"{SHORT[expected['verdict']]} {percent(expected['ai_probability'])}", element_id
        assert entry["badge"]["rect"]["width"] > 0
    for element_id, reason in skipped.items():
        entry = image(state, element_id)
        assert entry["state"] == "skipped" and entry["reason"] == reason, entry
        assert entry["badge"]["text"].startswith("Skipped"), entry
    # below the fold: not checked until it scrolls into view
    lazy = image(state, "lazy")
    assert lazy is None or lazy["state"] not in ("done", "checking")
    counts = state["counts"]
    assert counts["checked"] == 5 and counts["skipped"] == 3 and counts["errors"] == 0
    assert counts["ai"] + counts["real"] + counts["uncertain"] == 5

    page.evaluate("() => window.scrollTo(0, document.body.scrollHeight)")
    ready.wait_for(page, image_state("lazy"), what="the image below the fold")
    # an image added later (MutationObserver)
    page.evaluate("""() => { const img = new Image(300, 300); img.id = 'later'; img.src = 'renders/later.png';
                             document.querySelector('main').append(img); img.scrollIntoView(); }""")
    state = ready.wait_for(page, image_state("later"), what="the image added later")
    assert image(state, "lazy")["state"] == "done" and image(state, "later")["state"] == "done"
    assert state["counts"]["checked"] == 7

    # the popup shows the server's health and this page's counts
    popup = ext_browser.context.new_page()
    popup.set_viewport_size({"width": 330, "height": 480})
    popup.goto(f"chrome-extension://{EXTENSION_ID}/popup/popup.html?tabId={tab}")
    popup.wait_for_function("() => document.getElementById('server-status').textContent === 'Server ready'", timeout=20000)
    popup.wait_for_function("() => document.getElementById('count-checked').textContent === '7'", timeout=10000)
    assert popup.locator("#count-skipped").text_content() == "3"
    assert popup.locator("#scan-toggle").is_checked()
    screenshot(popup, "popup.png")
    popup.close()

    # a badge opens the full result; the README's screenshot
    page.evaluate("() => window.scrollTo(0, 0)")
    state = ready.wait_for(page, lambda s: image(s, "ai1")["badge"]["rect"]["y"] > 0, what="badges to follow the scroll")
    click_center(page, image(state, "ai1")["badge"]["rect"])
    click_settled(ready, page, "ai1", "where")
    ready.wait_for(page, lambda s: (image(s, "ai1")["heatmap"] or {}).get("drawn"), what="the heatmap")
    page.mouse.move(0, 0)
    screenshot(page, "page-scan.png")

    # Options: "no badge for uncertain results" applies to the open page at once
    ready.configure(badgeUncertain=False)
    ready.wait_for(page, lambda s: all((e["badge"] is None) == (e["verdict"] == "uncertain")
                                       for e in s["images"] if e["state"] == "done" and not e["panel"]),
                   what="uncertain results to lose their badges")


def test_bytes_mode_uploads_the_image_and_never_its_url(ready, ext_page, test_site):
    ready.configure(sendMode="bytes")
    page = open_page(ext_page, test_site)
    page.evaluate("() => { document.getElementById('ai2').src = 'ai/qwen-image.webp?private=1'; }")
    page.wait_for_function("() => document.getElementById('ai2').complete")
    browser_fetches = len([1 for path, _ in test_site.requests if path == "/ai/qwen-image.webp?private=1"])
    entry = check_from_menu(ready, page, "#ai2")
    assert entry["state"] == "done", entry["error"]
    agents = [agent for path, agent in test_site.requests if path == "/ai/qwen-image.webp?private=1"]
    assert len(agents) > browser_fetches, "the extension downloaded the image itself"
    assert not any(agent.startswith("gamma-detect/") for agent in agents), "the server never saw the URL"


def test_panel_shows_the_files_provenance_and_a_badge_for_proof(ready, ext_page, gamma_server, test_site):
    page = ext_page
    page.goto(test_site.page("provenance.html"))
    page.wait_for_load_state("load")
    expected = gamma_server.analyze_bytes(test_site.files["provenance/signed.jpg"], "signed.jpg")
    assert (expected["verdict"], expected["verdict_reason"]) == ("ai", "c2pa:ai_generated")
    entry = check_from_menu(ready, page, "#signed")
    assert entry["state"] == "done", entry["error"]
    text = entry["panel"]["text"]
    assert "Proof" in text and "Verdict from Content Credentials (C2PA) in the file" in text
    assert "Content Credentials: made with Acme Diffusion 3, signed by Gamma E2E Signer Inc" in text
    screenshot(page, "provenance-panel.png")
    click_settled(ready, page, "signed", "close")
    state = ready.wait_for(page, lambda s: (image(s, "signed") or {}).get("badge"), what="the signed image's badge")
    assert image(state, "signed")["badge"]["text"] == "AI · C2PA proof"
    for selector, line in (("#params", "Generator parameters found: AUTOMATIC1111, model lighthouseXL"),
                           ("#camera", "Camera: MINOLTA CO.,LTD DiMAGE X (not proof)")):
        entry = check_from_menu(ready, page, selector)
        assert entry["state"] == "done" and line in entry["panel"]["text"], entry
    # Bytes mode uploads the file's own bytes (never a canvas re-encoding): the same digest, the same credentials.
    ready.configure(sendMode="bytes")
    ready.sw("() => gammaDetect.cache.clear()")
    page.reload()
    page.wait_for_load_state("load")
    entry = check_from_menu(ready, page, "#signed")
    assert entry["sha256"] == expected["image"]["sha256"] and "Content Credentials: made with" in entry["panel"]["text"]


def test_report_a_mistake_reaches_the_server(ready, ext_page, gamma_server, test_site):
    page = open_page(ext_page, test_site)
    before = gamma_server.metric("gamma_feedback_total", label="ai")
    entry = check_from_menu(ready, page, "#real2")
    assert entry["state"] == "done", entry["error"]
    form_open = lambda s: image(s, "real2")["feedback"]["open"] and "feedback-ai" in image(s, "real2")["panel"]["buttons"]
    click_settled(ready, page, "real2", "report")
    ready.wait_for(page, form_open, what="the feedback form")
    click_settled(ready, page, "real2", "note")
    page.keyboard.type("e2e: I made this picture with a generator")
    click_settled(ready, page, "real2", "feedback-ai")
    state = ready.wait_for(page, lambda s: image(s, "real2")["feedback"]["sent"] or image(s, "real2")["feedback"]["error"],
                           what="the feedback answer")
    entry = image(state, "real2")
    assert entry["feedback"]["sent"] == "ai", entry["feedback"]
    assert "Thanks" in entry["panel"]["text"]
    assert gamma_server.metric("gamma_feedback_total", label="ai") == before + 1
    page.mouse.move(0, 0)
    screenshot(page, "feedback.png")


def test_rate_limited_checks_wait_visibly_then_finish(ready, ext_page, gamma_server, test_site):
    ready.configure(apiKey=gamma_server.slow_key)  # one check per 5 s
    page = open_page(ext_page, test_site)
    ids = ("real1", "ai1", "real2")
    # three menu clicks at once (the content script finds each image by its URL)
    srcs = [page.eval_on_selector("#" + i, "img => img.currentSrc") for i in ids]
    answers = ready.sw(
        "async ([id, srcs, pageUrl]) => { const tab = await chrome.tabs.get(id); return Promise.all(srcs.map((srcUrl) => "
        "gammaDetect.handleContextMenuClick({menuItemId: gammaDetect.MENU_ID, srcUrl, pageUrl, frameId: 0}, tab))); }",
        [ready.tab_id(page), srcs, page.url])
    assert all(a["ok"] and a["found"] for a in answers), answers

    def waiting(s):
        return [e for e in s["images"] if (e.get("progress") or {}).get("state") == "waiting" and e["panel"]]
    state = ready.wait_for(page, lambda s: waiting(s) and "rate limited" in waiting(s)[0]["panel"]["text"],
                           what="a visible rate-limited wait")
    assert "Server busy (rate limited)" in waiting(state)[0]["panel"]["text"]
    page.mouse.move(0, 0)
    screenshot(page, "rate-limited.png")
    state = ready.wait_for(page, lambda s: all(image_state(i)(s) for i in ids), timeout=180, what="the held checks")
    for element_id in ids:
        assert image(state, element_id)["state"] == "done", image(state, element_id)["error"]


def test_options_page_saves_settings_and_tests_the_connection(ready, ext_browser, gamma_server):
    options = ext_browser.context.new_page()
    options.goto(f"chrome-extension://{EXTENSION_ID}/options/options.html")
    options.wait_for_function("() => document.getElementById('serverUrl').value !== ''")
    assert options.locator("#origin").text_content() == f"chrome-extension://{EXTENSION_ID}"
    assert options.locator("input[name=sendMode][value=url]").is_checked()  # privacy default
    options.fill("#autoScanSites", "news.example.com\n*.Example.org\nnot a site!")
    options.click("#save")
    assert "Not a site" in options.locator("#error-autoScanSites").text_content()
    options.fill("#autoScanSites", "news.example.com\n*.Example.org")
    options.check("input[name=sendMode][value=bytes]")
    options.uncheck("#badgeUncertain")
    options.fill("#apiKey", "wrong-key")
    options.click("#test")
    options.wait_for_function("() => document.getElementById('test-result').textContent.includes('refused the API key')")
    options.fill("#apiKey", gamma_server.api_key)
    options.click("#test")
    options.wait_for_function("() => document.getElementById('test-result').textContent.startsWith('Connected')")
    options.click("#save")
    options.wait_for_function("() => document.getElementById('saved').textContent === 'Saved.'")
    stored = ext_browser.sw("() => chrome.storage.local.get(null)")
    assert stored["autoScanSites"] == ["news.example.com", "*.example.org"]
    assert stored["sendMode"] == "bytes" and stored["badgeUncertain"] is False
    assert stored["apiKey"] == gamma_server.api_key and stored["serverUrl"] == gamma_server.url
    screenshot(options, "options.png")
    options.close()


def test_a_stopped_backend_gives_a_visible_error(ready, ext_browser, ext_page, gamma_server, test_site):
    """Keep this test last: it stops the server (a later test would start it again)."""
    gamma_server.stop()
    page = open_page(ext_page, test_site)
    entry = check_from_menu(ready, page, "#real2")
    assert entry["state"] == "error"
    assert entry["error"]["code"] == "server_unreachable", entry["error"]
    assert "Server unreachable" in entry["panel"]["text"]
    assert "retry" in entry["panel"]["buttons"] and "options" in entry["panel"]["buttons"]
    page.mouse.move(0, 0)
    screenshot(page, "server-unreachable.png")
    popup = ext_browser.context.new_page()
    popup.goto(f"chrome-extension://{EXTENSION_ID}/popup/popup.html?tabId={ready.tab_id(page)}")
    popup.wait_for_function("() => document.getElementById('server-status').textContent === 'Server unreachable'", timeout=20000)
    popup.close()

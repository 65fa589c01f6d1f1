/*
 * gamma-detect content script: reads the page and draws; it never talks to the
 * backend (the service worker does every request and every image download).
 *
 * - "Check if AI-generated" (context menu): a panel over the clicked image with
 *   the verdict, probability, model, "Show where" (heatmap), "Report a mistake".
 * - Page scan: images that come into view (IntersectionObserver, and images
 *   added later via MutationObserver) are classified; eligible ones are checked
 *   a few at a time and get a badge, small ones and graphics get a "skipped" label.
 * - Everything is drawn in one closed shadow root so the page can neither
 *   restyle nor read it.
 *
 * Loaded after lib/{verdicts,eligibility,urls,geometry,tally}.js (classic scripts).
 */
(() => {
  "use strict";
  if (globalThis.__gammaDetectContent) return; // injected twice (manifest + scripting)
  globalThis.__gammaDetectContent = true;

  const G = globalThis.GammaDetect;
  const { verdicts, eligibility, urls, geometry, tally } = G;

  const MAX_IN_FLIGHT = 6; // scan checks this page has outstanding at once
  const PANEL_WIDTH = 300;

  const state = {
    scanning: false,
    config: { badgeUncertain: true, autoScan: false },
    entries: new Map(), // <img> (or a synthetic key for anchorless checks) -> entry
    nextId: 1,
    inFlight: 0,
    lastContextTarget: null,
    io: null,
    mo: null,
    cssText: null,
  };

  // ---------------------------------------------------------------- messaging

  function send(message) {
    return new Promise((resolve) => {
      try {
        chrome.runtime.sendMessage(message, (response) => {
          const err = chrome.runtime.lastError;
          if (err) resolve({ ok: false, error: extensionError(err.message) });
          else resolve(response || { ok: false, error: extensionError("No answer from the extension") });
        });
      } catch (err) {
        // "Extension context invalidated": the extension was reloaded under this page.
        resolve({ ok: false, error: extensionError(err && err.message) });
      }
    });
  }

  function extensionError(message) {
    return { code: "extension_error", title: "Extension error", hint: "Reload the page and try again.", message: message || "", retry: true };
  }

  chrome.runtime.onMessage.addListener((message, _sender, sendResponse) => {
    if (!message || typeof message.type !== "string") return false;
    switch (message.type) {
      case "gamma:checkImage":
        sendResponse(checkFromMenu(message.srcUrl));
        return false;
      case "gamma:setScan":
        if (message.on) startScan();
        else stopScan();
        sendResponse(pageState(false));
        return false;
      case "gamma:getState":
        sendResponse(pageState(Boolean(message.detail)));
        return false;
      case "gamma:progress":
        onProgress(message);
        return false;
      case "gamma:config":
        applyConfig(message.config || {});
        return false;
      default:
        return false;
    }
  });

  // The right-clicked element: the context menu only tells the worker its URL.
  document.addEventListener(
    "contextmenu",
    (event) => {
      const path = typeof event.composedPath === "function" ? event.composedPath() : [event.target];
      state.lastContextTarget = path.find((n) => n instanceof HTMLImageElement) || null;
    },
    true,
  );

  // --------------------------------------------------------------- the layer

  let host = null;
  let shadow = null;
  let layer = null;
  let rootReady = null;

  async function loadCss() {
    if (state.cssText !== null) return state.cssText;
    const response = await send({ type: "gamma:css" });
    state.cssText = (response && response.css) || "";
    return state.cssText;
  }

  function ensureRoot() {
    if (host && host.isConnected) return Promise.resolve();
    if (host && !host.isConnected) {
      document.documentElement.appendChild(host); // the page removed it: put it back
      return Promise.resolve();
    }
    if (!rootReady) {
      rootReady = loadCss().then((css) => {
        host = document.createElement("gamma-detect-root");
        host.setAttribute(
          "style",
          [
            "all: initial",
            "display: block",
            "position: absolute",
            "left: 0",
            "top: 0",
            "width: 0",
            "height: 0",
            "overflow: visible",
            "z-index: 2147483647",
            "pointer-events: none",
            "contain: none",
            "visibility: visible",
            "opacity: 1",
            "transform: none",
          ]
            .map((rule) => rule + " !important")
            .join("; "),
        );
        shadow = host.attachShadow({ mode: "closed" });
        const style = document.createElement("style");
        style.textContent = css;
        shadow.appendChild(style);
        layer = el("div", { class: "layer" });
        shadow.appendChild(layer);
        document.documentElement.appendChild(host);
        startLayoutWatch();
      });
    }
    return rootReady;
  }

  /** Tiny DOM builder: text only via textContent, never innerHTML. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "style" && typeof value === "object") {
        for (const [prop, v] of Object.entries(value)) node.style.setProperty(prop, v);
      } else if (name.startsWith("on") && typeof value === "function") {
        node.addEventListener(name.slice(2), value);
      } else {
        node.setAttribute(name, value === true ? "" : String(value));
      }
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  // ---------------------------------------------------------------- entries

  function newEntry(img, src) {
    const entry = {
      id: state.nextId++,
      el: img, // null for an image the menu named but the page doesn't show as <img>
      src, // the URL checked (currentSrc when it was read)
      state: "new",
      result: null,
      error: null,
      reason: null,
      label: null,
      showLabel: false,
      scan: false, // found by a page scan
      menu: false, // checked from the context menu
      visible: false,
      progress: null,
      token: 0,
      badge: null,
      panel: null,
      heatmap: null,
      feedback: { open: false, sending: false, sent: null, error: null, note: "" },
    };
    state.entries.set(img || { anchorless: src }, entry);
    return entry;
  }

  function removeEntry(key, entry) {
    if (entry.badge) entry.badge.remove();
    if (entry.panel) entry.panel.remove();
    if (entry.heatmap && entry.heatmap.wrap) entry.heatmap.wrap.remove();
    entry.token += 1; // late answers are dropped
    if (entry.el && state.io) state.io.unobserve(entry.el);
    state.entries.delete(key);
  }

  function findEntryByElement(img) {
    return state.entries.get(img) || null;
  }

  function srcOf(img) {
    return img.currentSrc || img.src || "";
  }

  function sameImage(img, srcUrl) {
    const a = srcOf(img);
    if (a === srcUrl || img.src === srcUrl) return true;
    const ka = urls.imageKey(a, location.href);
    return ka !== null && ka === urls.imageKey(srcUrl, location.href);
  }

  function findImage(srcUrl) {
    const last = state.lastContextTarget;
    if (last && last.isConnected && sameImage(last, srcUrl)) return last;
    let best = null;
    let bestArea = -1;
    for (const img of document.images) {
      if (!sameImage(img, srcUrl)) continue;
      const r = img.getBoundingClientRect();
      const visibleW = Math.max(0, Math.min(r.right, innerWidth) - Math.max(r.left, 0));
      const visibleH = Math.max(0, Math.min(r.bottom, innerHeight) - Math.max(r.top, 0));
      const area = visibleW * visibleH;
      if (area > bestArea) {
        best = img;
        bestArea = area;
      }
    }
    return best;
  }

  // ------------------------------------------------------------ checking

  /** Ask the worker; the entry shows "checking" until the answer comes. */
  async function check(entry, force) {
    const token = ++entry.token;
    entry.state = "checking";
    entry.progress = null;
    entry.error = null;
    render(entry);
    const response = await send({ type: "gamma:analyze", src: entry.src, pageUrl: location.href, force: Boolean(force) });
    if (token !== entry.token) return; // superseded (src changed, scan stopped, retried)
    if (response && response.ok) {
      entry.state = "done";
      entry.result = response.result;
      entry.key = response.key;
    } else {
      entry.state = "error";
      entry.error = (response && response.error) || extensionError("No answer");
    }
    entry.progress = null;
    render(entry);
    countsChanged();
  }

  function checkFromMenu(srcUrl) {
    if (!srcUrl) return { ok: false, found: false };
    const img = findImage(srcUrl);
    let entry = img ? findEntryByElement(img) : null;
    if (!img) {
      // Not an <img> on this page (a CSS background, an image in a closed shadow root): one floating panel per URL.
      for (const candidate of state.entries.values()) if (!candidate.el && candidate.src === srcUrl) entry = candidate;
    }
    if (entry && entry.src !== srcUrl && !sameImage(img, entry.src)) {
      removeEntry(img, entry);
      entry = null;
    }
    if (!entry) entry = newEntry(img, srcUrl);
    entry.menu = true;
    ensureRoot().then(() => {
      openPanel(entry);
      // A finished or pending check is reused; errors and skips are retried on request.
      if (entry.state === "done" || entry.state === "checking" || entry.state === "queued") {
        if (entry.state === "queued") {
          state.inFlight += 1;
          check(entry).finally(() => {
            state.inFlight = Math.max(0, state.inFlight - 1);
            pump();
          });
        }
        render(entry);
      } else {
        check(entry, entry.state === "error");
      }
    });
    return { ok: true, found: Boolean(img), id: entry.id };
  }

  function onProgress(message) {
    for (const entry of state.entries.values()) {
      if (entry.state !== "checking") continue;
      if (urls.imageKey(entry.src, location.href) !== message.key) continue;
      entry.progress = { state: message.state, retryInMs: message.retryInMs, at: Date.now() };
      render(entry);
    }
  }

  // ------------------------------------------------------------ page scan

  function startScan() {
    if (state.scanning) return;
    state.scanning = true;
    ensureRoot();
    state.io = new IntersectionObserver(onIntersect, { rootMargin: "100px 0px" });
    state.mo = new MutationObserver(onMutations);
    state.mo.observe(document.documentElement, { childList: true, subtree: true, attributes: true, attributeFilter: ["src", "srcset"] });
    for (const img of document.images) state.io.observe(img);
    countsChanged();
  }

  function stopScan() {
    if (!state.scanning) return;
    state.scanning = false;
    if (state.io) state.io.disconnect();
    if (state.mo) state.mo.disconnect();
    state.io = null;
    state.mo = null;
    for (const [key, entry] of Array.from(state.entries)) {
      entry.scan = false;
      if (!entry.menu) removeEntry(key, entry);
      else render(entry);
    }
    state.inFlight = 0;
    countsChanged();
  }

  function onMutations(records) {
    if (!state.scanning) return;
    for (const record of records) {
      if (record.type === "attributes") {
        const img = record.target;
        if (!(img instanceof HTMLImageElement)) continue;
        const entry = findEntryByElement(img);
        if (entry && entry.src !== srcOf(img)) {
          const wasMenu = entry.menu;
          removeEntry(img, entry);
          if (wasMenu) continue;
        }
        state.io.observe(img);
        continue;
      }
      for (const node of record.addedNodes) {
        if (node.nodeType !== 1 || node === host) continue;
        if (node instanceof HTMLImageElement) state.io.observe(node);
        else if (node.querySelectorAll) for (const img of node.querySelectorAll("img")) state.io.observe(img);
      }
    }
    pruneDetached();
  }

  function onIntersect(records) {
    for (const record of records) {
      const img = record.target;
      const entry = findEntryByElement(img);
      if (!record.isIntersecting) {
        if (entry) entry.visible = false;
        continue;
      }
      if (entry && entry.scan && entry.src === srcOf(img)) {
        entry.visible = true;
        continue;
      }
      evaluate(img);
    }
    pump();
  }

  /** Classify one visible image: queue it for a check or label it skipped. */
  function evaluate(img) {
    if (!state.scanning || !img.isConnected) return;
    if (!img.complete) {
      const again = () => {
        img.removeEventListener("load", again);
        img.removeEventListener("error", again);
        evaluate(img);
        pump();
      };
      img.addEventListener("load", again);
      img.addEventListener("error", again);
      return;
    }
    const r = img.getBoundingClientRect();
    const src = srcOf(img);
    let entry = findEntryByElement(img);
    if (entry && entry.src !== src) {
      removeEntry(img, entry);
      entry = null;
    }
    if (!entry) entry = newEntry(img, src);
    entry.scan = true;
    entry.visible = true;
    if (entry.state === "done" || entry.state === "checking" || entry.state === "error") {
      render(entry); // checked from the menu before the scan started
      return;
    }
    const decision = eligibility.classify({
      src,
      naturalWidth: img.naturalWidth,
      naturalHeight: img.naturalHeight,
      width: r.width,
      height: r.height,
      complete: img.complete,
    });
    if (decision.eligible) {
      entry.state = "queued";
    } else {
      entry.state = "skipped";
      entry.reason = decision.reason;
      entry.label = decision.label;
      entry.showLabel = decision.showLabel;
      if (state.io) state.io.unobserve(img);
    }
    render(entry);
    countsChanged();
  }

  /** Start queued checks, visible images first, a few at a time. */
  function pump() {
    if (!state.scanning) return;
    while (state.inFlight < MAX_IN_FLIGHT) {
      let next = null;
      for (const entry of state.entries.values()) {
        if (entry.state === "queued" && entry.visible && entry.el && entry.el.isConnected) {
          next = entry;
          break;
        }
      }
      if (!next) return;
      state.inFlight += 1;
      const entry = next;
      check(entry).finally(() => {
        state.inFlight = Math.max(0, state.inFlight - 1);
        if (state.io && entry.el && entry.state !== "queued") state.io.unobserve(entry.el);
        pump();
      });
    }
  }

  function pruneDetached() {
    for (const [key, entry] of Array.from(state.entries)) {
      if (entry.el && !entry.el.isConnected) removeEntry(key, entry);
    }
  }

  // ------------------------------------------------------------ counts

  let countsTimer = null;
  function countsChanged() {
    if (countsTimer) return;
    countsTimer = setTimeout(() => {
      countsTimer = null;
      send({ type: "gamma:counts", counts: tally.tally(state.entries.values()), scanning: state.scanning });
    }, 250);
  }

  function pageState(detail) {
    pruneDetached();
    const out = {
      ok: true,
      url: location.href,
      scanning: state.scanning,
      autoScan: state.config.autoScan,
      counts: tally.tally(state.entries.values()),
    };
    if (detail) out.images = Array.from(state.entries.values()).map(describeEntry);
    return out;
  }

  function rectOf(node) {
    if (!node || !node.isConnected) return null;
    const r = node.getBoundingClientRect();
    return { x: r.left, y: r.top, width: r.width, height: r.height };
  }

  /** What a test (through the worker) or a bug report needs to see. */
  function describeEntry(entry) {
    const d = {
      id: entry.id,
      elementId: entry.el ? entry.el.id || null : null,
      src: entry.src,
      state: entry.state,
      scan: entry.scan,
      menu: entry.menu,
      reason: entry.reason,
      verdict: entry.result ? entry.result.verdict : null,
      probability: entry.result ? entry.result.ai_probability : null,
      sha256: entry.result && entry.result.image ? entry.result.image.sha256 : null,
      error: entry.error,
      progress: entry.progress,
      imageRect: entry.el ? rectOf(entry.el) : null,
      badge: entry.badge ? { text: entry.badge.textContent, rect: rectOf(entry.badge), colour: entry.badge.style.getPropertyValue("--accent") } : null,
      panel: null,
      heatmap: null,
      feedback: { open: entry.feedback.open, sent: entry.feedback.sent, error: entry.feedback.error },
    };
    if (entry.panel) {
      const buttons = {};
      for (const b of entry.panel.querySelectorAll("[data-action]")) buttons[b.getAttribute("data-action")] = Object.assign(rectOf(b) || {}, { text: b.textContent, disabled: b.disabled === true });
      const cs = getComputedStyle(entry.panel.querySelector(".verdict") || entry.panel);
      d.panel = { text: entry.panel.innerText || entry.panel.textContent, rect: rectOf(entry.panel), buttons, style: { fontFamily: cs.fontFamily, color: cs.color } };
    }
    if (entry.heatmap) {
      d.heatmap = {
        shown: entry.heatmap.shown,
        drawn: Boolean(entry.heatmap.canvas),
        error: entry.heatmap.error,
        rect: entry.heatmap.shown ? rectOf(entry.heatmap.wrap) : null,
        canvas: entry.heatmap.canvas ? { width: entry.heatmap.canvas.width, height: entry.heatmap.canvas.height, opaquePixels: entry.heatmap.opaquePixels } : null,
      };
    }
    return d;
  }

  // ------------------------------------------------------------ drawing

  function render(entry) {
    if (!layer) {
      ensureRoot().then(() => render(entry));
      return;
    }
    renderBadge(entry);
    if (entry.panel) renderPanel(entry);
    scheduleLayout();
  }

  function wantsBadge(entry) {
    if (entry.panel || !entry.el) return false;
    if (!entry.scan && !entry.menu) return false;
    if (entry.state === "skipped") return entry.showLabel;
    if (entry.state === "done") {
      const group = verdicts.describeVerdict(entry.result && entry.result.verdict).group;
      if (group === "uncertain" && !state.config.badgeUncertain) return false;
    }
    return entry.state !== "new";
  }

  function badgeContent(entry) {
    switch (entry.state) {
      case "queued":
        return { cls: "pending", text: "Queued", title: "Waiting to be checked", accent: "#52525b" };
      case "checking": {
        const p = entry.progress;
        if (p && p.state === "waiting") return { cls: "pending", text: "Server busy…", title: "Rate limited: retrying", accent: "#8a6100" };
        return { cls: "pending", text: "Checking…", title: "Checking with the gamma server", accent: "#52525b" };
      }
      case "done": {
        const s = verdicts.summarise(entry.result);
        return { cls: "done", text: verdicts.badgeText(entry.result), title: s.label + " — AI probability " + s.probability + " (click for details)", accent: s.colour, group: s.group };
      }
      case "error":
        return { cls: "error", text: "! " + entry.error.title, title: entry.error.hint || entry.error.message || "", accent: "#3f3f46" };
      case "skipped": {
        // On a small image the full label would cover it (and its neighbours): one word, the reason on hover.
        const narrow = entry.el && entry.el.getBoundingClientRect().width < 150;
        const why = entry.reason === "too_small" ? "too small" : entry.reason === "graphic" ? "graphic" : "not fetchable";
        return { cls: "skipped" + (narrow ? " compact" : ""), text: narrow ? "Skipped" : "Skipped: " + why, title: entry.label, accent: "#71717a" };
      }
      default:
        return null;
    }
  }

  function renderBadge(entry) {
    if (!wantsBadge(entry)) {
      if (entry.badge) entry.badge.remove();
      entry.badge = null;
      return;
    }
    const c = badgeContent(entry);
    if (!c) return;
    if (!entry.badge) {
      entry.badge = el("button", {
        class: "badge",
        type: "button",
        onclick: (event) => {
          event.preventDefault();
          event.stopPropagation();
          if (entry.state === "skipped") return;
          openPanel(entry);
          if (entry.state === "error") check(entry, true);
        },
      });
      layer.appendChild(entry.badge);
    }
    const b = entry.badge;
    b.className = "badge " + c.cls;
    b.dataset.state = entry.state;
    if (c.group) b.dataset.group = c.group;
    else delete b.dataset.group;
    b.style.setProperty("--accent", c.accent);
    b.title = c.title;
    b.setAttribute("aria-label", "AI image check: " + c.text);
    b.replaceChildren(el("span", { class: "dot", "aria-hidden": "true" }), el("span", { class: "text" }, c.text));
  }

  function openPanel(entry) {
    if (!layer) return;
    if (!entry.panel) {
      entry.panel = el("div", { class: "panel", role: "dialog", "aria-label": "AI image check" });
      // Clicks inside the panel must not reach the page (links, lightboxes).
      for (const type of ["click", "mousedown", "mouseup", "pointerdown", "pointerup"]) {
        entry.panel.addEventListener(type, (event) => event.stopPropagation());
      }
      entry.panel.addEventListener("keydown", (event) => {
        if (event.key === "Escape") {
          event.stopPropagation();
          closePanel(entry);
        }
      });
      layer.appendChild(entry.panel);
    }
    renderBadge(entry);
    renderPanel(entry);
    scheduleLayout();
  }

  function closePanel(entry) {
    if (entry.heatmap && entry.heatmap.shown) {
      entry.heatmap.shown = false; // the heatmap belongs to the open panel
      if (entry.heatmap.wrap) entry.heatmap.wrap.remove();
    }
    if (entry.panel) entry.panel.remove();
    entry.panel = null;
    render(entry);
  }

  function button(action, text, onclick, extra) {
    return el("button", Object.assign({ type: "button", class: "btn", "data-action": action, onclick }, extra || {}), text);
  }

  function renderPanel(entry) {
    const panel = entry.panel;
    const head = el("div", { class: "head" });
    const body = el("div", { class: "body" });
    let accent = "#52525b";

    if (entry.state === "done") {
      const s = verdicts.summarise(entry.result);
      accent = s.colour;
      head.append(el("span", { class: "verdict", "data-verdict": s.verdict }, s.label));
      const p = entry.result.ai_probability;
      const pct = typeof p === "number" ? Math.round(Math.min(1, Math.max(0, p)) * 1000) / 10 : 0;
      body.append(
        el("div", { class: "prob" }, "AI probability ", el("strong", {}, s.probability)),
        el("div", { class: "meter", role: "img", "aria-label": "AI probability " + s.probability }, el("div", { class: "fill", style: { width: pct + "%" } })),
        el("div", { class: "model" }, "Model: " + s.model),
      );
      if (entry.result.cached) body.append(el("div", { class: "note" }, "Result from the server's cache"));
      const hm = entry.heatmap;
      const hasHeatmap = Boolean(entry.result.heatmap_url);
      const whereText = !hasHeatmap ? "No heatmap" : hm && hm.loading ? "Loading…" : hm && hm.shown ? "Hide where" : "Show where";
      body.append(
        el(
          "div",
          { class: "actions" },
          button("where", whereText, () => toggleHeatmap(entry), { disabled: !hasHeatmap || Boolean(hm && hm.loading) }),
          button("report", "Report a mistake", () => {
            entry.feedback.open = !entry.feedback.open;
            renderPanel(entry);
          }),
        ),
      );
      if (hm && hm.error) body.append(el("div", { class: "hint error-text" }, "Heatmap: " + hm.error));
      if (entry.feedback.open) body.append(feedbackForm(entry));
      body.append(
        el(
          "a",
          {
            class: "explain",
            href: "#",
            "data-action": "explain",
            onclick: (event) => {
              event.preventDefault();
              send({ type: "gamma:openHelp" });
            },
          },
          "What does this score mean? It can be wrong.",
        ),
      );
    } else if (entry.state === "error") {
      const e = entry.error;
      accent = "#3f3f46";
      head.append(el("span", { class: "verdict" }, e.title || "Check failed"));
      if (e.hint) body.append(el("div", { class: "hint" }, e.hint));
      if (e.message && e.message !== e.title) body.append(el("div", { class: "detail" }, e.message));
      const actions = el("div", { class: "actions" });
      if (e.retry !== false) actions.append(button("retry", "Try again", () => check(entry, true)));
      if (e.code === "unauthorized" || e.code === "forbidden" || e.code === "server_unreachable" || e.code === "url_not_allowed" || e.code === "fetch_failed") {
        actions.append(button("options", "Options", () => send({ type: "gamma:openOptions" })));
      }
      if (actions.childNodes.length) body.append(actions);
    } else if (entry.state === "skipped") {
      head.append(el("span", { class: "verdict" }, entry.label || "Skipped"));
      body.append(el("div", { class: "hint" }, "Page scans skip small images and graphics; right-click the image to check it anyway."));
    } else {
      const p = entry.progress;
      let text = "Checking…";
      if (p && p.state === "waiting") {
        const left = Math.max(0, (p.at || Date.now()) + (p.retryInMs || 0) - Date.now());
        text = left >= 500 ? "Server busy (rate limited) — retrying in " + Math.round(left / 1000) + " s" : "Server busy (rate limited) — retrying…";
        tickWaiting();
      }
      else if (p && p.state === "fetching") text = "Downloading the image…";
      else if (p && p.state === "queued") text = "Queued on the server…";
      else if (p && p.state === "started") text = "Analysing…";
      head.append(el("span", { class: "verdict" }, "Checking"));
      body.append(el("div", { class: "status" }, el("span", { class: "spinner", "aria-hidden": "true" }), el("span", {}, text)));
    }

    head.append(el("button", { type: "button", class: "close", "data-action": "close", "aria-label": "Close", title: "Close", onclick: () => closePanel(entry) }, "×"));
    panel.dataset.state = entry.state;
    panel.style.setProperty("--accent", accent);
    panel.replaceChildren(head, body);
  }

  // Re-render "retrying in N s" once a second while a panel shows it.
  let waitingTimer = null;
  function tickWaiting() {
    if (waitingTimer) return;
    waitingTimer = setTimeout(() => {
      waitingTimer = null;
      for (const entry of state.entries.values()) {
        if (entry.panel && entry.state === "checking" && entry.progress && entry.progress.state === "waiting") renderPanel(entry);
      }
    }, 1000);
  }

  function feedbackForm(entry) {
    const fb = entry.feedback;
    if (fb.sent) return el("div", { class: "feedback sent", role: "status" }, "Thanks — sent for review (" + (fb.sent === "ai" ? "AI-generated" : "real") + ").");
    const note = el("textarea", { class: "note-input", "data-action": "note", rows: "2", maxlength: "2000", placeholder: "Optional note (what is wrong?)", "aria-label": "Note" });
    note.value = fb.note;
    note.addEventListener("input", () => {
      fb.note = note.value;
    });
    // Keys typed here are ours, not the page's shortcuts.
    note.addEventListener("keydown", (event) => event.stopPropagation());
    const sendLabel = (label) => async () => {
      fb.sending = true;
      fb.error = null;
      renderPanel(entry);
      const response = await send({ type: "gamma:feedback", result: entry.result, label, note: fb.note.trim() });
      fb.sending = false;
      if (response && response.ok) fb.sent = label;
      else fb.error = (response && response.error && (response.error.title + (response.error.message ? ": " + response.error.message : ""))) || "Not sent";
      renderPanel(entry);
    };
    return el(
      "div",
      { class: "feedback" },
      el("div", { class: "label" }, "This image is actually:"),
      el(
        "div",
        { class: "actions" },
        button("feedback-ai", "AI-generated", sendLabel("ai"), { disabled: fb.sending }),
        button("feedback-real", "Real", sendLabel("real"), { disabled: fb.sending }),
      ),
      note,
      fb.sending ? el("div", { class: "hint" }, "Sending…") : null,
      fb.error ? el("div", { class: "hint error-text" }, fb.error) : null,
    );
  }

  // ------------------------------------------------------------ heatmap

  async function toggleHeatmap(entry) {
    if (!entry.result || !entry.result.heatmap_url) return;
    const hm = entry.heatmap || (entry.heatmap = { shown: false, loading: false, canvas: null, wrap: null, error: null });
    if (hm.loading) return;
    if (hm.shown) {
      hm.shown = false;
      if (hm.wrap) hm.wrap.remove();
      renderPanel(entry);
      return;
    }
    if (!hm.canvas) {
      hm.loading = true;
      hm.error = null;
      renderPanel(entry);
      const response = await send({ type: "gamma:heatmap", path: entry.result.heatmap_url });
      hm.loading = false;
      if (!response || !response.ok) {
        hm.error = (response && response.error && response.error.title) || "could not be loaded";
        renderPanel(entry);
        return;
      }
      try {
        hm.canvas = await decodeToCanvas(response.base64, response.type);
        hm.opaquePixels = countOpaque(hm.canvas);
      } catch (err) {
        hm.error = "could not be decoded";
        renderPanel(entry);
        return;
      }
      hm.canvas.className = "heatmap-canvas";
      hm.wrap = el("div", { class: "heatmap" });
      hm.wrap.appendChild(hm.canvas);
    }
    hm.shown = true;
    // Beneath badges and panels: the layer keeps the panel clickable.
    layer.insertBefore(hm.wrap, layer.firstChild);
    renderPanel(entry);
    scheduleLayout();
  }

  // Canvas, not <img src=data:>: a page's Content-Security-Policy can't block it.
  async function decodeToCanvas(base64, type) {
    const binary = atob(base64);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
    const bitmap = await createImageBitmap(new Blob([bytes], { type: type || "image/png" }));
    const canvas = document.createElement("canvas");
    canvas.width = bitmap.width;
    canvas.height = bitmap.height;
    canvas.getContext("2d").drawImage(bitmap, 0, 0);
    if (bitmap.close) bitmap.close();
    return canvas;
  }

  function countOpaque(canvas) {
    try {
      const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
      let n = 0;
      for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n += 1;
      return n;
    } catch (_) {
      return null;
    }
  }

  // ------------------------------------------------------------ layout

  let layoutPending = false;
  let layoutTimer = null;

  function scheduleLayout() {
    if (layoutPending) return;
    layoutPending = true;
    requestAnimationFrame(layout);
  }

  function startLayoutWatch() {
    addEventListener("scroll", scheduleLayout, { capture: true, passive: true });
    addEventListener("resize", scheduleLayout, { passive: true });
    // Layout shifts without scroll/resize (late images, fonts, script-driven moves).
    if (!layoutTimer) layoutTimer = setInterval(() => state.entries.size && scheduleLayout(), 500);
  }

  function contentBox(img, r) {
    const cs = getComputedStyle(img);
    const px = (v) => parseFloat(v) || 0;
    const left = r.left + px(cs.borderLeftWidth) + px(cs.paddingLeft);
    const top = r.top + px(cs.borderTopWidth) + px(cs.paddingTop);
    const width = r.width - px(cs.borderLeftWidth) - px(cs.paddingLeft) - px(cs.borderRightWidth) - px(cs.paddingRight);
    const height = r.height - px(cs.borderTopWidth) - px(cs.paddingTop) - px(cs.borderBottomWidth) - px(cs.paddingBottom);
    return { left, top, width: Math.max(0, width), height: Math.max(0, height), fit: cs.objectFit, position: cs.objectPosition };
  }

  function place(node, x, y) {
    node.style.transform = "translate(" + Math.round(x) + "px, " + Math.round(y) + "px)";
  }

  function layout() {
    layoutPending = false;
    if (!host || !layer) return;
    if (!host.isConnected) document.documentElement.appendChild(host);
    const origin = host.getBoundingClientRect();
    const vw = document.documentElement.clientWidth || innerWidth;
    for (const [key, entry] of Array.from(state.entries)) {
      if (!entry.badge && !entry.panel && !(entry.heatmap && entry.heatmap.shown)) continue;
      if (entry.el && !entry.el.isConnected) {
        removeEntry(key, entry);
        continue;
      }
      let r;
      if (entry.el) r = entry.el.getBoundingClientRect();
      else r = { left: vw - PANEL_WIDTH - 24, top: 16, width: PANEL_WIDTH, height: 0, right: vw - 16, bottom: 16 };
      const hidden = entry.el && r.width === 0 && r.height === 0;
      if (entry.badge) {
        entry.badge.hidden = hidden;
        place(entry.badge, r.left - origin.left + 6, r.top - origin.top + 6);
      }
      if (entry.panel) {
        entry.panel.hidden = hidden;
        const minX = 8;
        const maxX = vw - PANEL_WIDTH - 8;
        const x = Math.min(Math.max(r.left + 6, minX), Math.max(minX, maxX));
        let y = Math.max(r.top + 6, Math.min(8, r.bottom - 40));
        if (entry.heatmap && entry.heatmap.shown && entry.el) {
          // Showing where: move off the picture, below it (or above it when the viewport ends first).
          const h = entry.panel.offsetHeight;
          const vh = document.documentElement.clientHeight || innerHeight;
          y = r.bottom + 6 + h > vh && r.top - h - 6 >= 0 ? r.top - h - 6 : r.bottom + 6;
        }
        place(entry.panel, x - origin.left, y - origin.top);
      }
      const hm = entry.heatmap;
      if (hm && hm.shown && hm.wrap && entry.el) {
        const box = contentBox(entry.el, r);
        hm.wrap.hidden = hidden;
        hm.wrap.style.width = box.width + "px";
        hm.wrap.style.height = box.height + "px";
        place(hm.wrap, box.left - origin.left, box.top - origin.top);
        const fit = geometry.fitRect(box.width, box.height, entry.el.naturalWidth, entry.el.naturalHeight, box.fit, box.position);
        hm.canvas.style.left = fit.x + "px";
        hm.canvas.style.top = fit.y + "px";
        hm.canvas.style.width = fit.width + "px";
        hm.canvas.style.height = fit.height + "px";
      }
    }
  }

  // ------------------------------------------------------------ config

  function applyConfig(config) {
    const before = state.config.badgeUncertain;
    state.config = Object.assign({}, state.config, config);
    if (before !== state.config.badgeUncertain) for (const entry of state.entries.values()) render(entry);
  }

  // On load: scan automatically when the user listed this site.
  send({ type: "gamma:pageConfig", pageUrl: location.href }).then((response) => {
    if (!response || !response.ok) return;
    applyConfig(response.config || {});
    if (response.config && response.config.autoScan && window === window.top) startScan();
  });
})();

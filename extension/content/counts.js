/*
 * What the page reports: its counts (to the worker for the toolbar badge, at most
 * every 250 ms) and its state, which the popup and, through the worker, the
 * end-to-end tests and bug reports read.
 */
(() => {
  "use strict";
  const G = globalThis.GammaDetect;
  const C = (G.content = G.content || {});
  if (C.counts) return;
  const { entries } = C;

  let timer = null;
  function changed() {
    if (timer) return;
    timer = setTimeout(() => {
      timer = null;
      C.send({ type: G.messages.TYPES.counts, counts: G.tally.tally(entries.all.values()), scanning: C.scan.scanning });
    }, 250);
  }

  function pageState(detail) {
    entries.pruneDetached();
    const out = {
      ok: true,
      url: location.href,
      scanning: C.scan.scanning,
      autoScan: C.config.values.autoScan,
      counts: G.tally.tally(entries.all.values()),
    };
    if (detail) out.images = Array.from(entries.all.values()).map(describe);
    return out;
  }

  function rectOf(node) {
    if (!node || !node.isConnected) return null;
    const r = node.getBoundingClientRect();
    return { x: r.left, y: r.top, width: r.width, height: r.height };
  }

  /** What a test (through the worker) or a bug report needs to see. */
  function describe(entry) {
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
      region: entry.result && entry.result.ai_content ? entry.result.ai_content.region : null,
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
        path: entry.heatmap.path,
        shown: entry.heatmap.shown,
        drawn: Boolean(entry.heatmap.canvas),
        error: entry.heatmap.error,
        rect: entry.heatmap.shown ? rectOf(entry.heatmap.wrap) : null,
        canvas: entry.heatmap.canvas ? { width: entry.heatmap.canvas.width, height: entry.heatmap.canvas.height, opaquePixels: entry.heatmap.opaquePixels } : null,
        outline: entry.heatmap.outlined && entry.heatmap.outline ? describeOutline(entry.heatmap.outline) : null,
      };
    }
    return d;
  }

  // The outline as drawn: where its canvas is, its segments, and its pixels (a PNG data URL) to compare with the map.
  function describeOutline(outline) {
    const c = outline.canvas;
    return { rect: rectOf(c), width: c.width, height: c.height, segments: outline.segments.length / 4, png: outline.drawn ? c.toDataURL("image/png") : null };
  }

  C.counts = { changed, pageState };
})();

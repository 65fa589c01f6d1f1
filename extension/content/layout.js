/*
 * Layout: keeps badges, heatmaps and outlines on their images, and panels beside
 * them, as the page scrolls, resizes and shifts, one pass per animation frame.
 */
(() => {
  "use strict";
  const G = globalThis.GammaDetect;
  const C = (G.content = G.content || {});
  if (C.layout) return;

  const PANEL_WIDTH = 300; // overlay.css .panel

  let pending = false;
  let timer = null;

  function schedule() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(layout);
  }

  function watch() {
    addEventListener("scroll", schedule, { capture: true, passive: true });
    addEventListener("resize", schedule, { passive: true });
    // Layout shifts without scroll/resize (late images, fonts, script-driven moves).
    if (!timer) timer = setInterval(() => C.entries.all.size && schedule(), 500);
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
    const transform = "translate(" + Math.round(x) + "px, " + Math.round(y) + "px)";
    if (node.style.transform !== transform) node.style.transform = transform; // an unchanged badge restyles nothing
  }

  /**
   * One pass: every measurement first, then every write. A read after a write makes the page redo its style and
   * layout then and there, so interleaving them did that once per image: the pass after a scan's 50 new badges
   * took 15 ms of the page's main thread, and the page dropped frames (bench/extension_scan_frames.py). Panels
   * (one or two) measure their own height last.
   */
  function layout() {
    pending = false;
    const host = C.layer.host;
    if (!host || !C.layer.node) return;
    if (!host.isConnected) document.documentElement.appendChild(host);
    const origin = host.getBoundingClientRect();
    const vw = document.documentElement.clientWidth || innerWidth;
    const vh = document.documentElement.clientHeight || innerHeight;
    const shown = [];
    const gone = [];
    for (const [key, entry] of C.entries.all) {
      const hm = entry.heatmap;
      const over = Boolean(hm && hm.wrap && (hm.shown || hm.outlined) && entry.el); // drawn over the picture
      if (!entry.badge && !entry.panel && !over) continue;
      if (entry.el && !entry.el.isConnected) {
        gone.push([key, entry]);
        continue;
      }
      let r;
      if (entry.el) r = entry.el.getBoundingClientRect();
      else r = { left: vw - PANEL_WIDTH - 24, top: 16, width: PANEL_WIDTH, height: 0, right: vw - 16, bottom: 16 };
      const hidden = Boolean(entry.el) && r.width === 0 && r.height === 0;
      shown.push({ entry, r, hidden, box: over ? contentBox(entry.el, r) : null });
    }
    for (const [key, entry] of gone) C.entries.remove(key, entry);
    for (const { entry, r, hidden, box } of shown) {
      if (entry.badge) {
        if (entry.badge.hidden !== hidden) entry.badge.hidden = hidden; // an unchanged write restyles too
        place(entry.badge, r.left - origin.left + 6, r.top - origin.top + 6);
      }
      if (box) {
        const hm = entry.heatmap;
        hm.wrap.hidden = hidden;
        hm.wrap.style.width = box.width + "px";
        hm.wrap.style.height = box.height + "px";
        place(hm.wrap, box.left - origin.left, box.top - origin.top);
        const fit = G.geometry.fitRect(box.width, box.height, entry.el.naturalWidth, entry.el.naturalHeight, box.fit, box.position);
        for (const canvas of [hm.canvas, hm.outline.canvas]) {
          canvas.style.left = fit.x + "px";
          canvas.style.top = fit.y + "px";
          canvas.style.width = fit.width + "px";
          canvas.style.height = fit.height + "px";
        }
        if (hm.outlined) C.outline.draw(hm.outline, fit.width, fit.height);
      }
    }
    for (const { entry, r, hidden } of shown) {
      if (!entry.panel) continue;
      entry.panel.hidden = hidden;
      let at = { x: r.left + 6, y: r.top + 6 };
      if (entry.el) {
        // Beside the picture, never over it (the side it had while that still fits, so scrolling doesn't flip it).
        const size = { width: PANEL_WIDTH, height: entry.panel.offsetHeight };
        at = G.geometry.beside(r, size, { width: vw, height: vh }, entry.panelSide);
        entry.panelSide = at.side;
      }
      place(entry.panel, at.x - origin.left, at.y - origin.top);
    }
  }

  C.layout = { schedule, watch, now: layout };
})();

/*
 * The page's entries: one per <img> the extension has looked at (or per URL the
 * context menu named that the page doesn't show as an <img>), holding its check
 * state, result and overlay nodes.
 *
 * Content scripts are classic scripts sharing globalThis.GammaDetect, loaded in
 * manifest order after lib/*.js; each registers one part on GammaDetect.content.
 * The worker injects them again into a tab whose script it can't reach, so each
 * file registers once and a second run changes nothing.
 */
(() => {
  "use strict";
  const G = globalThis.GammaDetect;
  const C = (G.content = G.content || {});
  if (C.entries) return;

  const all = new Map(); // <img> (or a synthetic key for anchorless checks) -> entry
  let nextId = 1;

  function create(img, src) {
    const entry = {
      id: nextId++,
      el: img, // null for an image the menu named but the page doesn't show as <img>
      src, // the URL checked (currentSrc when it was read)
      state: "new", // -> queued | skipped (scan) -> checking -> done | error
      result: null,
      error: null,
      reason: null,
      label: null,
      shownWidth: null, // CSS px, when a scan classified it
      showLabel: false,
      scan: false, // found by a page scan
      menu: false, // checked from the context menu
      visible: false,
      progress: null,
      token: 0,
      badge: null,
      panel: null,
      panelSide: null, // where the panel sits beside the image (lib/geometry.js beside)
      heatmap: null,
      feedback: { open: false, sending: false, sent: null, error: null, note: "" },
    };
    all.set(img || { anchorless: src }, entry);
    return entry;
  }

  function remove(key, entry) {
    for (const node of [entry.badge, entry.panel, entry.heatmap && entry.heatmap.wrap]) if (node) node.remove();
    entry.token += 1; // late answers are dropped
    if (entry.el) C.scan.forget(entry.el);
    all.delete(key);
  }

  function byElement(img) {
    return all.get(img) || null;
  }

  function srcOf(img) {
    return img.currentSrc || img.src || "";
  }

  function sameImage(img, srcUrl) {
    const a = srcOf(img);
    if (a === srcUrl || img.src === srcUrl) return true;
    const ka = G.urls.imageKey(a, location.href);
    return ka !== null && ka === G.urls.imageKey(srcUrl, location.href);
  }

  function pruneDetached() {
    for (const [key, entry] of Array.from(all)) {
      if (entry.el && !entry.el.isConnected) remove(key, entry);
    }
  }

  C.entries = { all, create, remove, byElement, srcOf, sameImage, pruneDetached };
})();

/*
 * "Check if AI-generated" from the context menu: the worker only learns the image's
 * URL, so the right-clicked element is noted here and found again by that URL.
 */
(() => {
  "use strict";
  const G = globalThis.GammaDetect;
  const C = (G.content = G.content || {});
  if (C.menu) return;
  const { entries } = C;

  let lastContextTarget = null;

  document.addEventListener(
    "contextmenu",
    (event) => {
      const path = typeof event.composedPath === "function" ? event.composedPath() : [event.target];
      lastContextTarget = path.find((n) => n instanceof HTMLImageElement) || null;
    },
    true,
  );

  /** The right-clicked image if it shows srcUrl, else the most visible image that does. */
  function findImage(srcUrl) {
    const last = lastContextTarget;
    if (last && last.isConnected && entries.sameImage(last, srcUrl)) return last;
    let best = null;
    let bestArea = -1;
    for (const img of document.images) {
      if (!entries.sameImage(img, srcUrl)) continue;
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

  function checkFromMenu(srcUrl) {
    if (!srcUrl) return { ok: false, found: false };
    const img = findImage(srcUrl);
    let entry = img ? entries.byElement(img) : null;
    if (!img) {
      // Not an <img> on this page (a CSS background, an image in a closed shadow root): one floating panel per URL.
      for (const candidate of entries.all.values()) if (!candidate.el && candidate.src === srcUrl) entry = candidate;
    }
    if (entry && entry.src !== srcUrl && !entries.sameImage(img, entry.src)) {
      entries.remove(img, entry);
      entry = null;
    }
    if (!entry) entry = entries.create(img, srcUrl);
    entry.menu = true;
    C.layer.ensure().then(() => {
      C.panel.open(entry);
      // A finished or pending check is reused; errors and skips are retried on request.
      if (entry.state === "queued") C.scan.run(entry);
      else if (entry.state === "done" || entry.state === "checking") C.render(entry);
      else C.check(entry, entry.state === "error");
    });
    return { ok: true, found: Boolean(img), id: entry.id };
  }

  C.menu = { checkFromMenu };
})();

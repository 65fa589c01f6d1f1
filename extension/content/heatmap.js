/*
 * The result's heatmap PNG (fetched by the worker: from the server, which needs the API key, or from the
 * on-device runtime), drawn over the image's content box: the colour map ("Show where") and, while the
 * panel is open on a result that marks a region, that region's outline. Both come from one fetch.
 */
(() => {
  "use strict";
  const G = globalThis.GammaDetect;
  const C = (G.content = G.content || {});
  if (C.heatmap) return;

  /** The entry's heatmap state, for its current result (a new result drops the old map). */
  function stateOf(entry) {
    const path = entry.result ? entry.result.heatmap_url : null;
    if (entry.heatmap && entry.heatmap.path !== path) {
      if (entry.heatmap.wrap) entry.heatmap.wrap.remove();
      entry.heatmap = null;
    }
    if (!entry.heatmap) {
      entry.heatmap = { path, shown: false, outlined: false, loading: false, pending: null, canvas: null, outline: null, wrap: null, error: null };
    }
    return entry.heatmap;
  }

  // One fetch for the colour map and the outline; a failure is kept in hm.error and the next ask fetches again.
  function load(hm) {
    if (!hm.pending) {
      hm.pending = fetchMap(hm).then((ok) => {
        if (!ok) hm.pending = null;
        return ok;
      });
    }
    return hm.pending;
  }

  async function fetchMap(hm) {
    hm.error = null;
    const response = await C.send({ type: G.messages.TYPES.heatmap, path: hm.path });
    if (!response || !response.ok) {
      hm.error = (response && response.error && response.error.title) || "could not be loaded";
      return false;
    }
    let canvas;
    try {
      canvas = await decodeToCanvas(response.base64, response.type);
    } catch (err) {
      hm.error = "could not be decoded";
      return false;
    }
    const pixels = readPixels(canvas);
    // How much of the map is drawn (the end-to-end tests read it); null where the canvas can't be read.
    hm.opaquePixels = pixels ? countOpaque(pixels.data) : null;
    const marked = pixels ? G.outline.marked(pixels.data, canvas.width, canvas.height) : new Uint8Array(0);
    hm.outline = C.outline.create(G.outline.segments(marked, canvas.width, canvas.height), canvas.width, canvas.height);
    hm.canvas = canvas;
    hm.canvas.className = "heatmap-canvas";
    hm.wrap = C.layer.el("div", { class: "heatmap" }, hm.canvas, hm.outline.canvas);
    return true;
  }

  /** The map in the layer while any of it shows (beneath badges and panels: the layer keeps the panel clickable). */
  function attach(hm) {
    if (!hm.wrap) return;
    hm.canvas.hidden = !hm.shown;
    hm.outline.canvas.hidden = !hm.outlined;
    if (!hm.shown && !hm.outlined) hm.wrap.remove();
    else if (hm.wrap.parentNode !== C.layer.node) C.layer.node.insertBefore(hm.wrap, C.layer.node.firstChild);
    C.layout.schedule();
  }

  /** "Show where" / "Hide where": the colour map. */
  async function toggle(entry) {
    if (!entry.result || !entry.result.heatmap_url) return;
    const hm = stateOf(entry);
    if (hm.loading) return;
    if (hm.shown) {
      hm.shown = false;
      attach(hm);
      C.panel.render(entry);
      return;
    }
    hm.loading = true;
    C.panel.render(entry);
    const ok = await load(hm);
    hm.loading = false;
    if (entry.heatmap !== hm || !entry.panel) return; // a new result, or the panel closed, meanwhile
    hm.shown = ok;
    attach(hm);
    C.panel.render(entry);
  }

  /** The outline of the region the result marks, while its panel is open (panel.js asks on every render). */
  async function outline(entry) {
    if (!entry.el || !entry.result || !entry.result.heatmap_url) return; // no picture on the page to draw over
    const hm = stateOf(entry);
    if (hm.outlined) return;
    hm.outlined = true;
    const ok = await load(hm);
    if (entry.heatmap !== hm || !hm.outlined) return; // a new result, or the panel closed, meanwhile
    if (ok) attach(hm);
    else if (entry.panel) C.panel.render(entry); // says why
  }

  /** The panel closed: the map and the outline belong to it. */
  function hide(entry) {
    const hm = entry.heatmap;
    if (!hm) return;
    hm.shown = false;
    hm.outlined = false;
    if (hm.wrap) hm.wrap.remove();
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

  function readPixels(canvas) {
    try {
      return canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
    } catch (_) {
      return null;
    }
  }

  function countOpaque(data) {
    let n = 0;
    for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n += 1;
    return n;
  }

  C.heatmap = { toggle, outline, hide };
})();

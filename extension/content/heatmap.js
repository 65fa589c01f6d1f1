/*
 * "Show where": the server's heatmap PNG (fetched by the worker, which holds the
 * API key) drawn on a canvas over the image's content box.
 */
(() => {
  "use strict";
  const G = globalThis.GammaDetect;
  const C = (G.content = G.content || {});
  if (C.heatmap) return;

  async function toggle(entry) {
    if (!entry.result || !entry.result.heatmap_url) return;
    const hm = entry.heatmap || (entry.heatmap = { shown: false, loading: false, canvas: null, wrap: null, error: null });
    if (hm.loading) return;
    if (hm.shown) {
      hm.shown = false;
      if (hm.wrap) hm.wrap.remove();
      C.panel.render(entry);
      return;
    }
    if (!hm.canvas) {
      hm.loading = true;
      hm.error = null;
      C.panel.render(entry);
      const response = await C.send({ type: G.messages.TYPES.heatmap, path: entry.result.heatmap_url });
      hm.loading = false;
      if (!response || !response.ok) {
        hm.error = (response && response.error && response.error.title) || "could not be loaded";
        C.panel.render(entry);
        return;
      }
      try {
        hm.canvas = await decodeToCanvas(response.base64, response.type);
        hm.opaquePixels = countOpaque(hm.canvas);
      } catch (err) {
        hm.error = "could not be decoded";
        C.panel.render(entry);
        return;
      }
      hm.canvas.className = "heatmap-canvas";
      hm.wrap = C.layer.el("div", { class: "heatmap" });
      hm.wrap.appendChild(hm.canvas);
    }
    hm.shown = true;
    // Beneath badges and panels: the layer keeps the panel clickable.
    C.layer.node.insertBefore(hm.wrap, C.layer.node.firstChild);
    C.panel.render(entry);
    C.layout.schedule();
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

  // How much of the map is drawn (the end-to-end tests read it); null where the canvas can't be read.
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

  C.heatmap = { toggle };
})();

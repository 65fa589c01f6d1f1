/*
 * The outline of the region a result marks: whether the result marks one (its `ai_content.region`),
 * which pixels of its heatmap stand out, and the boundary around them as line segments (marching
 * squares). The server's and the device's heatmaps are the same PNG, so one code path draws both.
 * Loaded as a classic script (content script) or with require() in Node's tests.
 */
(function (root, factory) {
  const node = typeof module === "object" && module.exports;
  const api = factory(node ? require("./contract.js") : root.GammaDetect.contract);
  if (node) module.exports = api;
  else root.GammaDetect.outline = api;
})(typeof globalThis !== "undefined" ? globalThis : this, function (contract) {
  "use strict";

  // gamma_detect/decision.py strongest_region: a value of the calibrated map above LEVEL stands out, and the
  // result's ai_content.region is null when none does.
  const LEVEL = 0.5;
  // The heatmap PNG's alpha is floor(m * MAX_ALPHA / 255) of the map as uint8 (m = round(255 * value)): the
  // contract's HEATMAP_MAX_ALPHA; its colour is no use where it is transparent (a canvas keeps premultiplied pixels).
  const MAX_ALPHA = contract.HEATMAP_MAX_ALPHA;
  const alphaOf = (m) => Math.floor((m * MAX_ALPHA) / 255);
  // The alpha of the first uint8 above LEVEL (128: 90); every lower uint8 has a lower alpha.
  const LEVEL_ALPHA = alphaOf(Math.floor(255 * LEVEL) + 1);

  /** "marked" (the result names the region that stands out), "none" (no region stands out) or "unknown" (no ai_content). */
  function regionState(result) {
    const content = result && result.ai_content;
    if (!content || typeof content !== "object" || !Object.hasOwn(content, "region")) return "unknown";
    return content.region && typeof content.region === "object" ? "marked" : "none";
  }

  /** 1 where the heatmap's RGBA pixels (width x height) stand out, else 0. */
  function marked(rgba, width, height) {
    const out = new Uint8Array(width * height);
    for (let i = 0; i < out.length; i += 1) out[i] = rgba[i * 4 + 3] >= LEVEL_ALPHA ? 1 : 0;
    return out;
  }

  // Marching squares over cells whose corners are pixel centres, corners weighted tl 8, tr 4, br 2, bl 1:
  // the edges (0 top, 1 right, 2 bottom, 3 left) each case joins. The saddles (5, 10) keep diagonal
  // neighbours together, as the 8-connected parts of strongest_region.
  const CASES = [[], [[3, 2]], [[2, 1]], [[3, 1]], [[0, 1]], [[3, 0], [1, 2]], [[0, 2]], [[3, 0]],
    [[3, 0]], [[0, 2]], [[0, 1], [2, 3]], [[0, 1]], [[3, 1]], [[1, 2]], [[2, 3]], []];
  // Each edge's midpoint from the cell's top-left pixel (x, y), in pixel units (pixel x spans [x, x + 1]).
  const MID = [[1, 0.5], [1.5, 1], [1, 1.5], [0.5, 1]];

  /**
   * The boundary of the marked pixels (Uint8Array, width x height) as segments [x0, y0, x1, y1, ...] in pixel
   * units, closed along the image's edge (outside counts as unmarked).
   */
  function segments(mask, width, height) {
    const at = (x, y) => (x >= 0 && y >= 0 && x < width && y < height ? mask[y * width + x] : 0);
    const out = [];
    for (let y = -1; y < height; y += 1) {
      for (let x = -1; x < width; x += 1) {
        const index = at(x, y) * 8 + at(x + 1, y) * 4 + at(x + 1, y + 1) * 2 + at(x, y + 1);
        for (const [a, b] of CASES[index]) out.push(x + MID[a][0], y + MID[a][1], x + MID[b][0], y + MID[b][1]);
      }
    }
    return Float32Array.from(out);
  }

  return { LEVEL, MAX_ALPHA, LEVEL_ALPHA, alphaOf, regionState, marked, segments };
});

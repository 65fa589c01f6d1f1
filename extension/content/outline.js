/*
 * The outline of the region a result marks, drawn on its own canvas over the picture while the panel is
 * open: a white line on a dark edge (it reads on any picture and beside the colour map), redrawn at the
 * picture's displayed size so it stays crisp.
 */
(() => {
  "use strict";
  const G = globalThis.GammaDetect;
  const C = (G.content = G.content || {});
  if (C.outline) return;

  const EDGE = 4; // CSS px: the dark edge's width
  const LINE = 2; // CSS px: the white line's width
  const MAX_SIDE = 4096; // backing pixels: a huge displayed picture gets a softer line, not a huge canvas

  /** A canvas for the map's segments (lib/outline.js), map pixels mapWidth x mapHeight. */
  function create(segments, mapWidth, mapHeight) {
    const canvas = document.createElement("canvas");
    canvas.className = "outline-canvas";
    return { canvas, segments, mapWidth, mapHeight, drawn: "" };
  }

  /** Draws the outline for a picture shown at width x height CSS px (only when that size changed). */
  function draw(outline, width, height) {
    const scale = Math.min(devicePixelRatio || 1, MAX_SIDE / Math.max(width, height, 1));
    const w = Math.max(1, Math.round(width * scale));
    const h = Math.max(1, Math.round(height * scale));
    if (outline.drawn === w + "x" + h) return;
    outline.drawn = w + "x" + h;
    const { canvas, segments } = outline;
    canvas.width = w;
    canvas.height = h;
    const ctx = canvas.getContext("2d");
    const sx = w / outline.mapWidth;
    const sy = h / outline.mapHeight;
    ctx.beginPath();
    for (let i = 0; i < segments.length; i += 4) {
      ctx.moveTo(segments[i] * sx, segments[i + 1] * sy);
      ctx.lineTo(segments[i + 2] * sx, segments[i + 3] * sy);
    }
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.strokeStyle = "rgba(0, 0, 0, 0.85)";
    ctx.lineWidth = EDGE * scale;
    ctx.stroke();
    ctx.strokeStyle = "#ffffff";
    ctx.lineWidth = LINE * scale;
    ctx.stroke();
  }

  C.outline = { create, draw };
})();

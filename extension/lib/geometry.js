/*
 * Where the picture is inside an <img> box (object-fit / object-position), so the
 * heatmap (drawn at the image's own size) lands on the pixels it describes; and
 * where a panel goes beside an image without covering it.
 */
(function (root, factory) {
  const api = factory();
  if (typeof module === "object" && module.exports) module.exports = api;
  else (root.GammaDetect = root.GammaDetect || {}).geometry = api;
})(typeof globalThis !== "undefined" ? globalThis : this, function () {
  "use strict";

  const KEYWORDS = { left: 0, top: 0, center: 0.5, right: 1, bottom: 1 };
  // Larger offsets (px or %) are past any layout (Chromium's lengths end near 3.4e7 px), and their products overflow.
  const MAX_OFFSET = 1e7;

  /** One object-position component -> function(free space) -> offset in px. */
  function component(token) {
    if (Object.hasOwn(KEYWORDS, token)) return (free) => free * KEYWORDS[token];
    const m = /^(-?\d*\.?\d+)(%|px)?$/.exec(token || "");
    const n = m ? parseFloat(m[1]) : NaN;
    if (!(Math.abs(n) <= MAX_OFFSET)) return (free) => free * 0.5; // not a position this reads: centred
    if (m[2] === "%") return (free) => (free * n) / 100;
    return () => n;
  }

  /** "50% 50%", "left top", "right 20%", "10px 0px" (the simple two-value forms). */
  function parsePosition(text) {
    const tokens = String(text || "50% 50%").trim().toLowerCase().split(/\s+/).filter(Boolean);
    if (tokens.length === 0) return [component("50%"), component("50%")];
    if (tokens.length === 1) {
      const t = tokens[0];
      if (t === "top" || t === "bottom") return [component("center"), component(t)];
      return [component(t), component("center")];
    }
    let [x, y] = tokens;
    if (x === "top" || x === "bottom" || y === "left" || y === "right") [x, y] = [y, x];
    return [component(x), component(y)];
  }

  /**
   * The rectangle (in box coordinates, CSS px) the picture occupies in a box of
   * boxW x boxH for a natural size natW x natH. It may exceed the box (cover, none).
   */
  function fitRect(boxW, boxH, natW, natH, objectFit, objectPosition) {
    if (!(natW > 0 && natH > 0) || !(boxW > 0 && boxH > 0)) return { x: 0, y: 0, width: boxW, height: boxH };
    let w = boxW;
    let h = boxH;
    const fit = String(objectFit || "fill").toLowerCase();
    const contain = Math.min(boxW / natW, boxH / natH);
    const cover = Math.max(boxW / natW, boxH / natH);
    if (fit === "contain") {
      w = natW * contain;
      h = natH * contain;
    } else if (fit === "cover") {
      w = natW * cover;
      h = natH * cover;
    } else if (fit === "none") {
      w = natW;
      h = natH;
    } else if (fit === "scale-down") {
      const s = Math.min(1, contain);
      w = natW * s;
      h = natH * s;
    }
    const [px, py] = parsePosition(objectPosition);
    return { x: px(boxW - w) + 0, y: py(boxH - h) + 0, width: w, height: h }; // + 0: no -0
  }

  const SIDES = ["below", "above", "right", "left"];

  /**
   * Where a box of `size` goes beside `target` (a DOMRect-like {left, top, width, height}) in a viewport of
   * {width, height}, not over it: `preferred` (the side it had) while it still fits, else the first of below,
   * above, right, left that fits the viewport; when none does, the one that covers the least of the target,
   * kept in the viewport. Returns {x, y, side}.
   */
  function beside(target, size, viewport, preferred, gap = 6, margin = 8) {
    const right = target.left + target.width;
    const bottom = target.top + target.height;
    const clampX = (x) => Math.min(Math.max(x, margin), Math.max(margin, viewport.width - size.width - margin));
    const clampY = (y) => Math.min(Math.max(y, margin), Math.max(margin, viewport.height - size.height - margin));
    const at = {
      below: { x: clampX(target.left), y: bottom + gap },
      above: { x: clampX(target.left), y: target.top - gap - size.height },
      right: { x: right + gap, y: clampY(target.top) },
      left: { x: target.left - gap - size.width, y: clampY(target.top) },
    };
    const fits = (p) => p.x >= margin && p.y >= margin && p.x + size.width <= viewport.width - margin && p.y + size.height <= viewport.height - margin;
    const order = SIDES.includes(preferred) ? [preferred].concat(SIDES.filter((s) => s !== preferred)) : SIDES;
    const side = order.find((s) => fits(at[s]));
    if (side) return Object.assign({ side }, at[side]);
    const covered = (p) =>
      Math.max(0, Math.min(p.x + size.width, right) - Math.max(p.x, target.left)) * Math.max(0, Math.min(p.y + size.height, bottom) - Math.max(p.y, target.top));
    let best = null;
    for (const s of SIDES) {
      const p = { side: s, x: clampX(at[s].x), y: clampY(at[s].y) };
      if (!best || covered(p) < covered(best)) best = p;
    }
    return best;
  }

  return { fitRect, parsePosition, beside };
});

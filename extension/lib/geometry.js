/*
 * Where the picture is inside an <img> box (object-fit / object-position), so the
 * heatmap (drawn at the image's own size) lands on the pixels it describes.
 */
(function (root, factory) {
  const api = factory();
  if (typeof module === "object" && module.exports) module.exports = api;
  else (root.GammaDetect = root.GammaDetect || {}).geometry = api;
})(typeof globalThis !== "undefined" ? globalThis : this, function () {
  "use strict";

  const KEYWORDS = { left: 0, top: 0, center: 0.5, right: 1, bottom: 1 };

  /** One object-position component -> function(free space) -> offset in px. */
  function component(token) {
    if (token in KEYWORDS) return (free) => free * KEYWORDS[token];
    const m = /^(-?\d*\.?\d+)(%|px)?$/.exec(token || "");
    if (!m) return (free) => free * 0.5;
    const n = parseFloat(m[1]);
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

  return { fitRect, parsePosition };
});

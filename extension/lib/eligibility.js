/*
 * Which images a page scan checks. Small images and pure graphics are skipped
 * and labelled as skipped, never guessed.
 */
(function (root, factory) {
  const api = factory();
  if (typeof module === "object" && module.exports) module.exports = api;
  else (root.GammaDetect = root.GammaDetect || {}).eligibility = api;
})(typeof globalThis !== "undefined" ? globalThis : this, function () {
  "use strict";

  const MIN_SIDE = 128; // px, both shown on the page and in the file
  const LABEL_MIN_SIDE = 24; // skipped images smaller than this get counted but no label (it would hide them)

  const SKIP_REASONS = Object.freeze({
    too_small: "Too small to check",
    graphic: "Graphic, not a photo: skipped",
    unsupported_url: "This image can't be fetched",
    broken: "Image failed to load",
  });

  const GRAPHIC_EXTENSIONS = /\.(svgz?|ico|cur)$/i;
  const GRAPHIC_DATA = /^data:image\/(svg\+xml|x-icon|vnd\.microsoft\.icon)[;,]/i;

  function isGraphicUrl(src) {
    if (typeof src !== "string") return false;
    if (GRAPHIC_DATA.test(src)) return true;
    let path = src;
    try {
      path = new URL(src).pathname;
    } catch (_) {
      /* relative or odd: test the string as is */
    }
    return GRAPHIC_EXTENSIONS.test(path);
  }

  function schemeOk(src) {
    return /^(https?:|data:image\/)/i.test(String(src || ""));
  }

  /**
   * facts: { src, naturalWidth, naturalHeight, width, height, complete }
   * (width/height: the size shown on the page, CSS px).
   * Returns { eligible: true } or { eligible: false, reason, label, showLabel }.
   */
  function classify(facts, minSide) {
    const min = minSide || MIN_SIDE;
    const src = facts.src || "";
    const shownMin = Math.min(facts.width || 0, facts.height || 0);
    const skip = (reason) => ({
      eligible: false,
      reason,
      label: SKIP_REASONS[reason],
      showLabel: shownMin >= LABEL_MIN_SIDE,
    });
    if (!schemeOk(src)) return skip("unsupported_url");
    if (isGraphicUrl(src)) return skip("graphic");
    if (facts.complete && !(facts.naturalWidth > 0 && facts.naturalHeight > 0)) return skip("broken");
    const naturalMin = Math.min(facts.naturalWidth || 0, facts.naturalHeight || 0);
    if (shownMin < min || naturalMin < min) return skip("too_small");
    return { eligible: true };
  }

  return { MIN_SIDE, LABEL_MIN_SIDE, SKIP_REASONS, isGraphicUrl, classify };
});

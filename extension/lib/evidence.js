/*
 * Provenance evidence: what the server found in the file itself (Content Credentials, IPTC source
 * type, generator parameters, invisible watermark, camera EXIF) turned into panel lines and a badge
 * word. The server writes each item's sentence and decides what it proves; this only shows it.
 * Loaded as a classic script (content script) or with require() in Node's tests.
 */
(function (root, factory) {
  const api = factory();
  if (typeof module === "object" && module.exports) module.exports = api;
  else (root.GammaDetect = root.GammaDetect || {}).evidence = api;
})(typeof globalThis !== "undefined" ? globalThis : this, function () {
  "use strict";

  // What decided a verdict the pixels alone did not: the source part of the server's verdict_reason
  // ("c2pa:ai_generated", "capture_claim"); "pixels" has no entry (the probability speaks).
  const REASONS = Object.freeze({
    c2pa: { text: "Content Credentials (C2PA) in the file", short: "C2PA" },
    xmp: { text: "the IPTC digital source type in the file's metadata", short: "metadata" },
    generator_parameters: { text: "generator parameters in the file's metadata", short: "metadata" },
    watermark: { text: "an invisible watermark of a generator's reference pipeline", short: "watermark" },
    capture_claim: { text: "a signed camera capture claim, which pixels alone do not overrule", short: "capture" },
  });

  const STRENGTH_ORDER = Object.freeze({ proof: 0, strong: 1, weak: 2 });

  function items(result) {
    return result && Array.isArray(result.evidence) ? result.evidence.filter((item) => item && typeof item === "object") : [];
  }

  /** The presentation of a verdict_reason, or null when the pixels decided (or the reason is unknown). */
  function describeReason(reason) {
    const source = typeof reason === "string" ? reason.split(":")[0] : "";
    return Object.hasOwn(REASONS, source) ? REASONS[source] : null;
  }

  /** Whether a believed item proves the result: a valid C2PA claim whose signer is on the server's trust list. */
  function hasProof(result) {
    return items(result).some((item) => item.status === "ok" && item.strength === "proof");
  }

  /**
   * The lines the panel lists, strongest first: the server's sentence ("Content Credentials: made with X,
   * signed by Y", "Camera: Canon EOS 70D (not proof)"), its strength when believed, and whether it failed.
   */
  function lines(result) {
    const rank = (line) => (line.strength ? STRENGTH_ORDER[line.strength] : 3);
    return items(result)
      .filter((item) => typeof item.summary === "string" && item.summary)
      .map((item) => ({
        text: item.summary,
        source: typeof item.source === "string" ? item.source : "",
        strength: item.status === "ok" && typeof item.strength === "string" && Object.hasOwn(STRENGTH_ORDER, item.strength) ? item.strength : null,
        failed: item.status !== "ok",
      }))
      .sort((a, b) => rank(a) - rank(b));
  }

  /** The badge's word for what decided ("C2PA proof", "metadata"), or null when the pixels did. */
  function badgeReason(result) {
    const reason = describeReason(result && result.verdict_reason);
    if (!reason) return null;
    return reason.short + (reason === REASONS.c2pa && hasProof(result) ? " proof" : "");
  }

  return { REASONS, describeReason, hasProof, lines, badgeReason };
});

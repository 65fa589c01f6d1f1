/* POST /v1/feedback: the user disputes a result ("this image is actually AI-generated / real"). */
(function (root, factory) {
  const node = typeof module === "object" && module.exports;
  const G = node ? null : root.GammaDetect;
  const api = factory.apply(null, node ? [require("../contract.js"), require("../errors.js")] : [G.contract, G.errors]);
  if (node) module.exports = api;
  else (G.apiParts = G.apiParts || {}).feedback = api;
})(typeof globalThis !== "undefined" ? globalThis : this, function (contract, errors) {
  "use strict";

  const { GammaError } = errors;
  // What the server said, without the parts that are about one request rather than the image, and without the
  // provenance evidence (prompts found in the file stay with the user; verdict_reason says what decided).
  const NOT_ECHOED = new Set(["path", "heatmap_url", "timings", "cached", "evidence"]);
  const ECHOED_FIELDS = contract.RESULT_FIELDS.filter((field) => !NOT_ECHOED.has(field));

  function createFeedback(ctx) {
    const { transport } = ctx;

    return async function feedback(settings, params) {
      if (!contract.FEEDBACK_LABELS.includes(params.label)) throw new GammaError("extension_error", "label must be one of " + contract.FEEDBACK_LABELS.join(", "));
      const result = params.result || {};
      const sha256 = params.sha256 || (result.image && result.image.sha256);
      if (!sha256) throw new GammaError("extension_error", "This result has no image digest to report");
      const kept = {};
      for (const field of ECHOED_FIELDS) if (result[field] !== undefined) kept[field] = result[field];
      const payload = { sha256, result: kept, label: params.label };
      if (params.note) payload.note = String(params.note).slice(0, contract.LIMITS.feedback_note_chars);
      const answer = await transport.request(settings, "POST", "/v1/feedback", {
        body: JSON.stringify(payload),
        headers: { "Content-Type": "application/json" },
      });
      return answer.body || {};
    };
  }

  return { createFeedback, NOT_ECHOED };
});

/* POST /v1/feedback: the user disputes a result ("this image is actually AI-generated / real"). */
(function (root, factory) {
  const node = typeof module === "object" && module.exports;
  const G = node ? null : root.GammaDetect;
  const api = factory(node ? require("../errors.js") : G.errors);
  if (node) module.exports = api;
  else (G.apiParts = G.apiParts || {}).feedback = api;
})(typeof globalThis !== "undefined" ? globalThis : this, function (errors) {
  "use strict";

  const { GammaError } = errors;
  const LABELS = ["ai", "real"];
  const MAX_NOTE = 2000;
  // What the server said, without the bulky or volatile parts (heatmap URL, timings, cached).
  const KEPT_FIELDS = ["ai_probability", "verdict", "mask_fraction", "sources", "model", "image"];

  function createFeedback(ctx) {
    const { transport } = ctx;

    return async function feedback(settings, params) {
      if (!LABELS.includes(params.label)) throw new GammaError("extension_error", "label must be 'ai' or 'real'");
      const result = params.result || {};
      const sha256 = params.sha256 || (result.image && result.image.sha256);
      if (!sha256) throw new GammaError("extension_error", "This result has no image digest to report");
      const kept = {};
      for (const field of KEPT_FIELDS) if (result[field] !== undefined) kept[field] = result[field];
      const payload = { sha256, result: kept, label: params.label };
      if (params.note) payload.note = String(params.note).slice(0, MAX_NOTE);
      const answer = await transport.request(settings, "POST", "/v1/feedback", {
        body: JSON.stringify(payload),
        headers: { "Content-Type": "application/json" },
      });
      return answer.body || {};
    };
  }

  return { createFeedback };
});

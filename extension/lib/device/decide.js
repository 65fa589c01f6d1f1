/*
 * The decision of gamma_detect/runtime/detector.py, read from the manifest: the crop policy's
 * combine rule (crop_policy.combine_rule: its name picks the formula, its fields give the
 * constants), the verdict bands, the abstention rule, and the result's fields. A rule this file
 * does not know (a newer model's decision) is refused with DeviceUnsupported, never guessed: the
 * extension then asks the server.
 */
(function (root, factory) {
  const node = typeof module === "object" && module.exports;
  const api = factory(node ? require("../contract.js") : root.GammaDetect.contract);
  if (node) module.exports = api;
  else root.GammaDetect.device.decide = api;
})(typeof globalThis !== "undefined" ? globalThis : this, function (contract) {
  "use strict";

  class DeviceUnsupported extends Error {
    constructor(message) {
      super(message);
      this.code = "device_unsupported";
    }
  }

  // A manifest section that changes the decision beyond the combine rule (a fused rule, issue 21) needs code that
  // reads it: refused by name until this file implements it.
  const DECISION_SECTION = /decision|fusion|localis|localiz/i;

  function logit(p, eps) {
    const q = Math.min(1 - eps, Math.max(eps, p));
    return Math.log(q) - Math.log1p(-q);
  }

  // combine_rule.name -> (view probabilities, the rule's fields) -> { probability, logits }
  const COMBINE = {
    mean_logit(probabilities, rule) {
      if (typeof rule.eps !== "number") throw new DeviceUnsupported("combine rule mean_logit without eps");
      const logits = Array.from(probabilities, (p) => logit(p, rule.eps));
      const mean = logits.reduce((a, b) => a + b, 0) / logits.length;
      return { probability: 1 / (1 + Math.exp(-mean)), logits };
    },
  };

  /** The decision the manifest describes; throws DeviceUnsupported for rules this runtime lacks. */
  function fromManifest(manifest) {
    const unknown = Object.keys(manifest).filter((k) => DECISION_SECTION.test(k));
    if (unknown.length) throw new DeviceUnsupported("the model's manifest has sections this extension cannot apply: " + unknown.join(", "));
    const policy = manifest.crop_policy || {};
    const rule = policy.combine_rule || { name: policy.combine };
    if (!Object.hasOwn(COMBINE, rule.name)) throw new DeviceUnsupported("combine rule " + rule.name + " is not implemented on device");
    const bands = manifest.verdict_bands;
    if (!Array.isArray(bands) || !bands.length) throw new DeviceUnsupported("the manifest has no verdict bands");
    const abstention = abstentionRule(manifest.abstention);
    return {
      combine: (probabilities) => COMBINE[rule.name](probabilities, rule),
      verdict: (p) => verdict(p, bands),
      abstention,
      classes: manifest.source_classes,
      bands,
    };
  }

  /** gamma_detect/verdict.py: the band holding p (max exclusive). */
  function verdict(p, bands) {
    for (const band of bands) if (band.min <= p && p < band.max) return band.name;
    return p >= bands[bands.length - 1].min ? bands[bands.length - 1].name : bands[0].name;
  }

  const UNCERTAIN = "uncertain";
  const AI_SIDE = contract.VERDICTS.slice(contract.VERDICTS.indexOf(UNCERTAIN) + 1);
  const [VIEW_SPREAD] = contract.UNCERTAIN_REASONS;

  /** gamma_detect/abstain.py's rule; the re-encoding check needs the server's JPEG encoder: refused on device. */
  function abstentionRule(data) {
    const spread = data && data.max_view_spread !== null && data.max_view_spread !== undefined ? Number(data.max_view_spread) : Infinity;
    if (data && data.max_reencode_shift !== null && data.max_reencode_shift !== undefined) {
      throw new DeviceUnsupported("the abstention's JPEG re-encoding check runs on the server only");
    }
    return { reason: (band, viewSpread) => (AI_SIDE.includes(band) && viewSpread > spread ? VIEW_SPREAD : null) };
  }

  function std(values) {
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    return Math.sqrt(values.reduce((a, b) => a + (b - mean) * (b - mean), 0) / values.length);
  }

  const round4 = (v) => Math.round(v * 1e4) / 1e4;

  /**
   * The result's stable fields (Detector.result): from the views' probabilities, the stitched
   * head-1 mask (Float32Array) and the stitched head-2 maps (channels last).
   */
  function result(decision, probabilities, mask, shares) {
    const { probability, logits } = decision.combine(probabilities);
    const band = decision.verdict(probability);
    const reason = decision.abstention.reason(band, std(logits));
    let marked = 0;
    for (let i = 0; i < mask.length; i += 1) if (mask[i] > 0.5) marked += 1;
    const C = decision.classes.length;
    const counts = new Array(C).fill(0);
    for (let o = 0; o < shares.length; o += C) {
      let best = 0;
      for (let c = 1; c < C; c += 1) if (shares[o + c] > shares[o + best]) best = c;
      counts[best] += 1;
    }
    const pixels = shares.length / C;
    const sources = {};
    decision.classes.forEach((name, c) => (sources[name] = round4(counts[c] / pixels)));
    return {
      ai_probability: round4(probability),
      verdict: reason ? UNCERTAIN : band,
      uncertain_reason: reason,
      mask_fraction: round4(mask.length ? marked / mask.length : 0),
      sources,
      probability,
    };
  }

  return { DeviceUnsupported, fromManifest, verdict, result, logit };
});

/*
 * The decision of gamma_detect/runtime/detector.py and gamma_detect/decision.py, read from the
 * manifest: the crop policy's combine rule (crop_policy.combine_rule: its name picks the formula,
 * its fields the constants), the `decision` section (logistic fusion of view logits and region
 * evidence: features, weights, bias, map side, top share; or `either`, two such rules of which the
 * region's may raise the verdict to `ai` alone), `mask_calibration`, the verdict bands,
 * the abstention rule, and the result's fields (ai_content with the strongest region). A rule this
 * file does not know is refused with DeviceUnsupported, never guessed: the extension then asks the
 * server.
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

  // gamma_detect/decision.py's constants (not in the manifest; test_extension_device_port.py checks they agree):
  // the clip of its logits, the head-2 classes that make the region share; and the Python runtime's map sides
  // (detector.py MASK_SIDE = the server's heatmap side, SHARE_SIDE).
  const EVIDENCE_EPS = 1e-4;
  const REGION_CLASSES = Object.freeze(["generated", "inpainted"]);
  const MASK_SIDE = 512;
  const SHARE_SIDE = 128;
  const VIEW_FEATURES = ["mean_logit", "max_view_logit"];
  const EVIDENCE = ["mask_top_logit", "mask_peak_logit", "generated_share_logit", "mask_contrast_logit"];

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

  /** decision.py read_decision: none is the mean view logit alone; `either` is Either, else a Decision. */
  function fusionRule(data) {
    if (!data) return { features: ["mean_logit"], weights: [1], bias: 0, mapSide: 128, topShare: 0.05, plain: true };
    return data.rule === "either" ? eitherRule(data) : logisticRule(data);
  }

  /** decision.py Decision.from_dict: a logistic fusion, nothing else. */
  function logisticRule(data) {
    if (data.rule !== "logistic_fusion") throw new DeviceUnsupported("decision rule " + data.rule + " is not implemented on device");
    const known = VIEW_FEATURES.concat(EVIDENCE);
    const unknown = (data.features || []).filter((f) => !known.includes(f));
    if (unknown.length || data.features.length !== data.weights.length) throw new DeviceUnsupported("decision features " + unknown.join(", ") + " are not implemented on device");
    const rule = { features: data.features.slice(), weights: data.weights.map(Number), bias: Number(data.bias), mapSide: Number(data.map_side || 128), topShare: Number(data.top_share === undefined ? 0.05 : data.top_share) };
    rule.plain = rule.features.length === 1 && rule.features[0] === "mean_logit" && rule.weights[0] === 1 && rule.bias === 0;
    rule.usesRegions = rule.features.some((f) => EVIDENCE.includes(f));
    rule.logit = (values) => rule.features.reduce((sum, f, i) => sum + rule.weights[i] * values[f], rule.bias);
    return rule;
  }

  /**
   * decision.py Either: the whole rule's logit, raised where the region's reaches its `ai` edge to the larger of it
   * and the region's shifted onto the whole rule's `ai` edge; with a region `likely_ai` edge (finite, under its `ai`
   * edge), between the region's two edges to the larger of it and the region's mapped linearly onto the whole
   * rule's `likely_ai`..`ai` span.
   */
  function eitherRule(data) {
    if (!data.whole || !data.region) throw new DeviceUnsupported("decision rule either without its two rules");
    const whole = logisticRule(data.whole);
    const region = logisticRule(data.region);
    const wholeEdge = Number(data.whole.ai_edge_logit);
    const regionEdge = data.region.ai_edge_logit === null ? NaN : Number(data.region.ai_edge_logit);
    if (!Number.isFinite(regionEdge) || whole.mapSide !== region.mapSide || whole.topShare !== region.topShare) {
      throw new DeviceUnsupported("decision rule either needs a finite region edge and one map side and top share");
    }
    const finite = (v) => v !== null && v !== undefined && Number.isFinite(Number(v));
    const regionLikely = finite(data.region.likely_ai_edge_logit) && Number(data.region.likely_ai_edge_logit) < regionEdge ? Number(data.region.likely_ai_edge_logit) : null;
    const wholeLikely = finite(data.whole.likely_ai_edge_logit) ? Number(data.whole.likely_ai_edge_logit) : -Infinity;
    if (regionLikely !== null && !(Number.isFinite(wholeLikely) && Number.isFinite(wholeEdge) && wholeLikely < wholeEdge)) {
      throw new DeviceUnsupported("decision rule either: a region likely_ai edge needs the whole rule's likely_ai band");
    }
    const logit = (values) => {
      const z = whole.logit(values);
      const r = region.logit(values);
      if (r >= regionEdge) return Math.max(z, wholeEdge + r - regionEdge);
      if (regionLikely !== null && r >= regionLikely) {
        return Math.max(z, wholeLikely + (r - regionLikely) * (wholeEdge - wholeLikely) / (regionEdge - regionLikely));
      }
      return z;
    };
    return { mapSide: region.mapSide, topShare: region.topShare, plain: false, usesRegions: whole.usesRegions || region.usesRegions, logit };
  }

  /** decision.py MaskCalibration: p' = sigmoid((logit(p) - bias) / temperature); identity without one. */
  function maskCalibration(data) {
    const bias = data ? Number(data.bias) : 0;
    const temperature = data && data.temperature !== undefined ? Number(data.temperature) : 1;
    if (bias === 0 && temperature === 1) return (mask) => mask;
    return (mask) => mask.map((p) => 1 / (1 + Math.exp(-(logit(p, EVIDENCE_EPS) - bias) / temperature)));
  }

  /**
   * decision.py region_evidence: [mask_top_logit, mask_peak_logit, generated_share_logit, mask_contrast_logit]
   * from the raw head-1 map and the head-2 maps (channels last) stitched at the rule's map side.
   */
  function regionEvidence(rule, classes, mask, shares) {
    const flat = Float32Array.from(mask).sort();
    const k = Math.max(1, Math.round(rule.topShare * flat.length)); // Python's round() on a non-tie
    let top = 0;
    for (let i = flat.length - k; i < flat.length; i += 1) top += flat[i];
    const C = classes.length;
    const picked = REGION_CLASSES.map((c) => classes.indexOf(c));
    let region = 0;
    for (let o = 0; o < shares.length; o += C) for (const c of picked) region += shares[o + c];
    const n = flat.length;
    const median = n % 2 ? flat[(n - 1) / 2] : (flat[n / 2 - 1] + flat[n / 2]) / 2; // numpy's median
    const [topLogit, peakLogit, regionLogit, medianLogit] = [top / k, flat[n - 1], region / (shares.length / C), median].map((v) => logit(v, EVIDENCE_EPS));
    return [topLogit, peakLogit, regionLogit, topLogit - medianLogit];
  }

  /** The decision the manifest describes; throws DeviceUnsupported for rules this runtime lacks. */
  function fromManifest(manifest) {
    const fusion = fusionRule(manifest.decision);
    const policy = manifest.crop_policy || {};
    const rule = policy.combine_rule || { name: policy.combine };
    if (!Object.hasOwn(COMBINE, rule.name)) throw new DeviceUnsupported("combine rule " + rule.name + " is not implemented on device");
    const bands = manifest.verdict_bands;
    if (!Array.isArray(bands) || !bands.length) throw new DeviceUnsupported("the manifest has no verdict bands");
    const abstention = abstentionRule(manifest.abstention);
    const combine = (probabilities) => COMBINE[rule.name](probabilities, rule);
    return {
      combine,
      fusion,
      calibrateMask: maskCalibration(manifest.mask_calibration),
      /**
       * Detector.decide: { probability (the manifest's decision), alone (the mean view logit's), logits }; `evidence`
       * gives regionEvidence's values when the rule uses them (a function: stitching is paid only then).
       */
      decide(probabilities, evidence) {
        const combined = combine(probabilities);
        if (fusion.plain) return Object.assign({ alone: combined.probability }, combined);
        const values = { mean_logit: combined.logits.reduce((a, b) => a + b, 0) / combined.logits.length, max_view_logit: Math.max(...combined.logits) };
        if (fusion.usesRegions) evidence().forEach((v, i) => (values[EVIDENCE[i]] = v));
        const z = fusion.logit(values);
        return { probability: 1 / (1 + Math.exp(-z)), alone: combined.probability, logits: combined.logits };
      },
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
   * decision.py strongest_region: the connected part (8-connected) above 0.5 with the most mass, as
   * {box: [left, top, right, bottom] fractions, share}, or null when no pixel stands out.
   */
  function strongestRegion(mask, width, height) {
    const labels = new Int32Array(mask.length);
    const stack = new Int32Array(mask.length);
    let best = null;
    let next = 0;
    for (let start = 0; start < mask.length; start += 1) {
      if (!(mask[start] > 0.5) || labels[start]) continue;
      next += 1; // components numbered in raster order of their first pixel, as OpenCV's labelling
      const part = { mass: 0, area: 0, x0: width, y0: height, x1: 0, y1: 0 };
      let top = 0;
      stack[top++] = start;
      labels[start] = next;
      while (top) {
        const i = stack[--top];
        const x = i % width;
        const y = (i - x) / width;
        part.mass += mask[i];
        part.area += 1;
        part.x0 = Math.min(part.x0, x);
        part.y0 = Math.min(part.y0, y);
        part.x1 = Math.max(part.x1, x);
        part.y1 = Math.max(part.y1, y);
        for (let dy = -1; dy <= 1; dy += 1) {
          for (let dx = -1; dx <= 1; dx += 1) {
            const nx = x + dx;
            const ny = y + dy;
            if (nx < 0 || ny < 0 || nx >= width || ny >= height) continue;
            const j = ny * width + nx;
            if (mask[j] > 0.5 && !labels[j]) {
              labels[j] = next;
              stack[top++] = j;
            }
          }
        }
      }
      if (!best || part.mass > best.mass) best = part;
    }
    if (!best) return null;
    return { box: [best.x0 / width, best.y0 / height, (best.x1 + 1) / width, (best.y1 + 1) / height].map(round4), share: round4(best.area / mask.length) };
  }

  /**
   * The result's stable fields (Detector.result): from the decision's scores, the stitched head-1 mask
   * (calibrated, {data, width, height}) and the stitched head-2 maps (channels last).
   */
  function result(decision, scores, mask, shares) {
    const { probability, alone, logits } = scores;
    const band0 = decision.verdict(probability);
    const reason = decision.abstention.reason(band0, std(logits));
    const band = reason ? UNCERTAIN : band0;
    const regionDecided = AI_SIDE.includes(band) && !AI_SIDE.includes(decision.verdict(alone));
    const extents = contract.AI_CONTENT_EXTENTS;
    const extent = !AI_SIDE.includes(band) ? extents[2] : extents[regionDecided ? 1 : 0];
    let marked = 0;
    for (let i = 0; i < mask.data.length; i += 1) if (mask.data[i] > 0.5) marked += 1;
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
      verdict: band,
      uncertain_reason: reason,
      mask_fraction: round4(mask.data.length ? marked / mask.data.length : 0),
      sources,
      verdict_reason: regionDecided ? "region" : "pixels",
      ai_content: { extent, region: strongestRegion(mask.data, mask.width, mask.height) },
    };
  }

  return { DeviceUnsupported, fromManifest, verdict, result, logit, regionEvidence, strongestRegion, EVIDENCE_EPS, REGION_CLASSES, MASK_SIDE, SHARE_SIDE };
});

/*
 * Verdicts: the words the server chose (the contract's bands) turned into colours and phrases.
 *
 * The band edges live in the model's manifest on the server; the extension
 * never re-derives a verdict from the probability, it only shows the word the
 * server chose. Loaded as a classic script (content script, module worker
 * side-effect import) or with require() in Node's tests.
 */
(function (root, factory) {
  const node = typeof module === "object" && module.exports;
  const api = factory(node ? require("./contract.js") : root.GammaDetect.contract);
  if (node) module.exports = api;
  else root.GammaDetect.verdicts = api;
})(typeof globalThis !== "undefined" ? globalThis : this, function (contract) {
  "use strict";

  // How each of the contract's verdict bands looks (a test checks every band has one).
  // group: what the page counts call it; colour: badge/overlay accent (AA contrast on white text).
  const VERDICTS = Object.freeze({
    real: { label: "Real", short: "Real", group: "real", colour: "#1b7a3a" },
    likely_real: { label: "Likely real", short: "Likely real", group: "real", colour: "#3d7d4f" },
    uncertain: { label: "Uncertain", short: "Unsure", group: "uncertain", colour: "#8a6100" },
    likely_ai: { label: "Likely AI-generated", short: "Likely AI", group: "ai", colour: "#c2410c" },
    ai: { label: "AI-generated", short: "AI", group: "ai", colour: "#b91c1c" },
  });

  const UNKNOWN = Object.freeze({ label: "Unknown verdict", short: "?", group: "unknown", colour: "#52525b" });

  // What the user can say an image is ("Report a mistake"), for each of the contract's feedback labels.
  const LABELS = Object.freeze({ ai: "AI-generated", real: "Real" });

  /** The presentation of a verdict the contract names; anything else is unknown, never guessed. */
  function describeVerdict(verdict) {
    return contract.VERDICTS.includes(verdict) && Object.hasOwn(VERDICTS, verdict) ? VERDICTS[verdict] : UNKNOWN;
  }

  /** 0.934 -> "93%", 0.0004 -> "<1%", 0.9996 -> ">99%"; anything not a number -> "–". */
  function formatProbability(p) {
    if (typeof p !== "number" || !Number.isFinite(p)) return "–";
    const clamped = Math.min(1, Math.max(0, p));
    const pct = Math.round(clamped * 100);
    if (pct === 0 && clamped > 0) return "<1%";
    if (pct === 100 && clamped < 1) return ">99%";
    return pct + "%";
  }

  /** "gamma-effnet 1.2.0 (onnxruntime)" from result.model; tolerant of missing fields. */
  function formatModel(model) {
    if (!model || typeof model !== "object") return "unknown model";
    const name = model.name || "model";
    const version = model.version ? " " + model.version : "";
    const backend = model.backend ? " (" + model.backend + ")" : "";
    return name + version + backend;
  }

  /** Where the check ran: "Checked on this device (fp32, 2 threads, 412 ms)", or "" for the server's results. */
  function formatDevice(result) {
    const model = (result && result.model) || {};
    const here = model.on_device;
    if (!here) return "";
    const ms = result.timings && typeof result.timings.total_ms === "number" ? ", " + Math.round(result.timings.total_ms) + " ms" : "";
    const threads = here.threads ? ", " + here.threads + (here.threads === 1 ? " thread" : " threads") : "";
    return "Checked on this device (" + (model.variant || "model") + threads + ms + ")";
  }

  /** The words the overlay shows for a finished result. */
  function summarise(result) {
    const v = describeVerdict(result && result.verdict);
    return {
      verdict: (result && result.verdict) || "unknown",
      label: v.label,
      short: v.short,
      group: v.group,
      colour: v.colour,
      probability: formatProbability(result && result.ai_probability),
      model: formatModel(result && result.model),
      device: formatDevice(result),
    };
  }

  /** Short text for a scan badge: "AI 97%", "Real 3%", "Unsure 48%". */
  function badgeText(result) {
    const s = summarise(result);
    return s.short + " " + s.probability;
  }

  return { VERDICTS, UNKNOWN, LABELS, describeVerdict, formatProbability, formatModel, formatDevice, summarise, badgeText };
});

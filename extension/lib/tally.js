/*
 * The page's counts the popup shows: checked, AI, real, uncertain, skipped,
 * errors, pending. One image element counts once, whatever its state.
 */
(function (root, factory) {
  const verdicts = typeof module === "object" && module.exports ? require("./verdicts.js") : root.GammaDetect.verdicts;
  const api = factory(verdicts);
  if (typeof module === "object" && module.exports) module.exports = api;
  else (root.GammaDetect = root.GammaDetect || {}).tally = api;
})(typeof globalThis !== "undefined" ? globalThis : this, function (verdicts) {
  "use strict";

  /** entries: iterable of { state, result? }. */
  function tally(entries) {
    const counts = { checked: 0, ai: 0, real: 0, uncertain: 0, skipped: 0, errors: 0, pending: 0 };
    for (const entry of entries) {
      switch (entry.state) {
        case "done": {
          counts.checked += 1;
          const group = verdicts.describeVerdict(entry.result && entry.result.verdict).group;
          if (group === "ai") counts.ai += 1;
          else if (group === "real") counts.real += 1;
          else counts.uncertain += 1;
          break;
        }
        case "skipped":
          counts.skipped += 1;
          break;
        case "error":
          counts.errors += 1;
          break;
        default:
          counts.pending += 1;
      }
    }
    return counts;
  }

  /** Toolbar badge text: number of AI (incl. likely AI) images, "" when none. */
  function actionBadge(counts) {
    if (!counts || !counts.ai) return "";
    return counts.ai > 99 ? "99+" : String(counts.ai);
  }

  return { tally, actionBadge };
});

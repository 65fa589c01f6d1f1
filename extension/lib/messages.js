/*
 * The message types the extension's parts send each other (chrome.runtime and
 * chrome.tabs messages), and which of them a content script may send: the one
 * place the strings are written.
 */
(function (root, factory) {
  const api = factory();
  if (typeof module === "object" && module.exports) module.exports = api;
  else (root.GammaDetect = root.GammaDetect || {}).messages = api;
})(typeof globalThis !== "undefined" ? globalThis : this, function () {
  "use strict";

  const TYPES = Object.freeze({
    // content script -> service worker
    analyze: "gamma:analyze",
    heatmap: "gamma:heatmap",
    feedback: "gamma:feedback",
    css: "gamma:css",
    pageConfig: "gamma:pageConfig",
    counts: "gamma:counts",
    openHelp: "gamma:openHelp",
    openOptions: "gamma:openOptions",
    // popup and options pages -> service worker
    health: "gamma:health",
    scanTab: "gamma:scanTab",
    tabState: "gamma:tabState",
    deviceStatus: "gamma:deviceStatus",
    // service worker -> content script
    checkImage: "gamma:checkImage",
    setScan: "gamma:setScan",
    getState: "gamma:getState",
    progress: "gamma:progress",
    config: "gamma:config",
  });

  // What a content script may ask the worker for. The rest (health with other settings, other
  // tabs' state, scans) is for the extension's own pages: a compromised renderer must not turn
  // the worker, with its host access and API key, into a general proxy.
  const FROM_CONTENT_SCRIPTS = Object.freeze(
    ["analyze", "heatmap", "feedback", "css", "pageConfig", "counts", "openHelp", "openOptions"].map((name) => TYPES[name]),
  );

  return { TYPES, FROM_CONTENT_SCRIPTS };
});

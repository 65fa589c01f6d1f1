/*
 * Where one check runs, by the settings' mode: "server"; "device" (never the server); "auto" (on device,
 * the server when the device can't run the model: no runtime in this build, or a rule it does not implement;
 * an image the device refuses is refused as the server would, so it is not sent there).
 */
(function (root, factory) {
  const node = typeof module === "object" && module.exports;
  const api = factory(node ? require("../urls.js") : root.GammaDetect.urls, node ? require("../errors.js") : root.GammaDetect.errors);
  if (node) module.exports = api;
  else root.GammaDetect.device.route = api;
})(typeof globalThis !== "undefined" ? globalThis : this, function (urls, errors) {
  "use strict";

  const FALLBACK = new Set(["device_unavailable", "device_unsupported"]);

  /** deps: { getSettings, server(message) -> answer, device(key, {force, scan}) -> answer }. */
  function createRouter(deps) {
    return async function analyze(message) {
      const settings = await deps.getSettings();
      if (settings.mode === "server") return deps.server(message);
      const key = urls.imageKey(message.src, message.pageUrl);
      if (!key) throw new errors.GammaError("image_fetch_failed", "This kind of image address can't be fetched");
      try {
        return await deps.device(key, { force: message.force, scan: message.scan });
      } catch (err) {
        if (settings.mode === "auto" && FALLBACK.has(err && err.code)) return deps.server(message);
        throw err;
      }
    };
  }

  return { createRouter, FALLBACK };
});

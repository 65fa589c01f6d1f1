/*
 * The heatmap PNG a result points at, fetched with the API key and handed to the
 * content script as { type, base64 } (a content script can't hold the key).
 */
(function (root, factory) {
  const node = typeof module === "object" && module.exports;
  const G = node ? null : root.GammaDetect;
  const deps = node ? [require("../urls.js"), require("../errors.js")] : [G.urls, G.errors];
  const api = factory.apply(null, deps);
  if (node) module.exports = api;
  else (G.apiParts = G.apiParts || {}).heatmap = api;
})(typeof globalThis !== "undefined" ? globalThis : this, function (urls, errors) {
  "use strict";

  const { GammaError } = errors;
  // Only the heatmaps the server pointed at: this is no general proxy to the server.
  const HEATMAP_PATH = /^\/(?:[^?#]*\/)?v1\/heatmaps\/[^?#]+$/;

  function createHeatmap(ctx) {
    const { opts, transport } = ctx;

    return async function heatmap(settings, path) {
      if (typeof path !== "string" || !HEATMAP_PATH.test(path) || path.includes("..")) {
        throw new GammaError("extension_error", "Not a heatmap address: " + String(path).slice(0, 80));
      }
      await transport.gateFor(settings.serverUrl).wait();
      let response;
      try {
        response = await transport.fetchWithTimeout(
          urls.serverUrl(settings.serverUrl, path),
          { headers: transport.headersFor(settings, { Accept: "image/png,image/*" }), credentials: "omit" },
          opts.requestTimeoutMs,
        );
      } catch (err) {
        throw new GammaError("server_unreachable", "Can't reach " + settings.serverUrl);
      }
      if (!response.ok) throw await transport.errorFromResponse(response);
      const buffer = new Uint8Array(await response.arrayBuffer());
      return { type: (response.headers.get("content-type") || "image/png").split(";")[0], base64: toBase64(buffer) };
    };
  }

  function toBase64(bytes) {
    let binary = "";
    const chunk = 0x8000;
    for (let i = 0; i < bytes.length; i += chunk) binary += String.fromCharCode.apply(null, bytes.subarray(i, i + chunk));
    return btoa(binary);
  }

  return { createHeatmap };
});

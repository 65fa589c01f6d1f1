/*
 * Bytes mode: the extension downloads the image itself, with the browser's
 * cookies, and uploads only its bytes (the server never learns the address).
 */
(function (root, factory) {
  const node = typeof module === "object" && module.exports;
  const G = node ? null : root.GammaDetect;
  const api = factory(node ? require("../errors.js") : G.errors);
  if (node) module.exports = api;
  else (G.apiParts = G.apiParts || {}).download = api;
})(typeof globalThis !== "undefined" ? globalThis : this, function (errors) {
  "use strict";

  const { GammaError } = errors;

  /** Resolves to { blob, type, name } or throws GammaError; maxBytes: the server's upload limit. */
  async function downloadImage(transport, key, { maxBytes, timeoutMs }) {
    let response;
    try {
      response = await transport.fetchWithTimeout(key, { credentials: "include", redirect: "follow" }, timeoutMs);
    } catch (err) {
      throw new GammaError("image_fetch_failed", err && err.name === "AbortError" ? "Downloading the image timed out" : "The image could not be downloaded");
    }
    if (!response.ok) throw new GammaError("image_fetch_failed", "The image's server answered HTTP " + response.status, { status: response.status });
    const type = (response.headers.get("content-type") || "").split(";")[0].trim().toLowerCase();
    if (type.startsWith("text/html")) throw new GammaError("image_fetch_failed", "Got a web page instead of an image (a login may be needed)");
    if (type === "image/svg+xml") throw new GammaError("unsupported_media_type", "SVG graphics are not checked");
    const tooLarge = () => new GammaError("payload_too_large", "The image is larger than " + Math.round(maxBytes / 1048576) + " MB");
    if (Number(response.headers.get("content-length") || 0) > maxBytes) throw tooLarge();
    const blob = await response.blob();
    if (blob.size > maxBytes) throw tooLarge();
    if (blob.size === 0) throw new GammaError("image_fetch_failed", "The image is empty");
    return { blob, type, name: fileNameFor(key, type) };
  }

  /** The upload's file name: the URL's last path segment, made safe, with an extension from the type. */
  function fileNameFor(key, type) {
    let name = "image";
    if (!key.startsWith("data:")) {
      try {
        const last = new URL(key).pathname.split("/").filter(Boolean).pop();
        if (last) name = decodeURIComponent(last).replace(/[^\w.-]+/g, "_").slice(-80) || "image";
      } catch (_) {
        /* keep "image" */
      }
    }
    if (!/\.[a-z0-9]{2,5}$/i.test(name) && type && type.startsWith("image/")) {
      name += "." + type.slice(6).replace("jpeg", "jpg").replace(/[^a-z0-9].*$/, "");
    }
    return name;
  }

  return { downloadImage };
});

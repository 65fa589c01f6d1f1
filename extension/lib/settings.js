/*
 * Settings: defaults, validation, and what the options page stores
 * (chrome.storage.local: never synced, the API key stays on this machine).
 */
(function (root, factory) {
  const urls = typeof module === "object" && module.exports ? require("./urls.js") : root.GammaDetect.urls;
  const api = factory(urls);
  if (typeof module === "object" && module.exports) module.exports = api;
  else (root.GammaDetect = root.GammaDetect || {}).settings = api;
})(typeof globalThis !== "undefined" ? globalThis : this, function (urls) {
  "use strict";

  const DEFAULTS = Object.freeze({
    serverUrl: "http://127.0.0.1:8000",
    apiKey: "",
    autoScanSites: Object.freeze([]),
    badgeUncertain: true,
    // "url": the server is sent the image's address and fetches it itself.
    // "bytes": the extension fetches the image (with the browser's cookies) and
    // uploads the bytes; the server never learns where the image came from.
    sendMode: "url",
    // With sendMode "url": also send the address of the page the image is on.
    sendPageUrl: false,
    // Where images are checked: "server"; "device" (the bundled model in this browser, images go to no
    // server); "auto" (on device, the server where the device cannot run the model).
    mode: "server",
    // Where the on-device model comes from: "bundled" (packed by `npm run build`) or "server" (GET /v1/model
    // of the server above, refreshed when the server's model changes).
    deviceModel: "bundled",
  });

  const SEND_MODES = Object.freeze(["url", "bytes"]);
  const MODES = Object.freeze(["server", "device", "auto"]);
  const DEVICE_MODELS = Object.freeze(["bundled", "server"]);

  /**
   * Merge stored values over the defaults, validating each field.
   * Returns { settings, errors: {field: message} }; invalid fields keep their default.
   */
  function normalizeSettings(raw) {
    const input = raw && typeof raw === "object" ? raw : {};
    const settings = Object.assign({}, DEFAULTS, { autoScanSites: [] });
    const errors = {};

    if (input.serverUrl !== undefined) {
      try {
        settings.serverUrl = urls.normalizeServerUrl(input.serverUrl);
      } catch (err) {
        errors.serverUrl = err.message;
      }
    }
    if (input.apiKey !== undefined) {
      const key = String(input.apiKey).trim();
      if (/[\s\r\n]/.test(key)) errors.apiKey = "The API key cannot contain spaces or line breaks.";
      else settings.apiKey = key;
    }
    if (input.autoScanSites !== undefined) {
      const parsed = urls.parseSiteList(input.autoScanSites);
      settings.autoScanSites = parsed.sites;
      if (parsed.invalid.length) errors.autoScanSites = "Not a site: " + parsed.invalid.join(", ");
    }
    if (input.badgeUncertain !== undefined) settings.badgeUncertain = Boolean(input.badgeUncertain);
    if (input.sendMode !== undefined) {
      if (SEND_MODES.includes(input.sendMode)) settings.sendMode = input.sendMode;
      else errors.sendMode = "Choose what to send: the image's URL or its bytes.";
    }
    if (input.sendPageUrl !== undefined) settings.sendPageUrl = Boolean(input.sendPageUrl);
    if (input.mode !== undefined) {
      if (MODES.includes(input.mode)) settings.mode = input.mode;
      else errors.mode = "Choose where images are checked: on the server, on this device, or automatically.";
    }
    if (input.deviceModel !== undefined) {
      if (DEVICE_MODELS.includes(input.deviceModel)) settings.deviceModel = input.deviceModel;
      else errors.deviceModel = "Choose where the on-device model comes from: bundled or the server.";
    }
    return { settings, errors };
  }

  /**
   * Results depend on which server answered, with which key, and on what it was
   * sent; the result cache is scoped by this string and dropped when it changes.
   */
  function cacheScope(settings) {
    return [settings.serverUrl, settings.apiKey ? "key:" + settings.apiKey.length + ":" + hash(settings.apiKey) : "nokey", settings.sendMode].join("|");
  }

  // Not a security hash: only avoids keeping the raw key in cache metadata.
  function hash(text) {
    let h = 2166136261;
    for (let i = 0; i < text.length; i += 1) {
      h ^= text.charCodeAt(i);
      h = Math.imul(h, 16777619);
    }
    return (h >>> 0).toString(16);
  }

  function autoScanEnabled(settings, pageUrl) {
    return urls.siteMatches(pageUrl, settings.autoScanSites);
  }

  /** Add or remove one site (the popup's "always scan this site"). */
  function toggleSite(list, site, on) {
    const current = Array.isArray(list) ? list.slice() : [];
    const index = current.indexOf(site);
    if (on && index < 0) current.push(site);
    if (!on && index >= 0) current.splice(index, 1);
    return current;
  }

  return { DEFAULTS, SEND_MODES, MODES, DEVICE_MODELS, normalizeSettings, cacheScope, autoScanEnabled, toggleSite };
});

/*
 * Is the server there, ready, and does it take our key? (The popup and the
 * Options page's "Test connection".)
 */
(function (root, factory) {
  const node = typeof module === "object" && module.exports;
  const G = node ? null : root.GammaDetect;
  const api = factory(node ? require("../errors.js") : G.errors);
  if (node) module.exports = api;
  else (G.apiParts = G.apiParts || {}).health = api;
})(typeof globalThis !== "undefined" ? globalThis : this, function (errors) {
  "use strict";

  const PROBE = { retries: 0, timeoutMs: 5000 };

  function createHealth(ctx) {
    const { transport } = ctx;

    /** GET /healthz and /readyz. Never throws: { ok, ready, serverUrl, health, readiness, auth, error }. */
    async function health(settings) {
      const out = { serverUrl: settings.serverUrl, ok: false, ready: false };
      try {
        out.health = (await transport.request(settings, "GET", "/healthz", PROBE)).body;
        out.ok = true;
        try {
          out.readiness = (await transport.request(settings, "GET", "/readyz", PROBE)).body;
          out.ready = true;
        } catch (err) {
          out.readiness = errors.toPlain(err);
        }
        // /healthz is open; the key only matters for the API: check it separately.
        if (settings.apiKey || out.ready) out.auth = await authCheck(settings);
      } catch (err) {
        out.error = errors.toPlain(err);
      }
      return out;
    }

    // An authenticated request that changes nothing: a job id that cannot exist.
    async function authCheck(settings) {
      try {
        await transport.request(settings, "GET", "/jobs/gamma-extension-auth-probe", PROBE);
        return { ok: true };
      } catch (err) {
        if (err.code === "not_found") return { ok: true };
        return { ok: err.code !== "unauthorized", error: errors.toPlain(err) };
      }
    }

    return health;
  }

  return { createHealth };
});

/*
 * One request to the gamma server: auth header, timeout, the error body turned
 * into a GammaError, and the shared 429 gate with retries (Retry-After honoured:
 * every request to a server waits while it has said it is busy).
 */
(function (root, factory) {
  const node = typeof module === "object" && module.exports;
  const G = node ? null : root.GammaDetect;
  const deps = node ? [require("../urls.js"), require("../backoff.js"), require("../errors.js")] : [G.urls, G.backoff, G.errors];
  const api = factory.apply(null, deps);
  if (node) module.exports = api;
  else (G.apiParts = G.apiParts || {}).transport = api;
})(typeof globalThis !== "undefined" ? globalThis : this, function (urls, backoff, errors) {
  "use strict";

  const { GammaError } = errors;

  /**
   * ctx: { opts: {fetch, requestTimeoutMs, maxRetries, maxRetryAfterMs}, now, sleep, random, onEvent }.
   */
  function createTransport(ctx) {
    const { opts, now, sleep, random, onEvent } = ctx;
    const gates = new Map(); // server URL -> rate gate

    function gateFor(server) {
      if (!gates.has(server)) gates.set(server, backoff.createRateGate({ now, sleep }));
      return gates.get(server);
    }

    function headersFor(settings, extra) {
      const headers = Object.assign({ Accept: "application/json" }, extra || {});
      if (settings.apiKey) headers.Authorization = "Bearer " + settings.apiKey;
      return headers;
    }

    async function fetchWithTimeout(url, init, timeoutMs) {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), timeoutMs);
      try {
        return await opts.fetch(url, Object.assign({}, init, { signal: controller.signal }));
      } finally {
        clearTimeout(timer);
      }
    }

    /** The server's error ({"code", "message"}, as server/errors.py sends it); any other body is a generic one. */
    async function errorFromResponse(response) {
      const body = await readBody(response);
      const ours = errors.isServerError(body);
      const code = ours ? body.code : errors.genericCode(response.status);
      const message = ours && typeof body.message === "string" && body.message ? body.message : "HTTP " + response.status;
      const extra = { status: response.status };
      const retryAfterMs = backoff.parseRetryAfter(response.headers.get("retry-after"), now());
      if (retryAfterMs !== null) extra.retryAfterMs = retryAfterMs;
      return new GammaError(code, message, extra);
    }

    /**
     * One API request with auth, the shared 429 gate and retries. Resolves to
     * { status, body } for 2xx, throws GammaError otherwise.
     */
    async function request(settings, method, path, init) {
      const o = init || {};
      const url = urls.serverUrl(settings.serverUrl, path);
      const gate = gateFor(settings.serverUrl);
      const timeoutMs = o.timeoutMs || opts.requestTimeoutMs;
      const maxRetries = o.retries === undefined ? opts.maxRetries : o.retries;
      for (let attempt = 0; ; attempt += 1) {
        const held = gate.remaining();
        // Held by a 429 another request got: say so (a retry of our own 429 was announced below).
        if (held > 0 && o.key && attempt === 0) onEvent(o.key, { state: "waiting", retryInMs: held, attempt });
        await gate.wait();
        let response;
        try {
          response = await fetchWithTimeout(
            url,
            { method, headers: headersFor(settings, o.headers), body: o.body, credentials: "omit", cache: "no-store" },
            timeoutMs,
          );
        } catch (err) {
          if (err && err.name === "AbortError") throw new GammaError("timeout", "No answer from " + settings.serverUrl + " in " + Math.round(timeoutMs / 1000) + " s");
          throw new GammaError("server_unreachable", "Can't reach " + settings.serverUrl);
        }
        if (response.status === 429 || (response.status === 503 && response.headers.get("retry-after"))) {
          const retryAfterMs = backoff.parseRetryAfter(response.headers.get("retry-after"), now());
          const delay = backoff.retryDelay(attempt, retryAfterMs, { maxMs: opts.maxRetryAfterMs, random });
          const tooLong = retryAfterMs !== null && retryAfterMs > opts.maxRetryAfterMs;
          if (attempt >= maxRetries || tooLong) {
            const err = await errorFromResponse(response);
            if (response.status === 429) err.code = "rate_limited";
            if (retryAfterMs !== null) gate.block(Math.min(retryAfterMs, opts.maxRetryAfterMs));
            throw err;
          }
          gate.block(delay);
          if (o.key) onEvent(o.key, { state: "waiting", retryInMs: delay, attempt: attempt + 1 });
          continue;
        }
        if (!response.ok) throw await errorFromResponse(response);
        return { status: response.status, body: await readBody(response) };
      }
    }

    return { request, fetchWithTimeout, gateFor, headersFor, errorFromResponse };
  }

  async function readBody(response) {
    const type = (response.headers.get("content-type") || "").toLowerCase();
    if (type.includes("json")) {
      try {
        return await response.json();
      } catch (_) {
        return null;
      }
    }
    try {
      const text = await response.text();
      return text ? { text } : null;
    } catch (_) {
      return null;
    }
  }

  return { createTransport };
});

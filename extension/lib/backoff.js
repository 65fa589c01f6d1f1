/*
 * Backing off: Retry-After parsing, exponential delays with jitter, and one
 * gate that holds every request to a server while it has said "429".
 */
(function (root, factory) {
  const api = factory();
  if (typeof module === "object" && module.exports) module.exports = api;
  else (root.GammaDetect = root.GammaDetect || {}).backoff = api;
})(typeof globalThis !== "undefined" ? globalThis : this, function () {
  "use strict";

  /**
   * Retry-After is either delta-seconds ("120") or an HTTP date. Returns the wait
   * in milliseconds (>= 0), or null when absent or unparsable.
   */
  function parseRetryAfter(value, nowMs) {
    if (value === null || value === undefined) return null;
    const text = String(value).trim();
    if (!text) return null;
    if (/^\d+(\.\d+)?$/.test(text)) return Math.round(parseFloat(text) * 1000);
    if (!/[a-z]/i.test(text)) return null; // HTTP dates name a month; "-3" is not one
    const when = Date.parse(text);
    if (Number.isNaN(when)) return null;
    return Math.max(0, when - (nowMs === undefined ? Date.now() : nowMs));
  }

  /**
   * Delay before retry number `attempt` (0-based): base * 2^attempt capped at max,
   * "equal jitter" (half fixed, half random) so clients that were refused together
   * do not come back together.
   */
  function backoffDelay(attempt, options) {
    const opts = options || {};
    const base = opts.baseMs === undefined ? 1000 : opts.baseMs;
    const max = opts.maxMs === undefined ? 30000 : opts.maxMs;
    const random = opts.random || Math.random;
    const exp = Math.min(max, base * Math.pow(2, Math.max(0, attempt)));
    return Math.round(exp / 2 + random() * (exp / 2));
  }

  /**
   * The delay to honour after a 429: the server's Retry-After when it gave one
   * (never less than minMs, capped at maxMs), else backoffDelay.
   */
  function retryDelay(attempt, retryAfterMs, options) {
    const opts = options || {};
    const max = opts.maxMs === undefined ? 30000 : opts.maxMs;
    const min = opts.minMs === undefined ? 250 : opts.minMs;
    if (retryAfterMs !== null && retryAfterMs !== undefined) return Math.min(max, Math.max(min, retryAfterMs));
    return backoffDelay(attempt, opts);
  }

  function defaultSleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  /**
   * A gate shared by all requests to one server: after a 429 nobody sends until
   * the time the server asked for has passed.
   */
  function createRateGate(options) {
    const opts = options || {};
    const now = opts.now || Date.now;
    const sleep = opts.sleep || defaultSleep;
    let openAt = 0;
    return {
      /** Hold requests until `ms` from now (never shortens an existing hold). */
      block(ms) {
        openAt = Math.max(openAt, now() + Math.max(0, ms));
      },
      /** Milliseconds until the gate opens (0 when open). */
      remaining() {
        return Math.max(0, openAt - now());
      },
      /** Resolves once the gate is open. */
      async wait() {
        for (;;) {
          const left = openAt - now();
          if (left <= 0) return;
          await sleep(left);
        }
      },
      reset() {
        openAt = 0;
      },
    };
  }

  return { parseRetryAfter, backoffDelay, retryDelay, createRateGate };
});

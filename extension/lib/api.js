/*
 * The backend client the service worker uses for every call, put together from
 * lib/api/*.js: analyze (bytes or URL, then the job's long poll), heatmaps,
 * feedback, health. Here: at most `concurrency` checks in flight, one shared
 * check per image, results cached per image URL.
 *
 * Everything it touches is injected (fetch, clock, sleep, cache, settings), so
 * Node's tests drive it against a fake server.
 */
(function (root, factory) {
  const node = typeof module === "object" && module.exports;
  const G = node ? null : root.GammaDetect;
  const deps = node
    ? [require("./contract.js"), require("./urls.js"), require("./queue.js"), require("./errors.js"), require("./settings.js"), require("./cache.js"), require("./api/transport.js"), require("./api/jobs.js"), require("./api/health.js"), require("./api/feedback.js"), require("./api/heatmap.js")]
    : [G.contract, G.urls, G.queue, G.errors, G.settings, G.cache, G.apiParts.transport, G.apiParts.jobs, G.apiParts.health, G.apiParts.feedback, G.apiParts.heatmap];
  const api = factory.apply(null, deps);
  if (node) module.exports = api;
  else G.api = api;
})(typeof globalThis !== "undefined" ? globalThis : this, function (contract, urls, queue, errors, settingsLib, cacheLib, transportLib, jobsLib, healthLib, feedbackLib, heatmapLib) {
  "use strict";

  const { GammaError } = errors;

  const DEFAULTS = {
    concurrency: 4, // checks in flight at once (each holds one long-poll)
    maxRetries: 5, // 429/503 answers tolerated per request before giving up
    pollWaitS: 25, // GET /jobs/<id>?wait=N (N from 0 to contract.LIMITS.longpoll_seconds, 30: above it is a 400)
    deadlineMs: 3 * 60 * 1000, // one check, queueing on the server included
    requestTimeoutMs: 30 * 1000, // one plain request
    maxImageBytes: contract.LIMITS.upload_bytes, // refuse to upload bigger files (bytes mode): the server's default limit
    maxRetryAfterMs: 60 * 1000, // a longer Retry-After fails the check as rate_limited
  };

  function createClient(options) {
    const opts = Object.assign({}, DEFAULTS, options || {});
    const ctx = {
      opts,
      now: opts.now || Date.now,
      sleep: opts.sleep || ((ms) => new Promise((r) => setTimeout(r, ms))),
      random: opts.random || Math.random,
      onEvent: opts.onEvent || function () {},
    };
    ctx.transport = transportLib.createTransport(ctx);
    const jobs = jobsLib.createJobs(ctx);
    const checkHealth = healthLib.createHealth(ctx);
    const sendFeedback = feedbackLib.createFeedback(ctx);
    const fetchHeatmap = heatmapLib.createHeatmap(ctx);
    const cache = opts.cache || cacheLib.createResultCache({ storage: null });
    const limiter = queue.createLimiter(opts.concurrency);
    const dedup = queue.createDedup();

    async function currentSettings() {
      const raw = typeof opts.getSettings === "function" ? await opts.getSettings() : opts.settings;
      return settingsLib.normalizeSettings(raw).settings;
    }

    /**
     * Check one image. Resolves to { key, result, fromCache } or throws GammaError.
     * `force` skips the cache (a "Try again").
     */
    async function analyze(params) {
      const settings = await currentSettings();
      const key = urls.imageKey(params.src, params.pageUrl);
      if (!key) throw new GammaError("image_fetch_failed", "This kind of image address can't be fetched");
      const cacheKey = settingsLib.cacheScope(settings) + "\n" + key;
      if (!params.force) {
        const hit = await cache.get(cacheKey);
        if (hit && hit.result) return { key, result: hit.result, fromCache: true };
        if (hit && hit.error) throw Object.assign(new GammaError(hit.error.code, hit.error.message), { fromCache: true });
      }
      return dedup.run(cacheKey, () =>
        limiter.run(async () => {
          try {
            const result = await jobs.run(settings, key, params.pageUrl);
            await cache.set(cacheKey, { result });
            return { key, result, fromCache: false };
          } catch (err) {
            const gerr = err instanceof GammaError ? err : new GammaError("extension_error", String((err && err.message) || err));
            if (errors.describeError(gerr.code).cache) await cache.set(cacheKey, { error: { code: gerr.code, message: gerr.message } });
            throw gerr;
          }
        }),
      );
    }

    return {
      analyze,
      /** Health of the configured server, or of the settings given (Options' "Test connection"). */
      health: async (override) => checkHealth(override ? settingsLib.normalizeSettings(override).settings : await currentSettings()),
      feedback: async (params) => sendFeedback(await currentSettings(), params),
      heatmap: async (path) => fetchHeatmap(await currentSettings(), path),
      /** GET /v1/model: the served model's manifest and its ONNX files by sha256 (the on-device runtime's source). */
      model: async () => (await ctx.transport.request(await currentSettings(), "GET", "/v1/model", { retries: 1 })).body,
      /** The headers a request to the configured server carries (its API key), for the runtime's model download. */
      serverHeaders: async () => ctx.transport.headersFor(await currentSettings(), { Accept: "application/octet-stream" }),
      get stats() {
        return { active: limiter.active, pending: limiter.pending, inflight: dedup.size };
      },
    };
  }

  return { createClient, DEFAULTS };
});

/*
 * The backend client the service worker uses for every call: analyze (bytes or
 * URL), long-polling the job, heatmaps, feedback, health. It limits concurrency,
 * shares in-flight checks of the same image, caches results per image URL, and
 * holds every request while the server has answered 429 (Retry-After honoured).
 *
 * Everything it touches is injected (fetch, clock, sleep, cache, settings), so
 * Node's tests drive it against a fake server.
 */
(function (root, factory) {
  const node = typeof module === "object" && module.exports;
  const G = node ? null : root.GammaDetect;
  const deps = node
    ? [require("./urls.js"), require("./backoff.js"), require("./queue.js"), require("./errors.js"), require("./settings.js")]
    : [G.urls, G.backoff, G.queue, G.errors, G.settings];
  const api = factory.apply(null, deps);
  if (node) module.exports = api;
  else G.api = api;
})(typeof globalThis !== "undefined" ? globalThis : this, function (urls, backoff, queue, errors, settingsLib) {
  "use strict";

  const { GammaError } = errors;

  const DEFAULTS = {
    concurrency: 4, // checks in flight at once (each holds one long-poll)
    maxRetries: 5, // 429/503 answers tolerated per request before giving up
    pollWaitS: 25, // GET /jobs/<id>?wait=N (the server caps N at 30)
    deadlineMs: 3 * 60 * 1000, // one check, queueing on the server included
    requestTimeoutMs: 30 * 1000, // one plain request
    maxImageBytes: 20 * 1024 * 1024, // refuse to upload bigger files (bytes mode)
    maxRetryAfterMs: 60 * 1000, // a longer Retry-After fails the check as rate_limited
  };

  function createClient(options) {
    const opts = Object.assign({}, DEFAULTS, options || {});
    const fetchImpl = opts.fetch;
    const now = opts.now || Date.now;
    const sleep = opts.sleep || ((ms) => new Promise((r) => setTimeout(r, ms)));
    const random = opts.random || Math.random;
    const onEvent = opts.onEvent || function () {};
    const cache = opts.cache || memoryCache();
    const limiter = queue.createLimiter(opts.concurrency);
    const dedup = queue.createDedup();
    const gates = new Map(); // server URL -> rate gate

    function gateFor(server) {
      if (!gates.has(server)) gates.set(server, backoff.createRateGate({ now, sleep }));
      return gates.get(server);
    }

    async function currentSettings() {
      const raw = typeof opts.getSettings === "function" ? await opts.getSettings() : opts.settings;
      return settingsLib.normalizeSettings(raw).settings;
    }

    function headersFor(settings, extra) {
      const headers = Object.assign({ Accept: "application/json" }, extra || {});
      if (settings.apiKey) headers.Authorization = "Bearer " + settings.apiKey;
      return headers;
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

    function errorFromResponse(status, body, headers) {
      let code = errors.codeForStatus(status);
      let message = "HTTP " + status;
      // {"error": {"code", "message"}}, {"error": "code", "message"} or a bare {"code", "message"}.
      const err = body && body.error;
      const detail = err && typeof err === "object" ? err : body && typeof body.code === "string" ? body : null;
      if (detail) {
        if (detail.code) code = String(detail.code);
        if (detail.message) message = String(detail.message);
      } else if (typeof err === "string") {
        code = err;
        if (body.message) message = String(body.message);
      }
      const extra = { status };
      const retryAfterMs = backoff.parseRetryAfter(headers && headers.get("retry-after"), now());
      if (retryAfterMs !== null) extra.retryAfterMs = retryAfterMs;
      return new GammaError(code, message, extra);
    }

    async function fetchWithTimeout(url, init, timeoutMs) {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), timeoutMs);
      try {
        return await fetchImpl(url, Object.assign({}, init, { signal: controller.signal }));
      } finally {
        clearTimeout(timer);
      }
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
            const body = await readBody(response);
            const err = errorFromResponse(response.status, body, response.headers);
            if (response.status === 429) err.code = "rate_limited";
            if (retryAfterMs !== null) gate.block(Math.min(retryAfterMs, opts.maxRetryAfterMs));
            throw err;
          }
          gate.block(delay);
          if (o.key) onEvent(o.key, { state: "waiting", retryInMs: delay, attempt: attempt + 1 });
          continue;
        }
        const body = await readBody(response);
        if (!response.ok) throw errorFromResponse(response.status, body, response.headers);
        return { status: response.status, body };
      }
    }

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

    /** Bytes mode: the extension downloads the image itself, with the browser's cookies. */
    async function loadImage(key) {
      let response;
      try {
        response = await fetchWithTimeout(key, { credentials: "include", redirect: "follow" }, opts.requestTimeoutMs);
      } catch (err) {
        throw new GammaError("image_fetch_failed", err && err.name === "AbortError" ? "Downloading the image timed out" : "The image could not be downloaded");
      }
      if (!response.ok) throw new GammaError("image_fetch_failed", "The image's server answered HTTP " + response.status, { status: response.status });
      const type = (response.headers.get("content-type") || "").split(";")[0].trim().toLowerCase();
      if (type.startsWith("text/html")) throw new GammaError("image_fetch_failed", "Got a web page instead of an image (a login may be needed)");
      if (type === "image/svg+xml") throw new GammaError("unsupported_media_type", "SVG graphics are not checked");
      const length = Number(response.headers.get("content-length") || 0);
      if (length > opts.maxImageBytes) throw new GammaError("payload_too_large", "The image is larger than " + Math.round(opts.maxImageBytes / 1048576) + " MB");
      const blob = await response.blob();
      if (blob.size > opts.maxImageBytes) throw new GammaError("payload_too_large", "The image is larger than " + Math.round(opts.maxImageBytes / 1048576) + " MB");
      if (blob.size === 0) throw new GammaError("image_fetch_failed", "The image is empty");
      return { blob, type };
    }

    function resultOf(body) {
      if (!body || typeof body !== "object") return null;
      if (typeof body.ai_probability === "number") return body;
      if (body.result && typeof body.result === "object") return body.result;
      return null;
    }

    function jobError(job) {
      const e = job && job.error;
      if (e && typeof e === "object") return new GammaError(e.code || "job_failed", e.message || "The check failed on the server");
      if (typeof e === "string" && errors.CODES[e]) return new GammaError(e, errors.describeError(e).title);
      return new GammaError("job_failed", typeof e === "string" && e ? e : "The check failed on the server");
    }

    async function pollJob(settings, statusPath, key, deadline) {
      const sep = statusPath.includes("?") ? "&" : "?";
      for (;;) {
        const left = deadline - now();
        if (left <= 0) throw new GammaError("timeout", "The check did not finish in " + Math.round(opts.deadlineMs / 1000) + " s");
        const waitS = Math.max(1, Math.min(opts.pollWaitS, Math.floor(left / 1000)));
        const started = now();
        const { body: job } = await request(settings, "GET", statusPath + sep + "wait=" + waitS, {
          timeoutMs: (waitS + 15) * 1000,
          key,
        });
        const status = job && job.status;
        if (status === "finished") {
          const result = resultOf(job);
          if (!result) throw new GammaError("bad_response", "The finished job has no result");
          return result;
        }
        if (status === "failed") throw jobError(job);
        if (status === "canceled" || status === "stopped") throw new GammaError("canceled", "The check was cancelled on the server");
        if (status !== "queued" && status !== "started" && status !== "deferred" && status !== "scheduled") {
          throw new GammaError("bad_response", "Unknown job status: " + status);
        }
        onEvent(key, { state: status === "started" ? "started" : "queued" });
        // A server that ignores ?wait answers at once: don't spin.
        if (now() - started < 500) await sleep(1000);
      }
    }

    async function runCheck(settings, key, pageUrl) {
      const deadline = now() + opts.deadlineMs;
      let body;
      let headers = {};
      const bytes = settings.sendMode === "bytes" || key.startsWith("data:");
      if (bytes) {
        onEvent(key, { state: "fetching" });
        const image = await loadImage(key);
        body = new FormData();
        body.append("image", image.blob, fileNameFor(key, image.type));
      } else {
        const payload = { url: key };
        if (settings.sendPageUrl && pageUrl && /^https?:/i.test(pageUrl)) payload.page_url = pageUrl;
        body = JSON.stringify(payload);
        headers = { "Content-Type": "application/json" };
      }
      onEvent(key, { state: "sending" });
      const answer = await request(settings, "POST", "/v1/analyze", { body, headers, key });
      const finished = resultOf(answer.body);
      if (finished && answer.status !== 202) return finished;
      const job = answer.body || {};
      const statusPath = job.status_url || (job.job_id || job.id ? "/jobs/" + encodeURIComponent(job.job_id || job.id) : null);
      if (!statusPath) throw new GammaError("bad_response", "The server gave no job to follow");
      onEvent(key, { state: "queued", jobId: job.job_id || job.id });
      return pollJob(settings, statusPath, key, deadline);
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
            const result = await runCheck(settings, key, params.pageUrl);
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

    /** GET /healthz and /readyz. Never throws: { ok, ready, serverUrl, health, ready_detail, error }. */
    async function health(override) {
      const settings = override ? settingsLib.normalizeSettings(override).settings : await currentSettings();
      const out = { serverUrl: settings.serverUrl, ok: false, ready: false };
      try {
        const h = await request(settings, "GET", "/healthz", { retries: 0, timeoutMs: 5000 });
        out.ok = true;
        out.health = h.body;
        try {
          const r = await request(settings, "GET", "/readyz", { retries: 0, timeoutMs: 5000 });
          out.ready = true;
          out.readiness = r.body;
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
        await request(settings, "GET", "/jobs/gamma-extension-auth-probe", { retries: 0, timeoutMs: 5000 });
        return { ok: true };
      } catch (err) {
        if (err.code === "not_found") return { ok: true };
        return { ok: err.code !== "unauthorized" && err.code !== "forbidden", error: errors.toPlain(err) };
      }
    }

    /** POST /v1/feedback: the user disputes a result. */
    async function feedback(params) {
      const settings = await currentSettings();
      if (params.label !== "ai" && params.label !== "real") throw new GammaError("extension_error", "label must be 'ai' or 'real'");
      const result = params.result || {};
      const sha256 = params.sha256 || (result.image && result.image.sha256);
      if (!sha256) throw new GammaError("extension_error", "This result has no image digest to report");
      const payload = { sha256, result: feedbackResult(result), label: params.label };
      if (params.note) payload.note = String(params.note).slice(0, 2000);
      const answer = await request(settings, "POST", "/v1/feedback", {
        body: JSON.stringify(payload),
        headers: { "Content-Type": "application/json" },
      });
      return answer.body || {};
    }

    // What the server said, without the bulky or volatile parts.
    function feedbackResult(result) {
      const out = {};
      for (const field of ["ai_probability", "verdict", "mask_fraction", "sources", "model", "image"]) {
        if (result[field] !== undefined) out[field] = result[field];
      }
      return out;
    }

    /** The heatmap PNG (auth header included) as { type, base64 } for the content script. */
    async function heatmap(path) {
      // Only the heatmaps the server pointed at: this is no general proxy to the server.
      if (typeof path !== "string" || !/^\/(?:[^?#]*\/)?v1\/heatmaps\/[^?#]+$/.test(path) || path.includes("..")) {
        throw new GammaError("extension_error", "Not a heatmap address: " + String(path).slice(0, 80));
      }
      const settings = await currentSettings();
      const url = urls.serverUrl(settings.serverUrl, path);
      const gate = gateFor(settings.serverUrl);
      await gate.wait();
      let response;
      try {
        response = await fetchWithTimeout(url, { headers: headersFor(settings, { Accept: "image/png,image/*" }), credentials: "omit" }, opts.requestTimeoutMs);
      } catch (err) {
        throw new GammaError("server_unreachable", "Can't reach " + settings.serverUrl);
      }
      if (!response.ok) throw errorFromResponse(response.status, await readBody(response), response.headers);
      const buffer = new Uint8Array(await response.arrayBuffer());
      return { type: (response.headers.get("content-type") || "image/png").split(";")[0], base64: toBase64(buffer) };
    }

    return {
      analyze,
      health,
      feedback,
      heatmap,
      get stats() {
        return { active: limiter.active, pending: limiter.pending, inflight: dedup.size };
      },
      _request: request,
    };
  }

  function toBase64(bytes) {
    let binary = "";
    const chunk = 0x8000;
    for (let i = 0; i < bytes.length; i += chunk) binary += String.fromCharCode.apply(null, bytes.subarray(i, i + chunk));
    return btoa(binary);
  }

  /** The cache interface (get/set, may be async); this one lives in memory only. */
  function memoryCache(max) {
    const lru = queue.createLru(max || 1000);
    return {
      get: (k) => lru.get(k),
      set: (k, v) => {
        lru.set(k, v);
      },
      clear: () => lru.clear(),
      get size() {
        return lru.size;
      },
    };
  }

  return { createClient, memoryCache, toBase64, DEFAULTS };
});

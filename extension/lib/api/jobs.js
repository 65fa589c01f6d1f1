/*
 * One check on the server: POST /v1/analyze (the image's URL, or its bytes), then
 * follow the job it answers with long polls (GET /jobs/<id>?wait=N) until it
 * finishes, fails or the deadline passes.
 */
(function (root, factory) {
  const node = typeof module === "object" && module.exports;
  const G = node ? null : root.GammaDetect;
  const deps = node
    ? [require("../contract.js"), require("../errors.js"), require("./download.js")]
    : [G.contract, G.errors, G.apiParts.download];
  const api = factory.apply(null, deps);
  if (node) module.exports = api;
  else (G.apiParts = G.apiParts || {}).jobs = api;
})(typeof globalThis !== "undefined" ? globalThis : this, function (contract, errors, download) {
  "use strict";

  const { GammaError } = errors;

  /** ctx: { opts: {pollWaitS, deadlineMs, maxImageBytes, requestTimeoutMs}, now, sleep, onEvent, transport }. */
  function createJobs(ctx) {
    const { opts, now, sleep, onEvent, transport } = ctx;

    /** A result: the body itself ({"ai_probability", ...}), as /v1/analyze answers a cache hit. */
    function isResult(body) {
      return Boolean(body && typeof body === "object" && typeof body.ai_probability === "number");
    }

    async function poll(settings, statusPath, key, deadline) {
      const sep = statusPath.includes("?") ? "&" : "?";
      for (;;) {
        const left = deadline - now();
        if (left <= 0) throw new GammaError("timeout", "The check did not finish in " + Math.round(opts.deadlineMs / 1000) + " s");
        const waitS = Math.max(1, Math.min(opts.pollWaitS, Math.floor(left / 1000)));
        const started = now();
        const { body: job } = await transport.request(settings, "GET", statusPath + sep + "wait=" + waitS, { timeoutMs: (waitS + 15) * 1000, key });
        const status = job && job.status;
        if (status === "finished") {
          if (!isResult(job.result)) throw new GammaError("bad_response", "The finished job has no result");
          return job.result;
        }
        if (status === "failed") throw jobError(job.error);
        if (status === "canceled") throw new GammaError("canceled", "The check was cancelled on the server");
        // Any other status of the contract is a job not ended yet (queued, started).
        if (!contract.JOB_STATUSES.includes(status)) throw new GammaError("bad_response", "Unknown job status: " + status);
        onEvent(key, { state: status });
        // A server that ignores ?wait answers at once: don't spin.
        if (now() - started < 500) await sleep(1000);
      }
    }

    /** Check one image on the server; resolves to its result or throws GammaError. */
    async function run(settings, key, pageUrl) {
      const deadline = now() + opts.deadlineMs;
      let body;
      let headers = {};
      if (settings.sendMode === "bytes" || key.startsWith("data:")) {
        onEvent(key, { state: "fetching" });
        const image = await download.downloadImage(transport, key, { maxBytes: opts.maxImageBytes, timeoutMs: opts.requestTimeoutMs });
        body = new FormData();
        body.append("image", image.blob, image.name);
      } else {
        const payload = { url: key };
        if (settings.sendPageUrl && pageUrl && /^https?:/i.test(pageUrl)) payload.page_url = pageUrl;
        body = JSON.stringify(payload);
        headers = { "Content-Type": "application/json" };
      }
      onEvent(key, { state: "sending" });
      const answer = await transport.request(settings, "POST", "/v1/analyze", { body, headers, key });
      if (answer.status === 200) {
        if (!isResult(answer.body)) throw new GammaError("bad_response", "The server's answer has no result");
        return answer.body;
      }
      const job = answer.body || {};
      if (typeof job.status_url !== "string") throw new GammaError("bad_response", "The server gave no job to follow");
      onEvent(key, { state: "queued", jobId: job.job_id });
      return poll(settings, job.status_url, key, deadline);
    }

    return { run };
  }

  /** A failed job's error: {"code", "message"} as the server's job view gives it. */
  function jobError(error) {
    if (errors.isServerError(error)) return new GammaError(error.code, error.message || undefined);
    return new GammaError("job_failed", "The check failed on the server");
  }

  return { createJobs };
});

"use strict";
// The backend client against a fake gamma server (Node's fetch types, virtual time).
const test = require("node:test");
const assert = require("node:assert/strict");
const { createClient } = require("../lib/api.js");
const { LIMITS } = require("../lib/contract.js");

const SERVER = "http://gamma.test:8000";
const RESULT = {
  ai_probability: 0.91,
  verdict: "ai",
  mask_fraction: 0.4,
  sources: { diffusion: 0.8 },
  model: { name: "gamma", version: "1.0.0", digest: "abc", backend: "onnxruntime" },
  image: { sha256: "f".repeat(64), width: 512, height: 512, format: "JPEG" },
  heatmap_url: "/v1/heatmaps/fff.png",
  timings: { total_ms: 12 },
  cached: false,
};

function json(status, body, headers) {
  return new Response(JSON.stringify(body), { status, headers: Object.assign({ "content-type": "application/json" }, headers || {}) });
}

/** A scripted server: routes are [method, pathRegex, handler(req) -> Response]. */
function fakeServer(routes) {
  const calls = [];
  async function fetch(url, init) {
    const i = init || {};
    if (url.startsWith("data:")) return globalThis.fetch(url); // as a browser does
    const u = new URL(url);
    const req = { url, path: u.pathname, query: u.searchParams, method: i.method || "GET", headers: i.headers || {}, body: i.body, credentials: i.credentials };
    calls.push(req);
    for (const [method, pattern, handler] of routes) {
      if (method === req.method && pattern.test(u.origin + u.pathname)) return handler(req, calls);
    }
    return json(404, { code: "not_found", message: "no route " + req.method + " " + url });
  }
  return { fetch, calls, count: (method, re) => calls.filter((c) => c.method === method && re.test(c.url)).length };
}

function virtualClock() {
  const clock = { t: 1_000_000, slept: [] };
  clock.now = () => clock.t;
  clock.sleep = async (ms) => {
    clock.slept.push(ms);
    clock.t += ms;
  };
  return clock;
}

function client(server, settings, extra) {
  const clock = virtualClock();
  const events = [];
  const c = createClient(
    Object.assign(
      {
        fetch: server.fetch,
        settings: Object.assign({ serverUrl: SERVER }, settings || {}),
        now: clock.now,
        sleep: clock.sleep,
        random: () => 0.5,
        onEvent: (key, evt) => events.push(Object.assign({ key }, evt)),
      },
      extra || {},
    ),
  );
  return { c, clock, events };
}

const queuedThenFinished = (jobId) => {
  let polls = 0;
  return [
    ["POST", /\/v1\/analyze$/, () => json(202, { job_id: jobId, status: "queued", status_url: "/jobs/" + jobId })],
    ["GET", new RegExp("/jobs/" + jobId + "$"), () => {
      polls += 1;
      if (polls === 1) return json(200, { id: jobId, status: "started" });
      return json(200, { id: jobId, status: "finished", result: RESULT });
    }],
  ];
};

test("URL mode: sends only the image URL, follows the job with long polls, caches the result", async () => {
  const server = fakeServer(queuedThenFinished("j1"));
  const { c, events } = client(server, { apiKey: "k1" });
  const answer = await c.analyze({ src: "/img/cat.jpg#zoom", pageUrl: "https://news.example/story" });
  assert.equal(answer.key, "https://news.example/img/cat.jpg");
  assert.deepEqual(answer.result, RESULT);
  assert.equal(answer.fromCache, false);

  const post = server.calls[0];
  assert.equal(post.method, "POST");
  assert.equal(post.url, SERVER + "/v1/analyze");
  assert.deepEqual(JSON.parse(post.body), { url: "https://news.example/img/cat.jpg" }); // no page_url by default
  assert.equal(post.headers.Authorization, "Bearer k1");
  assert.equal(post.headers["Content-Type"], "application/json");
  assert.equal(post.credentials, "omit");
  const polls = server.calls.filter((x) => x.method === "GET");
  assert.equal(polls.length, 2);
  for (const p of polls) {
    assert.equal(p.query.get("wait"), "25");
    assert.equal(p.headers.Authorization, "Bearer k1");
  }
  assert.ok(events.some((e) => e.state === "started"));

  const again = await c.analyze({ src: "https://news.example/img/cat.jpg" });
  assert.equal(again.fromCache, true);
  assert.equal(server.calls.length, 3, "served from the extension's cache");
});

test("a job's status other than the contract's is refused; canceled and failed end the check", async () => {
  const ended = { odd: { status: "paused" }, cancel: { status: "canceled" }, fail: { status: "failed", error: { code: "image_too_small", message: "64x64" } } };
  const server = fakeServer([
    ["POST", /\/v1\/analyze$/, (req) => {
      const name = JSON.parse(req.body).url.split("/").pop();
      return json(202, { job_id: name, status: "queued", status_url: "/jobs/" + name });
    }],
    ["GET", /\/jobs\/\w+$/, (req) => json(200, ended[req.path.split("/").pop()])],
  ]);
  const { c } = client(server);
  await assert.rejects(c.analyze({ src: "https://x.example/odd" }), { code: "bad_response", message: /paused/ });
  await assert.rejects(c.analyze({ src: "https://x.example/cancel" }), { code: "canceled" });
  await assert.rejects(c.analyze({ src: "https://x.example/fail" }), { code: "image_too_small" });
});

test("URL mode with sendPageUrl also sends the page address", async () => {
  const server = fakeServer([["POST", /\/v1\/analyze$/, () => json(200, RESULT)]]);
  const { c } = client(server, { sendPageUrl: true });
  await c.analyze({ src: "https://cdn.example/a.png", pageUrl: "https://site.example/page" });
  assert.deepEqual(JSON.parse(server.calls[0].body), { url: "https://cdn.example/a.png", page_url: "https://site.example/page" });
});

test("a finished answer (server cache hit) needs no polling; a 200 that is not a result is refused", async () => {
  const server = fakeServer([["POST", /\/v1\/analyze$/, (req) => (JSON.parse(req.body).url.endsWith("a.png") ? json(200, RESULT) : json(200, { id: "x", status: "finished", result: RESULT }))]]);
  const { c } = client(server);
  assert.deepEqual((await c.analyze({ src: "https://cdn.example/a.png" })).result, RESULT);
  await assert.rejects(c.analyze({ src: "https://cdn.example/b.png" }), { code: "bad_response" });
  assert.equal(server.calls.length, 2);
});

test("bytes mode: the extension downloads the image with cookies and uploads only its bytes", async () => {
  const jpeg = new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]);
  let uploaded = null;
  const server = fakeServer([
    ["GET", /^https:\/\/private\.example\/photos\/me\.jpg$/, () => new Response(jpeg, { status: 200, headers: { "content-type": "image/jpeg" } })],
    ["POST", /\/v1\/analyze$/, (req) => {
      uploaded = req.body;
      return json(200, RESULT);
    }],
  ]);
  const { c } = client(server, { sendMode: "bytes", sendPageUrl: true });
  await c.analyze({ src: "https://private.example/photos/me.jpg", pageUrl: "https://private.example/album" });
  const download = server.calls[0];
  assert.equal(download.credentials, "include");
  assert.ok(!download.headers.Authorization, "the API key never goes to the image's host");
  assert.ok(uploaded instanceof FormData);
  const file = uploaded.get("image");
  assert.equal(file.name, "me.jpg");
  assert.deepEqual(new Uint8Array(await file.arrayBuffer()), jpeg);
  assert.deepEqual([...uploaded.keys()], ["image"], "nothing but the bytes: no URL, no page");
  assert.ok(!server.calls[1].headers["Content-Type"], "fetch sets the multipart boundary itself");
});

test("data: URLs are always sent as bytes (the URL is the image)", async () => {
  const server = fakeServer([["POST", /\/v1\/analyze$/, () => json(200, RESULT)]]);
  const { c } = client(server);
  const png = "data:image/png;base64," + Buffer.from([0x89, 0x50, 0x4e, 0x47]).toString("base64");
  await c.analyze({ src: png });
  const body = server.calls[0].body;
  assert.ok(body instanceof FormData);
  assert.match(body.get("image").name, /^image\.png$/);
});

test("bytes mode errors: not found, a login page, SVG, too big", async () => {
  const server = fakeServer([
    ["GET", /missing\.jpg$/, () => new Response("nope", { status: 404 })],
    ["GET", /login\.jpg$/, () => new Response("<html>", { status: 200, headers: { "content-type": "text/html; charset=utf-8" } })],
    ["GET", /logo\.png$/, () => new Response("<svg/>", { status: 200, headers: { "content-type": "image/svg+xml" } })],
    ["GET", /huge\.jpg$/, () => new Response("x", { status: 200, headers: { "content-type": "image/jpeg", "content-length": String(50 * 1024 * 1024) } })],
  ]);
  const { c } = client(server, { sendMode: "bytes" });
  await assert.rejects(c.analyze({ src: "https://h.example/missing.jpg" }), { code: "image_fetch_failed", status: 404 });
  await assert.rejects(c.analyze({ src: "https://h.example/login.jpg" }), { code: "image_fetch_failed", message: /login/ });
  await assert.rejects(c.analyze({ src: "https://h.example/logo.png" }), { code: "unsupported_media_type" });
  await assert.rejects(c.analyze({ src: "https://h.example/huge.jpg" }), { code: "payload_too_large" });
  assert.equal(server.count("POST", /analyze/), 0, "nothing reached the gamma server");
});

test("image addresses the extension can't fetch fail at once", async () => {
  const server = fakeServer([]);
  const { c } = client(server);
  await assert.rejects(c.analyze({ src: "blob:https://x.example/1" }), { code: "image_fetch_failed" });
  assert.equal(server.calls.length, 0);
});

test("concurrent checks of one URL share one request", async () => {
  const server = fakeServer(queuedThenFinished("j2"));
  const { c } = client(server);
  const [a, b, d] = await Promise.all([
    c.analyze({ src: "https://x.example/p.jpg" }),
    c.analyze({ src: "https://x.example/p.jpg#other-fragment" }),
    c.analyze({ src: "p.jpg", pageUrl: "https://x.example/" }),
  ]);
  assert.deepEqual([a.result, b.result, d.result], [RESULT, RESULT, RESULT]);
  assert.equal(server.count("POST", /analyze/), 1);
});

test("no more than `concurrency` checks are in flight", async () => {
  let inFlight = 0;
  let peak = 0;
  const server = fakeServer([
    ["POST", /\/v1\/analyze$/, async () => {
      inFlight += 1;
      peak = Math.max(peak, inFlight);
      await new Promise((r) => setTimeout(r, 5));
      return json(202, { job_id: "j", status_url: "/jobs/j" });
    }],
    ["GET", /\/jobs\/j$/, async () => {
      await new Promise((r) => setTimeout(r, 5));
      inFlight -= 1;
      return json(200, { status: "finished", result: RESULT });
    }],
  ]);
  const { c } = client(server, {}, { concurrency: 2 });
  await Promise.all([1, 2, 3, 4, 5, 6].map((i) => c.analyze({ src: "https://x.example/" + i + ".jpg" })));
  assert.equal(peak, 2);
  assert.equal(server.count("POST", /analyze/), 6);
});

test("429: honours Retry-After, holds every request meanwhile, then succeeds", async () => {
  let refused = 0;
  const sentAt = [];
  const server = fakeServer([
    ["POST", /\/v1\/analyze$/, () => {
      sentAt.push(clockRef.t);
      if (refused < 1) {
        refused += 1;
        return json(429, { code: "rate_limited", message: "slow down" }, { "Retry-After": "7" });
      }
      return json(200, RESULT);
    }],
  ]);
  const { c, clock, events } = client(server);
  var clockRef = clock;
  const t0 = clock.t;
  const [a, b] = await Promise.all([c.analyze({ src: "https://x.example/1.jpg" }), c.analyze({ src: "https://x.example/2.jpg" })]);
  assert.deepEqual([a.result, b.result], [RESULT, RESULT]);
  assert.equal(server.count("POST", /analyze/), 3, "one refusal, two successes");
  assert.ok(clock.t - t0 >= 7000, "waited at least Retry-After");
  // Both went out together; the refused one was resent only after the server's 7 s.
  assert.deepEqual(sentAt.map((at) => at - t0), [0, 0, 7000]);
  const waiting = events.filter((e) => e.state === "waiting");
  assert.equal(waiting.length, 1);
  assert.equal(waiting[0].retryInMs, 7000);

});

test("a request arriving while the gate is closed is held, and says so", async () => {
  let first = true;
  const server = fakeServer([["POST", /\/v1\/analyze$/, () => {
    if (first) {
      first = false;
      return json(429, {}, { "Retry-After": "5" });
    }
    return json(200, RESULT);
  }]]);
  let t = 0;
  const sleepers = [];
  const events = [];
  const c = createClient({
    fetch: server.fetch,
    settings: { serverUrl: SERVER },
    now: () => t,
    sleep: (ms) => new Promise((resolve) => sleepers.push({ ms, resolve })),
    onEvent: (key, e) => events.push(Object.assign({ key }, e)),
  });
  const tick = () => new Promise((r) => setImmediate(r));
  const a = c.analyze({ src: "https://x.example/a.jpg" });
  while (!sleepers.length) await tick(); // A got its 429 and waits at the gate
  const b = c.analyze({ src: "https://x.example/b.jpg" });
  while (sleepers.length < 2) await tick();
  assert.equal(server.count("POST", /analyze/), 1, "B is not sent while the gate is closed");
  assert.ok(events.some((e) => e.key === "https://x.example/b.jpg" && e.state === "waiting" && e.retryInMs === 5000), JSON.stringify(events));
  t += 5000;
  for (const s of sleepers.splice(0)) s.resolve();
  const [ra, rb] = await Promise.all([a, b]);
  assert.deepEqual([ra.result, rb.result], [RESULT, RESULT]);
  assert.equal(server.count("POST", /analyze/), 3);
});

test("429 without Retry-After backs off exponentially, then gives up as rate_limited (not cached)", async () => {
  const server = fakeServer([["POST", /\/v1\/analyze$/, () => json(429, { code: "rate_limited", message: "busy" })]]);
  const { c, clock } = client(server, {}, { maxRetries: 3 });
  await assert.rejects(c.analyze({ src: "https://x.example/1.jpg" }), { code: "rate_limited", message: "busy" });
  assert.equal(server.count("POST", /analyze/), 4);
  assert.deepEqual(clock.slept, [750, 1500, 3000], "random=0.5: 3/4 of 1, 2, 4 s");
  await assert.rejects(c.analyze({ src: "https://x.example/1.jpg" }), { code: "rate_limited" });
  assert.equal(server.count("POST", /analyze/), 8, "a rate-limit error is not cached");
});

test("a Retry-After longer than a minute fails at once (and still holds later requests)", async () => {
  const server = fakeServer([["POST", /\/v1\/analyze$/, () => json(429, {}, { "Retry-After": "3600" })]]);
  const { c, clock } = client(server);
  await assert.rejects(c.analyze({ src: "https://x.example/1.jpg" }), (err) => err.code === "rate_limited" && err.retryAfterMs === 3600000);
  assert.equal(server.count("POST", /analyze/), 1);
  const t0 = clock.t;
  await assert.rejects(c.analyze({ src: "https://x.example/2.jpg" }), { code: "rate_limited" });
  assert.ok(clock.t - t0 >= 60000, "the next request waited for the gate");
});

test("polls on a 429 also back off", async () => {
  let polls = 0;
  const server = fakeServer([
    ["POST", /\/v1\/analyze$/, () => json(202, { job_id: "j", status_url: "/jobs/j" })],
    ["GET", /\/jobs\/j$/, () => (++polls === 1 ? json(429, {}, { "Retry-After": "2" }) : json(200, { status: "finished", result: RESULT }))],
  ]);
  const { c, clock } = client(server);
  const t0 = clock.t;
  assert.deepEqual((await c.analyze({ src: "https://x.example/1.jpg" })).result, RESULT);
  assert.ok(clock.t - t0 >= 2000);
});

test("server unreachable", async () => {
  const { c } = client({ fetch: async () => { throw new TypeError("Failed to fetch"); } });
  await assert.rejects(c.analyze({ src: "https://x.example/1.jpg" }), { code: "server_unreachable", message: /gamma\.test:8000/ });
});

test("server errors map to codes; stable ones are cached, transient ones are not", async () => {
  const server = fakeServer([
    ["POST", /\/v1\/analyze$/, (req) => {
      const url = JSON.parse(req.body).url;
      if (url.endsWith("small.jpg")) return json(422, { code: "image_too_small", message: "Image is 64x64; at least 128 px per side" });
      if (url.endsWith("local.jpg")) return json(400, { code: "url_not_allowed", message: "loopback" });
      if (url.endsWith("key.jpg")) return json(401, { code: "unauthorized", message: "bad key" });
      if (url.endsWith("bare.jpg")) return new Response("Forbidden", { status: 403 });
      if (url.endsWith("decode.jpg")) return json(422, { code: "image_decode_failed", message: "not an image" });
      // Shapes the server never sends (server/errors.py): not read, named by the status alone.
      if (url.endsWith("nested.jpg")) return json(422, { error: { code: "image_decode_failed", message: "not an image" } });
      if (url.endsWith("named.jpg")) return json(400, { error: "url_not_allowed", message: "loopback" });
      if (url.endsWith("unknown.jpg")) return json(400, { code: "banana", message: "not one of the contract's codes" });
      return new Response("<h1>Internal Server Error</h1>", { status: 500, headers: { "content-type": "text/html" } });
    }],
  ]);
  const { c } = client(server);
  await assert.rejects(c.analyze({ src: "https://x.example/small.jpg" }), { code: "image_too_small", status: 422, message: /64x64/ });
  await assert.rejects(c.analyze({ src: "https://x.example/small.jpg" }), (err) => err.code === "image_too_small" && err.fromCache === true);
  await assert.rejects(c.analyze({ src: "http://127.0.0.1/local.jpg" }), { code: "url_not_allowed" });
  await assert.rejects(c.analyze({ src: "https://x.example/key.jpg" }), { code: "unauthorized" });
  await assert.rejects(c.analyze({ src: "https://x.example/key.jpg" }), { code: "unauthorized" });
  await assert.rejects(c.analyze({ src: "https://x.example/bare.jpg" }), { code: "bad_response", status: 403 });
  await assert.rejects(c.analyze({ src: "https://x.example/boom.jpg" }), { code: "server_error" });
  await assert.rejects(c.analyze({ src: "https://x.example/decode.jpg" }), { code: "image_decode_failed", message: "not an image" });
  await assert.rejects(c.analyze({ src: "https://x.example/nested.jpg" }), { code: "bad_response", status: 422, message: "HTTP 422" });
  await assert.rejects(c.analyze({ src: "https://x.example/named.jpg" }), { code: "bad_response", status: 400, message: "HTTP 400" });
  await assert.rejects(c.analyze({ src: "https://x.example/unknown.jpg" }), { code: "bad_response", status: 400, message: "HTTP 400" });
  assert.equal(server.count("POST", /analyze/), 10, "image_too_small came from the cache the second time; unauthorized did not");
});

test("a failed job reports the worker's error code", async () => {
  const server = fakeServer([
    ["POST", /\/v1\/analyze$/, () => json(202, { job_id: "j", status_url: "/jobs/j" })],
    ["GET", /\/jobs\/j$/, () => json(200, { id: "j", status: "failed", error: { code: "fetch_failed", message: "HTTP 403 from cdn" } })],
  ]);
  const { c } = client(server);
  await assert.rejects(c.analyze({ src: "https://x.example/1.jpg" }), { code: "fetch_failed", message: "HTTP 403 from cdn" });
});

test("a job that never finishes times out at the deadline; force skips the cache", async () => {
  const server = fakeServer([
    ["POST", /\/v1\/analyze$/, () => json(202, { job_id: "j", status_url: "/jobs/j" })],
    ["GET", /\/jobs\/j$/, () => json(200, { id: "j", status: "queued" })],
  ]);
  const { c } = client(server, {}, { deadlineMs: 10000 });
  await assert.rejects(c.analyze({ src: "https://x.example/1.jpg" }), { code: "timeout" });
  const polls = server.count("GET", /jobs/);
  assert.ok(polls >= 2 && polls <= 12, "polled " + polls + " times, with pauses");

  const ok = fakeServer([["POST", /\/v1\/analyze$/, () => json(200, RESULT)]]);
  const { c: c2 } = client(ok);
  await c2.analyze({ src: "https://x.example/1.jpg" });
  await c2.analyze({ src: "https://x.example/1.jpg", force: true });
  assert.equal(ok.calls.length, 2);
});

test("feedback sends the digest, the result (without volatile fields), the label and the note", async () => {
  let body = null;
  const server = fakeServer([["POST", /\/v1\/feedback$/, (req) => {
    body = JSON.parse(req.body);
    return json(201, { id: "fb1", status: "recorded" });
  }]]);
  const { c } = client(server, { apiKey: "k" });
  const answer = await c.feedback({ result: RESULT, label: "real", note: "my own photo" });
  assert.deepEqual(answer, { id: "fb1", status: "recorded" });
  assert.equal(body.sha256, RESULT.image.sha256);
  assert.equal(body.label, "real");
  assert.equal(body.note, "my own photo");
  assert.equal(body.result.verdict, "ai");
  assert.equal(body.result.ai_probability, 0.91);
  assert.equal(body.result.heatmap_url, undefined);
  assert.equal(body.result.timings, undefined);
  assert.equal(server.calls[0].headers.Authorization, "Bearer k");
  await c.feedback({ result: RESULT, label: "ai", note: "x".repeat(LIMITS.feedback_note_chars + 5) });
  assert.equal(JSON.parse(server.calls.at(-1).body).note.length, LIMITS.feedback_note_chars, "the server's limit");
  await assert.rejects(c.feedback({ result: RESULT, label: "maybe" }), /label/);
  await assert.rejects(c.feedback({ result: {}, label: "ai" }), /digest/);
});

test("heatmap: fetched with the key, returned as base64", async () => {
  const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 255]);
  const server = fakeServer([["GET", /\/v1\/heatmaps\/fff\.png$/, () => new Response(png, { status: 200, headers: { "content-type": "image/png" } })]]);
  const { c } = client(server, { apiKey: "k" });
  const hm = await c.heatmap(RESULT.heatmap_url);
  assert.equal(hm.type, "image/png");
  assert.deepEqual(new Uint8Array(Buffer.from(hm.base64, "base64")), png);
  assert.equal(server.calls[0].headers.Authorization, "Bearer k");
  await assert.rejects(c.heatmap("/v1/heatmaps/missing.png"), { code: "not_found" });
  for (const bad of ["https://elsewhere.example/v1/heatmaps/x.png", "/jobs/123", "/v1/heatmaps/../../jobs/1", "/v1/feedback", 42]) {
    await assert.rejects(c.heatmap(bad), { code: "extension_error" }, String(bad));
  }
  assert.equal(server.calls.length, 2, "refused paths never reach the server");
});

test("health: up and ready, up with a refused key, down", async () => {
  const up = fakeServer([
    ["GET", /\/healthz$/, () => json(200, { status: "ok" })],
    ["GET", /\/readyz$/, () => json(200, { status: "ready", model: { name: "gamma", version: "1" } })],
    ["GET", /\/jobs\//, (req) => (req.headers.Authorization === "Bearer good" ? json(404, { code: "not_found", message: "no job" }) : json(401, { code: "unauthorized", message: "bad key" }))],
  ]);
  const good = await client(up, { apiKey: "good" }).c.health();
  assert.equal(good.ok, true);
  assert.equal(good.ready, true);
  assert.deepEqual(good.auth, { ok: true });
  assert.equal(good.readiness.model.name, "gamma");
  const bad = await client(up, { apiKey: "bad" }).c.health();
  assert.equal(bad.auth.ok, false);
  assert.equal(bad.auth.error.code, "unauthorized");
  const override = await client(up, { apiKey: "bad" }).c.health({ serverUrl: SERVER, apiKey: "good" });
  assert.equal(override.auth.ok, true);
  const down = await client({ fetch: async () => { throw new TypeError("refused"); } }).c.health();
  assert.equal(down.ok, false);
  assert.equal(down.error.code, "server_unreachable");
});

test("a server path prefix is kept for every call", async () => {
  const server = fakeServer([
    ["POST", /^http:\/\/h\.test\/gamma\/v1\/analyze$/, () => json(202, { job_id: "j", status_url: "/gamma/jobs/j" })],
    ["GET", /^http:\/\/h\.test\/gamma\/jobs\/j$/, () => json(200, { status: "finished", result: RESULT })],
  ]);
  const { c } = client(server, { serverUrl: "http://h.test/gamma/" });
  assert.deepEqual((await c.analyze({ src: "https://x.example/1.jpg" })).result, RESULT);
});

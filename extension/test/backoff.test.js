"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const b = require("../lib/backoff.js");

test("Retry-After in seconds or as an HTTP date", () => {
  assert.equal(b.parseRetryAfter("5"), 5000);
  assert.equal(b.parseRetryAfter(" 0 "), 0);
  assert.equal(b.parseRetryAfter("1.5"), 1500);
  const now = Date.parse("Wed, 21 Oct 2015 07:28:00 GMT");
  assert.equal(b.parseRetryAfter("Wed, 21 Oct 2015 07:28:30 GMT", now), 30000);
  assert.equal(b.parseRetryAfter("Wed, 21 Oct 2015 07:27:00 GMT", now), 0); // past: now
  for (const bad of [null, undefined, "", "soon", "-3"]) assert.equal(b.parseRetryAfter(bad), null, String(bad));
});

test("exponential delays with bounded jitter", () => {
  const lo = () => 0;
  const hi = () => 0.999999;
  assert.equal(b.backoffDelay(0, { baseMs: 1000, random: lo }), 500);
  assert.equal(b.backoffDelay(0, { baseMs: 1000, random: hi }), 1000);
  assert.equal(b.backoffDelay(3, { baseMs: 1000, random: lo }), 4000);
  assert.equal(b.backoffDelay(3, { baseMs: 1000, random: hi }), 8000);
  assert.equal(b.backoffDelay(20, { baseMs: 1000, maxMs: 30000, random: hi }), 30000);
  for (let i = 0; i < 50; i += 1) {
    const d = b.backoffDelay(2, { baseMs: 100 });
    assert.ok(d >= 200 && d <= 400, String(d));
  }
});

test("retryDelay prefers the server's Retry-After, within limits", () => {
  assert.equal(b.retryDelay(0, 7000), 7000);
  assert.equal(b.retryDelay(0, 0), 250); // never hammer
  assert.equal(b.retryDelay(0, 120000, { maxMs: 60000 }), 60000);
  const d = b.retryDelay(1, null, { baseMs: 1000, random: () => 0 });
  assert.equal(d, 1000);
});

test("the rate gate holds everyone until the server's time has passed", async () => {
  let t = 0;
  const slept = [];
  const gate = b.createRateGate({ now: () => t, sleep: async (ms) => { slept.push(ms); t += ms; } });
  await gate.wait();
  assert.deepEqual(slept, []);
  gate.block(3000);
  assert.equal(gate.remaining(), 3000);
  gate.block(1000); // never shortens
  assert.equal(gate.remaining(), 3000);
  await Promise.all([gate.wait(), gate.wait()]);
  assert.equal(t >= 3000, true);
  assert.equal(gate.remaining(), 0);
  gate.block(500);
  gate.reset();
  assert.equal(gate.remaining(), 0);
});

"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const q = require("../lib/queue.js");

const tick = () => new Promise((r) => setImmediate(r));

function deferred() {
  let resolve, reject;
  const promise = new Promise((a, b) => { resolve = a; reject = b; });
  return { promise, resolve, reject };
}

test("the limiter never runs more than its concurrency, in FIFO order", async () => {
  const limiter = q.createLimiter(2);
  const gates = [deferred(), deferred(), deferred(), deferred()];
  const started = [];
  let running = 0;
  let peak = 0;
  const results = gates.map((g, i) =>
    limiter.run(async () => {
      started.push(i);
      running += 1;
      peak = Math.max(peak, running);
      const v = await g.promise;
      running -= 1;
      return v;
    }),
  );
  await tick();
  assert.deepEqual(started, [0, 1]);
  assert.equal(limiter.active, 2);
  assert.equal(limiter.pending, 2);
  gates[1].resolve("b");
  await tick();
  assert.deepEqual(started, [0, 1, 2]);
  gates[0].reject(new Error("a failed"));
  gates[2].resolve("c");
  gates[3].resolve("d");
  const settled = await Promise.allSettled(results);
  assert.deepEqual(settled.map((s) => s.status), ["rejected", "fulfilled", "fulfilled", "fulfilled"]);
  assert.equal(peak, 2);
  assert.equal(limiter.active, 0);
});

test("a task that throws synchronously frees its slot", async () => {
  const limiter = q.createLimiter(1);
  await assert.rejects(limiter.run(() => { throw new Error("boom"); }), /boom/);
  assert.equal(await limiter.run(() => 7), 7);
});

test("dedup shares one in-flight call per key and forgets it afterwards", async () => {
  const dedup = q.createDedup();
  let calls = 0;
  const d = deferred();
  const fn = () => { calls += 1; return d.promise; };
  const a = dedup.run("k", fn);
  const b = dedup.run("k", fn);
  const c = dedup.run("other", () => "x");
  assert.equal(a, b);
  assert.equal(calls, 1);
  d.resolve(42);
  assert.deepEqual(await Promise.all([a, b, c]), [42, 42, "x"]);
  assert.equal(dedup.size, 0, "a settled call is forgotten");
  await dedup.run("k", fn);
  assert.equal(calls, 2);
  await assert.rejects(dedup.run("bad", () => Promise.reject(new Error("no"))));
  assert.equal(dedup.size, 0);
});

test("LRU evicts the least recently used entry", () => {
  const lru = q.createLru(2);
  lru.set("a", 1).set("b", 2);
  assert.equal(lru.get("a"), 1); // a is now the most recent
  lru.set("c", 3);
  assert.equal(lru.get("b"), undefined);
  assert.deepEqual(lru.keys(), ["a", "c"]);
  lru.set("a", 10);
  assert.deepEqual(lru.keys(), ["c", "a"]);
  assert.equal(lru.get("a"), 10);
  assert.equal(lru.size, 2);
  lru.clear();
  assert.equal(lru.size, 0);
});

"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const c = require("../lib/cache.js");

function fakeSession() {
  const data = {};
  return {
    data,
    get: async (k) => (k === null ? { ...data } : { [k]: data[k] }),
    set: async (o) => { Object.assign(data, o); },
    remove: async (keys) => { for (const k of [].concat(keys)) delete data[k]; },
  };
}

test("results survive a service-worker restart through session storage", async () => {
  const storage = fakeSession();
  const first = c.createResultCache({ storage });
  await first.set("scope\nhttps://ex.com/a.jpg", { result: { verdict: "ai" } });
  const restarted = c.createResultCache({ storage });
  assert.deepEqual(await restarted.get("scope\nhttps://ex.com/a.jpg"), { result: { verdict: "ai" } });
  assert.equal(await restarted.get("scope\nhttps://ex.com/b.jpg"), undefined);
});

test("keys are short digests, even for data: URLs", async () => {
  const storage = fakeSession();
  const cache = c.createResultCache({ storage });
  await cache.set("s\ndata:image/png;base64," + "A".repeat(100000), { result: { verdict: "real" } });
  for (const k of Object.keys(storage.data)) assert.ok(k.length < 40, k);
  assert.notEqual(c.digest("a"), c.digest("b"));
  assert.equal(c.digest("same"), c.digest("same"));
});

test("the oldest entries are evicted from memory and storage", async () => {
  const storage = fakeSession();
  let t = 0;
  const cache = c.createResultCache({ storage, max: 3, now: () => ++t });
  for (const name of ["a", "b", "c", "d"]) await cache.set(name, { result: name });
  assert.equal(cache.size, 3);
  assert.equal(await cache.get("a"), undefined);
  assert.equal(Object.keys(storage.data).length, 3);
  await cache.clear();
  assert.equal(Object.keys(storage.data).length, 0);
  assert.equal(await cache.get("d"), undefined);
});

test("works without storage (memory only)", async () => {
  const cache = c.createResultCache({});
  await cache.set("k", { result: 1 });
  assert.deepEqual(await cache.get("k"), { result: 1 });
});

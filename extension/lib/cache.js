/*
 * Results cached per image URL while the browser runs: an LRU in memory, written
 * through to chrome.storage.session (kept across service-worker restarts, cleared
 * when the browser closes, unreadable by content scripts).
 */
(function (root, factory) {
  const node = typeof module === "object" && module.exports;
  const api = factory(node ? require("./queue.js") : root.GammaDetect.queue);
  if (node) module.exports = api;
  else (root.GammaDetect = root.GammaDetect || {}).cache = api;
})(typeof globalThis !== "undefined" ? globalThis : this, function (queue) {
  "use strict";

  const PREFIX = "gamma.r.";

  /** 64-bit FNV-1a (two 32-bit lanes) as hex: storage keys stay short for data: URLs. */
  function digest(text) {
    let a = 0x811c9dc5;
    let b = 0x01000193 ^ text.length;
    for (let i = 0; i < text.length; i += 1) {
      const c = text.charCodeAt(i);
      a = Math.imul(a ^ c, 16777619);
      b = Math.imul(b ^ c ^ (a >>> 7), 2246822519);
    }
    return (a >>> 0).toString(16).padStart(8, "0") + (b >>> 0).toString(16).padStart(8, "0");
  }

  /**
   * storage: a chrome.storage.StorageArea-like object (get/set/remove returning
   * promises) or null for memory only.
   */
  function createResultCache(options) {
    const opts = options || {};
    const storage = opts.storage || null;
    const max = opts.max || 2000;
    const now = opts.now || Date.now;
    const lru = queue.createLru(max);
    let loaded = storage ? null : Promise.resolve();

    function load() {
      if (!loaded) {
        loaded = Promise.resolve(storage.get(null))
          .then((all) => {
            const rows = Object.entries(all || {})
              .filter(([k, v]) => k.startsWith(PREFIX) && v && typeof v === "object")
              .sort((x, y) => (x[1].t || 0) - (y[1].t || 0));
            for (const [k, v] of rows) lru.set(k, v);
          })
          .catch(() => {});
      }
      return loaded;
    }

    async function evict(before) {
      if (!storage) return;
      const keep = new Set(lru.keys());
      const gone = before.filter((k) => !keep.has(k));
      if (gone.length) await Promise.resolve(storage.remove(gone)).catch(() => {});
    }

    return {
      async get(key) {
        await load();
        const row = lru.get(PREFIX + digest(key));
        return row ? row.v : undefined;
      },
      async set(key, value) {
        await load();
        const id = PREFIX + digest(key);
        const before = lru.size >= max ? lru.keys() : null;
        const row = { v: value, t: now() };
        lru.set(id, row);
        if (storage) {
          await Promise.resolve(storage.set({ [id]: row })).catch(() => {});
          if (before) await evict(before);
        }
      },
      async clear() {
        await load();
        const ids = lru.keys();
        lru.clear();
        if (storage && ids.length) await Promise.resolve(storage.remove(ids)).catch(() => {});
      },
      get size() {
        return lru.size;
      },
    };
  }

  return { createResultCache, digest, PREFIX };
});

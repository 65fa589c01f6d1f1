/*
 * Limiting and sharing work: a concurrency limiter, in-flight deduplication by
 * key, and a small LRU map (results are cached per image URL).
 */
(function (root, factory) {
  const api = factory();
  if (typeof module === "object" && module.exports) module.exports = api;
  else (root.GammaDetect = root.GammaDetect || {}).queue = api;
})(typeof globalThis !== "undefined" ? globalThis : this, function () {
  "use strict";

  /**
   * At most `concurrency` tasks run at once; the rest wait in FIFO order.
   * run(fn) resolves/rejects with fn's outcome.
   */
  function createLimiter(concurrency) {
    const limit = Math.max(1, concurrency | 0);
    let active = 0;
    const waiting = [];

    function next() {
      while (active < limit && waiting.length) {
        const job = waiting.shift();
        active += 1;
        let promise;
        try {
          promise = Promise.resolve(job.fn());
        } catch (err) {
          promise = Promise.reject(err);
        }
        promise.then(job.resolve, job.reject).finally(() => {
          active -= 1;
          next();
        });
      }
    }

    return {
      run(fn) {
        return new Promise((resolve, reject) => {
          waiting.push({ fn, resolve, reject });
          next();
        });
      },
      get active() {
        return active;
      },
      get pending() {
        return waiting.length;
      },
    };
  }

  /** Calls for a key already in flight share the first call's promise. */
  function createDedup() {
    const inflight = new Map();
    return {
      run(key, fn) {
        if (inflight.has(key)) return inflight.get(key);
        let promise;
        try {
          promise = Promise.resolve(fn());
        } catch (err) {
          promise = Promise.reject(err);
        }
        const shared = promise.finally(() => {
          if (inflight.get(key) === shared) inflight.delete(key);
        });
        inflight.set(key, shared);
        return shared;
      },
      get size() {
        return inflight.size;
      },
    };
  }

  /** A Map that forgets its least recently used entry beyond `max`. */
  function createLru(max) {
    const map = new Map();
    const cap = Math.max(1, max | 0);
    return {
      get(key) {
        if (!map.has(key)) return undefined;
        const value = map.get(key);
        map.delete(key);
        map.set(key, value);
        return value;
      },
      set(key, value) {
        if (map.has(key)) map.delete(key);
        map.set(key, value);
        while (map.size > cap) map.delete(map.keys().next().value);
        return this;
      },
      clear() {
        map.clear();
      },
      keys() {
        return Array.from(map.keys());
      },
      get size() {
        return map.size;
      },
    };
  }

  return { createLimiter, createDedup, createLru };
});

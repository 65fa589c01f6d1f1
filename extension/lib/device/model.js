/*
 * The model file on this device: kept in IndexedDB by its sha256 (the manifest's digest), checked
 * against that digest every time it is read, and fetched again from its source (the bundled copy,
 * or the configured server) when the stored copy is missing or does not match. Cache Storage takes
 * only http(s) keys, hence IndexedDB.
 */
(function (root, factory) {
  const api = factory();
  if (typeof module === "object" && module.exports) module.exports = api;
  else root.GammaDetect.device.model = api;
})(typeof globalThis !== "undefined" ? globalThis : this, function () {
  "use strict";

  const DB = "gamma-model";
  const STORE = "files";

  async function sha256Hex(bytes) {
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function request(r) {
    return new Promise((resolve, reject) => {
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
  }

  function open() {
    const r = indexedDB.open(DB, 1);
    r.onupgradeneeded = () => r.result.createObjectStore(STORE);
    return request(r);
  }

  async function withStore(mode, fn) {
    const db = await open();
    try {
      const tx = db.transaction(STORE, mode);
      const out = await request(fn(tx.objectStore(STORE)));
      await new Promise((resolve, reject) => {
        tx.oncomplete = resolve;
        tx.onerror = () => reject(tx.error);
      });
      return out;
    } finally {
      db.close();
    }
  }

  /**
   * The model's bytes, checked: { bytes, events } where events say what happened ("cached",
   * "fetched", "digest_mismatch" when a stored copy was corrupt and replaced).
   */
  async function load(entry, fetchBytes) {
    const events = [];
    const stored = await withStore("readonly", (s) => s.get(entry.sha256));
    if (stored) {
      const bytes = new Uint8Array(stored);
      if ((await sha256Hex(bytes)) === entry.sha256) return { bytes, events: ["cached"] };
      events.push("digest_mismatch");
      await withStore("readwrite", (s) => s.delete(entry.sha256));
    }
    const bytes = new Uint8Array(await fetchBytes());
    const got = await sha256Hex(bytes);
    if (got !== entry.sha256) throw Object.assign(new Error(`the model file's sha256 is ${got}, the manifest says ${entry.sha256}`), { code: "model_digest_mismatch" });
    await withStore("readwrite", (s) => s.clear()); // one model at a time: an older digest is dropped
    await withStore("readwrite", (s) => s.put(bytes.buffer, entry.sha256));
    events.push("fetched");
    return { bytes, events };
  }

  return { load, sha256Hex, DB, STORE };
});

/*
 * One check of one entry: ask the worker, show "checking" (with the worker's
 * progress: downloading, queued, rate-limited waits) until the answer, then the
 * result or the error. A newer check of the same entry supersedes an older one.
 */
(() => {
  "use strict";
  const G = globalThis.GammaDetect;
  const C = (G.content = G.content || {});
  if (C.check) return;

  /** `scan`: a page scan's check (the on-device runtime gives those one thread, so the page keeps a core). */
  async function check(entry, force, scan) {
    const token = ++entry.token;
    entry.state = "checking";
    entry.progress = null;
    entry.error = null;
    C.render(entry);
    const response = await C.send({ type: G.messages.TYPES.analyze, src: entry.src, pageUrl: location.href, force: Boolean(force), scan: Boolean(scan) });
    if (token !== entry.token) return; // superseded (src changed, scan stopped, retried)
    if (response && response.ok) {
      entry.state = "done";
      entry.result = response.result;
      entry.key = response.key;
    } else {
      entry.state = "error";
      entry.error = (response && response.error) || C.extensionError("No answer");
    }
    entry.progress = null;
    C.render(entry);
    C.counts.changed();
  }

  /** The worker's progress events for an image key (sent to every frame waiting for it). */
  function progress(message) {
    for (const entry of C.entries.all.values()) {
      if (entry.state !== "checking") continue;
      if (G.urls.imageKey(entry.src, location.href) !== message.key) continue;
      entry.progress = { state: message.state, retryInMs: message.retryInMs, at: Date.now() };
      C.render(entry);
    }
  }

  C.check = check;
  C.progress = progress;
})();

/*
 * The content script's entry point, loaded last: answers the worker's messages
 * and, on load, starts a scan when the user listed this site.
 *
 * It reads the page and draws; it never talks to the backend (the service worker
 * does every request and every image download).
 */
(() => {
  "use strict";
  const G = globalThis.GammaDetect;
  const C = G.content;
  if (C.started) return; // injected twice (manifest + scripting)
  C.started = true;
  const TYPES = G.messages.TYPES;

  // Each answers synchronously (sendResponse before returning).
  const handlers = {
    [TYPES.checkImage]: (message) => C.menu.checkFromMenu(message.srcUrl),
    [TYPES.setScan]: (message) => {
      if (message.on) C.scan.start();
      else C.scan.stop();
      return C.counts.pageState(false);
    },
    [TYPES.getState]: (message) => C.counts.pageState(Boolean(message.detail)),
    [TYPES.progress]: (message) => C.progress(message),
    [TYPES.config]: (message) => C.config.apply(message.config || {}),
  };

  chrome.runtime.onMessage.addListener((message, _sender, sendResponse) => {
    const handler = message && typeof message.type === "string" && Object.prototype.hasOwnProperty.call(handlers, message.type) ? handlers[message.type] : null;
    if (!handler) return false;
    const answer = handler(message);
    if (answer !== undefined) sendResponse(answer);
    return false;
  });

  C.send({ type: TYPES.pageConfig, pageUrl: location.href }).then((response) => {
    if (!response || !response.ok) return;
    C.config.apply(response.config || {});
    if (response.config && response.config.autoScan && window === window.top) C.scan.start();
  });
})();

/*
 * Talking to the service worker: every request, image download and stylesheet
 * comes from it (a content script is bound by the page's CORS and never holds the
 * API key). An answer that can't come (the extension was reloaded under the page)
 * resolves to an error the overlay can show, never a rejection.
 */
(() => {
  "use strict";
  const G = globalThis.GammaDetect;
  const C = (G.content = G.content || {});
  if (C.send) return;

  function extensionError(message) {
    return G.errors.toPlain(new G.errors.GammaError("extension_error", message || ""));
  }

  C.extensionError = extensionError;

  C.send = function send(message) {
    return new Promise((resolve) => {
      try {
        chrome.runtime.sendMessage(message, (response) => {
          const err = chrome.runtime.lastError;
          if (err) resolve({ ok: false, error: extensionError(err.message) });
          else resolve(response || { ok: false, error: extensionError("No answer from the extension") });
        });
      } catch (err) {
        // "Extension context invalidated": the extension was reloaded under this page.
        resolve({ ok: false, error: extensionError(err && err.message) });
      }
    });
  };
})();

/*
 * Error codes (the server's and the extension's own) -> what the user reads,
 * whether a retry can help, and whether the outcome is stable enough to cache.
 */
(function (root, factory) {
  const node = typeof module === "object" && module.exports;
  const api = factory(node ? require("./contract.js") : root.GammaDetect.contract);
  if (node) module.exports = api;
  else root.GammaDetect.errors = api;
})(typeof globalThis !== "undefined" ? globalThis : this, function (contract) {
  "use strict";

  // title: shown on the image; hint: the line under it; retry: a "Try again" button
  // makes sense; cache: the same image gives the same answer from the same server;
  // options: the fix is in Options (the panel offers a button to them).

  // The server's codes (contract.ERRORS); a test checks that each has its words here.
  const SERVER = {
    bad_request: { title: "Request refused", hint: "The server did not accept the request (is it a newer version?).", retry: false, cache: false },
    unauthorized: { title: "API key refused", hint: "Set a valid API key in Options.", retry: false, cache: false, options: true },
    not_found: { title: "Result expired", hint: "Try again.", retry: true, cache: false },
    method_not_allowed: { title: "Request refused", hint: "Is the address in Options a gamma server?", retry: false, cache: false },
    conflict: { title: "Check already ended", hint: "", retry: true, cache: false },
    payload_too_large: { title: "Image too large", hint: "The file is larger than the server accepts.", retry: false, cache: true },
    unsupported_media_type: { title: "Not a supported image", hint: "This file type can't be checked.", retry: false, cache: true },
    image_decode_failed: { title: "Unreadable image", hint: "The server could not decode this image.", retry: false, cache: true },
    image_too_large: { title: "Image too large", hint: "The server refuses images this large.", retry: false, cache: true },
    image_too_small: { title: "Too small to check", hint: "The model needs a larger image.", retry: false, cache: true },
    url_not_allowed: { title: "Address not allowed", hint: "The server refuses to fetch this address. Sending image bytes (Options) works for private images.", retry: false, cache: true, options: true },
    fetch_failed: { title: "Image not fetchable", hint: "The server could not download this image. Sending its bytes (Options) may work.", retry: true, cache: false, options: true },
    rate_limited: { title: "Rate limited", hint: "The server is busy; try again in a moment.", retry: true, cache: false },
    worker_lost: { title: "Check interrupted", hint: "The server's worker stopped; try again.", retry: true, cache: false },
    job_timeout: { title: "Check took too long", hint: "The server gave up on this image.", retry: true, cache: false },
    internal_error: { title: "Server error", hint: "The server failed; try again later.", retry: true, cache: false },
    service_unavailable: { title: "Server unavailable", hint: "The server's queue is down; try again shortly.", retry: true, cache: false },
  };

  // The extension's own: no answer, an answer that is not the server's, a check that ran out.
  const OWN = {
    server_unreachable: { title: "Server unreachable", hint: "Is the gamma server running? Check its address in Options.", retry: true, cache: false, options: true },
    timeout: { title: "Server too slow", hint: "The check did not finish in time.", retry: true, cache: false },
    image_fetch_failed: { title: "Image not fetchable", hint: "The extension could not download this image.", retry: true, cache: false },
    job_failed: { title: "Check failed", hint: "The server could not finish this check.", retry: true, cache: false },
    canceled: { title: "Check cancelled", hint: "", retry: true, cache: false },
    bad_response: { title: "Unexpected server answer", hint: "Is the address in Options a gamma server?", retry: true, cache: false },
    server_error: { title: "Server error", hint: "The server failed; try again later.", retry: true, cache: false },
    extension_error: { title: "Extension error", hint: "Reload the page and try again.", retry: true, cache: false },
    // On device (offscreen/runtime.js)
    device_unavailable: { title: "On-device check unavailable", hint: "This copy has no on-device runtime (run `npm run build`), or it failed to start: use the server in Options.", retry: false, cache: false, options: true },
    device_unsupported: { title: "Not checkable on this device", hint: "The model's decision needs the server: choose Auto or Server in Options.", retry: false, cache: false, options: true },
    model_digest_mismatch: { title: "Model file damaged", hint: "The model's download does not match its digest; reload the extension.", retry: true, cache: false },
  };

  const CODES = Object.freeze(Object.assign({}, SERVER, OWN));

  const FALLBACK = { title: "Check failed", hint: "", retry: true, cache: false };

  function describeError(code) {
    return Object.hasOwn(CODES, code) ? CODES[code] : FALLBACK;
  }

  /** An Error carrying a stable code, the HTTP status and the server's message. */
  class GammaError extends Error {
    constructor(code, message, extra) {
      super(message || describeError(code).title);
      this.name = "GammaError";
      this.code = code;
      Object.assign(this, extra || {});
    }
  }

  /** Plain, message-passable form ({code, message, title, hint, retry, ...}). */
  function toPlain(err) {
    const code = (err && err.code) || "extension_error";
    const info = describeError(code);
    const plain = { code, message: (err && err.message) || info.title, title: info.title, hint: info.hint, retry: info.retry };
    if (err && err.status !== undefined) plain.status = err.status;
    if (err && err.retryAfterMs !== undefined) plain.retryAfterMs = err.retryAfterMs;
    return plain;
  }

  /** Is this the server's error object, {"code", "message"} with a code of the contract (server/errors.py)? */
  function isServerError(detail) {
    return Boolean(detail && typeof detail === "object" && typeof detail.code === "string" && Object.hasOwn(contract.ERRORS, detail.code));
  }

  /** The code for an error answer that is not the server's (a proxy's page, a newer server's code). */
  function genericCode(status) {
    return status >= 500 ? "server_error" : "bad_response";
  }

  return { CODES, SERVER_CODES: Object.freeze(Object.keys(SERVER)), OWN_CODES: Object.freeze(Object.keys(OWN)), describeError, GammaError, toPlain, isServerError, genericCode };
});

/*
 * Options: server URL, API key, privacy mode, auto-scan sites, uncertain badges.
 * Stored in chrome.storage.local (the service worker watches it).
 */
(() => {
  "use strict";
  const G = globalThis.GammaDetect;
  const $ = (id) => document.getElementById(id);
  const form = $("form");

  function readForm() {
    return {
      serverUrl: $("serverUrl").value,
      apiKey: $("apiKey").value,
      sendMode: (form.querySelector("input[name=sendMode]:checked") || {}).value || "url",
      sendPageUrl: $("sendPageUrl").checked,
      mode: (form.querySelector("input[name=mode]:checked") || {}).value || "server",
      deviceModel: $("deviceModelServer").checked ? "server" : "bundled",
      autoScanSites: $("autoScanSites").value,
      badgeUncertain: $("badgeUncertain").checked,
    };
  }

  function fill(settings) {
    $("serverUrl").value = settings.serverUrl;
    $("apiKey").value = settings.apiKey;
    for (const radio of form.querySelectorAll("input[name=sendMode]")) radio.checked = radio.value === settings.sendMode;
    $("sendPageUrl").checked = settings.sendPageUrl;
    for (const radio of form.querySelectorAll("input[name=mode]")) radio.checked = radio.value === settings.mode;
    $("deviceModelServer").checked = settings.deviceModel === "server";
    $("autoScanSites").value = settings.autoScanSites.join("\n");
    $("badgeUncertain").checked = settings.badgeUncertain;
    syncPageUrl();
  }

  function syncPageUrl() {
    const urlMode = (form.querySelector("input[name=sendMode]:checked") || {}).value !== "bytes";
    $("sendPageUrl").disabled = !urlMode;
  }

  function showErrors(errors) {
    for (const field of ["serverUrl", "apiKey", "autoScanSites"]) $("error-" + field).textContent = errors[field] || "";
  }

  async function save(event) {
    event.preventDefault();
    const { settings, errors } = G.settings.normalizeSettings(readForm());
    showErrors(errors);
    if (Object.keys(errors).length) {
      $("saved").textContent = "";
      return;
    }
    await chrome.storage.local.set({
      serverUrl: settings.serverUrl,
      apiKey: settings.apiKey,
      sendMode: settings.sendMode,
      sendPageUrl: settings.sendPageUrl,
      mode: settings.mode,
      deviceModel: settings.deviceModel,
      autoScanSites: settings.autoScanSites,
      badgeUncertain: settings.badgeUncertain,
    });
    fill(settings);
    $("saved").textContent = "Saved.";
    setTimeout(() => ($("saved").textContent = ""), 2500);
  }

  async function testConnection() {
    const out = $("test-result");
    const { settings, errors } = G.settings.normalizeSettings(readForm());
    showErrors(errors);
    if (errors.serverUrl) return;
    out.className = "";
    out.textContent = "Testing…";
    const health = await chrome.runtime.sendMessage({ type: G.messages.TYPES.health, settings });
    if (!health || !health.ok) {
      out.className = "bad";
      out.textContent = "Can't reach " + settings.serverUrl + (health && health.error ? " (" + health.error.message + ")" : "");
    } else if (health.auth && !health.auth.ok) {
      out.className = "bad";
      out.textContent = "The server refused the API key.";
    } else if (!health.ready) {
      out.className = "bad";
      out.textContent = "The server is up but not ready yet.";
    } else {
      out.className = "ok";
      out.textContent = "Connected: the server is ready.";
    }
  }

  async function main() {
    const stored = await chrome.storage.local.get(null);
    fill(G.settings.normalizeSettings(stored).settings);
    $("origin").textContent = new URL(chrome.runtime.getURL("/")).origin;
    form.addEventListener("submit", save);
    form.addEventListener("change", syncPageUrl);
    $("test").addEventListener("click", testConnection);
    $("show-key").addEventListener("click", () => {
      const input = $("apiKey");
      const show = input.type === "password";
      input.type = show ? "text" : "password";
      $("show-key").textContent = show ? "Hide" : "Show";
      $("show-key").setAttribute("aria-pressed", String(show));
    });
  }

  main();
})();

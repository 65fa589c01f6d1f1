/*
 * The toolbar popup: server health, this page's counts, the scan switch and
 * "always scan this site". It asks the service worker for everything.
 */
(() => {
  "use strict";
  const G = globalThis.GammaDetect;
  const TYPES = G.messages.TYPES;
  const $ = (id) => document.getElementById(id);

  const params = new URLSearchParams(location.search);
  let tabId = null;
  let tabUrl = "";

  function send(message) {
    return chrome.runtime.sendMessage(message).catch((err) => ({ ok: false, error: { message: String(err.message || err) } }));
  }

  async function currentTab() {
    // ?tabId= lets the popup page be opened in a tab (tests, keyboard users).
    if (params.has("tabId")) {
      const id = Number(params.get("tabId"));
      const tab = await chrome.tabs.get(id).catch(() => null);
      return tab || { id, url: "" };
    }
    const [tab] = await chrome.tabs.query({ active: true, currentWindow: true });
    return tab || null;
  }

  function modelText(health) {
    const sources = [health.readiness, health.health];
    for (const s of sources) {
      const m = s && (s.model || (s.models && s.models[0]));
      if (m && typeof m === "object") return [m.name, m.version, m.backend && "(" + m.backend + ")"].filter(Boolean).join(" ");
      if (typeof m === "string") return m;
    }
    return "";
  }

  async function showHealth() {
    const dot = $("server-dot");
    const status = $("server-status");
    const detail = $("server-detail");
    const health = await send({ type: TYPES.health });
    const where = health.serverUrl || "";
    if (!health.ok) {
      dot.dataset.status = "down";
      status.textContent = "Server unreachable";
      detail.textContent = where + (health.error && health.error.message && health.error.code !== "server_unreachable" ? " — " + health.error.message : "");
      return;
    }
    if (health.auth && !health.auth.ok) {
      dot.dataset.status = "warn";
      status.textContent = "API key refused";
      detail.textContent = where + " — see Options";
      return;
    }
    if (!health.ready) {
      dot.dataset.status = "warn";
      status.textContent = "Server up, not ready";
      detail.textContent = where + (health.readiness && health.readiness.message ? " — " + health.readiness.message : "");
      return;
    }
    dot.dataset.status = "ok";
    status.textContent = "Server ready";
    const model = modelText(health);
    detail.textContent = where + (model ? " · " + model : "");
  }

  /** In on-device and auto modes: the runtime's model, variant, threads and last check. */
  async function showDevice() {
    const answer = await send({ type: TYPES.deviceStatus });
    if (!answer || answer.mode === "server") return;
    $("device").hidden = false;
    const label = answer.mode === "auto" ? "Checks on this device (the server when it can't)" : "Checks on this device only";
    if (!answer.ok) {
      $("device-dot").dataset.status = answer.mode === "auto" ? "warn" : "down";
      $("device-status").textContent = label + ": unavailable";
      $("device-detail").textContent = (answer.error && answer.error.message) || "";
      return;
    }
    const s = answer.status;
    $("device-dot").dataset.status = s.loaded ? "ok" : "down";
    $("device-status").textContent = label;
    const parts = s.model ? [s.model.name + " " + s.model.version, s.model.variant, s.threads + (s.threads === 1 ? " thread" : " threads")] : [s.error || "model not loaded"];
    if (s.lastCheckMs !== null) parts.push("last check " + Math.round(s.lastCheckMs) + " ms");
    $("device-detail").textContent = parts.join(" · ");
  }

  async function refreshPage() {
    if (tabId === null) return;
    const state = await send({ type: TYPES.tabState, tabId });
    const available = Boolean(state && state.ok) || /^https?:|^file:/.test(tabUrl);
    $("page-unavailable").hidden = available;
    $("page-available").hidden = !available;
    if (!state || !state.ok) {
      $("scan-toggle").checked = false;
      return;
    }
    const c = state.counts;
    for (const name of ["checked", "ai", "real", "uncertain", "skipped", "errors"]) $("count-" + name).textContent = String(c[name] || 0);
    $("pending").hidden = !c.pending;
    $("pending").textContent = c.pending ? "Checking " + c.pending + " more…" : "";
    $("scan-toggle").checked = Boolean(state.scanning);
  }

  async function setupSiteToggle() {
    const site = G.urls.siteOf(tabUrl);
    const toggle = $("site-toggle");
    if (!site) {
      toggle.disabled = true;
      toggle.closest("label").hidden = true;
      return;
    }
    $("site-name").textContent = site;
    const stored = await chrome.storage.local.get("autoScanSites");
    const settings = G.settings.normalizeSettings(stored).settings;
    toggle.checked = settings.autoScanSites.includes(site);
    toggle.addEventListener("change", async () => {
      const fresh = G.settings.normalizeSettings(await chrome.storage.local.get("autoScanSites")).settings;
      await chrome.storage.local.set({ autoScanSites: G.settings.toggleSite(fresh.autoScanSites, site, toggle.checked) });
      if (toggle.checked && !$("scan-toggle").checked) {
        $("scan-toggle").checked = true;
        await send({ type: TYPES.scanTab, tabId, on: true });
        refreshPage();
      }
    });
  }

  async function main() {
    $("open-options").addEventListener("click", (e) => {
      e.preventDefault();
      chrome.runtime.openOptionsPage();
    });
    $("open-help").addEventListener("click", (e) => {
      e.preventDefault();
      chrome.tabs.create({ url: chrome.runtime.getURL("help/help.html") });
    });
    const tab = await currentTab();
    tabId = tab ? tab.id : null;
    tabUrl = (tab && tab.url) || "";
    $("scan-toggle").addEventListener("change", async (e) => {
      const response = await send({ type: TYPES.scanTab, tabId, on: e.target.checked });
      if (!response || response.ok === false) {
        e.target.checked = false;
        $("page-unavailable").hidden = false;
      }
      refreshPage();
    });
    showHealth();
    showDevice();
    await setupSiteToggle();
    await refreshPage();
    setInterval(refreshPage, 1000);
  }

  main();
})();

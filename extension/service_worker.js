/*
 * gamma-detect service worker (an ES module; Firefox runs the same file as an
 * event page). Every backend call and every image download happens here: content
 * scripts are bound by the page's CORS and must never see the API key.
 *
 * The lib/ files are classic scripts shared with the content script; imported
 * for their side effect, they register themselves on globalThis.GammaDetect.
 */
import "./lib/contract.js";
import "./lib/messages.js";
import "./lib/urls.js";
import "./lib/verdicts.js";
import "./lib/backoff.js";
import "./lib/queue.js";
import "./lib/errors.js";
import "./lib/settings.js";
import "./lib/cache.js";
import "./lib/api/transport.js";
import "./lib/api/download.js";
import "./lib/api/jobs.js";
import "./lib/api/health.js";
import "./lib/api/feedback.js";
import "./lib/api/heatmap.js";
import "./lib/api.js";
import "./lib/tally.js";
// (resize.js registers GammaDetect.device, which route.js joins)
import "./lib/device/resize.js";
import "./lib/device/route.js";

const G = globalThis.GammaDetect;
const TYPES = G.messages.TYPES;

export const MENU_ID = "gamma-check-image";
// Settings a result depends on: changing one empties the result cache.
const RESULT_SETTINGS = ["serverUrl", "apiKey", "sendMode", "sendPageUrl", "mode", "deviceModel"];

// ------------------------------------------------------------------ settings

let settingsPromise = null;

export function getSettings() {
  if (!settingsPromise) {
    settingsPromise = chrome.storage.local.get(null).then((raw) => G.settings.normalizeSettings(raw).settings);
  }
  return settingsPromise;
}

const cache = G.cache.createResultCache({ storage: chrome.storage.session || null, max: 2000 });

chrome.storage.onChanged.addListener((changes, area) => {
  if (area !== "local") return;
  settingsPromise = null;
  if (RESULT_SETTINGS.some((field) => field in changes)) cache.clear();
  broadcastConfig();
});

async function pageConfig(pageUrl) {
  const settings = await getSettings();
  return { autoScan: G.settings.autoScanEnabled(settings, pageUrl || ""), badgeUncertain: settings.badgeUncertain };
}

async function broadcastConfig() {
  let tabs = [];
  try {
    tabs = await chrome.tabs.query({});
  } catch (_) {
    return;
  }
  for (const tab of tabs) {
    if (tab.id === undefined || tab.id < 0) continue;
    pageConfig(tab.url).then((config) => chrome.tabs.sendMessage(tab.id, { type: TYPES.config, config }).catch(() => {}));
  }
}

// ------------------------------------------------------------------ client

// Which tab frames are waiting for which image, so progress (429 waits) reaches them.
const requesters = new Map(); // image key -> Set("tabId:frameId")

function forwardProgress(key, event) {
  const targets = requesters.get(key);
  if (!targets) return;
  for (const target of targets) {
    const [tabId, frameId] = target.split(":").map(Number);
    chrome.tabs.sendMessage(tabId, Object.assign({ type: TYPES.progress, key }, event), { frameId }).catch(() => {});
  }
}

export const client = G.api.createClient({
  fetch: (...args) => fetch(...args),
  getSettings,
  cache,
  onEvent: forwardProgress,
});

// ------------------------------------------------------------------ on device

// The runtime lives in an offscreen document (offscreen/runtime.js): a service worker can't start the
// worker threads ONNX Runtime Web uses, and is stopped when idle, which would drop the loaded model.
const OFFSCREEN_URL = "offscreen/offscreen.html";
let offscreenReady = null;

// Every caller waits on the one check in flight: getContexts lists the document as soon as its creation starts,
// before its module has registered its listener (a message then finds no receiving end), while createDocument
// resolves only once the document has loaded. So a document is taken as open only when no creation is under way.
function ensureOffscreen() {
  if (!offscreenReady) {
    offscreenReady = (async () => {
      const open = await chrome.runtime.getContexts({ contextTypes: ["OFFSCREEN_DOCUMENT"] });
      if (!open.length) {
        await chrome.offscreen.createDocument({ url: OFFSCREEN_URL, reasons: ["WORKERS"], justification: "Runs the detector with ONNX Runtime Web's worker threads and keeps the model loaded" });
      }
    })().finally(() => (offscreenReady = null));
  }
  return offscreenReady;
}

let bundlePromise = null;
/** The bundled model (vendor/model/bundle.json, written by `npm run build`), or a device_unavailable error. */
function deviceBundle() {
  if (!bundlePromise) {
    bundlePromise = fetch(chrome.runtime.getURL("vendor/model/bundle.json"))
      .then((r) => (r.ok ? r.json() : Promise.reject(new Error("HTTP " + r.status))))
      .catch(() => {
        bundlePromise = null;
        throw new G.errors.GammaError("device_unavailable", "This copy of the extension has no on-device runtime: run `npm run build` in extension/");
      });
  }
  return bundlePromise;
}

// With deviceModel "server": the served model (GET /v1/model), asked again at most every MODEL_REFRESH_MS; when its
// digest changes the runtime loads the new file (checked against that digest) before its next check.
const MODEL_REFRESH_MS = 10 * 60 * 1000;
let served = null; // { at, serverUrl, source }

/** The model the runtime should run: null for the bundled one, else {manifest, sha256, url, headers}. */
export async function deviceSource(refresh) {
  const settings = await getSettings();
  if (settings.deviceModel !== "server") return null;
  const fresh = served && served.serverUrl === settings.serverUrl && Date.now() - served.at < MODEL_REFRESH_MS;
  if (fresh && !refresh) return served.source;
  const [answer, bundle] = await Promise.all([client.model(), deviceBundle()]);
  const files = (answer && answer.files) || [];
  const file = files.find((f) => f.variant === bundle.variant) || files[0];
  if (!file) throw new G.errors.GammaError("device_unavailable", "The server lists no ONNX model file");
  const source = { manifest: answer.manifest, sha256: file.sha256, url: G.urls.serverUrl(settings.serverUrl, file.url), headers: await client.serverHeaders() };
  served = { at: Date.now(), serverUrl: settings.serverUrl, source };
  return source;
}

/** One request to the on-device runtime; its errors come back as GammaErrors with the server's codes. */
export async function toDevice(type, extra) {
  await deviceBundle();
  await ensureOffscreen();
  const answer = await chrome.runtime.sendMessage(Object.assign({ target: "offscreen", type }, extra || {}));
  if (!answer) throw new G.errors.GammaError("device_unavailable", "The on-device runtime did not answer");
  if (!answer.ok) throw new G.errors.GammaError(answer.error.code, answer.error.message);
  return answer.value;
}

/** Close the runtime (tests and benchmarks: the next check loads the model again). */
export async function closeDevice() {
  if (offscreenReady) await offscreenReady.catch(() => {}); // not while it loads
  const open = await chrome.runtime.getContexts({ contextTypes: ["OFFSCREEN_DOCUMENT"] });
  if (open.length) await chrome.offscreen.closeDocument();
}

// Checks on device: two at a time (one decodes while the other runs the model), one per image, results cached
// per image URL and model digest like the server's.
const deviceLimiter = G.queue.createLimiter(2);
const deviceDedup = G.queue.createDedup();

/** `scan`: a page scan's check, which the runtime runs on one thread (offscreen/runtime.js scanEngine). */
async function analyzeOnDevice(key, { force, scan }) {
  const bundle = await deviceBundle();
  const source = await deviceSource(false);
  const cacheKey = "device|" + (source ? source.sha256 : bundle.sha256) + "\n" + key;
  if (!force) {
    const hit = await cache.get(cacheKey);
    if (hit && hit.result) return { key, result: hit.result, fromCache: true };
  }
  return deviceDedup.run(cacheKey, () =>
    deviceLimiter.run(async () => {
      const result = await toDevice("gamma:device:analyze", { src: key, source, scan: Boolean(scan) });
      await cache.set(cacheKey, { result });
      return { key, result, fromCache: false };
    }),
  );
}

/** Check one image where the settings say: the server, this device, or this device with the server as fallback. */
const analyzeWhere = G.device.route.createRouter({
  getSettings,
  server: (message) => client.analyze({ src: message.src, pageUrl: message.pageUrl, force: message.force }),
  device: analyzeOnDevice,
});

async function analyzeFor(sender, message) {
  const key = G.urls.imageKey(message.src, message.pageUrl);
  const target = sender && sender.tab ? sender.tab.id + ":" + (sender.frameId || 0) : null;
  if (key && target) {
    if (!requesters.has(key)) requesters.set(key, new Set());
    requesters.get(key).add(target);
  }
  try {
    const answer = await analyzeWhere(message);
    return { ok: true, key: answer.key, result: answer.result, fromCache: answer.fromCache };
  } catch (err) {
    return { ok: false, key, error: G.errors.toPlain(err) };
  } finally {
    const set = key && requesters.get(key);
    if (set && target) {
      set.delete(target);
      if (!set.size) requesters.delete(key);
    }
  }
}

// ------------------------------------------------------------------ tabs

function contentScriptFiles() {
  const declared = chrome.runtime.getManifest().content_scripts || [];
  return declared.length ? declared[0].js : [];
}

/** Message a tab's content script, injecting it first where it isn't (pages opened before install, frames). */
export async function sendToTab(tabId, message, frameId) {
  const options = { frameId: frameId || 0 };
  try {
    return await chrome.tabs.sendMessage(tabId, message, options);
  } catch (_) {
    await chrome.scripting.executeScript({ target: { tabId, frameIds: [options.frameId] }, files: contentScriptFiles() });
    return chrome.tabs.sendMessage(tabId, message, options);
  }
}

async function tabState(tabId, detail) {
  try {
    const state = await chrome.tabs.sendMessage(tabId, { type: TYPES.getState, detail: Boolean(detail) }, { frameId: 0 });
    return state || { ok: false, available: true, scanning: false };
  } catch (err) {
    return { ok: false, available: false, error: String((err && err.message) || err) };
  }
}

async function updateActionBadge(tabId, counts) {
  if (tabId === undefined || !chrome.action) return;
  const text = G.tally.actionBadge(counts);
  try {
    await chrome.action.setBadgeBackgroundColor({ tabId, color: "#b91c1c" });
    await chrome.action.setBadgeText({ tabId, text });
  } catch (_) {
    /* the tab closed */
  }
}

// ------------------------------------------------------------------ context menu

function setupMenus() {
  chrome.contextMenus.removeAll(() => {
    chrome.contextMenus.create({ id: MENU_ID, title: "Check if AI-generated", contexts: ["image"] }, () => void chrome.runtime.lastError);
  });
}

chrome.runtime.onInstalled.addListener(setupMenus);
if (chrome.runtime.onStartup) chrome.runtime.onStartup.addListener(setupMenus);

/**
 * The "Check if AI-generated" handler. Tests call it directly (Playwright can't
 * click native menus): handleContextMenuClick({menuItemId, srcUrl, pageUrl, frameId}, tab).
 */
export async function handleContextMenuClick(info, tab) {
  if (!info || info.menuItemId !== MENU_ID || !tab || tab.id === undefined) return { ok: false, reason: "not ours" };
  if (!info.srcUrl) return { ok: false, reason: "no image" };
  return sendToTab(tab.id, { type: TYPES.checkImage, srcUrl: info.srcUrl, pageUrl: info.frameUrl || info.pageUrl }, info.frameId || 0);
}

chrome.contextMenus.onClicked.addListener((info, tab) => {
  handleContextMenuClick(info, tab).catch((err) => console.warn("gamma-detect: context menu", err));
});

// ------------------------------------------------------------------ messages

let cssText = null;
async function overlayCss() {
  if (cssText === null) cssText = await (await fetch(chrome.runtime.getURL("overlay.css"))).text();
  return cssText;
}

const handlers = {
  [TYPES.analyze]: (message, sender) => analyzeFor(sender, message),

  [TYPES.heatmap]: async (message) => {
    try {
      const onDevice = typeof message.path === "string" && message.path.startsWith("device:");
      if (onDevice) return Object.assign({ ok: true }, await toDevice("gamma:device:heatmap", { id: message.path.slice(7) }));
      return Object.assign({ ok: true }, await client.heatmap(message.path));
    } catch (err) {
      return { ok: false, error: G.errors.toPlain(err) };
    }
  },

  [TYPES.feedback]: async (message) => {
    try {
      return { ok: true, body: await client.feedback({ result: message.result, label: message.label, note: message.note }) };
    } catch (err) {
      return { ok: false, error: G.errors.toPlain(err) };
    }
  },

  [TYPES.health]: (message) => client.health(message.settings || null),

  [TYPES.css]: async () => ({ ok: true, css: await overlayCss() }),

  [TYPES.pageConfig]: async (message) => ({ ok: true, config: await pageConfig(message.pageUrl) }),

  [TYPES.counts]: async (message, sender) => {
    if (sender.tab && (sender.frameId || 0) === 0) await updateActionBadge(sender.tab.id, message.counts);
    return { ok: true };
  },

  [TYPES.openHelp]: async () => {
    await chrome.tabs.create({ url: chrome.runtime.getURL("help/help.html") });
    return { ok: true };
  },

  [TYPES.openOptions]: async () => {
    await chrome.runtime.openOptionsPage();
    return { ok: true };
  },

  // From the popup: start/stop the scan of a tab, read its counts.
  [TYPES.scanTab]: async (message) => {
    try {
      return await sendToTab(message.tabId, { type: TYPES.setScan, on: Boolean(message.on) }, 0);
    } catch (err) {
      return { ok: false, error: String((err && err.message) || err) };
    }
  },

  [TYPES.tabState]: (message) => tabState(message.tabId, message.detail),

  // From the popup: where checks run, and the on-device runtime's state (the model loaded, threads, last check).
  [TYPES.deviceStatus]: async () => {
    const { mode } = await getSettings();
    if (mode === "server") return { ok: true, mode };
    try {
      return { ok: true, mode, status: await toDevice("gamma:device:status", { load: true, source: await deviceSource(false) }) };
    } catch (err) {
      return { ok: false, mode, error: G.errors.toPlain(err) };
    }
  },
};

// A content script may ask for less than the extension's own pages (see lib/messages.js).
const CONTENT_SCRIPT_MESSAGES = new Set(G.messages.FROM_CONTENT_SCRIPTS);

function fromExtensionPage(sender) {
  return Boolean(sender && sender.url && sender.url.startsWith(chrome.runtime.getURL("")));
}

chrome.runtime.onMessage.addListener((message, sender, sendResponse) => {
  const handler = message && Object.hasOwn(handlers, message.type) ? handlers[message.type] : null;
  if (!handler) return false;
  // Only this extension's pages and content scripts can reach this listener (no externally_connectable).
  if (!fromExtensionPage(sender) && !CONTENT_SCRIPT_MESSAGES.has(message.type)) {
    sendResponse({ ok: false, error: G.errors.toPlain(new G.errors.GammaError("extension_error", "not allowed from a web page")) });
    return false;
  }
  keepAliveWhileBusy();
  Promise.resolve()
    .then(() => handler(message, sender))
    .then(sendResponse, (err) => sendResponse({ ok: false, error: G.errors.toPlain(err) }));
  return true; // answer asynchronously
});

// A worker that only waits on fetches (a long queue on the server) could be stopped after 30 s
// idle; calling an extension API now and then while checks are in flight keeps it alive.
let keepAliveTimer = null;
function keepAliveWhileBusy() {
  if (keepAliveTimer) return;
  keepAliveTimer = setInterval(() => {
    const { active, pending, inflight } = client.stats;
    if (active || pending || inflight || deviceLimiter.active || deviceLimiter.pending) chrome.runtime.getPlatformInfo(() => void chrome.runtime.lastError);
    else {
      clearInterval(keepAliveTimer);
      keepAliveTimer = null;
    }
  }, 20000);
}

// A handle for debugging and for the end-to-end tests (worker.evaluate).
globalThis.gammaDetect = { handleContextMenuClick, sendToTab, tabState, getSettings, client, cache, MENU_ID, handlers, toDevice, closeDevice, deviceSource };

"use strict";
// The manifest, the fixed key/ID and the load order of the classic lib scripts.
const test = require("node:test");
const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");
const vm = require("node:vm");

const ROOT = path.join(__dirname, "..");
const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, "manifest.json"), "utf8"));
const EXTENSION_ID = "adekeboiokppcnjpkdfkccinkodhhgab"; // documented in README.md

/** Chromium's rule: sha256 of the DER public key, first 32 hex digits mapped 0-f -> a-p. */
function extensionId(keyBase64) {
  const hex = crypto.createHash("sha256").update(Buffer.from(keyBase64, "base64")).digest("hex").slice(0, 32);
  return [...hex].map((c) => String.fromCharCode(97 + parseInt(c, 16))).join("");
}

test("Manifest V3 with a fixed key giving the documented ID", () => {
  assert.equal(manifest.manifest_version, 3);
  assert.equal(extensionId(manifest.key), EXTENSION_ID);
  const key = crypto.createPublicKey({ key: Buffer.from(manifest.key, "base64"), format: "der", type: "spki" });
  assert.equal(key.asymmetricKeyType, "rsa");
  const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
  assert.ok(readme.includes(EXTENSION_ID), "README names the extension ID");
  assert.ok(readme.includes("chrome-extension://" + EXTENSION_ID), "README names the origin for the server's CORS");
});

test("no private key is shipped", () => {
  const walk = (dir) => fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.name === "node_modules" ? [] : d.isDirectory() ? walk(path.join(dir, d.name)) : [path.join(dir, d.name)]));
  for (const file of walk(ROOT)) {
    if (/\.(png|ico)$/.test(file) || file === __filename) continue;
    assert.ok(!fs.readFileSync(file, "utf8").includes("PRIVATE KEY"), file);
    assert.ok(!/\.(pem|crx)$/.test(file), file);
  }
});

test("every file the manifest names exists", () => {
  const files = [
    manifest.background.service_worker,
    ...manifest.background.scripts,
    ...manifest.content_scripts.flatMap((c) => c.js.concat(c.css || [])),
    manifest.action.default_popup,
    manifest.options_ui.page,
    ...Object.values(manifest.icons),
    ...Object.values(manifest.action.default_icon),
  ];
  for (const file of files) assert.ok(fs.existsSync(path.join(ROOT, file)), file);
  assert.equal(manifest.background.type, "module");
});

test("permissions stay minimal", () => {
  // offscreen: the on-device runtime's document (ONNX Runtime Web's threads, the model kept loaded)
  assert.deepEqual([...manifest.permissions].sort(), ["contextMenus", "offscreen", "scripting", "storage"]);
  assert.deepEqual(manifest.host_permissions, ["<all_urls>"]); // image downloads (bytes mode) and any server address
  assert.equal(manifest.web_accessible_resources, undefined, "nothing a page could probe");
  assert.equal(manifest.externally_connectable, undefined);
});

/** Run classic scripts in order in a fresh browser-like global (no `module`). */
function loadClassic(files) {
  const context = vm.createContext({ URL, Date, Math, Promise, setTimeout, clearTimeout, console, btoa, atob });
  context.globalThis = context;
  for (const file of files) vm.runInContext(fs.readFileSync(path.join(ROOT, file), "utf8"), context, { filename: file });
  return context.GammaDetect;
}

test("content-script libs load in manifest order, as classic scripts", () => {
  const libs = manifest.content_scripts[0].js.filter((f) => f.startsWith("lib/"));
  const G = loadClassic(libs);
  for (const name of ["contract", "messages", "errors", "verdicts", "eligibility", "urls", "geometry", "tally"]) assert.ok(G[name], name);
  assert.equal(G.tally.tally([{ state: "done", result: { verdict: "ai" } }]).ai, 1);
  assert.equal(manifest.content_scripts[0].js.at(-1), "content/main.js");
});

/** A page's global, just enough for the content scripts to load: it records their listeners and messages. */
function pageContext() {
  const listeners = { runtime: [], document: [] };
  const sent = [];
  const chrome = {
    runtime: {
      lastError: undefined,
      onMessage: { addListener: (fn) => listeners.runtime.push(fn) },
      sendMessage: (message, callback) => {
        sent.push(message);
        callback(undefined); // no worker: the scripts must cope
      },
    },
  };
  const document = { images: [], addEventListener: (type, fn) => listeners.document.push(type) };
  const context = vm.createContext({ URL, Date, Math, Promise, setTimeout, clearTimeout, console, chrome, document, location: { href: "https://news.example/story" } });
  context.globalThis = context;
  context.window = context;
  return { context, listeners, sent };
}

test("the content scripts load in manifest order; a second injection registers nothing twice", async () => {
  const { context, listeners, sent } = pageContext();
  const run = () => {
    for (const file of manifest.content_scripts[0].js) vm.runInContext(fs.readFileSync(path.join(ROOT, file), "utf8"), context, { filename: file });
  };
  run();
  const C = context.GammaDetect.content;
  const parts = { ...C };
  for (const name of ["entries", "send", "layer", "layout", "config", "render", "check", "scan", "menu", "counts", "badge", "panel", "feedback", "heatmap"]) assert.ok(C[name], name);
  run(); // the worker's scripting.executeScript into a tab that already has them
  for (const [name, part] of Object.entries(parts)) assert.equal(C[name], part, name + " kept, with its state");
  assert.equal(listeners.runtime.length, 1, "one message listener");
  assert.deepEqual(listeners.document, ["contextmenu"]);
  await new Promise((resolve) => setTimeout(resolve, 0));
  const G = context.GammaDetect;
  assert.deepEqual(sent.map((m) => m.type), [G.messages.TYPES.pageConfig], "asks for its config once");
  // The worker's messages reach their handlers; unknown ones are not answered.
  const answers = [];
  listeners.runtime[0]({ type: G.messages.TYPES.getState, detail: true }, {}, (a) => answers.push(a));
  listeners.runtime[0]({ type: "toString" }, {}, (a) => answers.push(a));
  assert.equal(answers.length, 1);
  assert.deepEqual(JSON.parse(JSON.stringify(answers[0])), { ok: true, url: "https://news.example/story", scanning: false, autoScan: false, counts: JSON.parse(JSON.stringify(G.tally.tally([]))), images: [] });
});

test("the service worker's imports load in order", () => {
  const source = fs.readFileSync(path.join(ROOT, "service_worker.js"), "utf8");
  const imports = [...source.matchAll(/^import\s+"\.\/(lib\/[\w./]+)";/gm)].map((m) => m[1]);
  assert.ok(imports.length >= 8);
  const G = loadClassic(imports);
  for (const name of ["contract", "messages", "urls", "backoff", "queue", "errors", "settings", "cache", "api", "tally"]) assert.ok(G[name], name);
  assert.equal(typeof G.api.createClient, "function");
});

test("popup and options pages load their libs before their scripts", () => {
  for (const page of ["popup/popup.html", "options/options.html"]) {
    const html = fs.readFileSync(path.join(ROOT, page), "utf8");
    const scripts = [...html.matchAll(/<script src="([^"]+)"/g)].map((m) => path.normalize(path.join(path.dirname(page), m[1])));
    for (const s of scripts) assert.ok(fs.existsSync(path.join(ROOT, s)), s);
    const G = loadClassic(scripts.filter((s) => s.startsWith("lib/")));
    assert.ok(G.settings && G.urls && G.messages, page);
    assert.ok(!/<script>|on\w+="/.test(html), page + ": no inline script (MV3 CSP)");
  }
});

test("every script parses (classic scripts; the worker as a module)", () => {
  for (const file of [...manifest.content_scripts[0].js, "popup/popup.js", "options/options.js"]) {
    assert.doesNotThrow(() => new vm.Script(fs.readFileSync(path.join(ROOT, file), "utf8"), { filename: file }), file);
  }
  // vm.SourceTextModule needs a flag: drop the import/export keywords, then parse as a script.
  const worker = fs
    .readFileSync(path.join(ROOT, "service_worker.js"), "utf8")
    .replace(/^import\s+"[^"]+";$/gm, "")
    .replace(/^export\s+/gm, "");
  assert.doesNotThrow(() => new vm.Script(worker, { filename: "service_worker.js" }));
});

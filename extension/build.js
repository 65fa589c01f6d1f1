#!/usr/bin/env node
/*
 * `npm run build`: vendors the on-device runtime into vendor/ (onnxruntime-web's WASM-only build from
 * node_modules, the shipped model and its manifest from ../models/default), so that the unpacked
 * source folder runs on device too, then writes dist/gamma-detect/ (the files the extension loads) and
 * dist/gamma-detect-<version>.zip.
 *
 *   npm run build                       # the variant package.json names (config.variant)
 *   npm run build -- --variant int8     # another variant of the manifest
 */
"use strict";
const crypto = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");
const { zipSync } = require("fflate");

const ROOT = __dirname;
const MODEL_DIR = path.resolve(ROOT, process.env.GAMMA_MODEL_DIR || "../models/default");
const ORT_DIST = path.join(ROOT, "node_modules", "onnxruntime-web", "dist");
// ONNX Runtime Web's WASM-only build: its ES module, the module the threads run, and the SIMD + threads binary.
const ORT_FILES = ["ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"];
// exifr's full ES module: the metadata evidence on device (EXIF, XMP, PNG text chunks).
const EXIFR_FILE = path.join(ROOT, "node_modules", "exifr", "dist", "full.esm.mjs");
// What the extension loads (everything else in this folder is for development and tests).
const SHIPPED = ["manifest.json", "service_worker.js", "overlay.css", "lib", "content", "offscreen", "popup", "options", "help", "icons", "vendor"];

function fail(message) {
  console.error("build: " + message);
  process.exit(1);
}

function variantArg() {
  const i = process.argv.indexOf("--variant");
  if (i >= 0) return process.argv[i + 1];
  return JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")).config.variant;
}

function vendor(variant) {
  const vendorDir = path.join(ROOT, "vendor");
  fs.rmSync(vendorDir, { recursive: true, force: true });
  fs.mkdirSync(path.join(vendorDir, "ort"), { recursive: true });
  fs.mkdirSync(path.join(vendorDir, "model"), { recursive: true });
  for (const file of ORT_FILES) {
    const from = path.join(ORT_DIST, file);
    if (!fs.existsSync(from)) fail(`${from} is missing: run \`npm install\` in extension/ first`);
    fs.copyFileSync(from, path.join(vendorDir, "ort", file));
  }
  if (!fs.existsSync(EXIFR_FILE)) fail(`${EXIFR_FILE} is missing: run \`npm install\` in extension/ first`);
  fs.mkdirSync(path.join(vendorDir, "exifr"));
  fs.copyFileSync(EXIFR_FILE, path.join(vendorDir, "exifr", "exifr.mjs"));
  const manifestPath = path.join(MODEL_DIR, "manifest.json");
  if (!fs.existsSync(manifestPath)) fail(`no model manifest at ${manifestPath} (set GAMMA_MODEL_DIR)`);
  const manifest = JSON.parse(fs.readFileSync(manifestPath, "utf8"));
  const entry = manifest.artifacts.find((a) => a.variant === variant && a.format === "onnx");
  if (!entry) fail(`the manifest lists no ONNX ${variant}; it has ${manifest.artifacts.map((a) => a.variant).join(", ")}`);
  const bytes = fs.readFileSync(path.join(MODEL_DIR, entry.file));
  const digest = crypto.createHash("sha256").update(bytes).digest("hex");
  if (digest !== entry.sha256) fail(`${entry.file}: sha256 ${digest}, the manifest says ${entry.sha256}`);
  fs.writeFileSync(path.join(vendorDir, "model", entry.file), bytes);
  fs.copyFileSync(manifestPath, path.join(vendorDir, "model", "manifest.json"));
  const ortVersion = JSON.parse(fs.readFileSync(path.join(ROOT, "node_modules", "onnxruntime-web", "package.json"), "utf8")).version;
  const bundle = { variant, file: entry.file, sha256: entry.sha256, bytes: bytes.length, onnxruntime_web: ortVersion };
  fs.writeFileSync(path.join(vendorDir, "model", "bundle.json"), JSON.stringify(bundle, null, 1) + "\n");
  return bundle;
}

function collect(rel, files) {
  const full = path.join(ROOT, rel);
  if (fs.statSync(full).isDirectory()) for (const name of fs.readdirSync(full).sort()) collect(path.join(rel, name), files);
  else files[rel.split(path.sep).join("/")] = fs.readFileSync(full);
  return files;
}

function main() {
  const bundle = vendor(variantArg());
  const files = {};
  for (const rel of SHIPPED) collect(rel, files);
  const version = JSON.parse(files["manifest.json"]).version;
  const dist = path.join(ROOT, "dist");
  const unpacked = path.join(dist, "gamma-detect");
  fs.rmSync(dist, { recursive: true, force: true });
  for (const [rel, data] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(unpacked, rel)), { recursive: true });
    fs.writeFileSync(path.join(unpacked, rel), data);
  }
  const zipPath = path.join(dist, `gamma-detect-${version}.zip`);
  fs.writeFileSync(zipPath, zipSync(Object.fromEntries(Object.entries(files).map(([k, v]) => [k, [v, { level: 9 }]]))));
  const mb = (n) => (n / 1048576).toFixed(1) + " MB";
  const raw = Object.values(files).reduce((a, b) => a + b.length, 0);
  console.log(`model ${bundle.file} (${bundle.variant}, ${mb(bundle.bytes)}), onnxruntime-web ${bundle.onnxruntime_web}`);
  console.log(`${path.relative(ROOT, unpacked)}/: ${Object.keys(files).length} files, ${mb(raw)}; ${path.relative(ROOT, zipPath)}: ${mb(fs.statSync(zipPath).size)}`);
}

main();

/*
 * The on-device runtime, in the offscreen document: downloads the image (from its own origin only),
 * checks its header against the limits, decodes it as the server does, runs the manifest's crop
 * policy through ONNX Runtime Web (WASM, bundled; threads when the page is cross-origin isolated),
 * and decides with the manifest's rule (lib/device/*). The session stays loaded between checks.
 *
 * Page scans run on a second copy of the runtime with one thread (scanEngine): two threads hold both cores of a
 * 2-core machine, and the page being scanned then misses frames; right-click checks keep both threads.
 *
 * Messages (from the service worker): {target: "offscreen", type: "gamma:device:analyze", src, scan},
 * {..., type: "gamma:device:status"}, {..., type: "gamma:device:heatmap", id}.
 */
import * as ort from "../vendor/ort/ort.wasm.min.mjs";
import * as exifr from "../vendor/exifr/exifr.mjs";

const G = globalThis.GammaDetect;
const D = G.device;
const VENDOR = chrome.runtime.getURL("vendor/");
const { MASK_SIDE, SHARE_SIDE } = D.decide;
const HEATMAPS_KEPT = 64;

let runtime = null; // { engine: {ort, session, threads}, scan (a promise of the one-thread engine), manifest, policy, decision, entry, info, download }
let loading = null;
const heatmaps = new Map(); // id -> { type, base64 } (an LRU)
const status = { crossOriginIsolated: self.crossOriginIsolated === true, threads: 0, scanThreads: null, modelEvents: [], loadMs: null, warmMs: null, lastCheckMs: null, error: null };

async function fetchBytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.arrayBuffer();
}

/**
 * The model: the bundled one (vendor/model), or `source` = {manifest, sha256, url, headers} from the server's
 * GET /v1/model. Either way its bytes are checked against the manifest's sha256 (lib/device/model.js).
 */
async function load(threads, source) {
  const started = performance.now();
  let manifest;
  let sha256;
  let download;
  if (source) {
    manifest = source.manifest;
    sha256 = source.sha256;
    download = async () => {
      const response = await fetch(source.url, { headers: source.headers, credentials: "omit" });
      if (!response.ok) throw new G.errors.GammaError("device_unavailable", `the server's model file: HTTP ${response.status}`);
      return response.arrayBuffer();
    };
  } else {
    const bundle = JSON.parse(new TextDecoder().decode(await fetchBytes(VENDOR + "model/bundle.json")));
    manifest = JSON.parse(new TextDecoder().decode(await fetchBytes(VENDOR + "model/manifest.json")));
    sha256 = bundle.sha256;
    download = () => fetchBytes(VENDOR + "model/" + bundle.file);
  }
  const entry = manifest.artifacts.find((a) => a.sha256 === sha256 && a.format === "onnx");
  if (!entry) throw new Error("the model file is not listed in its manifest");
  const decision = D.decide.fromManifest(manifest); // refuses a rule this runtime lacks, before any download
  const policy = D.policy.fromManifest(manifest.crop_policy);
  const { bytes, events } = await D.model.load(entry, download);
  ort.env.wasm.wasmPaths = VENDOR + "ort/";
  // Threads need SharedArrayBuffer, hence cross-origin isolation; `threads` (a benchmark's) caps them.
  const most = status.crossOriginIsolated ? Math.min(2, navigator.hardwareConcurrency || 1) : 1;
  status.threads = threads ? Math.min(threads, most) : most;
  ort.env.wasm.numThreads = status.threads;
  const engine = { ort, session: await createSession(ort, bytes), threads: status.threads };
  status.modelEvents.push(...events);
  status.loadMs = Math.round(performance.now() - started);
  status.modelSource = source ? "server" : "bundled";
  const info = { name: manifest.model.name, version: manifest.model.version, digest: entry.sha256, backend: "onnxruntime-web-wasm", variant: entry.variant };
  const loaded = { engine, scan: null, manifest, policy, decision, entry, info, download, maxBatch: Number(manifest.max_batch) || 32 };
  await warm(loaded, engine);
  status.warmMs = Math.round(performance.now() - started) - status.loadMs;
  return loaded;
}

function createSession(runtimeModule, bytes) {
  return runtimeModule.InferenceSession.create(bytes, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
}

/** One run at load: ONNX Runtime Web's first run prepares its kernels (seconds), which no check should wait for. */
function warm(rt, engine) {
  const s = rt.policy.input_size;
  return infer(rt, engine, [D.resize.image(new Uint8Array(s * s * 3), s, s, 3)]);
}

/**
 * The engine page scans run on: one thread, so that a page scan leaves a core to the page it scans (with two, a
 * 2-core machine had both held by inference and the page dropped frames: bench/extension_scan_frames.py).
 * ONNX Runtime Web fixes its thread count when its WASM module starts, so this is a second copy of the runtime:
 * the same module under another URL is a separate instance. Made at the first scan check, from the checked bytes.
 */
function scanEngine(rt) {
  if (!rt.scan) {
    rt.scan = rt.engine.threads === 1 ? Promise.resolve(rt.engine) : oneThreadEngine(rt);
    rt.scan.then(
      (engine) => (status.scanThreads = engine.threads),
      () => (rt.scan = null), // the next scan check tries again
    );
  }
  return rt.scan;
}

async function oneThreadEngine(rt) {
  const one = await import("../vendor/ort/ort.wasm.min.mjs?threads=1");
  one.env.wasm.wasmPaths = VENDOR + "ort/";
  one.env.wasm.numThreads = 1;
  const { bytes } = await D.model.load(rt.entry, rt.download);
  const engine = { ort: one, session: await createSession(one, bytes), threads: 1 };
  await warm(rt, engine);
  return engine;
}

function release(rt) {
  rt.engine.session.release().catch(() => {});
  if (rt.scan) rt.scan.then((e) => e !== rt.engine && e.session.release()).catch(() => {});
}

function ready(threads, source) {
  const wanted = source ? source.sha256 : null;
  const current = runtime || null;
  if (current && (!wanted || current.entry.sha256 === wanted)) return Promise.resolve(current);
  if (current) {
    // the server's model changed: the next check runs the new one
    runtime = null;
    loading = null;
    status.modelEvents = [];
    status.scanThreads = null;
    release(current);
  }
  if (!loading) {
    loading = load(threads, source).then(
      (r) => (runtime = r),
      (err) => {
        loading = null;
        status.error = String(err && err.message);
        throw err;
      },
    );
  }
  return loading;
}

/** The graph's outputs for uint8 views on `engine`: per view its probability, mask (M*M) and sources (M*M*C, channels last). */
async function infer(rt, engine, views) {
  const s = rt.policy.input_size;
  const out = { probabilities: [], masks: [], sources: [] };
  for (let start = 0; start < views.length; start += rt.maxBatch) {
    const chunk = views.slice(start, start + rt.maxBatch);
    const data = new Uint8Array(chunk.length * s * s * 3);
    chunk.forEach((v, i) => data.set(v.data, i * s * s * 3));
    const feeds = { [engine.session.inputNames[0]]: new engine.ort.Tensor("uint8", data, [chunk.length, s, s, 3]) };
    const result = await engine.session.run(feeds);
    const prob = result.probability.data;
    const mask = result.mask.data;
    const sources = result.sources.data;
    const [, C, M] = result.sources.dims;
    for (let i = 0; i < chunk.length; i += 1) {
      out.probabilities.push(prob[i]);
      out.masks.push(mask.slice(i * M * M, (i + 1) * M * M));
      const last = new Float32Array(M * M * C);
      for (let c = 0; c < C; c += 1) for (let k = 0; k < M * M; k += 1) last[k * C + c] = sources[(i * C + c) * M * M + k];
      out.sources.push(last);
    }
    out.side = M;
    out.classes = C;
  }
  return out;
}

/** decision.py region_evidence for the views that ran: the raw maps stitched at the decision's map side. */
function evidenceOf(rt, plan, out) {
  const side = rt.decision.fusion.mapSide;
  const mask = D.policy.stitch(rt.policy, out.masks, out.side, 1, plan, side);
  const shares = D.policy.stitch(rt.policy, out.sources, out.side, out.classes, plan, side);
  return D.decide.regionEvidence(rt.decision.fusion, rt.decision.classes, mask.data, shares.data);
}

/** Decoded as server/decode.py does: EXIF orientation applied, no colour conversion, alpha composited on white. */
async function decodeRgb(blob) {
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: "none", premultiplyAlpha: "none", imageOrientation: "from-image" });
  const { width, height } = bitmap;
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext("2d", { alpha: false, willReadFrequently: true });
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, width, height);
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  const rgba = ctx.getImageData(0, 0, width, height).data;
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
    rgb[j] = rgba[i];
    rgb[j + 1] = rgba[i + 1];
    rgb[j + 2] = rgba[i + 2];
  }
  return D.resize.image(rgb, width, height, 3);
}

/** The server's overlay colours (server/cache.py render_overlay): yellow to red, at most ~70 % opaque. */
function overlayPng(mask) {
  // A document canvas and toDataURL: OffscreenCanvas.convertToBlob took ~1 s per map in a hidden document.
  const canvas = document.createElement("canvas");
  canvas.width = mask.width;
  canvas.height = mask.height;
  const ctx = canvas.getContext("2d");
  const pixels = ctx.createImageData(mask.width, mask.height);
  const px = pixels.data;
  for (let i = 0; i < mask.data.length; i += 1) {
    const m = Math.max(0, Math.min(255, Math.floor(mask.data[i] * 255 + 0.5)));
    px[i * 4] = 255;
    px[i * 4 + 1] = 255 - m;
    px[i * 4 + 3] = Math.floor((m * G.contract.HEATMAP_MAX_ALPHA) / 255);
  }
  ctx.putImageData(pixels, 0, 0);
  return { type: "image/png", base64: canvas.toDataURL("image/png").split(",", 2)[1] };
}

function remember(id, heatmap) {
  heatmaps.delete(id);
  heatmaps.set(id, heatmap);
  while (heatmaps.size > HEATMAPS_KEPT) heatmaps.delete(heatmaps.keys().next().value);
}

async function analyze(src, source, scan) {
  const t0 = performance.now();
  const rt = await ready(undefined, source);
  const engine = scan ? await scanEngine(rt) : rt.engine;
  const t1 = performance.now();
  const transport = { fetchWithTimeout: (url, init, ms) => fetch(url, Object.assign({}, init, { signal: AbortSignal.timeout(ms) })) };
  const image = await G.apiParts.download.downloadImage(transport, src, { maxBytes: G.contract.LIMITS.upload_bytes, timeoutMs: 30000 });
  const bytes = new Uint8Array(await image.blob.arrayBuffer());
  const info = D.header.probe(bytes, { maxPixels: G.contract.LIMITS.image_pixels, minSide: rt.policy.min_side });
  const sha256 = await D.model.sha256Hex(bytes);
  const t2 = performance.now();
  let rgb;
  try {
    rgb = await decodeRgb(image.blob);
  } catch (err) {
    throw new G.errors.GammaError("image_decode_failed", `the ${info.format} file could not be decoded`);
  }
  const t3 = performance.now();
  const tiles = D.policy.tile(rt.policy, rgb);
  const plan = tiles.plan;
  const staged = rt.policy.staged;
  const stage0 = tiles.views(staged ? 0 : null);
  const tTiled = performance.now();
  const first = await infer(rt, engine, stage0);
  let out = first;
  const scored = (out) => rt.decision.decide(out.probabilities, () => evidenceOf(rt, plan, out));
  if (staged && plan.firstViews < plan.views && rt.policy.refine_bands.includes(rt.decision.verdict(scored(first).probability))) {
    const more = await infer(rt, engine, tiles.views(1));
    out = { probabilities: first.probabilities.concat(more.probabilities), masks: first.masks.concat(more.masks), sources: first.sources.concat(more.sources), side: first.side, classes: first.classes };
  }
  const t4 = performance.now();
  const raw = D.policy.stitch(rt.policy, out.masks, out.side, 1, plan, MASK_SIDE);
  const mask = Object.assign({}, raw, { data: rt.decision.calibrateMask(raw.data) });
  const shares = D.policy.stitch(rt.policy, out.sources, out.side, out.classes, plan, SHARE_SIDE);
  const decided = D.decide.result(rt.decision, scored(out), mask, shares.data);
  // The file's metadata (EXIF, XMP, generator parameters), read and combined as the server does; an unreadable
  // header is the reader's own error item, never a failed check.
  const parsed = await D.metadata.parse(exifr, bytes);
  const evidence = D.metadata.itemsFrom(parsed);
  Object.assign(decided, D.metadata.combine(decided.verdict, decided.verdict_reason, evidence));
  const tStitched = performance.now();
  const id = sha256 + ":" + rt.info.digest;
  remember(id, overlayPng(mask));
  const t5 = performance.now();
  status.lastCheckMs = round(t5 - t0);
  return Object.assign(decided, {
    evidence,
    // Where it ran, under `model` (the contract's fields stay as they are): threads, isolation, what was not checked.
    model: Object.assign({}, rt.info, { on_device: { threads: engine.threads, cross_origin_isolated: status.crossOriginIsolated, views: out.probabilities.length, not_checked: ["c2pa", "watermark"] } }),
    image: { sha256, format: info.format, width: rgb.width, height: rgb.height },
    heatmap_url: "device:" + id,
    timings: { model_ms: round(t1 - t0), fetch_ms: round(t2 - t1), decode_ms: round(t3 - t2), views_ms: round(tTiled - t3), inference_ms: round(t4 - tTiled), stitch_ms: round(tStitched - t4), heatmap_ms: round(t5 - tStitched), total_ms: round(t5 - t0) },
    cached: false,
  });
}

const round = (ms) => Math.round(ms * 10) / 10;

const handlers = {
  "gamma:device:analyze": (m) => analyze(m.src, m.source, Boolean(m.scan)),
  "gamma:device:status": async (m) => {
    if (m.load) await ready(m.threads, m.source).catch(() => {});
    // `fetched`: every address this document has fetched (its resource timeline), for the claim that a check
    // on device reaches no host but the image's own.
    const fetched = performance.getEntriesByType("resource").map((e) => e.name);
    return Object.assign({ loaded: Boolean(runtime), model: runtime ? runtime.info : null, fetched }, status);
  },
  "gamma:device:heatmap": async (m) => {
    const found = heatmaps.get(m.id);
    if (!found) throw new G.errors.GammaError("not_found", "This heatmap is no longer kept on this device: check the image again");
    return found;
  },
  // Benchmarks (bench/extension_device.py): ms per view batch on this runtime, for batch sizes and thread counts.
  "gamma:device:bench": async (m) => {
    const rt = await ready();
    const s = rt.policy.input_size;
    const view = D.resize.image(new Uint8Array(s * s * 3).map((_, i) => (i * 2654435761) >>> 24), s, s, 3);
    const times = [];
    for (let r = 0; r < (m.rounds || 5); r += 1) {
      const t = performance.now();
      await infer(rt, rt.engine, new Array(m.batch || 1).fill(view));
      times.push(performance.now() - t);
    }
    return { batch: m.batch || 1, threads: status.threads, ms: times };
  },
};

chrome.runtime.onMessage.addListener((message, sender, sendResponse) => {
  if (!message || message.target !== "offscreen" || !Object.hasOwn(handlers, message.type)) return false;
  if (sender.id !== chrome.runtime.id) return false;
  handlers[message.type](message).then(
    (value) => sendResponse({ ok: true, value }),
    (err) => sendResponse({ ok: false, error: { code: err.code || "extension_error", message: String(err.message || err) } }),
  );
  return true;
});

"use strict";
// The on-device runtime's pure parts: header probe, the manifest's decision, settings' mode.
// (Resize, plans and stitching are checked against the Python side by tests/test_extension_device_port.py.)
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const zlib = require("node:zlib");

const header = require("../lib/device/header.js");
const decide = require("../lib/device/decide.js");
const policyLib = require("../lib/device/policy.js");
const settings = require("../lib/settings.js");

const MANIFEST = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "..", "models", "default", "manifest.json"), "utf8"));
const LIMITS = { maxPixels: 50e6, minSide: 64 };
// The released manifest with the mean view logit alone as its decision: for the checks that do not depend on it.
const PLAIN = Object.assign({}, MANIFEST, { decision: null });

function png(width, height) {
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    return Buffer.concat([len, Buffer.from(type), data, Buffer.alloc(4)]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return new Uint8Array(Buffer.concat([Buffer.from("\x89PNG\r\n\x1a\n", "latin1"), chunk("IHDR", ihdr), chunk("IDAT", zlib.deflateSync(Buffer.alloc(8)))]));
}

function jpeg(width, height) {
  const app0 = [0xff, 0xe0, 0x00, 0x10, ...Buffer.from("JFIF\0"), 1, 1, 0, 0, 1, 0, 1, 0, 0];
  const sof = [0xff, 0xc0, 0x00, 0x11, 8, height >> 8, height & 255, width >> 8, width & 255, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1];
  return new Uint8Array([0xff, 0xd8, ...app0, ...sof, 0xff, 0xda, 0, 8, ...new Array(24).fill(0)]);
}

test("header probe reads each format's size without decoding", () => {
  assert.deepEqual(header.probe(png(640, 480), LIMITS), { format: "PNG", width: 640, height: 480 });
  assert.deepEqual(header.probe(jpeg(4032, 3024), LIMITS), { format: "JPEG", width: 4032, height: 3024 });
  const gif = new Uint8Array(40);
  gif.set(Buffer.from("GIF89a"));
  gif.set([0x2c, 0x01, 0xc8, 0x00], 6); // 300 x 200
  assert.deepEqual(header.probe(gif, LIMITS), { format: "GIF", width: 300, height: 200 });
  const webp = new Uint8Array(40);
  webp.set(Buffer.from("RIFF"));
  webp.set(Buffer.from("WEBPVP8X"), 8);
  webp.set([0x1f, 0x03, 0x00, 0x57, 0x02, 0x00], 24); // 800 x 600
  assert.deepEqual(header.probe(webp, LIMITS), { format: "WEBP", width: 800, height: 600 });
});

test("header probe refuses what the server refuses, with its codes", () => {
  const fails = (bytes, expected) => assert.throws(() => header.probe(bytes, LIMITS), (err) => err.code === expected && err.message.length > 0);
  fails(png(30000, 30000), "image_too_large");
  fails(png(40, 400), "image_too_small");
  fails(new Uint8Array(0), "image_decode_failed");
  fails(new TextEncoder().encode("<svg xmlns='http://www.w3.org/2000/svg'></svg>".padEnd(64)), "unsupported_media_type");
  fails(jpeg(640, 480).slice(0, 34).map((b, i) => (i === 20 ? 0x00 : b)), "image_decode_failed");
});

test("the decision is the manifest's: mean logit with its eps, its bands", () => {
  const d = decide.fromManifest(MANIFEST);
  const p = [0.9, 0.6, 0.99];
  const eps = MANIFEST.crop_policy.combine_rule.eps;
  const mean = p.map((q) => Math.log(q / (1 - q))).reduce((a, b) => a + b) / p.length;
  assert.ok(Math.abs(d.combine(p).probability - 1 / (1 + Math.exp(-mean))) < 1e-12);
  assert.ok(d.combine([1, 1]).probability < 1 && Math.abs(d.combine([1]).probability - (1 - eps)) < 1e-9, "clipped to [eps, 1 - eps]");
  for (const band of MANIFEST.verdict_bands) assert.equal(d.verdict(band.min), band.name);
  assert.equal(d.verdict(1), "ai");
});

test("a decision this runtime lacks is refused, never approximated", () => {
  const other = (patch) => Object.assign(JSON.parse(JSON.stringify(MANIFEST)), patch);
  const refused = (manifest) => assert.throws(() => decide.fromManifest(manifest), (err) => err.code === "device_unsupported");
  const policy = Object.assign({}, MANIFEST.crop_policy, { combine_rule: { name: "fused_region_logit", weights: [1, 2] } });
  refused(other({ crop_policy: policy }));
  refused(other({ decision: { rule: "region_fusion" } }));
  refused(other({ decision: { rule: "logistic_fusion", features: ["attention_logit"], weights: [1], bias: 0 } }));
  const fusion = { rule: "logistic_fusion", features: ["mean_logit"], weights: [1], bias: 0, ai_edge_logit: 2 };
  refused(other({ decision: { rule: "either", whole: fusion } }));
  refused(other({ decision: { rule: "either", whole: fusion, region: Object.assign({}, fusion, { ai_edge_logit: null }) } }));
  refused(other({ decision: { rule: "either", whole: fusion, region: Object.assign({}, fusion, { map_side: 64 }) } }));
  decide.fromManifest(other({ decision: { rule: "either", whole: fusion, region: fusion } }));   // a complete one is read
  refused(other({ decision: { rule: "either", whole: fusion, region: Object.assign({}, fusion, { rule: "either" }) } }));
  // A region likely_ai edge needs the whole rule's likely_ai band (decision.py Either refuses it too).
  refused(other({ decision: { rule: "either", whole: fusion, region: Object.assign({}, fusion, { likely_ai_edge_logit: 1 }) } }));
  const banded = Object.assign({}, fusion, { likely_ai_edge_logit: 1 });
  const raised = decide.fromManifest(other({ decision: { rule: "either", whole: banded, region: Object.assign({}, banded, { features: ["max_view_logit"], likely_ai_edge_logit: 0, ai_edge_logit: 4 }) } }));
  // Views logits 0 and 2 (mean 1, max 2): the region (2) halfway between its edges 0 and 4 maps halfway along 1..2.
  const p = (z) => 1 / (1 + Math.exp(-z));
  assert.ok(Math.abs(raised.decide([0.5, p(2)]).probability - p(1.5)) < 1e-9);
  // A weighted mean logit is not the plain rule (decision.py Decision.plain checks the weight too).
  const doubled = decide.fromManifest(other({ decision: Object.assign({}, fusion, { weights: [2] }) }));
  assert.ok(Math.abs(doubled.decide([0.7]).probability - 1 / (1 + Math.exp(-2 * Math.log(0.7 / 0.3)))) < 1e-9);
  refused(other({ abstention: { max_view_spread: null, max_reencode_shift: 0.5, quality: 90 } }));
  refused(other({ verdict_bands: [] }));
});

test("the abstention's view-spread check turns an AI-side verdict into uncertain", () => {
  const d = decide.fromManifest(Object.assign({}, PLAIN, { abstention: { max_view_spread: 0.5, max_reencode_shift: null, quality: 90 } }));
  const mask = { data: new Float32Array(4), width: 2, height: 2 };
  const shares = new Float32Array(4 * 5);
  const spread = decide.result(d, d.decide([0.999, 0.9999, 0.2]), mask, shares);
  assert.equal(spread.verdict, "uncertain");
  assert.equal(spread.uncertain_reason, "view_spread");
  const agree = decide.result(d, d.decide([0.999, 0.999]), mask, shares);
  assert.equal(agree.verdict, "ai");
  assert.equal(agree.uncertain_reason, null);
});

test("result fields: mask fraction above 0.5, source shares by argmax", () => {
  const d = decide.fromManifest(PLAIN);
  const mask = { data: Float32Array.from([0.9, 0.1, 0.6, 0.5]), width: 2, height: 2 };
  const shares = new Float32Array(4 * 5);
  [0, 1, 1, 2].forEach((c, i) => (shares[i * 5 + c] = 1));
  const r = decide.result(d, d.decide([0.3]), mask, shares);
  assert.equal(r.mask_fraction, 0.5);
  assert.deepEqual(r.sources, { authentic: 0.25, generated: 0.5, inpainted: 0.25, copy_moved: 0, spliced: 0 });
  assert.equal(r.ai_probability, 0.3);
  // no AI verdict: no AI content; the strongest region is the connected part with the most mass (0.9 above 0.6)
  assert.deepEqual(r.ai_content, { extent: "none", region: { box: [0, 0, 0.5, 1], share: 0.5 } });
  assert.equal(r.verdict_reason, "pixels");
});

test("the released two rules: a quiet image stays the global rule's, a strong region raises it to ai", () => {
  assert.equal(MANIFEST.decision.rule, "either");
  const d = decide.fromManifest(MANIFEST);
  const plain = decide.fromManifest(PLAIN);
  const mask = { data: Float32Array.from([0.1, 0.1, 0.1, 0.99]), width: 2, height: 2 };
  const quiet = d.decide([0.3, 0.35], () => [-6, -5, -6, 0]);
  assert.ok(Math.abs(quiet.probability - plain.decide([0.3, 0.35]).probability) < 1e-12, "under its edge the region changes nothing");
  const edited = d.decide([0.3, 0.35], () => [6, 8, -2, 5]); // the map's top mass and peak stand out
  const r = decide.result(d, edited, mask, new Float32Array(4 * 5));
  assert.deepEqual([r.verdict, r.verdict_reason, r.ai_content.extent], ["ai", "region", "region"]);
  assert.equal(decide.result(d, quiet, mask, new Float32Array(4 * 5)).verdict_reason, "pixels");
});

test("a fused decision lets region evidence raise the verdict: verdict_reason region", () => {
  const manifest = Object.assign({}, MANIFEST, { decision: { rule: "logistic_fusion", features: ["mean_logit", "mask_peak_logit"], weights: [1, 1], bias: 0, map_side: 4, top_share: 0.05 } });
  const d = decide.fromManifest(manifest);
  const scores = d.decide([0.3], () => [0, 6, 0]); // a quiet image score, a strong peak in the map
  assert.ok(scores.probability > 0.99 && Math.abs(scores.alone - 0.3) < 1e-9);
  const mask = { data: Float32Array.from([0.1, 0.1, 0.1, 0.99]), width: 2, height: 2 };
  const r = decide.result(d, scores, mask, new Float32Array(4 * 5));
  assert.equal(r.verdict, "ai");
  assert.equal(r.verdict_reason, "region");
  assert.deepEqual(r.ai_content, { extent: "region", region: { box: [0.5, 0.5, 1, 1], share: 0.25 } });
});

test("a short side under the policy's minimum is too small, as on the server", () => {
  const p = policyLib.fromManifest(MANIFEST.crop_policy);
  assert.throws(() => policyLib.plan(p, 50, 400), (err) => err.code === "image_too_small");
  assert.equal(policyLib.plan(p, 480, 640).views, 10);
  assert.equal(policyLib.plan(p, 480, 640).firstViews, 1);
});

test("settings: mode is server, device or auto", () => {
  assert.equal(settings.normalizeSettings({}).settings.mode, "server");
  assert.equal(settings.normalizeSettings({ mode: "auto" }).settings.mode, "auto");
  const bad = settings.normalizeSettings({ mode: "cloud" });
  assert.equal(bad.settings.mode, "server");
  assert.ok(bad.errors.mode);
});

test("routing: server, device only, or device with the server when the device can't run the model", async () => {
  const { createRouter } = require("../lib/device/route.js");
  const { GammaError } = require("../lib/errors.js");
  const calls = [];
  const route = (mode, deviceError) =>
    createRouter({
      getSettings: async () => ({ mode }),
      server: async (m) => (calls.push("server " + m.src), { where: "server" }),
      device: async (key) => {
        calls.push("device " + key);
        if (deviceError) throw new GammaError(deviceError, "no");
        return { where: "device" };
      },
    });
  const message = { src: "https://example.org/a.jpg", pageUrl: "https://example.org/" };
  assert.equal((await route("server")(message)).where, "server");
  assert.equal((await route("device")(message)).where, "device");
  assert.equal((await route("auto", "device_unsupported")(message)).where, "server");
  assert.equal((await route("auto", "device_unavailable")(message)).where, "server");
  await assert.rejects(route("device", "device_unsupported")(message), (err) => err.code === "device_unsupported");
  // an image the device refuses is not sent to the server instead
  await assert.rejects(route("auto", "image_too_small")(message), (err) => err.code === "image_too_small");
  await assert.rejects(route("device")({ src: "blob:https://example.org/x" }), (err) => err.code === "image_fetch_failed");
  assert.deepEqual(calls.filter((c) => c.startsWith("server")).length, 3);
});

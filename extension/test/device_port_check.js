/*
 * The on-device port against what Python computed (tests/device_fixtures.py): run by
 * tests/test_extension_device_port.py as `node extension/test/device_port_check.js FIXTURES.json`;
 * prints one JSON report (per case: how many values differ and by how much).
 */
"use strict";
const fs = require("fs");
const { resize, image } = require("../lib/device/resize.js");
const policyLib = require("../lib/device/policy.js");
const decide = require("../lib/device/decide.js");

function decode(b64, dtype) {
  const buf = Buffer.from(b64, "base64");
  const copy = new Uint8Array(buf.length);
  copy.set(buf);
  return dtype === "uint8" ? copy : new Float32Array(copy.buffer);
}

function compare(got, want) {
  let differ = 0;
  let max = 0;
  if (got.length !== want.length) return { differ: -1, max: Infinity, length: [got.length, want.length] };
  for (let i = 0; i < want.length; i += 1) {
    const d = Math.abs(got[i] - want[i]);
    if (d > 0) differ += 1;
    if (d > max) max = d;
  }
  return { differ, max, values: want.length };
}

const fixtures = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const report = { resize: [], plans: [], stitch: [] };
for (const c of fixtures.resize) {
  const src = image(decode(c.src, c.dtype), c.width, c.height, c.channels);
  const out = resize(src, c.to[0], c.to[1]);
  report.resize.push(Object.assign({ mode: c.mode, dtype: c.dtype, case: `${c.dtype} ${c.width}x${c.height}x${c.channels} -> ${c.to[0]}x${c.to[1]}` }, compare(out.data, decode(c.out, c.dtype))));
}
const policy = policyLib.fromManifest(fixtures.policy);
for (const c of fixtures.plans) {
  const p = policyLib.plan(policy, c.height, c.width);
  const same = JSON.stringify([p.boxes, p.globalBox, p.first, p.working]) === JSON.stringify([c.boxes, c.global_box, c.first, c.working]);
  report.plans.push({ case: `${c.width}x${c.height}`, same, got: same ? undefined : [p.boxes, p.globalBox, p.first, p.working] });
}
for (const c of fixtures.stitch) {
  const p = policyLib.plan(policy, c.height, c.width);
  const masks = decode(c.masks, "float32");
  const sources = decode(c.sources, "float32");
  const cell = 28 * 28;
  const maskViews = [];
  const sourceViews = [];
  for (let v = 0; v < c.views; v += 1) {
    maskViews.push(masks.slice(v * cell, (v + 1) * cell));
    sourceViews.push(sources.slice(v * cell * 5, (v + 1) * cell * 5));
  }
  const mask = policyLib.stitch(policy, maskViews, 28, 1, p, fixtures.constants.mask_side);
  const shares = policyLib.stitch(policy, sourceViews, 28, 5, p, fixtures.constants.share_side);
  report.stitch.push({
    case: `${c.width}x${c.height} ${c.views} views`,
    mask: Object.assign({ shape: [mask.height, mask.width], want: c.mask_shape }, compare(mask.data, decode(c.mask, "float32"))),
    shares: Object.assign({ shape: [shares.height, shares.width], want: c.shares_shape.slice(0, 2) }, compare(shares.data, decode(c.shares, "float32"))),
  });
}
const c = fixtures.constants;
report.constants = {
  same: decide.EVIDENCE_EPS === c.evidence_eps && JSON.stringify(decide.REGION_CLASSES) === JSON.stringify(c.region_classes) && decide.MASK_SIDE === c.mask_side && decide.SHARE_SIDE === c.share_side,
};
const manifest = Object.assign({}, fixtures.manifest, { decision: fixtures.decision, mask_calibration: fixtures.mask_calibration });
const decision = decide.fromManifest(manifest);
report.regions = fixtures.regions.map((c) => {
  const p = policyLib.plan(policy, c.height, c.width);
  const masks = decode(c.masks, "float32");
  const sources = decode(c.sources, "float32");
  const cell = 28 * 28;
  const out = { masks: [], sources: [] };
  for (let v = 0; v < p.views; v += 1) {
    out.masks.push(masks.slice(v * cell, (v + 1) * cell));
    out.sources.push(sources.slice(v * cell * 5, (v + 1) * cell * 5));
  }
  const side = decision.fusion.mapSide;
  const evidence = () => {
    const m = policyLib.stitch(policy, out.masks, 28, 1, p, side);
    const sh = policyLib.stitch(policy, out.sources, 28, 5, p, side);
    return decide.regionEvidence(decision.fusion, decision.classes, m.data, sh.data);
  };
  const scores = decision.decide(c.probabilities, evidence);
  const raw = policyLib.stitch(policy, out.masks, 28, 1, p, decide.MASK_SIDE);
  const mask = Object.assign({}, raw, { data: decision.calibrateMask(raw.data) });
  const shares = policyLib.stitch(policy, out.sources, 28, 5, p, decide.SHARE_SIDE);
  const result = decide.result(decision, scores, mask, shares.data);
  return {
    case: `${c.width}x${c.height}`,
    evidence: evidence().map((v, i) => Math.abs(v - c.evidence[i])),
    probability: Math.abs(scores.probability - c.probability),
    region: result.ai_content.region,
    want_region: c.region,
    mask_fraction: [result.mask_fraction, Math.round(c.mask_fraction * 1e4) / 1e4],
    // Two rules over the same evidence: the region raising the verdict to `ai`, and under its edge.
    either: c.either.map((e) => {
      const rules = decide.fromManifest(Object.assign({}, manifest, { decision: e.decision }));
      const s = rules.decide(c.probabilities, evidence);
      return { probability: Math.abs(s.probability - e.probability), raised: s.probability > c.probability + 1e-6 };
    }),
  };
});
const metadata = require("../lib/device/metadata.js");

async function evidence() {
  const exifr = await import("../node_modules/exifr/dist/full.esm.mjs");
  report.evidence = [];
  for (const c of fixtures.evidence) {
    const parsed = await metadata.parse(exifr, Buffer.from(c.data, "base64"));
    const got = metadata.itemsFrom(parsed).map((e) => ({ source: e.source, status: e.status, strength: e.strength, reason: e.reason, summary: e.summary }));
    report.evidence.push({ case: c.name, got, want: c.items });
  }
}

evidence().then(() => process.stdout.write(JSON.stringify(report, null, 1) + "\n"));

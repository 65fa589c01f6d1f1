"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const v = require("../lib/verdicts.js");
const contract = require("../lib/contract.js");

test("every server verdict has words, a colour and a group", () => {
  for (const name of contract.VERDICTS) {
    const d = v.describeVerdict(name);
    assert.ok(d.label && d.short, name);
    assert.match(d.colour, /^#[0-9a-f]{6}$/i);
  }
  assert.equal(v.describeVerdict("ai").group, "ai");
  assert.equal(v.describeVerdict("likely_ai").group, "ai");
  assert.equal(v.describeVerdict("real").group, "real");
  assert.equal(v.describeVerdict("likely_real").group, "real");
  assert.equal(v.describeVerdict("uncertain").group, "uncertain");
});

test("unknown verdicts are shown as unknown, never guessed from the probability", () => {
  assert.equal(v.describeVerdict("banana"), v.UNKNOWN);
  assert.equal(v.describeVerdict(undefined), v.UNKNOWN);
  assert.equal(v.describeVerdict("constructor"), v.UNKNOWN); // no prototype leaks
  assert.equal(v.summarise({ ai_probability: 0.99 }).group, "unknown");
});

test("colours are dark enough for white badge text (WCAG AA, 4.5:1)", () => {
  const lum = (hex) => {
    const c = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255).map((x) => (x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4));
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  for (const d of [...Object.values(v.VERDICTS), v.UNKNOWN]) {
    const ratio = 1.05 / (lum(d.colour) + 0.05);
    assert.ok(ratio >= 4.5, `${d.label} ${d.colour} contrast ${ratio.toFixed(2)}`);
  }
});

test("probabilities are formatted as whole percents without lying at the ends", () => {
  assert.equal(v.formatProbability(0.934), "93%");
  assert.equal(v.formatProbability(0), "0%");
  assert.equal(v.formatProbability(1), "100%");
  assert.equal(v.formatProbability(0.004), "<1%");
  assert.equal(v.formatProbability(0.996), ">99%");
  assert.equal(v.formatProbability(1.7), "100%");
  assert.equal(v.formatProbability(NaN), "–");
  assert.equal(v.formatProbability(null), "–");
});

test("summary and badge text", () => {
  const result = { ai_probability: 0.97, verdict: "ai", model: { name: "gamma", version: "1.2.0", backend: "onnxruntime" } };
  const s = v.summarise(result);
  assert.equal(s.label, "AI-generated");
  assert.equal(s.probability, "97%");
  assert.equal(s.model, "gamma 1.2.0 (onnxruntime)");
  assert.equal(v.badgeText(result), "AI 97%");
  assert.equal(v.badgeText({ ai_probability: 0.02, verdict: "real" }), "Real 2%");
  assert.equal(v.formatModel(null), "unknown model");
  assert.equal(v.formatModel({ name: "m" }), "m");
});

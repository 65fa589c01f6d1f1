"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const e = require("../lib/evidence.js");

const signed = { source: "c2pa", status: "ok", strength: "strong", reason: "ai_generated", summary: "Content Credentials: made with Acme Gen, signed by Acme Inc" };
const camera = { source: "exif", status: "ok", strength: "weak", reason: "camera_exif", summary: "Camera: Canon EOS 70D (not proof)" };
const tampered = { source: "c2pa", status: "invalid", strength: null, reason: "ai_generated", summary: "Content Credentials: ... (tampered: not believed)" };

test("lines list the server's sentences, strongest first, failed ones last and marked", () => {
  const lines = e.lines({ evidence: [camera, tampered, signed] });
  assert.deepEqual(lines.map((l) => l.text), [signed.summary, camera.summary, tampered.summary]);
  assert.deepEqual(lines.map((l) => [l.strength, l.failed]), [["strong", false], ["weak", false], [null, true]]);
});

test("results without evidence, or with malformed items, give no lines", () => {
  assert.deepEqual(e.lines({}), []);
  assert.deepEqual(e.lines(null), []);
  assert.deepEqual(e.lines({ evidence: [null, 3, { summary: "" }, { summary: 7 }] }), []);
  assert.equal(e.lines({ evidence: [{ ...signed, strength: "constructor" }] })[0].strength, null);
});

test("proof only from a believed item the server called proof", () => {
  assert.equal(e.hasProof({ evidence: [signed, camera] }), false);
  assert.equal(e.hasProof({ evidence: [{ ...signed, strength: "proof" }] }), true);
  assert.equal(e.hasProof({ evidence: [{ ...tampered, strength: "proof" }] }), false);
});

test("the badge names what decided, and says proof only for trusted Content Credentials", () => {
  const proof = { ...signed, strength: "proof" };
  assert.equal(e.badgeReason({ verdict_reason: "c2pa:ai_generated", evidence: [proof] }), "C2PA proof");
  assert.equal(e.badgeReason({ verdict_reason: "c2pa:ai_edited", evidence: [signed] }), "C2PA");
  assert.equal(e.badgeReason({ verdict_reason: "watermark:ai_generated", evidence: [proof] }), "watermark");
  assert.equal(e.badgeReason({ verdict_reason: "capture_claim" }), "capture");
  assert.equal(e.badgeReason({ verdict_reason: "pixels" }), null);
  assert.equal(e.badgeReason({ verdict_reason: "hasOwnProperty" }), null);
  assert.equal(e.badgeReason({}), null);
});

test("a strength of another type is no strength, and never throws (found by fuzzing)", () => {
  // {"toString": 1, "valueOf": 1} made Object.hasOwn throw (TypeError); ["weak"] passed as the strength "weak"
  for (const strength of [{ toString: 1, valueOf: 1 }, ["weak"], 1, null]) {
    const [line] = e.lines({ evidence: [{ ...camera, strength }] });
    assert.equal(line.strength, null);
  }
});

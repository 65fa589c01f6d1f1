"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const e = require("../lib/eligibility.js");

const photo = { src: "https://ex.com/p.jpg", naturalWidth: 800, naturalHeight: 600, width: 400, height: 300, complete: true };

test("a visible photo at least 128 px on each side is checked", () => {
  assert.deepEqual(e.classify(photo), { eligible: true });
  assert.ok(e.classify({ ...photo, width: 128, height: 128, naturalWidth: 128, naturalHeight: 128 }).eligible);
  assert.ok(e.classify({ ...photo, src: "data:image/jpeg;base64,/9j/" }).eligible);
});

test("small on the page or small in the file: skipped as too small", () => {
  for (const facts of [
    { ...photo, width: 127 },
    { ...photo, height: 64 },
    { ...photo, naturalWidth: 100 },
    { ...photo, naturalHeight: 127 },
  ]) {
    const d = e.classify(facts);
    assert.equal(d.eligible, false);
    assert.equal(d.reason, "too_small");
    assert.equal(d.label, "Too small to check");
  }
});

test("tiny images are counted but not labelled (the label would hide them)", () => {
  const pixel = e.classify({ ...photo, width: 1, height: 1, naturalWidth: 1, naturalHeight: 1 });
  assert.equal(pixel.reason, "too_small");
  assert.equal(pixel.showLabel, false);
  assert.equal(e.classify({ ...photo, width: 64, height: 64 }).showLabel, true);
});

test("pure graphics are skipped, not guessed", () => {
  for (const src of ["https://ex.com/logo.svg", "https://ex.com/logo.SVG?v=2", "https://ex.com/favicon.ico", "data:image/svg+xml;utf8,<svg/>", "data:image/svg+xml,%3Csvg%3E"]) {
    const d = e.classify({ ...photo, src });
    assert.equal(d.reason, "graphic", src);
  }
  assert.ok(e.isGraphicUrl("/icons/a.svgz"));
  assert.ok(!e.isGraphicUrl("https://ex.com/svg/photo.jpg"));
});

test("images the extension can't fetch and broken images", () => {
  assert.equal(e.classify({ ...photo, src: "blob:https://ex.com/uuid" }).reason, "unsupported_url");
  assert.equal(e.classify({ ...photo, src: "" }).reason, "unsupported_url");
  assert.equal(e.classify({ ...photo, naturalWidth: 0, naturalHeight: 0 }).reason, "broken");
});

test("the minimum side can be changed", () => {
  assert.ok(e.classify({ ...photo, width: 100, height: 100, naturalWidth: 100, naturalHeight: 100 }, 64).eligible);
});

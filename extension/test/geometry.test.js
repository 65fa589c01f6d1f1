"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const g = require("../lib/geometry.js");

test("fill stretches the picture over the box", () => {
  assert.deepEqual(g.fitRect(300, 200, 1000, 1000, "fill"), { x: 0, y: 0, width: 300, height: 200 });
  assert.deepEqual(g.fitRect(300, 200, 1000, 1000, ""), { x: 0, y: 0, width: 300, height: 200 });
});

test("contain letterboxes, centred by default", () => {
  assert.deepEqual(g.fitRect(300, 200, 100, 100, "contain"), { x: 50, y: 0, width: 200, height: 200 });
  assert.deepEqual(g.fitRect(300, 200, 100, 100, "contain", "left top"), { x: 0, y: 0, width: 200, height: 200 });
  assert.deepEqual(g.fitRect(300, 200, 100, 100, "contain", "right"), { x: 100, y: 0, width: 200, height: 200 });
});

test("cover overflows the box", () => {
  const r = g.fitRect(300, 200, 100, 100, "cover");
  assert.deepEqual(r, { x: 0, y: -50, width: 300, height: 300 });
  assert.deepEqual(g.fitRect(300, 200, 100, 100, "cover", "50% 0%"), { x: 0, y: 0, width: 300, height: 300 });
  assert.deepEqual(g.fitRect(300, 200, 100, 100, "cover", "0px 100%"), { x: 0, y: -100, width: 300, height: 300 });
});

test("none and scale-down", () => {
  assert.deepEqual(g.fitRect(300, 200, 100, 50, "none"), { x: 100, y: 75, width: 100, height: 50 });
  assert.deepEqual(g.fitRect(300, 200, 100, 50, "scale-down"), { x: 100, y: 75, width: 100, height: 50 });
  assert.deepEqual(g.fitRect(100, 100, 400, 200, "scale-down"), { x: 0, y: 25, width: 100, height: 50 });
});

test("unknown sizes fall back to the box", () => {
  assert.deepEqual(g.fitRect(300, 200, 0, 0, "cover"), { x: 0, y: 0, width: 300, height: 200 });
  assert.deepEqual(g.fitRect(300, 200, 10, 10, "contain", "bottom"), { x: 50, y: 0, width: 200, height: 200 });
  assert.deepEqual(g.fitRect(300, 200, 10, 10, "contain", "top left"), { x: 0, y: 0, width: 200, height: 200 });
});

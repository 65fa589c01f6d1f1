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

const VIEW = { width: 1280, height: 900 };
const PANEL = { width: 300, height: 260 };
const overlaps = (p, r) => p.x < r.left + r.width && r.left < p.x + PANEL.width && p.y < r.top + r.height && r.top < p.y + PANEL.height;

test("a panel goes below its image when it fits, above it when the viewport ends first", () => {
  const img = { left: 100, top: 120, width: 300, height: 200 };
  assert.deepEqual(g.beside(img, PANEL, VIEW), { side: "below", x: 100, y: 326 });
  const low = { left: 100, top: 600, width: 300, height: 200 };
  assert.deepEqual(g.beside(low, PANEL, VIEW), { side: "above", x: 100, y: 334 });
});

test("a tall image gets the panel at its side, kept in the viewport", () => {
  const tall = { left: 200, top: 20, width: 500, height: 860 };
  assert.deepEqual(g.beside(tall, PANEL, VIEW), { side: "right", x: 706, y: 20 });
  const wide = { left: 600, top: 20, width: 660, height: 860 };
  assert.deepEqual(g.beside(wide, PANEL, VIEW), { side: "left", x: 294, y: 20 });
});

test("the side a panel had is kept while it fits", () => {
  const img = { left: 400, top: 300, width: 300, height: 200 };
  assert.equal(g.beside(img, PANEL, VIEW).side, "below");
  assert.equal(g.beside(img, PANEL, VIEW, "right").side, "right");
  assert.equal(g.beside({ left: 960, top: 300, width: 300, height: 200 }, PANEL, VIEW, "right").side, "below");
});

test("a panel never covers its image while a side has room, and always stays in the viewport", () => {
  const inside = (p) => p.x >= 8 && p.y >= 8 && p.x + PANEL.width <= VIEW.width - 8 && p.y + PANEL.height <= VIEW.height - 8;
  for (let i = 0; i < 500; i += 1) {
    const u = (k) => ((i * 7919 + k * 104729) % 1000) / 1000; // fixed pseudo-random rectangles
    const img = { left: u(1) * 1400 - 100, top: u(2) * 1000 - 100, width: 20 + u(3) * 1100, height: 20 + u(4) * 900 };
    const [right, bottom] = [img.left + img.width, img.top + img.height];
    const room =
      (bottom + 6 >= 8 && bottom + 6 + PANEL.height <= VIEW.height - 8) ||
      (img.top - 6 - PANEL.height >= 8 && img.top - 6 <= VIEW.height - 8) ||
      (right + 6 >= 8 && right + 6 + PANEL.width <= VIEW.width - 8) ||
      (img.left - 6 - PANEL.width >= 8 && img.left - 6 <= VIEW.width - 8);
    const p = g.beside(img, PANEL, VIEW);
    assert.ok(inside(p), JSON.stringify([img, p]));
    if (room) assert.ok(!overlaps(p, img), JSON.stringify([img, p]));
  }
  assert.ok(inside(g.beside({ left: -50, top: -50, width: 1400, height: 1000 }, PANEL, VIEW)));
});

test("an object-position this does not read is centred, never NaN (found by fuzzing)", () => {
  // "constructor" is `in` every object (NaN offsets), and 400 digits overflow a double
  for (const position of ["constructor top", "left toString", "9".repeat(400) + "px 0px", "1e400px", "50000000% 0%"]) {
    const r = g.fitRect(300, 200, 100, 100, "cover", position);
    assert.ok([r.x, r.y].every(Number.isFinite), position);
  }
  assert.deepEqual(g.fitRect(300, 200, 100, 100, "contain", "constructor constructor"), { x: 50, y: 0, width: 200, height: 200 });
});

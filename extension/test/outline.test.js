"use strict";
// The outline of the region a result marks (lib/outline.js): the heatmap's pixels that stand out and their boundary.
const test = require("node:test");
const assert = require("node:assert/strict");
const o = require("../lib/outline.js");

/** A width x height mask with the listed [x, y] pixels marked. */
function maskOf(width, height, pixels) {
  const mask = new Uint8Array(width * height);
  for (const [x, y] of pixels) mask[y * width + x] = 1;
  return mask;
}

function rect(width, height, x0, y0, x1, y1) {
  const pixels = [];
  for (let y = y0; y < y1; y += 1) for (let x = x0; x < x1; x += 1) pixels.push([x, y]);
  return maskOf(width, height, pixels);
}

/** The closed loops the segments make (each point joins exactly two segments). */
function loops(segments) {
  const links = new Map();
  const key = (x, y) => x + "," + y;
  for (let i = 0; i < segments.length; i += 4) {
    const a = key(segments[i], segments[i + 1]);
    const b = key(segments[i + 2], segments[i + 3]);
    for (const [p, q] of [[a, b], [b, a]]) links.set(p, (links.get(p) || []).concat(q));
  }
  for (const [point, next] of links) assert.equal(next.length, 2, "point " + point + " joins " + next.length + " segments");
  let count = 0;
  const seen = new Set();
  for (const start of links.keys()) {
    if (seen.has(start)) continue;
    count += 1;
    const stack = [start];
    while (stack.length) {
      const p = stack.pop();
      if (seen.has(p)) continue;
      seen.add(p);
      stack.push(...links.get(p));
    }
  }
  return count;
}

/** Every point of the outline lies halfway between a marked pixel's centre and an unmarked one's (outside counts as unmarked). */
function assertOnBoundary(segments, mask, width, height) {
  const at = (x, y) => (x >= 0 && y >= 0 && x < width && y < height ? mask[y * width + x] : 0);
  for (let i = 0; i < segments.length; i += 2) {
    const x = segments[i];
    const y = segments[i + 1];
    const pair = Number.isInteger(x) ? [at(x - 1, y - 0.5), at(x, y - 0.5)] : [at(x - 0.5, y - 1), at(x - 0.5, y)];
    assert.ok(Number.isInteger(x) !== Number.isInteger(y), `(${x}, ${y}) is a pixel edge's midpoint`);
    assert.notEqual(pair[0], pair[1], `(${x}, ${y}) lies between a marked and an unmarked pixel`);
  }
}

test("the heatmap's alpha stands out exactly where its map value is above the level", () => {
  assert.equal(o.LEVEL, 0.5);
  assert.equal(o.LEVEL_ALPHA, 90);
  for (let m = 0; m <= 255; m += 1) assert.equal(o.alphaOf(m) >= o.LEVEL_ALPHA, m / 255 > o.LEVEL, "uint8 " + m);
  const rgba = Uint8ClampedArray.from([255, 255, 0, 89, 255, 127, 0, 90, 255, 0, 0, 180, 0, 0, 0, 0]);
  assert.deepEqual(Array.from(o.marked(rgba, 2, 2)), [0, 1, 1, 0]);
});

test("a result marks a region, marks none, or does not say", () => {
  assert.equal(o.regionState({ ai_content: { extent: "none", region: { box: [0.1, 0.2, 0.5, 0.6], share: 0.12 } } }), "marked");
  assert.equal(o.regionState({ ai_content: { extent: "whole_image", region: null } }), "none");
  assert.equal(o.regionState({ verdict: "real" }), "unknown"); // a server from before ai_content
  assert.equal(o.regionState(null), "unknown");
});

test("one marked pixel is a diamond through its edges' midpoints", () => {
  const s = o.segments(maskOf(3, 3, [[1, 1]]), 3, 3);
  assert.equal(s.length, 16);
  const points = new Set();
  for (let i = 0; i < s.length; i += 2) points.add(s[i] + "," + s[i + 1]);
  assert.deepEqual([...points].sort(), ["1,1.5", "1.5,1", "1.5,2", "2,1.5"]);
  assert.equal(loops(s), 1);
});

test("a rectangle's outline runs along its edge, closed, cutting only its corners", () => {
  const mask = rect(10, 8, 2, 3, 7, 6);
  const s = o.segments(mask, 10, 8);
  assertOnBoundary(s, mask, 10, 8);
  assert.equal(loops(s), 1);
  // its length: the perimeter (2 * (5 + 3) pixel edges) less the four corners' cuts (1 - sqrt(2) / 2 each)
  let length = 0;
  for (let i = 0; i < s.length; i += 4) length += Math.hypot(s[i + 2] - s[i], s[i + 3] - s[i + 1]);
  assert.ok(Math.abs(length - (16 - 4 * (1 - Math.SQRT1_2))) < 1e-6, String(length));
});

test("a region on the image's edge is closed along the edge", () => {
  const mask = rect(6, 5, 0, 0, 6, 5); // every pixel
  const s = o.segments(mask, 6, 5);
  assertOnBoundary(s, mask, 6, 5);
  assert.equal(loops(s), 1);
  for (let i = 0; i < s.length; i += 2) {
    const [x, y] = [s[i], s[i + 1]];
    assert.ok(x === 0 || y === 0 || x === 6 || y === 5, `(${x}, ${y}) is on the image's edge`);
  }
});

test("parts are outlined one by one; diagonal neighbours are one part", () => {
  assert.equal(loops(o.segments(maskOf(5, 5, [[1, 1], [3, 3]]), 5, 5)), 2);
  const diagonal = maskOf(4, 4, [[1, 1], [2, 2]]);
  const s = o.segments(diagonal, 4, 4);
  assertOnBoundary(s, diagonal, 4, 4);
  assert.equal(loops(s), 1);
  // a ring: its outer and inner boundary
  const ring = rect(9, 9, 1, 1, 8, 8);
  for (const [x, y] of [[3, 3], [4, 3], [5, 3], [3, 4], [4, 4], [5, 4], [3, 5], [4, 5], [5, 5]]) ring[y * 9 + x] = 0;
  const r = o.segments(ring, 9, 9);
  assertOnBoundary(r, ring, 9, 9);
  assert.equal(loops(r), 2);
});

test("an unmarked map has no outline", () => {
  assert.equal(o.segments(new Uint8Array(12), 4, 3).length, 0);
  assert.equal(o.segments(new Uint8Array(0), 0, 0).length, 0);
});

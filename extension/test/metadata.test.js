"use strict";
// lib/device/metadata.js on hostile files: the regressions of what fuzzing found (fuzz.test.js, fuzz_run.js).
const test = require("node:test");
const assert = require("node:assert/strict");

const metadata = require("../lib/device/metadata.js");
const m = require("./fuzz_mutations.js");

const exifr = () => import("../node_modules/exifr/dist/full.esm.mjs");

/** A JPEG whose APP1 EXIF has one IFD0 entry: `type` values, `count` of them, at offset 26 of its block. */
function jpegWithEntry(type, count) {
  const tiff = m.concat(["MM\x00*", m.u32be(8), m.u16be(1), m.u16be(0x0110), m.u16be(type), m.u32be(count), m.u32be(26), m.u32be(0), new Uint8Array(64)]);
  return m.jpegJoin([[0xe1, m.concat(["Exif\x00\x00", tiff]), null], [0xda, new Uint8Array(10), null]], Uint8Array.from([0xff, 0xd9]));
}

test("a TIFF count that lies is refused before exifr makes its array", async () => {
  // 2^32 - 1 SHORTs in a 100-byte file: exifr made an 8 GiB Uint16Array before its first read failed.
  const lib = await exifr();
  const before = process.memoryUsage().arrayBuffers;
  const parsed = await metadata.parse(lib, jpegWithEntry(3, 0xffffffff));
  assert.ok(process.memoryUsage().arrayBuffers - before < 64 << 20, "no array for the lying count");
  assert.deepEqual(metadata.itemsFrom(parsed), []);
  // A count that fits is read as before
  const model = m.jpegJoin([[0xe1, m.concat(["Exif\x00\x00", m.exifBlock([[0x0110, "Canon EOS 70D"]])]), null], [0xda, new Uint8Array(10), null]], Uint8Array.from([0xff, 0xd9]));
  assert.equal(metadata.itemsFrom(await metadata.parse(lib, model))[0].summary, "Camera: Canon EOS 70D (not proof)");
});

test("generator parameters of the wrong types give a well-formed item, not a reader error", () => {
  // Fooocus's JSON with an object where a string belongs: String() of it threw (TypeError, an error item)
  const hostile = { toString: 1, valueOf: 1 };
  const [item] = metadata.itemsFrom({ ihdr: { parameters: JSON.stringify({ base_model: hostile, prompt: hostile, sampler: [1] }), fooocus_scheme: "fooocus" } });
  assert.equal(item.status, "ok");
  assert.deepEqual([item.summary, item.details.models, item.details.sampler, item.private.prompt], ["Generator parameters found: Fooocus", [], null, ""]);
  const many = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [i, { inputs: { ckpt_name: "m".repeat(1000) + i } }]));
  const [comfy] = metadata.itemsFrom({ ihdr: { prompt: JSON.stringify(many) } });
  assert.ok(comfy.details.models.length <= 32 && comfy.details.models.every((name) => name.length <= 200));
});

test("an XMP source type nested deep or written huge is read within bounds", () => {
  let deep = "trainedAlgorithmicMedia";
  for (let i = 0; i < 20000; i += 1) deep = { value: deep };
  // 20,000 levels overflowed the stack (RangeError, an error item); past 32 levels there is no value
  assert.deepEqual(metadata.itemsFrom({ Iptc4xmpExt: { DigitalSourceType: deep } }), []);
  const [nested] = metadata.itemsFrom({ Iptc4xmpExt: { DigitalSourceType: [{ value: [m.IPTC + "trainedAlgorithmicMedia"] }] } });
  assert.equal(nested.reason, "ai_generated");
  // a 1 MB value was copied whole into the item (the server keeps 2,000 characters, as here)
  const [huge] = metadata.itemsFrom({ Iptc4xmpExt: { DigitalSourceType: "x".repeat(1 << 20) } });
  assert.equal(huge.details.DigitalSourceType.length, 2000);
  assert.ok(huge.summary.length < 2100);
  const [odd] = metadata.itemsFrom({ Iptc4xmpExt: { DigitalSourceType: { toString: 1, valueOf: 1 } } });
  assert.deepEqual([odd.status, odd.summary], ["ok", "IPTC digital source type: 1 (unsigned)"]);
});

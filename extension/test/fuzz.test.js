"use strict";
// Fuzzing of the extension's parsers of untrusted bytes and strings (fuzz_targets.js): fast-check with a fixed
// seed and bounded runs, each input a seed (real files, crafted ones) under the target's structure-aware mutation
// (fuzz_mutations.js), run in the sandbox child (10 s per input, 1 GiB heap and RSS, 256 MiB of ArrayBuffers per
// input). The long run is fuzz_run.js (bench/fuzz.py --js).
const test = require("node:test");
const assert = require("node:assert/strict");
const fc = require("fast-check");

const { TARGETS } = require("./fuzz_targets.js");
const { Random } = require("./fuzz_mutations.js");
const { Sandbox } = require("./fuzz_sandbox.js");

const SEED = 20260102;
// Inputs per target: the whole file stays well under a minute on 2 cores.
const RUNS = { header: 2000, metadata: 1000, urls: 3000, result: 2000, retry_after: 1000, object_position: 1000 };
const TIMEOUT_MS = 10000; // per input: generous, so that a loaded machine is no hang

let box;
test.before(() => {
  box = new Sandbox({ timeoutMs: TIMEOUT_MS });
});
test.after(() => box.close());

/** [seed index, mutation seed]: the counterexample fast-check prints, which replays one input. */
const draws = (name) => fc.tuple(fc.nat({ max: TARGETS[name].seeds().length - 1 }), fc.nat({ max: 0xffffffff }));
const input = (name, [index, seed]) => TARGETS[name].mutate(TARGETS[name].seeds()[index], new Random(seed));

for (const name of Object.keys(TARGETS)) {
  test(`fuzz ${name}: every input gets a result or the module's clear error`, async () => {
    const labels = new Set();
    await fc.assert(
      fc.asyncProperty(draws(name), async (drawn) => {
        const outcome = await box.check(name, input(name, drawn));
        labels.add(outcome.label);
        assert.equal(outcome.finding, null, `${outcome.label}: ${outcome.finding}`);
      }),
      // No shrinking: a smaller mutation seed is another input, not a smaller one.
      { seed: SEED, numRuns: RUNS[name], endOnFailure: true },
    );
    assert.ok(labels.size >= 2, `the mutations reach more than one outcome of ${name}: ${[...labels]}`);
  });
}

test("the seeds are read cleanly, and the crafted files' metadata is found", async () => {
  for (const [name, target] of Object.entries(TARGETS)) {
    for (const seed of target.seeds()) {
      const outcome = await box.check(name, seed);
      assert.equal(outcome.finding, null, `${name}: ${outcome.finding}`);
    }
  }
  const labels = [];
  // The crafted PNGs and JPEG (exifr reads no WebP or GIF: the last two give no evidence on device)
  for (const seed of TARGETS.metadata.seeds().slice(-7)) labels.push((await box.check("metadata", seed)).label.split(" ")[1]);
  assert.deepEqual(labels, [
    "xmp=ai_generated,exif=camera_exif,exif=software,generator_parameters=ai_generated",
    "generator_parameters=ai_generated",
    "generator_parameters=ai_generated",
    "generator_parameters=ai_generated",
    "xmp=ai_generated,exif=camera_exif,exif=software",
    "none",
    "none",
  ]);
});

for (const [probe, label] of [["hang", "hang"], ["allocate", "memory"], ["abort", "crashed"]]) {
  test(`the sandbox reports a ${probe} as ${label} and goes on with a fresh child`, async () => {
    const probed = new Sandbox({ timeoutMs: 2000 });
    try {
      const outcome = await probed.check(probe, new Uint8Array(1));
      assert.equal(outcome.label, label);
      assert.ok(outcome.finding);
      assert.equal((await probed.check("header", TARGETS.header.seeds()[0])).label.slice(0, 3), "ok:");
    } finally {
      probed.close();
    }
  });
}

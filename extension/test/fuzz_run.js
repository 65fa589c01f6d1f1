"use strict";
/*
 * The long fuzz run of the extension's parsers (fuzz_targets.js), for bench/fuzz.py --js:
 *
 *   nice -n 19 node extension/test/fuzz_run.js --target header --seconds 60 --work /tmp/js-fuzz --out r.json
 *
 * Per target, for --seconds: an input from the corpus (the seeds, then every input that gave an outcome not seen
 * before: guidance by outcome, as Node has no coverage-guided fuzzer that runs here) under the target's
 * structure-aware mutation with a fresh mutation seed, run in the sandbox (fuzz_sandbox.js: 5 s per input,
 * 1 GiB, 256 MiB of ArrayBuffers per input). Writes, per target, the inputs tried, the distinct outcomes, the
 * findings, hangs and crashes (each input saved under --work), the slowest input and the peak RSS, as JSON.
 */
const fs = require("node:fs");
const path = require("node:path");
const crypto = require("node:crypto");

const { TARGETS } = require("./fuzz_targets.js");
const { Random } = require("./fuzz_mutations.js");
const { Sandbox, PROBES, TIMEOUT_MS, MEMORY_BYTES, ALLOCATION_BYTES } = require("./fuzz_sandbox.js");

const MAX_CORPUS = 2000;
const MAX_INPUT_BYTES = 8 << 20; // as bench/fuzz.py's MAX_LEN: huge PNG text chunks and XMP packets fit

function args(argv) {
  const out = { target: [], seconds: 20, work: null, out: null, seed: null, list: false };
  for (let i = 0; i < argv.length; i += 1) {
    const [key, value] = [argv[i], argv[i + 1]];
    if (key === "--list") out.list = true;
    else if (key === "--target") out.target.push(value), (i += 1);
    else if (key === "--seconds") out.seconds = Number(value), (i += 1);
    else if (key === "--work") out.work = value, (i += 1);
    else if (key === "--out") out.out = value, (i += 1);
    else if (key === "--seed") out.seed = Number(value), (i += 1);
    else throw new Error(`unknown argument ${key}; usage: fuzz_run.js [--list] [--target NAME]... [--seconds N] [--work DIR] [--out FILE] [--seed N]`);
  }
  return out;
}

async function runTarget(name, seconds, work, rnd) {
  const target = TARGETS[name] || { seeds: () => [new Uint8Array(1)], mutate: (data) => data };
  fs.mkdirSync(work, { recursive: true });
  const seeds = target.seeds();
  const corpus = seeds.slice();
  const outcomes = new Map();
  const findings = {};
  const hangs = [];
  const crashes = [];
  const save = (data) => {
    const file = path.join(work, crypto.createHash("sha1").update(data).digest("hex"));
    fs.writeFileSync(file, data);
    return file;
  };
  let slowest = { seconds: 0, label: null, bytes: 0 };
  let peakRssMb = 0;
  let inputs = 0;
  const box = new Sandbox();
  const started = Date.now();
  const deadline = started + seconds * 1000;
  try {
    while (Date.now() < deadline) {
      // The seeds first, as they are; then mutations of the corpus
      const data = inputs < seeds.length ? seeds[inputs] : target.mutate(rnd.choice(corpus), new Random(rnd.u32())).subarray(0, MAX_INPUT_BYTES);
      const outcome = await box.check(name, data);
      inputs += 1;
      peakRssMb = Math.max(peakRssMb, outcome.rssMb || 0);
      if (outcome.ms / 1000 > slowest.seconds) slowest = { seconds: Math.round(outcome.ms) / 1000, label: outcome.label, bytes: data.length };
      if (!outcomes.has(outcome.label) && corpus.length < MAX_CORPUS && inputs > seeds.length) corpus.push(data);
      outcomes.set(outcome.label, (outcomes.get(outcome.label) || 0) + 1);
      if (outcome.finding === null) continue;
      const entry = { label: outcome.label, input: save(data), bytes: data.length, trace: outcome.finding.slice(0, 3000) };
      if (outcome.label === "hang") hangs.push(entry);
      else if (outcome.label === "crashed") crashes.push(entry);
      else {
        // One entry per distinct failure (its first line), counted
        const key = outcome.finding.split("\n")[0].slice(0, 300);
        findings[key] = findings[key] || Object.assign(entry, { count: 0 });
        findings[key].count += 1;
      }
    }
  } finally {
    box.close();
  }
  const elapsed = (Date.now() - started) / 1000;
  return {
    seconds,
    inputs,
    seeds: seeds.length,
    children: box.started,
    corpus: corpus.length,
    distinct_outcomes: outcomes.size,
    outcomes: Object.fromEntries([...outcomes].sort((a, b) => b[1] - a[1])),
    slowest_input: slowest,
    peak_rss_mb: peakRssMb,
    findings,
    hangs,
    crashes,
    inputs_per_s: Math.round((inputs / elapsed) * 10) / 10,
  };
}

async function main() {
  const opts = args(process.argv.slice(2));
  if (opts.list) {
    process.stdout.write(JSON.stringify({ targets: Object.keys(TARGETS), probes: Object.keys(PROBES) }) + "\n");
    return;
  }
  const names = opts.target.length ? opts.target : Object.keys(TARGETS);
  const unknown = names.filter((n) => !TARGETS[n] && !PROBES[n]);
  if (unknown.length) throw new Error(`unknown target(s) ${unknown}; the targets are ${Object.keys(TARGETS)} (and the probes ${Object.keys(PROBES)})`);
  const work = opts.work || fs.mkdtempSync(path.join(require("node:os").tmpdir(), "gamma-js-fuzz-"));
  const rnd = new Random(opts.seed === null ? crypto.randomInt(2 ** 32) : opts.seed);
  const report = { node: process.version, fast_check: require("fast-check/package.json").version, limits: { timeout_s: TIMEOUT_MS / 1000, heap_and_rss_bytes: MEMORY_BYTES, array_buffers_per_input_bytes: ALLOCATION_BYTES }, work, targets: {} };
  for (const name of names) {
    const result = await runTarget(name, opts.seconds, path.join(work, name), rnd);
    report.targets[name] = result;
    process.stderr.write(`${name.padEnd(16)} ${String(result.inputs).padStart(8)} inputs ${String(result.inputs_per_s).padStart(8)}/s ${String(result.distinct_outcomes).padStart(4)} outcomes ${Object.keys(result.findings).length} findings ${result.hangs.length} hangs ${result.crashes.length} crashes; slowest ${result.slowest_input.seconds} s, peak RSS ${result.peak_rss_mb} MB\n`);
    for (const [key, found] of Object.entries(result.findings)) process.stderr.write(`    finding x${found.count}: ${key} (${found.input})\n`);
  }
  const json = JSON.stringify(report, null, 1) + "\n";
  if (opts.out) fs.writeFileSync(opts.out, json);
  else process.stdout.write(json);
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});

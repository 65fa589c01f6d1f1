"use strict";
// The extension against the generated contract (lib/contract.js from gamma_detect/contract.py):
// every name the contract gives has its presentation here, and nothing of it is copied by hand.
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const contract = require("../lib/contract.js");
const verdicts = require("../lib/verdicts.js");
const errors = require("../lib/errors.js");
const feedback = require("../lib/api/feedback.js");

const ROOT = path.join(__dirname, "..");
const sources = ["lib", "lib/api", "content", "popup", "options", "."]
  .flatMap((dir) => fs.readdirSync(path.join(ROOT, dir)).filter((f) => f.endsWith(".js")).map((f) => path.join(dir, f)))
  .filter((file) => file !== path.join("lib", "contract.js"))
  .map((file) => ({ file, text: fs.readFileSync(path.join(ROOT, file), "utf8") }));

const sorted = (list) => [...list].sort();

test("every verdict band of the contract has its words and colour, and only those", () => {
  assert.deepEqual(sorted(Object.keys(verdicts.VERDICTS)), sorted(contract.VERDICTS));
  for (const name of contract.VERDICTS) assert.notEqual(verdicts.describeVerdict(name), verdicts.UNKNOWN, name);
});

test("every error code of the contract has what the user reads; the extension's own codes are not the server's", () => {
  assert.deepEqual(sorted(errors.SERVER_CODES), sorted(Object.keys(contract.ERRORS)));
  for (const code of errors.OWN_CODES) assert.ok(!(code in contract.ERRORS), code + " is the server's");
  for (const code of Object.keys(errors.CODES)) assert.ok(errors.describeError(code).title, code);
});

test("every feedback label of the contract has its words; the echoed result keeps the contract's fields", () => {
  assert.deepEqual(sorted(Object.keys(verdicts.LABELS)), sorted(contract.FEEDBACK_LABELS));
  for (const field of feedback.NOT_ECHOED) assert.ok(contract.RESULT_FIELDS.includes(field), field);
});

test("every error code the extension names is one it can show", () => {
  const named = sources.flatMap(({ file, text }) =>
    [...text.matchAll(/(?<!typeof [\w.]*)(?:GammaError\(|code === |code !== |code = )"(\w+)"/g)].map((m) => [file, m[1]]),
  );
  assert.ok(named.length > 10);
  for (const [file, code] of named) assert.ok(Object.hasOwn(errors.CODES, code), file + ": " + code);
});

test("the job statuses and result fields the extension reads are the contract's", () => {
  const jobs = sources.find((s) => s.file === path.join("lib", "api", "jobs.js")).text;
  const statuses = [...jobs.matchAll(/status === "(\w+)"/g)].map((m) => m[1]);
  assert.ok(statuses.length >= 3);
  for (const status of statuses) assert.ok(contract.JOB_STATUSES.includes(status), status);
  const fields = sources.flatMap(({ file, text }) => [...text.matchAll(/\bresult\.(\w+)/g)].map((m) => [file, m[1]]));
  assert.ok(fields.length > 5);
  for (const [file, field] of fields) assert.ok(contract.RESULT_FIELDS.includes(field), file + ": result." + field);
});

test("no limit of the contract is written out by hand", () => {
  for (const [name, value] of Object.entries(contract.LIMITS)) {
    if (value < 10000) continue; // small numbers collide with statuses and sizes (api.test.js checks the note limit)
    const written = new RegExp("\\b" + value + "\\b|\\b" + value.toString(16) + "\\b");
    for (const { file, text } of sources) assert.ok(!written.test(text), file + " writes " + name + " = " + value);
  }
  for (const { file, text } of sources) assert.ok(!/\d+ \* 1024 \* 1024/.test(text), file + " writes a byte limit");
});

"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const t = require("../lib/tally.js");

test("counts per state and verdict group", () => {
  const entries = [
    { state: "done", result: { verdict: "ai" } },
    { state: "done", result: { verdict: "likely_ai" } },
    { state: "done", result: { verdict: "real" } },
    { state: "done", result: { verdict: "likely_real" } },
    { state: "done", result: { verdict: "uncertain" } },
    { state: "skipped" },
    { state: "skipped" },
    { state: "error" },
    { state: "queued" },
    { state: "checking" },
  ];
  assert.deepEqual(t.tally(entries), { checked: 5, ai: 2, real: 2, uncertain: 1, skipped: 2, errors: 1, pending: 2 });
  assert.deepEqual(t.tally([]), { checked: 0, ai: 0, real: 0, uncertain: 0, skipped: 0, errors: 0, pending: 0 });
});

test("the toolbar badge shows the AI count", () => {
  assert.equal(t.actionBadge({ ai: 0 }), "");
  assert.equal(t.actionBadge({ ai: 3 }), "3");
  assert.equal(t.actionBadge({ ai: 250 }), "99+");
  assert.equal(t.actionBadge(null), "");
});

"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const s = require("../lib/settings.js");

test("defaults: URL mode (privacy), uncertain badges on, no sites", () => {
  const { settings, errors } = s.normalizeSettings(undefined);
  assert.deepEqual(errors, {});
  assert.equal(settings.sendMode, "url");
  assert.equal(settings.sendPageUrl, false);
  assert.equal(settings.badgeUncertain, true);
  assert.deepEqual(settings.autoScanSites, []);
  assert.equal(settings.apiKey, "");
});

test("stored values are validated field by field; bad ones keep the default", () => {
  const { settings, errors } = s.normalizeSettings({
    serverUrl: "ftp://nope",
    apiKey: " abc def ",
    sendMode: "everything",
    autoScanSites: "good.com\nhttp://",
    badgeUncertain: 0,
  });
  assert.equal(settings.serverUrl, s.DEFAULTS.serverUrl);
  assert.ok(errors.serverUrl && errors.apiKey && errors.sendMode && errors.autoScanSites);
  assert.equal(settings.sendMode, "url");
  assert.deepEqual(settings.autoScanSites, ["good.com"]);
  assert.equal(settings.badgeUncertain, false);
  const ok = s.normalizeSettings({ serverUrl: "gamma.local:9000/", apiKey: "  k-123  ", sendMode: "bytes" });
  assert.deepEqual(ok.errors, {});
  assert.equal(ok.settings.serverUrl, "http://gamma.local:9000");
  assert.equal(ok.settings.apiKey, "k-123");
  assert.equal(ok.settings.sendMode, "bytes");
});

test("the cache scope changes with server, key and mode, and hides the key", () => {
  const base = s.normalizeSettings({}).settings;
  const scopes = new Set([
    s.cacheScope(base),
    s.cacheScope({ ...base, serverUrl: "http://other:1" }),
    s.cacheScope({ ...base, apiKey: "secret-1" }),
    s.cacheScope({ ...base, apiKey: "secret-2" }),
    s.cacheScope({ ...base, sendMode: "bytes" }),
  ]);
  assert.equal(scopes.size, 5);
  for (const scope of scopes) assert.ok(!scope.includes("secret"));
});

test("auto-scan and the popup's site toggle", () => {
  const settings = s.normalizeSettings({ autoScanSites: ["*.example.org"] }).settings;
  assert.ok(s.autoScanEnabled(settings, "https://www.example.org/x"));
  assert.ok(!s.autoScanEnabled(settings, "https://example.com/"));
  assert.deepEqual(s.toggleSite(["a.com"], "b.com", true), ["a.com", "b.com"]);
  assert.deepEqual(s.toggleSite(["a.com", "b.com"], "a.com", false), ["b.com"]);
  assert.deepEqual(s.toggleSite(["a.com"], "a.com", true), ["a.com"]);
  assert.deepEqual(s.toggleSite(undefined, "a.com", true), ["a.com"]);
});

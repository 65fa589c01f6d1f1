"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const u = require("../lib/urls.js");

test("imageKey resolves, drops the fragment and refuses unfetchable schemes", () => {
  assert.equal(u.imageKey("/a/b.jpg#x", "https://ex.com/page"), "https://ex.com/a/b.jpg");
  assert.equal(u.imageKey("https://ex.com/a.jpg?w=1#frag"), "https://ex.com/a.jpg?w=1");
  assert.equal(u.imageKey("HTTPS://EX.com/a.jpg"), "https://ex.com/a.jpg");
  assert.equal(u.imageKey("data:image/png;base64,AAAA"), "data:image/png;base64,AAAA");
  for (const bad of ["blob:https://ex.com/1234", "file:///etc/passwd", "chrome://favicon/x", "javascript:alert(1)", "", "   ", null, "::"]) {
    assert.equal(u.imageKey(bad), null, String(bad));
  }
});

test("the same image under two spellings deduplicates to one key", () => {
  const a = u.imageKey("img/cat.jpg", "https://ex.com/dir/page.html");
  const b = u.imageKey("https://ex.com/dir/img/cat.jpg#zoom");
  assert.equal(a, b);
});

test("server URLs are normalised and validated", () => {
  assert.equal(u.normalizeServerUrl("http://127.0.0.1:8000/"), "http://127.0.0.1:8000");
  assert.equal(u.normalizeServerUrl("  localhost:9000  "), "http://localhost:9000");
  assert.equal(u.normalizeServerUrl("https://gamma.example.org/api/?x=1#y"), "https://gamma.example.org/api");
  assert.throws(() => u.normalizeServerUrl(""), /empty/);
  assert.throws(() => u.normalizeServerUrl("ftp://x"), /http/);
  assert.throws(() => u.normalizeServerUrl("https://user:pw@host"), /API key/);
  assert.throws(() => u.normalizeServerUrl("http://"), TypeError);
  assert.throws(() => u.normalizeServerUrl("http://not%20a%20host"), /Not a valid/); // Node refuses it, Chromium parses it
  assert.equal(u.normalizeServerUrl("http://[::1]:8000/"), "http://[::1]:8000");
});

test("server paths keep a path prefix and never leave the server", () => {
  assert.equal(u.serverUrl("http://h:8000", "/v1/analyze"), "http://h:8000/v1/analyze");
  assert.equal(u.serverUrl("https://h/gamma", "/jobs/1?wait=5"), "https://h/gamma/jobs/1?wait=5");
  assert.equal(u.serverUrl("https://h/gamma", "/gamma/jobs/1"), "https://h/gamma/jobs/1");
  assert.equal(u.serverUrl("https://h/gamma", "jobs/1"), "https://h/gamma/jobs/1");
  assert.equal(u.serverUrl("https://h", "https://h/heat/1.png"), "https://h/heat/1.png");
  assert.throws(() => u.serverUrl("https://h", "https://evil.example/x"), /outside/);
});

test("site list parsing", () => {
  const { sites, invalid } = u.parseSiteList("news.example.com\n*.Example.org\nhttps://www.site.net/path?q\n# comment\n\nlocalhost:8080, news.example.com\nhttp://\nftp://x.org");
  assert.deepEqual(sites, ["news.example.com", "*.example.org", "www.site.net", "localhost:8080"]);
  assert.deepEqual(invalid, ["http://", "ftp://x.org"]);
  assert.deepEqual(u.parseSiteList(["a.com", "a.com"]).sites, ["a.com"]);
  // browsers' URL parsers accept these as hosts; the list does not
  assert.deepEqual(u.parseSiteList("not a site!\nhttp://not%20a%20site/\n[::1]:8080\nxn--bcher-kva.example").sites, ["[::1]:8080", "xn--bcher-kva.example"]);
  assert.ok(u.parseSiteList("bücher.example").sites[0].startsWith("xn--"));
});

test("site matching: exact hosts and wildcard subdomains", () => {
  const list = ["news.example.com", "*.example.org", "localhost:8080"];
  assert.ok(u.siteMatches("https://news.example.com/a", list));
  assert.ok(!u.siteMatches("https://other.example.com/a", list));
  assert.ok(u.siteMatches("https://example.org/", list));
  assert.ok(u.siteMatches("http://a.b.example.org/x", list));
  assert.ok(!u.siteMatches("http://badexample.org/", list));
  assert.ok(u.siteMatches("http://localhost:8080/", list));
  assert.ok(!u.siteMatches("http://localhost:9090/", list));
  assert.ok(!u.siteMatches("chrome://settings", list));
  assert.ok(!u.siteMatches("not a url", list));
  assert.equal(u.siteOf("https://News.Example.com:444/x"), "news.example.com:444");
  assert.equal(u.siteOf("chrome://newtab"), null);
});

test("a server path of another scheme or host is refused whatever its form (found by fuzzing)", () => {
  // Only "scheme://" was taken as absolute: "http:/evil" and "blob:..." resolved off the server, with the API key.
  for (const path of ["http:/evil.example/x", "http:evil.example/x", "//evil.example/x", "/\\evil.example/x", "blob:https://h/1", "javascript:alert(1)", "data:,x"]) {
    assert.throws(() => u.serverUrl("https://h", path), /outside/, path);
  }
  assert.equal(u.serverUrl("https://h/gamma", "/jobs/a b"), "https://h/gamma/jobs/a%20b");
});

test("a site keeps the port it is written with, and the popup offers only sites the list takes (found by fuzzing)", () => {
  // "example.com:80" was kept as "example.com", so https://example.com:80/ never matched what the popup added
  assert.deepEqual(u.parseSiteList("example.com:80, https://example.com:443/x, *.example.org:8443").sites, ["example.com:80", "example.com:443", "*.example.org:8443"]);
  assert.ok(u.siteMatches("https://example.com:80/", ["example.com:80"]));
  assert.ok(u.siteMatches("http://example.com/", ["example.com:80"]));
  assert.ok(u.siteMatches("https://example.com/", ["example.com:443"]));
  assert.ok(!u.siteMatches("https://example.com/", ["example.com:80"]));
  assert.ok(u.siteMatches("https://a.example.org:8443/", ["*.example.org:8443"]));
  const page = "https://example.com:80/a.jpg";
  assert.deepEqual(u.parseSiteList(u.siteOf(page)).sites, [u.siteOf(page)]);
  assert.ok(u.siteMatches(page, [u.siteOf(page)]));
  // hosts a browser opens but the list refuses: no "always scan this site" for them
  for (const host of ["-a-.example", "a..b", "example.com."]) assert.equal(u.siteOf(`https://${host}/`), null, host);
});

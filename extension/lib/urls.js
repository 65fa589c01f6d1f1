/*
 * URLs: the dedup/cache key of an image, the server address, the auto-scan site list.
 */
(function (root, factory) {
  const api = factory();
  if (typeof module === "object" && module.exports) module.exports = api;
  else (root.GammaDetect = root.GammaDetect || {}).urls = api;
})(typeof globalThis !== "undefined" ? globalThis : this, function () {
  "use strict";

  /**
   * Key used to deduplicate requests and cache results: the absolute URL without
   * its fragment (the fragment never reaches a server). Returns null for URLs the
   * extension cannot send or fetch (blob:, file:, chrome:, about:, javascript:...).
   */
  function imageKey(src, base) {
    if (typeof src !== "string" || !src.trim()) return null;
    let url;
    try {
      url = base ? new URL(src.trim(), base) : new URL(src.trim());
    } catch (_) {
      return null;
    }
    if (url.protocol === "data:") return url.href;
    if (url.protocol !== "http:" && url.protocol !== "https:") return null;
    url.hash = "";
    return url.href;
  }

  // host[:port] after URL parsing: DNS labels or a bracketed IPv6 address. Checked by hand
  // because browsers' URL parsers are lenient (Chromium turns "not a site" into a host).
  const HOST = /^(\[[0-9a-f:.]+\]|[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*)(:\d{1,5})?$/i;

  function validHost(host) {
    return HOST.test(host);
  }

  /** "http:", "https:", "data:", "blob:"... of a URL string, lower case; "" when unparsable. */
  function schemeOf(src) {
    try {
      return new URL(src).protocol;
    } catch (_) {
      return "";
    }
  }

  /**
   * Normalise what the user typed as the server address: trim, default to http://
   * for bare host:port, keep a path prefix, drop the trailing slash, query and hash.
   * Throws TypeError with a user-facing message when it is not an http(s) URL.
   */
  function normalizeServerUrl(input) {
    let text = String(input == null ? "" : input).trim();
    if (!text) throw new TypeError("The server URL is empty.");
    if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) text = "http://" + text;
    let url;
    try {
      url = new URL(text);
    } catch (_) {
      throw new TypeError("Not a valid URL: " + input);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new TypeError("The server URL must start with http:// or https://");
    }
    if (!validHost(url.host)) throw new TypeError("Not a valid server address: " + input);
    if (url.username || url.password) {
      throw new TypeError("Put the API key in its own field, not in the URL.");
    }
    url.hash = "";
    url.search = "";
    return url.href.replace(/\/+$/, "");
  }

  /**
   * Resolve a path the server returned ("/jobs/abc", "/v1/heatmaps/x.png") or an
   * API path against the configured server URL. Absolute-path references keep the
   * server's path prefix ("https://h/gamma" + "/jobs/1" -> "https://h/gamma/jobs/1")
   * unless the server already included that prefix.
   */
  function serverUrl(base, path) {
    const root = new URL(base.replace(/\/+$/, "") + "/");
    const prefix = root.pathname.replace(/\/+$/, "");
    const underPrefix = path.startsWith("/") && !path.startsWith("//") && !(prefix && (path === prefix || path.startsWith(prefix + "/")));
    const url = new URL(underPrefix ? prefix + path : path, root);
    // Whatever the server wrote ("http:/x", "//x", "/\\x", "blob:..."): requests carry the API key, so only to it.
    if (url.origin !== root.origin || url.protocol !== root.protocol) throw new TypeError("The server pointed outside itself: " + path);
    return url.href;
  }

  /**
   * Parse the auto-scan list (one site a line, commas also accepted). Accepts
   * "example.com", "*.example.com", "https://www.example.com/some/page", "host:8080".
   * Returns { sites: [normalised patterns, unique, in order], invalid: [lines] }.
   */
  function parseSiteList(text) {
    const sites = [];
    const invalid = [];
    const items = Array.isArray(text) ? text : String(text || "").split(/[\n,]+/);
    for (const raw of items) {
      const item = String(raw).trim();
      if (!item || item.startsWith("#")) continue;
      const pattern = sitePattern(item);
      if (pattern === null) invalid.push(item);
      else if (!sites.includes(pattern)) sites.push(pattern);
    }
    return { sites, invalid };
  }

  // The port a site is written with: URL parsing drops a scheme's default (":80" of "http://"), which a site
  // list must keep ("example.com:80" is the site on port 80 whatever the page's scheme).
  const PORT = /^[a-z][a-z0-9+.-]*:\/\/(?:[^/?#\\]*@)?(?:\[[^\]]*\]|[^:/?#\\@]*):(\d+)(?:[/?#\\]|$)/i;

  function sitePattern(item) {
    let text = item.toLowerCase();
    let wildcard = false;
    if (text.startsWith("*.")) {
      wildcard = true;
      text = text.slice(2);
    }
    if (!/^[a-z][a-z0-9+.-]*:\/\//.test(text)) text = "http://" + text;
    let host;
    try {
      const url = new URL(text);
      if (url.protocol !== "http:" && url.protocol !== "https:") return null;
      const port = PORT.exec(text);
      host = url.hostname + (port ? ":" + Number(port[1]) : "");
    } catch (_) {
      return null;
    }
    if (!host || !validHost(host)) return null;
    return (wildcard ? "*." : "") + host;
  }

  /**
   * Does the page at `pageUrl` match one of the patterns? "example.com" matches
   * only that host (on its scheme's default port); "*.example.com" matches it and
   * every subdomain; "example.com:8080" that port, whatever the scheme.
   */
  function siteMatches(pageUrl, patterns) {
    let url;
    try {
      url = new URL(pageUrl);
      if (url.protocol !== "http:" && url.protocol !== "https:") return false;
    } catch (_) {
      return false;
    }
    const host = url.hostname.toLowerCase();
    const port = url.port || (url.protocol === "https:" ? "443" : "80");
    for (const pattern of patterns || []) {
      const [, name, wanted] = /^(.*?)(?::(\d+))?$/.exec(pattern);
      if (wanted ? wanted !== port : url.port !== "") continue;
      if (name.startsWith("*.")) {
        const domain = name.slice(2);
        if (host === domain || host.endsWith("." + domain)) return true;
      } else if (host === name) {
        return true;
      }
    }
    return false;
  }

  /** The pattern the popup adds for "always scan this site": the page's host, null where no pattern can name it. */
  function siteOf(pageUrl) {
    try {
      const url = new URL(pageUrl);
      if (url.protocol !== "http:" && url.protocol !== "https:") return null;
      const host = url.host.toLowerCase();
      return validHost(host) ? host : null;
    } catch (_) {
      return null;
    }
  }

  return { imageKey, schemeOf, normalizeServerUrl, serverUrl, parseSiteList, siteMatches, siteOf };
});

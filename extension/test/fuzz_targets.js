"use strict";
/*
 * Fuzz targets for the extension's parsers of untrusted bytes and strings, their seeds and mutations: the JS
 * side of tests/fuzz_support.py. A target is `check(data) -> label` (a Uint8Array in, a label of the outcome out:
 * "ok:PNG", "HeaderError:image_too_large"...), run the way the extension runs the parser. The outcomes a parser
 * documents are labels; anything else throws, and the sandbox (fuzz_sandbox.js) reports it as a finding: an
 * exception other than the module's documented error, an error item that one of the project's own readers
 * raised on what exifr handed it (its guard hides it as `metadata_unreadable`), a result that breaks an
 * invariant (a cache key that is not its own key, a site the popup adds that the settings then refuse), a hang,
 * or an allocation past the limits.
 *
 * Used by fuzz.test.js (fast-check, bounded, in the suite) and fuzz_run.js (the long run, bench/fuzz.py --js).
 * A new target is one entry in TARGETS (a check, its seeds and its mutation).
 */
const fs = require("node:fs");
const path = require("node:path");
const vm = require("node:vm");
const zlib = require("node:zlib");

const m = require("./fuzz_mutations.js");
const header = require("../lib/device/header.js");
const metadata = require("../lib/device/metadata.js");
const urls = require("../lib/urls.js");
const evidence = require("../lib/evidence.js");
const outline = require("../lib/outline.js");
const backoff = require("../lib/backoff.js");
const geometry = require("../lib/geometry.js");
const contract = require("../lib/contract.js");

const REPO = path.resolve(__dirname, "..", "..");
const ASSETS = path.join(REPO, "tests", "assets");
const STARTER = path.join(REPO, "work", "starter", "images");
const MANIFEST = JSON.parse(fs.readFileSync(path.join(REPO, "models", "default", "manifest.json"), "utf8"));
// The limits the runtime probes with (offscreen/runtime.js): the contract's pixel limit, the model's short side.
const LIMITS = { maxPixels: contract.LIMITS.image_pixels, minSide: MANIFEST.crop_policy.min_side };
const STARTER_PER_FORMAT = 3;
const FORMATS = ["JPEG", "PNG", "WEBP", "GIF", "BMP"];
const HEADER_CODES = ["image_decode_failed", "unsupported_media_type", "image_too_large", "image_too_small"];
const METADATA_SOURCES = ["xmp", "exif", "generator_parameters"];
const STRENGTHS = ["proof", "strong", "weak"];
const REASONS = ["ai_generated", "ai_edited", "capture", "other", "software", "camera_exif"];
const EXIFR_BLOCKS = ["errors", "exif", "ifd0", "ifd1", "ihdr", "interop"];
const MAX_ITEM_JSON = 16 << 10; // an evidence item's size, whatever the file holds (the panel lists them whole)
const NOW_MS = Date.UTC(2026, 0, 2, 3, 4, 5);

/** An input that broke a parser's contract (thrown by a check, reported by the sandbox). */
class Finding extends Error {
  constructor(message) {
    super(message);
    this.name = "Finding";
  }
}

const text = (data) => Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("utf8");

// --------------------------------------------------------------------------- checks (one per parser)
/** header.js probe: a size within the limits, or a HeaderError with one of the server's codes. */
function checkHeader(data) {
  let info;
  try {
    info = header.probe(data, LIMITS);
  } catch (err) {
    if (!(err instanceof header.HeaderError) || !HEADER_CODES.includes(err.code) || !err.message) throw err;
    return `HeaderError:${err.code}`;
  }
  const { format, width, height } = info;
  if (!FORMATS.includes(format) || !Number.isInteger(width) || !Number.isInteger(height)) throw new Finding(`probe returned ${JSON.stringify(info)}`);
  if (width * height > LIMITS.maxPixels || Math.min(width, height) < LIMITS.minSide) throw new Finding(`probe let ${width}x${height} through the limits`);
  const sniffed = m.mimeType(data);
  if (format !== "BMP" && sniffed !== `image/${format.toLowerCase()}`) throw new Finding(`probe said ${format} of a file that is ${sniffed}`);
  return `ok:${format}`;
}

let realm = null;
/**
 * exifr as the offscreen page runs it: its build evaluated in a realm with a browser's globals only (no
 * process, require or Buffer), so it takes the browser's path (no zlib-inflated ICC profiles, no Buffer
 * decoding), with the input made in that realm as a Uint8Array of the page is.
 */
function browserExifr() {
  if (!realm) {
    const context = vm.createContext({ TextDecoder, setTimeout, clearTimeout, navigator: { userAgent: "Mozilla/5.0 (X11; Linux x86_64) Chrome/140" }, HTMLImageElement: class {} });
    vm.runInContext("globalThis.self = globalThis", context);
    vm.runInContext(fs.readFileSync(require.resolve("exifr/dist/full.umd.cjs"), "utf8"), context);
    realm = { exifr: context.exifr, Uint8Array: vm.runInContext("Uint8Array", context) };
  }
  return realm;
}

/** Whether a value is strict JSON of the contract's kinds, every string within `maxChars`. */
function plain(value, maxChars) {
  if (value === null || typeof value === "boolean") return true;
  if (typeof value === "number") return Number.isFinite(value);
  if (typeof value === "string") return value.length <= maxChars;
  if (Array.isArray(value)) return value.every((v) => plain(v, maxChars));
  if (typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) return Object.values(value).every((v) => plain(v, maxChars));
  return false;
}

function checkItems(items) {
  if (!Array.isArray(items)) throw new Finding(`itemsFrom returned ${typeof items}`);
  for (const item of items) {
    // exifr's output is data: a reader that throws on it is the project's fault, which the guard only hides
    if (item.status === "error") throw new Finding(`a reader failed on exifr's output: ${item.summary}`);
    if (!METADATA_SOURCES.includes(item.source) || item.status !== "ok" || item.error !== null || !STRENGTHS.includes(item.strength) || !REASONS.includes(item.reason)) {
      throw new Finding(`malformed evidence item ${JSON.stringify(item).slice(0, 500)}`);
    }
    if (typeof item.summary !== "string" || !item.summary || !plain(item, metadata.MAX_PROMPT_CHARS)) throw new Finding(`an evidence item that is not strict JSON of bounded strings: ${JSON.stringify(item).slice(0, 500)}`);
    if (JSON.stringify(item).length > MAX_ITEM_JSON) throw new Finding(`an evidence item of ${JSON.stringify(item).length} characters`);
  }
  return items.map((i) => `${i.source}=${i.reason}`).join(",") || "none";
}

/** metadata.js on exifr's parse, as offscreen/runtime.js reads a file (exifr's failure is no evidence). */
async function checkMetadata(data) {
  const { exifr, Uint8Array: PageBytes } = browserExifr();
  const parsed = await metadata.parse(exifr, new PageBytes(data));
  const items = metadata.itemsFrom(parsed);
  const label = checkItems(items);
  const combined = metadata.combine("real", "pixels", items);
  const acting = label.includes("=ai_");
  if (combined.verdict !== (acting ? "ai" : "real") || typeof combined.verdict_reason !== "string") throw new Finding(`combine gave ${JSON.stringify(combined)} for ${label}`);
  // exifr's blocks by name; every other key is an XMP namespace (its prefix is the file's)
  const blocks = parsed ? Array.from(new Set(Object.keys(parsed).map((k) => (EXIFR_BLOCKS.includes(k) ? k : "xmp")))).sort() : [];
  return `${parsed ? "read:" + blocks.join("+") : "unread"} ${label}`;
}

/**
 * urls.js: line 1 an image's src, 2 the page it is on, 3 what the user typed as the server address, 4 a path the
 * server returned, 5 the auto-scan site list (commas), 6 a page's URL ("always scan this site").
 */
function checkUrls(data) {
  const [src = "", base = "", typed = "", returned = "", sites = "", page = ""] = text(data).split("\n");
  const labels = [];
  const key = urls.imageKey(src, base || undefined);
  if (key !== null) {
    const scheme = urls.schemeOf(key);
    if (typeof key !== "string" || !["http:", "https:", "data:"].includes(scheme)) throw new Finding(`imageKey gave ${JSON.stringify(key)}`);
    if (scheme !== "data:" && key.includes("#")) throw new Finding(`the key ${key} keeps its fragment`);
    if (urls.imageKey(key) !== key) throw new Finding(`the key ${JSON.stringify(key)} is not its own key (${JSON.stringify(urls.imageKey(key))})`);
  }
  labels.push(key === null ? "key:none" : "key:" + urls.schemeOf(key));
  let server = null;
  try {
    server = urls.normalizeServerUrl(typed);
  } catch (err) {
    if (!(err instanceof TypeError) || !err.message) throw err;
    labels.push("server:refused");
  }
  if (server !== null) {
    const parsed = new URL(server);
    if (!/^https?:\/\//.test(server) || server.endsWith("/") || parsed.username || parsed.password || parsed.search || parsed.hash) throw new Finding(`normalizeServerUrl(${JSON.stringify(typed)}) = ${server}`);
    if (urls.normalizeServerUrl(server) !== server) throw new Finding(`the server URL ${server} normalizes to ${urls.normalizeServerUrl(server)}`);
    let url = null;
    try {
      url = new URL(urls.serverUrl(server, returned));
    } catch (err) {
      if (!(err instanceof TypeError)) throw err;
    }
    if (url && url.origin !== parsed.origin) throw new Finding(`serverUrl(${server}, ${JSON.stringify(returned)}) left the server: ${url}`);
    labels.push(url ? "server:ok path:ok" : "server:ok path:refused");
  }
  const list = urls.parseSiteList(sites);
  for (const site of list.sites) {
    const again = urls.parseSiteList(site);
    if (again.sites.length !== 1 || again.sites[0] !== site || again.invalid.length) throw new Finding(`the site ${JSON.stringify(site)} parses as ${JSON.stringify(again)}`);
    if (!urls.siteMatches(`https://${site.replace(/^\*\./, "")}/`, [site])) throw new Finding(`the site ${site} does not match its own host`);
  }
  labels.push(`sites:${Math.min(list.sites.length, 3)}/${Math.min(list.invalid.length, 3)}`);
  const own = urls.siteOf(page);
  if (own !== null) {
    // The popup adds it to the list, which the settings parse again
    if (!urls.siteMatches(page, [own]) || urls.parseSiteList(own).sites[0] !== own) throw new Finding(`siteOf(${JSON.stringify(page)}) = ${JSON.stringify(own)}, which the site list does not take back`);
  }
  labels.push(own === null ? "site:none" : "site:ok");
  return labels.join(" ");
}

/** evidence.js and outline.js on a result as a server (or the device) sends it: lines, badge, proof, region. */
function checkResult(data) {
  let result;
  try {
    result = JSON.parse(text(data));
  } catch (_) {
    return "not-json";
  }
  const lines = evidence.lines(result);
  for (const line of lines) {
    if (typeof line.text !== "string" || !line.text || typeof line.source !== "string" || !(line.strength === null || STRENGTHS.includes(line.strength)) || typeof line.failed !== "boolean") {
      throw new Finding(`a malformed panel line ${JSON.stringify(line).slice(0, 300)}`);
    }
  }
  const badge = evidence.badgeReason(result);
  const proof = evidence.hasProof(result);
  const reason = evidence.describeReason(result && result.verdict_reason);
  const region = outline.regionState(result);
  if (!(badge === null || typeof badge === "string") || typeof proof !== "boolean" || !(reason === null || typeof reason.text === "string")) {
    throw new Finding(`badge ${JSON.stringify(badge)}, proof ${proof}, reason ${JSON.stringify(reason)}`);
  }
  if (!["marked", "none", "unknown"].includes(region)) throw new Finding(`regionState gave ${region}`);
  return `lines:${Math.min(lines.length, 3)} badge:${badge} proof:${proof} region:${region}`;
}

/** backoff.js: a Retry-After header's wait, in ms (>= 0), or null. */
function checkRetryAfter(data) {
  const wait = backoff.parseRetryAfter(text(data), NOW_MS);
  if (wait === null) return "null";
  if (typeof wait !== "number" || Number.isNaN(wait) || wait < 0) throw new Finding(`parseRetryAfter gave ${wait}`);
  return Number.isFinite(wait) ? "wait" : "wait:infinite";
}

/** geometry.js: a page's object-fit and object-position (line 1 and 2) place the picture at finite coordinates. */
function checkObjectPosition(data) {
  const [position = "", fit = ""] = text(data).split("\n");
  const rect = geometry.fitRect(300, 200, 640, 480, fit, position);
  if (![rect.x, rect.y, rect.width, rect.height].every(Number.isFinite)) throw new Finding(`fitRect placed the picture at ${JSON.stringify(rect)}`);
  return rect.x === 0 && rect.y === 0 ? "origin" : "offset";
}

// --------------------------------------------------------------------------- seeds
const read = (file) => new Uint8Array(fs.readFileSync(file));

function files(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : [path.join(dir, e.name)])).sort();
}

/** A 96 x 64 RGB PNG with the given text chunks (and EXIF): what generators and editors write. */
function png(chunks) {
  const ihdr = m.concat([m.u32be(96), m.u32be(64), Uint8Array.from([8, 2, 0, 0, 0])]);
  const rows = Buffer.alloc(64 * (1 + 96 * 3));
  for (let i = 0; i < rows.length; i += 1) rows[i] = i % 289 === 0 ? 0 : (i * 7) & 0xff;
  return m.pngJoin([["IHDR", ihdr, null, null], ...chunks.map(([kind, body]) => [kind, body, null, null]), ["IDAT", new Uint8Array(zlib.deflateSync(rows)), null, null], ["IEND", new Uint8Array(0), null, null]], new Uint8Array(0));
}

const tEXt = (keyword, value) => ["tEXt", m.concat([keyword, "\x00", m.utf8(value)])];
const XMP = m.utf8(`<?xpacket begin="\ufeff"?><x:xmpmeta ${m.XMP_NS}><rdf:RDF><rdf:Description ${m.IPTC_NS} xmlns:xmp="http://ns.adobe.com/xap/1.0/" Iptc4xmpExt:DigitalSourceType="${m.IPTC}trainedAlgorithmicMedia" xmp:CreatorTool="Gen"/></rdf:RDF></x:xmpmeta><?xpacket end="w"?>`);
const EXIF = m.exifBlock([[0x010f, "Canon"], [0x0110, "Canon EOS 70D"], [0x0131, "Adobe Photoshop 25.0"]]);

/** A real photo with EXIF (APP1) and XMP (APP1) segments after its SOI. */
function jpegWithMetadata(photo) {
  const [segments, tail] = m.jpegSplit(photo);
  segments.unshift([0xe1, m.concat(["Exif\x00\x00", EXIF]), null], [0xe1, m.concat(["http://ns.adobe.com/xap/1.0/\x00", XMP]), null]);
  return m.jpegJoin(segments, tail);
}

/** A real WebP's frame in an extended file (VP8X) with EXIF and XMP chunks. */
function webpWithMetadata(webp) {
  const frames = [];
  for (let offset = 12; offset + 8 <= webp.length; ) {
    const kind = String.fromCharCode(...webp.subarray(offset, offset + 4));
    const length = Buffer.from(webp.buffer, webp.byteOffset).readUInt32LE(offset + 4);
    if (["VP8 ", "VP8L", "ALPH"].includes(kind)) frames.push([kind, webp.subarray(offset + 8, offset + 8 + length), null]);
    offset += 8 + length + (length & 1);
  }
  const { width, height } = header.probe(webp, { maxPixels: Infinity, minSide: 1 });
  const canvas = (n) => Uint8Array.from([(n - 1) & 0xff, ((n - 1) >> 8) & 0xff, ((n - 1) >> 16) & 0xff]);
  const vp8x = ["VP8X", m.concat([Uint8Array.from([0x0c, 0, 0, 0]), canvas(width), canvas(height)]), null];
  return m.riffJoin([vp8x, ...frames, ["EXIF", EXIF, null], ["XMP ", XMP, null]], new Uint8Array(0));
}

/** A GIF89a of a 96 x 64 screen with a 1 x 1 frame and an XMP application extension. */
const GIF = m.concat(["GIF89a", Uint8Array.from([96, 0, 64, 0, 0, 0, 0]), "\x21\xff\x0bXMP DataXMP", XMP, "\x01\x00", "\x2c\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x44\x01\x00\x3b"]);

let imageSeedsCache = null;
/** The real files in tests/assets, a few starter images (when work/starter has them), and crafted files that
 * carry every kind of metadata the readers look for in every container. */
function imageSeeds() {
  if (imageSeedsCache) return imageSeedsCache;
  const real = files(ASSETS).filter((f) => /\.(jpe?g|png|webp)$/i.test(f)).map(read);
  const starter = [".jpg", ".png", ".webp"].flatMap((ext) => files(STARTER).filter((f) => f.endsWith(ext)).slice(0, STARTER_PER_FORMAT)).map(read);
  const photo = read(path.join(ASSETS, "photos", "tree.jpg"));
  const crafted = [
    png([tEXt("parameters", "a photo of a tree\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Model: m"), ["iTXt", m.concat(["XML:com.adobe.xmp\x00\x00\x00\x00\x00", XMP])], ["eXIf", EXIF]]),
    png([tEXt("prompt", JSON.stringify({ 3: { inputs: { ckpt_name: "sd_xl_base_1.0.safetensors", sampler_name: "euler" } } })), tEXt("workflow", "{}")]),
    png([tEXt("invokeai_metadata", JSON.stringify({ model: { model_name: "sd-1.5" }, scheduler: "ddim", positive_prompt: "a tree" }))]),
    png([tEXt("Software", "NovelAI"), tEXt("Source", "Stable Diffusion XL C1E1DE52"), tEXt("Description", "a tree")]),
    jpegWithMetadata(photo),
    webpWithMetadata(read(path.join(ASSETS, "ai", "flux1.webp"))),
    GIF,
  ];
  imageSeedsCache = real.concat(starter, crafted);
  return imageSeedsCache;
}

const URL_SEEDS = [
  "https://example.com/images/photo.jpg?w=640#frag\nhttps://example.com/page\nlocalhost:8000\n/jobs/abc\nexample.com, *.news.example\nhttps://www.example.com/a",
  "../img/a.png\nhttps://site.test/dir/page.html\nhttps://gamma.example/api/\n/api/v1/heatmaps/x.png\nhost:8080\nhttp://[::1]:8080/",
  "data:image/png;base64,iVBORw0KGgo=\n\nhttp://127.0.0.1:8000\nhttps://gamma.example/jobs/1\n# comment, https://www.example.org/page\nhttp://b\u00fccher.example/",
  "//cdn.example.net/a.gif\nhttps://site.test/\nhttp://user:pw@host\njobs/2\n*.example.com\nfile:///etc/passwd",
].map(m.utf8);

const URL_PIECES = {
  scheme: ["https://", "http://", "HTTP://", "ftp://", "file://", "http:/", "//", "", "javascript:", "data:", "blob:https://", "chrome-extension://"],
  userinfo: ["", "", "", "user:pw@", "@", "a@b@", "%40@"],
  host: ["example.com", "127.0.0.1", "0x7f.1", "2130706433", "[::1]", "[::ffff:127.0.0.1]", "[fe80::1%25eth0]", "localhost", "EXAMPLE.com.", "xn--bcher-kva.example", "b\u00fccher.example", "\u4f8b\u3048.jp", "a".repeat(64) + ".com", "a..b", "ex ample.com", "ex\u0000ample.com", "exa\u200bmple.com", "[::1", "evil.com\\@x", "1.1.1.1.", "\uff45xample.com", "%65xample.com", "*.example.com", "-a-.example", "_dmarc.example", "", "constructor", "__proto__"],
  port: ["", "", ":80", ":0", ":65535", ":65536", ":-1", ":abc", ":\uff18\uff10", ":"],
  path: ["/a.jpg", "", "/a b.jpg", "/bild-\u00e4.png", "/a\u0001b", "/%zz", "/../../etc/passwd", "/a.jpg?q=\u00fc", "/a\tb\r", "/a#frag", "?only=query", "/\u007f", "/" + "a".repeat(5000), "/.", "//", "/a/"],
};

function hostileUrl(rnd) {
  return ["scheme", "userinfo", "host", "port", "path"].map((part) => (rnd.random() < 0.5 ? URL_PIECES[part][0] : rnd.choice(URL_PIECES[part]))).join("");
}

/** Each line of the URL input replaced by a URL built from the pieces hostile URLs are made of, or byte edits. */
function mutateUrls(data, rnd) {
  if (rnd.random() < 0.3) return m.byteEdit(data, rnd);
  const lines = text(data).split("\n");
  while (lines.length < 6) lines.push("");
  for (let n = rnd.range(1, 4); n > 0; n -= 1) {
    const i = rnd.int(6);
    lines[i] = i === 4 ? Array.from({ length: rnd.range(1, 4) }, () => hostileUrl(rnd)).join(rnd.choice([",", ", ", ",,"])) : i === 3 ? rnd.choice([hostileUrl(rnd), "/jobs/1", "jobs/1", "/api/x", "//other.example/x", "http://[::1"]) : hostileUrl(rnd);
  }
  return m.utf8(lines.join("\n"));
}

const HOSTILE_STRINGS = ["", " ", "x".repeat(100000), "\u202e\u0000\ud7ff", "c2pa:ai_generated", "xmp:ai_edited", "capture_claim", "hasOwnProperty", "__proto__", "constructor:x", "toString", "proof", "strong", "ok", "pixels", ...m.PROTOTYPE_NAMES];

/** Results as the server sends them (C2PA proof, metadata, a region, a failed reader) and as the device does. */
function resultSeeds() {
  const item = (source, strength, reason, summary, status = "ok") => ({ source, status, strength, reason, summary, details: {}, private: {}, error: status === "ok" ? null : "metadata_unreadable" });
  return [
    { verdict: "ai", verdict_reason: "c2pa:ai_generated", probability: 0.97, evidence: [item("c2pa", "proof", "ai_generated", "Content Credentials: made with Gen, signed by Acme"), item("exif", "weak", "camera_exif", "Camera: Canon EOS 70D (not proof)")], ai_content: { extent: "region", region: { box: [0.1, 0.2, 0.5, 0.6], share: 0.12 } } },
    { verdict: "real", verdict_reason: "capture_claim", evidence: [item("c2pa", "strong", "capture", "Content Credentials: captured by a camera"), item("watermark", null, null, "watermark could not be read", "error")], ai_content: { extent: "none", region: null } },
    { verdict: "ai", verdict_reason: "xmp:ai_generated", evidence: [item("xmp", "strong", "ai_generated", "IPTC digital source type: trainedAlgorithmicMedia (unsigned)"), item("generator_parameters", "strong", "ai_generated", "Generator parameters found: AUTOMATIC1111, model m")], model: { on_device: { threads: 2, not_checked: ["c2pa", "watermark"] } } },
    { verdict: "uncertain", verdict_reason: "pixels", evidence: [] },
  ].map((r) => m.utf8(JSON.stringify(r)));
}

const RETRY_AFTER_SEEDS = ["120", "0", "1.5", "Fri, 02 Jan 2026 03:05:05 GMT", "Wed, 21 Oct 2015 07:28:00 GMT", "-3", ""].map(m.utf8);
const RETRY_AFTER_PIECES = ["9".repeat(400), "1e400", "1.", ".5", " 12 ", "12abc", "Fri, 31 Feb 2026 25:61:61 GMT", "Infinity", "NaN", "0x10", "\u0661\u0662", "Mon, 01 Jan 275760 00:00:00 GMT", "Tue, 01 Jan -271821 00:00:00 GMT", "a".repeat(10000)];

function mutateRetryAfter(data, rnd) {
  if (rnd.random() < 0.4) return m.byteEdit(data, rnd);
  const piece = rnd.choice(RETRY_AFTER_PIECES);
  return m.utf8(rnd.random() < 0.5 ? piece : text(data) + rnd.choice(["", " ", ","]) + piece);
}

const POSITION_SEEDS = ["50% 50%\nfill", "left top\ncover", "right 20%\ncontain", "10px 0px\nnone", "bottom\nscale-down", "\n"].map(m.utf8);
const POSITION_TOKENS = ["left", "right", "top", "bottom", "center", "50%", "-10px", "1e400px", ".5%", "100000000%", "calc(50% + 1px)", "", "  ", "constructor", "toString", "__proto__", "hasOwnProperty", "valueOf", "NaN", "Infinity%", "1.2.3px"];

function mutatePosition(data, rnd) {
  if (rnd.random() < 0.3) return m.byteEdit(data, rnd);
  const tokens = Array.from({ length: rnd.range(0, 4) }, () => rnd.choice(POSITION_TOKENS)).join(" ");
  return m.utf8(tokens + "\n" + rnd.choice(["fill", "contain", "cover", "none", "scale-down", "constructor", ""]));
}

/** { check, seeds, mutate }: a target of the suite's and the long run's. */
const TARGETS = {
  header: { check: checkHeader, seeds: imageSeeds, mutate: (data, rnd) => m.mutate(data, rnd, imageSeeds()) },
  metadata: { check: checkMetadata, seeds: imageSeeds, mutate: (data, rnd) => m.mutate(data, rnd, imageSeeds()) },
  urls: { check: checkUrls, seeds: () => URL_SEEDS, mutate: mutateUrls },
  result: { check: checkResult, seeds: resultSeeds, mutate: (data, rnd) => m.mutateJson(data, rnd, HOSTILE_STRINGS) },
  retry_after: { check: checkRetryAfter, seeds: () => RETRY_AFTER_SEEDS, mutate: mutateRetryAfter },
  object_position: { check: checkObjectPosition, seeds: () => POSITION_SEEDS, mutate: mutatePosition },
};

module.exports = { TARGETS };

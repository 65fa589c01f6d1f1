"use strict";
/*
 * Structure-aware mutations of image files and of the strings the extension parses, for its fuzz targets
 * (fuzz_targets.js): the same edits as the server's tests/fuzz_mutations.py. `mutate(data, rnd)` parses a file
 * into its container's units (PNG chunks, JPEG segments, RIFF chunks of a WebP, GIF blocks), applies one to
 * three edits a hostile file carries (a unit deleted, duplicated or moved, a lying length field, a wrong CRC,
 * huge or many PNG text chunks, an EXIF block with lying offsets, nested or huge XMP, generator parameters of
 * the wrong types, a huge canvas) and writes the file back; byte edits (flips, cuts, splices) mix in.
 * `rnd` is a `Random`: fast-check draws its seed (fuzz.test.js), the long run (fuzz_run.js) a fresh one.
 * Large payloads are patterns or seeded noise, so that a seed alone replays an input.
 */
const zlib = require("node:zlib");

/** A seeded generator (mulberry32): the only source of randomness of every mutation. */
class Random {
  constructor(seed) {
    this.state = seed >>> 0;
  }

  u32() {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  random() {
    return this.u32() / 2 ** 32;
  }

  /** An integer in [0, n). */
  int(n) {
    return Math.floor(this.random() * n);
  }

  /** An integer in [low, high). */
  range(low, high) {
    return low + this.int(high - low);
  }

  choice(items) {
    return items[this.int(items.length)];
  }

  bytes(n) {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      const word = this.u32();
      for (let k = 0; k < 4 && i + k < n; k += 1) out[i + k] = (word >>> (8 * k)) & 0xff;
    }
    return out;
  }
}

const HUGE_LENGTHS = [0x7fffffff, 0x80000000, 0xffffffff, 0xffff, 0x10000];
const PNG_SIGNATURE = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/";
const XMP_NS = 'xmlns:x="adobe:ns:meta/" xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"';
const IPTC_NS = 'xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"';
// Names a reader might look up on a plain object: a tag, key or field of that name must stay data.
const PROTOTYPE_NAMES = ["toString", "valueOf", "__proto__", "constructor", "hasOwnProperty", "then"];

const bytes = (text) => Buffer.from(text, "latin1");
const utf8 = (text) => Buffer.from(text, "utf8");
const concat = (parts) => new Uint8Array(Buffer.concat(parts.map((p) => (typeof p === "string" ? bytes(p) : p))));
const u32be = (n) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
const u32le = (n) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
};
const u16be = (n) => Uint8Array.from([(n >>> 8) & 0xff, n & 0xff]);
const u16le = (n) => Uint8Array.from([n & 0xff, (n >>> 8) & 0xff]);
const startsWith = (data, prefix) => prefix.every((b, i) => data[i] === b);
const text4 = (data, at) => String.fromCharCode(...data.subarray(at, at + 4));

/** The container, as the server's evidence reader sniffs it. */
function mimeType(data) {
  if (startsWith(data, PNG_SIGNATURE)) return "image/png";
  if (data[0] === 0xff && data[1] === 0xd8 && data[2] === 0xff) return "image/jpeg";
  if (text4(data, 0) === "RIFF" && text4(data, 8) === "WEBP") return "image/webp";
  if (text4(data, 0) === "GIF8") return "image/gif";
  return null;
}

const deflated = new Map();
/** `size` zero bytes, deflated: a few KB that inflate to megabytes (a decompression bomb). */
function zerosDeflated(size) {
  if (!deflated.has(size)) deflated.set(size, new Uint8Array(zlib.deflateSync(Buffer.alloc(size), { level: 9 })));
  return deflated.get(size);
}

/** `size` bytes: a pattern or seeded noise. */
function filler(rnd, size) {
  const kind = rnd.int(3);
  if (kind === 0) return new Uint8Array(size);
  if (kind === 1) return new Uint8Array(Buffer.alloc(size, "AAAAAAA\xff", "latin1"));
  return new Random(rnd.u32()).bytes(size);
}

/** A payload size from tiny to past every cap (4 MiB text chunk, 1 MiB XMP, 64 KiB JPEG segment). */
const size = (rnd) => rnd.choice([0, 1, 17, 255, 4096, 65533, 70000, 1 << 20, (1 << 20) + 1, (4 << 20) + 1]);

// --------------------------------------------------------------------------- payloads hostile files carry
/** An XMP packet: well formed, deeply nested, huge, entity-laden, in UTF-16, cut short, or with hostile names. */
function xmpPacket(rnd) {
  const value = rnd.choice([IPTC + "trainedAlgorithmicMedia", "digitalCapture", "", "\xff\xfe", "&amp;x", IPTC + "compositeWithTrainedAlgorithmicMedia/"]);
  let body = `<rdf:Description Iptc4xmpExt:DigitalSourceType="${value}" ${IPTC_NS} xmp:CreatorTool="T" xmlns:xmp="http://ns.adobe.com/xap/1.0/"/>`;
  const kind = rnd.int(8);
  if (kind === 1) {
    // nested: deep structure under an Iptc4xmpExt element (or under the tool, as rdf:Bag/Seq nest)
    const depth = rnd.choice([10, 1000, 50000]);
    const [open, close] = rnd.choice([["<a>", "</a>"], ["<rdf:Bag><rdf:li>", "</rdf:li></rdf:Bag>"], ["<rdf:Seq><rdf:li>", "</rdf:li></rdf:Seq>"]]);
    const tag = rnd.choice(["Iptc4xmpExt:DigitalSourceType", "xmp:CreatorTool"]);
    body = `<rdf:Description ${IPTC_NS} xmlns:xmp="http://ns.adobe.com/xap/1.0/"><${tag}>${open.repeat(depth)}${value}${close.repeat(depth)}</${tag}></rdf:Description>`;
  } else if (kind === 2) {
    // huge: many attributes or one long value
    const count = rnd.choice([100, 10000, 60000]);
    body = `<rdf:Description ${IPTC_NS} ` + Array.from({ length: count }, (_, i) => `Iptc4xmpExt:F${i}="v"`).join(" ") + "/>";
  } else if (kind === 3) {
    // entity expansion (the reader is no validating parser: it must not expand them either)
    const entities = Array.from({ length: 8 }, (_, i) => `<!ENTITY ${String.fromCharCode(98 + i)} "${`&${String.fromCharCode(97 + i)};`.repeat(10)}">`).join("");
    return bytes(`<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">${entities}]><x:xmpmeta ${XMP_NS}>&i;</x:xmpmeta>`);
  } else if (kind === 4) {
    return filler(rnd, size(rnd));
  } else if (kind === 5) {
    // names a reader looks up on plain objects, as elements, attributes and namespace prefixes
    const name = rnd.choice(PROTOTYPE_NAMES);
    body = rnd.choice([
      `<rdf:Description ${IPTC_NS}><Iptc4xmpExt:DigitalSourceType><rdf:Description Iptc4xmpExt:${name}="x"/></Iptc4xmpExt:DigitalSourceType></rdf:Description>`,
      `<rdf:Description xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:${name}="x"><xmp:CreatorTool><rdf:Alt><rdf:li xml:lang="${name}">T</rdf:li></rdf:Alt></xmp:CreatorTool></rdf:Description>`,
      `<rdf:Description xmlns:${name}="http://ns.example/" ${name}:${name}="x" ${IPTC_NS} Iptc4xmpExt:DigitalSourceType="${value}"/>`,
      `<rdf:Description ${IPTC_NS}><Iptc4xmpExt:DigitalSourceType><rdf:Bag><rdf:li rdf:parseType="Resource"><Iptc4xmpExt:${name}>1</Iptc4xmpExt:${name}></rdf:li></rdf:Bag></Iptc4xmpExt:DigitalSourceType></rdf:Description>`,
    ]);
  }
  const packet = utf8(`<?xpacket begin="\ufeff"?><x:xmpmeta ${XMP_NS}><rdf:RDF>${body}</rdf:RDF></x:xmpmeta><?xpacket end="w"?>`);
  if (kind === 6) return packet.subarray(0, rnd.int(packet.length + 1));
  return kind === 7 && rnd.random() < 0.5 ? new Uint8Array(Buffer.from("\ufeff" + packet.toString("utf8"), "utf16le")) : packet;
}

/** A TIFF/EXIF block whose offsets lie: past the end, into itself (a loop), counts that overflow. */
function tiffBlock(rnd) {
  const little = rnd.random() < 0.5;
  const u16 = little ? u16le : u16be;
  const u32 = little ? u32le : u32be;
  const entries = [];
  for (let n = rnd.range(1, 6); n > 0; n -= 1) {
    const tag = rnd.choice([0x010f, 0x0110, 0x0131, 0x0112, 0x8769, 0x8825, 0x9286, 0xa005, 0x02bc, rnd.int(65536)]);
    const type = rnd.choice([1, 2, 3, 4, 5, 7, 10, 12, 13, rnd.int(256)]);
    const count = rnd.choice([0, 1, 4, 200, 0xffff, 0x7fffffff, 0xffffffff]);
    const value = rnd.choice([8, 0, 0xfffffff0, 26, rnd.u32()]); // 8: the IFD itself
    entries.push(u16(tag), u16(type), u32(count), u32(value));
  }
  return concat([little ? "II*\x00" : "MM\x00*", u32(8), u16(rnd.choice([entries.length / 4, 0xffff])), ...entries, u32(rnd.choice([0, 8, 0xffffffff])), filler(rnd, rnd.choice([0, 16, 300]))]);
}

/** A well-formed IFD0 of ASCII tags (Make, Model, Software...): the EXIF a camera or an editor writes. */
function exifBlock(tags) {
  const entries = [];
  const values = [];
  let offset = 8 + 2 + 12 * tags.length + 4;
  for (const [tag, value] of tags) {
    const data = Buffer.concat([utf8(value), Buffer.alloc(1)]);
    entries.push(u16be(tag), u16be(2), u32be(data.length), data.length <= 4 ? Buffer.concat([data, Buffer.alloc(4 - data.length)]) : u32be(offset));
    if (data.length > 4) {
      values.push(data);
      offset += data.length;
    }
  }
  return concat(["MM\x00*", u32be(8), u16be(tags.length), ...entries, u32be(0), ...values]);
}

/** Generator parameters as each generator writes them, or with fields of the wrong type, huge or hostile. */
function generatorText(rnd, keyword) {
  const hostile = () => rnd.choice([{ toString: 1 }, { toString: 1, valueOf: 1 }, [], [1, [2]], null, 7, true, "x".repeat(rnd.choice([10, 5000]))]);
  const field = (good) => (rnd.random() < 0.5 ? good : hostile());
  const long = (unit) => unit.repeat(rnd.choice([1, 100, 20000]));
  if (keyword === "parameters" && rnd.random() < 0.5) {
    return JSON.stringify({ prompt: field("a tree"), base_model: field("juggernautXL"), sampler: field("dpmpp_2m"), [rnd.choice(PROTOTYPE_NAMES)]: field("x") });
  }
  if (keyword === "parameters") {
    return rnd.choice([
      `a tree\nNegative prompt: ${long("blurry ")}\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Model: m, Version: f1`,
      "p\nSteps: " + long("a"),
      "p\nSteps: " + long(" ") + "x",
      "p\nSteps: " + long('"a\\') + ", Model: " + long("m: "),
      long("Steps: 1\n"),
      "Steps: 20, " + long("Key: v, ") + "Model: " + long("x"),
      "Steps: 20, Model: \"" + long("\\\"") + "\"",
    ]);
  }
  if (keyword === "prompt") return JSON.stringify({ 1: { inputs: { ckpt_name: field("sd_xl.safetensors"), sampler_name: field("euler") } }, 2: field({ inputs: null }) });
  if (keyword === "invokeai_metadata") return JSON.stringify({ model: field({ model_name: field("sd-1.5") }), scheduler: field("ddim"), positive_prompt: field("a tree") });
  if (keyword === "sd-metadata") return JSON.stringify({ model_weights: field("stable-diffusion-1.5") });
  return rnd.choice(["NovelAI", "Stable Diffusion XL C1E1DE52", long("a prompt "), ""]);
}

const TEXT_KEYWORDS = ["parameters", "prompt", "workflow", "invokeai_metadata", "sd-metadata", "Dream", "Software", "Source", "Description", "fooocus_scheme", "Comment", "XML:com.adobe.xmp", "", "k".repeat(90), ...PROTOTYPE_NAMES];

/** A PNG text chunk (tEXt, zTXt or iTXt) of a generator's or an editor's keyword, or of a hostile one. */
function textChunk(rnd) {
  const keyword = rnd.choice(TEXT_KEYWORDS);
  const payload = keyword.startsWith("XML") ? xmpPacket(rnd) : rnd.random() < 0.6 ? utf8(generatorText(rnd, keyword)) : filler(rnd, size(rnd));
  const kind = rnd.choice(["tEXt", "zTXt", "iTXt"]);
  if (kind === "tEXt") return [kind, concat([keyword, "\x00", payload])];
  if (kind === "zTXt") {
    // a small chunk that inflates past every budget, or a broken stream
    const inflated = rnd.random() < 0.3 ? zerosDeflated(rnd.choice([1 << 20, 64 << 20])) : new Uint8Array(zlib.deflateSync(payload));
    return [kind, concat([keyword, "\x00", rnd.choice(["\x00", "\x07"]), inflated.subarray(0, rnd.choice([inflated.length, 10]))])];
  }
  const compressed = rnd.random() < 0.5;
  return [kind, concat([keyword, "\x00", Uint8Array.from([compressed ? 1 : 0, rnd.choice([0, 5])]), "en\x00\x00", compressed ? new Uint8Array(zlib.deflateSync(payload)) : payload])];
}

// --------------------------------------------------------------------------- PNG
function pngSplit(data) {
  const chunks = [];
  let offset = PNG_SIGNATURE.length;
  const view = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  while (offset + 12 <= data.length) {
    const length = view.readUInt32BE(offset);
    if (offset + 12 + length > data.length) break;
    chunks.push([text4(data, offset + 4), data.subarray(offset + 8, offset + 8 + length), null, null]); // type, data, forced length, forced CRC
    offset += 12 + length;
  }
  return [chunks, data.subarray(offset)];
}

function pngJoin(chunks, tail) {
  const out = [PNG_SIGNATURE];
  for (const [kind, body, length, crc] of chunks) {
    const typed = concat([kind, body]);
    out.push(u32be(length === null ? body.length : length), typed, u32be(crc === null ? zlib.crc32(typed) : crc));
  }
  return concat([...out, tail]);
}

function pngEdit(chunks, rnd) {
  const i = rnd.int(chunks.length);
  const op = rnd.int(9);
  if (op === 0) {
    chunks.splice(rnd.int(chunks.length + 1), 0, [...textChunk(rnd), null, null]);
  } else if (op === 1) {
    // many text chunks
    const many = Array.from({ length: rnd.choice([65, 2000]) }, (_, n) => ["tEXt", bytes(`k${n}\x00v`), null, null]);
    chunks.splice(1, 0, ...many);
  } else if (op === 2) {
    chunks[i][3] = rnd.u32(); // wrong CRC
  } else if (op === 3) {
    chunks[i][2] = rnd.choice([...HUGE_LENGTHS, chunks[i][1].length + rnd.range(1, 9)]); // lying length
  } else if (op === 4) {
    // IHDR dimensions, depth, colour type
    if (chunks[0][0] === "IHDR" && chunks[0][1].length === 13) {
      const side = () => rnd.choice([0, 1, 65535, 1 << 24, 0x7fffffff, 30000, rnd.u32()]);
      chunks[0][1] = concat([u32be(side()), u32be(side()), Uint8Array.from([rnd.choice([1, 2, 4, 8, 16, 3]), rnd.choice([0, 2, 3, 4, 6, 7])]), chunks[0][1].subarray(10)]);
    }
  } else if (op === 5) {
    const kind = rnd.choice(["eXIf", "iCCP", "acTL", "fcTL", "tRNS", "PLTE", "IDAT", "pHYs", "caBX", "IHDR"]);
    const body = rnd.choice([tiffBlock(rnd), concat(["p\x00\x00", zerosDeflated(8 << 20)]), filler(rnd, rnd.choice([0, 8, 26])), concat(["c2pa", filler(rnd, 40)])]);
    chunks.splice(rnd.int(chunks.length + 1), 0, [kind, body, null, null]);
  } else {
    unitEdit(chunks, i, op - 6, rnd);
  }
}

// --------------------------------------------------------------------------- JPEG
/** Segments up to and including SOS (each [marker, payload, forced length]); the entropy data and EOI after. */
function jpegSplit(data) {
  const segments = [];
  let offset = 2;
  while (offset + 4 <= data.length && data[offset] === 0xff) {
    const marker = data[offset + 1];
    const length = (data[offset + 2] << 8) | data[offset + 3];
    if (length < 2 || offset + 2 + length > data.length) break;
    segments.push([marker, data.subarray(offset + 4, offset + 2 + length), null]);
    offset += 2 + length;
    if (marker === 0xda) break;
  }
  return [segments, data.subarray(offset)];
}

function jpegJoin(segments, tail) {
  const out = [Uint8Array.from([0xff, 0xd8])];
  for (const [marker, body, length] of segments) out.push(Uint8Array.from([0xff, marker]), u16be((length === null ? body.length + 2 : length) & 0xffff), body);
  return concat([...out, tail]);
}

function jpegEdit(segments, rnd) {
  const i = rnd.int(segments.length);
  const op = rnd.int(8);
  const where = rnd.int(segments.length); // before SOS keeps the scan last
  if (op === 0) {
    // APP1 EXIF with lying offsets, or a well-formed one naming a camera or an editor
    const block = rnd.random() < 0.7 ? tiffBlock(rnd) : exifBlock([[0x010f, rnd.choice(["Canon", "", "x".repeat(300)])], [0x0110, "Canon EOS 70D"], [0x0131, rnd.choice(["Adobe Photoshop", "NovelAI", "\x00\x00"])]]);
    segments.splice(where, 0, [0xe1, concat(["Exif\x00\x00", block]), null]);
  } else if (op === 1) {
    // APP1 XMP (a segment holds at most 65533 bytes: a bigger packet is cut, its length wraps), or extended XMP
    const header = rnd.random() < 0.8 ? "http://ns.adobe.com/xap/1.0/\x00" : concat(["http://ns.adobe.com/xmp/extension/\x00", "0".repeat(32), u32be(rnd.choice([10, 0xffffffff])), u32be(rnd.choice([0, 5, 0xfffffff0]))]);
    const packet = concat([header, xmpPacket(rnd)]);
    segments.splice(where, 0, [0xe1, packet.subarray(0, rnd.choice([65533, 70000])), null]);
  } else if (op === 2) {
    // APP2 (ICC, MPF with lying offsets), APP13 Photoshop/IPTC, APP14 Adobe, COM
    const [marker, head] = rnd.choice([[0xe2, "MPF\x00"], [0xe2, "ICC_PROFILE\x00\x01\x01"], [0xed, "Photoshop 3.0\x008BIM\x04\x04\x00\x00"], [0xee, "Adobe"], [0xfe, ""]]);
    segments.splice(where, 0, [marker, concat([head, rnd.choice([tiffBlock(rnd), filler(rnd, rnd.choice([0, 12, 600]))])]), null]);
  } else if (op === 3) {
    // SOF dimensions
    for (const segment of segments) {
      if ([0xc0, 0xc1, 0xc2].includes(segment[0]) && segment[1].length >= 5) {
        const side = () => rnd.choice([0, 1, 65535, rnd.int(65536)]);
        segment[1] = concat([segment[1].subarray(0, 1), u16be(side()), u16be(side()), segment[1].subarray(5)]);
      }
    }
  } else if (op === 4) {
    segments[i][2] = rnd.choice([0, 1, 2, 0xffff, segments[i][1].length + rnd.range(3, 40)]); // lying length
  } else {
    unitEdit(segments, i, op - 5, rnd);
  }
}

// --------------------------------------------------------------------------- WebP (RIFF)
function riffSplit(data) {
  const chunks = [];
  let offset = 12;
  const view = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  while (offset + 8 <= data.length) {
    const kind = text4(data, offset);
    const length = view.readUInt32LE(offset + 4);
    if (offset + 8 + length > data.length) break;
    chunks.push([kind, data.subarray(offset + 8, offset + 8 + length), null]);
    offset += 8 + length + (length & 1);
  }
  return [chunks, data.subarray(offset)];
}

function riffJoin(chunks, tail, riffSize) {
  const parts = ["WEBP"];
  for (const [kind, payload, length] of chunks) parts.push(kind, u32le(length === null ? payload.length : length), payload, new Uint8Array(payload.length & 1));
  const body = concat([...parts, tail]);
  return concat(["RIFF", u32le(riffSize === undefined ? body.length : riffSize), body]);
}

function riffEdit(chunks, rnd) {
  const i = rnd.int(chunks.length);
  const op = rnd.int(7);
  if (op === 0) {
    // VP8X with a huge canvas and every flag
    const canvas = u32le(rnd.choice([0, 0xffffff, 16383, rnd.int(1 << 24)])).subarray(0, 3);
    chunks.unshift(["VP8X", concat([Uint8Array.from([rnd.choice([0x3e, 0x02, 0x10, 0x08, 0x04, 0x20]), 0, 0, 0]), canvas, canvas]), null]);
  } else if (op === 1) {
    const kind = rnd.choice(["EXIF", "XMP ", "ICCP", "ANIM", "ANMF", "ALPH"]);
    const payload = kind === "EXIF" ? tiffBlock(rnd) : kind === "XMP " ? xmpPacket(rnd) : filler(rnd, rnd.choice([0, 6, 16, 300]));
    chunks.splice(rnd.int(chunks.length + 1), 0, [kind, payload, null]);
  } else if (op === 2) {
    chunks[i][2] = rnd.choice([...HUGE_LENGTHS, chunks[i][1].length + rnd.range(1, 9), 0]); // lying chunk size
  } else if (op === 3) {
    // VP8/VP8L frame header dimensions
    for (const chunk of chunks) {
      if (chunk[0] === "VP8L" && chunk[1].length >= 5) chunk[1] = concat([Uint8Array.from([0x2f]), u32le(rnd.u32()), chunk[1].subarray(5)]);
      else if (chunk[0] === "VP8 " && chunk[1].length >= 10) chunk[1] = concat([chunk[1].subarray(0, 6), u16le(rnd.int(65536)), u16le(rnd.int(65536)), chunk[1].subarray(10)]);
    }
  } else {
    unitEdit(chunks, i, op - 4, rnd);
  }
}

// --------------------------------------------------------------------------- GIF
/** [header (signature, screen descriptor, global table)] then one unit per extension or image block. */
function gifSplit(data) {
  const flags = data.length > 10 ? data[10] : 0;
  let offset = 13 + (flags & 0x80 ? 3 << ((flags & 7) + 1) : 0);
  const units = [["head", data.subarray(0, offset)]];
  while (offset < data.length && (data[offset] === 0x21 || data[offset] === 0x2c)) {
    const start = offset;
    if (data[offset] === 0x21) {
      offset += 2;
    } else {
      const local = offset + 9 < data.length ? data[offset + 9] : 0;
      offset += 10 + (local & 0x80 ? 3 << ((local & 7) + 1) : 0) + 1; // descriptor, table, LZW code size
    }
    while (offset < data.length && data[offset]) offset += 1 + data[offset]; // sub-blocks up to the zero terminator
    offset += 1;
    if (offset > data.length) {
      offset = start;
      break;
    }
    units.push(["block", data.subarray(start, offset)]);
  }
  return [units, data.subarray(offset)];
}

const gifJoin = (units, tail) => concat([...units.map((u) => u[1]), tail]);

function gifEdit(units, rnd) {
  const op = rnd.int(6);
  const head = units[0][1];
  if (op === 0 && head.length >= 10) {
    // logical screen size
    const side = () => rnd.choice([0, 65535, rnd.int(65536)]);
    units[0][1] = concat([head.subarray(0, 6), u16le(side()), u16le(side()), head.subarray(10)]);
    return;
  }
  const blocks = units.map((u, i) => (u[0] === "block" ? i : -1)).filter((i) => i >= 0);
  if (!blocks.length) {
    units.push(["block", bytes("\x21\xfe\x03abc\x00")]);
    return;
  }
  const i = rnd.choice(blocks);
  const body = units[i][1];
  if (op === 1 && body[0] === 0x2c && body.length >= 11) {
    // frame placed past the canvas, huge, or a bogus LZW size
    const side = () => u16le(rnd.choice([0, 1, 65535, rnd.int(65536)]));
    units[i][1] = concat([body.subarray(0, 1), side(), side(), side(), side(), body.subarray(9, 10), Uint8Array.from([rnd.choice([0, 1, 8, 12, 255])]), body.subarray(11)]);
  } else if (op === 2) {
    units.splice(i + 1, 0, ...Array.from({ length: rnd.choice([2, 300]) }, () => [...units[i]])); // many frames
  } else if (op === 3) {
    // a sub-block length that lies, a comment, a NETSCAPE or an XMP application extension
    units.splice(i, 0, ["block", rnd.choice([bytes("\x21\xfe\xff" + "c".repeat(10) + "\x00"), bytes("\x21\xff\x0bNETSCAPE2.0\x03\x01\xff\xff\x00"), bytes("\x21\xf9\x04\x05\x00\x00\x00\x00"), concat(["\x21\xff\x0bXMP DataXMP", xmpPacket(rnd), "\x00"])])]);
  } else {
    unitEdit(units, i, op - 4, rnd);
  }
}

// --------------------------------------------------------------------------- shared unit edits and the entry point
/** 0: delete, duplicate or move unit i; 1: flip bytes inside its payload (the framing stays valid). */
function unitEdit(units, i, op, rnd) {
  if (op === 0) {
    const choice = rnd.int(3);
    if (choice === 0 && units.length > 1) units.splice(i, 1);
    else if (choice === 1) units.splice(i, 0, [...units[i]]);
    else units.splice(rnd.int(units.length), 0, ...units.splice(i, 1));
  } else {
    const body = Uint8Array.from(units[i][1]); // every format keeps a unit's payload second
    for (let n = rnd.range(1, 9); n > 0 && body.length; n -= 1) body[rnd.int(body.length)] = rnd.int(256);
    units[i][1] = body;
  }
}

/** A format-blind edit: flip, insert, delete, repeat, truncate, or splice in a piece of another file. */
function byteEdit(data, rnd, donors = []) {
  if (!data.length) return filler(rnd, rnd.choice([1, 8, 64]));
  // Mostly past the signature (a broken one only meets the format sniffers), sometimes anywhere.
  const op = rnd.int(6);
  const at = rnd.range(rnd.random() < 0.1 ? 0 : Math.min(12, data.length - 1), data.length);
  if (op === 0) {
    const out = Uint8Array.from(data);
    for (let n = rnd.range(1, 17); n > 0; n -= 1) out[rnd.int(out.length)] = rnd.int(256);
    return out;
  }
  if (op === 1) return concat([data.subarray(0, at), filler(rnd, rnd.choice([1, 4, 64, 1024])), data.subarray(at)]);
  if (op === 2) return concat([data.subarray(0, at), data.subarray(at + rnd.range(1, 4096))]);
  if (op === 3) {
    const piece = data.subarray(at, at + rnd.range(1, 256));
    return concat([data.subarray(0, at), ...Array(rnd.choice([2, 100])).fill(piece), data.subarray(at)]);
  }
  if (op === 4 && donors.length) {
    const donor = rnd.choice(donors);
    const start = rnd.int(donor.length);
    return concat([data.subarray(0, at), donor.subarray(start, start + rnd.range(1, 2048)), data.subarray(at)]);
  }
  return data.slice(0, at);
}

// By the MIME type the evidence reader sniffs: [split, edit, join]
const FORMATS = {
  "image/png": [pngSplit, pngEdit, pngJoin],
  "image/jpeg": [jpegSplit, jpegEdit, jpegJoin],
  "image/webp": [riffSplit, riffEdit, riffJoin],
  "image/gif": [gifSplit, gifEdit, gifJoin],
};

/** One to three edits of `data`: mostly at its container's level, some at the byte level. */
function mutate(data, rnd, donors = []) {
  for (let n = rnd.range(1, 4); n > 0; n -= 1) {
    const kind = mimeType(data);
    if (!FORMATS[kind] || rnd.random() < 0.25) {
      data = byteEdit(data, rnd, donors);
      continue;
    }
    const [split, edit, join] = FORMATS[kind];
    const [units, tail] = split(data);
    if (!units.length) {
      data = byteEdit(data, rnd, donors);
      continue;
    }
    edit(units, rnd);
    data = kind === "image/webp" && rnd.random() < 0.2 ? join(units, tail, rnd.choice([...HUGE_LENGTHS, 0, 4])) : join(units, tail);
  }
  return data;
}

/** Typed JSON (a result the server or the device sends): strings changed, fields dropped or of another type,
 * lists emptied or repeated, prototype names as keys, as a hostile or broken server could send. */
function mutateJson(data, rnd, hostileStrings) {
  let tree;
  try {
    tree = JSON.parse(Buffer.from(data).toString("utf8"));
  } catch (_) {
    return byteEdit(data, rnd);
  }
  const nodes = [];
  const walk = (node) => {
    if (!node || typeof node !== "object") return;
    for (const key of Object.keys(node)) {
      nodes.push([node, key]);
      walk(node[key]);
    }
  };
  walk(tree);
  for (let n = rnd.range(1, 4); n > 0 && nodes.length; n -= 1) {
    const [parent, key] = rnd.choice(nodes);
    const value = parent[key];
    const op = rnd.int(5);
    if (op === 0) parent[key] = rnd.choice(hostileStrings);
    else if (op === 1) parent[key] = rnd.choice([null, 0, -1, 1e308, true, [], {}, [value], { toString: 1, valueOf: 1 }, { [rnd.choice(PROTOTYPE_NAMES)]: value }]);
    else if (op === 2 && Array.isArray(value)) parent[key] = rnd.random() < 0.5 ? [] : Array(rnd.choice([2, 200])).fill(value).flat();
    else if (op === 3 && !Array.isArray(parent)) delete parent[key];
    // an own key (an assignment to "__proto__" would set the prototype, which JSON.stringify leaves out)
    else if (!Array.isArray(parent)) Object.defineProperty(parent, rnd.choice(PROTOTYPE_NAMES), { value, enumerable: true, writable: true, configurable: true });
  }
  return utf8(JSON.stringify(tree));
}

module.exports = { Random, mutate, byteEdit, mutateJson, exifBlock, mimeType, concat, pngJoin, jpegSplit, jpegJoin, riffJoin, u32be, u16be, utf8, PROTOTYPE_NAMES, IPTC, XMP_NS, IPTC_NS };

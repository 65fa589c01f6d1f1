/*
 * Provenance evidence from the file's metadata on device, as gamma_detect/runtime/evidence reads it (xmp.py,
 * exif.py, generators.py) and combines it (combine.py): exifr (npm) parses the container (EXIF, XMP, PNG text
 * chunks, EXIF UserComment; a WebP file's EXIF and XMP chunks, which exifr does not find, are taken out of its
 * RIFF chunks here); this file turns what it found into the server's evidence items, with the server's
 * sentences, strengths and reasons. Generator parameters: AUTOMATIC1111/Forge, Fooocus, ComfyUI, InvokeAI and
 * NovelAI from PNG text chunks, AUTOMATIC1111/Forge and Fooocus from a JPEG's or WebP's EXIF UserComment
 * (sd-parsers' formats and places). C2PA and the watermark are the server's: a result on device says they were
 * not checked.
 */
(function (root, factory) {
  const api = factory();
  if (typeof module === "object" && module.exports) module.exports = api;
  else root.GammaDetect.device.metadata = api;
})(typeof globalThis !== "undefined" ? globalThis : this, function () {
  "use strict";

  const MAX_CHARS = 200;
  const MAX_PROMPT_CHARS = 4000;
  const MAX_VALUE_CHARS = 2000; // xmp.py's cap on a packet's values
  const MAX_MODELS = 32;
  const MAX_DEPTH = 32; // how far first() follows nested XMP structure to its first value
  // gamma_detect/runtime/evidence/sourcetypes.py
  const AI_GENERATED = ["trainedAlgorithmicMedia"];
  const AI_EDITED = ["compositeWithTrainedAlgorithmicMedia"];
  const CAPTURE = ["digitalCapture", "computationalCapture", "negativeFilm", "positiveFilm", "print"];
  // combine.py's order of sources (the contract's EVIDENCE_SOURCES) and of reasons
  const SOURCES = ["c2pa", "xmp", "exif", "generator_parameters", "watermark", "metadata", "file"];
  const AI_REASONS = ["ai_generated", "ai_edited"];

  // A value of the file as text: strings and numbers only (String() of a parsed object can throw, or be huge).
  const str = (v) => (typeof v === "string" ? v : typeof v === "number" ? String(v) : "");
  const text = (v) => str(v).replace(/\0/g, "").trim().slice(0, MAX_CHARS);
  const term = (v) => str(v).trim().replace(/\/+$/, "").split("/").pop();

  function item(source, strength, reason, summary, details, priv) {
    return { source, status: "ok", strength, reason, summary, details: details || {}, private: priv || {}, error: null };
  }

  function sourceTypeReason(value) {
    const name = term(value);
    if (AI_GENERATED.includes(name)) return "ai_generated";
    if (AI_EDITED.includes(name)) return "ai_edited";
    return CAPTURE.includes(name) ? "capture" : "other";
  }

  /** The first string or number inside exifr's value of an XMP property (a Bag, Seq, Alt or qualified value). */
  function first(value) {
    for (let depth = 0; depth < MAX_DEPTH && value && typeof value === "object"; depth += 1) {
      value = Array.isArray(value) ? value[0] : value.value !== undefined ? value.value : Object.values(value)[0];
    }
    return typeof value === "string" || typeof value === "number" ? value : undefined;
  }

  function xmp(parsed) {
    const iptc = parsed.Iptc4xmpExt || {};
    const source = str(first(iptc.DigitalSourceType)).trim().slice(0, MAX_VALUE_CHARS);
    const tool = first((parsed.xmp || {}).CreatorTool);
    if (source) {
      const reason = sourceTypeReason(source);
      return [item("xmp", AI_REASONS.includes(reason) ? "strong" : "weak", reason, `IPTC digital source type: ${term(source)} (unsigned)`, { DigitalSourceType: source })];
    }
    if (tool) return [item("xmp", "weak", "software", `Software: ${text(tool)} (not proof)`, { CreatorTool: text(tool) })];
    return [];
  }

  function exif(parsed) {
    const ifd0 = parsed.ifd0 || {};
    const make = text(ifd0.Make);
    const model = text(ifd0.Model);
    const software = text(ifd0.Software);
    const out = [];
    if (make || model) {
      const camera = make && model.toLowerCase().startsWith(make.toLowerCase().split(/\s+/)[0]) ? model : `${make} ${model}`.trim();
      out.push(item("exif", "weak", "camera_exif", `Camera: ${camera} (not proof)`, { make, model }));
    }
    if (software) out.push(item("exif", "weak", "software", `Software: ${software} (not proof)`, { software }));
    return out;
  }

  function json(value) {
    try {
      return JSON.parse(value);
    } catch (_) {
      return null;
    }
  }

  /** AUTOMATIC1111's "parameters": prompt lines, "Negative prompt: …", then "Steps: 20, Sampler: …, Model: …". */
  function a1111(parameters) {
    const lines = String(parameters).split("\n");
    const index = lines.findIndex((l) => /^Steps: /.test(l));
    if (index < 0) return null;
    const settings = {};
    for (const m of lines[index].matchAll(/\s*([\w ]+): ("(?:[^"\\]|\\.)*"|[^,]*)(?:,|$)/g)) settings[m[1].trim()] = m[2].trim();
    const negative = lines.slice(0, index).findIndex((l) => l.startsWith("Negative prompt: "));
    const prompt = lines.slice(0, negative >= 0 ? negative : index).join("\n");
    const model = settings.Model || settings["Model hash"];
    const generator = String(settings.Version || "").startsWith("f") ? "Forge" : "AUTOMATIC1111";
    return { generator, models: model ? [model] : [], sampler: settings.Sampler || null, prompt };
  }

  /** sd-parsers' reading of EXIF UserComment: the 8-byte charset prefix skipped, the rest UTF-16 big-endian. */
  function userComment(bytes) {
    if (!(bytes instanceof Uint8Array) || bytes.length <= 8 || bytes.length % 2) return null;
    try {
      return new TextDecoder("utf-16be", { fatal: true }).decode(bytes.subarray(8));
    } catch (_) {
      return null; // not UTF-16: Python's decode fails there too, and sd-parsers finds nothing
    }
  }

  function generators(parsed) {
    // PNG: its text chunks; JPEG and WebP: UserComment, which sd-parsers offers as A1111's or Fooocus' parameters.
    const comment = parsed.ihdr ? null : userComment(parsed.userComment);
    const chunks = parsed.ihdr || (comment !== null ? { parameters: comment } : {});
    let found = null;
    const fooocus = chunks.parameters && json(chunks.parameters);
    if (fooocus && typeof fooocus === "object" && (chunks.fooocus_scheme || fooocus.base_model)) {
      found = { generator: "Fooocus", models: fooocus.base_model ? [fooocus.base_model] : [], sampler: fooocus.sampler || null, prompt: fooocus.prompt };
    } else if (chunks.parameters) {
      found = a1111(chunks.parameters);
    } else if (chunks.prompt && json(chunks.prompt)) {
      const nodes = Object.values(json(chunks.prompt));
      const models = nodes.map((n) => n && n.inputs && (n.inputs.ckpt_name || n.inputs.unet_name)).filter((m) => typeof m === "string");
      const sampler = nodes.map((n) => n && n.inputs && n.inputs.sampler_name).find((s) => typeof s === "string") || null;
      found = { generator: "ComfyUI", models, sampler, prompt: "" };
    } else if (chunks.invokeai_metadata && json(chunks.invokeai_metadata)) {
      const meta = json(chunks.invokeai_metadata);
      found = { generator: "InvokeAI", models: meta.model && meta.model.model_name ? [meta.model.model_name] : [], sampler: meta.scheduler || null, prompt: meta.positive_prompt };
    } else if (chunks["sd-metadata"] && json(chunks["sd-metadata"])) {
      const meta = json(chunks["sd-metadata"]);
      found = { generator: "InvokeAI", models: meta.model_weights ? [meta.model_weights] : [], sampler: null, prompt: "" };
    } else if (chunks.Dream) {
      found = { generator: "InvokeAI", models: [], sampler: null, prompt: chunks.Dream };
    } else if (chunks.Software === "NovelAI") {
      const model = str(chunks.Source).replace(/\s+[0-9A-F]{8}$/i, "");
      found = { generator: "NovelAI", models: model ? [model] : [], sampler: null, prompt: chunks.Description };
    }
    if (!found) return [];
    // The parameters' JSON is the file's: any field may be of any type, or huge.
    const models = Array.from(new Set(found.models.map(text).filter(Boolean))).sort().slice(0, MAX_MODELS);
    const sampler = typeof found.sampler === "string" ? text(found.sampler) : null;
    const modelText = models.length ? `, model ${models.join(", ")}` : "";
    return [item("generator_parameters", "strong", "ai_generated", `Generator parameters found: ${found.generator}${modelText}`,
      { generator: found.generator, models, sampler }, { prompt: str(found.prompt).slice(0, MAX_PROMPT_CHARS) })];
  }

  /** The evidence items, in the server's order (xmp, exif, generator parameters), from exifr's output (mergeOutput false). */
  function itemsFrom(parsed) {
    const p = parsed || {};
    const guarded = (source, read) => {
      try {
        return read(p);
      } catch (err) {
        return [{ source, status: "error", strength: null, reason: null, summary: `${source} could not be read (${err && err.name})`, details: {}, private: {}, error: "metadata_unreadable" }];
      }
    };
    return guarded("xmp", xmp).concat(guarded("exif", exif), guarded("generator_parameters", generators));
  }

  /** combine.py: a believed strong or proof item saying AI makes the verdict `ai`; nothing turns it `real`. */
  function combine(verdict, reason, items) {
    const acting = items.filter((e) => e.status === "ok" && ["proof", "strong"].includes(e.strength) && AI_REASONS.includes(e.reason));
    if (!acting.length) return { verdict, verdict_reason: reason };
    const key = (e) => [e.strength !== "proof" ? 1 : 0, AI_REASONS.indexOf(e.reason), SOURCES.indexOf(e.source)];
    const best = acting.slice().sort((a, b) => {
      const [x, y] = [key(a), key(b)];
      return x[0] - y[0] || x[1] - y[1] || x[2] - y[2];
    })[0];
    return { verdict: "ai", verdict_reason: `${best.source}:${best.reason}` };
  }

  // exifr's options: the header segments only (and the EXIF IFD's UserComment, raw), values as written
  const EXIFR_OPTIONS = Object.freeze({ tiff: true, ifd0: true, exif: false, gps: false, interop: false, ifd1: false, xmp: true, iptc: false, icc: false, ihdr: true, jfif: false, userComment: true, mergeOutput: false, translateValues: false, reviveValues: false, sanitize: true });

  // TIFF value sizes by type (1 BYTE ... 13 IFD)
  const TIFF_TYPE_BYTES = [0, 1, 1, 2, 4, 8, 1, 1, 2, 4, 8, 4, 8, 4];

  /**
   * exifr's TIFF parser with each entry's count bounded by its block: exifr makes the array of an entry's count
   * before it reads a value (tiff-exif.mjs parseTag), so a count of 2^32 - 1 in a 1 KB file reserved gigabytes.
   * Such an entry gets the error exifr gives a value past its block, which leaves that IFD out, before any array.
   */
  function boundTiffCounts(exifr) {
    const Tiff = exifr.segmentParsers.get("tiff");
    if (Tiff.countsBounded) return;
    class BoundedTiff extends Tiff {
      parseTag(offset, tag, blockKey) {
        const size = TIFF_TYPE_BYTES[this.chunk.getUint16(offset + 2)];
        const count = this.chunk.getUint32(offset + 4);
        if (size && count * size > this.chunk.byteLength) throw new Error(`Invalid TIFF value count: ${count} values of tag ${tag} do not fit in ${this.chunk.byteLength} bytes`);
        return super.parseTag(offset, tag, blockKey);
      }
    }
    BoundedTiff.countsBounded = true;
    exifr.segmentParsers.set("tiff", BoundedTiff);
  }

  const fourcc = (u8, at) => String.fromCharCode(u8[at], u8[at + 1], u8[at + 2], u8[at + 3]);

  /**
   * A WebP file's first EXIF and XMP chunks (what Pillow's WebP reader keeps as info["exif"] and info["xmp"]),
   * or null for a file that is not RIFF WebP. The walk stops at a chunk that runs past the file.
   */
  function webpChunks(bytes) {
    const u8 = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
    if (u8.length < 12 || fourcc(u8, 0) !== "RIFF" || fourcc(u8, 8) !== "WEBP") return null;
    const view = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
    const end = Math.min(u8.length, 8 + view.getUint32(4, true));
    const found = {};
    for (let at = 12; at + 8 <= end; ) {
      const id = fourcc(u8, at);
      const size = view.getUint32(at + 4, true);
      if (at + 8 + size > end) break;
      const data = u8.subarray(at + 8, at + 8 + size);
      if (id === "EXIF" && !found.exif) found.exif = fourcc(data, 0) === "Exif" ? data.subarray(6) : data; // "Exif\0\0" where a writer put it
      if (id === "XMP " && !found.xmp) found.xmp = data;
      at += 8 + size + (size & 1);
    }
    return found;
  }

  /** exifr's parse of a file's header segments (EXIFR_OPTIONS, TIFF counts bounded), or null where it fails. */
  async function parse(exifr, bytes) {
    boundTiffCounts(exifr);
    const webp = webpChunks(bytes);
    if (!webp) return exifr.parse(bytes, EXIFR_OPTIONS).catch(() => null);
    // exifr reads no WebP: its EXIF chunk is a TIFF block, its XMP chunk a packet; each parsed as such.
    const [tiff, xmp] = await Promise.all([
      webp.exif ? exifr.parse(webp.exif, EXIFR_OPTIONS).catch(() => null) : null,
      webp.xmp ? exifr.sidecar(webp.xmp, EXIFR_OPTIONS, "xmp").catch(() => null) : null,
    ]);
    return tiff || xmp ? Object.assign({}, tiff, xmp) : null;
  }

  return { parse, itemsFrom, combine, webpChunks, EXIFR_OPTIONS, MAX_PROMPT_CHARS };
});

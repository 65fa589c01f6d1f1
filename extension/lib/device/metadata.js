/*
 * Provenance evidence from the file's metadata on device, as gamma_detect/runtime/evidence reads it (xmp.py,
 * exif.py, generators.py) and combines it (combine.py): exifr (npm) parses the container (EXIF, XMP, PNG text
 * chunks); this file turns what it found into the server's evidence items, with the server's sentences,
 * strengths and reasons. Generator parameters: AUTOMATIC1111/Forge, Fooocus, ComfyUI, InvokeAI and NovelAI,
 * from PNG text chunks (sd-parsers' formats; a JPEG's EXIF UserComment is not read here). C2PA and the
 * watermark are the server's: a result on device says they were not checked.
 */
(function (root, factory) {
  const api = factory();
  if (typeof module === "object" && module.exports) module.exports = api;
  else root.GammaDetect.device.metadata = api;
})(typeof globalThis !== "undefined" ? globalThis : this, function () {
  "use strict";

  const MAX_CHARS = 200;
  const MAX_PROMPT_CHARS = 4000;
  // gamma_detect/runtime/evidence/sourcetypes.py
  const AI_GENERATED = ["trainedAlgorithmicMedia"];
  const AI_EDITED = ["compositeWithTrainedAlgorithmicMedia"];
  const CAPTURE = ["digitalCapture", "computationalCapture", "negativeFilm", "positiveFilm", "print"];
  // combine.py's order of sources (the contract's EVIDENCE_SOURCES) and of reasons
  const SOURCES = ["c2pa", "xmp", "exif", "generator_parameters", "watermark", "metadata", "file"];
  const AI_REASONS = ["ai_generated", "ai_edited"];

  const text = (v) => (v === undefined || v === null ? "" : String(v).replace(/\0/g, "").trim().slice(0, MAX_CHARS));
  const term = (v) => String(v).trim().replace(/\/+$/, "").split("/").pop();

  function item(source, strength, reason, summary, details, priv) {
    return { source, status: "ok", strength, reason, summary, details: details || {}, private: priv || {}, error: null };
  }

  function sourceTypeReason(value) {
    const name = term(value);
    if (AI_GENERATED.includes(name)) return "ai_generated";
    if (AI_EDITED.includes(name)) return "ai_edited";
    return CAPTURE.includes(name) ? "capture" : "other";
  }

  function first(value) {
    if (Array.isArray(value)) return first(value[0]);
    if (value && typeof value === "object") return first(value.value !== undefined ? value.value : Object.values(value)[0]);
    return value;
  }

  function xmp(parsed) {
    const iptc = parsed.Iptc4xmpExt || {};
    const source = first(iptc.DigitalSourceType);
    const tool = first((parsed.xmp || {}).CreatorTool);
    if (source) {
      const reason = sourceTypeReason(source);
      return [item("xmp", AI_REASONS.includes(reason) ? "strong" : "weak", reason, `IPTC digital source type: ${term(source)} (unsigned)`, { DigitalSourceType: String(source) })];
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

  function generators(parsed) {
    const chunks = parsed.ihdr || {};
    let found = null;
    const fooocus = chunks.parameters && json(chunks.parameters);
    if (fooocus && typeof fooocus === "object" && (chunks.fooocus_scheme || fooocus.base_model)) {
      found = { generator: "Fooocus", models: fooocus.base_model ? [fooocus.base_model] : [], sampler: fooocus.sampler || null, prompt: String(fooocus.prompt || "") };
    } else if (chunks.parameters) {
      found = a1111(chunks.parameters);
    } else if (chunks.prompt && json(chunks.prompt)) {
      const nodes = Object.values(json(chunks.prompt));
      const models = nodes.map((n) => n && n.inputs && (n.inputs.ckpt_name || n.inputs.unet_name)).filter((m) => typeof m === "string");
      const sampler = nodes.map((n) => n && n.inputs && n.inputs.sampler_name).find((s) => typeof s === "string") || null;
      found = { generator: "ComfyUI", models, sampler, prompt: "" };
    } else if (chunks.invokeai_metadata && json(chunks.invokeai_metadata)) {
      const meta = json(chunks.invokeai_metadata);
      found = { generator: "InvokeAI", models: meta.model && meta.model.model_name ? [meta.model.model_name] : [], sampler: meta.scheduler || null, prompt: String(meta.positive_prompt || "") };
    } else if (chunks["sd-metadata"] && json(chunks["sd-metadata"])) {
      const meta = json(chunks["sd-metadata"]);
      found = { generator: "InvokeAI", models: meta.model_weights ? [meta.model_weights] : [], sampler: null, prompt: "" };
    } else if (chunks.Dream) {
      found = { generator: "InvokeAI", models: [], sampler: null, prompt: String(chunks.Dream) };
    } else if (chunks.Software === "NovelAI") {
      const model = String(chunks.Source || "").replace(/\s+[0-9A-F]{8}$/i, "");
      found = { generator: "NovelAI", models: model ? [model] : [], sampler: null, prompt: String(chunks.Description || "") };
    }
    if (!found) return [];
    const models = Array.from(new Set(found.models.filter(Boolean))).sort();
    const modelText = models.length ? `, model ${models.join(", ")}` : "";
    return [item("generator_parameters", "strong", "ai_generated", `Generator parameters found: ${found.generator}${modelText}`,
      { generator: found.generator, models, sampler: found.sampler }, { prompt: found.prompt.slice(0, MAX_PROMPT_CHARS) })];
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

  // exifr's options: the header segments only, values as written
  const EXIFR_OPTIONS = Object.freeze({ tiff: true, ifd0: true, exif: false, gps: false, interop: false, ifd1: false, xmp: true, iptc: false, icc: false, ihdr: true, jfif: false, mergeOutput: false, translateValues: false, reviveValues: false, sanitize: true });

  return { itemsFrom, combine, EXIFR_OPTIONS };
});

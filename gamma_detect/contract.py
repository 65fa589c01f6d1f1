"""The cross-layer contract: the names and numbers that training, the runtime, the server and the extension share.

Written here once. The model manifest (band and source class names), the server
(error codes, limits), its OpenAPI document and the extension's generated
``extension/lib/contract.js`` all read it; a test fails when the generated file is stale.

To extend the contract, add a constant here, add it to :func:`exported` if the
extension needs it, and regenerate: ``python -m gamma_detect.contract``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

# Verdict bands, in band order (lowest probability first); their edges are fitted per model and live in its manifest.
VERDICTS = ("real", "likely_real", "uncertain", "likely_ai", "ai")
UNCERTAIN = VERDICTS[2]  # the middle band, and the verdict of an abstention

# Head-2 classes, in output channel order (the result's ``sources`` keys, the manifest's ``source_classes``).
SOURCE_CLASSES = ("authentic", "generated", "inpainted", "copy_moved", "spliced")


@dataclass(frozen=True)
class ErrorCode:
    status: int    # the HTTP status the API answers with (a job-only code: the status it stands for)
    message: str   # the default message (a request-specific one may replace it)
    # Only ever a failed job's `error` (GET /jobs/<id> answers 200 with it), never an HTTP answer: the OpenAPI
    # document lists no response for it, so a 5xx of that status from the API is a bug.
    job_only: bool = False


# Every error the API reports, as the flat JSON object {"code": ..., "message": ...}. Codes are never renamed.
ERRORS: dict[str, ErrorCode] = {
    "bad_request": ErrorCode(400, "the request is malformed"),
    "unauthorized": ErrorCode(401, "a valid API key is required (Authorization: Bearer <key>)"),
    "not_found": ErrorCode(404, "no such resource (unknown or expired)"),
    "method_not_allowed": ErrorCode(405, "method not allowed"),
    "conflict": ErrorCode(409, "the job has already ended"),
    "payload_too_large": ErrorCode(413, "the image is larger than the byte limit"),
    "unsupported_media_type": ErrorCode(415, "not an image in a supported format"),
    "image_decode_failed": ErrorCode(422, "the image could not be decoded"),
    "image_too_large": ErrorCode(422, "the image has more pixels than allowed"),
    "image_too_small": ErrorCode(422, "the image is too small to analyse"),
    "url_not_allowed": ErrorCode(422, "the URL is not allowed"),
    "fetch_failed": ErrorCode(502, "the image could not be fetched"),
    "rate_limited": ErrorCode(429, "too many requests"),
    "worker_lost": ErrorCode(500, "the worker running the job stopped before finishing it", job_only=True),
    "job_timeout": ErrorCode(504, "the job ran past its time limit", job_only=True),
    "internal_error": ErrorCode(500, "internal error"),
    "service_unavailable": ErrorCode(503, "the service is temporarily unavailable"),
}

# Limits the server enforces and the extension respects. The byte, pixel and scan limits are the server's
# defaults (its settings may change them); the feedback limits are fixed.
LIMITS: dict[str, int] = {
    "upload_bytes": 20 * 1024 * 1024,      # largest uploaded or fetched image
    "image_pixels": 50_000_000,            # largest decoded image (decompression-bomb limit)
    "scan_images": 200,                    # most images in one /v1/scan page or /v1/scan/bytes request
    "feedback_note_chars": 2000,           # longest feedback note
    "feedback_result_bytes": 64 * 1024,    # largest result object echoed back in feedback (compact JSON)
    "longpoll_seconds": 30,                # most seconds `GET /jobs/<id>?wait=N` waits
    "url_chars": 4096,                     # longest image or page URL
}

# Views per session run: the batch the runtimes chunk an image's views into, the TensorRT profile's largest batch,
# and a manifest's ``max_batch`` where it names none.
MAX_BATCH_VIEWS = 32

# The fields of an analysis result, in order: what `gamma predict --json` prints (PREDICT_FIELDS) and what the
# API adds. Fields may be added, never renamed.
PREDICT_FIELDS = ("path", "ai_probability", "verdict", "uncertain_reason", "mask_fraction", "sources", "verdict_reason",
                  "evidence", "ai_content")
RESULT_FIELDS = PREDICT_FIELDS + ("model", "image", "heatmap_url", "timings", "cached")

# `ai_content.extent`: what kind of AI content an AI-side verdict found. whole_image: the mean view score alone says
# so (generated as a whole); region: the region evidence (head-1 map, worst view) raised it (a photo with an
# AI-edited region); none: the verdict is not AI-side. `ai_content.region`: the calibrated head-1 map's strongest
# region (box, share), null when none stands out; `sources` are head-2's per-pixel shares of the whole image.
AI_CONTENT_EXTENTS = ("whole_image", "region", "none")

# Why the pixels' verdict is `uncertain` although the score sits in an AI band (gamma_detect/abstain.py); null when
# the bands decided alone. view_spread: the views of the image disagree; reencode_shift: a JPEG q90 copy scores lower.
UNCERTAIN_REASONS = ("view_spread", "reencode_shift")

# Provenance evidence (gamma_detect/runtime/evidence): the items of a result's `evidence` list and what a
# `verdict_reason` may say. `metadata` and `file` items only ever carry errors.
EVIDENCE_SOURCES = ("c2pa", "xmp", "exif", "generator_parameters", "watermark", "metadata", "file")
EVIDENCE_STATUSES = ("ok", "invalid", "error")   # invalid: read, but failed its own validation (never believed)
EVIDENCE_STRENGTHS = ("proof", "strong", "weak")
EVIDENCE_REASONS = ("ai_generated", "ai_edited", "capture", "camera_exif", "software", "other")
EVIDENCE_ERRORS = ("file_too_large", "png_malformed", "png_too_many_chunks", "png_chunk_too_large", "xmp_too_large",
                   "xmp_malformed", "metadata_unreadable", "c2pa_timeout", "c2pa_failed", "c2pa_unavailable",
                   "watermark_failed")
# `pixels` (the bands decided), `region` (the region evidence raised the pixels' verdict into an AI band), `capture_claim` (a
# signed capture kept pixels from saying ai), or
# `<source>:<reason>` for the evidence that made the verdict ai.
EVIDENCE_AI_SOURCES = ("c2pa", "xmp", "generator_parameters", "watermark")
VERDICT_REASONS = ("pixels", "region", "capture_claim") + tuple(f"{source}:{reason}" for source in EVIDENCE_AI_SOURCES
                                                       for reason in ("ai_generated", "ai_edited"))

# The heatmap PNG (server/cache.py render_overlay, the extension's on-device overlay): its alpha is
# floor(m * HEATMAP_MAX_ALPHA / 255), m the calibrated map as uint8 (round(255 * value)); the extension reads which
# pixels stand out from that alpha (a canvas loses the colour where a pixel is transparent).
HEATMAP_MAX_ALPHA = 180

# A job's status as the API reports it; JOB_ENDED: the final ones (a long poll returns, a client stops polling).
# And the labels feedback accepts.
JOB_STATUSES = ("queued", "started", "finished", "failed", "canceled")
JOB_ID_PATTERN = "^[A-Za-z0-9_-]{1,64}$"   # what a job id may be (RQ's own rule, bounded); anything else: 404
JOB_ENDED = ("finished", "failed", "canceled")
FEEDBACK_LABELS = ("ai", "real")

# Crawl scans (`gamma scan` on WARC files): an image entry's `status`. scored: its archived bytes were scored;
# fetched: not archived, fetched at scan time (--fetch-missing) and scored; not_archived: the page references it, the
# archive lacks it; archived_error: archived with a non-2xx HTTP status (`http_status`); failed: archived (or
# fetched) but not scored (`error`).
CRAWL_STATUSES = ("scored", "fetched", "not_archived", "archived_error", "failed")
# Errors that come from the archive rather than the image (an entry's or a page's `error.code`, beside ERRORS' codes).
CRAWL_ERRORS: dict[str, str] = {
    "warc_unreadable": "the WARC record could not be read (truncated, corrupt, or its declared length is wrong)",
    "html_too_large": "the HTML page is larger than the scan's HTML byte limit",
    "html_too_deep": "the HTML page nests elements deeper than browsers do (512): refused before parsing",
    "revisit_unresolved": "a revisit record whose original payload is not in the crawl",
    "too_many_redirects": "the archived redirect chain is too long or loops",
    "bad_data_url": "the data: URL could not be decoded",
}
# One image of a crawled page, the JSONL entry's fields in order; the Parquet file has one row per (page, image):
# the page fields, these, then `result_<field>` per RESULT_FIELDS (nested values as JSON text).
CRAWL_PAGE_FIELDS = ("page_url", "crawl_date", "page_warc_file", "page_offset", "page_record_id")
CRAWL_IMAGE_FIELDS = ("url", "sha256", "status", "http_status", "warc_file", "offset", "record_id", "warc_date",
                      "error_code", "error_message")
# The batch endpoint for archived bytes: multipart/form-data, one `image` part per image (its file name is the
# caller's label, returned as the entry's `url`), at most LIMITS["scan_images"] parts and the upload byte limit
# in all; answered like /v1/scan with one scan job.
SCAN_BYTES_ENDPOINT = "/v1/scan/bytes"


def exported() -> dict:
    """What the extension gets, as JSON-ready values (contract.js freezes each)."""
    return {"VERDICTS": list(VERDICTS), "SOURCE_CLASSES": list(SOURCE_CLASSES),
            "ERRORS": {code: {"status": e.status} for code, e in ERRORS.items()},
            "LIMITS": dict(LIMITS), "RESULT_FIELDS": list(RESULT_FIELDS), "JOB_STATUSES": list(JOB_STATUSES),
            "EVIDENCE_STATUSES": list(EVIDENCE_STATUSES), "EVIDENCE_STRENGTHS": list(EVIDENCE_STRENGTHS),
            "VERDICT_REASONS": list(VERDICT_REASONS), "UNCERTAIN_REASONS": list(UNCERTAIN_REASONS),
            "AI_CONTENT_EXTENTS": list(AI_CONTENT_EXTENTS), "HEATMAP_MAX_ALPHA": HEATMAP_MAX_ALPHA,
            "FEEDBACK_LABELS": list(FEEDBACK_LABELS)}


def render_js() -> str:
    """``extension/lib/contract.js``: a classic/UMD script like the other extension/lib files."""
    body = []
    for name, value in exported().items():
        if isinstance(value, dict):  # one entry a line, so a diff of the generated file reads like one of the source
            text = "{\n" + "".join(f"    {json.dumps(k)}: {json.dumps(v)},\n" for k, v in value.items()) + "  }"
        else:
            text = json.dumps(value)
        body.append(f"  const {name} = deepFreeze({text});")
    names = ", ".join(exported())
    return f"""/*
 * GENERATED by `python -m gamma_detect.contract` from gamma_detect/contract.py: do not edit.
 * The cross-layer contract (verdict names, error codes and their HTTP statuses, limits,
 * result field names); a Python test fails when this file is stale.
 */
(function (root, factory) {{
  const api = factory();
  if (typeof module === "object" && module.exports) module.exports = api;
  else (root.GammaDetect = root.GammaDetect || {{}}).contract = api;
}})(typeof globalThis !== "undefined" ? globalThis : this, function () {{
  "use strict";

  function deepFreeze(value) {{
    if (value && typeof value === "object") Object.values(value).forEach(deepFreeze);
    return Object.freeze(value);
  }}

{chr(10).join(body)}

  return Object.freeze({{ {names} }});
}});
"""


def markdown() -> str:
    """README.md's tables of the contract (a test checks that README holds them as generated here)."""
    def names(values) -> str:
        return ", ".join(f"`{v}`" for v in values)

    rows = ["| error code | HTTP status | default message |", "| --- | --- | --- |"]
    def status(e: ErrorCode) -> str:
        return f"none: a failed job's `error` ({e.status})" if e.job_only else str(e.status)

    rows += [f"| `{code}` | {status(e)} | {e.message.replace('<', '&lt;')} |" for code, e in ERRORS.items()]
    rows += ["", "| contract name | values |", "| --- | --- |",
             f"| verdicts (`verdict`, band order) | {names(VERDICTS)} |",
             f"| result fields, `gamma predict --json` | {names(PREDICT_FIELDS)} |",
             f"| result fields the API adds | {names(RESULT_FIELDS[len(PREDICT_FIELDS):])} |",
             f"| job statuses (ended: {names(JOB_ENDED)}) | {names(JOB_STATUSES)} |",
             f"| feedback labels | {names(FEEDBACK_LABELS)} |",
             f"| `uncertain_reason` | {names(UNCERTAIN_REASONS)} |",
             f"| crawl image statuses (`status`, `gamma scan` on WARC files) | {names(CRAWL_STATUSES)} |",
             f"| crawl error codes (`error.code`, beside the codes above) | {names(CRAWL_ERRORS)} |",
             f"| limits (server defaults) | {', '.join(f'`{k}` {v}' for k, v in LIMITS.items())} |"]
    return "\n".join(rows)


DEFAULT_JS = Path("extension/lib/contract.js")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gamma_detect.contract",
                                     description="Write the extension's contract.js from gamma_detect/contract.py.")
    parser.add_argument("--out", type=Path, default=DEFAULT_JS,
                        help=f"where to write it (default: {DEFAULT_JS}, from the repository root)")
    parser.add_argument("--check", action="store_true", help="only check that the file is up to date (exit 1 if not)")
    parser.add_argument("--markdown", action="store_true", help="print README.md's tables of the contract instead")
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown())
        return 0
    text = render_js()
    if args.check:
        current = args.out.read_text() if args.out.is_file() else None
        if current != text:
            print(f"{args.out} is stale: run `python -m gamma_detect.contract`", file=sys.stderr)
            return 1
        return 0
    from .files import write_atomic

    write_atomic(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The OpenAPI 3.1 document served at /v1/openapi.json (tests validate real responses against it).

Names and limits come from the contract (``gamma_detect.contract``), so the document cannot drift from them.
"""

from __future__ import annotations

from gamma_detect.contract import (AI_CONTENT_EXTENTS, ERRORS, EVIDENCE_ERRORS, EVIDENCE_REASONS, EVIDENCE_SOURCES, EVIDENCE_STATUSES,
                                   EVIDENCE_STRENGTHS, FEEDBACK_LABELS, JOB_ID_PATTERN, JOB_STATUSES, LIMITS,
                                   PREDICT_FIELDS, RESULT_FIELDS, SCAN_BYTES_ENDPOINT, UNCERTAIN_REASONS, VERDICT_REASONS,
                                   VERDICTS)


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: str) -> dict:
    """The Error response under the HTTP status of each code an endpoint may answer (statuses from the contract)."""
    statuses = sorted({ERRORS[code].status for code in codes})
    return {str(status): {"$ref": "#/components/responses/Error"} for status in statuses}


_PAGE_URL = {"type": ["string", "null"], "maxLength": LIMITS["url_chars"],
             "description": "the page the image is on, kept with the job (never fetched)"}

_BINARY = {"type": "string", "contentMediaType": "application/octet-stream"}   # a file part's bytes

# What every POST may answer: a malformed or wrong-type body, a refused key, the rate limit, Redis away.
_POSTED = ("bad_request", "unsupported_media_type", "unauthorized", "rate_limited", "service_unavailable")


SCHEMAS = {
    "Error": {
        "type": "object", "required": ["code", "message"],
        "properties": {"code": {"type": "string", "enum": sorted(ERRORS)}, "message": {"type": "string"}},
    },
    "Model": {
        "type": "object", "required": ["name", "version", "digest", "backend"],
        "properties": {"name": {"type": "string"}, "version": {"type": ["string", "integer", "number"]},
                       "digest": {"type": "string"}, "backend": {"type": "string"},
                       "variant": {"type": "string", "description": "the artifact serving: fp32, int8, fp16, compact"},
                       "fallback": {
                           "type": "object", "required": ["requested_variant", "reason"],
                           "description": "present when the requested variant failed its load-time self-check "
                                          "on this machine and FP32 serves instead",
                           "properties": {"requested_variant": {"type": "string"},
                                          "reason": {"const": "self_check_failed"}}}},
    },
    "Image": {
        "type": "object", "required": ["sha256", "width", "height", "format"],
        "properties": {"sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                       "width": {"type": "integer", "minimum": 1}, "height": {"type": "integer", "minimum": 1},
                       "format": {"type": "string"}},
    },
    "Evidence": {
        "type": "object", "required": ["source", "status", "strength", "reason", "summary", "details", "private", "error"],
        "description": "One provenance signal read from the file's original bytes (README: Provenance evidence).",
        "properties": {
            "source": {"type": "string", "enum": list(EVIDENCE_SOURCES)},
            "status": {"type": "string", "enum": list(EVIDENCE_STATUSES),
                       "description": "invalid: read but failed its own validation (a tampered C2PA store), "
                                      "never believed; error: could not be read (`error` says why)"},
            "strength": {"enum": [*EVIDENCE_STRENGTHS, None],
                         "description": "proof only for a valid C2PA claim whose signer chains to the operator's "
                                        "trust anchors; null unless status is ok"},
            "reason": {"enum": [*EVIDENCE_REASONS, None]},
            "summary": {"type": "string", "description": "one line for people"},
            "details": {"type": "object"},
            "private": {"type": "object", "description": "prompts and workflow text: returned to the client "
                                                         "that asked, never logged, expire with the result"},
            "error": {"enum": [*EVIDENCE_ERRORS, None]},
        },
    },
    "Result": {
        "type": "object",
        "description": f"The fields `gamma predict --json` prints ({', '.join(PREDICT_FIELDS)}), plus "
                       f"{', '.join(RESULT_FIELDS[len(PREDICT_FIELDS):])}. "
                       "Fields may be added, never renamed.",
        "required": list(RESULT_FIELDS),
        "properties": {
            "path": {"type": ["string", "null"], "description": "the image URL, the upload's file name, or null"},
            "ai_probability": {"type": "number", "minimum": 0, "maximum": 1},
            "verdict": {"type": "string", "enum": list(VERDICTS)},
            "uncertain_reason": {"enum": [*UNCERTAIN_REASONS, None],
                                 "description": "set when the abstention rule made an AI-side score `uncertain`"},
            "mask_fraction": {"type": "number", "minimum": 0, "maximum": 1},
            "sources": {"type": "object", "additionalProperties": {"type": "number"}},
            "verdict_reason": {"type": "string", "enum": list(VERDICT_REASONS),
                               "description": "pixels: the bands decided; region: the region evidence raised "
                                              "the verdict into an AI band; capture_claim: a signed capture kept "
                                              "pixels alone from saying ai; <source>:<reason>: that evidence "
                                              "made the verdict ai (ai_probability stays the pixel score)"},
            "evidence": {"type": "array", "items": _ref("Evidence")},
            "ai_content": {
                "type": "object", "required": ["extent", "region"],
                "description": "what kind of AI content: whole_image (the mean view score alone is AI-side: "
                               "generated as a whole), region (the region evidence decided: a photo with an AI-edited "
                               "region), none (not AI-side); region: the calibrated head-1 map's strongest region "
                               "(box [left, top, right, bottom] as fractions of the image, share of its pixels), "
                               "null when none stands out",
                "properties": {
                    "extent": {"type": "string", "enum": list(AI_CONTENT_EXTENTS)},
                    "region": {"type": ["object", "null"], "required": ["box", "share"], "properties": {
                        "box": {"type": "array", "items": {"type": "number", "minimum": 0, "maximum": 1},
                                "minItems": 4, "maxItems": 4},
                        "share": {"type": "number", "minimum": 0, "maximum": 1}}}}},
            "model": _ref("Model"),
            "image": _ref("Image"),
            "heatmap_url": {"type": "string", "pattern": "^/v1/heatmaps/"},
            "timings": {"type": "object", "additionalProperties": {"type": "number"}},
            "cached": {"type": "boolean"},
        },
    },
    "Accepted": {
        "type": "object", "required": ["job_id", "status", "status_url"],
        "properties": {"job_id": {"type": "string"}, "status": {"const": "queued"},
                       "status_url": {"type": "string", "pattern": "^/jobs/"},
                       "shared": {"type": "boolean", "description": "the same image is already being analysed"},
                       "images": {"type": "integer"}},
    },
    "ScanImage": {
        "type": "object", "required": ["url", "status"],
        "properties": {"url": {"type": "string"}, "job_id": {"type": "string"},
                       "status": {"type": "string", "enum": list(JOB_STATUSES)},
                       "result": _ref("Result"), "error": _ref("Error")},
    },
    "ScanResult": {
        "type": "object", "required": ["page_url", "images", "counts"],
        "properties": {"page_url": {"type": ["string", "null"]},
                       "images": {"type": "array", "items": _ref("ScanImage")},
                       "counts": {"type": "object", "additionalProperties": {"type": "integer"}}},
    },
    "Job": {
        "type": "object", "required": ["id", "status", "enqueued_at", "ended_at"],
        "properties": {
            "id": {"type": "string"},
            "status": {"type": "string", "enum": list(JOB_STATUSES)},
            "kind": {"type": "string", "enum": ["analyze", "scan"]},
            "result": {"oneOf": [_ref("Result"), _ref("ScanResult")]},
            "error": _ref("Error"),
            "enqueued_at": {"type": ["string", "null"], "format": "date-time"},
            "ended_at": {"type": ["string", "null"], "format": "date-time"},
        },
    },
    "AnalyzeUrl": {
        "type": "object", "required": ["url"],
        "properties": {"url": {"type": "string", "format": "uri", "maxLength": LIMITS["url_chars"],
                               "description": "an absolute URL as RFC 3986 writes it; a URL the fetcher may not "
                                              "reach (not http(s), credentials, a non-public address): 422"},
                       "page_url": _PAGE_URL},
    },
    "Scan": {
        "type": "object", "required": ["image_urls"],
        "properties": {"page_url": _PAGE_URL,
                       "image_urls": {"type": "array", "minItems": 1, "maxItems": LIMITS["scan_images"],
                                      "items": {"type": "string", "minLength": 1},
                                      "description": "each URL is checked on its own: one that is not an absolute "
                                                     "URL, or not allowed, gets its own `error` in the scan"}},
    },
    "Feedback": {
        "type": "object", "required": ["sha256", "result", "label"],
        "properties": {"sha256": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"}, "result": {"type": "object"},
                       "label": {"type": "string", "enum": list(FEEDBACK_LABELS)},
                       "note": {"type": ["string", "null"], "maxLength": LIMITS["feedback_note_chars"]}},
    },
    "FeedbackStored": {
        "type": "object", "required": ["id", "status"],
        "properties": {"id": {"type": "string"}, "status": {"const": "stored"}},
    },
    "Health": {"type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}},
    "Ready": {
        "type": "object", "required": ["status", "checks"],
        "properties": {"status": {"type": "string", "enum": ["ready", "not_ready"]},
                       "checks": {"type": "object", "additionalProperties": {"type": "boolean"}},
                       "model": _ref("Model"),
                       "worker_failures": {
                           "type": "array", "description": "worker processes that cannot run, and why (e.g. the "
                           "model cannot be loaded); the others, if a worker is alive, still serve",
                           "items": {"type": "object", "required": ["worker", "error"],
                                     "properties": {"worker": {"type": "string"}, "error": {"type": "string"}}}}},
    },
}


def document() -> dict:
    job_id = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string", "pattern": JOB_ID_PATTERN}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "gamma-detect", "version": "1",
                 "description": "AI-generated image detection. Errors are JSON `{code, message}` with a stable code."},
        "components": {
            "schemas": SCHEMAS,
            "responses": {"Error": _json(_ref("Error"), "an error with a stable code")},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "API key; optional until the first key is created"}},
        },
        "security": [{"bearer": []}, {}],
        "paths": {
            "/v1/analyze": {"post": {
                "summary": "analyse one image (upload or URL)",
                "requestBody": {"required": True, "content": {
                    "multipart/form-data": {"schema": {"type": "object", "required": ["image"],
                                                       "properties": {"image": {"type": "string", "contentMediaType": "application/octet-stream"}}}},
                    "application/json": {"schema": _ref("AnalyzeUrl")},
                    "image/*": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}}},
                "responses": {"200": _json(_ref("Result"), "cached result (same bytes, same model)"),
                              "202": _json(_ref("Accepted"), "queued"),
                              **_errors(*_POSTED, "payload_too_large", "image_decode_failed", "url_not_allowed",
                                      "fetch_failed")}}},
            "/v1/scan": {"post": {
                "summary": "analyse every image of a crawled page as one batch job",
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("Scan")}}},
                "responses": {"202": _json(_ref("Accepted"), "queued"), **_errors(*_POSTED)}}},
            SCAN_BYTES_ENDPOINT: {"post": {
                "summary": "analyse archived image bytes (a crawl's) as one batch job, answered like /v1/scan",
                "description": f"one `image` part per image, at most {LIMITS['scan_images']} and the upload byte "
                               "limit in all; each part's file name is returned as its entry's `url`",
                "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                    "type": "object", "required": ["image"],
                    # One part is one image as much as a list of one: multipart cannot tell them apart.
                    "properties": {"image": {"anyOf": [_BINARY, {"type": "array", "minItems": 1,
                                                                 "maxItems": LIMITS["scan_images"],
                                                                 "items": _BINARY}]}}}}}},
                "responses": {"202": _json(_ref("Accepted"), "queued"), **_errors(*_POSTED, "payload_too_large")}}},
            "/v1/feedback": {"post": {
                "summary": "report a wrong verdict",
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("Feedback")}}},
                "responses": {"201": _json(_ref("FeedbackStored"), "stored"), **_errors(*_POSTED)}}},
            "/v1/heatmaps/{digest}/{sha256}.png": {"get": {
                "summary": "the head-1 mask as an RGBA PNG overlay at the image's size",
                "parameters": [{"name": "digest", "in": "path", "required": True, "schema": {"type": "string"}},
                               {"name": "sha256", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "PNG", "content": {"image/png": {}}},
                              **_errors("unauthorized", "not_found")}}},
            "/v1/model": {"get": {
                "summary": "the served model's manifest and its ONNX files by sha256 (for on-device clients)",
                "responses": {"200": {"description": "manifest and files", "content": {"application/json": {
                    "schema": {"type": "object", "required": ["manifest", "files"]}}}},
                              "304": {"description": "unchanged (If-None-Match)"}, **_errors("unauthorized")}}},
            "/v1/model/files/{sha256}": {"get": {
                "summary": "one ONNX file of the served model, by its sha256 (immutable)",
                "parameters": [{"name": "sha256", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "ONNX", "content": {"application/octet-stream": {}}},
                              **_errors("unauthorized", "not_found")}}},
            "/jobs/{job_id}": {
                "get": {"summary": "a job's status and result",
                        "parameters": [job_id, {"name": "wait", "in": "query", "required": False,
                                                "schema": {"type": "number", "minimum": 0,
                                                           "maximum": LIMITS["longpoll_seconds"]},
                                                "description": "long-poll: wait up to this many seconds for the job "
                                                               "to end (the server's default limit; outside it: 400)"}],
                        "responses": {"200": _json(_ref("Job"), "the job"),
                                      **_errors("bad_request", "unauthorized", "not_found")}},
                "delete": {"summary": "cancel a job that has not ended",
                           "description": "a cancel, not a deletion: the job stays readable (GET answers it with "
                                          "status `canceled`) until it expires like any ended job",
                           "parameters": [job_id],
                           "responses": {"200": _json(_ref("Job"), "canceled"),
                                         **_errors("unauthorized", "not_found", "conflict")}}},
            "/healthz": {"get": {"security": [], "responses": {"200": _json(_ref("Health"), "alive")}}},
            "/readyz": {"get": {"security": [], "responses": {"200": _json(_ref("Ready"), "ready"),
                                                              "503": _json(_ref("Ready"), "not ready")}}},
            "/metrics": {"get": {"security": [], "responses": {"200": {"description": "Prometheus text format",
                                                                       "content": {"text/plain": {}}}}}},
            "/v1/openapi.json": {"get": {"security": [], "responses": {"200": {"description": "this document",
                                                                               "content": {"application/json": {}}}}}},
        },
    }

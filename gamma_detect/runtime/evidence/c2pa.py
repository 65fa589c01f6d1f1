"""C2PA Content Credentials: the manifest store read and validated by c2pa-python, in a child process.

Why a child process: the native reader parses attacker-controlled JUMBF/CBOR, and a thread
with a timeout can abandon a runaway native call but never stop it or bound its memory. The
child gets an address-space and CPU limit (``resource.setrlimit``) before the library loads,
and the parent kills it at ``EvidenceConfig.c2pa_timeout_s``; a crash, a limit or a timeout
is one `error` item. The child costs a process start (~0.3 s, see the README), so it only
runs on files that contain the JUMBF label ``c2pa`` every embedded manifest store carries.
Remote manifests and OCSP are never fetched (the reader works offline).

Every manifest is walked, the ingredients' included (an AI marker often sits on a parent).
Validation: c2pa's state `Trusted` (the signer chains to the operator's trust anchors),
`Valid` (intact, signer not trusted) or `Invalid`; an invalid store whose failures include a
hash mismatch is reported as `tampered`. Only a valid store is believed (status `ok`).
"""

from __future__ import annotations

import importlib.util
import json
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

from . import sourcetypes
from .config import EvidenceConfig
from .items import Evidence, EvidenceError

CHILD = Path(__file__).with_name("c2pa_child.py")
MAX_MANIFESTS, MAX_ACTIONS = 16, 32
CLAIM_REASONS = ("ai_generated", "ai_edited", "capture")


def _settings(mime: str, config: EvidenceConfig) -> dict[str, Any]:
    c2pa: dict[str, Any] = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
    if config.trust_anchors is not None:
        c2pa["trust"] = {"trust_anchors": config.trust_anchors.read_text()}
        c2pa["verify"]["verify_trust"] = True
    return {"mime": mime, "memory_bytes": config.c2pa_memory_bytes,
            "cpu_seconds": max(1, int(config.c2pa_timeout_s) + 1), "c2pa": c2pa}


def read_store(data: bytes, mime: str, config: EvidenceConfig) -> dict[str, Any]:
    """The child's answer: {"store": <manifest store JSON> | None, "state": ...}; EvidenceError on any failure."""
    if importlib.util.find_spec("c2pa") is None:
        raise EvidenceError("c2pa_unavailable", "c2pa-python is not installed: pip install c2pa-python")
    settings = json.dumps(_settings(mime, config)).encode()
    try:
        done = subprocess.run([sys.executable, "-I", str(CHILD)], input=struct.pack(">I", len(settings)) + settings
                              + data, capture_output=True, timeout=config.c2pa_timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise EvidenceError("c2pa_timeout", f"the C2PA reader ran past {config.c2pa_timeout_s} s and was "
                            "stopped") from None
    if done.returncode != 0:
        last = (done.stderr.decode("utf-8", "replace").strip().splitlines() or ["no message"])[-1][:200]
        raise EvidenceError("c2pa_failed", f"the C2PA reader stopped with exit status {done.returncode} ({last})")
    answer = json.loads(done.stdout)
    if "error" in answer:
        raise EvidenceError("c2pa_failed", f"the C2PA manifest store could not be read ({answer['error']})")
    return answer


def _walk(store: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(role, manifest) for the active manifest, then its ingredients' manifests depth first, then any others."""
    manifests = store.get("manifests") or {}
    order: list[tuple[str, dict[str, Any]]] = []
    seen: set[str] = set()

    def visit(label: str | None, role: str) -> None:
        if not label or label in seen or label not in manifests or len(order) >= MAX_MANIFESTS:
            return
        seen.add(label)
        order.append((role, manifests[label]))
        for ingredient in manifests[label].get("ingredients") or []:
            visit(ingredient.get("active_manifest"), "ingredient")

    visit(store.get("active_manifest"), "active")
    for label in manifests:
        visit(label, "other")
    return order


def _agent(value: Any) -> str | None:
    return value.get("name") if isinstance(value, dict) else value


def _actions(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    actions = []
    for assertion in manifest.get("assertions") or []:
        if str(assertion.get("label", "")).startswith("c2pa.actions"):
            for action in (assertion.get("data") or {}).get("actions") or []:
                source = action.get("digitalSourceType")
                actions.append({"action": action.get("action"),
                                "digital_source_type": sourcetypes.term(source) if source else None,
                                "software_agent": _agent(action.get("softwareAgent"))})
    return actions[:MAX_ACTIONS]


def _claim(action: dict[str, Any]) -> str | None:
    """What one action claims: a model made the image, edited it, or a device captured it."""
    if not action["digital_source_type"]:
        return None
    reason = sourcetypes.reason(action["digital_source_type"])
    if reason == "ai_generated" and action["action"] != "c2pa.created":
        return "ai_edited"      # a model's output placed into or over an existing image
    return reason if reason in CLAIM_REASONS else None


def _generator(manifest: dict[str, Any]) -> str | None:
    info = manifest.get("claim_generator_info") or []
    if info and isinstance(info[0], dict) and info[0].get("name"):
        return " ".join(str(part) for part in (info[0]["name"], info[0].get("version")) if part)
    return manifest.get("claim_generator")


def _failures(store: dict[str, Any]) -> list[str]:
    results = store.get("validation_results") or {}
    entries = list((results.get("activeManifest") or {}).get("failure") or [])
    for delta in results.get("ingredientDeltas") or []:
        entries += (delta.get("validationDeltas") or {}).get("failure") or []
    return sorted({entry.get("code", "") for entry in entries} - {""})


def interpret(answer: dict[str, Any]) -> list[Evidence]:
    """The one `c2pa` item for a manifest store (none without one)."""
    store = answer.get("store")
    if not store:
        return []
    walked = _walk(store)
    manifests, claims, marker = [], set(), None
    for role, manifest in walked:
        actions = _actions(manifest)
        signature = manifest.get("signature_info") or {}
        own = {_claim(a) for a in actions} - {None}
        if own - {"capture"} and marker is None:
            marker = (manifest, next(a for a in actions if _claim(a) in ("ai_generated", "ai_edited")))
        claims |= own
        manifests.append({"label": manifest.get("label"), "role": role, "title": manifest.get("title"),
                          "claim_generator": _generator(manifest), "actions": actions,
                          "signer": {k: signature.get(k) for k in ("issuer", "common_name", "alg", "time")}})
    ai = claims & {"ai_generated", "ai_edited"}
    if ai and "capture" in claims:
        reason = "ai_edited"    # a captured photo with AI work somewhere in its chain
    elif ai:
        reason = "ai_generated" if "ai_generated" in ai else "ai_edited"
    else:
        reason = "capture" if "capture" in claims else "other"
    state = answer.get("state") or "Invalid"
    failures = _failures(store)
    believed = state in ("Valid", "Trusted")
    validation = "valid" if believed else ("tampered" if any("mismatch" in code for code in failures) else "invalid")
    trusted = state == "Trusted"
    active = walked[0][1] if walked else {}
    source_manifest, action = marker if marker else (active, {})
    generator = action.get("software_agent") or _generator(source_manifest) or "unknown software"
    issuer = (source_manifest.get("signature_info") or {}).get("issuer") or "an unknown signer"
    if reason in CLAIM_REASONS:
        strength = ("proof" if trusted else "strong") if believed else None
    else:
        strength = "weak" if believed else None
    verb = {"ai_generated": "made with", "ai_edited": "edited with", "capture": "captured with"}.get(reason, "by")
    summary = f"Content Credentials: {verb} {generator}, signed by {issuer}"
    if not believed:
        summary += f" ({validation}: not believed)"
    elif not trusted:
        summary += " (signer not on the configured trust list)"
    return [Evidence(source="c2pa", status="ok" if believed else "invalid", strength=strength, reason=reason,
                     summary=summary,
                     details={"validation_state": validation, "trusted": trusted, "failures": failures,
                              "generator": generator, "issuer": issuer, "manifests": manifests})]


def read(data: bytes, mime: str | None, config: EvidenceConfig) -> list[Evidence]:
    # Every embedded manifest store is a JUMBF box labelled "c2pa": without those bytes there is nothing to read.
    if mime is None or b"c2pa" not in data:
        return []
    return interpret(read_store(data, mime, config))

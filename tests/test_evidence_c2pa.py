"""C2PA Content Credentials on files signed in the tests: AI-generated, captured, edited, tampered, hostile."""

from __future__ import annotations

import pytest

pytest.importorskip("c2pa", reason="c2pa-python is a base dependency: pip install -e .")

from evidence_support import IPTC, created, encode, make_chain, sign, textured  # noqa: E402

from gamma_detect.runtime.evidence import Decision, EvidenceConfig, combine, read_evidence  # noqa: E402
from gamma_detect.runtime.evidence import c2pa as c2pa_reader  # noqa: E402

CONFIG = EvidenceConfig()


@pytest.fixture(scope="module")
def chain():
    return make_chain("Acme AI")


@pytest.fixture(scope="module")
def jpeg():
    return encode(textured(300, 300), "JPEG", quality=90)


@pytest.fixture(scope="module")
def ai_jpeg(chain, jpeg):
    return sign(jpeg, "image/jpeg", chain, [created("trainedAlgorithmicMedia", agent="Acme Diffusion 3")])


def only_c2pa(data: bytes, config: EvidenceConfig = CONFIG):
    items = [e for e in read_evidence(data, config) if e.source == "c2pa"]
    assert len(items) == 1, items
    return items[0]


def test_ai_generated_claim_from_an_untrusted_signer_is_strong(ai_jpeg):
    item = only_c2pa(ai_jpeg)
    assert (item.status, item.strength, item.reason) == ("ok", "strong", "ai_generated")
    assert item.details["validation_state"] == "valid" and item.details["trusted"] is False
    assert item.summary.startswith("Content Credentials: made with Acme Diffusion 3, signed by Acme AI Inc")
    assert combine("likely_real", [item]).verdict_reason == "c2pa:ai_generated"


def test_proof_only_when_the_signer_chains_to_a_configured_trust_anchor(tmp_path, chain, jpeg, ai_jpeg):
    anchors = tmp_path / "anchors.pem"
    anchors.write_bytes(chain.root)
    trusted = EvidenceConfig(trust_anchors=anchors)
    item = only_c2pa(ai_jpeg, trusted)
    assert (item.status, item.strength, item.details["trusted"]) == ("ok", "proof", True)
    stranger = sign(jpeg, "image/jpeg", make_chain("Stranger"), [created("trainedAlgorithmicMedia")])
    assert only_c2pa(stranger, trusted).strength == "strong"


def test_trust_anchor_setting_names_a_missing_file(monkeypatch, tmp_path):
    monkeypatch.setenv("GAMMA_C2PA_TRUST_ANCHORS", str(tmp_path / "missing.pem"))
    with pytest.raises(FileNotFoundError, match="PEM bundle"):
        EvidenceConfig.from_env()


def test_signed_capture_png_is_capture_evidence_that_keeps_pixels_from_ai(chain):
    png = sign(encode(textured(300, 300), "PNG"), "image/png", chain, [created("digitalCapture")], generator="CamFW")
    item = only_c2pa(png)
    assert (item.status, item.strength, item.reason) == ("ok", "strong", "capture")
    assert item.summary.startswith("Content Credentials: captured with CamFW 1.0")
    assert combine("ai", [item]) == Decision("uncertain", "capture_claim")


def test_ai_marker_on_an_ingredient_is_found(ai_jpeg):
    edited = sign(ai_jpeg, "image/jpeg", make_chain("Editor"), [], generator="PhotoEditor", ingredient=ai_jpeg)
    item = only_c2pa(edited)
    assert (item.reason, item.strength) == ("ai_generated", "strong")
    assert [m["role"] for m in item.details["manifests"]] == ["active", "ingredient"]
    assert "signed by Acme AI Inc" in item.summary     # the signer of the manifest that carries the marker


def test_ai_edit_of_a_captured_photo_is_ai_edited(chain, jpeg):
    capture = sign(jpeg, "image/jpeg", chain, [created("digitalCapture")])
    fill = {"action": "c2pa.edited", "digitalSourceType": IPTC + "trainedAlgorithmicMedia",
            "softwareAgent": {"name": "Generative Fill"}}
    item = only_c2pa(sign(capture, "image/jpeg", chain, [fill], ingredient=capture))
    assert (item.reason, item.strength) == ("ai_edited", "strong")
    assert item.summary.startswith("Content Credentials: edited with Generative Fill")
    assert combine("real", [item]).verdict_reason == "c2pa:ai_edited"


def test_tampered_file_is_reported_invalid_and_never_believed(ai_jpeg):
    tampered = bytearray(ai_jpeg)
    tampered[-200] ^= 0xFF            # a scan byte: the signed data hash no longer matches
    item = only_c2pa(bytes(tampered))
    assert (item.status, item.strength, item.details["validation_state"]) == ("invalid", None, "tampered")
    assert "assertion.dataHash.mismatch" in item.details["failures"]
    assert "not believed" in item.summary
    assert combine("likely_real", [item]).verdict == "likely_real"


def test_malformed_manifest_store_fails_as_one_item(ai_jpeg):
    start = ai_jpeg.index(b"c2pa")
    broken = ai_jpeg[:start + 40] + bytes(64) + ai_jpeg[start + 104:]   # zeros over the store's first boxes
    item = only_c2pa(broken)
    assert item.status in ("error", "invalid") and item.strength is None


def test_reader_past_its_time_limit_is_stopped(ai_jpeg):
    item = only_c2pa(ai_jpeg, EvidenceConfig(c2pa_timeout_s=0.01))
    assert (item.status, item.error) == ("error", "c2pa_timeout")


def test_reader_over_its_memory_limit_fails_clearly(ai_jpeg):
    item = only_c2pa(ai_jpeg, EvidenceConfig(c2pa_memory_bytes=32 << 20))
    assert (item.status, item.error) == ("error", "c2pa_failed")
    assert "exit status" in item.summary


def test_files_without_a_manifest_store_never_start_the_reader(monkeypatch, jpeg):
    monkeypatch.setattr(c2pa_reader.subprocess, "run", lambda *a, **k: pytest.fail("child started"))
    assert [e for e in read_evidence(jpeg, CONFIG) if e.source == "c2pa"] == []


def test_missing_c2pa_library_is_a_clear_error(monkeypatch, ai_jpeg):
    monkeypatch.setattr(c2pa_reader.importlib.util, "find_spec", lambda name: None)
    item = only_c2pa(ai_jpeg)
    assert item.error == "c2pa_unavailable" and "pip install c2pa-python" in item.summary

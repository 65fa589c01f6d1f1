"""`gamma predict --json` reads each file's original bytes: C2PA evidence moves the verdict, a tampered store does not."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("c2pa", reason="c2pa-python is a base dependency: pip install -e .")

from evidence_support import created, encode, make_chain, sign, textured  # noqa: E402

from gamma_detect.export.cli import predict_main  # noqa: E402


@pytest.fixture(scope="module")
def signed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("predict")
    plain = encode(textured(300, 300), "JPEG", quality=90)
    ai = sign(plain, "image/jpeg", make_chain("Acme AI"), [created("trainedAlgorithmicMedia", agent="Acme Gen")])
    tampered = bytearray(ai)
    tampered[-200] ^= 0xFF
    for name, data in (("plain.jpg", plain), ("ai.jpg", ai), ("tampered.jpg", bytes(tampered))):
        (folder / name).write_bytes(data)
    return folder


def predict(capsys, *paths) -> list[dict]:
    assert predict_main(["--json", *map(str, paths)]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_c2pa_signed_ai_image_says_ai_with_the_c2pa_reason(capsys, signed):
    plain, ai = predict(capsys, signed / "plain.jpg", signed / "ai.jpg")
    assert ai["ai_probability"] == plain["ai_probability"]       # the pixel score stays the pixels'
    assert (ai["verdict"], ai["verdict_reason"]) == ("ai", "c2pa:ai_generated")
    (item,) = ai["evidence"]
    assert (item["source"], item["status"], item["details"]["generator"]) == ("c2pa", "ok", "Acme Gen")


def test_tampered_image_reports_the_invalid_state_and_keeps_the_pixel_verdict(capsys, signed):
    plain, tampered = predict(capsys, signed / "plain.jpg", signed / "tampered.jpg")
    (item,) = tampered["evidence"]
    assert (item["status"], item["details"]["validation_state"]) == ("invalid", "tampered")
    assert (tampered["verdict"], tampered["verdict_reason"]) == (plain["verdict"], "pixels")


def test_missing_trust_anchor_file_stops_with_a_clear_message(capsys, monkeypatch, signed, tmp_path):
    monkeypatch.setenv("GAMMA_C2PA_TRUST_ANCHORS", str(tmp_path / "none.pem"))
    assert predict_main(["--json", str(signed / "ai.jpg")]) == 2
    assert "GAMMA_C2PA_TRUST_ANCHORS" in capsys.readouterr().err

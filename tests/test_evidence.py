"""The evidence reader on metadata (XMP/IPTC, EXIF, generator parameters), its limits, and the combination rule."""

from __future__ import annotations

import json
import logging
import struct
import zlib
from pathlib import Path

import pytest
from evidence_support import encode, textured, xmp_packet
from PIL import PngImagePlugin

from gamma_detect.runtime.evidence import (ERROR_CODES, VERDICT_REASONS, Decision, Evidence, EvidenceConfig,
                                           combine, read_evidence)

ASSETS = Path(__file__).parent / "assets" / "evidence"
CONFIG = EvidenceConfig()
SMALL = textured(64, 64)


def items(data: bytes, source: str, config: EvidenceConfig = CONFIG) -> list[Evidence]:
    return [e for e in read_evidence(data, config) if e.source == source]


def png_with_text(chunks: dict[str, str], itxt: dict[str, str] | None = None) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    for key, value in (itxt or {}).items():
        info.add_itxt(key, value)
    return encode(SMALL, "PNG", pnginfo=info)


@pytest.mark.parametrize("name, generator, model", [
    ("automatic1111_cropped.png", "AUTOMATIC1111", "realistic_realisticVisionV20_v20"),
    ("automatic1111_cropped.jpg", "AUTOMATIC1111", "realistic_realisticVisionV20_v20"),   # EXIF UserComment
    ("img2img_cropped.png", "ComfyUI", "v1-5-pruned-emaonly.ckpt"),
    ("fooocus1_cropped.png", "Fooocus", "juggernautXL_v8Rundiffusion"),
    ("invokeai_imeta1.png", "InvokeAI", "juggernautXL"),
    ("invokeai_sdmeta1.png", "InvokeAI", "deliberateForInvoke_v08"),
    ("invokeai_dream1.png", "InvokeAI", None),
    ("novelai1_cropped.png", "NovelAI", "Stable Diffusion"),
])
def test_generator_parameters_of_each_tool(name, generator, model):
    (item,) = items((ASSETS / "sd_parsers" / name).read_bytes(), "generator_parameters")
    assert (item.status, item.strength, item.reason) == ("ok", "strong", "ai_generated")
    assert item.details["generator"] == generator
    assert item.details["models"] == ([model] if model else [])
    assert item.summary == f"Generator parameters found: {generator}" + (f", model {model}" if model else "")
    assert item.private["prompt"]


def test_one_files_parameters_never_appear_on_the_next_file():
    # sd-parsers caches a JPEG's UserComment by id(image), and freed images' ids are reused.
    generated = (ASSETS / "sd_parsers" / "automatic1111_cropped.jpg").read_bytes()
    plain = encode(SMALL, "JPEG")
    leaked = 0
    for _ in range(50):
        assert items(generated, "generator_parameters")
        leaked += bool(items(plain, "generator_parameters"))
    assert leaked == 0


def test_forge_is_told_from_automatic1111():
    parameters = ("a lighthouse at dawn\nNegative prompt: blurry\nSteps: 20, Sampler: Euler, CFG scale: 7, "
                  "Seed: 1, Size: 64x64, Model hash: abc123, Model: flux1-dev, Version: f2.0.1v1.10.1")
    (item,) = items(png_with_text({"parameters": parameters}), "generator_parameters")
    assert (item.details["generator"], item.details["models"]) == ("Forge", ["flux1-dev"])


def test_comfyui_prompt_written_in_the_test():
    prompt = {"4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sdxl_base.safetensors"}},
              "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red fox in snow", "clip": ["4", 1]}},
              "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
              "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
              "3": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 20, "cfg": 7.0, "sampler_name": "euler",
                                                        "scheduler": "normal", "denoise": 1.0, "model": ["4", 0],
                                                        "positive": ["6", 0], "negative": ["7", 0],
                                                        "latent_image": ["5", 0]}},
              "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
              "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "ComfyUI"}}}
    # ComfyUI's SaveImage writes the API graph (`prompt`) and the editor graph (`workflow`, here just its links).
    links = []
    for node, spec in prompt.items():
        for name, value in spec["inputs"].items():
            if isinstance(value, list):   # [source node, output slot]
                links.append([len(links) + 1, int(value[0]), value[1], int(node), 0, name])
    chunks = {"prompt": json.dumps(prompt), "workflow": json.dumps({"links": links})}
    (item,) = items(png_with_text(chunks), "generator_parameters")
    assert (item.details["generator"], item.details["models"]) == ("ComfyUI", ["sdxl_base.safetensors"])
    assert "a red fox in snow" in item.private["prompt"]


def test_prompts_are_returned_but_never_in_repr_or_logs(caplog):
    data = (ASSETS / "sd_parsers" / "automatic1111_cropped.png").read_bytes()
    with caplog.at_level(logging.DEBUG):
        found = read_evidence(data, CONFIG)
        logging.getLogger("test").info("evidence %s", found)
    (item,) = [e for e in found if e.source == "generator_parameters"]
    assert "photo of a duck" in item.to_dict()["private"]["prompt"]
    assert "duck" not in repr(item) and "duck" not in caplog.text
    json.dumps([e.to_dict() for e in found])   # JSON-serialisable as the API returns it


@pytest.mark.parametrize("fields, reason, strength", [
    ('Iptc4xmpExt:DigitalSourceType="http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia">',
     "ai_generated", "strong"),
    ('><Iptc4xmpExt:DigitalSourceType rdf:resource='
     '"https://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"/>', "ai_edited", "strong"),
    ('><Iptc4xmpExt:DigitalSourceType>http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture'
     '</Iptc4xmpExt:DigitalSourceType>', "capture", "weak"),    # unsigned: anybody can write it
    ('xmp:CreatorTool="Photo Editor 5">', "software", "weak"),
])
def test_xmp_source_type_in_jpeg(fields, reason, strength):
    (item,) = items(encode(SMALL, "JPEG", xmp=xmp_packet(fields)), "xmp")
    assert (item.status, item.reason, item.strength) == ("ok", reason, strength)


def test_xmp_in_png_itxt_with_ai_prompt_kept_private():
    packet = xmp_packet('Iptc4xmpExt:DigitalSourceType="trainedAlgorithmicMedia" '
                        'Iptc4xmpExt:AISystemUsed="Acme Image 2" Iptc4xmpExt:AIPromptInformation="a secret cat">')
    (item,) = items(png_with_text({}, {"XML:com.adobe.xmp": packet.decode()}), "xmp")
    assert (item.reason, item.details["AISystemUsed"]) == ("ai_generated", "Acme Image 2")
    assert item.private == {"AIPromptInformation": "a secret cat"} and "secret" not in repr(item)
    assert combine("real", [item]) == Decision("ai", "xmp:ai_generated")


def test_oversized_xmp_packet_fails_that_item_only():
    packet = xmp_packet('Iptc4xmpExt:DigitalSourceType="trainedAlgorithmicMedia" xmp:Label="'
                        + "x" * (2 << 20) + '">')
    found = read_evidence(png_with_text({}, {"XML:com.adobe.xmp": packet.decode()}), CONFIG)
    (item,) = [e for e in found if e.source == "xmp"]
    assert (item.status, item.error) == ("error", "xmp_too_large")
    assert combine("likely_real", found) == Decision("likely_real", "pixels")


def test_xmp_with_an_entity_declaration_is_refused_before_parsing():
    bomb = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
            b'<x:xmpmeta xmlns:x="adobe:ns:meta/">&b;</x:xmpmeta>')
    (item,) = items(encode(SMALL, "JPEG", xmp=bomb), "xmp")
    assert (item.status, item.error) == ("error", "xmp_malformed")


def test_camera_exif_is_shown_and_never_makes_a_verdict_real():
    found = read_evidence((ASSETS / "piexif" / "r_canon.jpg").read_bytes(), CONFIG)
    (camera,) = [e for e in found if e.reason == "camera_exif"]
    assert (camera.strength, camera.summary) == ("weak", "Camera: Canon PowerShot G1 X Mark II (not proof)")
    for pixel_verdict in ("ai", "likely_ai", "uncertain"):
        assert combine(pixel_verdict, found) == Decision(pixel_verdict, "pixels")


def test_exif_software_tag_is_weak():
    found = items((ASSETS / "piexif" / "r_sigma.jpg").read_bytes(), "exif")
    assert {(e.reason, e.strength) for e in found} == {("camera_exif", "weak"), ("software", "weak")}
    assert "Software: SIGMA Photo Pro" in " ".join(e.summary for e in found)


def png_chunks(*chunks: tuple[bytes, bytes]) -> bytes:
    """A PNG of SMALL with extra raw chunks inserted after IHDR (length field as given by the data)."""
    data = encode(SMALL, "PNG")
    extra = b"".join(struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
                     for kind, body in chunks)
    return data[:33] + extra + data[33:]


@pytest.mark.parametrize("data, code", [
    (png_chunks(*[(b"tEXt", b"k%d\x00v" % i) for i in range(3000)]), "png_too_many_chunks"),
    (png_chunks((b"tEXt", b"parameters\x00" + b"x" * (5 << 20))), "png_chunk_too_large"),
    (encode(SMALL, "PNG")[:33] + struct.pack(">I", 0x7FFFFFF0) + b"tEXt" + b"short", "png_malformed"),
])
def test_hostile_png_text_chunks_fail_the_metadata_item_and_nothing_else(data, code):
    found = read_evidence(data, CONFIG)
    (item,) = [e for e in found if e.source == "metadata"]
    assert (item.status, item.error) == ("error", code)
    assert not [e for e in found if e.source in ("xmp", "exif", "generator_parameters")]
    assert combine("uncertain", found) == Decision("uncertain", "pixels")


def test_file_over_the_byte_cap_is_not_parsed():
    (item,) = read_evidence(encode(SMALL, "PNG"), EvidenceConfig(max_bytes=100))
    assert (item.source, item.error) == ("file", "file_too_large")


def test_garbage_bytes_fail_each_reader_clearly():
    found = read_evidence(b"c2pa" + bytes(range(256)) * 4, CONFIG)
    assert {(e.source, e.error) for e in found} == {("metadata", "metadata_unreadable"),
                                                   ("watermark", "watermark_failed")}
    assert all(e.summary for e in found)


def test_plain_photo_has_no_evidence():
    assert read_evidence(encode(textured(300, 300), "JPEG", quality=90), CONFIG) == []


def test_combination_rule_ranks_proof_then_generated_then_source_order():
    def item(source, strength, reason, status="ok"):
        return Evidence(source=source, status=status, strength=strength, reason=reason)
    watermark = item("watermark", "strong", "ai_generated")
    edit_proof = item("c2pa", "proof", "ai_edited")
    xmp_generated = item("xmp", "strong", "ai_generated")
    assert combine("real", [watermark, xmp_generated]).verdict_reason == "xmp:ai_generated"
    assert combine("real", [watermark, edit_proof]) == Decision("ai", "c2pa:ai_edited")
    assert combine("real", [item("xmp", "weak", "capture"), item("exif", "weak", "software")]).verdict == "real"
    invalid_capture = item("c2pa", None, "capture", status="invalid")
    assert combine("ai", [invalid_capture]) == Decision("ai", "pixels")
    assert {combine("ai", [e]).verdict_reason for e in (watermark, edit_proof, xmp_generated)} <= set(VERDICT_REASONS)


def test_every_error_code_has_a_test_or_a_reason():
    # The codes this module and tests/test_evidence_c2pa.py exercise: a new code needs a test too.
    tested = {"file_too_large", "png_malformed", "png_too_many_chunks", "png_chunk_too_large", "xmp_too_large",
              "xmp_malformed", "metadata_unreadable", "c2pa_timeout", "c2pa_failed", "c2pa_unavailable",
              "watermark_failed"}
    assert set(ERROR_CODES) == tested


def test_watermark_check_skips_images_over_its_pixel_cap():
    (item,) = items(encode(textured(600, 600), "PNG"), "watermark", EvidenceConfig(watermark_max_pixels=1000))
    assert item.error == "watermark_failed" and "pixel limit" in item.summary


def test_supplied_pixels_spare_the_second_decode(monkeypatch):
    from gamma_detect.runtime.evidence import reader
    monkeypatch.setattr(reader, "_pixels", lambda *a: pytest.fail("decoded again"))
    rgb = textured(300, 300)
    assert read_evidence(encode(rgb, "PNG"), CONFIG, rgb=rgb) == []


def test_png_exactly_at_the_caps_still_parses_and_one_byte_over_does_not():
    text = "a cat\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 64x64"
    data = png_with_text({"parameters": text})
    size = len("parameters\x00" + text)
    at_limit = EvidenceConfig(max_text_chunks=1, max_text_chunk_bytes=size)
    assert [e.source for e in read_evidence(data, at_limit)] == ["generator_parameters"]
    over = EvidenceConfig(max_text_chunks=1, max_text_chunk_bytes=size - 1)
    assert [e.error for e in read_evidence(data, over)] == ["png_chunk_too_large"]


def test_decoded_pixels_are_reused_only_at_full_size_and_within_the_watermark_limit():
    from gamma_detect.runtime.evidence import reusable_pixels

    rgb = textured(200, 300)
    assert reusable_pixels(rgb, (200, 300), CONFIG) is rgb
    assert reusable_pixels(rgb, (400, 600), CONFIG) is None           # a DCT-reduced decode of a larger JPEG
    assert reusable_pixels(rgb, (200, 300), EvidenceConfig(watermark_max_pixels=300 * 200 - 1)) is None

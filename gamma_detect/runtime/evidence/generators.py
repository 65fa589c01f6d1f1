"""Generator parameters in the file's metadata (PNG text chunks, EXIF UserComment), parsed by sd-parsers.

sd-parsers (MIT, Pillow only) recognises AUTOMATIC1111/Forge (`parameters`), ComfyUI
(`prompt`/`workflow` JSON), Fooocus, InvokeAI and NovelAI. It is run at its FAST effort:
Pillow's header info only, so no pixel is decoded (the alpha-channel "stealth" metadata of
some A1111 extensions is not read). Prompts go to ``private``: returned, never logged.
"""

from __future__ import annotations

import threading

from PIL import Image
from sd_parsers import ParserManager
from sd_parsers.extractors import Eagerness, _jpeg_usercomment

from .items import Evidence

MAX_PROMPT_CHARS = 4000
_PARSERS = ParserManager(eagerness=Eagerness.FAST)
_LOCK = threading.Lock()


def read(image: Image.Image) -> list[Evidence]:
    with _LOCK:
        # sd-parsers 0.6 keeps the last JPEG's UserComment in a module global keyed by id(image): ids are reused
        # once an image is freed, and worker threads share it, so one file's prompt could show on another's
        # result (tests/test_evidence.py). Every parse starts from a cleared cache, one at a time.
        _jpeg_usercomment._image_id = None
        info = _PARSERS.parse(image)
    if info is None:
        return []
    generator = info.generator.value
    if generator == "AUTOMATIC1111" and str(info.metadata.get("Version", "")).startswith("f"):
        generator = "Forge"   # Forge writes A1111's format with its own "Version: f2..." tag
    models = sorted({m.name or m.hash for m in info.models if m.name or m.hash})
    sampler = next(iter(info.samplers), None)
    details = {"generator": generator, "models": models,
               "sampler": sampler.name if sampler else None,
               "parameters": {k: v for k, v in (sampler.parameters.items() if sampler else ())
                              if isinstance(v, (int, float, str)) and len(str(v)) <= 200}}
    private = {"prompt": info.full_prompt[:MAX_PROMPT_CHARS],
               "negative_prompt": info.full_negative_prompt[:MAX_PROMPT_CHARS]}
    model_text = f", model {', '.join(models)}" if models else ""
    return [Evidence(source="generator_parameters", status="ok", strength="strong", reason="ai_generated",
                     summary=f"Generator parameters found: {generator}{model_text}",
                     details=details, private=private)]

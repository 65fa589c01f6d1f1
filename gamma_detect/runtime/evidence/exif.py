"""EXIF Make/Model and Software: shown to people, never trusted (any tool can write them, and many strip them)."""

from __future__ import annotations

from PIL import Image

from .items import Evidence

MAKE, MODEL, SOFTWARE = 0x010F, 0x0110, 0x0131
MAX_CHARS = 200


def _text(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value).replace("\x00", "").strip()[:MAX_CHARS] if value is not None else ""


def read(image: Image.Image) -> list[Evidence]:
    exif = image.getexif()   # the header's EXIF block only: no pixel is decoded
    make, model, software = (_text(exif.get(tag)) for tag in (MAKE, MODEL, SOFTWARE))
    items = []
    if make or model:
        # Many makers repeat the make in the model ("Canon" + "Canon EOS 70D"): show it once.
        camera = model if make and model.lower().startswith(make.lower().split()[0]) else f"{make} {model}".strip()
        items.append(Evidence(source="exif", status="ok", strength="weak", reason="camera_exif",
                              summary=f"Camera: {camera} (not proof)", details={"make": make, "model": model}))
    if software:
        items.append(Evidence(source="exif", status="ok", strength="weak", reason="software",
                              summary=f"Software: {software} (not proof)", details={"software": software}))
    return items

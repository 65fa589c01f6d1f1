"""The result cache: keyed by the image's sha256 and the model's digest, so a model update never
serves an old model's result; plus a short-lived URL -> sha256 map, so a popular image URL is
fetched and analysed once, and in-flight markers, so concurrent requests for one image share a job.

Keys (under the configured prefix)::

    model                      the active model record (written by workers)
    result:<digest>:<sha256>   result JSON (without the per-request `path` and `cached`)   cache TTL
    heatmap:<digest>:<sha256>  head-1 mask, uint8 PNG at <= GAMMA_HEATMAP_SIDE             cache TTL
    url:<sha256(url)>          the image sha256 that URL served                            URL TTL
    inflight:<digest>:<sha256> / inflight-url:<digest>:<sha256(url)>   job id              job lifetime
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import cv2
import numpy as np

from gamma_detect.contract import HEATMAP_MAX_ALPHA, PREDICT_FIELDS

from .config import Settings

# One round trip for the hot path: active model, URL -> sha256, cached result, in-flight job.
_LOOKUP = """
local prefix = ARGV[1]
local sha = ARGV[2]
local urlhash = ARGV[3]
local model = redis.call('GET', prefix .. ':model')
if sha == '' and urlhash ~= '' then
  sha = redis.call('GET', prefix .. ':url:' .. urlhash) or ''
end
if not model then return {'', sha, '', ''} end
local digest = cjson.decode(model)['digest'] or ''
local result = ''
local inflight = ''
if sha ~= '' then
  result = redis.call('GET', prefix .. ':result:' .. digest .. ':' .. sha) or ''
  if result == '' then inflight = redis.call('GET', prefix .. ':inflight:' .. digest .. ':' .. sha) or '' end
end
if result == '' and inflight == '' and urlhash ~= '' then
  inflight = redis.call('GET', prefix .. ':inflight-url:' .. digest .. ':' .. urlhash) or ''
end
return {model, sha, result, inflight}
"""


@dataclass
class Lookup:
    model: dict | None
    sha256: str
    result: dict | None
    inflight_job: str | None

    @property
    def digest(self) -> str | None:
        return self.model.get("digest") if self.model else None


def url_hash(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()


class Cache:
    def __init__(self, connection, settings: Settings):
        self.connection = connection
        self.settings = settings
        self._lookup = connection.register_script(_LOOKUP)

    def lookup(self, *, sha256: str = "", url: str = "") -> Lookup:
        prefix = self.settings.redis_prefix.rstrip(":")
        model, sha, result, inflight = self._lookup(keys=[], args=[prefix, sha256, url_hash(url) if url else ""])
        as_text = lambda v: v.decode() if isinstance(v, bytes) else v  # noqa: E731
        model, sha, result, inflight = map(as_text, (model, sha, result, inflight))
        return Lookup(json.loads(model) if model else None, sha or "",
                      json.loads(result) if result else None, inflight or None)

    def model(self) -> dict | None:
        raw = self.connection.get(self.settings.key("model"))
        return json.loads(raw) if raw else None

    def heatmap(self, digest: str, sha256: str) -> tuple[bytes | None, dict | None]:
        with self.connection.pipeline(transaction=False) as pipe:
            pipe.get(self.settings.key("heatmap", digest, sha256))
            pipe.get(result_key(self.settings, digest, sha256))
            mask, result = pipe.execute()
        return mask, (json.loads(result) if result else None)


def result_key(settings: Settings, digest: str, sha256: str) -> str:
    """Where the result of an image (its bytes' sha256) under a model (its digest) is kept."""
    return settings.key("result", digest, sha256)


def heatmap_path(digest: str, sha256: str) -> str:
    return f"/v1/heatmaps/{digest}/{sha256}.png"


def make_result(core: dict, *, model: dict, image: dict, timings: dict) -> dict:
    """The cached form of a result: the predict fields (less `path`), then model, image, heatmap, timings."""
    result = {k: core[k] for k in PREDICT_FIELDS if k in core and k != "path"}
    result.update({k: v for k, v in core.items() if k not in result and k != "path"})
    result["model"] = model
    result["image"] = image
    result["heatmap_url"] = heatmap_path(model["digest"], image["sha256"])
    result["timings"] = timings
    return result


def with_request(result: dict, *, path: str | None, cached: bool) -> dict:
    """A result as the API returns it: `path` first (as `gamma predict --json`), `cached` last."""
    out = {"path": path}
    out.update({k: v for k, v in result.items() if k not in ("path", "cached")})
    out["cached"] = cached
    return out


def store(connection, settings: Settings, result: dict, heatmap: bytes, url: str | None = None) -> None:
    digest, sha = result["model"]["digest"], result["image"]["sha256"]
    stored = {k: v for k, v in result.items() if k not in ("path", "cached")}
    with connection.pipeline(transaction=True) as pipe:
        pipe.set(result_key(settings, digest, sha), json.dumps(stored, separators=(",", ":")), ex=settings.cache_ttl)
        pipe.set(settings.key("heatmap", digest, sha), heatmap, ex=settings.cache_ttl)
        if url:
            pipe.set(settings.key("url", url_hash(url)), sha, ex=min(settings.url_ttl, settings.cache_ttl))
        pipe.execute()


# --------------------------------------------------------------------------- heatmaps
def encode_mask(mask: np.ndarray, max_side: int) -> bytes:
    """The head-1 mask (HxW float in [0, 1]) as a compact uint8 PNG, longest side at most max_side."""
    mask = np.asarray(mask, dtype=np.float32)
    if mask.ndim == 3:
        mask = mask[..., 0]
    height, width = mask.shape
    scale = min(1.0, max_side / max(height, width))
    if scale < 1.0:
        mask = cv2.resize(mask, (max(1, round(width * scale)), max(1, round(height * scale))),
                          interpolation=cv2.INTER_AREA)
    ok, png = cv2.imencode(".png", np.clip(mask * 255 + 0.5, 0, 255).astype(np.uint8))
    assert ok
    return png.tobytes()


def render_overlay(mask_png: bytes, width: int, height: int) -> bytes:
    """An RGBA PNG at the image's size: transparent where the mask is 0, yellow to red, more opaque as it rises."""
    mask = cv2.imdecode(np.frombuffer(mask_png, np.uint8), cv2.IMREAD_GRAYSCALE)
    if mask.shape != (height, width):
        mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_LINEAR)
    m = mask.astype(np.uint16)
    bgra = np.empty((height, width, 4), np.uint8)
    bgra[..., 0] = 0
    bgra[..., 1] = (255 - m).astype(np.uint8)           # green fades: yellow -> red
    bgra[..., 2] = 255
    bgra[..., 3] = (m * HEATMAP_MAX_ALPHA // 255).astype(np.uint8)    # at most ~70 % opaque
    ok, png = cv2.imencode(".png", bgra, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    assert ok
    return png.tobytes()

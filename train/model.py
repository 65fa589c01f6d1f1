"""GAMMA: one classification head, two segmentation heads, reverse cross-attention.

Tensor flow for a 224x224 input (B = batch, D = decoder width, T = token grid):

    image (B,3,224,224) in [-1,1]
      -> backbone -> C3 (B,40,28,28), C4 (B,112,14,14), C5 (B,320,7,7), pooled (B,1280)
      -> FPN      -> P (B,D,28,28)
      -> head 1   -> mask logits   (B,1,28,28)  pixel is not authentic
      -> head 2   -> source logits (B,5,28,28)  authentic/generated/inpainted/copy-moved/spliced
      -> tokens: pool [P, head-1 logits, head-2 logits] to TxT -> (B,T*T,D) keys/values
      -> queries: [pooled projection, K learned tokens] (B,1+K,D)
      -> multi-head cross-attention + residual, MLP + residual
      -> classification head -> correction (B,)
    logit = global head(pooled, or [GAP(C3), GAP(C4), GAP(C5), pooled] with global_features="multiscale")
            + correction

The maps stay at the decoder's stride (8): that is all the detail they hold. The
loss upsamples them to the label masks (``upsample``); a runtime upsamples them
while it stitches the crops back at the working resolution.

The classification branch queries the segmentation evidence, so what the
localisation finds corrects the global decision: the global head is a linear
decision on the pooled feature (fitted in closed form, see ``probe.py``) and
the attention branch adds a learned correction to it. The ablation switches
(``global_head``, ``seg_heads``, ``reverse_attention``) remove parts without
changing the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..contract import SOURCE_CLASSES
from .backbones import create_backbone

NUM_SOURCES = len(SOURCE_CLASSES)
MAP_STRIDE = 8  # the FPN returns the backbone's stride-8 level; both heads predict at that resolution


@dataclass
class ModelConfig:
    backbone: str = "efficientnet_lite0"
    pretrained: bool = True
    backbone_weights: str | None = None
    decoder_dim: int = 96
    attention_dim: int = 128
    attention_heads: int = 4
    learned_tokens: int = 4
    token_grid: int = 14
    dropout: float = 0.1
    global_head: bool = True
    # What the global head reads: "pooled" (the last block's pooled feature) or "multiscale"
    # (the global average of the stride-8/16/32 maps beside it: traces live at every scale).
    global_features: str = "pooled"
    seg_heads: bool = True
    reverse_attention: bool = True

    def __post_init__(self) -> None:
        if self.global_features not in ("pooled", "multiscale"):
            raise ValueError(f"global_features must be 'pooled' or 'multiscale', not {self.global_features!r}")
        if self.reverse_attention and not self.seg_heads:
            raise ValueError("reverse_attention needs seg_heads: it attends over the segmentation features")


@dataclass
class GammaOutput:
    logit: torch.Tensor                    # (B,)
    mask_logits: torch.Tensor | None       # (B,1,H/8,W/8)
    source_logits: torch.Tensor | None     # (B,5,H/8,W/8)


class FPN(nn.Module):
    """Light top-down feature pyramid; returns the stride-8 map."""

    def __init__(self, in_channels: tuple[int, int, int], dim: int):
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, dim, 1) for c in in_channels)
        self.smooth = nn.Sequential(
            nn.Conv2d(dim, dim, 3, padding=1, groups=dim, bias=False),
            nn.Conv2d(dim, dim, 1, bias=False),
            nn.BatchNorm2d(dim),
            nn.ReLU(inplace=True),
        )

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        x = self.lateral[2](feats[2])
        for level in (1, 0):
            lateral = self.lateral[level](feats[level])
            x = lateral + F.interpolate(x, size=lateral.shape[-2:], mode="bilinear", align_corners=False)
        return self.smooth(x)


class SegHead(nn.Module):
    def __init__(self, dim: int, classes: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(dim, dim, 3, padding=1, bias=False), nn.BatchNorm2d(dim), nn.ReLU(inplace=True),
            nn.Conv2d(dim, classes, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class ReverseCrossAttention(nn.Module):
    """Classification tokens attend over pooled segmentation tokens."""

    def __init__(self, pooled_dim: int, key_dim: int, cfg: ModelConfig):
        super().__init__()
        d = cfg.attention_dim
        self.grid = cfg.token_grid
        self.query_proj = nn.Linear(pooled_dim, d)
        self.learned = nn.Parameter(torch.randn(1, cfg.learned_tokens, d) * 0.02)
        self.key_proj = nn.Linear(key_dim, d)
        self.position = nn.Parameter(torch.randn(1, cfg.token_grid ** 2, d) * 0.02)
        self.norm_q = nn.LayerNorm(d)
        self.norm_kv = nn.LayerNorm(d)
        self.attention = nn.MultiheadAttention(d, cfg.attention_heads, dropout=cfg.dropout, batch_first=True)
        self.norm_mlp = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Dropout(cfg.dropout), nn.Linear(2 * d, d))
        self.out_norm = nn.LayerNorm(d)
        self.out_dim = d

    def forward(self, pooled: torch.Tensor, seg_features: torch.Tensor) -> torch.Tensor:
        tokens = F.adaptive_avg_pool2d(seg_features, self.grid).flatten(2).transpose(1, 2)
        kv = self.norm_kv(self.key_proj(tokens) + self.position)
        q = torch.cat([self.query_proj(pooled)[:, None], self.learned.expand(pooled.shape[0], -1, -1)], 1)
        q = q + self.attention(self.norm_q(q), kv, kv, need_weights=False)[0]
        q = q + self.mlp(self.norm_mlp(q))
        return self.out_norm(q).mean(1)


class GammaModel(nn.Module):
    def __init__(self, cfg: ModelConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or ModelConfig()
        self.backbone = create_backbone(cfg.backbone, cfg.pretrained, cfg.backbone_weights)
        cls_dim = self.backbone.pooled_channels
        if cfg.seg_heads:
            self.decoder = FPN(self.backbone.channels, cfg.decoder_dim)
            self.mask_head = SegHead(cfg.decoder_dim, 1)
            self.source_head = SegHead(cfg.decoder_dim, NUM_SOURCES)
        if cfg.reverse_attention:
            self.reverse_attention = ReverseCrossAttention(cls_dim, cfg.decoder_dim + 1 + NUM_SOURCES, cfg)
            cls_dim = self.reverse_attention.out_dim
        self.classifier = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(cls_dim, 1))
        if cfg.global_head:
            # The global decision; the classifier above then learns a correction, starting from none.
            extra = sum(self.backbone.channels) if cfg.global_features == "multiscale" else 0
            self.global_head = nn.Linear(extra + self.backbone.pooled_channels, 1)
            nn.init.zeros_(self.classifier[1].weight)
            nn.init.zeros_(self.classifier[1].bias)

    def forward(self, x: torch.Tensor) -> GammaOutput:
        feats, pooled = self.backbone.forward_features(x)
        mask_logits = source_logits = None
        cls_feature = pooled
        if self.cfg.seg_heads:
            decoded = self.decoder(feats)
            mask_logits = self.mask_head(decoded)
            source_logits = self.source_head(decoded)
            if self.cfg.reverse_attention:
                cls_feature = self.reverse_attention(pooled, torch.cat([decoded, mask_logits, source_logits], 1))
        logit = self.classifier(cls_feature)
        if self.cfg.global_head:
            logit = logit + self.global_head(self.global_feature(feats, pooled))
        return GammaOutput(logit.squeeze(1), mask_logits, source_logits)

    def global_feature(self, feats: list[torch.Tensor], pooled: torch.Tensor) -> torch.Tensor:
        """The global head's input (the same row `features.Lite0Features` caches for the probe)."""
        if self.cfg.global_features == "pooled":
            return pooled
        return torch.cat([*(m.mean((2, 3)) for m in feats), pooled], 1)


def upsample(logits: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """Stride-8 map logits at ``size`` (bilinear, half-pixel centres: what OpenCV's INTER_LINEAR does too)."""
    return F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)

"""Multi-task loss: BCE on the image logit, BCE + Dice on head 1, cross-entropy on head 2."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..contract import SOURCE_CLASSES
from .config import LossConfig
from .model import GammaOutput, upsample


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0,
              weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean Dice loss over the samples (``weight``: per sample, e.g. 0 to leave one out)."""
    prob = logits.sigmoid().flatten(1)
    target = target.flatten(1)
    inter = (prob * target).sum(1)
    per_sample = 1 - (2 * inter + eps) / (prob.sum(1) + target.sum(1) + eps)
    return _weighted_mean(per_sample, weight)


def _weighted_mean(values: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    if weight is None:
        return values.mean()
    return (values * weight).sum() / weight.sum().clamp(min=1e-6)


def mask_target(batch: dict[str, torch.Tensor], cfg: LossConfig) -> torch.Tensor:
    """Head 1's target (B, 1, H, W): the manipulation mask, or only its generated pixels (``cfg.mask_marks``)."""
    if cfg.mask_marks == "manipulated":
        return batch["mask"]
    return (batch["sources"] == SOURCE_CLASSES.index("generated")).to(batch["mask"].dtype)[:, None]


def label_target(batch: dict[str, torch.Tensor], cfg: LossConfig) -> torch.Tensor:
    """The image label (B,): manipulated at all, or, with ``mask_marks="generated"``, holding generated pixels (a
    whole AI image's are all generated), so a real photo spliced into a real photo is not AI content."""
    if cfg.mask_marks == "manipulated":
        return batch["label"]
    return mask_target(batch, cfg).flatten(1).amax(1)


def gamma_loss(out: GammaOutput, batch: dict[str, torch.Tensor], cfg: LossConfig) -> dict[str, torch.Tensor]:
    """Returns each term and their weighted ``total``; segmentation terms only when the heads exist."""
    terms = {"cls": F.binary_cross_entropy_with_logits(out.logit.float(), label_target(batch, cfg))}
    total = cfg.cls_weight * terms["cls"]
    if out.mask_logits is not None:
        size = batch["mask"].shape[-2:]
        mask_logits = upsample(out.mask_logits.float(), size)
        weight = None if cfg.whole_ai_mask or "whole_ai" not in batch else 1.0 - batch["whole_ai"]
        target = mask_target(batch, cfg)
        bce = F.binary_cross_entropy_with_logits(mask_logits, target, reduction="none").flatten(1).mean(1)
        terms["mask"] = _weighted_mean(bce, weight)
        terms["dice"] = dice_loss(mask_logits, target, weight=weight)
        terms["source"] = F.cross_entropy(upsample(out.source_logits.float(), size), batch["sources"])
        total = total + cfg.mask_weight * terms["mask"] + cfg.dice_weight * terms["dice"] \
            + cfg.source_weight * terms["source"]
    terms["total"] = total
    return terms

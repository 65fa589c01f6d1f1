"""Multi-task loss: BCE on the image logit, BCE + Dice on head 1, cross-entropy on head 2."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .config import LossConfig
from .model import GammaOutput, upsample


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    prob = logits.sigmoid().flatten(1)
    target = target.flatten(1)
    inter = (prob * target).sum(1)
    return (1 - (2 * inter + eps) / (prob.sum(1) + target.sum(1) + eps)).mean()


def gamma_loss(out: GammaOutput, batch: dict[str, torch.Tensor], cfg: LossConfig) -> dict[str, torch.Tensor]:
    """Returns each term and their weighted ``total``; segmentation terms only when the heads exist."""
    terms = {"cls": F.binary_cross_entropy_with_logits(out.logit.float(), batch["label"])}
    total = cfg.cls_weight * terms["cls"]
    if out.mask_logits is not None:
        size = batch["mask"].shape[-2:]
        mask_logits = upsample(out.mask_logits.float(), size)
        terms["mask"] = F.binary_cross_entropy_with_logits(mask_logits, batch["mask"])
        terms["dice"] = dice_loss(mask_logits, batch["mask"])
        terms["source"] = F.cross_entropy(upsample(out.source_logits.float(), size), batch["sources"])
        total = total + cfg.mask_weight * terms["mask"] + cfg.dice_weight * terms["dice"] \
            + cfg.source_weight * terms["source"]
    terms["total"] = total
    return terms

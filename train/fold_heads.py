"""The decoder, heads and reverse cross-attention trained once per outer fold of the local-edit protocol.

With the released checkpoint's heads, every map the protocol reads came from heads trained on every starter
photo and family: the map evidence was not held out. Here each outer fold trains its own (backbone frozen, as
in the release; stage 2 only), on that fold's training photos and families alone:

- the synthetic manipulations of the release (inpainting, copy-move, splicing, AI patches of views);
- the protocol's own local edits of whole training photos with regions of training AI images, processed like
  a phone or a web page would (``AugmentConfig.local_edit_share``), and the same photos processed without an
  edit as hard negatives for head 1 (``processed_share``);
- the attention's correction of the view logit (``train_correction``), against the fold's own probe as the
  global head (``loso.nested_fit`` on the training records: what the protocol then scores with).

Fold ``k``'s model gives the maps and corrections of fold ``k``'s images (held-out photos, their edits and
controls, the AI images of its families): outputs no head saw in training. Every fold's fit of the light
parameters (fusion weights, bands, the map's level) then reads each training image's outputs from *its own*
fold's model (cross-fitting): scores the model that produced them did not train on. That model did see the
outer fold's images in training; no light parameter is fitted on an outer fold's own images.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..crops import CropPolicy
from .config import TrainConfig, apply_overrides, load_preset
from .data import ImageCache
from .loso import LosoConfig, Probe, fold_seed, nested_fit, outer_folds, photo_units
from .region_outputs import RegionOutputs
from .sources import ImageRecord
from .trainer import load_model, save_checkpoint, train

# What each fold's heads train with, over the starter preset (``FusionConfig.head_recipe`` overrides it).
HEAD_RECIPE = ("augment.local_edit_share=0.5", "augment.processed_share=0.25", "train_correction=true")


def train_fold_heads(records: Sequence[ImageRecord], probe: Probe, policy: CropPolicy, cfg: LosoConfig,
                     recipe: Sequence[str], seed: int, out_dir: str | Path, cache_root: str | Path,
                     progress: bool = True) -> list[RegionOutputs]:
    """One model per outer fold of ``seed`` (resumed where a fold's ``model.pt`` exists), as each fold's
    ``RegionOutputs``."""
    units = photo_units(records, cfg.min_source_photos)
    outer_units, fold = outer_folds(records, units, seed)
    train_cfg = apply_overrides(replace(load_preset("starter"), crop=policy), list(recipe))
    cache = None
    regions = []
    for k, unit in enumerate(outer_units):
        fold_dir = Path(out_dir) / f"seed{seed}" / f"fold{k}"
        if not (fold_dir / "model.pt").exists():
            index = np.flatnonzero(fold != k)
            # The probe exactly as fit_fold fits it for this fold: the correction learns what that probe misses.
            _, weight, bias = nested_fit(probe, records, index, units, cfg, fold_seed(seed, k), policy)
            cache = cache or ImageCache([r.path for r in records], progress)
            if progress:
                print(f"heads of fold {k + 1}/{len(outer_units)} (held out: {unit}), seed {seed}", flush=True)
            train(replace(train_cfg, seed=seed * 100 + k), [records[i] for i in index], fold_dir, progress=progress,
                  cache=cache, global_head=(weight, bias))
        regions.append(RegionOutputs(fold_dir / "model.pt", policy, Path(cache_root) / "regions"))
    return regions


def release_heads(checkpoint: str | Path, records: Sequence[ImageRecord], recipe: Sequence[str], run_dir: str | Path,
                  keep_correction: bool, progress: bool = True) -> Path:
    """The released checkpoint with its decoder, heads and correction trained again on every record by the recipe
    (its global head, the released probe, kept), everything else it holds kept. ``keep_correction`` false zeroes
    the correction: a decision measured without it must get the probe's view logits from the graph."""
    model, ckpt = load_model(checkpoint)
    cfg = apply_overrides(TrainConfig.from_dict(ckpt["config"]), list(recipe))
    head = (model.global_head.weight.detach()[0].numpy().astype(np.float64), float(model.global_head.bias.detach()[0]))
    trained, _ = load_model(train(cfg, records, run_dir, progress=progress, global_head=head))
    if not keep_correction:
        with torch.no_grad():
            trained.classifier[-1].weight.zero_()
            trained.classifier[-1].bias.zero_()
    extra = {k: v for k, v in ckpt.items() if k not in ("format", "config", "model")}
    save_checkpoint(Path(checkpoint), trained, replace(cfg, train_correction=keep_correction), **extra)
    return Path(checkpoint)

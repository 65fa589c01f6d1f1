"""Training loop: CPU or CUDA (mixed precision), DDP under torchrun, exact resume."""

from __future__ import annotations

import json
import math
import os
import random
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from ..allocator import keep_large_allocations_in_heap
from ..files import atomic_path
from .config import TrainConfig
from .data import GammaDataset, ImageCache
from .losses import gamma_loss
from .model import GammaModel
from .probe import backbone_features, fit_probe
from .sources import ImageRecord

CHECKPOINT_FORMAT = "gamma-checkpoint/1"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_model(cfg: TrainConfig) -> GammaModel:
    model = GammaModel(cfg.model)
    for name, param in model.backbone.named_parameters():
        param.requires_grad = not (cfg.freeze_backbone or _is_frozen(name, cfg.frozen_blocks))
    if cfg.model.global_head:
        model.global_head.requires_grad_(cfg.global_fit != "probe")
    if not cfg.train_correction:
        model.classifier.requires_grad_(False)
        if cfg.model.reverse_attention:
            model.reverse_attention.requires_grad_(False)  # it only feeds the correction
    return model


def _is_frozen(name: str, frozen_blocks: int) -> bool:
    if frozen_blocks <= 0:
        return False
    if name.startswith("stem."):
        return True
    return name.startswith("blocks.") and int(name.split(".")[1]) < frozen_blocks


def set_train_mode(model: GammaModel, cfg: TrainConfig) -> None:
    """Train mode, except frozen layers keep their ImageNet batch-norm statistics."""
    model.train()
    if cfg.freeze_backbone:
        model.backbone.eval()
    elif cfg.frozen_blocks > 0:
        model.backbone.stem.eval()
        for block in model.backbone.blocks[:cfg.frozen_blocks]:
            block.eval()


def fit_global_head(model: GammaModel, cfg: TrainConfig, records: Sequence[ImageRecord], cache: ImageCache,
                    progress: bool = False) -> float:
    """Stage 1: the tuned linear probe on clean crop-policy views becomes the global head; returns its C."""
    if cfg.model.global_features != "pooled":
        raise ValueError("the built-in probe fits the pooled feature; fit a multiscale global head with "
                         "train.loso.release_calibration and pass it to train(global_head=...)")
    features = backbone_features([cache[r.path] for r in records], cfg.crop, model.backbone, progress=progress)
    weight, bias, c = fit_probe(features, np.array([r.label for r in records]), [r.group for r in records], cfg.seed)
    set_global_head(model, weight, bias)
    return c


def set_global_head(model: GammaModel, weight: np.ndarray, bias: float) -> None:
    if model.global_head.in_features != len(weight):
        raise ValueError(f"global head takes {model.global_head.in_features} features, the fitted one "
                         f"{len(weight)}: fit it on the same global_features")
    with torch.no_grad():
        model.global_head.weight.copy_(torch.from_numpy(weight).float()[None])
        model.global_head.bias.fill_(bias)


def _optimizer(model: GammaModel, cfg: TrainConfig) -> torch.optim.Optimizer:
    backbone = [p for p in model.backbone.parameters() if p.requires_grad]
    correction = [p for p in model.classifier.parameters() if p.requires_grad]
    if model.cfg.reverse_attention:
        correction += [p for p in model.reverse_attention.parameters() if p.requires_grad]
    ids = {id(p) for p in model.backbone.parameters()} | {id(p) for p in correction}
    heads = [p for p in model.parameters() if p.requires_grad and id(p) not in ids]
    return torch.optim.AdamW([{"params": backbone, "lr": cfg.lr * cfg.backbone_lr_scale},
                              {"params": heads, "lr": cfg.lr},
                              {"params": correction, "lr": cfg.lr * cfg.correction_lr_scale}],
                             weight_decay=cfg.weight_decay)


def _schedule(optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int):
    total = max(1, cfg.epochs * steps_per_epoch)
    warmup = max(1, round(cfg.warmup_epochs * steps_per_epoch))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def save_checkpoint(path: Path, model: nn.Module, cfg: TrainConfig, **extra) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:  # never leave a half-written checkpoint behind
        torch.save({"format": CHECKPOINT_FORMAT, "config": cfg.to_dict(), "model": model.state_dict(), **extra}, tmp)


def load_checkpoint(path: str | Path, map_location: str = "cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found; train one with `gamma train` or use the default model")
    ckpt = torch.load(path, map_location=map_location, weights_only=False)
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a GAMMA checkpoint (expected format {CHECKPOINT_FORMAT})")
    return ckpt


def load_model(path: str | Path, map_location: str = "cpu") -> tuple[GammaModel, dict]:
    """The trained model in eval mode, and the whole checkpoint (config, calibration, bands)."""
    ckpt = load_checkpoint(path, map_location)
    cfg = TrainConfig.from_dict(ckpt["config"])
    cfg.model.pretrained = False  # the checkpoint holds every weight
    model = GammaModel(cfg.model)
    model.load_state_dict(ckpt["model"])
    return model.eval(), ckpt


def _distributed() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank = dist.get_rank() if world > 1 else 0
    return rank, world


def train(cfg: TrainConfig, records: Sequence[ImageRecord], out_dir: str | Path, resume: bool = True,
          progress: bool = True, cache: ImageCache | None = None, stop_after: int | None = None,
          global_head: tuple[np.ndarray, float] | None = None) -> Path:
    """Train on ``records``; writes ``last.pt`` each epoch and returns ``model.pt`` (weights + config).

    ``global_head``: a (weight, bias) fitted elsewhere (the LOSO protocol's probe) instead of stage 1's.

    ``stop_after`` ends the run after that many epochs in total (for time-boxed sessions); calling
    again resumes from ``last.pt`` exactly where it stopped. Returns ``last.pt`` in that case.
    """
    out_dir = Path(out_dir)
    final = out_dir / "model.pt"
    last = out_dir / "last.pt"
    if resume and final.exists():
        return final
    rank, world = _distributed()
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu":
        torch.set_num_threads(cfg.threads)
        keep_large_allocations_in_heap()
    seed_everything(cfg.seed)
    model = build_model(cfg).to(device)
    if device.type == "cpu":
        model = model.to(memory_format=torch.channels_last)  # about 2x faster depthwise convs on CPU
    dataset = GammaDataset(records, cfg.crop, cfg.augment, cfg.seed, cfg.manipulation,
                           Path(cfg.bank) if cfg.bank else None, cache, progress and rank == 0)
    log = (out_dir / "metrics.jsonl") if rank == 0 else None
    out_dir.mkdir(parents=True, exist_ok=True)
    resuming = resume and last.exists()
    if cfg.model.global_head and cfg.global_fit == "probe" and not resuming:
        if global_head is not None:
            set_global_head(model, *global_head)
        else:
            c = fit_global_head(model, cfg, records, dataset.cache, progress and rank == 0)
            if log:
                _append(log, {"stage": "global head", "probe_C": c})
    sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed)
    loader = DataLoader(dataset, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.num_workers,
                        drop_last=len(dataset) > cfg.batch_size * world, persistent_workers=False)
    optimizer = _optimizer(model, cfg)
    scheduler = _schedule(optimizer, cfg, len(loader))
    use_amp = cfg.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    start_epoch = 0
    if resuming:
        state = load_checkpoint(last)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng"])
        start_epoch = state["epoch"] + 1
    net = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    end_epoch = cfg.epochs if stop_after is None else min(cfg.epochs, stop_after)
    for epoch in range(start_epoch, end_epoch):
        dataset.set_epoch(epoch)
        sampler.set_epoch(epoch)
        set_train_mode(model, cfg)
        bar = tqdm(loader, desc=f"{cfg.name} epoch {epoch + 1}/{cfg.epochs}", disable=not progress or rank != 0,
                   unit="batch", leave=False)
        seen, started, sums = 0, time.perf_counter(), {}
        for step, batch in enumerate(bar):
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            images = batch["image"].contiguous(memory_format=torch.channels_last) if device.type == "cpu" \
                else batch["image"]
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                out = net(images)
            terms = gamma_loss(out, batch, cfg.loss)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(terms["total"]).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            seen += images.shape[0] * world
            values = {k: v.item() for k, v in terms.items()}  # one device sync per term and step
            for k, v in values.items():
                sums[k] = sums.get(k, 0.0) + v
            rate = seen / max(time.perf_counter() - started, 1e-9)
            bar.set_postfix(loss=f"{values['total']:.3f}", img_s=f"{rate:.1f}")
            if log and step % cfg.log_every == 0:
                _append(log, {"epoch": epoch, "step": step, "lr": scheduler.get_last_lr()[1], "images_per_s": rate,
                              **values})
        if rank == 0:
            steps = max(1, len(loader))
            seconds = time.perf_counter() - started
            _append(log, {"epoch": epoch, "end": True, "seconds": seconds, "images_per_s": seen / seconds,
                          **{f"mean_{k}": v / steps for k, v in sums.items()}})
            save_checkpoint(last, model, cfg, optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(),
                            scaler=scaler.state_dict(), epoch=epoch, torch_rng=torch.get_rng_state())
    if end_epoch < cfg.epochs:
        return last
    if rank == 0:
        save_checkpoint(final, model.to(memory_format=torch.contiguous_format), cfg)
    if world > 1:
        dist.barrier()
    return final


def _append(path: Path, row: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")

"""Heads trained per outer fold of the local-edit protocol (issue 21): no map the protocol scores comes from a
model that trained on that image, and the heads learn from local edits of the fold's own photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from conftest import synthetic_photo
from PIL import Image
from test_loso import _features

from gamma_detect.crops import CropPolicy
from gamma_detect.decision import Decision
from gamma_detect.train import fold_heads
from gamma_detect.train.config import AugmentConfig
from gamma_detect.train.data import GammaDataset
from gamma_detect.train.fold_heads import HEAD_RECIPE, train_fold_heads
from gamma_detect.train.fusion_loso import FusionConfig, load_items, run_seed, summarise
from gamma_detect.train.loso import LosoConfig, Probe, outer_folds, photo_units
from gamma_detect.train.sources import ImageRecord
from gamma_detect.train.trainer import load_model

POLICY = CropPolicy(input_size=96, work_side=192, min_side=32)
TINY = ("epochs=1", "batch_size=4", "log_every=1", "model.decoder_dim=32", "model.attention_dim=32",
        "model.attention_heads=2", "model.learned_tokens=2", "model.token_grid=7")
LOSO = LosoConfig(c_grid=(0.1,), augment=("aug0",), min_source_photos=3)


def _records(root: Path) -> list[ImageRecord]:
    """Three photo sources of 4 photos, three AI families of 3 images, as files."""
    out = []
    for s, source in enumerate(("real:a", "real:b", "real:c")):
        for i in range(4):
            path = root / f"photo-{s}-{i}.jpg"
            Image.fromarray(synthetic_photo(120 + 8 * i, 160, 10 * s + i)).save(path, quality=92)
            out.append(ImageRecord(path, 0, source, "camera"))
    for f, family in enumerate(("ai:x", "ai:y", "ai:z")):
        for i in range(3):
            path = root / f"ai-{f}-{i}.png"
            Image.fromarray(synthetic_photo(128, 128, 100 + 10 * f + i)[::2, ::2].repeat(2, 0).repeat(2, 1)).save(path)
            out.append(ImageRecord(path, 1, family, family.split(":")[1]))
    return out


def test_edit_samples_mark_the_pasted_region_and_processed_photos_are_clean(tmp_path):
    records = _records(tmp_path)
    aug = AugmentConfig(manipulated_share=0.0, local_edit_share=1.0, processed_share=1.0, reencode_prob=0.0,
                        blur_prob=0.0, noise_prob=0.0, global_view_prob=1.0)
    data = GammaDataset(records, POLICY, aug, seed=0, progress=False)
    kinds = [k for k, _ in data.items]
    assert kinds.count("edit") == kinds.count("processed") == 12
    edits = [data.sample(i) for i, k in enumerate(kinds) if k == "edit"]
    clean = [data.sample(i) for i, k in enumerate(kinds) if k == "processed"]
    # The whole centre square is the view: the pasted region (5-40 % of the photo) is in it, labelled generated.
    assert all(0.02 < s.mask.mean() < 0.6 and s.label == 1 for s in edits)
    assert all(set(np.unique(s.sources[s.mask == 1])) == {1} for s in edits)
    assert all(not s.mask.any() and s.label == 0 for s in clean)
    # Without AI images in the split there is nothing to paste: no edit samples.
    photos_only = GammaDataset([r for r in records if r.label == 0], POLICY, aug, seed=0, progress=False)
    assert "edit" not in {k for k, _ in photos_only.items}


def test_each_fold_trains_without_its_images_and_the_protocol_reads_each_image_from_its_own_fold(tmp_path,
                                                                                                   monkeypatch):
    records = _records(tmp_path)
    probe = Probe(_features(records, dim=1752), np.array([r.label for r in records]))  # Lite0's multiscale row
    units = photo_units(records, LOSO.min_source_photos)
    _, fold = outer_folds(records, units, seed=0)
    trained = []
    real_train = fold_heads.train

    def spy(cfg, recs, out_dir, **kwargs):
        trained.append({r.path for r in recs})
        return real_train(cfg, recs, out_dir, **kwargs)
    monkeypatch.setattr(fold_heads, "train", spy)
    regions = train_fold_heads(records, probe, POLICY, LOSO, HEAD_RECIPE + TINY, 0, tmp_path / "heads",
                               tmp_path / "cache", progress=False)
    assert len(regions) == len(trained) == 3
    for k, paths in enumerate(trained):
        assert paths == {r.path for r, f in zip(records, fold) if f != k}
    # The attention's correction trained (it starts at zero), against the fold's probe as global head.
    model, ckpt = load_model(tmp_path / "heads" / "seed0" / "fold0" / "model.pt")
    assert ckpt["config"]["train_correction"] and ckpt["config"]["augment"]["local_edit_share"] == 0.5
    assert torch.count_nonzero(model.classifier[1].weight) > 0
    # A finished fold is not trained again.
    train_fold_heads(records, probe, POLICY, LOSO, HEAD_RECIPE + TINY, 0, tmp_path / "heads", tmp_path / "cache",
                     progress=False)
    assert len(trained) == 3

    items = load_items(records, regions, tmp_path / "edits", 0, LOSO, POLICY, Decision.empty(), progress=False)
    by_name = {r.path.name: r.path for r in records}
    differs = 0
    for i, (name, kind) in enumerate(zip(items.names, items.kind)):
        path = by_name[name] if kind in ("photo", "ai") else tmp_path / "edits" / "seed0" / name
        own = regions[fold[items.record[i]]].get(path).correction
        np.testing.assert_allclose(items.correction[i], own, rtol=1e-6)
        other = regions[(fold[items.record[i]] + 1) % 3].get(path).correction
        differs += not np.allclose(own, other)
    assert differs > len(items.names) // 2   # the folds' models do differ: the check above could fail


def test_attention_variants_read_the_corrected_view_logits():
    from test_local_edit import _items
    from test_loso import _records as synthetic_records

    records = synthetic_records()
    features = _features(records)
    probe = Probe(features, np.array([r.label for r in records]))
    items = _items(records, features, np.random.default_rng(0))
    # A correction that raises every edit's views by 3 and nothing else: only the attention variants see it.
    items.correction = [np.full(len(v), 3.0 if k == "edit" else 0.0) for v, k in zip(items.views, items.kind)]
    fcfg = FusionConfig(decisions=("global", "attention"))
    summary = summarise([run_seed(probe, records, items, LosoConfig(c_grid=(0.1,), augment=("aug0",)), fcfg, 0,
                                  CropPolicy())], fcfg)
    glob, attention = summary["decisions"]["global"]["worst"], summary["decisions"]["attention"]["worst"]
    assert attention["auc_edit_vs_control"] > 0.95 > glob["auc_edit_vs_control"]
    assert attention["edit_flagged"] > glob["edit_flagged"]


def test_whole_ai_images_can_leave_head_1_to_the_edits():
    from gamma_detect.train.config import LossConfig
    from gamma_detect.train.losses import gamma_loss
    from gamma_detect.train.model import GammaOutput

    torch.manual_seed(0)
    batch = {"label": torch.tensor([1.0, 0.0, 1.0]), "whole_ai": torch.tensor([1.0, 0.0, 0.0]),
             "mask": torch.zeros(3, 1, 16, 16), "sources": torch.zeros(3, 16, 16, dtype=torch.long)}
    batch["mask"][0] = 1.0                  # a whole AI image
    batch["mask"][2, :, 4:12, 4:12] = 1.0   # an edited photo

    def terms(mask_logits, whole_ai_mask):
        out = GammaOutput(torch.zeros(3), mask_logits, torch.zeros(3, 5, 2, 2))
        return gamma_loss(out, batch, LossConfig(whole_ai_mask=whole_ai_mask))
    logits = torch.randn(3, 1, 2, 2)
    changed = logits.clone()
    changed[0] = -5.0                       # head 1 says the AI image is authentic everywhere
    for name in ("mask", "dice"):
        assert terms(changed, True)[name] > terms(logits, True)[name]               # GAMMA's labels: penalised
        assert torch.isclose(terms(changed, False)[name], terms(logits, False)[name])  # left out of head 1


def test_head_1_can_mark_only_generated_pixels():
    import pytest

    from gamma_detect.contract import SOURCE_CLASSES
    from gamma_detect.train.config import LossConfig
    from gamma_detect.train.losses import gamma_loss, label_target, mask_target
    from gamma_detect.train.model import GammaOutput

    batch = {"label": torch.tensor([1.0, 1.0]), "mask": torch.zeros(2, 1, 8, 8),
             "sources": torch.zeros(2, 8, 8, dtype=torch.long)}
    batch["mask"][:, :, 2:6, 2:6] = 1.0
    batch["sources"][0, 2:6, 2:6] = SOURCE_CLASSES.index("spliced")     # a real photo's region pasted in
    batch["sources"][1, 2:6, 2:6] = SOURCE_CLASSES.index("generated")   # an AI image's region pasted in
    generated = mask_target(batch, LossConfig(mask_marks="generated"))
    assert generated[0].sum() == 0 and torch.equal(generated[1], batch["mask"][1])
    assert torch.equal(mask_target(batch, LossConfig()), batch["mask"])   # GAMMA's labels: every manipulated pixel
    # The image label follows: the real splice is no AI content; GAMMA's labels call every manipulation positive.
    assert label_target(batch, LossConfig(mask_marks="generated")).tolist() == [0.0, 1.0]
    assert label_target(batch, LossConfig()).tolist() == [1.0, 1.0]
    quiet, marks = torch.full((2, 1, 8, 8), -5.0), torch.full((2, 1, 8, 8), -5.0)
    marks[0, :, 2:6, 2:6] = 5.0                                           # head 1 marks the real splice

    def loss(mask_logits, cfg):
        return gamma_loss(GammaOutput(torch.zeros(2), mask_logits, torch.zeros(2, 5, 8, 8)), batch, cfg)["mask"]
    assert loss(marks, LossConfig(mask_marks="generated")) > loss(quiet, LossConfig(mask_marks="generated"))
    assert loss(marks, LossConfig()) < loss(quiet, LossConfig())
    with pytest.raises(ValueError, match="mask_marks"):
        LossConfig(mask_marks="everything")

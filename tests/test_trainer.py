import dataclasses

import numpy as np
import pytest
import torch

from gamma_detect.train.config import load_preset
from gamma_detect.train.data import GammaDataset, ImageCache
from gamma_detect.train.evaluate import image_logits
from gamma_detect.train.losses import gamma_loss
from gamma_detect.train.probe import backbone_features, fit_probe
from gamma_detect.train.sources import load_records
from gamma_detect.train.trainer import build_model, load_checkpoint, load_model, set_train_mode, train


@pytest.fixture(scope="module")
def tiny(tiny_dataset):
    cfg = load_preset("tiny", [f"data=csv:{tiny_dataset}", "model.pretrained=false"])
    return cfg, load_records(cfg.data)


def test_overfits_one_batch(tiny):
    cfg, records = tiny
    cfg = dataclasses.replace(cfg, freeze_backbone=False, global_fit="sgd")  # every layer learns
    torch.manual_seed(0)
    model = build_model(cfg)
    ds = GammaDataset(records, cfg.crop, cfg.augment, seed=0, progress=False)
    batch = {k: torch.stack([ds[i][k] for i in range(8)]) for k in ds[0]}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(25):
        set_train_mode(model, cfg)
        terms = gamma_loss(model(batch["image"]), batch, cfg.loss)
        opt.zero_grad()
        terms["total"].backward()
        opt.step()
        losses.append(terms["total"].item())
    assert losses[-1] < 0.5 * losses[0], losses


def test_frozen_blocks_do_not_change(tiny):
    cfg, records = tiny
    model = build_model(dataclasses.replace(cfg, freeze_backbone=False, global_fit="sgd"))
    frozen = [n for n, p in model.backbone.named_parameters() if not p.requires_grad]
    assert frozen and all(n.startswith(("stem.", "blocks.0.", "blocks.1.", "blocks.2.")) for n in frozen)
    assert model.global_head.weight.requires_grad


def test_global_head_is_the_fitted_probe_and_the_backbone_stays_frozen(tiny, tmp_path):
    cfg, records = tiny
    torch.manual_seed(0)
    start = build_model(cfg).backbone.state_dict()
    trained, _ = load_model(train(cfg, records, tmp_path / "run", progress=False))
    for key, value in trained.backbone.state_dict().items():
        assert torch.equal(value, start[key]), key  # weights and batch-norm statistics alike
    cache = ImageCache([r.path for r in records], progress=False)
    images = [cache[r.path] for r in records]
    features = backbone_features(images, cfg.crop, trained.backbone)
    labels = np.array([r.label for r in records])
    weight, bias, _ = fit_probe(features, labels, [r.group for r in records], cfg.seed)
    torch.testing.assert_close(trained.global_head.weight[0], torch.from_numpy(weight).float(), rtol=1e-4, atol=1e-5)
    # The probe's score is the mean view logit of the global head alone: linear maps commute with the mean.
    with torch.no_grad():
        trained.classifier[1].weight.zero_()
        trained.classifier[1].bias.zero_()
    probe_scores = features @ weight + bias
    np.testing.assert_allclose(image_logits(trained, images, cfg.crop), probe_scores, rtol=1e-3, atol=1e-3)


def test_probe_fit_needs_a_frozen_backbone():
    with pytest.raises(ValueError, match="freeze_backbone=true"):
        load_preset("tiny", ["freeze_backbone=false"])
    with pytest.raises(ValueError, match="global_fit must be"):
        load_preset("tiny", ["global_fit=closed"])


def test_resume_is_exact(tiny, tmp_path):
    cfg, records = tiny
    cfg.epochs = 2
    straight = train(cfg, records, tmp_path / "straight", progress=False)
    interrupted = train(cfg, records, tmp_path / "resumed", progress=False, stop_after=1)
    assert interrupted.name == "last.pt" and load_checkpoint(interrupted)["epoch"] == 0
    resumed = train(cfg, records, tmp_path / "resumed", progress=False)
    a, b = load_checkpoint(straight)["model"], load_checkpoint(resumed)["model"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    rows = (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()
    assert any('"images_per_s"' in r for r in rows)


def test_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="gamma train"):
        load_model(tmp_path / "missing.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a GAMMA checkpoint"):
        load_model(tmp_path / "other.pt")


def test_the_correction_trains_at_its_own_rate(tiny):
    from gamma_detect.train.trainer import _optimizer

    cfg, _ = tiny
    cfg = dataclasses.replace(cfg, train_correction=True, correction_lr_scale=10.0)
    model = build_model(cfg)
    backbone, heads, correction = _optimizer(model, cfg).param_groups
    assert correction["lr"] == pytest.approx(10 * heads["lr"]) and heads["lr"] == cfg.lr
    ids = {id(p) for p in correction["params"]}
    expected = [*model.classifier.parameters(), *model.reverse_attention.parameters()]
    assert ids == {id(p) for p in expected}
    head_ids = {id(p) for p in heads["params"]}
    assert not ids & head_ids and id(model.mask_head.body[0].weight) in head_ids

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import synthetic_photo

from gamma_detect.crops import CropPolicy
from gamma_detect.train.data import to_tensor
from gamma_detect.train.evaluate import make_folds, manipulated_photo_scores, metrics, read_folds, write_folds
from gamma_detect.train.model import GammaOutput
from gamma_detect.train.probe import probe_oof
from gamma_detect.train.sources import ImageRecord


def _records(n_groups: int = 12, per_group: int = 6) -> list[ImageRecord]:
    out = []
    for g in range(n_groups):
        label = g % 2
        for i in range(per_group):
            out.append(ImageRecord(Path(f"/x/{g}_{i}.png"), label, f"{'ai' if label else 'real'}:g{g}", f"f{g}"))
    return out


def test_folds_never_split_a_group_and_roundtrip(tmp_path):
    records = _records()
    folds = make_folds(records, k=5, seed=0)
    assert set(folds) == set(range(5))
    for group in {r.group for r in records}:
        assert len({f for r, f in zip(records, folds) if r.group == group}) == 1
    write_folds(tmp_path / "folds.json", records, folds, 5, 0)
    assert read_folds(tmp_path / "folds.json", records) == folds
    assert json.loads((tmp_path / "folds.json").read_text())["seed"] == 0
    assert make_folds(records, 5, 0) == folds and make_folds(records, 5, 1) != folds


def test_folds_file_must_cover_the_records(tmp_path):
    records = _records()
    write_folds(tmp_path / "folds.json", records[:10], make_folds(records, 5, 0)[:10], 5, 0)
    with pytest.raises(ValueError, match="does not cover"):
        read_folds(tmp_path / "folds.json", records)


def test_metrics_per_group_and_interval():
    records = _records()
    labels = np.array([r.label for r in records], float)
    scores = labels * 2 - 1 + np.random.default_rng(0).normal(0, 0.8, len(labels))
    m = metrics(records, scores)
    assert 0.8 < m["roc_auc"] <= 1 and m["roc_auc_ci95"][0] <= m["roc_auc"] <= m["roc_auc_ci95"][1]
    assert set(m["per_group"]) == {r.group for r in records}
    perfect = metrics(records, labels * 2 - 1)
    assert perfect["roc_auc"] == 1 and perfect["real_accuracy"] == perfect["ai_accuracy"] == 1
    assert all(g["rate"] == 1 for g in perfect["per_group"].values())


def test_linear_probe_finds_a_linear_signal_out_of_fold():
    records = _records()
    labels = np.array([r.label for r in records])
    rng = np.random.default_rng(0)
    features = rng.normal(0, 1, (len(records), 20))
    features[:, 3] += labels * 2.0
    scores, chosen = probe_oof(features, labels, [r.group for r in records], make_folds(records, 5, 0))
    assert metrics(records, scores)["roc_auc"] > 0.9 and len(chosen) == 5


def test_linear_probe_needs_groups_of_both_classes():
    records = _records(n_groups=4)
    labels = np.array([r.label for r in records])
    with pytest.raises(ValueError, match="at least 2 groups of each class"):
        probe_oof(np.zeros((len(records), 3)), labels, [r.group for r in records], [i % 2 for i in range(4) for _ in range(6)])


class _Oracle(torch.nn.Module):
    """Logit 1 for any view that is not one of the given clean views: a perfect manipulation detector."""

    def __init__(self, clean: list[np.ndarray]):
        super().__init__()
        self.clean = [to_tensor(v[None]) for v in clean]

    def forward(self, x: torch.Tensor) -> GammaOutput:
        seen = any(torch.equal(x, c) for c in self.clean)
        return GammaOutput(torch.tensor([0.0 if seen else 1.0]), None, None)


def test_manipulated_photo_scores_rank_manipulated_views_above_their_originals():
    policy = CropPolicy(input_size=96, work_side=192, min_side=32)
    reals = [synthetic_photo(150, 180, seed) for seed in range(4)]
    oracle = _Oracle([policy.views(image)[0][-1] for image in reals])
    scores = manipulated_photo_scores(oracle, reals, policy, seed=0, per_image=2)
    assert scores["manipulated_images"] == 8
    assert scores["manipulation_auc"] == 1.0
    assert "mask_iou" not in scores  # no segmentation heads, no localisation numbers
    assert manipulated_photo_scores(oracle, reals[:1], policy, seed=0) == {}  # needs a donor photo

from pathlib import Path

import numpy as np
import pytest

from gamma_detect.abstain import AbstentionRule
from gamma_detect.crops import CropPolicy
from gamma_detect.train.loso import (POOLED_UNIT, FeatureSet, LosoConfig, Probe, Scored, _source_edge, calibrate,
                                     deal_families, photo_units, run_seed, summarise)
from gamma_detect.train.sources import ImageRecord

SOURCES = {"real:a": 30, "real:b": 25, "real:c": 22, "real:tiny1": 5, "real:tiny2": 8}
FAMILIES = {"ai:x": 20, "ai:y": 12, "ai:z": 9, "ai:w": 6, "ai:v": 5, "ai:u": 4}


def _records() -> list[ImageRecord]:
    out = []
    for groups, label in ((SOURCES, 0), (FAMILIES, 1)):
        for group, n in groups.items():
            out += [ImageRecord(Path(f"{group}-{i}.png"), label, group, group.split(":")[1]) for i in range(n)]
    return out


def _features(records, seed=0, dim=12) -> FeatureSet:
    """Separable but noisy: AI images shifted along one direction, each source/family with its own offset."""
    rng = np.random.default_rng(seed)
    # sorted: a set's order changes with each process's hash seed, and with it which group draws which offset
    offsets = {g: rng.normal(0, 0.5, dim) for g in sorted({r.group for r in records})}
    views, q90, aug = [], [], []
    for r in records:
        centre = offsets[r.group] + (1.5 if r.label else -1.5) * np.eye(dim)[0]
        v = centre + rng.normal(0, 1.0, (int(rng.integers(2, 6)), dim))
        views.append(v)
        q90.append(v.mean(0) + rng.normal(0, 0.1, dim))
        aug.append(v.mean(0) + rng.normal(0, 0.3, dim))
    return FeatureSet(views, np.stack(q90), [np.stack(aug)])


def test_small_sources_are_pooled_into_one_unit():
    units = photo_units(_records(), min_photos=20)
    assert {u for u in units if u} == {"real:a", "real:b", "real:c", POOLED_UNIT}
    assert all(u is None for u, r in zip(units, _records()) if r.label)


def test_families_are_dealt_whole_and_balanced():
    records = _records()
    folds = deal_families(records, range(len(records)), 4, seed=3)
    assert set(folds) == {i for i, r in enumerate(records) if r.label}
    by_family = {}
    for i, f in folds.items():
        by_family.setdefault(records[i].group, set()).add(f)
    assert all(len(f) == 1 for f in by_family.values())  # a family never straddles folds
    loads = np.bincount(list(folds.values()), minlength=4)
    assert loads.min() > 0 and loads.max() == 20  # the largest family alone sets the maximum


def test_source_edge_keeps_the_rate_on_every_unit():
    rng = np.random.default_rng(0)
    z = np.concatenate([rng.normal(0, 1, 100), rng.normal(1, 1, 40)])
    units = np.array(["a"] * 100 + ["b"] * 40)
    kept = np.ones(140, bool)
    edge = _source_edge(z, units, kept, 0.05)
    for u in "ab":
        assert np.mean(z[units == u] >= edge) <= 0.05
    lower = np.nextafter(edge, -np.inf) - 1e-9
    assert max(np.mean(z[units == u] >= lower) for u in "ab") > 0.05  # not higher than needed
    # Abstained photos are not flagged, so the edge can only go down when some are abstained.
    kept[np.argsort(z)[-3:]] = False
    assert _source_edge(z, units, kept, 0.05) <= edge


def test_calibration_abstains_on_at_most_its_share_of_ai_images():
    rng = np.random.default_rng(1)
    labels = np.r_[np.zeros(60), np.ones(60)].astype(int)
    scored = Scored(np.r_[rng.normal(-2, 1, 60), rng.normal(2, 1, 60)], rng.gamma(2, 0.3, 120), None)
    scored.q90 = scored.logit - rng.gamma(2, 0.2, 120)
    cfg = LosoConfig(abstain=True, abstain_ai_share=0.1)
    cal = calibrate(scored, labels, np.array(["a", "b"] * 60), cfg, c=0.1)
    bands, reasons = cal.verdicts(scored)
    fired = np.array([r is not None for r in reasons])
    assert fired[labels == 1].mean() <= 2 * cfg.abstain_ai_share
    assert all(b != "other" for b, r in zip(bands, reasons) if r)  # only AI-side verdicts abstain
    off = calibrate(scored, labels, np.array(["a", "b"] * 60), LosoConfig(abstain=False), c=0.1)
    assert off.rule == AbstentionRule() and not any(off.verdicts(scored)[1])
    names = [b["name"] for b in cal.bands()]
    assert names == ["real", "likely_real", "uncertain", "likely_ai", "ai"]


def test_edges_are_fitted_the_margin_under_each_promise():
    rng = np.random.default_rng(2)
    labels = np.r_[np.zeros(200), np.ones(100)].astype(int)
    scored = Scored(np.r_[rng.normal(-1, 1, 200), rng.normal(1.5, 1, 100)], np.zeros(300), np.zeros(300))
    units = np.array(["a", "b"] * 150)
    at_promise = calibrate(scored, labels, units, LosoConfig(fit_margin=0.0), c=0.1)
    margin = calibrate(scored, labels, units, LosoConfig(fit_margin=0.02), c=0.1)
    assert margin.ai_edge > at_promise.ai_edge and margin.likely_ai_edge > at_promise.likely_ai_edge
    z = scored.logit / margin.temperature
    for u in "ab":
        photos = (units == u) & (labels == 0)
        assert np.mean(z[photos] >= margin.ai_edge) <= 0.03
        assert np.mean(z[photos] >= margin.likely_ai_edge) <= 0.13


def test_every_record_is_scored_by_a_model_that_never_saw_its_source_or_family():
    records = _records()
    cfg = LosoConfig(features="pooled", augment=("aug0",), c_grid=(0.1,))
    probe = Probe(_features(records), np.array([r.label for r in records]))
    run = run_seed(probe, records, cfg, seed=0)
    rows = run["records"]
    assert len(run["folds"]) == 4 and all(row["fold"] >= 0 for row in rows)
    folds_of = {}
    for r, row in zip(records, rows):
        folds_of.setdefault(row["unit"], set()).add(row["fold"])
    assert all(len(f) == 1 for f in folds_of.values())  # a unit or family is held out exactly once
    assert all(run["folds"][row["fold"]]["held_out"] == row["unit"] for row in rows if row["label"] == 0)
    summary = summarise([run], cfg)
    assert set(summary["worst"]["photo_ai_rate_by_source"]) == {"real:a", "real:b", "real:c", POOLED_UNIT}
    assert summary["mean_roc_auc"] > 0.8  # the synthetic classes are separable out of fold
    assert 0 <= summary["worst"]["ai_recall_flag"] <= 1


def test_unknown_feature_recipe_is_refused():
    with pytest.raises(ValueError, match="features must be"):
        LosoConfig(features="resnet")


def test_a_staged_policy_runs_the_grid_only_where_its_bands_say_and_keeps_every_view_when_all_bands_refine():
    records = _records()
    cfg = LosoConfig(features="pooled", augment=("aug0",), c_grid=(0.1,))
    probe = Probe(_features(records), np.array([r.label for r in records]))
    one = run_seed(probe, records, cfg, seed=0)
    every_band = CropPolicy(coarse_grid=0, refine_bands=("real", "likely_real", "uncertain", "likely_ai", "ai"))
    assert run_seed(probe, records, cfg, 0, every_band)["records"] == one["records"]
    staged = run_seed(probe, records, cfg, 0, CropPolicy(coarse_grid=0, refine_bands=("likely_real", "uncertain",
                                                                                       "likely_ai", "ai")))
    full = {row["path"]: row["views"] for row in one["records"]}
    stopped = [row for row in staged["records"] if row["views"] == 1 and full[row["path"]] > 1]
    assert stopped and all(row["band"] == "other" for row in stopped)  # only a stage-0 `real` stops early
    assert summarise([staged], cfg)["views_per_image"] < summarise([one], cfg)["views_per_image"]


def test_cached_features_refuse_a_stage_0_grid_they_do_not_hold(tmp_path):
    from gamma_detect.train.features import FeatureCache

    with pytest.raises(ValueError, match="coarse_grid=0"):
        FeatureCache(tmp_path, CropPolicy(coarse_grid=2, refine_bands=("uncertain",)))
    assert FeatureCache(tmp_path, CropPolicy(coarse_grid=0, refine_bands=("uncertain",))).root == \
        FeatureCache(tmp_path, CropPolicy()).root


def test_a_2x2_policy_scores_the_cached_3x3_grid_s_corners_and_the_global_view():
    """The 2x2 grid's crops are the 3x3 grid's corners, so its replay reads them from the same cached rows."""
    geometry = CropPolicy()
    sizes = [(900, 1600), (672, 672), (300, 500), (224, 224)]
    views = [np.arange(len(geometry.plan(*s).boxes) + 1, dtype=np.float64)[:, None] * np.ones((1, 3)) for s in sizes]
    features = FeatureSet(views, np.zeros((4, 3)), [], geometry, sizes)
    corners = CropPolicy(max_grid=2)
    for i, size in enumerate(sizes):
        rows = features.rows(i, corners)
        cached = geometry.plan(*size).boxes
        assert [cached[r] for r in rows[:-1]] == corners.plan(*size).boxes and rows[-1] == len(cached)
    assert list(features.rows(0, corners)) == [0, 2, 6, 8, 9]            # 3x3: its four corners, then global
    assert list(features.rows(0, geometry)) == list(range(10))           # the cached policy itself: every row
    with pytest.raises(ValueError, match="nests in it"):
        features.rows(0, CropPolicy(max_grid=2, work_side=448))          # other crops: not in the cache

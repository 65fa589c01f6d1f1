"""Local AI edits, the decision that fuses region evidence, and the head-1 map's calibration (issue 21)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image
from test_loso import _features, _records

from gamma_detect.crops import CropPolicy
from gamma_detect.decision import (EVIDENCE, Decision, Either, MaskCalibration, features_of, read_decision,
                                   region_evidence, strongest_region)
from gamma_detect.train.fusion_loso import FusionConfig, Items, fit_mask_threshold, run_seed, summarise
from gamma_detect.train.local_edit import build_edits, local_edit, process_alike
from gamma_detect.train.loso import LosoConfig, Probe, _source_edge
from gamma_detect.train.sources import ImageRecord


def _photo(seed: int, h: int = 120, w: int = 160) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 // w, y * 255 // h, np.full_like(x, 90)], -1)
    return np.clip(base + rng.integers(-10, 10, base.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("seed", range(6))
def test_an_edit_changes_only_its_region_and_covers_5_to_40_percent(seed):
    photo, donor = _photo(seed), _photo(seed + 100, 200, 200)[..., ::-1].copy()
    edited, mask, kind = local_edit(photo, donor, np.random.default_rng(seed))
    assert 0.04 <= mask.mean() <= 0.44 and kind.split(":")[1] in ("none", "feather", "poisson", "matched")
    assert np.array_equal(edited[mask == 0], photo[mask == 0]) and not np.array_equal(edited, photo)


def test_edit_and_control_are_processed_alike():
    photo = _photo(1)
    mask = np.zeros(photo.shape[:2], np.uint8)
    mask[20:60, 30:90] = 1
    (a, b), m, quality = process_alike([photo, photo.copy()], mask, np.random.default_rng(3))
    assert np.array_equal(a, b) and a.shape[:2] == m.shape and 70 <= quality <= 92 and set(np.unique(m)) <= {0, 1}


def test_build_edits_writes_pairs_and_resumes(tmp_path):
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"p{i}.png")
        Image.fromarray(_photo(i)).save(paths[-1])
    Image.fromarray(_photo(9, 100, 100)).save(tmp_path / "ai.png")
    photos = [ImageRecord(p, 0, "real:a", "a") for p in paths]
    donor = ImageRecord(tmp_path / "ai.png", 1, "ai:x", "x")
    first = build_edits(photos, [[donor]] * 3, tmp_path / "edits", seed=0, progress=False)
    again = build_edits(photos, [[donor]] * 3, tmp_path / "edits", seed=0, progress=False)
    assert first == again and all(e.edit.exists() and e.control.exists() and e.mask.exists() for e in first)
    assert (tmp_path / "edits" / "index.csv").read_text().count("\n") == 4
    with pytest.raises(ValueError, match="no AI image"):
        build_edits(photos[:1], [[]], tmp_path / "none", seed=0, progress=False)


def test_mask_calibration_keeps_0_5_as_the_level():
    cal = MaskCalibration.at_level(0.8)
    maps = np.random.default_rng(0).random((50, 50)).astype(np.float32)
    assert abs((cal.apply(maps) > 0.5).mean() - (maps > 0.8).mean()) < 1e-3   # up to float rounding at the level
    assert MaskCalibration.from_dict(cal.to_dict()) == cal and abs(cal.level - 0.8) < 1e-9
    assert MaskCalibration.from_dict(None).apply(maps) is maps


def test_mask_threshold_quiets_every_unit():
    rng = np.random.default_rng(1)
    maps = [np.clip(rng.normal(0.55 if i % 2 else 0.3, 0.15, (20, 20)), 0, 1) for i in range(40)]
    units = np.array(["a", "b"] * 20)
    cal = fit_mask_threshold(maps, units, FusionConfig(mask_mean=0.03, mask_median=0.01))
    for u in "ab":
        fractions = [(cal.apply(m) > 0.5).mean() for m, v in zip(maps, units) if v == u]
        assert np.mean(fractions) <= 0.03 and np.median(fractions) <= 0.01
    assert cal.level > 0.5   # the loud unit (b) needed a level above the raw 0.5


def test_decision_round_trips_and_rejects_unknown_inputs():
    d = Decision("full", ("mean_logit", "mask_peak_logit"), np.array([1.0, 0.5]), -0.2, 0.3, 1.5)
    back = Decision.from_dict(d.to_dict())
    assert back.features == d.features and np.allclose(back.weights, d.weights) and back.ai_edge == 1.5
    x = features_of(d, np.array([0.0, 2.0]), [3.0, 4.0, 5.0])
    assert np.allclose(x, [1.0, 4.0]) and np.isclose(d.logit(x[None])[0], 1.0 + 2.0 - 0.2)
    with pytest.raises(ValueError, match="must be among"):
        Decision("x", ("colour",), np.array([1.0]), 0.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="unknown decision rule 'attention'.*upgrade"):
        read_decision({"rule": "attention"})
    assert read_decision(None).plain and not read_decision(d.to_dict()).plain


def _either() -> Either:
    whole = Decision("global", ("mean_logit",), np.array([1.0]), 0.0, 0.5, 2.0)
    region = Decision("either", ("mean_logit", "mask_peak_logit"), np.array([0.5, 1.0]), -1.0, np.inf, 3.0)
    return Either(whole, region)


def test_the_region_rule_raises_to_ai_alone_and_round_trips():
    either = _either()
    whole = np.array([-1.0, 1.0, 2.5, -1.0, 2.5, 1.0])
    region = np.array([2.9, 2.9, 2.9, 3.0, 9.0, 5.0])
    z = either.combine(whole, region)
    # Under its edge the region changes nothing (never raises to `likely_ai`); at or over it, the image reaches
    # the whole rule's `ai` edge by as much as the region passes its own; a higher whole logit stands.
    assert np.allclose(z, [-1.0, 1.0, 2.5, 2.0, 8.0, 4.0])
    back = read_decision(either.to_dict())
    assert isinstance(back, Either) and back.region.ai_edge == 3.0 and back.ai_edge == 2.0 and back.likely_ai_edge == 0.5
    assert "likely_ai_edge_logit" not in either.to_dict()["region"]   # the region rule has no `likely_ai` band
    # The manifest is JSON a browser parses: no Infinity.
    json.loads(json.dumps(either.to_dict()), parse_constant=lambda c: pytest.fail(f"{c} in the decision"))
    logits, evidence = np.array([0.0, 2.0]), [0.0, 3.5, 0.0, 0.0]
    assert np.isclose(either.score(logits, evidence), either.combine(1.0, 0.5 + 3.5 - 1.0))
    with pytest.raises(ValueError, match="needs its two rules"):
        read_decision({"rule": "either", "whole": either.whole.to_dict()})
    with pytest.raises(ValueError, match="finite ai edge"):
        Either(either.whole, Decision("r", ("mean_logit",), np.array([1.0]), 0.0, np.inf, np.inf))


def test_a_region_likely_edge_raises_to_likely_ai_along_the_whole_rules_span():
    either = _either()
    banded = Either(either.whole, replace(either.region, likely_ai_edge=1.0))
    assert banded.region_likely and not either.region_likely
    whole = np.array([-1.0, -1.0, -1.0, 1.9, -1.0, 1.2])
    region = np.array([0.9, 1.0, 2.0, 2.0, 3.0, 1.0])
    # Under its `likely_ai` edge nothing; from it to its `ai` edge (1..3) onto the whole rule's 0.5..2.0; over it as
    # before; a higher whole logit stands.
    assert np.allclose(banded.combine(whole, region), [-1.0, 0.5, 1.25, 1.9, 2.0, 1.2])
    back = read_decision(json.loads(json.dumps(banded.to_dict())))
    assert back.region_likely and back.region.likely_ai_edge == 1.0
    assert np.allclose(back.combine(whole, region), banded.combine(whole, region))
    assert "likely_ai_edge_logit" in back.to_dict()["formula"]
    # 0.6.0's region rule (no such edge written) reads as `ai` alone.
    assert not read_decision(either.to_dict()).region_likely
    with pytest.raises(ValueError, match="whole rule's `likely_ai`"):
        Either(replace(either.whole, likely_ai_edge=-np.inf), banded.region)


def test_region_evidence_and_the_strongest_region():
    policy = CropPolicy(input_size=32, max_grid=2, work_side=64, min_side=16, coarse_grid=0,
                        refine_bands=("uncertain",))
    plan = policy.plan(48, 64)
    masks = np.full((plan.views, 4, 4), 0.1, np.float32)
    masks[0, 1:3, 1:3] = 0.9                     # the global view sees a square in its middle
    sources = np.zeros((plan.views, 5, 4, 4), np.float32)
    sources[:, 0] = 1.0
    evidence, stitched = region_evidence(policy, plan, masks[:1], sources[:1], Decision.empty())
    assert evidence[1] > evidence[0] > 0 > evidence[2]   # peak above top mass above the (absent) generated share
    contrast = EVIDENCE.index("mask_contrast_logit")
    hot = np.full_like(masks, 0.8)                 # hot everywhere (a source whose maps run hot): little stands out
    hot[0, 1:3, 1:3] = 0.95
    hot_evidence, _ = region_evidence(policy, plan, hot[:1], sources[:1], Decision.empty())
    assert hot_evidence[0] > evidence[0] and hot_evidence[contrast] < evidence[contrast]
    assert np.isclose(evidence[contrast], evidence[0] - np.log(0.1 / 0.9), atol=1e-3)   # the top mass over the median
    region = strongest_region(stitched)
    left, top, right, bottom = region["box"]
    assert 0.2 < left < right < 0.8 and 0.2 < top < bottom < 0.8 and 0 < region["share"] < 0.3
    assert strongest_region(np.zeros((8, 8))) is None


def _items(records, features, rng) -> Items:
    """Each photo once as published, once edited (a region signal in the head evidence and a small view shift)
    and once as a control; AI images as they are. Maps: untouched photos noisy around 0.45, edits with a hot box."""
    photos = [i for i, r in enumerate(records) if r.label == 0]
    kind, record, views, head, maps, truth, area = [], [], [], [], [], [], []
    for i, r in enumerate(records):
        kind.append("ai" if r.label else "photo")
        record.append(i)
        views.append(features.views[i])
        head.append(rng.normal(0, 1, len(EVIDENCE)) + (0.5 if r.label else 0))
        maps.append(np.clip(rng.normal(0.45, 0.1, (16, 16)), 0, 1))
        truth.append(None)
        area.append(0.0)
    for k in ("edit", "control"):
        for i in photos:
            kind.append(k)
            record.append(i)
            views.append(features.views[i] + (0.3 if k == "edit" else 0.0))
            head.append(rng.normal(3.0 if k == "edit" else 0.0, 1, len(EVIDENCE)))
            m = np.clip(rng.normal(0.45, 0.1, (16, 16)), 0, 1)
            t = np.zeros((16, 16), bool)
            if k == "edit":
                t[4:12, 4:12] = True
                m[t] = 0.95
            maps.append(m)
            truth.append(t if k == "edit" else None)
            area.append(float(t.mean()) if k == "edit" else 0.0)
    head = np.array(head)
    return Items(np.array(kind), np.array(record), views, head, head, maps, truth, np.array(area))


def _protocol(decisions: tuple[str, ...]):
    """The synthetic protocol's inputs and one seed's run over them: (run, fusion config, items)."""
    records = _records()
    features = _features(records)
    probe = Probe(features, np.array([r.label for r in records]))
    items = _items(records, features, np.random.default_rng(0))
    fcfg = FusionConfig(decisions=decisions)

    def run(items: Items) -> dict:
        return run_seed(probe, records, items, LosoConfig(c_grid=(0.1,), augment=("aug0",)), fcfg, seed=0,
                        policy=CropPolicy())
    return run, fcfg, items


def test_the_protocol_fits_fusion_and_mask_level_without_the_held_out_source():
    run_protocol, fcfg, items = _protocol(("global", "full"))
    run = run_protocol(items)
    summary = summarise([run], fcfg)
    full, glob = summary["decisions"]["full"]["worst"], summary["decisions"]["global"]["worst"]
    # The region evidence separates edits the global score cannot; both keep the band promise's margin.
    assert full["auc_edit_vs_control"] > 0.9 > glob["auc_edit_vs_control"]
    assert full["edit_flagged"] > glob["edit_flagged"]
    assert summary["chosen"] == "full"
    # The map's level was fitted on the training sources only, and quiets the unseen one.
    assert full["photo_mask_mean"] <= 0.05 and full["mask_iou"] > 0.9
    for fold in run["folds"]:
        assert fold["mask_calibration"]["level"] > 0.5
        assert fold["correction"] == {"std": 0.0, "auc_edit_vs_control": None}   # these items have no correction


def test_two_rules_keep_the_global_bands_and_add_edits_in_ai_only():
    run_protocol, fcfg, items = _protocol(("global", "either"))
    run = run_protocol(items)
    for fold in run["folds"]:
        glob, either = fold["decisions"]["global"], fold["decisions"]["either"]
        assert either["fit"]["rule"] == "either" and either["fit"]["whole"] == glob["fit"]
        assert "likely_ai_edge_logit" not in either["fit"]["region"]   # the region rule gives `ai` alone
        g, e = glob["outer"], either["outer"]
        # Every verdict the global rule gives stands or is raised to `ai`: nothing it flags is lost.
        for kind in ("photo", "ai", "edit", "control"):
            assert e[kind]["flagged"] >= g[kind]["flagged"] and e[kind]["in_ai"] >= g[kind]["in_ai"]
    worst = summarise([run], fcfg)["decisions"]
    assert worst["either"]["worst"]["edit_flagged"] > worst["global"]["worst"]["edit_flagged"]
    assert worst["either"]["worst"]["ai_recall_flag"] >= worst["global"]["worst"]["ai_recall_flag"]


def test_the_region_rules_edge_leaves_room_only_for_what_the_global_rule_did_not_take():
    rng = np.random.default_rng(0)
    f, units = rng.normal(0, 1, 80), np.repeat(["a", "b"], 40)
    kept = np.ones(80, bool)
    taken = np.zeros(80, bool)
    taken[:2] = True                           # unit a: two photos already in `ai` by the global rule
    for rate, room in ((0.05, {"a": 0, "b": 2}), (0.10, {"a": 2, "b": 4})):
        edge = _source_edge(f, units, kept, rate, taken=taken)
        for u in "ab":
            mine = units == u
            assert ((f >= edge) & mine & ~taken).sum() <= room[u]
        # The lowest such edge: any lower one breaks a unit.
        lower = np.nextafter(edge, -np.inf)
        assert any(((f >= lower) & (units == u) & ~taken).sum() > room[u] for u in "ab")


def _inner_evidence(seed: int, edit_lift: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(kind, units, evidence rows, photos) of inner scores: whole AI images told by the mean logit, edits by the
    map's peak (``edit_lift`` standard deviations)."""
    from gamma_detect.train.fusion_loso import ALL_FEATURES

    rng = np.random.default_rng(seed)
    kind = np.repeat(["photo", "ai", "edit", "control"], [200, 100, 200, 200])
    units = np.r_[np.repeat(["a", "b"], 100), np.full(100, ""), np.tile(np.repeat(["a", "b"], 100), 2)]
    x = rng.normal(0, 1, (len(kind), len(ALL_FEATURES)))
    x[kind == "ai", 0] += 3.0
    x[kind == "edit", 3] += edit_lift
    return kind, units, x, kind == "photo"


def test_a_region_share_moves_whole_images_from_ai_to_likely_ai_only():
    from gamma_detect.abstain import AbstentionRule
    from gamma_detect.train.fusion_loso import fit_two_rules
    from gamma_detect.train.loso import Calibration

    kind, units, x, photos = _inner_evidence(1, 3.0)
    cal = Calibration(0.1, 1.0, -1.0, 1.0, AbstentionRule())   # the global rule's edges, as its calibration fitted
    policy, cfg = CropPolicy(coarse_grid=0), LosoConfig()
    for share in (0.0, 0.02):
        rules = fit_two_rules("either", x, x, kind, units, photos, cfg, FusionConfig(region_share=share), policy, cal)
        whole_ai = x[:, 0] >= rules.whole.ai_edge
        assert rules.whole.likely_ai_edge == -1.0            # what the global rule flags stays as it was
        z = rules.combine(x[:, 0], rules.region.logit(x[:, [0, 1, 2, 3, 4]]))
        if share:
            for u in "ab":
                mine = photos & (units == u)
                # The global rule keeps under the promise less the share; both rules together under the promise.
                assert whole_ai[mine].mean() <= cfg.max_ai_rate - cfg.fit_margin - share + 1e-9
                assert (z[mine] >= rules.ai_edge).mean() <= cfg.max_ai_rate - cfg.fit_margin + 1e-9
            assert rules.whole.ai_edge > 1.0
            assert (z[kind == "edit"] >= rules.ai_edge).mean() > region_only   # more room: more edits in `ai`
        else:
            assert rules.whole.ai_edge == 1.0
            region_only = (z[kind == "edit"] >= rules.ai_edge).mean()


def test_a_region_likely_share_leaves_the_region_rule_room_in_likely_ai():
    from gamma_detect.abstain import AbstentionRule
    from gamma_detect.train.fusion_loso import fit_two_rules
    from gamma_detect.train.loso import Calibration

    kind, units, x, photos = _inner_evidence(2, 1.5)   # edits told less surely than the whole images
    cal = Calibration(0.1, 1.0, 1.3, 2.0, AbstentionRule())   # the global rule's edges, as its calibration fitted
    policy, cfg, fcfg = CropPolicy(coarse_grid=0), LosoConfig(), FusionConfig(region_likely_share=0.06)
    flagged = {}
    for name in ("either", "either_likely"):
        rules = fit_two_rules(name, x, x, kind, units, photos, cfg, fcfg, policy, cal)
        z = rules.combine(x[:, 0], rules.region.logit(x[:, [0, 1, 2, 3, 4]]))
        flagged[name] = (z[kind == "edit"] >= rules.likely_ai_edge).mean()
        assert rules.region_likely == (name == "either_likely")
    for u in "ab":
        mine = photos & (units == u)
        # The global rule alone under the promise less the LOSO margin and the share; both rules together under the
        # promise less the LOSO margin (what the global rule alone would flag).
        assert (x[mine, 0] >= rules.whole.likely_ai_edge).mean() <= (
            cfg.max_likely_rate - cfg.fit_margin - fcfg.region_likely_share + 1e-9)
        assert (z[mine] >= rules.likely_ai_edge).mean() <= cfg.max_likely_rate - cfg.fit_margin + 1e-9
    assert flagged["either_likely"] > flagged["either"]   # the region's evidence now reaches `likely_ai`


def test_the_protocol_records_what_the_correction_does_on_held_out_images():
    run_protocol, fcfg, items = _protocol(("global",))
    # A collapsed correction (one constant, as 5 epochs of training gave) against one that raises the edits.
    for lift, spread, auc in ((0.0, (0.0, 1e-9), 0.5), (2.0, (0.5, 2.0), 1.0)):
        items.correction = [np.full(len(v), 3.78 + (lift if k == "edit" else 0.0)) for v, k in zip(items.views, items.kind)]
        run = run_protocol(items)
        for fold in run["folds"]:
            assert fold["correction"]["auc_edit_vs_control"] == auc
            assert spread[0] <= fold["correction"]["std"] < spread[1]
        by_source = summarise([run], fcfg)["decisions"]["global"]["by_source"]
        assert all(v["correction_auc"] == [auc] for v in by_source.values())


def test_the_runtime_scores_by_the_manifests_decision_and_calibrates_the_map(tmp_path_factory, tmp_path):
    import shutil

    from export_support import rgb, tiny_export

    from gamma_detect.runtime import load_detector

    source = tiny_export(tmp_path_factory)
    folder = tmp_path / "model"
    shutil.copytree(source, folder)
    raw = json.loads((folder / "manifest.json").read_text())
    plain = load_detector(folder, threads=1)
    image = rgb(150, 200, 3)
    before = plain.predict([image])[0]
    # A decision that leans on the map's peak far more than on the view scores, and a map level above its values.
    decision = Decision("mask", ("mean_logit", "mask_peak_logit"), np.array([0.1, 2.0]), 1.0, 0.0, 0.5)
    raw["decision"] = decision.to_dict()
    raw["mask_calibration"] = MaskCalibration.at_level(float(before.mask.max()) + 1e-3).to_dict()
    (folder / "manifest.json").write_text(json.dumps(raw))
    fused = load_detector(folder, threads=1)
    after = fused.predict([image], detail=True)[0]
    tiles = fused.tiles([image])[0]
    probabilities, masks, sources = fused._run([tiles.views()])[0]
    evidence, _ = region_evidence(fused.policy, tiles.plan, masks, sources, fused.decision)
    expected = 1 / (1 + np.exp(-decision.logit(features_of(decision, np.log(probabilities / (1 - probabilities)),
                                                              evidence)[None])[0]))
    assert abs(after.probability - expected) < 1e-5 and abs(after.global_probability - before.probability) < 1e-5
    assert after.mask_fraction == 0.0 and before.mask.max() > 0   # calibrated: nothing above 0.5, the map kept
    result = fused.result(after)
    assert result["ai_content"]["region"] is None
    region_decided = result["verdict"] in ("likely_ai", "ai") and plain.result(before)["verdict"] not in ("likely_ai", "ai")
    assert (result["verdict_reason"] == "region") == region_decided
    assert result["ai_content"]["extent"] == ("region" if region_decided else
                                              "whole_image" if result["verdict"] in ("likely_ai", "ai") else "none")


def test_the_report_shows_every_variant_and_the_released_decision(tmp_path):
    from gamma_detect.train.report import LOCAL_EDIT_HEADING, local_edit_table, with_local_edits

    records = _records()
    features = _features(records)
    items = _items(records, features, np.random.default_rng(1))
    fcfg = FusionConfig(decisions=("global", "mask"))
    run = run_seed(Probe(features, np.array([r.label for r in records])), records, items,
                   LosoConfig(c_grid=(0.1,), augment=("aug0",)), fcfg, seed=0, policy=CropPolicy())
    summary = summarise([run], fcfg)
    table = local_edit_table(summary)
    assert all(f"| {name} | {unit} |" in table for name in ("global", "mask")
               for unit in summary["decisions"]["mask"]["by_source"])
    (tmp_path / "report.md").write_text("# r\n\n## Reliability of the calibrated probability\n\nx\n")
    (tmp_path / "report.json").write_text("{}")
    decision = run["folds"][0]["decisions"]["mask"]["fit"]
    for _ in range(2):   # a second release replaces the section
        with_local_edits(tmp_path, summary, decision, run["folds"][0]["mask_calibration"], [])
    text = (tmp_path / "report.md").read_text()
    assert text.count(LOCAL_EDIT_HEADING) == 1 and text.index(LOCAL_EDIT_HEADING) < text.index("## Reliability")
    # Two rules are described as such, the region rule's edge with them.
    with_local_edits(tmp_path, summary, _either().to_dict(), run["folds"][0]["mask_calibration"], [])
    text = (tmp_path / "report.md").read_text()
    assert "two rules: the whole image by features `mean_logit`" in text and "`ai` alone at logit 3.000" in text
    banded = Either(_either().whole, replace(_either().region, likely_ai_edge=1.0))
    with_local_edits(tmp_path, summary, banded.to_dict(), run["folds"][0]["mask_calibration"], [])
    assert "to `likely_ai` at logit 1.000 and to `ai` at 3.000" in (tmp_path / "report.md").read_text()


def test_the_runtime_reads_two_rules_and_says_the_region_decided(tmp_path_factory, tmp_path):
    import shutil

    from export_support import rgb, tiny_export

    from gamma_detect.runtime import load_detector
    from gamma_detect.train.calibrate import bands_from_edges
    from gamma_detect.verdict import verdict

    source = tiny_export(tmp_path_factory)
    image = rgb(150, 200, 3)
    plain = load_detector(source, threads=1)
    before = plain.predict([image], detail=True)[0]
    alone = float(np.log(before.probability / (1 - before.probability)))
    tiles = plain.tiles([image])[0]
    probabilities, masks, sources = plain._run([tiles.views()])[0]
    whole = Decision("global", ("mean_logit",), np.array([1.0]), 0.0, alone + 1.0, alone + 2.0)  # alone: not AI
    peak = float(region_evidence(plain.policy, tiles.plan, masks, sources, whole)[0][1])
    sig = lambda v: float(1 / (1 + np.exp(-v)))   # noqa: E731
    bands = bands_from_edges(sig(whole.likely_ai_edge), sig(whole.ai_edge))
    for name, edge, want, reason, z in (("raised", peak - 0.5, "ai", "region", alone + 2.5),
                                        ("under", peak + 0.5, verdict(sig(alone), bands), "pixels", alone)):
        folder = tmp_path / name
        shutil.copytree(source, folder)
        raw = json.loads((folder / "manifest.json").read_text())
        region = Decision("either", ("mask_peak_logit",), np.array([1.0]), 0.0, np.inf, edge)
        raw["decision"] = Either(whole, region).to_dict()
        raw["verdict_bands"] = bands
        (folder / "manifest.json").write_text(json.dumps(raw))
        detector = load_detector(folder, threads=1)
        after = detector.predict([image], detail=True)[0]
        assert abs(after.probability - sig(z)) < 1e-5 and abs(after.global_probability - before.probability) < 1e-5
        result = detector.result(after)
        assert (result["verdict"], result["verdict_reason"]) == (want, reason), result
        assert want not in ("likely_ai", "ai") or name == "raised"   # the image alone is not called AI
        assert result["ai_content"]["extent"] == ("region" if want == "ai" else "none")

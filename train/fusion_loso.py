"""Whether and where, measured: local AI edits and region-evidence fusion inside leave-one-photo-source-out.

The outer protocol is ``loso.py``'s (photo units held out with the generator families dealt to them, the probe,
its temperature and bands fitted nested on the training sources, the staged crop policy replayed from cached
views). Beside every starter image it scores, per seed, the local edits of ``local_edit.py``: each held-out
photo edited with a region of an AI image of the held-out families, and its unedited control processed alike.

The decision variants (``DECISIONS``) turn per-image evidence into a verdict:

- ``global``: the probe's mean view logit alone (0.3.0: what ships today);
- ``worst_crop``, ``mask``, ``full``: a logistic regression on the mean view logit plus the worst view's logit,
  the head-1 map's top-share mass and peak, and the head-2 `generated` + `inpainted` share (``EVIDENCE``);
- ``contrast``, ``contrast_full``: the same with the map's evidence taken relative to its own median
  (``mask_contrast_logit``), so a photo whose map runs hot everywhere does not count as a region;
- ``attention``, ``attention_full``: ``global`` and ``full`` with each view's logit corrected by the reverse
  cross-attention (GAMMA's own decision: the graph's view logit when the correction is trained);
- ``either``, ``either_contrast``: two rules (``decision.Either``): ``global``'s bands, and a ``full`` fusion (with
  the map's contrast to its own median) of edits against photos and controls that may raise a verdict to `ai` alone;
- ``either_likely``: ``either`` whose region fusion may raise to `likely_ai` too (its own `likely_ai` edge, the
  global rule's refitted to leave it ``region_likely_share`` of that allowance).

Nothing light is fitted on what it is measured on: the fusion weights, the fused score's band edges and the
head-1 map's threshold are fitted per outer fold on *inner* out-of-fold probe scores of the training sources
(the probe refitted without each inner source, at the outer fit's C and temperature) and on their edits, then
applied to the held-out source. The choice among variants is made on those inner scores too
(``choose``). The head-1/head-2 maps come from one released checkpoint whose heads were trained on every
starter photo (with synthetic manipulations, never these edits): the map evidence is not held out -- unless
``FusionConfig.fold_heads``: then every outer fold trains its own heads and correction on its training images and
their local edits (``train/fold_heads.py``), and each image's outputs come from the model of its own fold.

Each fold's fitted decision is the manifest's ``decision`` section (``to_dict``), read by ``gamma_detect.decision``
exactly as the protocol applies it: the staged replay's stop rule is the rule's own stage-0 score, as the runtime's.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from tqdm import tqdm
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from ..crops import CropPolicy
from ..decision import EVIDENCE, VIEW_FEATURES, Decision, Either, MaskCalibration, region_evidence
from .calibrate import bands_from_edges
from .config import TrainConfig
from .fold_heads import HEAD_RECIPE, train_fold_heads
from .local_edit import build_edits
from .loso import (Calibration, LosoConfig, Probe, _source_edge, fold_seed, inner_folds, load_features,
                   nested_fit, outer_folds, photo_units)
from .region_outputs import RegionOutputs, ViewOutputs
from .sources import ImageRecord

@dataclass(frozen=True)
class Variant:
    features: tuple[str, ...]   # the decision's inputs (``decision.FEATURES``)
    attention: bool = False     # view logits corrected by the reverse cross-attention
    region_rule: bool = False   # two rules (``Either``): ``global``'s bands, and this fusion raising to `ai`
    region_likely: bool = False  # ... and to `likely_ai` too


_FULL = ("mean_logit", "max_view_logit", "mask_top_logit", "mask_peak_logit", "generated_share_logit")
DECISIONS = {
    "global": Variant(("mean_logit",)),
    "worst_crop": Variant(("mean_logit", "max_view_logit")),
    "mask": Variant(("mean_logit", "mask_top_logit", "mask_peak_logit")),
    "full": Variant(_FULL),
    "contrast": Variant(("mean_logit", "mask_contrast_logit")),
    "contrast_full": Variant(("mean_logit", "max_view_logit", "mask_contrast_logit", "generated_share_logit")),
    "attention": Variant(("mean_logit",), attention=True),
    "attention_full": Variant(_FULL, attention=True),
    "either": Variant(_FULL, region_rule=True),
    "either_contrast": Variant(_FULL + ("mask_contrast_logit",), region_rule=True),
    "either_likely": Variant(_FULL, region_rule=True, region_likely=True),
}
WITHOUT_ATTENTION = ("global", "worst_crop", "mask", "full")   # the released heads' correction is zero
KINDS = ("photo", "ai", "edit", "control")


@dataclass(frozen=True)
class FusionConfig:
    decisions: tuple[str, ...] = WITHOUT_ATTENTION
    # The head-1 threshold is the lowest that keeps every training source's untouched photos (as published and
    # processed) at or under these mask fractions: well under the goal (5 % mean, 2 % median), as the bands are,
    # since an unseen source's maps run hotter than the training sources' (interiors: 3 % / 1 % gave 6.5-8 % /
    # 3.2-4.1 % on 3 seeds; README, "The head-1 level").
    mask_mean: float = 0.01
    mask_median: float = 0.002
    fusion_c: float = 1.0
    large_edit: float = 0.15   # the "edits of 15 % of the image or more"
    # Whose scores the fused bands' edges keep under the promise on every inner source: the photos as published,
    # and optionally their processed controls too (hard negatives: the promise is about photos as they come).
    edge_kinds: tuple[str, ...] = ("photo",)
    # How far under each promise the fused bands' edges are fitted on the inner sources (None: the LOSO recipe's).
    fit_margin: float | None = None
    # Two rules: the part of the `ai` allowance kept for the region rule (the global rule's `ai` edge refitted on
    # the inner scores under the promise less the LOSO recipe's margin and this share; its `likely_ai` edge, so
    # what it flags, unchanged). ``fit_margin`` is the region rule's.
    region_share: float = 0.0
    # The same for `likely_ai` (``either_likely``): the global rule's `likely_ai` edge refitted under the promise less
    # the LOSO margin and this share; the region rule's over what it leaves, both together under the promise less the
    # LOSO margin (what the global rule alone flags: the share flagged does not rise on the inner sources).
    region_likely_share: float = 0.05
    # Heads, decoder and correction trained per outer fold (``train/fold_heads.py``), with ``head_recipe``'s
    # overrides of the starter preset; false: the maps of the checkpoint the protocol is given.
    fold_heads: bool = False
    head_recipe: tuple[str, ...] = HEAD_RECIPE

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))


@dataclass
class Items:
    """Every image the protocol scores for one seed: kind, starter record it comes from, evidence."""
    kind: np.ndarray            # KINDS
    record: np.ndarray          # index into the starter records (the photo an edit or control was made from)
    views: list[np.ndarray]     # probe feature rows per view (one-stage cache order, global view last)
    head0: np.ndarray           # (N, len(EVIDENCE)) head evidence of the global view alone (stage 0)
    head: np.ndarray            # (N, len(EVIDENCE)) head evidence of every view
    maps: list[np.ndarray]      # the stitched raw head-1 map of every view, <= map_side px
    truth: list[np.ndarray | None]  # the pasted region at the map's size (edits)
    area: np.ndarray            # the pasted region's share (edits; 0 otherwise)
    names: list[str] = field(default_factory=list)
    correction: list[np.ndarray] = field(default_factory=list)  # per view: the attention's correction (logit)


def _items(outputs: Sequence[ViewOutputs], kinds: Sequence[str], records: Sequence[int], policy: CropPolicy,
           decision: Decision, masks: Sequence[Path | None], names: Sequence[str]) -> Items:
    staged = replace(policy, coarse_grid=0, refine_bands=policy.refine_bands or ("likely_real",))
    head0, head, maps, truth, area = [], [], [], [], []
    for out, mask_file in zip(outputs, masks):
        plan = staged.plan(*out.size)
        order = [len(out.mask) - 1, *range(len(out.mask) - 1)]  # the staged plan's order: global view first
        m, s = out.mask[order], out.sources[order]
        head0.append(region_evidence(staged, plan, m[:1], s[:1], decision)[0])
        e, stitched = region_evidence(staged, plan, m, s, decision)
        head.append(e)
        maps.append(stitched)
        if mask_file is None:
            truth.append(None)
            area.append(0.0)
        else:
            gt = cv2.imread(str(mask_file), cv2.IMREAD_GRAYSCALE) > 127
            area.append(float(gt.mean()))
            truth.append(cv2.resize(gt.astype(np.uint8), stitched.shape[::-1], interpolation=cv2.INTER_NEAREST) > 0)
    return Items(np.array(kinds), np.array(records), [o.rows for o in outputs], np.array(head0), np.array(head),
                 maps, truth, np.array(area), list(names), [o.correction for o in outputs])


def _concat(a: Items, b: Items) -> Items:
    return Items(np.concatenate([a.kind, b.kind]), np.concatenate([a.record, b.record]), a.views + b.views,
                 np.concatenate([a.head0, b.head0]), np.concatenate([a.head, b.head]), a.maps + b.maps,
                 a.truth + b.truth, np.concatenate([a.area, b.area]), a.names + b.names, a.correction + b.correction)


def _probe_evidence(items: Items, which: np.ndarray, weight: np.ndarray, bias: float, temperature: float
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(stage-0, every view) evidence rows of ``which`` under one probe: [mean, max view logit, head evidence,
    mean and max view logit with the attention's correction]."""
    x0, x = [], []
    for i in which:
        z = items.views[i] @ weight + bias
        zc = (z + (items.correction[i] if items.correction else 0.0)) / temperature
        z = z / temperature
        x0.append([z[-1], z[-1], *items.head0[i], zc[-1], zc[-1]])
        x.append([z.mean(), z.max(), *items.head[i], zc.mean(), zc.max()])
    return np.array(x0).reshape(-1, len(ALL_FEATURES)), np.array(x).reshape(-1, len(ALL_FEATURES))


ALL_FEATURES = ("mean_logit", "max_view_logit", *EVIDENCE, "attention_mean_logit", "attention_max_view_logit")


def _columns(variant: Variant) -> list[int]:
    """Where each of the variant's inputs lies in the evidence rows (corrected view logits for the attention)."""
    return [ALL_FEATURES.index(f"attention_{n}" if variant.attention and n in VIEW_FEATURES else n)
            for n in variant.features]


def _logits(decision: Decision | Either, name: str, x: np.ndarray) -> np.ndarray:
    """Image logits of evidence rows ``x`` (``ALL_FEATURES``) under variant ``name``'s decision."""
    pick = _columns(DECISIONS[name])
    if isinstance(decision, Either):
        return decision.combine(decision.whole.logit(x[:, _columns(DECISIONS["global"])]), decision.region.logit(x[:, pick]))
    return decision.logit(x[:, pick])


def _staged(decision: Decision | Either, name: str, x0: np.ndarray, x: np.ndarray, policy: CropPolicy
            ) -> tuple[np.ndarray, np.ndarray]:
    """Final logit and views-refined flag: stage 0 decides (its score's band) whether the grid runs."""
    f0, f = _logits(decision, name, x0), _logits(decision, name, x)
    if not policy.staged:
        return f, np.ones(len(f), bool)
    bands = bands_from_edges(_sigmoid(decision.likely_ai_edge), _sigmoid(decision.ai_edge))
    refine = np.array([policy.refines(_sigmoid(v), bands) for v in f0], bool)
    return np.where(refine, f, f0), refine


def _sigmoid(z: float) -> float:
    return float(1 / (1 + np.exp(-np.clip(z, -500, 500))))


def _band(f: np.ndarray, fusion: Decision | Either) -> np.ndarray:
    return np.where(f >= fusion.ai_edge, "ai", np.where(f >= fusion.likely_ai_edge, "likely_ai", "other"))


def verdicts(decision: Decision | Either, name: str, x0: np.ndarray, x: np.ndarray, policy: CropPolicy
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image logit, band, views refined) of evidence rows ``x0``/``x`` (``ALL_FEATURES``) under variant ``name``:
    the score a runtime reports (the AUCs are over it)."""
    f, refined = _staged(decision, name, x0, x, policy)
    return f, _band(f, decision), refined


def _logistic(x: np.ndarray, target: np.ndarray, fcfg: FusionConfig) -> tuple[np.ndarray, float]:
    """Logistic weights and bias on standardised columns, returned on the raw columns' scale."""
    mean, scale = x.mean(0), x.std(0) + 1e-9
    model = LogisticRegression(C=fcfg.fusion_c, max_iter=2000).fit((x - mean) / scale, target)
    weights = model.coef_[0] / scale
    return weights, float(model.intercept_[0] - weights @ mean)


def fit_two_rules(name: str, x0: np.ndarray, x: np.ndarray, kind: np.ndarray, units: np.ndarray, photos: np.ndarray,
                  cfg: LosoConfig, fcfg: FusionConfig, policy: CropPolicy, cal: Calibration) -> Either:
    """``Either`` on inner out-of-fold evidence: ``global`` as fitted alone (its `ai` edge raised to leave
    ``region_share`` of the allowance, and for ``region_likely`` its `likely_ai` edge to leave
    ``region_likely_share``), then the region fusion of edits against photos and controls, its edges over the photos
    (``photos``: ``edge_kinds``) the global rule leaves in each band (`ai` under the promise less ``fit_margin``,
    `likely_ai` less the LOSO recipe's margin); fitted on the global rule's staged replay, replayed with both rules,
    refitted."""
    margin = cfg.fit_margin if fcfg.fit_margin is None else fcfg.fit_margin
    variant = DECISIONS[name]
    kept = np.ones(photos.sum(), bool)
    g, pick = _columns(DECISIONS["global"]), _columns(variant)
    whole = fit_decision("global", x0, x, np.isin(kind, ("ai", "edit")).astype(int), units, photos, cfg, fcfg,
                         policy, cal)

    def kept_for_region(edge: float, rate: float, share: float) -> float:
        fg, _ = _staged(whole, "global", x0, x, policy)
        return max(edge, _source_edge(fg[photos], units[photos], kept, max(0.0, rate - cfg.fit_margin - share)))

    if fcfg.region_share:
        ai = kept_for_region(whole.ai_edge, cfg.max_ai_rate, fcfg.region_share)
        whole = replace(whole, ai_edge=ai, likely_ai_edge=min(whole.likely_ai_edge, ai))
    if variant.region_likely:
        likely = kept_for_region(whole.likely_ai_edge, cfg.max_likely_rate, fcfg.region_likely_share)
        whole = replace(whole, likely_ai_edge=min(likely, whole.ai_edge))
    rows = np.isin(kind, ("edit", "photo", "control"))
    weights, bias = _logistic(x[rows][:, pick], (kind[rows] == "edit").astype(int), fcfg)
    region = Decision(name, variant.features, weights, bias, np.inf, np.inf)

    def edge(fr: np.ndarray, taken: np.ndarray, rate: float) -> float:
        e = _source_edge(fr[photos], units[photos], kept, max(0.0, rate), taken=taken[photos])
        return e if np.isfinite(e) else float(np.nextafter(fr[photos].max(), np.inf))   # nothing to spare: none

    def edges(refined: np.ndarray) -> Decision:
        ran = np.where(refined[:, None], x, x0)
        fg, fr = whole.logit(ran[:, g]), region.logit(ran[:, pick])
        ai = edge(fr, fg >= whole.ai_edge, cfg.max_ai_rate - margin)
        likely = np.inf
        if variant.region_likely and whole.likely_band:
            likely = min(edge(fr, fg >= whole.likely_ai_edge, cfg.max_likely_rate - cfg.fit_margin), ai)
        return replace(region, likely_ai_edge=likely, ai_edge=ai)

    _, refined = _staged(whole, "global", x0, x, policy)
    either = Either(whole, edges(refined), name)
    if policy.staged:
        _, refined = _staged(either, name, x0, x, policy)
        either = Either(whole, edges(refined), name)
    return either


def _edges(f: np.ndarray, units: np.ndarray, photos: np.ndarray, cfg: LosoConfig) -> tuple[float, float]:
    kept = np.ones(photos.sum(), bool)
    ai = _source_edge(f[photos], units[photos], kept, max(0.0, cfg.max_ai_rate - cfg.fit_margin))
    likely = min(_source_edge(f[photos], units[photos], kept, max(0.0, cfg.max_likely_rate - cfg.fit_margin)), ai)
    return likely, ai


def fit_decision(name: str, x0: np.ndarray, x: np.ndarray, target: np.ndarray, units: np.ndarray,
                 photos: np.ndarray, cfg: LosoConfig, fcfg: FusionConfig, policy: CropPolicy,
                 cal: Calibration) -> Decision:
    """One decision variant fitted on inner out-of-fold evidence: weights on every view's evidence (``target``: AI
    image or edit), then band edges on the staged replay (fitted once on one stage, replayed, refitted)."""
    variant = DECISIONS[name]
    pick = _columns(variant)
    if variant.features == ("mean_logit",):   # the view logits' own scale: the probe's, or the graph's (attention)
        weights, bias = np.array([1.0]), 0.0
    else:
        weights, bias = _logistic(x[:, pick], target, fcfg)
    fusion = Decision(name, variant.features, weights, bias, -np.inf, np.inf)
    if name == "global":   # the probe's own nested calibration: exactly today's protocol
        return replace(fusion, likely_ai_edge=cal.likely_ai_edge, ai_edge=cal.ai_edge)
    cfg = cfg if fcfg.fit_margin is None else replace(cfg, fit_margin=fcfg.fit_margin)
    f = fusion.logit(x[:, pick])
    fusion = replace(fusion, **dict(zip(("likely_ai_edge", "ai_edge"), _edges(f, units, photos, cfg))))
    if policy.staged:
        f, _ = _staged(fusion, name, x0, x, policy)
        fusion = replace(fusion, **dict(zip(("likely_ai_edge", "ai_edge"), _edges(f, units, photos, cfg))))
    return fusion


def fit_mask_threshold(maps: Sequence[np.ndarray], units: np.ndarray, fcfg: FusionConfig) -> MaskCalibration:
    """The lowest head-1 level (a probability of the raw map) that keeps every unit's untouched photos at or
    under the mean and median mask fractions of ``fcfg``; folded into the map as a logit bias, so 0.5 stays
    the decision level of the calibrated map."""
    grid = np.concatenate([[0.5], np.linspace(0.5, 0.999, 200)[1:]])
    for level in grid:
        ok = True
        for unit in np.unique(units):
            fractions = np.array([(m > level).mean() for m, u in zip(maps, units) if u == unit])
            if fractions.mean() > fcfg.mask_mean or np.median(fractions) > fcfg.mask_median:
                ok = False
                break
        if ok:
            return MaskCalibration.at_level(float(level))
    return MaskCalibration.at_level(float(grid[-1]))


def _mask_scores(maps: Sequence[np.ndarray], truth: Sequence[np.ndarray], cal: MaskCalibration) -> dict:
    f1, iou, point = [], [], []
    for m, t in zip(maps, truth):
        pred = cal.apply(m) > 0.5
        inter, union = float((pred & t).sum()), float((pred | t).sum())
        f1.append(2 * inter / max(pred.sum() + t.sum(), 1))
        iou.append(inter / max(union, 1))
        point.append(bool(t.flat[int(np.argmax(m))]))
    return {"mask_f1": float(np.mean(f1)), "mask_iou": float(np.mean(iou)), "pointing": float(np.mean(point))}


def _auc(pos: np.ndarray, neg: np.ndarray) -> float | None:
    if not len(pos) or not len(neg):
        return None
    return float(roc_auc_score(np.r_[np.ones(len(pos)), np.zeros(len(neg))], np.r_[pos, neg]))


def measure(items: Items, test: np.ndarray, f: np.ndarray, band: np.ndarray, refined: np.ndarray,
            mask_cal: MaskCalibration, fcfg: FusionConfig) -> dict:
    """The numbers of record for one held-out unit (``test``: its items, ``f``: their final scores, ``band``: their
    verdict bands)."""
    kind = items.kind[test]
    flagged = band != "other"
    out: dict = {}
    for k in KINDS:
        sel = kind == k
        out[k] = {"n": int(sel.sum()), "in_ai": float((band[sel] == "ai").mean()) if sel.any() else None,
                  "flagged": float(flagged[sel].mean()) if sel.any() else None,
                  "views_refined": float(refined[sel].mean()) if sel.any() else None}
    edits = np.flatnonzero(kind == "edit")
    large = edits[items.area[test][edits] >= fcfg.large_edit]
    out["edit"]["flagged_large"] = float(flagged[large].mean()) if len(large) else None
    out["edit"]["n_large"] = int(len(large))
    out["auc_edit_vs_control"] = _auc(f[kind == "edit"], f[kind == "control"])
    out["auc_large_edit_vs_control"] = _auc(f[large], f[kind == "control"])
    out["auc_ai_vs_photo"] = _auc(f[kind == "ai"], f[kind == "photo"])
    glob = test[edits]
    out["mask"] = _mask_scores([items.maps[i] for i in glob], [items.truth[i] for i in glob], mask_cal)
    out["mask_raw"] = _mask_scores([items.maps[i] for i in glob], [items.truth[i] for i in glob],
                                   MaskCalibration.at_level(0.5))
    for k in ("photo", "control"):
        sel = test[kind == k]
        fr = np.array([(mask_cal.apply(items.maps[i]) > 0.5).mean() for i in sel])
        raw = np.array([(items.maps[i] > 0.5).mean() for i in sel])
        out[k].update({"mask_fraction_mean": float(fr.mean()), "mask_fraction_median": float(np.median(fr)),
                       "raw_mask_fraction_mean": float(raw.mean()), "raw_mask_fraction_median": float(np.median(raw))})
    return out


@dataclass
class FoldFit:
    """What one outer fold fits on its training sources: the probe's nested calibration and fit, the inner
    out-of-fold evidence of the training items (``train``), and the head-1 map's level."""
    cal: Calibration
    weight: np.ndarray
    bias: float
    train: np.ndarray
    x0: np.ndarray
    x: np.ndarray
    mask_cal: MaskCalibration

    def decision(self, name: str, items: Items, unit_of: np.ndarray, cfg: LosoConfig, fcfg: FusionConfig,
                 policy: CropPolicy) -> Decision | Either:
        kind = items.kind[self.train]
        if DECISIONS[name].region_rule:
            return fit_two_rules(name, self.x0, self.x, kind, unit_of[self.train], np.isin(kind, fcfg.edge_kinds),
                                 cfg, fcfg, policy, self.cal)
        target = np.isin(kind, ("ai", "edit")).astype(int)
        return fit_decision(name, self.x0, self.x, target, unit_of[self.train], np.isin(kind, fcfg.edge_kinds), cfg,
                            fcfg, policy, self.cal)


def fit_fold(probe: Probe, records: Sequence[ImageRecord], items: Items, index: np.ndarray, units: list[str | None],
             cfg: LosoConfig, fcfg: FusionConfig, seed: int, policy: CropPolicy) -> FoldFit:
    """The nested fit on the records in ``index`` (and the items made from them): the probe as ``loso.nested_fit``
    fits it, then the probe refitted without each inner source at its C scores that source's items."""
    cal, weight, bias = nested_fit(probe, records, index, units, cfg, seed, policy)
    inner = inner_folds(records, index, units, seed)
    inner_of = dict(zip(index.tolist(), inner.tolist()))
    train = np.flatnonzero(np.isin(items.record, index))
    x0, x = np.empty((len(train), len(ALL_FEATURES))), np.empty((len(train), len(ALL_FEATURES)))
    tfold = np.array([inner_of[r] for r in items.record[train]])
    for j in range(int(inner.max()) + 1):
        w, b = probe.fit(index[inner != j], cal.c)
        sel = tfold == j
        x0[sel], x[sel] = _probe_evidence(items, train[sel], w, b, cal.temperature)
    unit_of = np.array([units[r] or "" for r in items.record])
    quiet = train[np.isin(items.kind[train], ("photo", "control"))]
    mask_cal = fit_mask_threshold([items.maps[i] for i in quiet], unit_of[quiet], fcfg)
    return FoldFit(cal, weight, bias, train, x0, x, mask_cal)


def run_seed(probe: Probe, records: Sequence[ImageRecord], items: Items, cfg: LosoConfig, fcfg: FusionConfig,
             seed: int, policy: CropPolicy) -> dict:
    """One seed: every outer fold, every decision variant fitted on inner scores and measured outer."""
    units = photo_units(records, cfg.min_source_photos)
    outer_units, fold = outer_folds(records, units, seed)
    unit_of = np.array([units[r] or "" for r in items.record])
    folds = []
    for k, unit in enumerate(outer_units):
        fit = fit_fold(probe, records, items, np.flatnonzero(fold != k), units, cfg, fcfg, fold_seed(seed, k),
                       policy)
        test = np.flatnonzero(fold[items.record] == k)
        t0, t = _probe_evidence(items, test, fit.weight, fit.bias, fit.cal.temperature)
        row = {"held_out": unit, "probe": fit.cal.to_dict(), "mask_calibration": fit.mask_cal.to_dict(),
               "correction": _correction_stats(items, test), "decisions": {}}
        for name in fcfg.decisions:
            fusion = fit.decision(name, items, unit_of, cfg, fcfg, policy)
            fi, _, _ = verdicts(fusion, name, fit.x0, fit.x, policy)
            f, band, refined = verdicts(fusion, name, t0, t, policy)
            row["decisions"][name] = {"fit": fusion.to_dict(), "inner": _inner_score(fi, items.kind[fit.train]),
                                      "outer": measure(items, test, f, band, refined, fit.mask_cal, fcfg)}
        folds.append(row)
    return {"seed": seed, "folds": folds}


def _correction_stats(items: Items, test: np.ndarray) -> dict:
    """What the attention's correction does on held-out images: its spread over them (a collapsed correction is a
    constant) and how it ranks edits against their controls, by each image's mean over its views."""
    if not items.correction:
        return {"std": 0.0, "auc_edit_vs_control": None}
    c = np.array([float(np.mean(items.correction[i])) for i in test])
    kind = items.kind[test]
    return {"std": float(c.std()), "auc_edit_vs_control": _auc(c[kind == "edit"], c[kind == "control"])}


def _inner_score(f: np.ndarray, kind: np.ndarray) -> dict:
    """What the choice among variants sees: inner out-of-fold AUCs (edits vs controls, AI vs photos)."""
    return {"auc_edit_vs_control": _auc(f[kind == "edit"], f[kind == "control"]),
            "auc_ai_vs_photo": _auc(f[kind == "ai"], f[kind == "photo"])}


def choose(seeds: list[dict], fcfg: FusionConfig) -> str:
    """The variant with the best mean inner score (mean of its two inner AUCs over folds and seeds)."""
    def inner(name: str) -> float:
        return float(np.mean([np.mean(list(f["decisions"][name]["inner"].values())) for s in seeds for f in s["folds"]]))
    return max(fcfg.decisions, key=inner)


def _pooled(folds: list[dict], name: str, kind: str, key: str, count: str = "n") -> tuple[float, int]:
    """(how many of variant ``name``'s ``kind`` items have ``key``, pooled over ``folds`` from each fold's rate and
    count; the count)."""
    rows = [f["decisions"][name]["outer"][kind] for f in folds]
    return sum((r[key] or 0) * r[count] for r in rows if r[count]), sum(r[count] for r in rows)


def summarise(seeds: list[dict], fcfg: FusionConfig) -> dict:
    """Per variant and held-out unit: the worst seed of each rate (and the mean), plus the promise checks."""
    heads = ("heads, decoder and correction trained per outer fold on its training images and their local edits; "
             "each image's maps from its own fold's model" if fcfg.fold_heads else
             "head-1/head-2 maps from one checkpoint trained on every starter photo (not held out)")
    out = {"config": fcfg.to_dict(), "seeds": [s["seed"] for s in seeds], "chosen": choose(seeds, fcfg),
           "note": f"{heads}; probe, fusion weights, bands and mask threshold fitted per outer fold on inner scores",
           "decisions": {}}
    units = [f["held_out"] for f in seeds[0]["folds"]]
    for name in fcfg.decisions:
        per_unit = {}
        for u in units:
            held = [next(f for f in s["folds"] if f["held_out"] == u) for s in seeds]   # u's fold in each seed
            rows = [f["decisions"][name]["outer"] for f in held]
            # Seeds run before the correction was recorded have none.
            corrections = [f.get("correction", {}) for f in held]

            def worst(get, low: bool = True):
                values = [get(r) for r in rows]
                values = [v for v in values if v is not None]
                return (min(values) if low else max(values)) if values else None
            per_unit[u] = {
                "photos": rows[0]["photo"]["n"], "edits": rows[0]["edit"]["n"],
                "photo_in_ai": worst(lambda r: r["photo"]["in_ai"], False),
                "photo_flagged": worst(lambda r: r["photo"]["flagged"], False),
                "control_in_ai": worst(lambda r: r["control"]["in_ai"], False),
                "control_flagged": worst(lambda r: r["control"]["flagged"], False),
                "edit_flagged": worst(lambda r: r["edit"]["flagged"]),
                "edit_flagged_large": worst(lambda r: r["edit"]["flagged_large"]),
                "edit_in_ai": worst(lambda r: r["edit"]["in_ai"]),
                "auc_edit_vs_control": worst(lambda r: r["auc_edit_vs_control"]),
                "auc_large_edit_vs_control": worst(lambda r: r["auc_large_edit_vs_control"]),
                "ai_flagged": worst(lambda r: r["ai"]["flagged"]),
                "mask_f1": worst(lambda r: r["mask"]["mask_f1"]), "mask_iou": worst(lambda r: r["mask"]["mask_iou"]),
                "mask_iou_raw": worst(lambda r: r["mask_raw"]["mask_iou"]),
                "pointing": worst(lambda r: r["mask"]["pointing"]),
                "photo_mask_mean": worst(lambda r: r["photo"]["mask_fraction_mean"], False),
                "photo_mask_median": worst(lambda r: r["photo"]["mask_fraction_median"], False),
                "photo_mask_mean_raw": worst(lambda r: r["photo"]["raw_mask_fraction_mean"], False),
                "photo_mask_median_raw": worst(lambda r: r["photo"]["raw_mask_fraction_median"], False),
                "control_mask_mean": worst(lambda r: r["control"]["mask_fraction_mean"], False),
                "control_mask_median": worst(lambda r: r["control"]["mask_fraction_median"], False),
                "mask_level": [f["mask_calibration"]["level"] for f in held],
                "correction_std": [c.get("std") for c in corrections],
                "correction_auc": [c.get("auc_edit_vs_control") for c in corrections]}
        pooled = []
        for s in seeds:
            ai, n = _pooled(s["folds"], name, "ai", "flagged")
            ai_in_ai, _ = _pooled(s["folds"], name, "ai", "in_ai")
            edits, n_edits = _pooled(s["folds"], name, "edit", "flagged")
            large, n_large = _pooled(s["folds"], name, "edit", "flagged_large", count="n_large")
            pooled.append({"seed": s["seed"], "ai_recall_flag": ai / n, "ai_in_ai": ai_in_ai / n,
                           "edit_flagged": edits / n_edits,
                           "edit_flagged_large": large / max(n_large, 1)})
        out["decisions"][name] = {
            "by_source": per_unit, "per_seed": pooled,
            "worst": {"photo_in_ai": max(v["photo_in_ai"] for v in per_unit.values()),
                      "ai_recall_flag": min(p["ai_recall_flag"] for p in pooled),
                      "ai_in_ai": min(p["ai_in_ai"] for p in pooled),
                      "edit_flagged": min(p["edit_flagged"] for p in pooled),
                      "edit_flagged_large": min(p["edit_flagged_large"] for p in pooled),
                      "auc_edit_vs_control": min(v["auc_edit_vs_control"] for v in per_unit.values()),
                      "mask_iou": min(v["mask_iou"] for v in per_unit.values()),
                      "photo_mask_mean": max(v["photo_mask_mean"] for v in per_unit.values()),
                      "photo_mask_median": max(v["photo_mask_median"] for v in per_unit.values())}}
    return out


def load_items(records: Sequence[ImageRecord], regions: RegionOutputs | Sequence[RegionOutputs], edit_root: Path,
               seed: int, cfg: LosoConfig, policy: CropPolicy, decision: Decision, progress: bool) -> Items:
    """The starter images and this seed's edits and controls, with their evidence (computed where missing):
    from one model, or from the model of each image's outer fold (``regions[k]``: fold ``k``'s heads)."""
    units = photo_units(records, cfg.min_source_photos)
    _, fold = outer_folds(records, units, seed)
    photos = [i for i, r in enumerate(records) if r.label == 0]
    donors = [[records[j] for j in np.flatnonzero((fold == fold[i]) & (np.array([r.label for r in records]) == 1))]
              for i in photos]
    edits = build_edits([records[i] for i in photos], donors, edit_root / f"seed{seed}", seed, progress)
    per_fold = [regions] * (int(fold.max()) + 1) if isinstance(regions, RegionOutputs) else list(regions)

    def outputs(paths: Sequence[Path], of: Sequence[int]) -> list[ViewOutputs]:
        return [per_fold[fold[i]].get(p) for p, i in tqdm(list(zip(paths, of)), desc=f"region outputs seed {seed}",
                                                           unit="img", disable=not progress)]
    clean = outputs([r.path for r in records], range(len(records)))
    base = _items(clean, ["ai" if r.label else "photo" for r in records], range(len(records)), policy, decision,
                  [None] * len(records), [r.path.name for r in records])
    edited = outputs([e.edit for e in edits] + [e.control for e in edits], photos + photos)
    extra = _items(edited, ["edit"] * len(edits) + ["control"] * len(edits), photos + photos, policy, decision,
                   [e.mask for e in edits] + [None] * len(edits), [e.edit.name for e in edits] + [e.control.name for e in edits])
    return _concat(base, extra)


def run(records: Sequence[ImageRecord], policy: CropPolicy, checkpoint: str | Path, out_dir: str | Path,
        cfg: LosoConfig = LosoConfig(), fcfg: FusionConfig = FusionConfig(), seeds: Sequence[int] = (0, 1, 2),
        cache_root: str | Path = "work/features", progress: bool = True) -> dict:
    """The protocol for every seed; writes ``<out_dir>/seed<k>.json`` (resumed when present) and ``summary.json``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    features = load_features(records, policy, cfg, cache_root, progress)
    probe = Probe(features, np.array([r.label for r in records]))
    released = None if fcfg.fold_heads else RegionOutputs(checkpoint, policy, Path(cache_root) / "regions")
    runs = []
    for seed in seeds:
        file = out_dir / f"seed{seed}.json"
        saved = json.loads(file.read_text()) if file.exists() else None
        if not saved or saved.get("config") != fcfg.to_dict():
            regions = released or train_fold_heads(records, probe, policy, cfg, fcfg.head_recipe, seed,
                                                   out_dir / "heads", cache_root, progress)
            items = load_items(records, regions, Path(cache_root) / "local-edits", seed, cfg, policy, Decision.empty(),
                               progress)
            saved = {"config": fcfg.to_dict(), **run_seed(probe, records, items, cfg, fcfg, seed, policy)}
            file.write_text(json.dumps(saved))
        runs.append(saved)
    summary = summarise(runs, fcfg)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def release_decision(records: Sequence[ImageRecord], policy: CropPolicy, checkpoint: str | Path, name: str,
                     cfg: LosoConfig = LosoConfig(), fcfg: FusionConfig = FusionConfig(),
                     cache_root: str | Path = "work/features", seed: int = 0, heads_dir: str | Path | None = None,
                     progress: bool = True) -> tuple[Decision | Either, MaskCalibration, Calibration]:
    """The released decision: variant ``name`` fitted by the same nested steps on every source (inner LOSO over all
    of them, seed ``seed``'s edits), and the head-1 level on every source's untouched photos. With
    ``fcfg.fold_heads`` each image's evidence comes from seed ``seed``'s model of its fold (``heads_dir``: the
    protocol's, resumed), which never trained on it; the released heads, trained on every image, then apply it."""
    features = load_features(records, policy, cfg, cache_root, progress)
    probe = Probe(features, np.array([r.label for r in records]))
    if fcfg.fold_heads:
        if heads_dir is None:
            raise ValueError("fold_heads: pass heads_dir, the protocol's per-fold heads")
        regions = train_fold_heads(records, probe, policy, cfg, fcfg.head_recipe, seed, heads_dir, cache_root, progress)
    else:
        regions = RegionOutputs(checkpoint, policy, Path(cache_root) / "regions")
    items = load_items(records, regions, Path(cache_root) / "local-edits", seed, cfg, policy, Decision.empty(),
                       progress)
    units = photo_units(records, cfg.min_source_photos)
    fit = fit_fold(probe, records, items, np.arange(len(records)), units, cfg, fcfg, seed, policy)
    unit_of = np.array([units[r] or "" for r in items.record])
    decision = fit.decision(name, items, unit_of, cfg, fcfg, policy)
    return decision, fit.mask_cal, fit.cal


def write_release(checkpoint: str | Path, decision: Decision | Either, mask_cal: MaskCalibration, summary: dict) -> Path:
    """The released checkpoint with the decision, the head-1 calibration, the fused score's bands and the promise
    this protocol measured for that decision (``gamma export`` writes them into manifest.json)."""
    from .trainer import load_model, save_checkpoint

    model, ckpt = load_model(checkpoint)
    measured = summary["decisions"][decision.name]
    worst, by_source = measured["worst"], measured["by_source"]
    promise = {**(ckpt.get("promise") or {}),
               "protocol": "leave-one-photo-source-out with local AI edits (train/fusion_loso.py): generator families "
                           "held out with the source's fold; probe, fusion, bands and head-1 level fitted nested on the "
                           "training sources",
               "decision": decision.name,
               "measured_worst_photo_ai_rate": worst["photo_in_ai"],
               "measured_photo_ai_rate_by_source": {u: v["photo_in_ai"] for u, v in by_source.items()},
               "measured_photo_flag_rate_by_source": {u: v["photo_flagged"] for u, v in by_source.items()},
               "measured_worst_photo_flag_rate": max(v["photo_flagged"] for v in by_source.values()),
               "measured_ai_recall_flag": worst["ai_recall_flag"],
               "measured_ai_recall_ai": worst["ai_in_ai"],
               "fit_margin": summary["config"]["fit_margin"] if summary["config"]["fit_margin"] is not None
               else (ckpt.get("promise") or {}).get("fit_margin"),
               "measured_edit_recall_flag": worst["edit_flagged"],
               "measured_large_edit_recall_flag": worst["edit_flagged_large"],
               "measured_worst_auc_edit_vs_control": worst["auc_edit_vs_control"],
               "measured_worst_mask_iou": worst["mask_iou"],
               "measured_worst_photo_mask_fraction_mean": worst["photo_mask_mean"],
               "measured_worst_photo_mask_fraction_median": worst["photo_mask_median"],
               "seeds": summary["seeds"], "aggregate": "worst seed",
               "bar_met": bool(worst["photo_in_ai"] <= 0.05 and worst["ai_recall_flag"] >= 0.75)}
    extra = {k: v for k, v in ckpt.items() if k not in ("format", "config", "model")}
    extra.update(decision=decision.to_dict(), mask_calibration=mask_cal.to_dict(), promise=promise,
                 bands=bands_from_edges(_sigmoid(decision.likely_ai_edge), _sigmoid(decision.ai_edge)))
    save_checkpoint(Path(checkpoint), model, TrainConfig.from_dict(ckpt["config"]), **extra)
    return Path(checkpoint)

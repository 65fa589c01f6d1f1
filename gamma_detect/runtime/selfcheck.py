"""Load-time self-check: a reduced-precision artifact must reproduce FP32 on this machine, or it is not served.

An INT8 or FP16 graph's numbers depend on the kernels the CPU (or GPU) runs, so an acceptance measured at
build time holds only for the kernel class it was measured on. The model folder ships a few reference views
(one lossless PNG, the views stacked top to bottom) with their FP32 probabilities, and each reduced-precision
artifact's entry records its own probabilities on them and the value its acceptance measured::

    "self_check": {"file": "NAME-self-check.png", "sha256": ..., "views": 6, "fp32_probability": [...],
                   "bounds": {"int8": {"statistic": "mean_abs_probability_diff", "max": 0.02},
                              "fp16": {"statistic": "max_abs_probability_diff", "max": 0.01}}}
    artifact entry: "self_check": {"probability": [...], "accepted_value": 0.0147, "cpu": {...}}

Here the artifact runs on the views and its *drift* from the recorded probabilities is measured with the
bound's statistic. The value checked against the bound is ``accepted_value + drift``: per view,
|p_here - p_fp32| <= |p_build - p_fp32| + |p_here - p_build|, so a machine that reproduces the build (drift
about 0) keeps the acceptance it was given, and one whose kernels differ (an AVX2 CPU running full-range s8
weights drifts by 0.05) is refused. The views are the ones nearest p = 0.5, where kernel errors move the
probability most, so the drift is measured where it shows.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from .cpu import cpu_identity
from .manifest import Artifact, Manifest, ManifestError

STATISTICS: dict[str, Callable[[np.ndarray], float]] = {
    "mean_abs_probability_diff": lambda d: float(d.mean()),
    "max_abs_probability_diff": lambda d: float(d.max()),
}


class SelfCheckFailed(ManifestError):
    """A reduced-precision artifact strays from FP32 on this machine (or cannot be checked)."""

    def __init__(self, message: str, report: "SelfCheckReport | None" = None):
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class SelfCheckReport:
    artifact: str
    precision: str
    statistic: str
    accepted_value: float   # what the acceptance measured at build time
    drift: float            # the statistic of |p_here - p_build| on the self-check views
    value: float            # accepted_value + drift, checked against the bound
    bound: float
    views: int
    cpu_class: str
    seconds: float

    @property
    def passed(self) -> bool:
        return self.value <= self.bound

    def to_dict(self) -> dict:
        return {**asdict(self), **{k: round(getattr(self, k), 6) for k in ("accepted_value", "drift", "value")},
                "seconds": round(self.seconds, 3), "passed": self.passed}


def precision_of(artifact: Artifact) -> str:
    """``fp32``, ``fp16`` or ``int8``: the first word of the artifact's recorded precision."""
    return str(artifact.entry.get("precision", artifact.variant)).split()[0].lower()


def needs_check(artifact: Artifact) -> bool:
    return precision_of(artifact) != "fp32"


def reference_views(manifest: Manifest) -> tuple[np.ndarray, np.ndarray, dict]:
    """The shipped views (N, S, S, 3) uint8, their FP32 probabilities, and the manifest's bounds."""
    from PIL import Image

    spec = manifest.raw.get("self_check")
    if not spec:
        raise SelfCheckFailed("the manifest has no self_check reference views, so a reduced-precision artifact "
                              "cannot be checked on this machine; re-export the model with `gamma export` "
                              "(it writes them), or serve the fp32 variant")
    path = manifest.verified_path(Artifact(spec["file"], "self-check", "png", spec["sha256"], spec))
    with Image.open(path) as image:
        tile = np.asarray(image.convert("RGB"))
    size = manifest.policy.input_size
    if tile.shape[1] != size or tile.shape[0] != size * int(spec["views"]):
        raise SelfCheckFailed(f"{path} holds {tile.shape[1]}x{tile.shape[0]} px, not {spec['views']} views of "
                              f"{size} px stacked; re-export the model")
    views = np.ascontiguousarray(tile.reshape(int(spec["views"]), size, size, 3))
    return views, np.asarray(spec["fp32_probability"], np.float64), spec["bounds"]


def check(manifest: Manifest, artifact: Artifact, run: Callable[[np.ndarray], tuple]) -> SelfCheckReport:
    """Measure ``run`` (a session's run) on the reference views against the artifact's recorded outputs."""
    precision = precision_of(artifact)
    views, _, bounds = reference_views(manifest)
    recorded = artifact.entry.get("self_check")
    if precision not in bounds or not recorded:
        raise SelfCheckFailed(f"{artifact.file} has no recorded self-check ({precision} artifacts need one, and a "
                              "bound in the manifest's self_check); re-export it with `gamma export`")
    bound = bounds[precision]
    started = time.perf_counter()
    probabilities = np.asarray(run(views)[0], np.float64)
    drift = STATISTICS[bound["statistic"]](np.abs(probabilities - np.asarray(recorded["probability"], np.float64)))
    accepted = float(recorded["accepted_value"])
    return SelfCheckReport(artifact.file, precision, bound["statistic"], accepted, drift, accepted + drift,
                           float(bound["max"]), len(views), cpu_identity()["class"], time.perf_counter() - started)


def verify(manifest: Manifest, artifact: Artifact, run: Callable[[np.ndarray], tuple]) -> SelfCheckReport:
    """:func:`check`, raising :class:`SelfCheckFailed` with what to do when the artifact strays."""
    report = check(manifest, artifact, run)
    if not report.passed:
        raise SelfCheckFailed(
            f"refusing {artifact.file}: on this CPU ({report.cpu_class}) it drifts by {report.drift:.4f} "
            f"({report.statistic}) from its own outputs at build time on the {report.views} self-check views, so its "
            f"accepted {report.accepted_value:.4f} becomes {report.value:.4f}, above the acceptance bound "
            f"{report.bound}: its numbers depend on kernels this machine runs differently. Serve the fp32 variant (GAMMA_VARIANT=fp32), "
            "or re-export the artifact with this version's CPU-independent INT8 recipe (`gamma export CHECKPOINT "
            "--to onnx-int8`).", report)
    return report

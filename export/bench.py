"""`gamma bench`: throughput and latency of every available backend against PyTorch eager FP32.

Protocol (fixed, so runs compare): the same real-image views for every backend,
batches of 1, 8 and 32 views at the model's input size, warm-up runs excluded,
each batch timed ``repeats`` times and the median taken, one backend after the other. The baseline is the
research path in PyTorch eager mode: FP32, ``torch.inference_mode()``, 2 threads
(the ONNX Runtime CPU sessions get the same 2 threads). Each backend's
images/s is divided by the baseline's at the same batch size. The model's FLOPs
per view come from the manifest (counted by torch at export); the achieved
FLOP rate is shown as a share of an estimated FP32 peak of the machine (cores x
clock x FP32 FLOPs per cycle), reported and not a gate.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..allocator import keep_large_allocations_in_heap
from ..crops import CropPolicy
from ..images import IMAGE_EXTENSIONS, load_rgb, load_rgb_reduced
from ..runtime.cpu import cpu_model
from ..runtime.manifest import Manifest, read_manifest, verify_artifact
from ..runtime.onnxruntime import OrtSession
from .versions import library_versions

BATCHES = (1, 8, 32)
PIPELINE_BATCH = 8   # images per Detector.predict call in the end-to-end rows: the worker's GAMMA_BATCH_SIZE
BASELINE = "pytorch-eager-fp32"
# The same eager model after ``keep_large_allocations_in_heap()``: timed last, because the allocator setting
# cannot be undone in this process. It shows how much of the baseline's time is page faults, not compute.
TUNED_EAGER = "pytorch-eager-fp32-heap"


@dataclass
class Row:
    backend: str
    batch: int
    images_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    runs: int
    ratio: float | None = None            # images/s over the baseline's at this batch
    peak_share: float | None = None       # achieved FLOP/s over the device's estimated FP32 peak
    mean_abs_dp: float | None = None      # |probability - FP32 ONNX's| on the same real views: no speed without it
    max_abs_dp: float | None = None


@dataclass
class PipelineRow:
    """End to end on real image files: decode (JPEG DCT-reduced, as served), views, graph, combining, stitching."""
    backend: str
    batch: int                      # images per Detector.predict call
    images: int
    images_per_s: float
    views_per_image: float
    views_per_s: float
    peak_share: float | None        # the graph's achieved FLOP/s in this pipeline over the estimated FP32 peak
    graph_views_per_s: float | None = None   # the same backend's graph alone at batch PIPELINE_BATCH, for comparison


@dataclass
class BenchResult:
    machine: dict
    libraries: dict
    model: dict
    rows: list[Row] = field(default_factory=list)
    skipped: dict = field(default_factory=dict)   # backend -> why it did not run
    pipeline: list[PipelineRow] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"machine": self.machine, "libraries": self.libraries, "model": self.model,
                "rows": [asdict(r) for r in self.rows], "skipped": self.skipped,
                "pipeline": [asdict(r) for r in self.pipeline]}


# --------------------------------------------------------------------------- machine
def cpu_ghz() -> float | None:
    for file in ("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", "/sys/devices/system/cpu/cpu0/cpufreq/base_frequency"):
        try:
            return int(Path(file).read_text()) / 1e6
        except (OSError, ValueError):
            pass
    try:
        text = Path("/proc/cpuinfo").read_text()
        mhz = re.findall(r"cpu MHz\s*:\s*([\d.]+)", text)
        if mhz:
            return max(map(float, mhz)) / 1000
    except OSError:
        pass
    return None


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def simd_flags() -> list[str]:
    """This CPU's vector-instruction flags (what the kernels can use), as benchmark reports print them."""
    return sorted(f for f in cpu_flags() if f.startswith(("avx", "fma", "sse4")))


def cpu_peak_gflops(threads: int) -> tuple[float | None, str]:
    """Estimated FP32 peak for ``threads`` cores: cores x GHz x FLOPs/cycle (2 FMA units x SIMD lanes x 2)."""
    ghz = cpu_ghz()
    if ghz is None:
        return None, "unknown clock"
    flags = cpu_flags()
    lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags else 4
    per_cycle = 2 * lanes * 2
    cores = min(threads, os.cpu_count() or threads)
    return cores * ghz * per_cycle, f"{cores} cores x {ghz:.2f} GHz x {per_cycle} FP32 FLOP/cycle " \
                                    f"({'AVX-512' if lanes == 16 else 'AVX2' if lanes == 8 else 'SSE'}, 2 FMA units assumed)"


# Dense FP32 (non-tensor-core) peaks from NVIDIA's data sheets, TFLOP/s.
GPU_FP32_PEAK = {"H200": 67.0, "H100 SXM": 67.0, "H100 80GB HBM3": 67.0, "H100 PCIe": 51.0, "H100": 51.0,
                 "A100": 19.5, "L4": 30.3, "L40S": 91.6, "A10": 31.2, "T4": 8.1}


def gpu_info() -> dict | None:
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10).stdout.strip().splitlines()
    except (OSError, subprocess.SubprocessError):
        return None
    if not out:
        return None
    name, driver, memory = [s.strip() for s in out[0].split(",")]
    peak = next((v for k, v in GPU_FP32_PEAK.items() if k in name), None)
    return {"name": name, "driver": driver, "memory": memory, "fp32_peak_tflops": peak}


def machine_info(threads: int) -> dict:
    peak, how = cpu_peak_gflops(threads)
    return {"cpu": cpu_model(), "logical_cpus": os.cpu_count(), "threads": threads,
            "cpu_fp32_peak_gflops": round(peak, 1) if peak else None, "cpu_peak_estimate": how,
            "gpu": gpu_info(), "platform": platform.platform(), "python": platform.python_version(),
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None}


# --------------------------------------------------------------------------- inputs
def bench_views(policy: CropPolicy, count: int = 32, images: str | Path | None = None, seed: int = 0) -> np.ndarray:
    """``count`` views from real images: a folder (or the starter set when present), else a clear error."""
    folder = Path(images) if images else Path("work/starter/images")
    if not folder.is_dir():
        raise FileNotFoundError(f"no benchmark images at {folder}: pass --images DIR (any photos or AI images)")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    rng = np.random.default_rng(seed)
    rng.shuffle(files)
    views = []
    for path in files:
        try:
            v, _ = policy.views(load_rgb(path))
        except Exception:  # noqa: BLE001 - unreadable or too small: take the next one
            continue
        views.extend(v[rng.permutation(len(v))[:4]])  # a few views per image, so the batch mixes images
        if len(views) >= count:
            break
    if len(views) < count:
        raise ValueError(f"{folder} gave only {len(views)} views; need {count}")
    return np.stack(views[:count])


def bench_files(count: int, images: str | Path | None = None, seed: int = 0) -> list[bytes]:
    """The bytes of ``count`` image files of the benchmark folder (shuffled as for the views)."""
    folder = Path(images) if images else Path("work/starter/images")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    np.random.default_rng(seed).shuffle(files)
    return [p.read_bytes() for p in files[:count]]


# --------------------------------------------------------------------------- timing
def time_backend(run: Callable[[np.ndarray], object], views: np.ndarray, batch: int, repeats: int,
                 warmup: int = 1) -> Row:
    """One backend alone: ``warmup`` untimed runs, then ``repeats`` timed ones."""
    x = np.ascontiguousarray(views[:batch])
    for _ in range(warmup):
        run(x)
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        run(x)
        samples.append(time.perf_counter() - started)
    return _row("", batch, samples)


def time_pipeline(detector, files: list[bytes], batch: int, repeats: int, threads: int,
                  reduced: bool = True, warmup: bool = True) -> tuple[float, float]:
    """Median seconds to score ``files`` end to end in Detector.predict calls of ``batch`` images (each batch
    decoded in ``threads`` threads first, as the worker does), and the views per image. ``reduced=False``
    decodes every file at full size (the worker before the DCT-reduced decode); ``warmup`` runs them once
    untimed first."""
    from concurrent.futures import ThreadPoolExecutor

    def decode(data: bytes):
        if not reduced:
            rgb = load_rgb(data)
            return rgb, rgb.shape[:2]
        return load_rgb_reduced(data, detector.policy.working_size)

    samples, views = [], 0
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for run in range(int(not warmup), repeats + 1):   # run 0 warms up, untimed
            started, views = time.perf_counter(), 0
            for i in range(0, len(files), batch):
                decoded = list(pool.map(decode, files[i:i + batch]))
                predictions = detector.predict([rgb for rgb, _ in decoded], native=[n for _, n in decoded])
                views += sum(p.views for p in predictions)
            if run:
                samples.append(time.perf_counter() - started)
    return statistics.median(samples), views / len(files)


def _backends(manifest: dict, directory: Path, threads: int, wanted: Sequence[str] | None) -> tuple[list, dict]:
    """(label, factory) for every backend that can run here, and why the others cannot."""
    from ..runtime.detector import matching_engine
    from ..runtime.onnxruntime import ort_has_cuda
    from .backends import TorchSession

    candidates: list[tuple[str, Callable[[], Callable]]] = []
    skipped: dict[str, str] = {}
    have_torch = importlib.util.find_spec("torch") is not None
    checkpoint = next((e for e in manifest["artifacts"] if e["format"] == "checkpoint"), None)

    def torch_factory(device: str, amp: bool = False):
        return lambda: TorchSession(verify_artifact(directory, checkpoint), device, threads if device == "cpu"
                                    else None, amp).run

    if not have_torch:
        skipped[BASELINE] = "torch is not installed (pip install '.[train]')"
    elif checkpoint is None:
        skipped[BASELINE] = "the manifest lists no checkpoint (the baseline runs the PyTorch model)"
    else:
        candidates.append((BASELINE, torch_factory("cpu")))
    onnx = {e["variant"]: e for e in manifest["artifacts"] if e["format"] == "onnx"}
    for variant in ("fp32", "int8", "fp16"):
        if variant in onnx:
            entry = onnx[variant]
            candidates.append((f"onnxruntime-cpu-{variant}",
                               lambda e=entry: OrtSession(verify_artifact(directory, e), "cpu", threads).run))
    if ort_has_cuda():
        for variant in ("fp32", "fp16"):
            if variant in onnx:
                entry = onnx[variant]
                candidates.append((f"onnxruntime-cuda-{variant}",
                                   lambda e=entry: OrtSession(verify_artifact(directory, e), "cuda").run))
    else:
        skipped["onnxruntime-cuda"] = "ONNX Runtime has no CUDA provider (install onnxruntime-gpu)"
    if have_torch and checkpoint is not None:
        import torch

        if torch.cuda.is_available():
            candidates.append(("pytorch-cuda-fp32", torch_factory("cuda")))
            candidates.append(("pytorch-cuda-amp-fp16", torch_factory("cuda", amp=True)))
        else:
            skipped["pytorch-cuda"] = "torch sees no CUDA device"
    engine, why = matching_engine(Manifest.from_dict(manifest, directory))
    if engine is not None:
        from ..runtime.tensorrt import TensorRTSession

        candidates.append(("tensorrt-fp16", lambda: TensorRTSession(verify_artifact(directory, engine.entry)).run))
    else:
        skipped["tensorrt"] = why
    if any(label == BASELINE for label, _ in candidates):
        def tuned_eager():
            if not keep_large_allocations_in_heap():
                raise RuntimeError("the allocator setting needs glibc (Linux)")
            return torch_factory("cpu")()

        candidates.append((TUNED_EAGER, tuned_eager))
    if wanted:  # the baseline always runs: every ratio needs it
        candidates = [(label, f) for label, f in candidates
                      if label == BASELINE or any(label.startswith(w) for w in wanted)]
    return candidates, skipped


def run_bench(model: str | Path | None = None, batches: Sequence[int] = BATCHES, repeats: int = 5, threads: int = 2,
              images: str | Path | None = None, backends: Sequence[str] | None = None,
              log: Callable[[str], None] = print, pipeline_images: int = 16) -> BenchResult:
    """Time every available backend, one after the other (the baseline first); then each serving backend end to
    end on ``pipeline_images`` image files (0: not).

    Backends are not interleaved: ONNX Runtime's and OpenMP's worker threads spin for a while after each run,
    and interleaving made each runtime's spinning threads steal the cores of the next one. A pause between
    backends lets them go idle.
    """
    from ..runtime import default_model_path

    wall_start, started = time.perf_counter(), os.times()
    cpu_start = started.user + started.system
    manifest, directory = read_manifest(model or default_model_path())
    policy = CropPolicy.from_dict(manifest["crop_policy"])
    views = bench_views(policy, max(batches), images)
    if importlib.util.find_spec("torch") is not None:
        import torch

        torch.set_num_threads(threads)
    machine = machine_info(threads)
    flops = manifest["model"].get("flops_per_image")
    result = BenchResult(machine, library_versions(),
                         {"name": manifest["model"]["name"], "version": manifest["model"]["version"],
                          "flops_per_image": flops, "input_size": policy.input_size})
    candidates, result.skipped = _backends(manifest, directory, threads, backends)
    fp32 = next((e for e in manifest["artifacts"] if e["format"] == "onnx" and e["variant"] == "fp32"), None)
    reference = _probabilities(OrtSession(verify_artifact(directory, fp32), "cpu", threads).run, views) \
        if fp32 else None
    baseline: dict[int, float] = {}
    for label, factory in candidates:
        log(f"  {label}")
        try:
            run = factory()
        except Exception as exc:  # noqa: BLE001 - a backend that cannot load is reported, the others still run
            result.skipped[label] = f"failed to load: {exc}"
            continue
        diff = np.abs(_probabilities(run, views) - reference) if reference is not None else None
        for batch in batches:
            try:
                row = time_backend(run, views, batch, repeats)
            except Exception as exc:  # noqa: BLE001
                result.skipped[f"{label} batch {batch}"] = f"failed: {exc}"
                continue
            row.backend = label
            if label == BASELINE:
                baseline[batch] = row.images_per_s
            row.ratio = row.images_per_s / baseline[batch] if batch in baseline else None
            row.peak_share = _peak_share(label, row.images_per_s, flops, machine)
            if diff is not None:
                row.mean_abs_dp, row.max_abs_dp = float(diff.mean()), float(diff.max())
            result.rows.append(row)
        del run
        time.sleep(1.0)
    if pipeline_images:
        _pipeline(result, directory, bench_files(pipeline_images, images), repeats, threads, flops, log)
    # On a shared machine every figure needs the competition beside it: the load, and what this process got.
    used = os.times()
    machine["load_average_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    machine["process_cpu_share"] = round((used.user + used.system - cpu_start) /
                                         ((time.perf_counter() - wall_start) * (os.cpu_count() or 1)), 3)
    return result


def _pipeline(result: BenchResult, directory: Path, files: list[bytes], repeats: int, threads: int,
              flops: int | None, log: Callable[[str], None]) -> None:
    """End-to-end rows for the serving backends that ran (ONNX Runtime, TensorRT), through the runtime's Detector."""
    from ..runtime.detector import load_detector

    for label in dict.fromkeys(r.backend for r in result.rows if r.backend.startswith(("onnxruntime", "tensorrt"))):
        backend, variant = label.rsplit("-", 1)
        log(f"  {label} end to end")
        try:
            detector = load_detector(directory, backend, variant, threads=threads, self_check=False)
            seconds, views = time_pipeline(detector, files, PIPELINE_BATCH, repeats, threads)
        except Exception as exc:  # noqa: BLE001 - reported beside the others, as a backend that cannot load
            result.skipped[f"{label} end to end"] = f"failed: {exc}"
            continue
        graph = next((r.images_per_s for r in result.rows if r.backend == label and r.batch == PIPELINE_BATCH), None)
        per_s = len(files) / seconds
        result.pipeline.append(PipelineRow(label, PIPELINE_BATCH, len(files), per_s, views, per_s * views,
                                           _peak_share(label, per_s * views, flops, result.machine), graph))


def _probabilities(run: Callable[[np.ndarray], tuple], views: np.ndarray, batch: int = 8) -> np.ndarray:
    return np.concatenate([np.asarray(run(views[i:i + batch])[0], np.float64) for i in range(0, len(views), batch)])


def _row(label: str, batch: int, samples: list[float]) -> Row:
    ms = np.asarray(samples) * 1000
    return Row(label, batch, batch / statistics.median(samples), float(np.percentile(ms, 50)),
               float(np.percentile(ms, 90)), float(np.percentile(ms, 99)), len(samples))


def _peak_share(label: str, images_per_s: float, flops: int | None, machine: dict) -> float | None:
    if not flops:
        return None
    if "cuda" in label or "tensorrt" in label:
        gpu = machine.get("gpu") or {}
        peak = gpu.get("fp32_peak_tflops")
        return images_per_s * flops / (peak * 1e12) if peak else None
    peak = machine.get("cpu_fp32_peak_gflops")
    return images_per_s * flops / (peak * 1e9) if peak else None


def format_result(result: BenchResult) -> str:
    m = result.machine
    gpu = m.get("gpu")
    lines = [f"machine: {m['cpu']} ({m['logical_cpus']} logical CPUs, {m['threads']} threads used); "
             f"GPU: {gpu['name'] + ' (driver ' + gpu['driver'] + ')' if gpu else 'none'}",
             f"load average at start: {', '.join(f'{v:.2f}' for v in m['load_average'])}" if m.get("load_average") else "",
             f"load average at end: {', '.join(f'{v:.2f}' for v in m['load_average_end'])}; this process's CPU over "
             f"the run: {100 * m['process_cpu_share']:.0f}% of {m['logical_cpus']} cores"
             if m.get("load_average_end") and "process_cpu_share" in m else "",
             "libraries: " + ", ".join(f"{k} {v}" for k, v in result.libraries.items()),
             f"model: {result.model['name']} {result.model['version']}, input {result.model['input_size']}px"]
    flops = result.model.get("flops_per_image")
    if flops:
        lines.append(f"FLOPs per image (one {result.model['input_size']}x{result.model['input_size']} view): "
                     f"{flops / 1e9:.3f} GFLOP; CPU FP32 peak estimate: {m['cpu_fp32_peak_gflops']} GFLOP/s "
                     f"[{m['cpu_peak_estimate']}]")
    lines += ["", f"{'backend':<26} {'batch':>5} {'images/s':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} "
                  f"{'x eager':>8} {'% peak':>7} {'mean|dp|':>9} {'max|dp|':>8}"]
    for r in result.rows:
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else "n/a"
        share = f"{100 * r.peak_share:.1f}" if r.peak_share is not None else "n/a"
        dp = (f"{r.mean_abs_dp:>9.4f} {r.max_abs_dp:>8.4f}" if r.mean_abs_dp is not None else f"{'n/a':>9} {'n/a':>8}")
        lines.append(f"{r.backend:<26} {r.batch:>5} {r.images_per_s:>9.1f} {r.p50_ms:>8.1f} {r.p90_ms:>8.1f} "
                     f"{r.p99_ms:>8.1f} {ratio:>8} {share:>7} {dp}")
    if result.pipeline:
        p = result.pipeline[0]
        lines += ["", f"end to end: {p.images} image files decoded (JPEG DCT-reduced, as served) and scored by "
                      f"Detector.predict in batches of {p.batch} images (views, graph, combining, stitching)",
                  f"{'backend':<26} {'images/s':>9} {'views/image':>11} {'views/s':>8} {'% peak':>7} "
                  f"{'graph views/s':>13}"]
        for p in result.pipeline:
            share = f"{100 * p.peak_share:.1f}" if p.peak_share is not None else "n/a"
            graph = f"{p.graph_views_per_s:.1f}" if p.graph_views_per_s is not None else "n/a"
            lines.append(f"{p.backend:<26} {p.images_per_s:>9.2f} {p.views_per_image:>11.2f} {p.views_per_s:>8.1f} "
                         f"{share:>7} {graph:>13}")
        lines.append(f"graph views/s: the same backend's graph alone at batch {PIPELINE_BATCH} (the rows above); "
                     "the gap to views/s is decoding, cutting views, stitching maps and the batches' smaller tails")
    for name, why in result.skipped.items():
        lines.append(f"skipped {name}: {why}")
    lines.append("mean|dp|, max|dp|: the row's view probabilities against the FP32 ONNX graph's on the same real "
                 "starter views, measured on this machine")
    lines.append("% peak: achieved FLOP/s (FLOPs per view x images/s) over the estimated FP32 peak, for every row "
                 "(INT8 and FP16 rows included), reported and not a gate")
    lines.append(f"\nbaseline ({BASELINE}): torch.inference_mode(), {m['threads']} threads, same views and batches, "
                 f"warm-up excluded, median of {result.rows[0].runs if result.rows else '?'} runs per cell")
    lines.append(f"{TUNED_EAGER}: the baseline again, timed last, with glibc's mmap and trim thresholds raised "
                 "(gamma_detect/allocator.py) so large tensors stop page-faulting")
    return "\n".join(line for line in lines if line is not None)


def save_result(result: BenchResult, path: str | Path) -> None:
    Path(path).write_text(json.dumps(result.to_dict(), indent=1))

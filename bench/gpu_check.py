"""GPU check for the runtime (run on a lent GPU machine, about 3 minutes, prints everything).

    python3 bench/gpu_check.py [--model models/default] [--images work/starter/images]

1. PyTorch CUDA backend against ONNX Runtime CPU (the served path): probabilities and head-1 masks.
2. CUDA AMP (autocast FP16) against CUDA FP32: how far mixed precision moves the outputs.
3. ONNX Runtime CUDA (FP32 and the FP16 ONNX) against ONNX Runtime CPU, where onnxruntime-gpu is installed.
4. `gamma bench` on the CUDA backends that exist (with the CPU eager baseline, for the ratio).
Each step reports and carries on if it cannot run (no torch CUDA, no CUDA provider, no TensorRT).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
import traceback
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # conftest.synthetic_photo as a fallback image source


def images(folder: Path | None, count: int) -> list[np.ndarray]:
    from gamma_detect.images import load_rgb

    folder = folder or REPO / "work" / "starter" / "images"
    if folder.is_dir():
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp"})
        out = []
        for p in files[:: max(1, len(files) // count)]:
            try:
                out.append(load_rgb(p))
            except Exception:  # noqa: BLE001
                pass
        if out:
            print(f"images: {len(out[:count])} real images from {folder}")
            return out[:count]
    from conftest import synthetic_photo

    print(f"images: {folder} not found; {count} synthetic photos (parity only, not accuracy)")
    return [synthetic_photo(240 + 40 * i, 320, i) for i in range(count)]


def compare(name: str, ref, got, prob_bound: float, mask_bound: float | None) -> None:
    dp = max(abs(a.probability - b.probability) for a, b in zip(ref, got))
    dm = max(float(np.abs(a.mask - b.mask).max()) for a, b in zip(ref, got))
    ok = dp <= prob_bound and (mask_bound is None or dm <= mask_bound)
    bounds = f"bounds p {prob_bound:g}" + (f", mask {mask_bound:g}" if mask_bound is not None else "")
    print(f"{name:<46} max|dp| {dp:.2e}  max|dmask| {dm:.2e}  ({bounds}) {'PASS' if ok else 'FAIL'}")


def step(title: str, fn) -> None:
    print(f"\n== {title}", flush=True)
    started = time.perf_counter()
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - report and go on to the next check
        print(f"skipped/failed: {type(exc).__name__}: {exc}")
        traceback.print_exc(limit=2)
    print(f"({time.perf_counter() - started:.1f} s)", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, default=REPO / "models" / "default")
    parser.add_argument("--images", type=Path, default=None)
    parser.add_argument("--count", type=int, default=12)
    args = parser.parse_args()

    import onnxruntime as ort

    from gamma_detect.export.bench import library_versions, machine_info
    from gamma_detect.export import load_detector

    print("machine:", machine_info(2))
    print("libraries:", library_versions())
    print("onnxruntime providers:", ort.get_available_providers())
    have_torch = importlib.util.find_spec("torch") is not None
    cuda = False
    if have_torch:
        import torch

        cuda = torch.cuda.is_available()
        print("torch", torch.__version__, "cuda", torch.version.cuda, "available", cuda,
              torch.cuda.get_device_name(0) if cuda else "")
    batch = images(args.images, args.count)
    cpu = load_detector(args.model, "onnxruntime-cpu")
    print("reference:", cpu, cpu.selection)
    reference = cpu.predict(batch)
    auto = load_detector(args.model, "auto")
    print("auto picks:", auto.backend, "-", auto.selection)

    def torch_cuda():
        if not cuda:
            raise RuntimeError("torch sees no CUDA device")
        d = load_detector(args.model, "pytorch-cuda")
        compare("pytorch-cuda fp32 vs onnxruntime-cpu fp32", reference, d.predict(batch), 1e-4, 1e-3)

    def amp():
        if not cuda:
            raise RuntimeError("torch sees no CUDA device")
        from gamma_detect.export.backends import TorchSession
        from gamma_detect.runtime import Detector, Manifest

        manifest = Manifest.read(args.model)
        entry = manifest.artifact(formats={"checkpoint"})
        path = manifest.verified_path(entry)
        fp32 = Detector(manifest, entry, TorchSession(path, "cuda"), "pytorch-cuda")
        half = Detector(manifest, entry, TorchSession(path, "cuda", amp=True), "pytorch-cuda-amp")
        compare("pytorch-cuda AMP fp16 vs pytorch-cuda fp32", fp32.predict(batch), half.predict(batch), 1e-2, None)

    def ort_cuda():
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise RuntimeError("ONNX Runtime has no CUDA provider (install onnxruntime-gpu)")
        for variant, bound, mask in (("fp32", 1e-4, 1e-3), ("fp16", 1e-2, None)):
            try:
                d = load_detector(args.model, "onnxruntime-cuda", variant)
            except Exception as exc:  # noqa: BLE001
                print(f"onnxruntime-cuda {variant}: {exc}")
                continue
            compare(f"onnxruntime-cuda {variant} vs onnxruntime-cpu fp32", reference, d.predict(batch), bound, mask)

    def bench():
        from gamma_detect.export.bench import format_result, run_bench

        result = run_bench(args.model, (1, 8, 32), repeats=5, threads=2, images=args.images,
                           backends=["onnxruntime-cpu-fp32", "onnxruntime-cpu-int8", "onnxruntime-cuda", "pytorch-cuda",
                                     "tensorrt"], log=lambda text: None)
        print(format_result(result))

    step("1. PyTorch CUDA backend vs ONNX Runtime CPU", torch_cuda)
    step("2. CUDA AMP check", amp)
    step("3. ONNX Runtime CUDA provider", ort_cuda)
    step("4. gamma bench (CUDA backends that exist)", bench)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`gamma export`, `gamma bench` and `gamma predict`: thin layers over export/build, bench and runtime.

`gamma predict` and `gamma bench` on ONNX Runtime need only the base install; `gamma export`
needs the `train` extra (torch, onnx), and the TensorRT targets need TensorRT on a GPU machine.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def _targets(values: list[str]) -> list[str]:
    out = []
    for value in values:
        out += [v.strip() for v in value.split(",") if v.strip()]
    return list(dict.fromkeys(out))


def export_main(argv: list[str]) -> int:
    from .build import TARGETS, ExportOptions, export_model, format_report

    parser = argparse.ArgumentParser(
        prog="gamma export",
        description="Compile a released GAMMA checkpoint into deployable artifacts with a manifest and a parity report.")
    parser.add_argument("checkpoint", type=Path, help="released checkpoint (e.g. models/default/gamma-starter.pt)")
    parser.add_argument("--to", dest="targets", action="append", default=[], metavar="|".join(TARGETS),
                        help="what to build; repeat or comma-separate (default: onnx)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: the checkpoint's folder)")
    parser.add_argument("--name", default=None, help="artifact base name (default: the checkpoint's file stem)")
    parser.add_argument("--version", default=None, help="model version recorded in the manifest")
    parser.add_argument("--folds", type=Path, default=None,
                        help="the protocol's folds file: INT8 calibrates on training folds, is accepted on --eval-fold "
                             "(default: runs/starter/folds.json, else folds.json beside the checkpoint)")
    parser.add_argument("--eval-fold", type=int, default=0, help="held-out fold for INT8 acceptance and parity images")
    parser.add_argument("--calibration-images", type=int, default=32, help="training-fold images for INT8 calibration")
    parser.add_argument("--evaluation-images", type=int, default=None,
                        help="held-out images for INT8 acceptance (default: the whole fold)")
    parser.add_argument("--parity-images", type=int, default=8, help="real images for each parity check")
    parser.add_argument("--images", type=Path, default=None, help="parity images folder (default: held-out fold)")
    parser.add_argument("--report", type=Path, default=None, help="evaluation report.json (default: beside checkpoint)")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime / torch threads")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    targets = _targets(args.targets) or ["onnx"]
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; choose from {', '.join(TARGETS)}")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    options = ExportOptions(out=args.out, name=args.name, folds=args.folds, eval_fold=args.eval_fold,
                            calibration_images=args.calibration_images, evaluation_images=args.evaluation_images,
                            parity_images=args.parity_images, images=args.images, report=args.report,
                            threads=args.threads, progress=not args.no_progress)
    if args.version:
        options.version = args.version
    try:
        result = export_model(args.checkpoint, targets, options)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"gamma export: {exc}", file=sys.stderr)
        return 1
    print(format_report(result))
    return 0 if result.ok else 1


def bench_main(argv: list[str]) -> int:
    from .bench import BATCHES, format_result, run_bench, save_result

    parser = argparse.ArgumentParser(prog="gamma bench",
                                     description="Images/s and latency of each available backend vs PyTorch eager FP32.")
    parser.add_argument("--model", type=Path, default=None, help="model folder or manifest (default: the default model)")
    parser.add_argument("--batches", default=",".join(map(str, BATCHES)), help="batch sizes (default 1,8,32)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per cell; the median is reported")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for the CPU backends and the baseline")
    parser.add_argument("--images", type=Path, default=None, help="folder of real images (default: work/starter/images)")
    parser.add_argument("--backends", default=None,
                        help="comma-separated label prefixes to run besides the baseline, e.g. onnxruntime-cpu,tensorrt")
    parser.add_argument("--pipeline-images", type=int, default=16,
                        help="image files scored end to end (decode, views, graph, stitching) per backend; 0: none")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    batches = [int(b) for b in args.batches.split(",")]
    backends = [b.strip() for b in args.backends.split(",")] if args.backends else None
    try:
        result = run_bench(args.model, batches, args.repeats, args.threads, args.images, backends,
                           log=lambda text: print(text, file=sys.stderr, flush=True), pipeline_images=args.pipeline_images)
    except (FileNotFoundError, ValueError) as exc:
        print(f"gamma bench: {exc}", file=sys.stderr)
        return 1
    print(format_result(result))
    if args.json:
        save_result(result, args.json)
    return 0


def _error(path: str, code: str, message: str) -> dict:
    return {"path": path, "error": {"code": code, "message": message}}


def predict_main(argv: list[str]) -> int:
    from ..runtime import BACKENDS
    from .backends import load_detector

    parser = argparse.ArgumentParser(prog="gamma predict", description="Score image files: is each AI-generated?")
    parser.add_argument("paths", nargs="+", help="image files")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--model", type=Path, default=None, help="model folder, manifest or artifact (default model)")
    parser.add_argument("--backend", default="auto", choices=BACKENDS)
    parser.add_argument("--variant", default="fp32", help="ONNX variant: fp32, int8 or fp16")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--batch-images", type=int, default=8, help="images scored per predict call")
    parser.add_argument("--heatmap", type=Path, default=None, metavar="DIR",
                        help="write each image's heatmap overlay (the calibrated head-1 map over the image, every view "
                             "run) to DIR/<file name>.heatmap.png")
    args = parser.parse_args(argv)
    if args.heatmap is not None:
        args.heatmap.mkdir(parents=True, exist_ok=True)
    try:
        detector = load_detector(args.model, args.backend, args.variant, threads=args.threads)
    except Exception as exc:  # noqa: BLE001 - any load failure is one clear line
        print(f"gamma predict: cannot load the model: {exc}", file=sys.stderr)
        return 2
    from ..runtime.evidence import EvidenceConfig, annotate, read_evidence, reusable_pixels

    try:
        evidence_config = EvidenceConfig.from_env()
    except FileNotFoundError as exc:
        print(f"gamma predict: {exc}", file=sys.stderr)
        return 2
    print(f"model {detector.model_info['name']} {detector.model_info['version']} "
          f"({detector.artifact.file}); backend {detector.selection}", file=sys.stderr)
    failed = False
    pending: list[tuple[str, object]] = []   # (path, image or error line), emitted in input order

    def emit(line: dict) -> None:
        if args.json:
            print(json.dumps(line), flush=True)
        elif "error" in line:
            print(f"{line['path']}: error {line['error']['code']}: {line['error']['message']}", flush=True)
        else:
            sources = ", ".join(f"{k} {v:.0%}" for k, v in sorted(line["sources"].items(), key=lambda kv: -kv[1]) if v)
            print(f"{line['path']}: {line['verdict']} ({line['verdict_reason']}; p_ai {line['ai_probability']:.3f}), "
                  f"mask {line['mask_fraction']:.1%}, sources: {sources}", flush=True)
            for item in line["evidence"]:
                print(f"    {item['summary']}", flush=True)

    def flush() -> None:
        scored = [item for _, item in pending if not isinstance(item, dict)]
        predictions = (iter(detector.predict([image for image, _, _ in scored], native=[n for _, n, _ in scored],
                                             detail=args.heatmap is not None)) if scored else iter(()))
        for path, item in pending:
            if isinstance(item, dict):
                emit(item)
                continue
            prediction = next(predictions)
            if args.heatmap is not None:
                write_overlay(args.heatmap / f"{Path(path).name}.heatmap.png", item[0], prediction.mask)
            emit({"path": path, **annotate(detector.result(prediction), item[2])})
        pending.clear()

    from ..crops import ImageTooSmall
    from ..images import load_rgb_reduced
    from ..overlay import write_overlay

    for path in args.paths:
        if not Path(path).is_file():
            pending.append((path, _error(path, "file_not_found", f"no such file: {path}")))
            failed = True
            continue
        try:
            data = Path(path).read_bytes()   # the original bytes: their metadata is evidence too
            # As the server decodes: a JPEG at the DCT scale nearest above the policy's working size.
            image, native = load_rgb_reduced(data, detector.policy.working_size)
            detector.policy.plan(*image.shape[:2], native=native)  # too small? say so for this file alone
        except ImageTooSmall as exc:
            pending.append((path, _error(path, "image_too_small", str(exc))))
            failed = True
            continue
        except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds for unreadable files
            pending.append((path, _error(path, "image_decode_failed", f"cannot decode {path}: {type(exc).__name__}: {exc}")))
            failed = True
            continue
        evidence = read_evidence(data, evidence_config, rgb=reusable_pixels(image, native, evidence_config))
        pending.append((path, (image, native, evidence)))
        if sum(not isinstance(item, dict) for _, item in pending) >= args.batch_images:
            flush()
    flush()
    return 1 if failed else 0

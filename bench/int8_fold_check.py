"""INT8 acceptance on images the model never saw (about 5 minutes on a 2-core CPU).

The shipped INT8 model is accepted on fold 0 of the protocol's folds, which its
calibration never saw but the released model (trained on every image) did, so
its ROC-AUC there is saturated. This check trains the released configuration on
the other folds only, exports it with the released temperature, and runs the same
INT8 build and acceptance on fold 0, now truly held out.

    python3 bench/int8_fold_check.py [--model models/default] [--out runs/int8-fold0]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gamma_detect.crops import CropPolicy
from gamma_detect.export.graph import build_deployable
from gamma_detect.export.onnx import export_graph
from gamma_detect.export.quantize import build_int8, fold_split
from gamma_detect.train.config import TrainConfig
from gamma_detect.train.experiment import training_records
from gamma_detect.train.trainer import load_checkpoint, load_model, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/default"))
    parser.add_argument("--out", type=Path, default=Path("runs/int8-fold0"))
    parser.add_argument("--fold", type=int, default=0)
    args = parser.parse_args()
    manifest = json.loads((args.model / "manifest.json").read_text())
    cfg = TrainConfig.from_dict(json.loads((args.model / "config.json").read_text()))
    folds = args.model / "folds.json"
    held = {Path(r["path"]).name for r in json.loads(folds.read_text())["assignments"] if r["fold"] == args.fold}
    records = [r for r in training_records(cfg) if r.path.name not in held]
    checkpoint = train(cfg, records, args.out / "model", progress=True)
    model, _ = load_model(checkpoint)
    released = load_checkpoint(args.model / manifest["checkpoint"]["file"])
    policy = CropPolicy.from_dict(manifest["crop_policy"])
    fp32 = export_graph(build_deployable(released, model), args.out / "fold-model.onnx", policy.input_size)
    split = fold_split(folds, eval_fold=args.fold)
    kept, tried = build_int8(fp32, args.out / "fold-model-int8.onnx", policy, split, threads=cfg.threads)
    print(f"trained on {len(records)} images, evaluated on {len(split.evaluation)} held-out images of fold {args.fold}")
    for row in tried:
        print(json.dumps(row))
    print("ACCEPTED: " + kept["acceptance"]["recipe"] if kept else "no recipe accepted")


if __name__ == "__main__":
    main()

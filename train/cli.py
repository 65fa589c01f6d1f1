"""`gamma data`, `gamma train` and `gamma evaluate`: thin layers over the training functions."""

from __future__ import annotations

import argparse
from pathlib import Path

from .config import PRESETS, load_preset


def _preset_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="starter", choices=sorted(PRESETS), help="named configuration")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a setting, e.g. --set epochs=4 --set model.reverse_attention=false")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def data_main(argv: list[str]) -> int:
    if argv[:1] == ["starter"]:
        from ..starter import main
        return main(argv[1:])
    parser = argparse.ArgumentParser(prog="gamma data", description="Build training data.")
    sub = parser.add_subparsers(dest="what", required=True)
    sub.add_parser("starter", help="download, carve and verify the starter set (see `gamma data starter -h`)")
    bank = sub.add_parser("bank", help="precompute slow manipulations (PatchMatch, biharmonic, Poisson)")
    bank.add_argument("--data", default="starter:work/starter/index.csv", help="records spec (see sources.py)")
    bank.add_argument("--out", type=Path, default=Path("work/bank"))
    bank.add_argument("--count", type=int, default=120)
    bank.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from .manipulate import build_bank
    from .sources import load_records
    records = load_records(args.data)
    index = build_bank([r.path for r in records if r.label == 0], [r.path for r in records if r.label == 1],
                       args.out, args.count, args.seed)
    print(f"manipulation bank: {index}")
    return 0


def train_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gamma train", description="Train a GAMMA model on every record.")
    _preset_args(parser)
    parser.add_argument("--out", type=Path, default=Path("runs/train"), help="run folder (resumes if present)")
    parser.add_argument("--fresh", action="store_true", help="ignore checkpoints in the run folder")
    args = parser.parse_args(argv)
    from .experiment import training_records
    from .trainer import train
    cfg = load_preset(args.preset, args.overrides)
    path = train(cfg, training_records(cfg), args.out, resume=not args.fresh, progress=not args.no_progress)
    print(f"model: {path}")
    return 0


def evaluate_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="gamma evaluate",
        description="The protocols: leave-one-photo-source-out (of record; nested bands and abstention) or the "
                    "grouped k-fold ablation; optionally train, calibrate and release the final model (LOSO).")
    _preset_args(parser)
    parser.add_argument("--protocol", choices=("loso", "kfold", "local-edit"), default="loso",
                        help="local-edit: LOSO with AI-region edits of the held-out photos and the decision variants "
                             "that fuse region evidence (train/fusion_loso.py), written to OUT/local-edit-runs/NAME/ "
                             "(with --release: OUT/local-edit/, and the chosen decision written into the release)")
    parser.add_argument("--fusion", dest="fusion_overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="local-edit: a FusionConfig setting (train/fusion_loso.py), e.g. "
                             "--fusion 'edge_kinds=[\"photo\",\"control\"]'")
    parser.add_argument("--decision", default=None, help="local-edit --release: the decision variant to release "
                        "(default: the one chosen on inner scores; name another when that one breaks the band "
                        "promise on the outer folds, and say so)")
    parser.add_argument("--keep-heads", action="store_true",
                        help="local-edit --release with fold_heads: keep the checkpoint's heads (already trained by "
                             "the same head_recipe on every image) and release only the decision and head-1 level")
    parser.add_argument("--checkpoint", type=Path, default=Path("models/default/gamma-starter.pt"),
                        help="local-edit: the checkpoint whose heads give the region evidence")
    parser.add_argument("--out", type=Path, default=Path("runs/starter"), help="run folder (resumes if present)")
    parser.add_argument("--loso", dest="loso_overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="LOSO recipe setting (train/loso.py LosoConfig), e.g. --loso features=pooled "
                             "--loso augment=[] --loso abstain=false")
    parser.add_argument("--features-cache", type=Path, default=Path("work/features"),
                        help="LOSO: where frozen-backbone view features are cached (reused across runs)")
    parser.add_argument("--name", default="recipe", help="LOSO: the recipe's folder under OUT/loso-runs/ "
                        "(the released recipe is also written to OUT/loso/)")
    parser.add_argument("--variants", default="probe,cls,cls+manip,cls+manip+seg,gamma", help="k-fold only")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds, e.g. 0,1,2")
    parser.add_argument("--folds", type=int, default=5, help="k-fold only")
    parser.add_argument("--fold-seed", type=int, default=0, help="k-fold only")
    parser.add_argument("--release", type=Path, default=None,
                        help="LOSO: also train the final model, calibrate it and write it with its report here")
    args = parser.parse_args(argv)
    cfg = load_preset(args.preset, args.overrides)
    seeds = [int(s) for s in args.seeds.split(",")]
    progress = not args.no_progress
    if args.protocol == "kfold":
        if args.release:
            parser.error("--release comes from the LOSO protocol: use --protocol loso")
        from .experiment import run_protocol
        run_protocol(cfg, args.out, args.variants.split(","), seeds, args.folds, args.fold_seed, progress)
        print(f"protocol: {args.out / 'protocol.json'}")
        return 0
    from .experiment import training_records
    from .loso import loso_config, run_loso
    loso_cfg = loso_config(args.loso_overrides)
    if args.protocol == "local-edit":
        from .fusion_loso import DECISIONS, FusionConfig
        if args.keep_heads and not (args.release and args.decision in DECISIONS
                                    and not DECISIONS[args.decision].attention):
            parser.error("--keep-heads releases a decision on the checkpoint's own heads, whose correction is zeroed: "
                         "pass --release and a --decision that does not read the attention "
                         f"(one of {[n for n, v in DECISIONS.items() if not v.attention]})")
        from .fusion_loso import run as run_local_edit
        from .loso import config_from
        from .report import local_edit_table
        records = training_records(cfg)
        fusion_cfg = config_from(FusionConfig, args.fusion_overrides, "fusion")
        summary = run_local_edit(records, cfg.crop, args.checkpoint, args.out / ("local-edit" if args.release else f"local-edit-runs/{args.name}"),
                                 loso_cfg, fusion_cfg, seeds=seeds, cache_root=args.features_cache, progress=progress)
        print(local_edit_table(summary))
        if args.release:
            from .fusion_loso import release_decision, write_release
            if args.release.resolve() != args.checkpoint.parent.resolve():
                parser.error("--release with --protocol local-edit rewrites the checkpoint's own folder: pass the "
                             "folder of --checkpoint")
            name = args.decision or summary["chosen"]
            heads = args.out / "local-edit" / "heads"
            if fusion_cfg.fold_heads and not args.keep_heads:   # the released heads: like each fold's, on every image
                from .fold_heads import release_heads
                release_heads(args.checkpoint, records, fusion_cfg.head_recipe, heads / "release",
                              keep_correction=DECISIONS[name].attention, progress=progress)
            decision, mask_cal, _ = release_decision(records, cfg.crop, args.checkpoint, name, loso_cfg, fusion_cfg,
                                                     cache_root=args.features_cache, heads_dir=heads, progress=progress)
            path = write_release(args.checkpoint, decision, mask_cal, summary)
            from .report import with_local_edits
            from .trainer import load_checkpoint
            with_local_edits(args.release, summary, decision.to_dict(), mask_cal.to_dict(),
                             load_checkpoint(path)["bands"])
            print(f"decision {decision.name} and head-1 level {mask_cal.level:.3f} written to {path}; "
                  f"now `gamma export {path} --to onnx,onnx-int8,onnx-fp16 --version <new version>`")
        return 0
    out = args.out / ("loso" if args.release else f"loso-runs/{args.name}")
    summary = run_loso(training_records(cfg), cfg.crop, out, loso_cfg, seeds, args.features_cache, progress)
    print(f"LOSO: worst photo `ai` rate {summary['worst']['max_photo_ai_rate']:.3f}, worst AI recall "
          f"(ai+likely_ai) {summary['worst']['ai_recall_flag']:.3f}, bar met: {summary['bar_met']} ({out})")
    if args.release:
        from .experiment import release
        from .report import write_report
        checkpoint = release(cfg, args.out, args.release, loso_cfg, args.features_cache, progress)
        report = write_report(args.out, args.release, checkpoint)
        print(f"model: {checkpoint}\nreport: {report}")
    return 0

"""The `gamma` command: one entry point, one subcommand per capability.

Each subcommand lives beside the code it drives and is imported only when
chosen, so serving never imports the training stack (or torch).
"""

from __future__ import annotations

import importlib
import sys

# name -> (module, function, summary)
COMMANDS = {
    "data": ("gamma_detect.train.cli", "data_main", "build the starter dataset or the manipulation bank"),
    "train": ("gamma_detect.train.cli", "train_main", "train a GAMMA model from a preset"),
    "evaluate": ("gamma_detect.train.cli", "evaluate_main", "grouped k-fold protocol, ablation, calibration, report"),
    "export": ("gamma_detect.export.cli", "export_main", "export a checkpoint to ONNX, INT8, FP16 or TensorRT"),
    "bench": ("gamma_detect.export.cli", "bench_main", "benchmark the available runtimes"),
    "predict": ("gamma_detect.export.cli", "predict_main", "score image files with the default or a given model"),
    "serve": ("gamma_detect.server.cli", "serve_main", "run the HTTP API (and, without REDIS_URL, Redis and a worker)"),
    "worker": ("gamma_detect.server.cli", "worker_main", "run a batching inference worker"),
    "scan": ("gamma_detect.server.cli", "scan_main", "scan crawls: WARC (in process, via a server, as jobs) or JSONL"),
    "keys": ("gamma_detect.server.cli", "keys_main", "create, list or revoke API keys"),
    "feedback": ("gamma_detect.server.cli", "feedback_main", "export user feedback as JSONL"),
}
# (name, subcommand) -> (module, function): subcommands that need less than their command's module imports
# (`gamma data starter` downloads and carves files, no torch; the rest of `gamma data` is training's).
SUBCOMMANDS = {
    ("data", "starter"): ("gamma_detect.starter", "main"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: gamma <command> [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, _, summary) in COMMANDS.items()]
    lines += ["", "Run `gamma <command> --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from . import __version__
        print(__version__)
        return 0
    if argv[0] not in COMMANDS:
        print(f"gamma: unknown command {argv[0]!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    if tuple(argv[:2]) in SUBCOMMANDS:
        module, function = SUBCOMMANDS[tuple(argv[:2])]
        return int(getattr(importlib.import_module(module), function)(argv[2:]) or 0)
    module, function, _ = COMMANDS[argv[0]]
    return int(getattr(importlib.import_module(module), function)(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())

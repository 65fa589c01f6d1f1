"""End-to-end images/s, old pipeline against new, side by side in one run on the same image files.

Each configuration is a model folder, an artifact variant, a decode and a deployment: the baseline is the model
and policy released when issue 14 was taken (gamma-starter 0.2.1: one stage, every view) decoded at full size
as the worker did then, in one process whose ONNX Runtime session uses every core (how 0.2.1 ran its worker);
the others are the shipped model (staged policy) with the worker's DCT-reduced decode, in that deployment and
in today's (``GAMMA_WORKERS`` default: one worker process per core, one inference thread each). Every
configuration also runs in both deployments, so each gain can be read apart. Each worker process scores its
share of the files (every P-th); the configurations run in turn, round after round, so drifting load hits them
alike; each figure is the median round.

    git archive 17be2e8 models/default | tar -x -C /tmp/gamma-0.2.1    # the baseline model, from history
    python3 bench/end_to_end.py --baseline /tmp/gamma-0.2.1/models/default --images 48 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

from gamma_detect.export.bench import PIPELINE_BATCH, bench_files, cpu_model, simd_flags, time_pipeline
from gamma_detect.runtime.detector import default_model_path, load_detector
from gamma_detect.server.processes import usable_cores


def _lane(conn, model: str, variant: str, threads: int, reduced: bool, files: list[bytes]) -> None:
    """One worker process: load the model, warm up, then one timed pass over its files per request."""
    detector = load_detector(model, variant=variant, threads=threads)
    time_pipeline(detector, files, PIPELINE_BATCH, 1, threads, reduced)
    conn.send("ready")
    while conn.recv():
        cpu = time.process_time()
        seconds, views = time_pipeline(detector, files, PIPELINE_BATCH, 1, threads, reduced, warmup=False)
        conn.send((seconds, views, time.process_time() - cpu))


class Deployment:
    """``processes`` worker processes of ``threads`` inference threads, scoring ``files`` between them."""

    def __init__(self, model: Path, variant: str, reduced: bool, files: list[bytes], processes: int, threads: int):
        spawn = multiprocessing.get_context("spawn")
        self.pipes, self.procs, self.files = [], [], len(files)
        for i in range(processes):
            parent, child = spawn.Pipe()
            proc = spawn.Process(target=_lane, args=(child, str(model), variant, threads, reduced, files[i::processes]),
                                 daemon=True)
            proc.start()
            self.pipes.append(parent)
            self.procs.append(proc)
        for pipe in self.pipes:
            assert pipe.recv() == "ready"

    def round(self) -> tuple[float, float, float]:
        """Wall seconds until every process has scored its share, the views per image, and the CPU seconds the
        processes used for it."""
        started = time.perf_counter()
        for pipe in self.pipes:
            pipe.send(True)
        done = [pipe.recv() for pipe in self.pipes]
        views = sum(v * n for (_, v, _), n in zip(done, self._shares()))
        return time.perf_counter() - started, views / self.files, sum(cpu for *_, cpu in done)

    def _shares(self) -> list[int]:
        p = len(self.pipes)
        return [len(range(i, self.files, p)) for i in range(p)]

    def close(self) -> None:
        for pipe, proc in zip(self.pipes, self.procs):
            pipe.send(False)
            proc.join(30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, required=True, help="the 0.2.1 model folder (see above)")
    parser.add_argument("--model", type=Path, default=None, help="the new model folder (default: models/default)")
    parser.add_argument("--images", type=int, default=48, help="starter image files scored by every configuration")
    parser.add_argument("--folder", type=Path, default=None, help="image folder (default: work/starter/images)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cores", type=int, default=usable_cores())
    parser.add_argument("--out", type=Path, default=Path("bench/end-to-end.json"))
    args = parser.parse_args(argv)
    new, cores = args.model or default_model_path(), args.cores
    deployments = {"1 process x %d threads" % cores: (1, cores), "%d processes x 1 thread" % cores: (cores, 1)}
    models = [("0.2.1 fp32, one stage, full decode", args.baseline, "fp32", False),
              ("0.3.0 fp32, staged, reduced decode", new, "fp32", True),
              ("0.3.0 int8, staged, reduced decode", new, "int8", True)]
    configs = [(f"{m[0]}; {d}", *m[1:], *deployments[d], d) for m in models for d in deployments]
    files = bench_files(args.images, args.folder)
    running = {c[0]: Deployment(c[1], c[2], c[3], files, c[4], c[5]) for c in configs}
    seconds: dict[str, list[float]] = {c[0]: [] for c in configs}
    views: dict[str, float] = {}
    wall, busy = 0.0, 0.0
    for _ in range(args.rounds):
        for label, deployment in running.items():
            s, views[label], cpu = deployment.round()
            seconds[label].append(s)
            wall, busy = wall + s, busy + cpu
    for deployment in running.values():
        deployment.close()
    rate = {label: len(files) / statistics.median(s) for label, s in seconds.items()}
    baseline = configs[0][0]
    rows = []
    for label, model, variant, reduced, processes, threads, deployment in configs:
        same = next(c[0] for c in configs if c[6] == deployment)  # the baseline model in this deployment
        rows.append({"config": label, "model": str(model), "variant": variant, "reduced_decode": reduced,
                     "processes": processes, "threads_per_process": threads, "images_per_s": rate[label],
                     "images_per_s_per_core": rate[label] / cores, "views_per_image": views[label],
                     "speedup_vs_baseline": rate[label] / rate[baseline],
                     "speedup_same_deployment": rate[label] / rate[same], "seconds": seconds[label]})
    report = {"command": " ".join([sys.executable, *sys.argv]), "cpu": cpu_model(), "simd": simd_flags(),
              "cores": cores, "images": len(files), "rounds": args.rounds, "baseline": baseline,
              "load_average_end": os.getloadavg(),
              # the CPU the scoring processes used over the rounds' wall time, of all cores: near 100% means they
              # had the machine to themselves (ONNX Runtime's spinning threads count as busy)
              "cpu_share_of_this_bench": busy / wall / (os.cpu_count() or 1),
              "rows": rows}
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"{report['command']}\ncpu: {report['cpu']} ({cores} cores), simd: {' '.join(report['simd'])}; "
          f"{len(files)} images, {args.rounds} rounds, load average at the end {report['load_average_end'][0]:.2f}, "
          f"this bench {100 * report['cpu_share_of_this_bench']:.0f}% of all cores")
    print("| configuration | images/s | per core | views / image | vs baseline | vs 0.2.1 in the same deployment |\n"
          "|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['config']} | {r['images_per_s']:.2f} | {r['images_per_s_per_core']:.2f} | "
              f"{r['views_per_image']:.2f} | {r['speedup_vs_baseline']:.2f}x | {r['speedup_same_deployment']:.2f}x |")
    print(f"baseline: {baseline}\nwritten: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

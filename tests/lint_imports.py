"""Run the import-linter contracts of pyproject.toml on the package as it installs.

pyproject.toml maps the top-level folders (server/, export/, train/, ...) into the one
``gamma_detect`` namespace, a layout that exists only inside a wheel (and behind the editable
install's import hook, which import-linter's static analysis cannot see). So the mapped
folders' Python files are copied into a temporary tree shaped like the installed package
and ``lint-imports`` runs there.  Usage: ``python3 tests/lint_imports.py`` (exit 1 on a broken contract).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def stage(root: Path) -> None:
    """Copy every package of pyproject.toml's package-dir into ``root`` at its installed place."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    mapping = config["tool"]["setuptools"]["package-dir"]
    for package, folder in sorted(mapping.items()):
        target = root.joinpath(*package.split("."))
        for source in (REPO / folder).rglob("*.py"):
            relative = source.relative_to(REPO / folder)
            if "__pycache__" not in relative.parts:
                destination = target / relative
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, destination)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="gamma-layout-") as tmp:
        stage(Path(tmp))
        lint = shutil.which("lint-imports")
        if lint is None:
            print("lint-imports is missing: pip install -e '.[dev]'", file=sys.stderr)
            return 2
        env = {**os.environ, "PYTHONPATH": tmp}  # the staged tree, ahead of the editable install's hook
        return subprocess.run([lint, str(REPO / "pyproject.toml")], cwd=tmp, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())

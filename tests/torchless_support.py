"""Run a snippet of Python in a fresh interpreter where torch and the training code cannot be imported.

The base install (serving, `gamma data starter`) carries no torch: tests prove a path stays torch-free by running it
with those imports blocked, not by trusting the import graph alone.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BLOCK_TORCH = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith(("torch.", "gamma_detect.train")):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
"""


def run_without_torch(code: str, timeout: float = 120, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``code`` run after the import blocker, with its output captured as text."""
    return subprocess.run([sys.executable, "-c", BLOCK_TORCH + code], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)

"""Keep PyTorch's large CPU tensors in the heap instead of fresh ``mmap`` calls.

glibc serves every allocation above its mmap threshold (128 KiB at start, adapting up to
32 MiB) with a new mapping and unmaps it on free, so a CPU network whose activations are
larger page-faults through every one of them on every call. Raising the threshold (and the
trim threshold, so freed memory is not handed back at once) keeps them in the heap: measured
on this project's 2-core CPU, training 1.3x and eager inference about 2x faster. The cost is
that the process keeps its peak working set. A no-op outside glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
THRESHOLD = 1 << 30


def keep_large_allocations_in_heap(threshold: int = THRESHOLD) -> bool:
    """Raise glibc's mmap and trim thresholds for this process; True if applied."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, threshold)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, threshold))
    except (OSError, AttributeError):
        return False

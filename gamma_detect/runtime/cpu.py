"""Which x86 integer kernels ONNX Runtime picks on this CPU: the class an INT8 acceptance is recorded under.

ONNX Runtime's u8 x s8 convolutions run on VNNI (``vpdpbusd``, 32-bit sums) where the CPU has it, and otherwise
on ``vpmaddubsw``, whose 16-bit pair sums saturate for full-range weights. So an INT8 graph can give different
probabilities on an AVX2 machine than on the AVX-512 VNNI machine it was accepted on; the manifest records the
class each acceptance was measured on.

The features come from numpy's own CPUID probe (``__cpu_features__``), not /proc/cpuinfo, so they are right
under an emulator too (``qemu-x86_64 -cpu Haswell`` reports an AVX2-only CPU here, as the kernels see it).
"""

from __future__ import annotations

import platform
from functools import lru_cache

# Feature names as numpy reports them, in the order that decides the class.
_CLASSES = (
    ("AVX512VNNI", "avx512-vnni"),
    ("AVXVNNI", "avx-vnni"),
    ("AVX512BW", "avx512"),
    ("AVX2", "avx2"),
    ("SSE41", "sse4"),
)
REPORTED = ("AVX2", "FMA3", "AVX512F", "AVX512BW", "AVX512VNNI", "AVXVNNI", "AVX512_SPR", "ASIMD", "ASIMDDP")


def _features() -> dict[str, bool]:
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # numpy < 2
        from numpy.core._multiarray_umath import __cpu_features__
    return dict(__cpu_features__)


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), or what platform knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@lru_cache(maxsize=1)
def cpu_identity() -> dict:
    """``{"class", "features", "model", "machine", "onnxruntime"}`` of this process's CPU."""
    import onnxruntime

    features = _features()
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64", "i686", "x86"):
        klass = next((name for flag, name in _CLASSES if features.get(flag)), "x86")
    else:
        klass = "arm64-dotprod" if features.get("ASIMDDP") else machine
    return {"class": klass, "features": sorted(f for f in REPORTED if features.get(f)), "model": cpu_model(),
            "machine": machine, "onnxruntime": onnxruntime.__version__}

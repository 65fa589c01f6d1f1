"""server/malloc.py: the allocator settings the service processes run with."""

import ctypes
import ctypes.util
import os
import subprocess
import sys
import textwrap

import pytest

from gamma_detect.server.malloc import OPERATOR_VARIABLES, tune_malloc

LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
# What glibc says it mapped: a child frees a 24 MiB block (mapped), then allocates 4 MiB and prints how many
# bytes are mapped now. Plain glibc has raised its threshold to 24 MiB, so the 4 MiB come from the heap.
PROBE = textwrap.dedent("""
    import ctypes, ctypes.util, sys
    class Info(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in
                    "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    libc.mallinfo2.restype, libc.malloc.restype, libc.free.argtypes = Info, ctypes.c_void_p, [ctypes.c_void_p]
    if sys.argv[1] == "tuned":
        from gamma_detect.server.malloc import tune_malloc
        print(tune_malloc())
    libc.free(libc.malloc(24 << 20))
    block = libc.malloc(4 << 20)
    print(libc.mallinfo2().hblkhd)
""")


def _probe(mode: str, **env) -> list[str]:
    environment = {k: v for k, v in os.environ.items() if k not in OPERATOR_VARIABLES}
    return subprocess.run([sys.executable, "-c", PROBE, mode], env={**environment, **env}, capture_output=True,
                          text=True, check=True, timeout=60).stdout.split()


@pytest.mark.skipif(not hasattr(LIBC, "mallinfo2"), reason="not glibc >= 2.33: no mallopt/mallinfo2 to check")
def test_large_buffers_stay_mapped_after_a_larger_one_was_freed():
    assert int(_probe("plain")[-1]) < 4 << 20   # glibc's own behaviour, the reason for the setting
    applied, mapped = _probe("tuned")
    assert applied == "True" and int(mapped) >= 4 << 20


@pytest.mark.skipif(not hasattr(LIBC, "mallinfo2"), reason="not glibc >= 2.33: no mallopt/mallinfo2 to check")
def test_an_operators_glibc_settings_win():
    applied, mapped = _probe("tuned", MALLOC_ARENA_MAX="4")
    assert applied == "False" and int(mapped) < 4 << 20


def test_without_glibc_nothing_changes(monkeypatch):
    monkeypatch.setattr(ctypes, "CDLL", lambda name: object())   # a C library without mallopt (musl, macOS)
    for name in OPERATOR_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert tune_malloc() is False

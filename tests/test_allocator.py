import platform
import subprocess
import sys

import pytest

from gamma_detect.allocator import keep_large_allocations_in_heap

PROBE = """
import ctypes
from gamma_detect.allocator import keep_large_allocations_in_heap

def lands_in_heap():
    buffer = ctypes.create_string_buffer(96 << 20)  # larger than glibc's largest adaptive mmap threshold
    address = ctypes.addressof(buffer)
    for line in open("/proc/self/maps"):
        if line.rstrip().endswith("[heap]"):
            low, high = (int(x, 16) for x in line.split()[0].split("-"))
            return low <= address < high
    return False

print(lands_in_heap(), keep_large_allocations_in_heap(), lands_in_heap())
"""


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="the allocator setting is glibc's (Linux)")
def test_large_allocations_move_from_mmap_into_the_heap():
    # A fresh interpreter: the setting is process-wide and cannot be undone.
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True", "True"]


def test_is_a_no_op_without_glibc(monkeypatch):
    monkeypatch.setattr(platform, "system", lambda: "Darwin")
    assert keep_large_allocations_in_heap() is False

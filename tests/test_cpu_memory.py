"""`keep_freed_memory`: glibc reuses a freed large block's pages instead of mapping and
faulting them anew (malloc and free through ctypes: glibc's behaviour, deterministically)."""

import platform
import subprocess
import sys

import pytest

SCRIPT = """
import ctypes, resource, sys
from dvt_model.cpu_memory import keep_freed_memory
kept = sys.argv[1] == "keep" and keep_freed_memory()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
size = 64 << 20  # above glibc's largest adaptive mmap threshold (32 MiB)
faults = []
for _ in range(3):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = libc.malloc(size)
    libc.memset(block, 1, size)
    libc.free(block)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(kept, *faults)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_freed_large_blocks_are_reused_without_page_faults():
    runs = {}
    for mode in ("keep", "default"):
        out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True,
                             text=True, check=True).stdout.split()
        runs[mode] = (out[0] == "True", [int(n) for n in out[1:]])
    assert runs["keep"][0]
    assert max(runs["keep"][1][1:]) < 100  # after the first step the heap's pages are there
    assert min(runs["default"][1]) > 10_000  # a fresh mapping each step: every page faults

"""`keep_freed_memory`, which building a model applies: glibc reuses a freed large block's pages instead of mapping and
faulting them anew (malloc and free through ctypes: glibc's behaviour, deterministically)."""

import os
import platform
import subprocess
import sys

import pytest

SCRIPT = """
import ctypes, resource, sys
from dvt_model import create_model
from dvt_model.cpu_memory import keep_freed_memory_once
create_model("dvt_tiny", num_classes=2)  # building a model applies it, unless opted out
kept = keep_freed_memory_once()
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
    """A user's own loop gets it by building a model; DVT_KEEP_FREED_MEMORY=0 opts out."""
    runs = {}
    for mode in ("keep", "default"):
        env = {**os.environ, "DVT_KEEP_FREED_MEMORY": "1" if mode == "keep" else "0"}
        out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, env=env,
                             text=True, check=True).stdout.split()
        runs[mode] = (out[0] == "True", [int(n) for n in out[1:]])
    assert runs["keep"][0] and not runs["default"][0]
    assert max(runs["keep"][1][1:]) < 100  # after the first step the heap's pages are there
    assert min(runs["default"][1]) > 10_000  # a fresh mapping each step: every page faults

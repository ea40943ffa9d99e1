"""Keep freed CPU memory in the process, so that large tensors reuse it (glibc's malloc).

Building a `VideoTransformer` applies it once per process (`keep_freed_memory_once`;
DVT_KEEP_FREED_MEMORY=0 turns it off), so a user's own loop runs as fast as `dvt train`.

glibc gives every allocation above its mmap threshold its own mapping, and returns it to the
kernel when freed; the threshold adapts up to 32 MiB and no further. A training step whose
tensors are larger (activations at T = 16 and more, the DVT's and joint attention's alike)
then maps, page-faults and zeroes every page of them anew on every step. Before the DVT
recomputed D-MS-A and the fusion that made its time grow faster than linearly in T; now it
makes both models faster (BENCHMARKS.md, sessions 4 and 12).
The price: the process keeps its heap at its largest, fragmented ("process MiB" in
`bench/bench_model.py`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os

M_TRIM_THRESHOLD = -1  # mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1 << 30  # tensors below 1 GiB come from (and go back to) the heap
TRIM_THRESHOLD = (1 << 31) - 1  # never give the heap's free top back to the kernel


def keep_freed_memory() -> bool:
    """Raise glibc's mmap threshold to 1 GiB and stop heap trimming for this process (and the
    processes it forks): freed tensors stay in the process, like a caching allocator's, and the
    process keeps its peak memory. Returns False where it does not apply (no glibc)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and \
        bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


OPT_OUT = "DVT_KEEP_FREED_MEMORY"  # "0": leave the allocator as it is


@functools.cache
def keep_freed_memory_once() -> bool:
    """`keep_freed_memory()` the first time a dvt model is built in this process (a user's own
    training loop gets it too, not only `dvt train`), unless DVT_KEEP_FREED_MEMORY=0. Says so
    once on the `dvt_model` logger. Returns whether the setting is on."""
    on = os.environ.get(OPT_OUT, "1") != "0" and keep_freed_memory()
    if on:
        logging.getLogger("dvt_model").info(
            "dvt_model: glibc keeps freed memory in this process (mmap threshold 1 GiB, no "
            "trimming), so large activations are not page-faulted anew every step; set %s=0 "
            "to turn it off", OPT_OUT)
    return on

"""Compute threads per process: one unless asked for more.

Parallelism comes from processes (`--workers`, Dask, DataLoader workers, torchrun), so each
process computing on every core would oversubscribe the machine many times over: torch's
intra-op pool, OpenCV's pool and FFmpeg's decoder threads are each capped here.
"""

from __future__ import annotations

import sys

from dvt_prep.errors import InputError


def set_compute_threads(threads: int = 1, *, torch: bool | None = None) -> None:
    """Cap OpenCV's and torch's thread pools at `threads` in this process.

    torch: True to load torch and cap it, False to leave it alone, None (default) to cap it
    only when it is loaded already (prep without the torch TV-L1 never loads it).
    """
    if threads < 1:
        raise InputError(f"threads must be at least 1, got {threads}")
    import cv2

    cv2.setNumThreads(threads)
    if torch or (torch is None and "torch" in sys.modules):
        import torch as torch_module

        torch_module.set_num_threads(threads)


def single_thread_worker(_worker_id: int) -> None:
    """A DataLoader `worker_init_fn`: each worker computes on one thread (torch already does
    this in its workers; OpenCV does not)."""
    set_compute_threads(1)

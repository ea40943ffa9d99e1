"""Benchmark of TV-L1 (issue: a batched TV-L1 in PyTorch).

Pairs/s at 224x224 of dvt's PyTorch TV-L1 (all pairs in one batch) against OpenCV's DualTVL1
(one pair at a time), both at OpenCV's default parameters, with one thread and with all
threads, in the same run; and the EPE of both against Sintel's ground truth on the same crops
(224x224 crops of alley_1, clean and final). With a GPU: pairs/s on it for batch sizes 1-256.

Run: `dvt bench flow` or `python bench/bench_flow.py`.
"""

from __future__ import annotations

import os
import platform
import sys
import time

import cv2
import numpy as np
import torch

from dvt_prep.flow import tvl1_flow

SINTEL = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "flow", "sintel",
                      "alley_1")


def read_flo(path: str) -> np.ndarray:
    with open(path, "rb") as handle:
        np.fromfile(handle, np.float32, 1)
        width, height = np.fromfile(handle, np.int32, 2)
        return np.fromfile(handle, np.float32, width * height * 2).reshape(height, width, 2)


def crops() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not os.path.isdir(SINTEL):
        sys.exit(f"reference data {SINTEL} is absent (it lives in ../shared/data)")
    truth = read_flo(os.path.join(SINTEL, "flow_0002.flo"))
    firsts, seconds, flows = [], [], []
    for render in ("clean", "final"):
        a = cv2.imread(os.path.join(SINTEL, render, "frame_0002.png"))[..., ::-1]
        b = cv2.imread(os.path.join(SINTEL, render, "frame_0003.png"))[..., ::-1]
        for x in (0, 200, 400, 600, 800):
            for y in (0, 212):
                firsts.append(a[y:y + 224, x:x + 224])
                seconds.append(b[y:y + 224, x:x + 224])
                flows.append(truth[y:y + 224, x:x + 224])
    return np.stack(firsts), np.stack(seconds), np.stack(flows)


def epe(flow: np.ndarray, truth: np.ndarray) -> float:
    return float(np.linalg.norm(flow - truth, axis=-1).mean())


def main() -> None:
    first, second, truth = crops()
    pairs = len(first)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; {pairs} pairs of 224x224 "
          "(Sintel alley_1 crops, clean and final)")
    from dvt_prep.flow_torch import tvl1_flow_torch

    greys = [np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])
             for frames in (first, second)]
    for threads in (1, os.cpu_count()):
        cv2.setNumThreads(threads)
        torch.set_num_threads(threads)
        start = time.perf_counter()
        reference = tvl1_flow(first, second, backend="opencv")
        opencv_rate = pairs / (time.perf_counter() - start)
        start = time.perf_counter()
        ours = tvl1_flow_torch(*greys)
        rate = pairs / (time.perf_counter() - start)
        print(f"{threads} thread(s): OpenCV {opencv_rate:.2f} pairs/s (EPE "
              f"{epe(reference, truth):.3f}); torch {rate:.2f} pairs/s (EPE "
              f"{epe(ours, truth):.3f}); ratio {rate / opencv_rate:.2f} (target >= 2)")
    if torch.cuda.is_available():
        from dvt_prep.flow_torch import tvl1_torch

        for compiled in (False, True):
            for batch in (1, 16, 64, 256):
                index = np.arange(batch) % pairs
                a = torch.from_numpy(greys[0][index])[:, None].cuda()
                b = torch.from_numpy(greys[1][index])[:, None].cuda()
                tvl1_torch(a, b, compile_step=compiled)  # warm-up (and compilation)
                torch.cuda.synchronize()
                start = time.perf_counter()
                flow = tvl1_torch(a, b, compile_step=compiled)
                torch.cuda.synchronize()
                rate = batch / (time.perf_counter() - start)
                error = epe(flow.cpu().numpy(), truth[index])
                print(f"CUDA{' compiled' if compiled else ''} batch {batch}: {rate:.1f} pairs/s "
                      f"(EPE {error:.3f})")


if __name__ == "__main__":
    main()

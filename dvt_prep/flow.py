"""TV-L1 optical flow at OpenCV DualTVL1's default parameters: dvt's batched PyTorch
implementation (`dvt_prep.flow_torch`, CPU or CUDA; the default), or OpenCV's own (contrib)."""

from __future__ import annotations

import cv2
import numpy as np

from dvt_prep.cue_names import FLOW_BACKENDS


def _grey(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        raise ValueError(f"tvl1_flow takes uint8 frames, got {frame.dtype}")
    if frame.ndim == 2:
        return frame
    if frame.ndim == 3 and frame.shape[2] == 3:
        return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    raise ValueError(f"tvl1_flow takes (H, W) grey or (H, W, 3) RGB frames, got {frame.shape}")




def tvl1_flow(frame_a: np.ndarray, frame_b: np.ndarray, *, backend: str = "torch",
              device: str = "cpu") -> np.ndarray:
    """TV-L1 flow from frame_a to frame_b: pixel p of frame_a is at p + flow[p] in frame_b.

    frame_a, frame_b: uint8 (H, W, 3) RGB or (H, W) grey, or batches (N, H, W[, 3]) of them.
    backend: "torch" (dvt's TV-L1, pairs in batches, on `device`; the default: as accurate as
    OpenCV's and faster on one CPU thread, see BENCHMARKS.md) or "opencv" (DualTVL1, one pair
    at a time).
    Returns float32 (H, W, 2) (dx, dy) in pixels, or (N, H, W, 2) for batches.
    """
    if backend not in FLOW_BACKENDS:
        raise ValueError(f"unknown flow backend {backend!r}; choose from "
                         f"{', '.join(FLOW_BACKENDS)}")
    frame_a, frame_b = np.asarray(frame_a), np.asarray(frame_b)
    if frame_a.shape != frame_b.shape:
        raise ValueError(f"frames differ in shape: {frame_a.shape} vs {frame_b.shape}")
    batched = frame_a.ndim == 4 or (frame_a.ndim == 3 and frame_a.shape[-1] != 3)
    if backend == "torch":
        from dvt_prep.flow_torch import tvl1_flow_torch

        greys_a = np.stack([_grey(f) for f in (frame_a if batched else [frame_a])])
        greys_b = np.stack([_grey(f) for f in (frame_b if batched else [frame_b])])
        flow = tvl1_flow_torch(greys_a, greys_b, device=device)
        return flow if batched else flow[0]
    if batched:
        return np.stack([tvl1_flow(a, b, backend="opencv")
                         for a, b in zip(frame_a, frame_b, strict=True)])
    solver = cv2.optflow.DualTVL1OpticalFlow_create()
    flow = solver.calc(_grey(frame_a), _grey(frame_b), None)
    return flow.astype(np.float32, copy=False)

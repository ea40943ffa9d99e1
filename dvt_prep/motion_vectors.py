"""The codec's motion vectors: raw export (mv-extractor layout) and rasterisation to a 4x4 grid.

Conventions (docs/design.md §1): a displacement d at position p of frame t says the content was at
p + d in frame t-1; channels are (dx, dy) in pixels. FFmpeg's AVMotionVector has
src = dst + motion / motion_scale, where src lies in the reference frame, so for a reference k
frames in the past the one-frame-back displacement is motion / motion_scale / k.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from dvt_prep.decode import PathOrFile, frame_type, iter_av_frames, take_motion_vectors

GRID = 4  # the finest partition of H.264 motion, pixels
SOURCE, W, H, SRC_X, SRC_Y, DST_X, DST_Y, MOTION_X, MOTION_Y, MOTION_SCALE = range(10)


def motion_vectors(source: PathOrFile, *, format: str | None = None
                   ) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (frame_type, vectors) per frame in display order.

    vectors: (N, 10) int32 in mv-extractor's columns: source, w, h, src_x, src_y, dst_x, dst_y,
    motion_x, motion_y, motion_scale; (0, 10) for intra frames.
    """
    for frame in iter_av_frames(source, motion_vectors=True, format=format):
        yield frame_type(frame), take_motion_vectors(frame)


def reference_distances(frame_types: str) -> list[tuple[int | None, int | None]]:
    """Display distance to the past and the future anchor of each frame, None when unknown.

    FFmpeg exports only the direction of a vector's reference (source -1: past, +1: future).
    For B-frames we take the nearest I/P frame before and after in display order, and P-frames
    refer to the previous anchor: exact for dvt's canonical stream (one reference, no
    B-frames), not for a source stream with several references or a B-pyramid (there
    dvt_prep.reference_search finds each vector's frame). Frame 0 and frames with no anchor on a
    side get None there.
    """
    anchors = [i for i, kind in enumerate(frame_types) if kind in "IP"]
    out: list[tuple[int | None, int | None]] = []
    for t, kind in enumerate(frame_types):
        past = max((a for a in anchors if a < t), default=None)
        future = min((a for a in anchors if a > t), default=None)
        if kind == "B":
            out.append((t - past if past is not None else None,
                        future - t if future is not None else None))
        else:
            out.append((t - past if past is not None else None, None))
    return out


def rasterize(vectors: np.ndarray, height: int, width: int, *,
              past_distance: int | None = 1, future_distance: int | None = None,
              scales: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Dense one-frame-back displacement on the 4x4 grid from one frame's vectors.

    vectors: (N, 10) int32 as `motion_vectors` yields. Vectors whose reference distance is None
    are dropped. A future-referencing vector (source > 0) with distance k is negated and divided
    by k; cells covered by several vectors (bi-prediction) get their mean. scales: (N,) per-vector
    factors instead of the two distances (0 drops the vector; see dvt_prep.reference_search).
    Returns (displacement (ceil(H/4), ceil(W/4), 2) float32 pixels (dx, dy),
             valid (ceil(H/4), ceil(W/4)) bool).
    """
    grid_h, grid_w = -(-height // GRID), -(-width // GRID)
    displacement = np.zeros((grid_h, grid_w, 2), np.float32)
    valid = np.zeros((grid_h, grid_w), bool)
    if len(vectors) == 0:
        return displacement, valid
    vectors = vectors.astype(np.int64, copy=False)
    past = vectors[:, SOURCE] < 0
    scale = np.zeros(len(vectors), np.float64)
    if scales is not None:
        scale[:] = scales
    else:
        if past_distance is not None:
            scale[past] = 1.0 / past_distance
        if future_distance is not None:
            scale[~past] = -1.0 / future_distance
    keep = scale != 0
    vectors, scale = vectors[keep], scale[keep]
    if len(vectors) == 0:
        return displacement, valid
    per_block = scale / vectors[:, MOTION_SCALE]
    dx = vectors[:, MOTION_X] * per_block
    dy = vectors[:, MOTION_Y] * per_block
    # Blocks are given by centre and size; expand each to the 4x4 cells it covers.
    cells_w, cells_h = vectors[:, W] // GRID, vectors[:, H] // GRID
    x0 = (vectors[:, DST_X] - vectors[:, W] // 2) // GRID
    y0 = (vectors[:, DST_Y] - vectors[:, H] // 2) // GRID
    count = cells_w * cells_h
    block = np.repeat(np.arange(len(vectors)), count)
    within = np.arange(block.size) - np.repeat(np.cumsum(count) - count, count)
    cx = x0[block] + within % cells_w[block]
    cy = y0[block] + within // cells_w[block]
    inside = (cx >= 0) & (cx < grid_w) & (cy >= 0) & (cy < grid_h)
    flat = (cy * grid_w + cx)[inside]
    block = block[inside]
    hits = np.bincount(flat, minlength=grid_h * grid_w)
    sum_x = np.bincount(flat, weights=dx[block], minlength=grid_h * grid_w)
    sum_y = np.bincount(flat, weights=dy[block], minlength=grid_h * grid_w)
    covered = hits > 0
    displacement.reshape(-1, 2)[covered, 0] = sum_x[covered] / hits[covered]
    displacement.reshape(-1, 2)[covered, 1] = sum_y[covered] / hits[covered]
    valid.reshape(-1)[:] = covered
    return displacement, valid

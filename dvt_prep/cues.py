"""Per-frame motion cues from decoded frames and rasterised motion vectors (docs/design.md §3).

All functions work on one frame (or one pair of frames) so that a video never needs its
full-resolution float cues in memory at once. Shapes use H, W for the frame, g for the cue grid.
"""

from __future__ import annotations

import cv2
import numpy as np

from dvt_prep.cue_names import CUE_GRIDS, CUE_NAMES  # noqa: F401 (re-exported)
from dvt_prep.motion_vectors import GRID

PATCH = 16
VALIDITY = {"mv": "mv_valid", "md": "md_valid"}


def cell_mean(image: np.ndarray, g: int) -> np.ndarray:
    """Mean over each g x g cell of an (H, W, C) array: (ceil(H/g), ceil(W/g), C) float32.

    Cells cut by the right or bottom border average the pixels they hold.
    """
    image = np.asarray(image, np.float32)
    if g == 1:
        return image
    height, width, channels = image.shape
    out_h, out_w = -(-height // g), -(-width // g)
    if out_h * g == height and out_w * g == width:
        # INTER_AREA with an integer factor is the exact cell mean, and far faster than numpy's
        # reduction over strided axes.
        pooled = cv2.resize(image, (out_w, out_h), interpolation=cv2.INTER_AREA)
        return pooled.reshape(out_h, out_w, channels)
    padded = np.zeros((out_h * g, out_w * g, channels), np.float32)
    padded[:height, :width] = image
    counts = np.zeros((out_h * g, out_w * g, 1), np.float32)
    counts[:height, :width] = 1
    sums = padded.reshape(out_h, g, out_w, g, channels).sum(axis=(1, 3))
    return sums / counts.reshape(out_h, g, out_w, g, 1).sum(axis=(1, 3))


def pixel_displacement(displacement: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-cell upsampling of a 4x4-grid field to pixels: (H, W, 2) float32."""
    grid_h, grid_w = displacement.shape[:2]
    per_pixel = cv2.resize(displacement, (grid_w * GRID, grid_h * GRID),
                           interpolation=cv2.INTER_NEAREST)
    return per_pixel[:height, :width]


def motion_compensate(previous: np.ndarray, displacement: np.ndarray) -> np.ndarray:
    """Prediction of frame t from frame t-1: previous sampled bilinearly at p + d(p).

    previous: (H, W, 3) uint8; displacement: (H/4, W/4, 2) float32 (dx, dy) on the 4x4 grid.
    Returns (H, W, 3) float32. Positions outside the frame take the nearest border pixel.
    """
    height, width = previous.shape[:2]
    per_pixel = pixel_displacement(displacement, height, width)
    xs = np.arange(width, dtype=np.float32)[None, :] + per_pixel[..., 0]
    ys = np.arange(height, dtype=np.float32)[:, None] + per_pixel[..., 1]
    return cv2.remap(previous.astype(np.float32), xs, ys, interpolation=cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


Cells = tuple[int, int, int, int]  # (y0, y1, x0, x1): a block of cells, in cells


def difference(frame: np.ndarray, previous: np.ndarray, g: int, cells: Cells | None = None
               ) -> np.ndarray:
    """`rgbd` of one frame: cell mean of frame t minus that of frame t-1 (both (H, W, 3)
    uint8); (ceil(H/g), ceil(W/g), 3) float32, or only the block `cells` of it."""
    y0, y1, x0, x1 = cells or (0, -(-frame.shape[0] // g), 0, -(-frame.shape[1] // g))
    window = np.s_[y0 * g: y1 * g, x0 * g: x1 * g]
    return cell_mean(frame[window], g) - cell_mean(previous[window], g)


def residual(frame: np.ndarray, previous: np.ndarray, displacement: np.ndarray, g: int,
             cells: Cells | None = None, grid_origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """`rgbr` of one frame: cell mean of frame t minus that of its motion-compensated
    prediction from frame t-1 (`motion_compensate`); (ceil(H/g), ceil(W/g), 3) float32, or
    only the block `cells` of it. grid_origin: the 4x4-grid cell (y, x) at which
    `displacement` starts, when it covers only the part of the frame around `cells`."""
    height, width = frame.shape[:2]
    y0, y1, x0, x1 = cells or (0, -(-height // g), 0, -(-width // g))
    if height % max(g, GRID) or width % max(g, GRID):  # cells cut by the border
        assert grid_origin == (0, 0), "a partial displacement needs whole cells"
        full = cell_mean(frame, g) - cell_mean(motion_compensate(previous, displacement), g)
        return full[y0:y1, x0:x1]
    pooled = cell_mean(frame[y0 * g: y1 * g, x0 * g: x1 * g], g)
    return pooled - pooled_prediction(previous, displacement, g, (y0, y1, x0, x1), grid_origin)


def pooled_prediction(previous: np.ndarray, displacement: np.ndarray, g: int, cells: Cells,
                      grid_origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """The block `cells` of `cell_mean(motion_compensate(previous, displacement), g)` without
    the full-resolution prediction, for H and W multiples of max(g, 4): (y1-y0, x1-x0, 3).
    grid_origin: as in `residual`.

    Within a sub-cell of c = min(g, 4) pixels the displacement d is one vector, and bilinear
    sampling is linear, so the sub-cell's mean prediction is the c x c box mean of `previous`
    (its border replicated, as the per-pixel sampling does) sampled bilinearly at the
    sub-cell's corner + d. A border of c pixels is enough: beyond it the box means repeat. Box
    means are taken only over the window that the samples reach.
    """
    c = min(g, GRID)
    height, width = previous.shape[:2]
    y0, y1, x0, x1 = (v * (g // c) for v in cells)  # in sub-cells
    per_cell = GRID // c
    gy, gx = y0 // per_cell - grid_origin[0], x0 // per_cell - grid_origin[1]
    field = np.repeat(np.repeat(displacement[gy: gy + -(-y1 // per_cell) - y0 // per_cell,
                                             gx: gx + -(-x1 // per_cell) - x0 // per_cell],
                                per_cell, 0), per_cell, 1)
    field = field[y0 % per_cell: y0 % per_cell + y1 - y0, x0 % per_cell: x0 % per_cell + x1 - x0]
    xs = np.arange(x0 * c, x1 * c, c, dtype=np.float32)[None, :] + field[..., 0]
    ys = np.arange(y0 * c, y1 * c, c, dtype=np.float32)[:, None] + field[..., 1]
    # the window of frame pixels the samples reach, within the frame and a border of c
    left = min(max(-c, int(np.floor(xs.min()))), width - 1)
    top = min(max(-c, int(np.floor(ys.min()))), height - 1)
    right = max(min(width + c, int(np.floor(xs.max())) + c + 2), 1)
    bottom = max(min(height + c, int(np.floor(ys.max())) + c + 2), 1)
    inside = previous[max(0, top): min(height, bottom), max(0, left): min(width, right)]
    window = cv2.copyMakeBorder(inside, max(0, -top), max(0, bottom - height), max(0, -left),
                                max(0, right - width), cv2.BORDER_REPLICATE)
    # box means straight from the frame's dtype (sums of whole grey levels are exact either way)
    boxes = cv2.boxFilter(window, cv2.CV_32F, (c, c), anchor=(0, 0), normalize=True,
                          borderType=cv2.BORDER_REPLICATE) if c > 1 else \
        window.astype(np.float32)
    sampled = cv2.remap(boxes, xs - np.float32(left), ys - np.float32(top),
                        interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cell_mean(sampled, g // c)


def motion_displacement(displacement: np.ndarray, valid: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Per-16x16-patch motion displacement from the 4x4-grid field of one frame.

    displacement: (h, w, 2) float32 pixels; valid: (h, w) bool, with h, w in 4x4 cells.
    Returns (md (Hp, Wp, 2) float32: mean displacement over the patch's inter-predicted cells,
    0 where none; md_valid (Hp, Wp) float32: inter-predicted fraction of the patch's cells that
    lie inside the frame).
    """
    per_patch = PATCH // GRID
    height, width = valid.shape
    out_h, out_w = -(-height // per_patch), -(-width // per_patch)
    weights = np.zeros((out_h * per_patch, out_w * per_patch), np.float32)
    weights[:height, :width] = valid
    inside = np.zeros_like(weights)
    inside[:height, :width] = 1
    values = np.zeros((out_h * per_patch, out_w * per_patch, 2), np.float32)
    values[:height, :width] = displacement * valid[..., None]

    def patch_sum(array: np.ndarray) -> np.ndarray:
        return array.reshape(out_h, per_patch, out_w, per_patch, *array.shape[2:]).sum(axis=(1, 3))

    covered = patch_sum(weights)
    md = patch_sum(values) / np.maximum(covered, 1)[..., None]
    return md.astype(np.float32), (covered / patch_sum(inside)).astype(np.float32)

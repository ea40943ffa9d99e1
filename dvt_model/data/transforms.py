"""Geometric transforms applied to every cue of a clip together (docs/design.md §7).

A `Box` is a crop in stored pixels (edge coordinates: pixel i covers [i, i+1)), resized to a
square of `out_size` pixels and optionally mirrored. The boxes made here start at whole pixels
(their sizes may be fractional), which lets `resize_pixels` resample uint8 frames directly. Each cue is resampled on its own grid
(`rgb` per pixel, `md` per 16x16 patch, `rgbr` per g x g cell, ...) from the same box, so the
grids stay aligned with the crop; displacements are scaled by the resize and `dx` is negated by
a flip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

DISPLACEMENT_CUES = ("mv", "md", "tvl1")


@dataclass(frozen=True)
class Box:
    x0: float
    y0: float
    width: float
    height: float
    flip: bool = False


def random_resized_box(rng: np.random.Generator, height: int, width: int, *,
                       scale: tuple[float, float] = (0.25, 1.0),
                       ratio: tuple[float, float] = (3 / 4, 4 / 3), flip: bool = True) -> Box:
    """Inception-style random crop (area fraction `scale`, aspect `ratio`) and a coin-flip mirror."""
    area = height * width
    mirrored = bool(flip and rng.random() < 0.5)
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        box_w, box_h = math.sqrt(target * aspect), math.sqrt(target / aspect)
        if box_w <= width and box_h <= height:
            return Box(math.floor(rng.uniform(0, width - box_w)),
                       math.floor(rng.uniform(0, height - box_h)), box_w, box_h, mirrored)
    side = min(height, width)
    return Box((width - side) // 2, (height - side) // 2, side, side, mirrored)


def short_side_boxes(height: int, width: int, num_crops: int) -> list[Box]:
    """Square crops of the short side spread along the long side (left, centre, right, ...).

    With one crop: the centre crop. Resizing the box to `img_size` is the same as resizing the
    short side to `img_size` and then cropping.
    """
    side = min(height, width)
    spread = [0.5] if num_crops == 1 else [i / (num_crops - 1) for i in range(num_crops)]
    return [Box(math.floor((width - side) * f), math.floor((height - side) * f), side, side)
            for f in spread]


def crop_resize(array: torch.Tensor, box: Box, stored_size: tuple[int, int], out_size: int
                ) -> torch.Tensor:
    """Resample one cue over a box. array: (T, h, w, C) on a grid covering the stored frame of
    `stored_size` = (H, W) pixels, any dtype; returns (T, h', w', C) float32 with
    h' = w' = out_size / cell and the same cell size as the input (16 for `md`, 1 for `rgb`,
    ...). Bilinear, borders replicated. Only the cells under the box (and one around it, which
    bilinear sampling may reach) are converted to float and resampled."""
    num_frames, cells_h, cells_w, channels = array.shape
    height, width = stored_size
    cell_h, cell_w = height / cells_h, width / cells_w
    # the cells the box covers, one more on each side, within the frame
    x_lo = max(0, math.floor(box.x0 / cell_w) - 1)
    x_hi = min(cells_w, math.ceil((box.x0 + box.width) / cell_w) + 1)
    y_lo = max(0, math.floor(box.y0 / cell_h) - 1)
    y_hi = min(cells_h, math.ceil((box.y0 + box.height) / cell_h) + 1)
    region = array[:, y_lo:y_hi, x_lo:x_hi].permute(0, 3, 1, 2).float()
    x0, y0 = box.x0 - x_lo * cell_w, box.y0 - y_lo * cell_h
    region_h, region_w = (y_hi - y_lo) * cell_h, (x_hi - x_lo) * cell_w
    out_cells = round(out_size / cell_w)
    centres = (torch.arange(out_cells, dtype=torch.float32) + 0.5) * (out_size / out_cells)
    if box.flip:
        centres = out_size - centres
    x = x0 + centres * (box.width / out_size)
    y = y0 + (torch.arange(out_cells, dtype=torch.float32) + 0.5) * (
        out_size / out_cells) * (box.height / out_size)
    grid_y, grid_x = torch.meshgrid(2 * y / region_h - 1, 2 * x / region_w - 1, indexing="ij")
    grid = torch.stack((grid_x, grid_y), -1).expand(num_frames, -1, -1, -1)
    sampled = F.grid_sample(region, grid, mode="bilinear", padding_mode="border",
                            align_corners=False)
    return sampled.permute(0, 2, 3, 1)


def resize_pixels(frames: torch.Tensor, box: Box, out_size: int) -> torch.Tensor:
    """`crop_resize` for uint8 frames (T, H, W, C) and a box starting at whole pixels, in one
    uint8 resampling: (T, out_size, out_size, C) uint8, the same sample positions, values
    rounded to whole grey levels (as torchvision's resize of uint8 images; within one level of
    `crop_resize`). Samples within half a pixel before the box's first row or column (when
    enlarging) take that row or column instead of blending with the one before it."""
    height, width = frames.shape[1:3]
    x0, y0 = int(box.x0), int(box.y0)
    x1 = min(width, math.ceil(box.x0 + box.width) + 1)
    y1 = min(height, math.ceil(box.y0 + box.height) + 1)
    region = frames[:, y0:y1, x0:x1].permute(0, 3, 1, 2)  # (T, C, h, w), channels last in memory
    # the aten op takes the output size and the scales both: the scales place the samples
    # (source = (i + 0.5) / scale - 0.5 from the box's origin), the size stops at out_size
    out = torch.ops.aten.upsample_bilinear2d(region, [out_size, out_size], False,
                                             out_size / box.height, out_size / box.width)
    if box.flip:
        out = out.flip(3)
    return out.permute(0, 2, 3, 1)


def transform_cue(name: str, array: torch.Tensor, box: Box, stored_size: tuple[int, int],
                  out_size: int) -> torch.Tensor:
    """`crop_resize` plus what the box does to displacement values (scale, mirror); uint8 rgb
    at full resolution, with a box at whole pixels, through `resize_pixels` (stays uint8)."""
    if name == "rgb" and array.dtype == torch.uint8 and tuple(array.shape[1:3]) == \
            tuple(stored_size) and float(box.x0).is_integer() and float(box.y0).is_integer():
        return resize_pixels(array, box, out_size)
    out = crop_resize(array, box, stored_size, out_size)
    if name in DISPLACEMENT_CUES:
        factor = out.new_tensor([out_size / box.width, out_size / box.height])
        if box.flip:
            factor[0] = -factor[0]
        out = out * factor
    return out

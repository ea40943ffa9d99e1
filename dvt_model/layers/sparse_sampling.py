"""Bilinear / trilinear sampling as a sparse-to-dense sampling matrix.

Sampling values at fractional positions and summing them with attention weights is linear in
the values: out = S @ V, where row q of S holds, for each sampled point, its attention weight
times the interpolation weight of each of its 2^k neighbouring cells. Building S with one
`scatter_add` and multiplying with one matmul is several times faster on the CPU than
`grid_sample` followed by a weighted sum (forward and backward), and gives the same result with
zero padding (neighbours outside the grid get weight 0), like `grid_sample(padding_mode="zeros",
align_corners=False)` with cell centres at integer positions.
"""

from __future__ import annotations

import torch


def interpolation_corners(positions: torch.Tensor, size: tuple[int, ...]
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Neighbours of fractional positions and their interpolation weights.

    positions: (..., k) in cell units, coordinates in the order (x, y[, t]); size: the grid's
    extent in the reverse order ((H, W) or (T, H, W)). Returns `index` (..., 2^k) int64, the flat
    index of each neighbour in a row-major grid of `size`, and `weight` (..., 2^k), 0 for
    neighbours outside the grid (their index is clamped to a valid cell).
    """
    extents = list(reversed(size))  # per coordinate: W, H[, T]
    floor = positions.detach().floor()
    frac = positions - floor
    step = torch.tensor([0, 1], device=positions.device)
    index, weight, stride = None, None, 1
    for axis, extent in enumerate(extents):  # per axis: the two neighbours, then outer products
        coordinate = floor[..., axis, None].long() + step  # (..., 2)
        inside = (coordinate >= 0) & (coordinate < extent)
        axis_weight = torch.stack((1 - frac[..., axis], frac[..., axis]), -1) * inside
        axis_index = coordinate.clamp(0, extent - 1) * stride
        stride *= extent
        if index is None:
            index, weight = axis_index, axis_weight
        else:
            index = (axis_index[..., :, None] + index[..., None, :]).flatten(-2)
            weight = (axis_weight[..., :, None] * weight[..., None, :]).flatten(-2)
    return index, weight


def sampling_matrix(index: torch.Tensor, weight: torch.Tensor, num_keys: int) -> torch.Tensor:
    """Dense (..., Q, num_keys) matrix with `weight` summed at `index`; both (..., Q, M)."""
    matrix = weight.new_zeros(*index.shape[:-1], num_keys)
    return matrix.scatter_add_(-1, index, weight)  # in place: no copy of the zeros

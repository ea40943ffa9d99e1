"""Deformable sampling: attention-weighted sums of values interpolated at fractional positions.

Sampling values at fractional positions and summing them with attention weights is linear in
the values: out = S @ V, where row q of S holds, for each sampled point, its attention weight
times the interpolation weight of each of its 2^k neighbouring cells. `deformable_sum` builds S
a few rows' matrices at a time (cache-sized), multiplies, and in the backward pass builds them
again instead of keeping them; the gradients of the positions and attention weights are computed
from each chunk's `grad_out @ V^T` in closed form. Zero padding (neighbours outside the grid get
weight 0), like `grid_sample(padding_mode="zeros", align_corners=False)` with cell centres at
integer positions.

Positions come coordinate-first, `(k, ..., Q, M)`: every elementwise step then runs over long
contiguous rows (a trailing axis of 2 or 3 coordinates made each step several times slower on
the CPU, in the forward and in autograd's backward).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Elements of the sampling matrices built at once (4 MiB of float32 on the CPU): they stay in
# the cache between the scatter and the matmul.
CPU_CHUNK_ELEMENTS = 1 << 20
CUDA_CHUNK_ELEMENTS = 1 << 28


@dataclass
class Corners:
    """The 2^k neighbours of each position. `index`: per corner (corner c has bit a set for the
    upper neighbour along axis a), the flat index (int64) into a row-major grid plus the base
    offset. `axis_weight[a]`: the interpolation weights (lower, upper) along axis a, 0 outside
    the grid; a corner's weight is their product over the axes. `axis_slope[a]`: their right
    derivatives in position a, or None. Each tensor is shaped like one coordinate."""

    index: list[torch.Tensor]
    axis_weight: list[tuple[torch.Tensor, torch.Tensor]]
    axis_slope: list[tuple[torch.Tensor, torch.Tensor]] | None = None

    def weights(self, scale: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Each corner's weight (times `scale`, applied once along the last axis)."""
        factors = list(self.axis_weight)
        if scale is not None:
            factors[-1] = tuple(scale * w for w in factors[-1])
        out = []
        for corner in range(len(self.index)):
            weight = None
            for axis, pair in enumerate(factors):
                factor = pair[(corner >> axis) & 1]
                weight = factor if weight is None else weight * factor
            out.append(weight)
        return out


def contract(values: list[torch.Tensor], factors: list[tuple[torch.Tensor, torch.Tensor]]
             ) -> torch.Tensor:
    """sum over corners c of values[c] * prod over axes a of factors[a][bit a of c], one axis at
    a time (2^k - 1 multiply-adds instead of k products per corner)."""
    for axis in reversed(range(len(factors))):
        half = len(values) // 2
        lower, upper = factors[axis]
        values = [values[c] * lower + values[c + half] * upper for c in range(half)]
    return values[0]


def corners(positions: torch.Tensor, size: tuple[int, ...], base: torch.Tensor | None = None,
            *, slopes: bool = False) -> Corners:
    """Neighbours of fractional `positions` (k, ...) in cell units, coordinates (x, y[, t]), on a
    grid of `size` in the reverse order ((H, W) or (T, H, W)). `base` (broadcast to a coordinate's
    shape) is added to every flat index. Differentiable in the positions (through the weights)
    when autograd records.

    Along each axis the two neighbours are cells c and c + 1 with c = clamp(floor(p), 0,
    extent - 2), weighted by the tent max(0, 1 - |p - cell|): inside the grid that is plain
    linear interpolation, and a position up to a cell outside keeps only its inside neighbour,
    without masks or clamped indices (a one-cell axis has only cell 0).
    """
    differentiable = torch.is_grad_enabled() and positions.requires_grad
    extents = list(reversed(size))  # per coordinate: W, H[, T]
    first, steps, stride = base, [], 1
    out = Corners([], [], [] if slopes else None)
    for axis, extent in enumerate(extents):
        position = positions[axis]
        with torch.no_grad():  # float arithmetic on the cell numbers: exact below 2^24
            low = position.floor().clamp_(0, max(extent - 2, 0))
            cell = low * stride if stride > 1 else low
            first = cell if first is None else first + cell
        distance = (position - low, position - (low + 1))
        weight = tuple(_tent(d, differentiable) for d in distance)
        slope = tuple(_tent_slope(d) for d in distance) if slopes else None
        if extent == 1:  # no upper neighbour
            weight = (weight[0], torch.zeros_like(weight[0]))
            slope = slope and (slope[0], torch.zeros_like(slope[0]))
        out.axis_weight.append(weight)
        if slopes:
            out.axis_slope.append(slope)
        steps.append(stride if extent > 1 else 0)
        stride *= extent
    first = first.long()
    for corner in range(2 ** len(extents)):
        step = sum(((corner >> axis) & 1) * steps[axis] for axis in range(len(extents)))
        out.index.append(first + step if step else first)
    return out


def _tent(distance: torch.Tensor, differentiable: bool) -> torch.Tensor:
    """max(0, 1 - |distance|); for autograd written so that its derivatives are the right
    derivatives of `_tent_slope` (abs has 0 at 0, which would stop the gradient at whole-cell
    positions)."""
    if differentiable:
        near = (distance >= -1) & (distance < 1)
        return torch.where(distance < 0, 1 + distance, 1 - distance) * near
    return distance.abs().neg_().add_(1).clamp_(min=0)


def _tent_slope(distance: torch.Tensor) -> torch.Tensor:
    """Right derivative of max(0, 1 - |distance|): +1 on [-1, 0), -1 on [0, 1), else 0."""
    near = (distance >= -1) & (distance < 1)
    return torch.where(distance < 0, 1.0, -1.0).mul_(near)


def interpolate_rows(table: torch.Tensor, positions: torch.Tensor, size: tuple[int, ...],
                     base: torch.Tensor | None = None) -> torch.Tensor:
    """Row q of `table` (..., Q, K) read at the M fractional positions (k, ..., Q, M) of that row,
    interpolated, zero outside the grid: (..., Q, M). Plain autograd (small tensors)."""
    near = corners(positions, size, base)
    return contract([table.gather(-1, index) for index in near.index], near.axis_weight)


def deformable_sum(values: torch.Tensor, positions: torch.Tensor, attention: torch.Tensor,
                   size: tuple[int, ...], base: torch.Tensor | None = None) -> torch.Tensor:
    """out[..., q, :] = sum over m of attention[..., q, m] * (values interpolated at
    positions[:, ..., q, m]).

    values (..., K, E): the keys, a row-major grid of `size` ((H, W) or (T, H, W)) from flat index
    `base` on (K >= base + prod(size)). positions (k, ..., Q, M) float, cell units, coordinates
    (x, y[, t]) first, cell centres at integers. attention (..., Q, M). base: int64, (M,) or
    (Q, M), each point's offset among the keys (e.g. the start of its frame), or None. Returns
    (..., Q, E) in the values' dtype; differentiable in values, positions and attention.
    """
    lead, k = values.shape[:-2], positions.shape[0]
    rows = positions.shape[-2:]
    out = _DeformableSum.apply(values.reshape(-1, *values.shape[-2:]),
                               positions.reshape(k, -1, *rows), attention.reshape(-1, *rows),
                               base, tuple(size))
    return out.reshape(*lead, *out.shape[-2:])


def _chunks(groups: int, matrix_elements: int, cuda: bool) -> list[slice]:
    budget = CUDA_CHUNK_ELEMENTS if cuda else CPU_CHUNK_ELEMENTS
    step = max(1, budget // matrix_elements)
    return [slice(start, start + step) for start in range(0, groups, step)]


def _at_least_float32(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _sampling_matrices(scratch: torch.Tensor, near: Corners, attention: torch.Tensor
                       ) -> torch.Tensor:
    """Into `scratch` (>= c, Q, K): the sampling matrices of c groups; attention (c, Q, M)."""
    matrix = scratch[:attention.shape[0]].zero_()
    for index, weight in zip(near.index, near.weights(attention), strict=True):
        matrix.scatter_add_(-1, index, weight)
    return matrix


class _DeformableSum(torch.autograd.Function):
    """values (G, K, E), positions (k, G, Q, M), attention (G, Q, M), base (M,), (Q, M) or None
    -> (G, Q, E). Chunk by chunk, so that the corners, the matrices and the products of each
    chunk stay in the cache."""

    @staticmethod
    def forward(ctx, values, positions, attention, base, size):
        ctx.save_for_backward(values, positions, attention, base)
        ctx.size = size
        groups, keys = values.shape[:2]
        queries = attention.shape[1]
        out = values.new_empty(groups, queries, values.shape[2])
        with torch.no_grad(), torch.autocast(values.device.type, enabled=False):
            positions, attention = _at_least_float32(positions), _at_least_float32(attention)
            parts = _chunks(groups, queries * keys, values.is_cuda)
            scratch = attention.new_empty(min(groups, parts[0].stop), queries, keys)
            for part in parts:
                near = corners(positions[:, part], size, base)
                matrix = _sampling_matrices(scratch, near, attention[part])
                torch.bmm(matrix.to(values.dtype), values[part], out=out[part])
        return out

    @staticmethod
    def backward(ctx, grad_out):
        values, positions, attention, base = ctx.saved_tensors
        need_values, need_positions, need_attention = ctx.needs_input_grad[:3]
        groups, keys = values.shape[:2]
        queries = attention.shape[1]
        grad_out = grad_out.contiguous().to(values.dtype)
        grad_values = torch.empty_like(values) if need_values else None
        with torch.no_grad(), torch.autocast(values.device.type, enabled=False):
            positions32, attention32 = _at_least_float32(positions), _at_least_float32(attention)
            grad_positions = torch.empty_like(positions32) if need_positions else None
            grad_attention = torch.empty_like(attention32) if need_attention else None
            parts = _chunks(groups, queries * keys, values.is_cuda)
            scratch = attention32.new_empty(min(groups, parts[0].stop), queries, keys)
            for part in parts:
                near = corners(positions32[:, part], ctx.size, base, slopes=need_positions)
                if need_values:
                    matrix = _sampling_matrices(scratch, near, attention32[part])
                    torch.bmm(matrix.to(values.dtype).transpose(1, 2), grad_out[part],
                              out=grad_values[part])
                if not (need_positions or need_attention):
                    continue
                dots = torch.bmm(grad_out[part], values[part].transpose(1, 2))
                # pair[c][q, m] = grad_out[q] . values[index of corner c of point m]
                pair = [dots.gather(-1, index).to(attention32.dtype) for index in near.index]
                if need_attention:
                    grad_attention[part] = contract(pair, near.axis_weight)
                if need_positions:
                    for axis, slope in enumerate(near.axis_slope):
                        factors = list(near.axis_weight)
                        factors[axis] = slope
                        grad_positions[axis, part] = attention32[part] * contract(pair, factors)
        return (grad_values,
                None if grad_positions is None else grad_positions.to(positions.dtype),
                None if grad_attention is None else grad_attention.to(attention.dtype),
                None, None)

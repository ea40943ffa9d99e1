"""Deformable sampling: attention-weighted sums of values interpolated at fractional positions.

Sampling values at fractional positions and summing them with attention weights is linear in
the values: out = S @ V, where row q of S holds, for each sampled point, its attention weight
times the interpolation weight of each of its 2^k neighbouring cells. `deformable_sum` computes
S @ V as one weighted gather of the neighbours' rows (`embedding_bag`, mode "sum"). Its backward
pass needs S^T @ grad_out and grad_out @ V^T at the neighbours: a scatter into a dense S and two
matmuls per (sub-clip, head) there beat any sparse kernel torch has on the CPU (the dense
matrices stay in the cache); the gradients of the positions and attention weights follow in
closed form. Nothing of S is kept between the passes. Zero padding (neighbours outside the grid
get weight 0), like `grid_sample(padding_mode="zeros", align_corners=False)` with cell centres
at integer positions.

Positions come coordinate-first, `(k, ..., Q, M)`: every elementwise step then runs over long
contiguous rows (a trailing axis of 2 or 3 coordinates made each step several times slower on
the CPU, in the forward and in autograd's backward).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

# Elements of the backward pass's sampling matrices built at once (4 MiB of float32 on the
# CPU): they stay in the cache between the scatter and the matmuls.
CPU_CHUNK_ELEMENTS = 1 << 20
CUDA_CHUNK_ELEMENTS = 1 << 28
# Sampled entries (point x corner) handled at once: on the CPU 8 MiB of int64 indices and 4 MiB
# of float32 weights (larger chunks were no faster and raised a D-ST-A layer's peak memory:
# BENCHMARKS.md, session 5).
GATHER_CHUNK_ENTRIES = 1 << 20
CUDA_GATHER_CHUNK_ENTRIES = 1 << 24


@dataclass
class Corners:
    """The 2^k neighbours of fractional positions (..., Q, M). Corner c has bit a set for the
    upper neighbour along axis a (axis 0, x, varies fastest).

    first (..., Q, M) int64: the flat index of corner 0 in the row-major grid plus the base
    offset; `steps[c]`: what corner c adds to it. axis_weight: per axis, the interpolation
    weights (lower, upper), 0 outside the grid; a corner's weight is their product over the
    axes. axis_slope: like axis_weight, their right derivatives in the position, or None.
    """

    first: torch.Tensor
    steps: list[int]
    axis_weight: list[tuple[torch.Tensor, torch.Tensor]]
    axis_slope: list[tuple[torch.Tensor, torch.Tensor]] | None = None

    def index(self) -> torch.Tensor:
        """The corners' flat indices (..., Q, 2^k, M): each query's side by side, for one gather
        or scatter along the last axis after `flatten(-2)`."""
        steps = torch.tensor(self.steps, device=self.first.device).unsqueeze(-1)
        return self.first.unsqueeze(-2) + steps

    def weights(self, scale: torch.Tensor | None = None) -> torch.Tensor:
        """The corners' weights (..., Q, 2^k, M) like `index`, times `scale` (..., Q, M) if
        given. Not differentiable."""
        factors = list(self.axis_weight)
        if scale is not None:  # once, on one axis's factors
            factors[-1] = tuple(scale * w for w in factors[-1])
        out = factors[0][0].new_empty(self.first.shape[:-1] + (len(self.steps),)
                                      + self.first.shape[-1:])
        for corner, target in enumerate(out.unbind(-2)):
            factor = [pair[(corner >> axis) & 1] for axis, pair in enumerate(factors)]
            if len(factor) == 1:
                target.copy_(factor[0])
                continue
            product = factor[0]
            for f in factor[1:-1]:
                product = product * f
            torch.mul(product, factor[-1], out=target)
        return out


def contract(values: list[torch.Tensor], factors: list[tuple[torch.Tensor, torch.Tensor]]
             ) -> torch.Tensor:
    """sum over corners c of values[c] * prod over axes a of factors[a][bit a of c], one axis at
    a time (2^k - 1 multiply-adds instead of k products per corner)."""
    for axis in reversed(range(len(factors))):
        half, (lower, upper) = len(values) // 2, factors[axis]
        values = [values[c] * lower + values[c + half] * upper for c in range(half)]
    return values[0]


def corners(positions: torch.Tensor, size: tuple[int, ...], base: torch.Tensor | None = None,
            *, slopes: bool = False) -> Corners:
    """Neighbours of fractional `positions` (k, ..., Q, M) in cell units, coordinates (x, y[, t]),
    on a grid of `size` in the reverse order ((H, W) or (T, H, W)). `base` (broadcast to a
    coordinate's shape) is added to every flat index. Differentiable in the positions (through
    the weights) when autograd records.

    Along each axis the two neighbours are cells c and c + 1 with c = clamp(floor(p), 0,
    extent - 2), weighted by the tent max(0, 1 - |p - cell|): inside the grid that is plain
    linear interpolation, and a position up to a cell outside keeps only its inside neighbour,
    without masks or clamped indices (a one-cell axis has only cell 0).
    """
    differentiable = torch.is_grad_enabled() and positions.requires_grad
    first, steps, stride = base, [0], 1
    axis_weight, axis_slope = [], []
    for axis, extent in enumerate(reversed(size)):  # per coordinate: W, H[, T]
        position = positions[axis]
        with torch.no_grad():  # float arithmetic on the cell numbers: exact below 2^24
            low = position.floor().clamp_(0, max(extent - 2, 0))
            cell = low * stride if stride > 1 else low
            first = cell if first is None else first + cell
        distance = (position - low, position - (low + 1))
        if slopes:  # before the weights: `_tent` works in place
            slope = tuple(_tent_slope(d) for d in distance)
            axis_slope.append(slope if extent > 1 else (slope[0], torch.zeros_like(low)))
        weight = tuple(_tent(d, differentiable) for d in distance)
        axis_weight.append(weight if extent > 1 else (weight[0], torch.zeros_like(low)))
        steps = steps + [step + (stride if extent > 1 else 0) for step in steps]
        stride *= extent
    return Corners(first.long(), steps, axis_weight, axis_slope if slopes else None)


def _tent(distance: torch.Tensor, differentiable: bool) -> torch.Tensor:
    """max(0, 1 - |distance|); for autograd written so that its derivatives are the right
    derivatives of `_tent_slope` (abs has 0 at 0, which would stop the gradient at whole-cell
    positions)."""
    if differentiable:
        near = (distance >= -1) & (distance < 1)
        return torch.where(distance < 0, 1 + distance, 1 - distance) * near
    return distance.abs_().neg_().add_(1).clamp_(min=0)


def _tent_slope(distance: torch.Tensor) -> torch.Tensor:
    """Right derivative of max(0, 1 - |distance|): +1 on [-1, 0), -1 on [0, 1), else 0."""
    near = (distance >= -1) & (distance < 1)
    return torch.where(distance < 0, 1.0, -1.0).mul_(near)


def interpolate_rows(table: torch.Tensor, positions: torch.Tensor, size: tuple[int, ...],
                     base: torch.Tensor | None = None) -> torch.Tensor:
    """Row q of `table` (..., Q, K) read at the M fractional positions (k, ..., Q, M) of that row,
    interpolated, zero outside the grid: (..., Q, M). Plain autograd (small tensors)."""
    near = corners(positions, size, base)
    index = near.index()
    read = table.gather(-1, index.flatten(-2)).view_as(index)
    return contract(list(read.unbind(-2)), near.axis_weight)


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


def _chunks(groups: int, elements: int, cuda: bool, budget: int | None = None) -> list[slice]:
    """Slices of the groups, each with at most `budget` elements (at least one group)."""
    budget = budget or (CUDA_CHUNK_ELEMENTS if cuda else CPU_CHUNK_ELEMENTS)
    step = max(1, budget // elements)
    return [slice(start, min(start + step, groups)) for start in range(0, groups, step)]


def _gather_chunks(positions: torch.Tensor, cuda: bool) -> list[slice]:
    """Slices of the groups of positions (k, G, Q, M), each with a bounded number of corners."""
    corners_per_group = positions[0, 0].numel() << positions.shape[0]
    budget = CUDA_GATHER_CHUNK_ENTRIES if cuda else GATHER_CHUNK_ENTRIES
    return _chunks(positions.shape[1], corners_per_group, cuda, budget)


def _at_least_float32(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.promote_types(x.dtype, torch.float32))


class _DeformableSum(torch.autograd.Function):
    """values (G, K, E), positions (k, G, Q, M), attention (G, Q, M), base (M,), (Q, M) or None
    -> (G, Q, E). Forward: one weighted gather (`embedding_bag`) over many groups at once.
    Backward: corners and gradient formulas for many groups at once (few long elementwise
    steps), the sampling matrices and products group by group (cache-sized)."""

    @staticmethod
    def forward(ctx, values, positions, attention, base, size):
        ctx.save_for_backward(values, positions, attention, base)
        ctx.size = size
        groups, keys, width = values.shape
        queries = attention.shape[1]
        out = values.new_empty(groups, queries, width)
        with torch.no_grad(), torch.autocast(values.device.type, enabled=False):
            positions, attention = _at_least_float32(positions), _at_least_float32(attention)
            for part in _gather_chunks(positions, values.is_cuda):
                near = corners(positions[:, part], size, base)
                index = near.index()  # c q corner m: each query's entries side by side
                weight = near.weights(attention[part]).to(values.dtype)
                # Each group's keys follow the previous group's in one table of rows.
                count = index.shape[0]
                index += (torch.arange(count, device=index.device) * keys).view(-1, 1, 1, 1)
                out[part] = F.embedding_bag(
                    index.view(count * queries, -1), values[part].reshape(count * keys, width),
                    per_sample_weights=weight.view(count * queries, -1),
                    mode="sum").view(count, queries, width)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        values, positions, attention, base = ctx.saved_tensors
        need_values, need_positions, need_attention = ctx.needs_input_grad[:3]
        groups, keys = values.shape[:2]
        queries = attention.shape[1]
        grad_out = grad_out.contiguous().to(values.dtype)
        grad_values = torch.empty_like(values) if need_values else None
        need_pairs = need_positions or need_attention
        with torch.no_grad(), torch.autocast(values.device.type, enabled=False):
            positions32, attention32 = _at_least_float32(positions), _at_least_float32(attention)
            grad_positions = torch.empty_like(positions32) if need_positions else None
            grad_attention = torch.empty_like(attention32) if need_attention else None
            parts = _gather_chunks(positions, values.is_cuda)
            matrices = min(_chunks(groups, queries * keys, values.is_cuda)[0].stop, parts[0].stop)
            scratch = attention32.new_empty(matrices, queries, keys)
            for part in parts:
                near = corners(positions32[:, part], ctx.size, base, slopes=need_positions)
                # One scatter and one gather per group: each query's corners side by side.
                index = near.index().flatten(-2)  # c q (corner m)
                weight = near.weights(attention32[part]).flatten(-2) if need_values else None
                pairs = torch.empty_like(index, dtype=values.dtype) if need_pairs else None
                for inner in _chunks(index.shape[0], queries * keys, values.is_cuda):
                    at = slice(part.start + inner.start, part.start + inner.stop)
                    if need_values:
                        matrix = scratch[:index[inner].shape[0]].zero_()
                        matrix.scatter_add_(-1, index[inner], weight[inner])
                        torch.bmm(matrix.to(values.dtype).transpose(1, 2), grad_out[at],
                                  out=grad_values[at])
                    if need_pairs:
                        # pairs[q, (c m)] = grad_out[q] . values[index of corner c of point m]
                        dots = torch.bmm(grad_out[at], values[at].transpose(1, 2))
                        torch.gather(dots, -1, index[inner], out=pairs[inner])
                if not need_pairs:
                    continue
                pair = pairs.to(attention32.dtype).unflatten(-1, (-1, positions.shape[-1]))
                pair = list(pair.unbind(-2))  # views: multiplying them is no slower
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

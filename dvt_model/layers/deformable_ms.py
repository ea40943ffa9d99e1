"""D-MS-A: deformable multi-scale attention (docs/design.md §6), as in Deformable DETR.

Strided depthwise 3D convolutions of the token grid make L coarser scales (each halves time,
height and width). For each scale and head, N points around the query's own position with
offsets and weights predicted from the query; one output per scale (or, with `sum_scales`,
their sum under one softmax), fused with D-ST-A by the block.

Our choice where Deformable DETR has none to make: the time offset is bounded to
`time_reach` cells of its scale (`time_reach * tanh`), so that queries are processed in
temporal chunks, each against a window of its scale, and the cost grows linearly with T (an
unbounded offset would need every query against every cell: quadratic in T).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from dvt_model.layers.sparse_sampling import deformable_sum


def query_positions(num_frames: int, grid: tuple[int, int], *, device=None,
                    dtype=torch.float32) -> torch.Tensor:
    """Every token's position in cell units (x, y, t) of the full-resolution grid: (T*N, 3)."""
    axes = [torch.arange(size, device=device, dtype=dtype) for size in (num_frames, *grid)]
    t, y, x = torch.meshgrid(*axes, indexing="ij")
    return torch.stack((x, y, t), -1).reshape(-1, 3)


class DeformableMultiScaleAttention(nn.Module):
    def __init__(self, *, dim: int, num_heads: int, num_points: int = 8,
                 num_scales: int = 3, time_reach: int = 1, sum_scales: bool = False) -> None:
        super().__init__()
        self.num_heads, self.num_points, self.num_scales = num_heads, num_points, num_scales
        self.time_reach, self.sum_scales = time_reach, sum_scales
        self.downsample = nn.ModuleList(
            nn.Conv3d(dim, dim, kernel_size=2, stride=2, groups=dim) for _ in range(num_scales))
        self.value = nn.Linear(dim, dim)
        self.offsets = nn.Linear(dim, num_heads * num_scales * num_points * 3)
        self.weights = nn.Linear(dim, num_heads * num_scales * num_points)
        # No output projection per scale: the block's fusion mixes the scales' outputs anyway.
        self.init_weights()

    def init_weights(self) -> None:
        """Offsets start spread around the query, about a cell apart."""
        nn.init.zeros_(self.offsets.weight)
        with torch.no_grad():
            spread = torch.randn(self.num_heads, self.num_scales, self.num_points, 3)
            self.offsets.bias.copy_((spread.clamp(-2, 2) * 0.5).flatten())

    def scales(self, x: torch.Tensor, grid: tuple[int, int]) -> list[torch.Tensor]:
        """x (B, T, N, D) -> L maps (B, T_l, H_l, W_l, D), each half the size of the last: the
        depthwise convolutions `downsample` (kernel 2, stride 2) computed in the tokens' layout,
        as the weighted sum of each 2x2x2 cell's eight tokens (cells do not overlap)."""
        level = rearrange(x, "b t (h w) d -> b t h w d", h=grid[0])
        out = []
        for conv in self.downsample:
            level = _cell_sum(level, conv.weight, conv.bias)
            out.append(level)
        return out

    def forward(self, x: torch.Tensor, grid: tuple[int, int]) -> list[torch.Tensor]:
        """x (B, T, N, D) normalised tokens -> one (B, T, N, D) output per scale, each a
        softmax over its own N points (the mixer fusion weighs the scales); with `sum_scales`,
        the one output of `summed`."""
        if self.sum_scales:
            return [self.summed(x, grid)]
        return self._scale_outputs(x, grid, across_scales=False)

    def summed(self, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """x (B, T, N, D) -> (B, T, N, D): one softmax over all L x N points of a head and the
        sum over scales, as Deformable DETR has it (fusions "mixer_pair" and "sum")."""
        outputs = self._scale_outputs(x, grid, across_scales=True)
        return sum(outputs[1:], outputs[0])

    def _scale_outputs(self, x: torch.Tensor, grid: tuple[int, int], *, across_scales: bool
                       ) -> list[torch.Tensor]:
        # b batch, t frame, s patch, g head, l scale, p point, c coordinate (x, y, t),
        # k temporal chunk, f frame in a chunk, m cell of a window, e head width
        num_frames, heads, scales = x.shape[1], self.num_heads, self.num_scales
        # contiguous once: every step on the positions then runs over contiguous rows
        offsets = rearrange(self.offsets(x), "b t s (g l p c) -> l c b g t s p", g=heads,
                            l=scales, c=3).contiguous()
        if across_scales:
            weights = rearrange(self.weights(x), "b t s (g l p) -> b g t s (l p)", g=heads,
                                l=scales).softmax(-1)
            weights = rearrange(weights, "b g t s (l p) -> l b g t s p", l=scales)
        else:  # the points' axis not innermost: torch's softmax over a short last axis is slow
            weights = rearrange(self.weights(x), "b t s (g l p) -> l b g p t s", g=heads,
                                l=scales).contiguous().softmax(3)
            weights = rearrange(weights, "l b g p t s -> l b g t s p")
        spatial = query_positions(1, grid, device=x.device, dtype=offsets.dtype)[:, :2]
        outputs = []
        # unbind, not indexing: the backward pass stacks the scales' gradients once instead of
        # adding a zero-filled gradient of every scale to every other
        per_scale = zip(self.scales(x, grid), offsets.unbind(0), weights.unbind(0), strict=True)
        for scale, (level, scale_offsets, scale_weights) in enumerate(per_scale):
            out = self._sample_scale(level, scale_offsets, scale_weights, spatial,
                                     2 ** (scale + 1))
            outputs.append(rearrange(out[:, :, :num_frames], "b g t s e -> b t s (g e)"))
        return outputs

    def _sample_scale(self, level: torch.Tensor, offsets: torch.Tensor, weights: torch.Tensor,
                      spatial: torch.Tensor, factor: int) -> torch.Tensor:
        """One scale: level (B, T_l, H_l, W_l, D); offsets (3, B, G, T, N, P) cells of the
        scale, coordinates (x, y, t) first; weights (B, G, T, N, P); spatial (N, 2) the queries'
        (x, y) on the full grid.
        Frames t of chunk k = t // factor see window cells k - R - 1 .. k + R + 1 of the scale
        (zero-padded at the ends). Returns (B, G, K * factor, N, E)."""
        reach, heads = self.time_reach, self.num_heads
        num_frames = offsets.shape[3]
        chunks = -(-num_frames // factor)
        window = 2 * reach + 3
        # Values, padded in time with reach + 1 zero cells before and enough after.
        values = self.value(level.flatten(2, 3))
        extra = max(0, chunks + window - 1 - (values.shape[1] + reach + 1))
        values = F.pad(values, (0, 0, 0, 0, reach + 1, reach + 1 + extra))
        windows = values.unfold(1, window, 1)[:, :chunks]  # b k m d win
        windows = rearrange(windows, "b k m (g e) w -> b g k (w m) e", g=heads)
        # Query positions in their chunk's window: cell i of the full grid is at
        # (i + 0.5) / factor - 0.5 in cells of the scale.
        frames = torch.arange(num_frames, device=offsets.device, dtype=offsets.dtype)
        time = (frames + 0.5) / factor - 0.5 - (frames // factor) + reach + 1
        centre_xy = (spatial + 0.5) / factor - 0.5  # s c
        positions = torch.stack((
            centre_xy[:, 0, None] + offsets[0],
            centre_xy[:, 1, None] + offsets[1],
            time[:, None, None] + reach * torch.tanh(offsets[2])))  # c b g t s p
        padded = chunks * factor - num_frames  # frames of the last chunk past the end: weight 0
        positions = F.pad(positions, (0, 0, 0, 0, 0, padded))
        weights = F.pad(weights, (0, 0, 0, 0, 0, padded))
        size = (window, level.shape[2], level.shape[3])
        out = deformable_sum(windows,
                             rearrange(positions, "c b g (k f) s p -> c b g k (f s) p", f=factor),
                             rearrange(weights, "b g (k f) s p -> b g k (f s) p", f=factor), size)
        return rearrange(out, "b g k (f s) e -> b g (k f) s e", f=factor)


def _cell_sum(level: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """A depthwise Conv3d of kernel 2 and stride 2 on level (B, T, H, W, D), its weight
    (D, 1, 2, 2, 2) and bias (D,): (B, ceil(T/2), ceil(H/2), ceil(W/2), D). An odd size repeats
    its last slice first (replicate padding), so that every cell has its eight tokens."""
    for axis in (1, 2, 3):
        if level.shape[axis] % 2:
            level = torch.cat((level, level.narrow(axis, level.shape[axis] - 1, 1)), axis)
    return _CellSum.apply(level, weight, bias)


def _taps(level: torch.Tensor):
    """The eight (i, j, k) positions of a cell and the strided view of those tokens of `level`
    (B, T, H, W, D): (B, T/2, H/2, W/2, D) each."""
    for i in range(2):
        for j in range(2):
            for k in range(2):
                yield (i, j, k), level[:, i::2, j::2, k::2]


class _CellSum(torch.autograd.Function):
    """level (B, T, H, W, D) with even T, H, W; weight (D, 1, 2, 2, 2); bias (D,) ->
    (B, T/2, H/2, W/2, D). Eight multiply-adds over strided views with the channels innermost,
    forward and backward (autograd through the views would fill a zero tensor per tap)."""

    @staticmethod
    def forward(ctx, level, weight, bias):
        ctx.save_for_backward(level, weight)
        out = None
        for (i, j, k), tokens in _taps(level):
            tap = weight[:, 0, i, j, k]
            out = torch.addcmul(bias, tokens, tap) if out is None \
                else out.addcmul_(tokens, tap)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        level, weight = ctx.saved_tensors
        grad_level = torch.empty_like(level) if ctx.needs_input_grad[0] else None
        grad_weight = torch.empty_like(weight) if ctx.needs_input_grad[1] else None
        for (i, j, k), tokens in _taps(level):
            if grad_level is not None:
                torch.mul(grad_out, weight[:, 0, i, j, k], out=grad_level[:, i::2, j::2, k::2])
            if grad_weight is not None:
                grad_weight[:, 0, i, j, k] = (grad_out * tokens).sum((0, 1, 2, 3))
        grad_bias = grad_out.sum((0, 1, 2, 3)) if ctx.needs_input_grad[2] else None
        return grad_level, grad_weight, grad_bias

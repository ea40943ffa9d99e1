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
        """x (B, T, N, D) -> L maps (B, D, T_l, H_l, W_l), each half the size of the last."""
        level = rearrange(x, "b t (h w) d -> b d t h w", h=grid[0])
        out = []
        for conv in self.downsample:
            frames, height, width = level.shape[2:]
            pad = (0, width % 2, 0, height % 2, 0, frames % 2)
            if any(pad):  # odd sizes: repeat the last slice so that the stride-2 kernel fits
                level = F.pad(level, pad, mode="replicate")
            level = conv(level)
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
        offsets = rearrange(self.offsets(x), "b t s (g l p c) -> l c b g t s p", g=heads,
                            l=scales, c=3)
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
        """One scale: level (B, D, T_l, H_l, W_l); offsets (3, B, G, T, N, P) cells of the
        scale, coordinates (x, y, t) first; weights (B, G, T, N, P); spatial (N, 2) the queries'
        (x, y) on the full grid.
        Frames t of chunk k = t // factor see window cells k - R - 1 .. k + R + 1 of the scale
        (zero-padded at the ends). Returns (B, G, K * factor, N, E)."""
        reach, heads = self.time_reach, self.num_heads
        num_frames = offsets.shape[3]
        chunks = -(-num_frames // factor)
        window = 2 * reach + 3
        # Values, padded in time with reach + 1 zero cells before and enough after.
        values = self.value(rearrange(level, "b d t h w -> b t (h w) d"))
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
        size = (window, level.shape[3], level.shape[4])
        out = deformable_sum(windows,
                             rearrange(positions, "c b g (k f) s p -> c b g k (f s) p", f=factor),
                             rearrange(weights, "b g (k f) s p -> b g k (f s) p", f=factor), size)
        return rearrange(out, "b g k (f s) e -> b g (k f) s e", f=factor)

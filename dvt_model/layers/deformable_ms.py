"""D-MS-A: deformable multi-scale attention (SPEC section 6), as in Deformable DETR.

Strided depthwise 3D convolutions of the token grid make L coarser scales (each halves time, height and
width). For each scale and head, N points around the query's own position with offsets and
weights predicted from the query; one output per scale, fused with D-ST-A by the block.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


def query_positions(num_frames: int, grid: tuple[int, int], *, device=None,
                    dtype=torch.float32) -> torch.Tensor:
    """Every token's centre in grid_sample's 3D coordinates (x, y, t) in [-1, 1]: (T*N, 3)."""
    axes = [(torch.arange(size, device=device, dtype=dtype) + 0.5) * (2.0 / size) - 1.0
            for size in (num_frames, *grid)]
    t, y, x = torch.meshgrid(*axes, indexing="ij")
    return torch.stack((x, y, t), -1).reshape(-1, 3)


class DeformableMultiScaleAttention(nn.Module):
    def __init__(self, *, dim: int, num_heads: int, num_points: int = 8,
                 num_scales: int = 3) -> None:
        super().__init__()
        self.num_heads, self.num_points, self.num_scales = num_heads, num_points, num_scales
        self.downsample = nn.ModuleList(
            nn.Conv3d(dim, dim, kernel_size=2, stride=2, groups=dim) for _ in range(num_scales))
        self.value = nn.Linear(dim, dim)
        self.offsets = nn.Linear(dim, num_heads * num_scales * num_points * 3)
        self.weights = nn.Linear(dim, num_heads * num_scales * num_points)
        # No output projection per scale: the block's fusion mixes the scales' outputs anyway.
        self.init_sampling()

    def init_sampling(self) -> None:
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
        """x (B, T, N, D) normalised tokens -> one (B, T, N, D) output per scale."""
        # b batch, t frame, s patch, g head, l scale, p point, e head width, c coordinate (x, y, t)
        batch, num_frames, _, _ = x.shape
        heads = self.num_heads
        reference = query_positions(num_frames, grid, device=x.device, dtype=x.dtype)
        offsets = rearrange(self.offsets(x), "b t s (g l p c) -> l (b g) (t s) p c", g=heads,
                            l=self.num_scales, c=3)
        weights = rearrange(self.weights(x), "b t s (g l p) -> l b t s g p", g=heads,
                            l=self.num_scales).softmax(-1)
        outputs = []
        for scale, level in enumerate(self.scales(x, grid)):
            size = level.new_tensor([level.shape[4], level.shape[3], level.shape[2]])
            values = self.value(rearrange(level, "b d t h w -> b t h w d"))
            values = rearrange(values, "b t h w (g e) -> (b g) e t h w", g=heads)
            sample_grid = reference[None, :, None] + offsets[scale] * (2.0 / size)
            sampled = F.grid_sample(values, sample_grid[..., None, :].to(values.dtype),
                                    mode="bilinear", padding_mode="zeros", align_corners=False)
            sampled = rearrange(sampled[..., 0], "(b g) e (t s) p -> b t s g p e", b=batch,
                                t=num_frames)
            out = torch.einsum("btsgp,btsgpe->btsge", weights[scale], sampled)
            outputs.append(rearrange(out, "b t s g e -> b t s (g e)"))
        return outputs

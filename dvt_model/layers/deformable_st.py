"""D-ST-A: deformable space-time attention guided by motion (SPEC section 6).

Each query patch s of frame t looks at every frame t' of its own sub-clip, at N points per head
around its motion-predicted position s + d(s, t, t'), and mixes the bilinearly sampled values
with weights over all (t', n): a projection of the motion cue m (`attn_weights="motion"`, the
paper's default) or the query-key dot product (`"dot"`).
"""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import nn

from dvt_model.layers.sparse_sampling import interpolation_corners, sampling_matrix
from dvt_model.motion_path import grid_positions


def ring_offsets(num_heads: int, num_points: int) -> torch.Tensor:
    """Initial offsets (heads, points, 2) in patches: points on rings of radius 0.5, 1, ...,
    each head turned a little, so the N points do not start on one spot."""
    angles = torch.arange(num_points) * (2 * math.pi / min(num_points, 8))
    angles = angles[None] + torch.arange(num_heads)[:, None] * (math.pi / (4 * num_heads))
    radius = 0.5 * (torch.arange(num_points) // 8 + 1).float()
    offsets = torch.stack((angles.cos(), angles.sin()), -1) * radius[None, :, None]
    return offsets if num_points > 1 else torch.zeros(num_heads, num_points, 2)


class DeformableSpaceTimeAttention(nn.Module):
    def __init__(self, *, dim: int, num_heads: int, num_points: int = 8, cue_dim: int,
                 attn_weights: str = "motion", qkv_bias: bool = True) -> None:
        super().__init__()
        if attn_weights not in ("motion", "dot"):
            raise ValueError(f"attn_weights must be 'motion' or 'dot', got {attn_weights!r}")
        self.num_heads, self.num_points, self.attn_weights = num_heads, num_points, attn_weights
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)  # timm's name: ViT weights load
        self.proj = nn.Linear(dim, dim)
        # The offsets are a linear map of [LN(query), m]: split in a query and a cue part.
        self.offset_query = nn.Linear(dim, num_heads * num_points * 2)
        self.offset_cue = nn.Linear(cue_dim, num_heads * num_points * 2, bias=False)
        self.weight_cue = nn.Linear(cue_dim, num_heads * num_points) \
            if attn_weights == "motion" else None
        # The motion cue also enters the values, as relative positions do in Shaw et al. (2018):
        # what a query takes from frame t' carries how it moved to get there.
        self.value_cue = nn.Linear(cue_dim, dim)
        self.init_sampling()

    def init_sampling(self) -> None:
        """Offsets start as a fixed ring around the motion-predicted position."""
        nn.init.zeros_(self.offset_query.weight)
        nn.init.zeros_(self.offset_cue.weight)
        with torch.no_grad():
            self.offset_query.bias.copy_(
                ring_offsets(self.num_heads, self.num_points).flatten())

    def forward(self, x: torch.Tensor, path: torch.Tensor, cue: torch.Tensor,
                grid: tuple[int, int]) -> torch.Tensor:
        """x (B, T, N, D) normalised tokens; path (B, T, N, T', 2) patches; cue (B, T, N, T', C)
        the motion cue embedding m. Returns (B, T, N, D)."""
        # b batch, t frame, s patch, u frame of the sub-clip, g head, p point, c corner or
        # coordinate, e head width, n sub-clip, q query frame inside its sub-clip, r query
        sub, heads = path.shape[3], self.num_heads
        cells = grid[0] * grid[1]
        query, key, value = self.qkv(x).chunk(3, dim=-1)
        offsets = self.offset_query(x)[:, :, :, None] + self.offset_cue(cue)
        offsets = rearrange(offsets, "b t s u (g p c) -> b t s g u p c", g=heads, c=2)
        start = grid_positions(*grid, device=x.device, dtype=offsets.dtype).flatten(0, 1)
        positions = (start[:, None, None, None] + path[:, :, :, None, :, None].to(offsets.dtype)
                     + offsets)
        index, bilinear = interpolation_corners(positions, grid)  # b t s g u p c
        frame_start = torch.arange(sub, device=x.device)[:, None, None] * cells
        rows = "b (n q) s g u p c -> b n g (q s) (u p) c"
        index = rearrange(index + frame_start, rows, q=sub)
        bilinear = rearrange(bilinear, rows, q=sub)
        to_keys = "b (n u) s (g e) -> b n g (u s) e"
        if self.attn_weights == "dot":
            queries = rearrange(query, "b (n q) s (g e) -> b n g (q s) e", q=sub, g=heads)
            scores = queries @ rearrange(key, to_keys, u=sub, g=heads).transpose(-1, -2)
            scores = scores / math.sqrt(queries.shape[-1])  # b n g (q s) (u s)
            corner_scores = scores.gather(-1, index.flatten(-2)).unflatten(-1, index.shape[-2:])
            logits = (corner_scores * bilinear).sum(-1)  # zero outside, like a zero key
        else:
            logits = rearrange(self.weight_cue(cue), "b (n q) s u (g p) -> b n g (q s) (u p)",
                               q=sub, g=heads)
        attention = logits.softmax(-1)
        weights = attention[..., None] * bilinear
        matrix = sampling_matrix(index.flatten(-2), weights.flatten(-2), sub * cells)
        out = matrix.to(value.dtype) @ rearrange(value, to_keys, u=sub, g=heads)
        per_frame = attention.unflatten(-1, (sub, -1)).sum(-1)  # b n g (q s) u
        cue_values = rearrange(self.value_cue(cue), "b (n q) s u (g e) -> b n g (q s) u e",
                               q=sub, g=heads)
        out = out + torch.einsum("bngru,bngrue->bngre", per_frame.to(cue_values.dtype),
                                 cue_values)
        return self.proj(rearrange(out, "b n g (q s) e -> b (n q) s (g e)", q=sub))

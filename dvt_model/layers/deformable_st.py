"""D-ST-A: deformable space-time attention guided by motion (docs/design.md §6).

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

from dvt_model.config import ATTN_WEIGHTS
from dvt_model.layers.recompute import recomputed
from dvt_model.layers.sparse_sampling import deformable_sum, interpolate_rows
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
                 attn_weights: str = "motion", cue_values: bool = True,
                 qkv_bias: bool = True) -> None:
        super().__init__()
        if attn_weights not in ATTN_WEIGHTS:
            raise ValueError(f"attn_weights must be one of {', '.join(ATTN_WEIGHTS)}, got "
                             f"{attn_weights!r}")
        self.num_heads, self.num_points, self.attn_weights = num_heads, num_points, attn_weights
        # Motion weights need only values; the dot product needs queries and keys too. (A ViT
        # checkpoint's `attn.qkv` loads into either: its value third into `value`.)
        if attn_weights == "dot":
            self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        else:
            self.value = nn.Linear(dim, dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        # The offsets are a linear map of [LN(query), m]: split in a query and a cue part.
        self.offset_query = nn.Linear(dim, num_heads * num_points * 2)
        self.offset_cue = nn.Linear(cue_dim, num_heads * num_points * 2, bias=False)
        self.weight_cue = nn.Linear(cue_dim, num_heads * num_points) \
            if attn_weights == "motion" else None
        # Ours (`cue_values`): the motion cue also enters the values, as relative positions do
        # in Shaw et al. (2018): what a query takes from frame t' carries how it moved there.
        self.value_cue = nn.Linear(cue_dim, dim) if cue_values else None
        self.init_weights()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Checkpoints from before D-ST-A kept a full qkv with motion weights: take its values.
        if self.attn_weights == "motion":
            for kind in ("weight", "bias"):
                legacy = state_dict.pop(f"{prefix}qkv.{kind}", None)
                if legacy is not None and f"{prefix}value.{kind}" not in state_dict:
                    state_dict[f"{prefix}value.{kind}"] = legacy[2 * legacy.shape[0] // 3:]
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def init_weights(self) -> None:
        """Offsets start as a fixed ring around the motion-predicted position. The value
        projection starts at the scale of a Xavier-initialised qkv's value third, so that the
        sampled values do not drown the motion cue's value term (BENCHMARKS.md)."""
        nn.init.zeros_(self.offset_query.weight)
        nn.init.zeros_(self.offset_cue.weight)
        with torch.no_grad():
            self.offset_query.bias.copy_(
                ring_offsets(self.num_heads, self.num_points).flatten())
        if self.attn_weights == "motion":
            dim = self.value.weight.shape[1]
            bound = math.sqrt(6.0 / (dim + 3 * dim))
            nn.init.uniform_(self.value.weight, -bound, bound)

    def forward(self, x: torch.Tensor, path: torch.Tensor, cue: torch.Tensor,
                grid: tuple[int, int], extra_heads: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, T, N, D) normalised tokens; path (B, T, N, T', 2) patches; cue (B, T, N, T', C)
        the motion cue embedding m. `extra_heads` (B, T, N, D): added to the heads' outputs
        before the output projection, as more heads (the "sum" fusion's D-MS-A). Returns
        (B, T, N, D)."""
        heads = self.heads(x, path, cue, grid)
        return self.proj(heads if extra_heads is None else heads + extra_heads)

    def heads(self, x: torch.Tensor, path: torch.Tensor, cue: torch.Tensor,
              grid: tuple[int, int]) -> torch.Tensor:
        """The heads' outputs before the output projection `proj`, (B, T, N, D)."""
        # b batch, t frame, s patch, u frame of the sub-clip, g head, p point, c coordinate,
        # e head width, n sub-clip, q query frame inside its sub-clip, r query (q s)
        sub, heads = path.shape[3], self.num_heads
        cells = grid[0] * grid[1]
        if self.attn_weights == "dot":
            query, key, value = self.qkv(x).chunk(3, dim=-1)
        else:
            value = self.value(x)
        frame_start = torch.arange(sub, device=x.device).repeat_interleave(self.num_points)
        frame_start = frame_start * cells  # (u p): where frame u begins among the keys
        to_keys = "b (n u) s (g e) -> b n g (u s) e"
        values = rearrange(value, to_keys, u=sub, g=heads)
        if self.attn_weights == "dot":
            positions = self.positions(x, path, cue, grid)
            queries = rearrange(query, "b (n q) s (g e) -> b n g (q s) e", q=sub, g=heads)
            scores = queries @ rearrange(key, to_keys, u=sub, g=heads).transpose(-1, -2)
            scores = scores / math.sqrt(queries.shape[-1])  # b n g (q s) (u s)
            logits = interpolate_rows(scores, positions, grid, frame_start)  # zero outside
            attention = logits.softmax(-1)
            out = deformable_sum(values, positions, attention, grid, frame_start)
        else:
            logits = rearrange(self.weight_cue(cue), "b (n q) s u (g p) -> b n g (q s) (u p)",
                               q=sub, g=heads)
            attention = logits.softmax(-1)
            # The positions are recomputed in the backward pass (two small projections) instead
            # of kept: as large as the values.
            out = recomputed(self._sample, values, x, path, cue, attention, grid, frame_start)
        if self.value_cue is not None:  # recomputed: its (B, n, heads, q*s, C) mix is large
            out = out + recomputed(self._cue_values, attention, cue, sub)
        return rearrange(out, "b n g (q s) e -> b (n q) s (g e)", q=sub)

    def positions(self, x: torch.Tensor, path: torch.Tensor, cue: torch.Tensor,
                  grid: tuple[int, int]) -> torch.Tensor:
        """Where each query samples, (2, B, n, heads, q*s, u*p) patches, coordinates first in
        the layout of the sampling rows: the motion-predicted position plus the offsets."""
        # b batch, s patch, u frame of the sub-clip, g head, p point, c coordinate,
        # n sub-clip, q query frame inside its sub-clip
        sub = path.shape[3]
        offsets = self.offset_query(x)[:, :, :, None] + self.offset_cue(cue)
        offsets = rearrange(offsets, "b (n q) s u (g p c) -> c b n g (q s) u p", q=sub,
                            g=self.num_heads, c=2)
        start = grid_positions(*grid, device=x.device, dtype=offsets.dtype).flatten(0, 1)
        moved = rearrange(start[:, None] + path.to(offsets.dtype),
                          "b (n q) s u c -> c b n 1 (q s) u 1", q=sub)
        return (moved + offsets).contiguous().flatten(-2)

    def _sample(self, values: torch.Tensor, x: torch.Tensor, path: torch.Tensor,
                cue: torch.Tensor, attention: torch.Tensor, grid: tuple[int, int],
                frame_start: torch.Tensor) -> torch.Tensor:
        return deformable_sum(values, self.positions(x, path, cue, grid), attention, grid,
                              frame_start)

    def _cue_values(self, attention: torch.Tensor, cue: torch.Tensor, sub: int) -> torch.Tensor:
        """sum over t' of attention(t') * value_cue(m(t')), (B, n, g, q*s, e): mixing m per head
        first and projecting once is the same (the attention sums to 1 over t', which carries
        the bias) and cheaper than projecting every (query, t')."""
        # b batch, n sub-clip, g head, r query, u frame of the sub-clip, c cue channel, e width
        heads = self.num_heads
        per_frame = attention.unflatten(-1, (sub, -1)).sum(-1)  # b n g (q s) u
        cues = rearrange(cue, "b (n q) s u c -> b n (q s) u c", q=sub)
        mixed = torch.einsum("bngru,bnruc->bngrc", per_frame.to(cues.dtype), cues)
        weight = rearrange(self.value_cue.weight, "(g e) c -> g e c", g=heads)
        return torch.einsum("bngrc,gec->bngre", mixed, weight) \
            + rearrange(self.value_cue.bias, "(g e) -> g 1 e", g=heads)

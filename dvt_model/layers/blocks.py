"""Transformer blocks: the DVT block and the three baselines, all `forward(x, context)` on
tokens (B, T, N, D). Each is two residual lines: attention, then MLP."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from einops import rearrange
from torch import nn

from dvt_model.layers.attention import Attention
from dvt_model.layers.deformable_ms import DeformableMultiScaleAttention
from dvt_model.layers.deformable_st import DeformableSpaceTimeAttention
from dvt_model.layers.fusion import MixerFusion, MlpFusion
from dvt_model.layers.mlp import Mlp
from dvt_model.layers.recompute import recomputed, recomputed_by_rows

# Fusions that take D-MS-A's scales as one branch (one softmax over all their points)
SUMMED_SCALE_FUSIONS = ("mixer_pair", "sum")
# timm's ViT and TimeSformer norms: a loaded image ViT computes what it computed before.
VitNorm = partial(nn.LayerNorm, eps=1e-6)


@dataclass
class MotionContext:
    """What every block of one forward pass shares: the token grid and the motion cue."""

    grid: tuple[int, int]
    path: torch.Tensor | None = None  # (B, T, N, T', 2) patches
    cue: torch.Tensor | None = None  # (B, T, N, T', C) the motion cue embedding m


class DvtBlock(nn.Module):
    """x = x + fuse(DSTA(LN x), DMSA(LN x)); x = x + MLP(LN x). `attention` picks the branches:
    "dst", "dms" or "dst_dms"; a single branch needs no fusion.

    `fusion` (docs/design.md §6):
    - "mixer" (the default): an MLP-Mixer layer over D-ST-A's output and one output per D-MS-A
      scale.
    - "mixer_pair": D-MS-A takes one softmax over the points of all its scales and sums them,
      as Deformable DETR does; the mixer fuses that with D-ST-A's output (two branches).
    - "mlp": the branches concatenated, one linear layer.
    - "sum": D-MS-A's summed scales added to D-ST-A's heads before D-ST-A's output projection,
      as if both were one attention's heads: no layer beyond D-MS-A's own (the cheapest).
    """

    def __init__(self, *, dim: int, num_heads: int, mlp_ratio: float = 4.0,
                 attention: str = "dst_dms", fusion: str = "mixer", num_points: int = 8,
                 num_scales: int = 3, ms_points: int = 8, cue_dim: int,
                 attn_weights: str = "motion", cue_values: bool = True,
                 fusion_ratio: float = 0.5, fusion_proj: bool = True,
                 norm_layer=VitNorm) -> None:
        super().__init__()
        summed_scales = fusion in SUMMED_SCALE_FUSIONS
        self.norm1 = norm_layer(dim)
        self.attn = DeformableSpaceTimeAttention(
            dim=dim, num_heads=num_heads, num_points=num_points, cue_dim=cue_dim,
            attn_weights=attn_weights, cue_values=cue_values) if "dst" in attention else None
        self.ms_attn = DeformableMultiScaleAttention(
            dim=dim, num_heads=num_heads, num_points=ms_points,
            num_scales=num_scales, sum_scales=summed_scales) if "dms" in attention else None
        # "sum" with both attentions: D-MS-A joins D-ST-A's heads (a single one needs nothing)
        self.sum_heads = fusion == "sum" and self.attn is not None and self.ms_attn is not None
        scale_branches = (1 if summed_scales else num_scales) if self.ms_attn else 0
        num_branches = (self.attn is not None) + scale_branches
        self.fuse = None
        if num_branches > 1 and not self.sum_heads:
            self.fuse = MlpFusion(dim=dim, num_branches=num_branches) if fusion == "mlp" else \
                MixerFusion(dim=dim, num_branches=num_branches, hidden_ratio=fusion_ratio,
                            proj=fusion_proj)
        # D-MS-A's summed scales alone: no fusion to project them
        self.ms_proj = nn.Linear(dim, dim) if summed_scales and self.attn is None else None
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim=dim, hidden_dim=int(dim * mlp_ratio))
        self.recompute_mixing = False  # set by VideoTransformer.set_grad_checkpointing
        self.recompute_scales = True

    def branches(self, x: torch.Tensor, context: MotionContext) -> list[torch.Tensor]:
        """The attention outputs, D-ST-A's then D-MS-A's (summed or one per scale), each
        (B, T, N, D)."""
        return self._dst(x, context) + self._scales(x, context.grid)

    def _dst(self, x: torch.Tensor, context: MotionContext) -> list[torch.Tensor]:
        return [self.attn(x, context.path, context.cue, context.grid)] \
            if self.attn is not None else []

    def _scales(self, x: torch.Tensor, grid: tuple[int, int]) -> list[torch.Tensor]:
        if self.ms_attn is None:
            return []
        return self.ms_attn(x, grid)

    def mixing(self, x: torch.Tensor, context: MotionContext) -> torch.Tensor:
        """The attention line's update: fuse(DSTA(LN x), DMSA(LN x)), (B, T, N, D).

        While autograd records (`recompute_scales`), D-MS-A and the fusion are recomputed in
        the backward pass from LN x and D-ST-A's output (with "sum", D-MS-A alone): their
        outputs and (branches, tokens, width) stacks are never kept, for one more D-MS-A and
        fusion forward (BENCHMARKS.md); the fusion goes through its tokens in chunks there. Not
        when the whole line is recomputed already (`recompute_mixing`)."""
        x = self.norm1(x)
        recompute = torch.is_grad_enabled() and self.recompute_scales \
            and not self.recompute_mixing and self.ms_attn is not None
        if self.sum_heads:
            scales = (recomputed(self.ms_attn, x, context.grid) if recompute
                      else self.ms_attn(x, context.grid))[0]
            return self.attn(x, context.path, context.cue, context.grid, extra_heads=scales)
        if self.fuse is None:
            out = self.branches(x, context)[0]
            return self.ms_proj(out) if self.ms_proj is not None else out
        dst = self._dst(x, context)
        if recompute:
            return recomputed_by_rows(
                self.fuse.rows, dst, row_params=list(self.fuse.parameters()),
                chunk_rows=self.fuse.tokens_per_chunk(x.device),
                prefix=partial(self._scales, grid=context.grid),
                prefix_input=x, prefix_params=list(self.ms_attn.parameters()))
        return self.fuse([*dst, *self._scales(x, context.grid)])

    def forward(self, x: torch.Tensor, context: MotionContext) -> torch.Tensor:
        x = x + (recomputed(self.mixing, x, context) if self.recompute_mixing
                 else self.mixing(x, context))
        return x + self.mlp(self.norm2(x))


class JointBlock(nn.Module):
    """Joint space-time attention: every token attends to all T*N tokens."""

    def __init__(self, *, dim: int, num_heads: int, mlp_ratio: float = 4.0,
                 norm_layer=VitNorm) -> None:
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = Attention(dim=dim, num_heads=num_heads)
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim=dim, hidden_dim=int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, context: MotionContext) -> torch.Tensor:
        # b batch, t frames, s patches, d width
        frames = x.shape[1]
        tokens = rearrange(self.norm1(x), "b t s d -> b (t s) d")
        x = x + rearrange(self.attn(tokens), "b (t s) d -> b t s d", t=frames)
        return x + self.mlp(self.norm2(x))


class SpaceBlock(JointBlock):
    """Space-only attention: tokens attend within their frame; time only meets at the pooling."""

    def forward(self, x: torch.Tensor, context: MotionContext) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))  # Attention works on the last two axes: (s, d)
        return x + self.mlp(self.norm2(x))


class DividedBlock(JointBlock):
    """Divided space-time attention (TimeSformer): time at each position, then space.

    As in TimeSformer the temporal attention is followed by `temporal_fc`, a projection that
    starts at zero: the block starts as a space-only block, and a loaded image ViT computes what
    it computed on images."""

    def __init__(self, *, dim: int, num_heads: int, mlp_ratio: float = 4.0,
                 norm_layer=VitNorm) -> None:
        super().__init__(dim=dim, num_heads=num_heads, mlp_ratio=mlp_ratio,
                         norm_layer=norm_layer)
        self.temporal_norm = norm_layer(dim)
        self.temporal_attn = Attention(dim=dim, num_heads=num_heads)
        self.temporal_fc = nn.Linear(dim, dim)
        self.init_weights()

    def init_weights(self) -> None:
        nn.init.zeros_(self.temporal_fc.weight)
        nn.init.zeros_(self.temporal_fc.bias)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Checkpoints from before `temporal_fc` added the temporal attention's output as it
        # was: an identity `temporal_fc` keeps them computing what they computed.
        if f"{prefix}temporal_fc.weight" not in state_dict \
                and f"{prefix}temporal_attn.qkv.weight" in state_dict:
            own = self.temporal_fc.weight
            state_dict[f"{prefix}temporal_fc.weight"] = torch.eye(
                own.shape[0], dtype=own.dtype, device=own.device)
            state_dict[f"{prefix}temporal_fc.bias"] = own.new_zeros(own.shape[0])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: torch.Tensor, context: MotionContext) -> torch.Tensor:
        # b batch, t frames, s patches, d width
        temporal = self.temporal_attn(rearrange(self.temporal_norm(x), "b t s d -> b s t d"))
        x = x + self.temporal_fc(rearrange(temporal, "b s t d -> b t s d"))
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))

"""`VideoTransformer`: one ViT backbone over T frames with DVT or baseline blocks."""

from __future__ import annotations

import math

import torch
from torch import nn

from dvt_model.config import ModelConfig
from dvt_model.cpu_memory import keep_freed_memory_once
from dvt_model.layers.blocks import (
    DividedBlock,
    DvtBlock,
    JointBlock,
    MotionContext,
    SpaceBlock,
    VitNorm,
)
from dvt_model.layers.motion_cue import MOTION_CUES, PerFrame
from dvt_model.layers.patch_embed import PatchEmbed
from dvt_model.layers.recompute import recomputed
from dvt_prep.errors import InputError

MOTION_POOL_FLOOR = 0.25  # pixels: what a still token weighs in `pool="motion"`
BASELINE_BLOCKS = {"joint": JointBlock, "divided": DividedBlock, "space": SpaceBlock}


class VideoTransformer(nn.Module):
    """Takes the collated batch dict of `dvt_model.data` ("rgb" (B, T, H, W, 3) and the cue
    tensors) and returns logits (B, num_classes)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        keep_freed_memory_once()  # process-wide, once: see dvt_model.cpu_memory
        self.config = config
        dim = config.embed_dim
        self.grid = config.grid
        self.patch_embed = PatchEmbed(patch_size=config.patch_size, embed_dim=dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid[0] * self.grid[1], dim))
        self.time_embed = nn.Parameter(torch.zeros(1, config.num_frames, 1, dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        if config.time_embed_init == "sincos":
            with torch.no_grad():
                self.time_embed.copy_(sincos_time_embedding(config.num_frames, dim)[None, :, None])
        else:
            nn.init.trunc_normal_(self.time_embed, std=0.02)
        uses_cue = config.is_dvt and "dst" in config.attention
        self.motion_cue = MOTION_CUES[config.cue](embed_dim=config.motion_cue_dim,
                                                  patch_size=config.patch_size) \
            if uses_cue else None
        token_channels = self.motion_cue.token_channels(config.motion_token_features) \
            if self.motion_cue is not None and config.motion_tokens else 0
        self.cue_tokens = nn.Linear(token_channels, dim) if token_channels else None
        self.blocks = nn.ModuleList(self._block() for _ in range(config.depth))
        self.fc_norm = VitNorm(dim)
        self.head_drop = nn.Dropout(config.drop_rate)
        self.head = nn.Linear(dim, config.num_classes)
        self.grad_checkpointing = False
        self.apply(_init_linear)
        for module in self.modules():  # layers whose weights start otherwise (offsets, values)
            if hasattr(module, "init_weights"):
                module.init_weights()
        if self.cue_tokens is not None:  # unit gain: the cue as loud as the pixels
            nn.init.normal_(self.cue_tokens.weight, std=self.cue_tokens.in_features ** -0.5)

    def _block(self) -> nn.Module:
        c = self.config
        if not c.is_dvt:
            return BASELINE_BLOCKS[c.attention](dim=c.embed_dim, num_heads=c.num_heads,
                                                mlp_ratio=c.mlp_ratio)
        return DvtBlock(dim=c.embed_dim, num_heads=c.num_heads, mlp_ratio=c.mlp_ratio,
                        attention=c.attention, fusion=c.fusion, num_points=c.num_points,
                        num_scales=c.num_scales, ms_points=c.ms_points,
                        cue_dim=c.motion_cue_dim, cue_values=c.cue_values,
                        attn_weights=c.attn_weights, fusion_ratio=c.fusion_ratio,
                        fusion_proj=c.fusion_proj)

    def set_grad_checkpointing(self, enable: bool = True, part: str = "block") -> None:
        """Recompute in the backward pass instead of keeping activations (timm's name).
        `part="block"`: keep only each block's input, about a third more time. `"mixing"`
        (DVT blocks): recompute only the attention line (D-ST-A, D-MS-A, fusion) and keep the
        MLP's activations: a DVT model's activation memory falls below a joint-attention
        model's, for the forward of the attention line once more."""
        if part not in ("block", "mixing"):
            raise ValueError(f"part must be 'block' or 'mixing', got {part!r}")
        self.grad_checkpointing = enable and part == "block"
        for block in self.blocks:
            if isinstance(block, DvtBlock):
                block.recompute_mixing = enable and part == "mixing"

    @property
    def inputs(self) -> tuple[str, ...]:
        """Batch keys the model reads."""
        return ("rgb",) + (self.motion_cue.inputs if self.motion_cue is not None else ())

    def _check_inputs(self, batch: dict) -> None:
        missing = [key for key in self.inputs if key not in batch]
        if missing:
            raise InputError(f"the model needs {', '.join(missing)} in the batch (cue "
                             f"{self.config.cue!r}); add it to the dataset's cues")

    def forward_features(self, batch: dict, per_frame: PerFrame | None = None) -> torch.Tensor:
        """batch -> tokens (B, T, N, D) after the last block. `per_frame`: the motion cue's
        `per_frame(batch, grid)`, if already computed."""
        self._check_inputs(batch)
        video = batch["rgb"]
        if tuple(video.shape[1:4]) != (self.config.num_frames, self.config.img_size,
                                       self.config.img_size):
            raise InputError(f"the model takes clips of {self.config.num_frames} frames at "
                             f"{self.config.img_size}px, got rgb of shape {tuple(video.shape)}")
        x = self.patch_embed(video) + self.pos_embed[:, None] + self.time_embed
        context = MotionContext(grid=self.grid)
        if self.motion_cue is not None and per_frame is None:
            per_frame = self.motion_cue.per_frame(batch, self.grid)
        if self.cue_tokens is not None:
            x = x + self.cue_tokens(self.motion_cue.per_token(
                batch, self.grid, self.config.motion_token_features, per_frame).to(x.dtype))
        if self.motion_cue is not None:
            context.path, context.cue = self.motion_cue(
                batch, grid=self.grid, num_frames=self.config.num_frames,
                frames_per_subclip=self.config.frames_per_subclip, per_frame=per_frame)
        for block in self.blocks:
            x = recomputed(block, x, context) if self.grad_checkpointing else block(x, context)
        return x

    def pool_weights(self, batch: dict, per_frame: PerFrame | None = None
                     ) -> torch.Tensor | None:
        """`pool="motion"`: each token's weight in the pooling, (B, T, N), its motion in pixels
        plus a quarter pixel (so that a still clip pools evenly); None: the mean."""
        if self.config.pool != "motion" or self.motion_cue is None:
            return None
        magnitude = self.motion_cue.motion_magnitude(batch, self.grid, per_frame)
        return None if magnitude is None else magnitude + MOTION_POOL_FLOOR

    def forward_head(self, x: torch.Tensor, pool_weights: torch.Tensor | None = None
                     ) -> torch.Tensor:
        """tokens (B, T, N, D) -> logits (B, num_classes): the mean over tokens (weighted by
        `pool_weights` (B, T, N) when given), LayerNorm, linear."""
        if pool_weights is None:
            pooled = x.mean((1, 2))
        else:
            weights = pool_weights / pool_weights.sum((1, 2), keepdim=True)
            pooled = torch.einsum("btn,btnd->bd", weights.to(x.dtype), x)
        if self.config.pool_max:
            pooled = pooled + x.amax((1, 2))
        return self.head(self.head_drop(self.fc_norm(pooled)))

    def forward(self, batch: dict) -> torch.Tensor:
        self._check_inputs(batch)
        per_frame = self.motion_cue.per_frame(batch, self.grid) \
            if self.motion_cue is not None else None
        return self.forward_head(self.forward_features(batch, per_frame),
                                 self.pool_weights(batch, per_frame))


def sincos_time_embedding(num_frames: int, dim: int) -> torch.Tensor:
    """(T, D) float32: sines and cosines of the frame index at geometric frequencies, the
    slowest turning a quarter circle over the clip."""
    frequencies = (math.pi / 2 / num_frames) * (num_frames ** (
        torch.arange(dim // 2, dtype=torch.float32) / max(dim // 2 - 1, 1)))
    angles = torch.arange(num_frames, dtype=torch.float32)[:, None] * frequencies[None]
    embedding = torch.zeros(num_frames, dim)
    embedding[:, 0:2 * (dim // 2):2], embedding[:, 1:2 * (dim // 2):2] = angles.sin(), angles.cos()
    return embedding


def _init_linear(module: nn.Module) -> None:
    # Xavier (timm's "jax" scheme): unit gain through the chains of projections that the motion
    # cue passes (value, fusion, MLP); std 0.02 shrinks it several-fold at every layer, and a
    # short run never learns to use it.
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)

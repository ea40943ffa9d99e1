"""Patch embedding: each frame cut into P x P patches, each patch a linear projection."""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn


class PatchEmbed(nn.Module):
    def __init__(self, *, patch_size: int = 16, in_chans: int = 3, embed_dim: int = 768) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """video (B, T, H, W, 3) -> tokens (B, T, Hp*Wp, D)."""
        # b batch, t frames, h w pixels / patches, c channels, d width
        batch = video.shape[0]
        x = self.proj(rearrange(video, "b t h w c -> (b t) c h w"))
        return rearrange(x, "(b t) d h w -> b t (h w) d", b=batch)

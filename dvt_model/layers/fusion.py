"""Fusion of the attention branches (D-ST-A and the D-MS-A scales) into one update."""

from __future__ import annotations

import torch
from torch import nn

from dvt_model.layers.mlp import Mlp


class MlpFusion(nn.Module):
    """`mlp`: concatenate the branches, one linear layer."""

    def __init__(self, *, dim: int, num_branches: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim * num_branches, dim)

    def forward(self, branches: list[torch.Tensor]) -> torch.Tensor:
        return self.proj(torch.cat(branches, -1))


class MixerFusion(nn.Module):
    """`mixer`: one MLP-Mixer layer over (branches, channels), GELU, then the branch mean.

    The channel MLP is half the width (`dim / 2` hidden) to keep the block's cost below a
    joint-attention block's: it runs once per branch."""

    def __init__(self, *, dim: int, num_branches: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.branch_mlp = Mlp(dim=num_branches, hidden_dim=num_branches)
        self.norm2 = nn.LayerNorm(dim)
        self.channel_mlp = Mlp(dim=dim, hidden_dim=dim // 2)
        self.proj = nn.Linear(dim, dim)

    def forward(self, branches: list[torch.Tensor]) -> torch.Tensor:
        x = torch.stack(branches, -2)  # (..., K branches, D)
        x = x + self.branch_mlp(self.norm1(x).transpose(-1, -2)).transpose(-1, -2)
        x = x + self.channel_mlp(self.norm2(x))
        return self.proj(x.mean(-2))

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
        x = x + self._mix_branches(self.norm1(x))
        x = x + self.channel_mlp(self.norm2(x))
        return self.proj(x.mean(-2))

    def _mix_branches(self, x: torch.Tensor) -> torch.Tensor:
        """`branch_mlp` along the K axis of (..., K, D) as two (K, K) x (K, rest) GEMMs: a
        linear layer applied to the transposed tensor is a matmul with an inner dimension of
        K = 4 on a strided copy, much slower on the CPU."""
        fc1, fc2 = self.branch_mlp.fc1, self.branch_mlp.fc2
        by_branch = x.movedim(-2, 0)  # (K, ..., D)
        flat = by_branch.reshape(by_branch.shape[0], -1)  # one (K, rest) matrix: one GEMM
        hidden = self.branch_mlp.act(torch.addmm(fc1.bias[:, None], fc1.weight, flat))
        mixed = torch.addmm(fc2.bias[:, None], fc2.weight, hidden)
        return mixed.reshape(by_branch.shape).movedim(0, -2)

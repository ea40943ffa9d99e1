"""Fusion of the attention branches (D-ST-A and the D-MS-A scales) into one update."""

from __future__ import annotations

import torch
from torch import nn

from dvt_model.layers.mlp import Mlp
from dvt_model.layers.recompute import recomputed_by_rows

# Tokens the mixer fusion recomputes at a time in training: on the CPU a chunk's stacks stay in
# the cache; on an accelerator small chunks would be many small kernel launches.
CPU_CHUNK_TOKENS = 256
ACCELERATOR_CHUNK_TOKENS = 8192


class MlpFusion(nn.Module):
    """`mlp`: concatenate the branches, one linear layer."""

    def __init__(self, *, dim: int, num_branches: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim * num_branches, dim)
        self.chunk_tokens = 0  # rows at a time when a block recomputes it (0: all at once)

    def tokens_per_chunk(self, device: torch.device) -> int:
        """Rows recomputed at a time in training (one linear layer: all at once by default)."""
        return self.chunk_tokens

    def forward(self, branches: list[torch.Tensor]) -> torch.Tensor:
        return self.rows(*branches)

    def rows(self, *branches: torch.Tensor) -> torch.Tensor:
        """K branches (..., D) -> (..., D); each output row from the same row of the branches."""
        return self.proj(torch.cat(branches, -1))


class MixerFusion(nn.Module):
    """`mixer`: one MLP-Mixer layer over (branches, channels), GELU, then the branch mean.

    The channel MLP is narrow (`hidden_ratio * dim` hidden, half by default): it runs once per
    branch. `proj` adds a linear layer after the mean; without it D-ST-A's own output
    projection, the channel MLP and the block's MLP mix the channels.

    Computed as the same function, cheaper: the channel MLP's second layer is linear, so it is
    applied once to the branch mean of its hidden units instead of to every branch. In
    training it is recomputed in the backward pass, `chunk_tokens` rows at a time (with D-MS-A
    when in a `DvtBlock`), so its (K, L, D) stacks are never kept; None (the default): 256 on
    the CPU, 8192 on an accelerator; 0: no recomputation of its own."""

    def __init__(self, *, dim: int, num_branches: int, hidden_ratio: float = 0.5,
                 proj: bool = True, chunk_tokens: int | None = None) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.branch_mlp = Mlp(dim=num_branches, hidden_dim=num_branches)
        self.norm2 = nn.LayerNorm(dim)
        self.channel_mlp = Mlp(dim=dim, hidden_dim=max(1, round(dim * hidden_ratio)))
        self.proj = nn.Linear(dim, dim) if proj else None
        self.chunk_tokens = chunk_tokens

    def forward(self, branches: list[torch.Tensor]) -> torch.Tensor:
        """K branches (..., D) -> (..., D), `chunk_tokens` rows at a time; while autograd
        records, the chunks are recomputed in the backward pass: only their inputs are kept."""
        chunk = self.tokens_per_chunk(branches[0].device)
        if chunk > 0:
            return recomputed_by_rows(self.rows, branches, row_params=list(self.parameters()),
                                      chunk_rows=chunk)
        return self.rows(*branches)

    def tokens_per_chunk(self, device: torch.device) -> int:
        """Rows recomputed at a time in training on `device` (0: all at once)."""
        if self.chunk_tokens is not None:
            return self.chunk_tokens
        return CPU_CHUNK_TOKENS if device.type == "cpu" else ACCELERATOR_CHUNK_TOKENS

    def rows(self, *branches: torch.Tensor) -> torch.Tensor:
        """K branches (..., D) -> (..., D): the mixer layer, the branch mean, `proj`; each
        output row from the same row of the branches."""
        x = torch.stack(branches)  # (K, ..., D)
        x = x + self._mix_branches(self.norm1(x))
        mlp = self.channel_mlp
        hidden = mlp.act(mlp.fc1(self.norm2(x))).mean(0)
        out = x.mean(0) + mlp.fc2(hidden)
        return self.proj(out) if self.proj is not None else out

    def _mix_branches(self, x: torch.Tensor) -> torch.Tensor:
        """`branch_mlp` along the K axis of (K, L, D) as two (K, K) x (K, L * D) GEMMs: a linear
        layer applied to the transposed tensor is a matmul with an inner dimension of K = 4 on
        a strided copy, much slower on the CPU."""
        fc1, fc2 = self.branch_mlp.fc1, self.branch_mlp.fc2
        flat = x.reshape(x.shape[0], -1)
        hidden = self.branch_mlp.act(torch.addmm(fc1.bias[:, None], fc1.weight, flat))
        return torch.addmm(fc2.bias[:, None], fc2.weight, hidden).reshape(x.shape)

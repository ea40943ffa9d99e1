"""Multi-head self-attention over a token axis (timm naming: qkv, proj), for the baselines."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


class Attention(nn.Module):
    def __init__(self, *, dim: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., L, D) -> (..., L, D): every token attends to the L tokens of its sequence."""
        # l tokens, k q/k/v, h heads, e head width
        lead = x.shape[:-2]
        qkv = rearrange(self.qkv(x.reshape(-1, *x.shape[-2:])), "n l (k h e) -> k n h l e",
                        k=3, h=self.num_heads)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.proj(rearrange(out, "n h l e -> n l (h e)")).reshape(*lead, *x.shape[-2:])

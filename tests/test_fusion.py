"""Mixer fusion: the cheaper forward (fc2 once on the branch mean) is the MLP-Mixer layer
written plainly (values and gradients, float64)."""

from __future__ import annotations

import pytest
import torch

from dvt_model.layers.fusion import MixerFusion


def _plain_mixer(fusion: MixerFusion, branches: list[torch.Tensor]) -> torch.Tensor:
    x = torch.stack(branches, -2)  # (..., K, D)
    x = x + fusion.branch_mlp(fusion.norm1(x).transpose(-1, -2)).transpose(-1, -2)
    x = x + fusion.channel_mlp(fusion.norm2(x))
    return fusion.proj(x.mean(-2)) if fusion.proj is not None else x.mean(-2)


@pytest.mark.parametrize("hidden_ratio,proj", [(0.25, False), (0.5, True), (1.0, False)])
def test_mixer_fusion_equals_the_plain_mixer_layer(hidden_ratio, proj):
    torch.manual_seed(0)
    fusion = MixerFusion(dim=16, num_branches=4, hidden_ratio=hidden_ratio, proj=proj).double()
    for param in fusion.parameters():
        torch.nn.init.normal_(param, 0, 0.3)
    branches = [torch.randn(2, 3, 5, 16, dtype=torch.float64, requires_grad=True)
                for _ in range(4)]
    out, expected = fusion(branches), _plain_mixer(fusion, branches)
    assert torch.allclose(out, expected, atol=1e-12)
    inputs = branches + list(fusion.parameters())
    grads = torch.autograd.grad(out.square().sum(), inputs)
    expected_grads = torch.autograd.grad(expected.square().sum(), inputs)
    for grad, reference in zip(grads, expected_grads, strict=True):
        assert torch.allclose(grad, reference, atol=1e-10)


def test_mixer_fusion_recomputes_small_chunks_on_the_cpu_and_large_ones_on_an_accelerator():
    fusion = MixerFusion(dim=8, num_branches=2)
    cpu, accelerator = (fusion.tokens_per_chunk(torch.device(kind)) for kind in ("cpu", "cuda"))
    assert 0 < cpu < accelerator
    fusion.chunk_tokens = 5
    assert fusion.tokens_per_chunk(torch.device("cuda")) == 5

"""Baselines loaded from an image ViT equal it: a state dict in timm's names and shapes (a ViT
without a class token, mean pooling with `fc_norm`), loaded into space, joint and divided
attention, gives the logits of an image ViT written here with plain torch ops, on one frame and
on a clip of one repeated frame. divided_base has TimeSformer's structure."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dvt_model import create_model
from dvt_model.pretrained import load_vit_weights

DIM, HEADS, DEPTH, CLASSES, IMG = 64, 4, 2, 10, 64  # a 4x4 grid of 16-pixel patches
EPS = 1e-6  # timm's ViT LayerNorm


def _timm_vit_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """timm `VisionTransformer(class_token=False, global_pool="avg")` names and shapes, random
    values of about the scale of trained weights."""
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape, scale=0.1):
        return torch.randn(*shape, generator=gen) * scale

    grid = (IMG // 16) ** 2
    state = {"patch_embed.proj.weight": rand(DIM, 3, 16, 16, scale=0.02),
             "patch_embed.proj.bias": rand(DIM), "pos_embed": rand(1, grid, DIM),
             "fc_norm.weight": 1 + rand(DIM), "fc_norm.bias": rand(DIM),
             "head.weight": rand(CLASSES, DIM), "head.bias": rand(CLASSES)}
    for i in range(DEPTH):
        for name in ("norm1", "norm2"):
            state[f"blocks.{i}.{name}.weight"] = 1 + rand(DIM)
            state[f"blocks.{i}.{name}.bias"] = rand(DIM)
        for name, (out_dim, in_dim) in (("attn.qkv", (3 * DIM, DIM)), ("attn.proj", (DIM, DIM)),
                                        ("mlp.fc1", (4 * DIM, DIM)), ("mlp.fc2", (DIM, 4 * DIM))):
            state[f"blocks.{i}.{name}.weight"] = rand(out_dim, in_dim, scale=in_dim ** -0.5)
            state[f"blocks.{i}.{name}.bias"] = rand(out_dim)
    return state


def _image_vit(state: dict[str, torch.Tensor], image: torch.Tensor) -> torch.Tensor:
    """timm's ViT forward, written out: image (B, 3, H, W) -> logits (B, classes)."""
    def norm(x, name):
        return F.layer_norm(x, (DIM,), state[f"{name}.weight"], state[f"{name}.bias"], EPS)

    def linear(x, name):
        return x @ state[f"{name}.weight"].T + state[f"{name}.bias"]

    x = F.conv2d(image, state["patch_embed.proj.weight"], state["patch_embed.proj.bias"],
                 stride=16)
    x = x.flatten(2).transpose(1, 2) + state["pos_embed"]  # (B, L, D), patches row by row
    batch, tokens, width = x.shape
    for i in range(DEPTH):
        q, k, v = linear(norm(x, f"blocks.{i}.norm1"), f"blocks.{i}.attn.qkv") \
            .reshape(batch, tokens, 3, HEADS, width // HEADS).permute(2, 0, 3, 1, 4)
        weights = (q @ k.transpose(-1, -2) * (width // HEADS) ** -0.5).softmax(-1)
        mixed = (weights @ v).transpose(1, 2).reshape(batch, tokens, width)
        x = x + linear(mixed, f"blocks.{i}.attn.proj")
        hidden = F.gelu(linear(norm(x, f"blocks.{i}.norm2"), f"blocks.{i}.mlp.fc1"))
        x = x + linear(hidden, f"blocks.{i}.mlp.fc2")
    return linear(norm(x.mean(1), "fc_norm"), "head")


@pytest.mark.parametrize("family", ["space", "joint", "divided"])
@pytest.mark.parametrize("frames", [1, 4])
def test_a_loaded_image_vit_gives_its_own_logits(family, frames):
    state = _timm_vit_state()
    torch.manual_seed(1)
    model = create_model(f"{family}_tiny", num_classes=CLASSES, embed_dim=DIM, num_heads=HEADS,
                         depth=DEPTH, num_frames=frames, img_size=IMG).eval()
    report = load_vit_weights(model, state)
    assert not report.unused and not report.mismatched
    assert "time_embed" in report.zeroed
    image = torch.randn(2, 3, IMG, IMG)
    clip = image.permute(0, 2, 3, 1)[:, None].expand(-1, frames, -1, -1, -1)
    with torch.no_grad():
        expected = _image_vit(state, image)
        logits = model({"rgb": clip.contiguous()})
    assert torch.allclose(logits, expected, atol=1e-4, rtol=1e-4), \
        (logits - expected).abs().max()


def test_divided_base_has_timesformers_structure():
    """TimeSformer (Bertasius et al. 2021) divided block: temporal_norm1, temporal_attn,
    temporal_fc (zero at init), then the spatial norm1/attn and norm2/mlp. Our parameter count
    is TimeSformer's less its class token and class-token position (2 x 768)."""
    model = create_model("divided_base", num_classes=400, num_frames=8)
    dim, frames, classes = 768, 8, 400
    for block in model.blocks:
        assert block.temporal_fc.weight.shape == (dim, dim)
        assert not block.temporal_fc.weight.any() and not block.temporal_fc.bias.any()
    attention = 3 * dim * dim + 3 * dim + dim * dim + dim
    per_block = 3 * 2 * dim + 2 * attention + (dim * dim + dim) + 8 * dim * dim + 5 * dim
    timesformer = (3 * 16 * 16 * dim + dim + dim + 197 * dim + frames * dim + 12 * per_block
                   + 2 * dim + classes * dim + classes)
    assert sum(p.numel() for p in model.parameters()) == timesformer - 2 * dim


def test_divided_checkpoints_without_temporal_fc_still_load():
    """Before `temporal_fc`, the temporal attention's output was added as it was: such a
    checkpoint loads with temporal_fc the identity, and computes what it computed."""
    torch.manual_seed(0)
    model = create_model("divided_tiny", num_classes=5).eval()
    with torch.no_grad():
        for block in model.blocks:
            block.temporal_fc.weight.copy_(torch.eye(96))
    legacy = {k: v for k, v in model.state_dict().items() if ".temporal_fc." not in k}
    fresh = create_model("divided_tiny", num_classes=5).eval()
    fresh.load_state_dict(legacy)
    clip = {"rgb": torch.randn(1, 8, 64, 64, 3)}
    with torch.no_grad():
        assert torch.equal(fresh(clip), model(clip))

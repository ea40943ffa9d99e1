"""The models: shapes, gradients, NaN-free (also bf16), motion-guided sampling, sub-clip
locality, motion paths, and loading timm ViT weights."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dvt_model import create_model, list_models
from dvt_model.factory import model_config
from dvt_model.info import example_batch, model_info
from dvt_model.layers.deformable_st import DeformableSpaceTimeAttention
from dvt_model.model import VideoTransformer
from dvt_model.motion_path import pairwise_paths
from dvt_model.pretrained import load_vit_weights
from dvt_prep.errors import InputError

ABLATIONS = [
    {"cue": "md_rgbr"}, {"cue": "avgp"}, {"cue": "rgbd"}, {"cue": "tvl1"}, {"cue": "none"},
    {"attention": "dst"}, {"attention": "dms"}, {"attention": "dst_dms"},
    {"fusion": "mlp"}, {"fusion": "mixer"}, {"fusion": "sum"}, {"fusion": "mixer_pair"},
    {"attention": "dms", "fusion": "sum"}, {"attention": "dst", "fusion": "sum"},
    {"num_points": 1}, {"num_points": 4},
    {"num_subclips": 1}, {"num_subclips": 2}, {"attn_weights": "dot"},
]
# Every size of every family, kept cheap: the real widths, one block, a small clip.
SMALL_CLIP = dict(depth=1, num_frames=4, img_size=32)


def _check_forward_backward(model, batch, num_classes):
    logits = model(batch)
    assert logits.shape == (batch["rgb"].shape[0], num_classes)
    assert torch.isfinite(logits).all()
    logits.float().logsumexp(-1).sum().backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None]
    assert not no_grad, f"no gradient: {no_grad}"
    bad = [n for n, p in model.named_parameters() if not torch.isfinite(p.grad).all()]
    assert not bad, f"non-finite gradient: {bad}"


@pytest.mark.parametrize("name", list_models())
def test_every_model_name(name):
    overrides = {} if name.endswith("tiny") else SMALL_CLIP
    model = create_model(name, num_classes=7, **overrides)
    _check_forward_backward(model, example_batch(model, 2), 7)


@pytest.mark.parametrize("ablation", ABLATIONS, ids=lambda a: ",".join(f"{k}={v}" for k, v in a.items()))
def test_every_ablation_keyword(ablation):
    model = create_model("dvt_tiny", num_classes=5, **ablation)
    _check_forward_backward(model, example_batch(model, 2), 5)


@pytest.mark.parametrize("name", ["dvt_tiny", "joint_tiny", "divided_tiny", "space_tiny"])
def test_bf16_autocast_on_cpu_has_no_nan(name):
    model = create_model(name, num_classes=5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _check_forward_backward(model, example_batch(model, 2), 5)


def test_bad_configs_are_one_line_errors():
    with pytest.raises(InputError, match="unknown cue 'flow'"):
        create_model("dvt_tiny", cue="flow")
    with pytest.raises(InputError, match="not divisible by num_subclips 3"):
        create_model("dvt_tiny", num_subclips=3)
    with pytest.raises(InputError, match="takes cue='none' only"):
        create_model("joint_tiny", cue="md_rgbr")
    with pytest.raises(InputError, match="unknown model 'dvt_huge'"):
        create_model("dvt_huge")
    model = create_model("dvt_tiny")
    batch = example_batch(model)
    del batch["rgbr"]
    with pytest.raises(InputError, match="needs rgbr"):
        model(batch)


def _bilinear_zero_padded(image: torch.Tensor, x: float, y: float) -> torch.Tensor:
    """Hand-written bilinear look-up of image (C, H, W) at (x, y), zeros outside."""
    height, width = image.shape[1:]
    x0, y0 = int(torch.floor(torch.tensor(x))), int(torch.floor(torch.tensor(y)))
    out = torch.zeros(image.shape[0])
    for xi, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
        for yi, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
            if 0 <= xi < width and 0 <= yi < height:
                out += wx * wy * image[:, yi, xi]
    return out


def test_dsta_with_zero_offsets_samples_at_the_motion_predicted_position():
    torch.manual_seed(0)
    dim, heads, grid, frames = 8, 2, (5, 6), 4
    attn = DeformableSpaceTimeAttention(dim=dim, num_heads=heads, num_points=1, cue_dim=3)
    with torch.no_grad():
        for layer in (attn.offset_query, attn.offset_cue, attn.weight_cue):
            layer.weight.zero_()
        attn.offset_query.bias.zero_()
        attn.weight_cue.bias.zero_()  # equal weights over the frames of the sub-clip
        attn.value_cue.weight.zero_()  # values without the motion cue's part
        attn.value_cue.bias.zero_()
        attn.value.weight.copy_(torch.eye(dim))  # value = token
        attn.value.bias.zero_()
        attn.proj.weight.copy_(torch.eye(dim))
        attn.proj.bias.zero_()
    tokens = torch.randn(1, frames, grid[0] * grid[1], dim)
    path = torch.randn(1, frames, grid[0] * grid[1], frames, 2) * 1.5
    out = attn(tokens, path, torch.randn(1, frames, grid[0] * grid[1], frames, 3), grid)
    for t, s in ((0, 0), (1, 7), (3, 29), (2, 14)):
        row, col = divmod(s, grid[1])
        expected = torch.stack([
            _bilinear_zero_padded(tokens[0, u].T.reshape(dim, *grid),
                                  col + float(path[0, t, s, u, 0]),
                                  row + float(path[0, t, s, u, 1]))
            for u in range(frames)]).mean(0)
        assert torch.allclose(out[0, t, s], expected, atol=1e-5)


def test_frames_outside_the_sub_clip_do_not_change_the_dsta_output():
    torch.manual_seed(1)
    model = create_model("dvt_tiny", num_classes=3, attention="dst", depth=1)
    attn = model.blocks[0].attn
    grid, frames = model.grid, model.config.num_frames  # 8 frames, sub-clips of 4
    tokens = torch.randn(2, frames, grid[0] * grid[1], 96)
    path = torch.randn(2, frames, grid[0] * grid[1], 4, 2)
    cue = torch.randn(2, frames, grid[0] * grid[1], 4, model.config.motion_cue_dim)
    before = attn(tokens, path, cue, grid)
    changed = tokens.clone()
    changed[:, 4:] = torch.randn_like(changed[:, 4:])
    after = attn(changed, path, cue, grid)
    assert torch.equal(before[:, :4], after[:, :4])
    assert not torch.allclose(before[:, 4:], after[:, 4:])


def test_paths_sum_constant_motion_and_follow_non_uniform_motion():
    constant = torch.tensor([3.0, -2.0])  # pixels per frame, backward
    fields = constant.expand(1, 4, 5, 6, 2).clone()
    path, mean = pairwise_paths(fields, torch.ones(1, 4, 5, 6, 1), cell=16.0)
    for t in range(4):
        for u in range(4):
            assert torch.allclose(path[0, t, u], (t - u) * constant.expand(5, 6, 2))
    assert torch.allclose(mean, torch.ones_like(mean))
    # d(x) = a * x (cell units, here in pixels of 16-pixel cells): contraction towards x = 0,
    # so after k steps back the position is (1 + a)^k x; bilinear look-ups are exact on it.
    a, cell = -0.2, 16.0
    xs = torch.arange(8.0)
    field = torch.zeros(1, 4, 3, 8, 2)
    field[..., 0] = a * xs * cell
    path, _ = pairwise_paths(field, None, cell=cell)
    for k in range(1, 4):
        expected = ((1 + a) ** k - 1) * xs * cell
        assert torch.allclose(path[0, 3, 3 - k, 1, :, 0], expected, atol=1e-4)
    assert not torch.allclose(path[0, 3, 0, 1, :, 0], 3 * a * xs * cell)  # not a plain sum


def _timm_vit_state(dim: int, depth: int, grid: int = 14) -> dict[str, torch.Tensor]:
    """Random tensors with timm's ViT names and shapes (class token, 14x14 grid)."""
    state = {"cls_token": torch.randn(1, 1, dim), "pos_embed": torch.randn(1, 1 + grid**2, dim),
             "patch_embed.proj.weight": torch.randn(dim, 3, 16, 16),
             "patch_embed.proj.bias": torch.randn(dim), "norm.weight": torch.randn(dim),
             "norm.bias": torch.randn(dim), "head.weight": torch.randn(1000, dim),
             "head.bias": torch.randn(1000)}
    for i in range(depth):
        for name, shape in (("norm1.weight", (dim,)), ("norm1.bias", (dim,)),
                            ("attn.qkv.weight", (3 * dim, dim)), ("attn.qkv.bias", (3 * dim,)),
                            ("attn.proj.weight", (dim, dim)), ("attn.proj.bias", (dim,)),
                            ("norm2.weight", (dim,)), ("norm2.bias", (dim,)),
                            ("mlp.fc1.weight", (4 * dim, dim)), ("mlp.fc1.bias", (4 * dim,)),
                            ("mlp.fc2.weight", (dim, 4 * dim)), ("mlp.fc2.bias", (dim,))):
            state[f"blocks.{i}.{name}"] = torch.randn(shape)
    return state


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
@pytest.mark.parametrize("name", ["dvt_small", "divided_small"])
def test_timm_vit_weights_load(tmp_path, suffix, name):
    from safetensors.torch import save_file
    state = _timm_vit_state(384, 2)
    path = tmp_path / f"vit{suffix}"
    if suffix == ".pth":
        torch.save({"model": state}, path)
    else:
        save_file(state, path)
    model = create_model(name, num_classes=10, depth=2, num_frames=4, img_size=64)
    report = load_vit_weights(model, path)
    loaded = model.state_dict()
    for i in range(2):
        for key in ("attn.proj.bias", "mlp.fc1.weight", "norm2.bias"):
            assert torch.equal(loaded[f"blocks.{i}.{key}"], state[f"blocks.{i}.{key}"])
        if name.startswith("dvt"):  # D-ST-A (motion weights) keeps the value third of qkv
            for kind in ("weight", "bias"):
                assert torch.equal(loaded[f"blocks.{i}.attn.value.{kind}"],
                                   state[f"blocks.{i}.attn.qkv.{kind}"][2 * 384:])
        else:
            assert torch.equal(loaded[f"blocks.{i}.attn.qkv.weight"],
                               state[f"blocks.{i}.attn.qkv.weight"])
    assert torch.equal(loaded["patch_embed.proj.weight"], state["patch_embed.proj.weight"])
    assert torch.equal(loaded["fc_norm.weight"], state["norm.weight"])
    grid = state["pos_embed"][:, 1:].reshape(1, 14, 14, 384).permute(0, 3, 1, 2)
    expected = F.interpolate(grid, size=(4, 4), mode="bicubic", align_corners=False)
    assert torch.allclose(loaded["pos_embed"], expected.permute(0, 2, 3, 1).reshape(1, 16, 384))
    assert report.unused == ["cls_token"]
    assert any(m.startswith("head.weight (1000, 384)") for m in report.mismatched)
    assert "time_embed" in report.zeroed and not model.time_embed.any()
    if name.startswith("divided"):
        assert torch.equal(loaded["blocks.0.temporal_attn.qkv.weight"],
                           state["blocks.0.attn.qkv.weight"])


def test_model_info_counts_parameters_and_multiply_adds():
    info = model_info(create_model("dvt_tiny", num_classes=10))
    assert info["params"] == sum(row["params"] for row in info["modules"])
    assert info["gmacs"] > 0 and info["gflops"] == 2 * info["gmacs"] and "md" in info["inputs"]
    joint = model_info(create_model("joint_tiny", num_classes=10))
    dim, tokens, frames, patches = 96, 8 * 16, 8, 16  # 8 frames of 4x4 patches
    per_block = tokens * (dim * 3 * dim + dim * dim + 2 * dim * 4 * dim) + 2 * tokens**2 * dim
    macs = frames * patches * 3 * 16 * 16 * dim + 3 * per_block + dim * 10
    assert joint["gmacs"] * 1e9 == pytest.approx(macs)
    assert sum(row["gmacs"] for row in joint["block_modules"]) * 3e9 == pytest.approx(
        3 * per_block)


def test_checkpoints_with_a_full_qkv_in_dsta_still_load():
    """Before D-ST-A with motion weights dropped its unused queries and keys, checkpoints held
    `attn.qkv`: they load, with the value third."""
    model = create_model("dvt_tiny", num_classes=5, num_frames=4, img_size=64)
    own = model.state_dict()
    legacy = {}
    for key, tensor in own.items():
        if ".attn.value." in key:
            unused = torch.randn_like(tensor)
            legacy[key.replace(".attn.value.", ".attn.qkv.")] = torch.cat((unused, unused, tensor))
        else:
            legacy[key] = tensor
    fresh = create_model("dvt_tiny", num_classes=5, num_frames=4, img_size=64)
    fresh.load_state_dict(legacy)
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in own.items())


def test_configs_saved_before_our_options_rebuild_the_model_they_trained():
    from dataclasses import asdict

    from dvt_model.config import LEGACY_FIELDS, ModelConfig

    old = ModelConfig(**{**asdict(model_config("dvt_tiny", num_classes=3)), **LEGACY_FIELDS})
    saved = {k: v for k, v in asdict(old).items() if k not in LEGACY_FIELDS}  # as written then
    rebuilt = ModelConfig.from_saved(saved)
    assert rebuilt == old and VideoTransformer(rebuilt).cue_tokens is None
    VideoTransformer(rebuilt).load_state_dict(VideoTransformer(old).state_dict())  # strict

"""D-MS-A and the DVT block: D-MS-A against grid_sample, the fusions of D-ST-A and D-MS-A,
recomputation in the backward pass (same gradients, fewer kept activations)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from einops import rearrange

from dvt_model import create_model
from dvt_model.config import FUSIONS
from dvt_model.info import example_batch, model_info


def test_dmsa_equals_a_grid_sample_reference():
    """The chunked sampling-matrix D-MS-A equals trilinear grid_sample with zero padding."""

    from dvt_model.layers.deformable_ms import DeformableMultiScaleAttention
    torch.manual_seed(2)
    dim, heads, points, scales, grid, frames = 8, 2, 3, 2, (3, 5), 7
    attn = DeformableMultiScaleAttention(dim=dim, num_heads=heads, num_points=points,
                                         num_scales=scales)
    with torch.no_grad():
        attn.offsets.weight.normal_(0, 0.5)
        attn.offsets.bias.normal_(0, 1.0)
    x = torch.randn(1, frames, grid[0] * grid[1], dim)
    outputs = attn(x, grid)
    offsets = rearrange(attn.offsets(x), "b t s (g l p c) -> l b g t s p c", g=heads, l=scales,
                        c=3)
    weights = rearrange(attn.weights(x), "b t s (g l p) -> l b g t s p", g=heads,
                        l=scales).softmax(-1)
    t, y, xx = torch.meshgrid(*(torch.arange(n, dtype=torch.float32) for n in (frames, *grid)),
                              indexing="ij")
    for scale, level in enumerate(attn.scales(x, grid)):
        factor = 2 ** (scale + 1)
        size = torch.tensor([level.shape[3], level.shape[2], level.shape[1]], dtype=torch.float32)
        centre = (torch.stack((xx, y, t), -1).reshape(frames, -1, 3) + 0.5) / factor - 0.5
        off = offsets[scale].clone()
        off[..., 2] = attn.time_reach * torch.tanh(off[..., 2])
        position = centre[None, None, :, :, None] + off  # b g t s p c
        normalised = (position + 0.5) / size * 2 - 1
        values = rearrange(attn.value(level), "b t h w (g e) -> (b g) e t h w", g=heads)
        sampled = F.grid_sample(values, normalised.reshape(heads, frames, -1, points, 3),
                                mode="bilinear", padding_mode="zeros", align_corners=False)
        sampled = rearrange(sampled, "g e t s p -> g t s p e")
        expected = (weights[scale][0][..., None] * sampled).sum(-2)  # g t s e
        expected = rearrange(expected, "g t s e -> t s (g e)")
        assert torch.allclose(outputs[scale][0], expected, atol=1e-5)


@pytest.mark.parametrize("sizes", [(4, 6, 8), (7, 3, 5)])
def test_dmsa_scales_equal_the_depthwise_convolutions(sizes):
    """D-MS-A's scales, computed in the tokens' layout as weighted sums of each cell's eight
    tokens, equal its Conv3d modules (replicate padding at odd sizes): values and the gradients
    of the input, weights and biases (float64)."""
    from dvt_model.layers.deformable_ms import DeformableMultiScaleAttention
    torch.manual_seed(3)
    frames, height, width = sizes
    attn = DeformableMultiScaleAttention(dim=8, num_heads=2, num_scales=2).double()
    x = torch.randn(2, frames, height * width, 8, dtype=torch.float64, requires_grad=True)
    got = attn.scales(x, (height, width))
    level = rearrange(x, "b t (h w) d -> b d t h w", h=height)
    want = []
    for conv in attn.downsample:
        frames, height, width = level.shape[2:]
        level = conv(F.pad(level, (0, width % 2, 0, height % 2, 0, frames % 2), mode="replicate"))
        want.append(rearrange(level, "b d t h w -> b t h w d"))
    probes = [torch.randn_like(w) for w in want]
    inputs = [x, *attn.downsample.parameters()]
    def gradients(outputs):
        loss = sum((o * p).sum() for o, p in zip(outputs, probes, strict=True))
        return torch.autograd.grad(loss, inputs)

    grads_got, grads_want = gradients(got), gradients(want)
    for g, w in zip([*got, *grads_got], [*want, *grads_want], strict=True):
        assert torch.allclose(g, w, rtol=1e-10, atol=1e-12)


def test_dmsa_summed_is_one_softmax_over_the_points_of_every_scale():
    """With constant values (value projection 0, bias b) an interior query's summed output is
    b: its weights over all scales' points sum to 1; each per-scale output is b on its own."""
    from dvt_model.layers.deformable_ms import DeformableMultiScaleAttention
    torch.manual_seed(0)
    attn = DeformableMultiScaleAttention(dim=8, num_heads=2, num_points=3, num_scales=2)
    with torch.no_grad():
        attn.offsets.bias.zero_()  # every point at the query's own position
        attn.value.weight.zero_()
        attn.value.bias.normal_()
    x = torch.randn(1, 8, 36, 8)
    inside = (slice(None), slice(2, 6), torch.tensor([14, 15, 20, 21]))  # away from the ends
    summed = attn.summed(x, (6, 6))[inside]
    assert torch.allclose(summed, attn.value.bias.expand_as(summed), atol=1e-5)
    for scale in attn(x, (6, 6)):
        assert torch.allclose(scale[inside], attn.value.bias.expand_as(summed), atol=1e-5)


@pytest.mark.parametrize("fusion", ["mixer_pair", "sum"])
def test_summed_scale_fusions_compose_the_branches(fusion):
    """mixer_pair fuses D-ST-A's output with the summed scales; sum adds the scales to D-ST-A's
    heads before its output projection."""
    from dvt_model.layers.blocks import DvtBlock, MotionContext
    torch.manual_seed(0)
    block = DvtBlock(dim=16, num_heads=2, num_points=3, num_scales=2, ms_points=2, cue_dim=4,
                     fusion=fusion).eval()
    context = MotionContext(grid=(3, 4), cue=torch.randn(1, 4, 12, 4, 4),
                            path=torch.randn(1, 4, 12, 4, 2))
    x = torch.randn(1, 4, 12, 16)
    tokens = block.norm1(x)
    scales = block.ms_attn.summed(tokens, context.grid)
    if fusion == "sum":
        assert block.fuse is None
        heads = block.attn.heads(tokens, context.path, context.cue, context.grid)
        expected = block.attn.proj(heads + scales)
    else:
        assert len(block.fuse.branch_mlp.fc1.weight) == 2  # two branches
        expected = block.fuse([block.attn(tokens, context.path, context.cue, context.grid),
                               scales])
    assert torch.allclose(block.mixing(x, context), expected, atol=1e-6)


@pytest.mark.parametrize("part", ["block", "mixing"])
def test_grad_checkpointing_gives_the_same_gradients(part):
    torch.manual_seed(0)
    model = create_model("dvt_tiny", num_classes=4)
    batch = example_batch(model, 2)
    model(batch).sum().backward()
    plain = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    model.set_grad_checkpointing(True, part)
    model(batch).sum().backward()
    for name, param in model.named_parameters():
        assert torch.allclose(param.grad, plain[name], atol=1e-6), name


def _saved_activation_bytes(module: torch.nn.Module, *inputs, shared=()) -> int:
    """Bytes autograd keeps for the backward pass of module(*inputs), parameters, inputs and
    the `shared` tensors excluded."""
    params = {p.untyped_storage().data_ptr() for p in module.parameters()}
    shared = {t.untyped_storage().data_ptr() for t in (*inputs, *shared)
              if isinstance(t, torch.Tensor)}
    seen: dict[int, int] = {}

    def pack(tensor):
        key = tensor.untyped_storage().data_ptr()
        if key not in params and key not in shared:
            seen.setdefault(key, tensor.untyped_storage().nbytes())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        module(*inputs)
    return sum(seen.values())


def test_a_dvt_block_keeps_fewer_activations_than_a_joint_attention_block():
    """D-MS-A and the fusion are recomputed, and D-ST-A's sampling positions: what a DVT block
    keeps for the backward pass is no more than a joint-attention block keeps."""
    from dvt_model.layers.blocks import MotionContext

    torch.manual_seed(0)
    kept = {}
    for attention in ("dst_dms", "joint"):
        model = create_model("dvt_small", num_classes=4, num_frames=8, depth=1, img_size=112,
                             attention=attention, cue="md_rgbr" if attention != "joint"
                             else "none")
        batch = example_batch(model)
        context = MotionContext(grid=model.grid)
        if model.motion_cue is not None:
            with torch.no_grad():
                context.path, context.cue = model.motion_cue(
                    batch, grid=model.grid, num_frames=8, frames_per_subclip=4)
        tokens = torch.randn(1, 8, 49, 384, requires_grad=True)
        kept[attention] = _saved_activation_bytes(  # the cue is shared by every block
            model.blocks[0], tokens, context, shared=(context.path, context.cue))
    assert kept["dst_dms"] <= kept["joint"]


@pytest.mark.parametrize("fusion", ["mixer_pair", "mixer", "sum", "mlp"])
def test_a_dvt_block_recomputing_its_parts_gets_the_gradients_of_one_keeping_them(
        monkeypatch, fusion):
    import dvt_model.layers.recompute as recompute
    from dvt_model.layers.blocks import DvtBlock, MotionContext

    torch.manual_seed(0)
    block = DvtBlock(dim=16, num_heads=2, num_points=3, num_scales=2, ms_points=2,
                     cue_dim=4, fusion=fusion).double()
    if block.fuse is not None:
        block.fuse.chunk_tokens = 5  # several chunks
    frames, grid = 4, (3, 4)
    context = MotionContext(grid=grid, cue=torch.randn(1, frames, 12, 4, 4, dtype=torch.float64),
                            path=torch.randn(1, frames, 12, 4, 2, dtype=torch.float64))
    tokens = torch.randn(1, frames, 12, 16, dtype=torch.float64, requires_grad=True)
    inputs = [tokens, *block.parameters()]

    def gradients():
        return torch.autograd.grad(block(tokens, context).square().sum(), inputs)

    recomputed = gradients()
    monkeypatch.setattr(recompute, "checkpoint", lambda f, *args, **_: f(*args))  # keep all
    block.recompute_scales = False
    if block.fuse is not None:
        block.fuse.chunk_tokens = 0
    for grad, kept in zip(recomputed, gradients(), strict=True):
        assert torch.allclose(grad, kept, atol=1e-12)


@pytest.mark.parametrize("fusion", FUSIONS)
def test_model_info_gives_every_multiply_add_of_a_block_to_one_of_its_modules(fusion):
    """The per-module table adds up to the block: the fusion's, and with "sum" D-ST-A's and
    D-MS-A's, multiply-adds are not left out of their rows (they ran outside the modules'
    calls once)."""
    model = create_model("dvt_tiny", num_classes=5, num_frames=8, img_size=64, fusion=fusion)
    info = model_info(model)
    rows = {row["module"]: row["gmacs"] for row in info["block_modules"]}
    blocks = next(r["gmacs"] for r in info["modules"] if r["module"] == "blocks")
    block_total = blocks / model.config.depth
    assert sum(rows.values()) == pytest.approx(block_total)
    assert rows["attn"] > 0 and rows["ms_attn"] > 0
    if fusion != "sum":
        assert rows["fuse"] > 0

"""Parameter and FLOP counts of a model (`dvt model-info`)."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from dvt_model.model import VideoTransformer
from dvt_prep.extract import PrepSettings

CUE_CELL = PrepSettings().cue_grid  # `dvt prep`'s default: rgbr, rgbd, tvl1 per 4x4 cell


def example_batch(model: VideoTransformer, batch_size: int = 1) -> dict[str, torch.Tensor]:
    """A random batch with every input the model reads, in the dataset's shapes."""
    c = model.config
    frames, size, patches = c.num_frames, c.img_size, c.img_size // c.patch_size
    shapes = {"rgb": (size, 3), "md": (patches, 2), "avgp": (patches, 3),
              "rgbr": (size // CUE_CELL, 3), "rgbd": (size // CUE_CELL, 3),
              "tvl1": (size // CUE_CELL, 2)}
    return {key: torch.randn(batch_size, frames, shapes[key][0], shapes[key][0], shapes[key][1])
            for key in model.inputs}


def _cpu_attention_flops(query_shape, key_shape, value_shape, *args, **kwargs) -> int:
    """torch's counter knows the CUDA attention kernels, not the CPU one: QK^T and AV."""
    batch, heads, queries, width = query_shape
    return 4 * batch * heads * queries * key_shape[2] * width


def count_flops(model: VideoTransformer, batch: dict) -> dict[str, int]:
    """FLOPs of one forward pass, by module (matmuls, convolutions and attention; the bilinear
    sampling of the deformable layers is not counted by torch's counter)."""
    mapping = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_attention_flops}
    counter = FlopCounterMode(display=False, depth=2, custom_mapping=mapping)
    with counter, torch.no_grad():
        model(batch)
    by_module = counter.get_flop_counts()
    return {"total": counter.get_total_flops(),
            **{name: sum(ops.values()) for name, ops in by_module.items() if name != "Global"}}


def model_info(model: VideoTransformer) -> dict:
    """Parameters (total and by top-level module) and forward GFLOPs for one clip."""
    params = {name: sum(p.numel() for p in child.parameters())
              for name, child in model.named_children()}
    params["pos_embed+time_embed"] = model.pos_embed.numel() + model.time_embed.numel()
    flops = count_flops(model, example_batch(model))
    return {"config": model.config.to_dict(), "inputs": list(model.inputs),
            "params": sum(p.numel() for p in model.parameters()), "params_by_module": params,
            "gflops": flops["total"] / 1e9}

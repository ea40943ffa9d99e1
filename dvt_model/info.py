"""Parameter, multiply-add and FLOP counts of a model (`dvt model-info`)."""

from __future__ import annotations

import torch
from torch import nn
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
    """FLOPs of one forward pass, in total ("total") and by module name ("blocks.0.attn"), in
    torch's convention of 2 FLOPs per multiply-add (matmuls, convolutions and attention; the
    bilinear sampling of the deformable layers is not counted by torch's counter)."""
    mapping = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_attention_flops}
    counter = FlopCounterMode(display=False, custom_mapping=mapping)
    with counter, torch.no_grad():
        model(batch)
    root = type(model).__name__ + "."
    return {"total": counter.get_total_flops(),
            **{name.removeprefix(root): sum(ops.values())
               for name, ops in counter.get_flop_counts().items() if name.startswith(root)}}


def _rows(modules: dict[str, nn.Module], flops: dict[str, int], prefix: str = "") -> list[dict]:
    """One row per module with parameters or multiply-adds (a ModuleList's: its items')."""
    rows = []
    for name, module in modules.items():
        names = [f"{name}.{i}" for i in range(len(module))] \
            if isinstance(module, nn.ModuleList) else [name]
        row = {"module": name, "params": sum(p.numel() for p in module.parameters()),
               "gmacs": sum(flops.get(prefix + n, 0) for n in names) / 2e9}
        if row["params"] or row["gmacs"]:
            rows.append(row)
    return rows


def model_info(model: VideoTransformer) -> dict:
    """Parameters and forward multiply-adds for one clip: in total, by top-level module
    ("modules"), and by module of the first block ("block_modules"; every block is alike).
    `gmacs` counts multiply-adds (the literature's "FLOPs": ViT-B/16 17.6 G); `gflops` is
    twice that (torch's and fvcore's FLOP convention)."""
    flops = count_flops(model, example_batch(model))
    modules = _rows(dict(model.named_children()), flops)
    modules.append({"module": "pos_embed+time_embed", "gmacs": 0.0,
                    "params": model.pos_embed.numel() + model.time_embed.numel()})
    return {"config": model.config.to_dict(), "inputs": list(model.inputs),
            "params": sum(p.numel() for p in model.parameters()), "modules": modules,
            "block_modules": _rows(dict(model.blocks[0].named_children()), flops, "blocks.0."),
            "gmacs": flops["total"] / 2e9, "gflops": flops["total"] / 1e9}

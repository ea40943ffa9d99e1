"""Loading an image ViT checkpoint in timm's naming into a video model (docs/design.md §6).

What maps is copied: the patch embedding, the spatial position embedding (class token dropped,
interpolated to the model's grid), and per block the norms, `attn.qkv`, `attn.proj` and the MLP
(divided-attention blocks also start their temporal attention from the spatial one, as
TimeSformer does; D-ST-A with motion-predicted weights has only values and takes the value
third of `attn.qkv`); timm's final `norm` becomes `fc_norm`. Everything else is reported.

What TimeSformer starts at zero when it loads an image ViT is zeroed: the time embedding and
each divided block's `temporal_fc`. So a baseline (space, joint, divided) loaded from a ViT
without a class token (timm's `class_token=False, global_pool="avg"`) computes that ViT's
logits on one frame and on a clip of one repeated frame. (With a class token it cannot: the
video models pool the mean of the patch tokens.)
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from dvt_prep.errors import InputError


@dataclass
class LoadReport:
    copied: list[str] = field(default_factory=list)  # model keys filled from the checkpoint
    not_in_checkpoint: list[str] = field(default_factory=list)  # model keys left as they were
    unused: list[str] = field(default_factory=list)  # checkpoint keys with no place
    mismatched: list[str] = field(default_factory=list)  # same name, other shape
    zeroed: list[str] = field(default_factory=list)  # model keys set to zero (time_embed, ...)

    def summary(self) -> str:
        return (f"copied {len(self.copied)} tensors; zeroed {len(self.zeroed)} (time embedding, "
                f"temporal_fc); {len(self.not_in_checkpoint)} model tensors keep their "
                f"initialisation; {len(self.unused)} checkpoint tensors unused; "
                f"{len(self.mismatched)} with mismatched shapes")


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state dict from `.safetensors` or a torch file (`.pth`, `.pt`, `.bin`), unwrapping a
    {"model": ...} or {"state_dict": ...} checkpoint."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(f"checkpoint {path} does not exist")
    try:
        if path.endswith(".safetensors"):
            from safetensors.torch import load_file
            return load_file(path)
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001  # any reader error becomes one line
        raise InputError(f"{path}: cannot read the checkpoint ({error})") from None
    for key in ("model", "state_dict", "model_state"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    return state


def _target_names(source: str, model_keys: set[str]) -> list[str]:
    """Where one timm tensor goes in our model (possibly several places)."""
    if source.startswith("norm."):
        return [source.replace("norm.", "fc_norm.", 1)]
    targets = [source]
    if source.startswith("blocks.") and ".attn." in source:
        targets.append(source.replace(".attn.", ".temporal_attn.", 1))
    if source.startswith("blocks.") and ".norm1." in source:
        targets.append(source.replace(".norm1.", ".temporal_norm.", 1))
    return [t for t in targets if t in model_keys]


def _resize_pos_embed(pos_embed: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """(1, [1 +] M, D) with M a square -> (1, Hp*Wp, D), bicubic."""
    tokens = pos_embed.shape[1]
    side = math.isqrt(tokens)
    if side * side != tokens:  # a class token first
        pos_embed, side = pos_embed[:, 1:], math.isqrt(tokens - 1)
    if (side, side) == tuple(grid):
        return pos_embed
    image = pos_embed.reshape(1, side, side, -1).permute(0, 3, 1, 2).float()
    image = F.interpolate(image, size=grid, mode="bicubic", align_corners=False)
    return image.permute(0, 2, 3, 1).reshape(1, grid[0] * grid[1], -1)


def load_vit_weights(model: nn.Module, path_or_state: str | os.PathLike | dict) -> LoadReport:
    """Copy what maps from a timm ViT checkpoint into `model` (a VideoTransformer)."""
    state = read_state_dict(path_or_state) if not isinstance(path_or_state, dict) \
        else path_or_state
    own = model.state_dict()
    report = LoadReport()
    updates: dict[str, torch.Tensor] = {}
    for source, tensor in state.items():
        if source == "pos_embed":
            tensor = _resize_pos_embed(tensor, model.grid)
        targets = _target_names(source, set(own))
        value_target = source.replace(".attn.qkv.", ".attn.value.", 1)
        if ".attn.qkv." in source and value_target in own:  # D-ST-A with motion weights
            tensor = tensor[2 * tensor.shape[0] // 3:]
            targets = [value_target]
        if not targets:
            report.unused.append(source)
        for target in targets:
            if own[target].shape != tensor.shape:
                report.mismatched.append(f"{source} {tuple(tensor.shape)} -> {target} "
                                         f"{tuple(own[target].shape)}")
                continue
            updates[target] = tensor.to(own[target].dtype)
    report.copied = sorted(updates)
    zeroed = {key: torch.zeros_like(own[key]) for key in set(own) - set(updates)
              if key == "time_embed" or ".temporal_fc." in key}
    model.load_state_dict({**updates, **zeroed}, strict=False)
    report.zeroed = sorted(zeroed)
    report.not_in_checkpoint = sorted(set(own) - set(updates) - set(zeroed))
    return report

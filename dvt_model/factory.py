"""Named models (docs/design.md §8): `create_model("dvt_tiny", num_classes=10, cue="md_rgbr")`.

Every name is a plain dict of `ModelConfig` fields below: grep for it to see what is built.
"""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING

from dvt_model.config import ModelConfig
from dvt_prep.errors import InputError

if TYPE_CHECKING:
    from dvt_model.model import VideoTransformer

SIZES = {
    "tiny": dict(embed_dim=96, depth=3, num_heads=3, num_frames=8, img_size=64),  # tests, demo
    "small": dict(embed_dim=384, depth=12, num_heads=6),  # ViT-S
    "base": dict(embed_dim=768, depth=12, num_heads=12),  # ViT-B
}
FAMILIES = {
    "dvt": dict(attention="dst_dms", cue="md_rgbr"),
    # the baselines pool as timm's ViT does (the mean), so a loaded image ViT is matched exactly
    "joint": dict(attention="joint", cue="none", pool_max=False),
    "divided": dict(attention="divided", cue="none", pool_max=False),
    "space": dict(attention="space", cue="none", pool_max=False),
}
MODELS: dict[str, dict] = {f"{family}_{size}": {**family_args, **size_args}
                           for family, family_args in FAMILIES.items()
                           for size, size_args in SIZES.items()}


def list_models() -> list[str]:
    return sorted(MODELS)


def model_config(name: str, **overrides) -> ModelConfig:
    """The config of a named model with keyword overrides (ablation keywords of docs/design.md §8
    and any other `ModelConfig` field)."""
    if name not in MODELS:
        raise InputError(f"unknown model {name!r}; choose from {', '.join(list_models())}")
    known = {f.name for f in fields(ModelConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise InputError(f"unknown model option(s) {', '.join(unknown)}; "
                         f"options: {', '.join(sorted(known))}")
    return ModelConfig(**{**MODELS[name], **overrides})


def create_model(name: str, **overrides) -> VideoTransformer:
    from dvt_model.model import VideoTransformer  # torch only when a model is built

    return VideoTransformer(model_config(name, **overrides))

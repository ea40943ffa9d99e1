"""Click options for the model keywords of SPEC section 8, shared by model-info, train, ablate."""

from __future__ import annotations

import click

from dvt_model.config import BASELINE_ATTENTIONS, CUES, DVT_ATTENTIONS

MODEL_OPTIONS = (
    click.option("--num-frames", type=int, help="Frames per clip T (default: the model's)."),
    click.option("--img-size", type=int, help="Crop size in pixels (default: the model's)."),
    click.option("--cue", type=click.Choice(CUES), help="Motion cue of D-ST-A."),
    click.option("--attention", type=click.Choice(DVT_ATTENTIONS + BASELINE_ATTENTIONS),
                 help="Attention type (ablation)."),
    click.option("--fusion", type=click.Choice(("mlp", "mixer")), help="Branch fusion."),
    click.option("--num-points", type=int, help="Sampling points N per frame and head."),
    click.option("--num-subclips", type=int, help="Sub-clips B (default T / 4)."),
    click.option("--attn-weights", type=click.Choice(("motion", "dot")),
                 help="D-ST-A weights from the motion cue or the query-key dot product."),
)
MODEL_KEYS = ("num_frames", "img_size", "cue", "attention", "fusion", "num_points",
              "num_subclips", "attn_weights")


def model_options(command):
    for option in reversed(MODEL_OPTIONS):
        command = option(command)
    return command


def model_overrides(params: dict) -> dict:
    """The model keywords given on the command line (the rest keep the named model's)."""
    return {key: params[key] for key in MODEL_KEYS if params.get(key) is not None}

"""Click options for the model keywords (docs/design.md §8), shared by model-info, train, ablate."""

from __future__ import annotations

import click

from dvt_model.config import (
    ATTN_WEIGHTS,
    BASELINE_ATTENTIONS,
    CUES,
    DVT_ATTENTIONS,
    FUSIONS,
    PAPER_FAITHFUL,
    POOLS,
    TIME_EMBED_INITS,
)

MODEL_OPTIONS = (
    click.option("--num-frames", type=int, help="Frames per clip T (default: the model's)."),
    click.option("--img-size", type=int, help="Crop size in pixels (default: the model's)."),
    click.option("--cue", type=click.Choice(CUES), help="Motion cue of D-ST-A."),
    click.option("--attention", type=click.Choice(DVT_ATTENTIONS + BASELINE_ATTENTIONS),
                 help="Attention type (ablation)."),
    click.option("--fusion", type=click.Choice(FUSIONS),
                 help="Branch fusion (mixer; mlp, mixer_pair and sum are cheaper and less "
                      "accurate on rotation and zoom: BENCHMARKS.md)."),
    click.option("--num-points", type=int, help="Sampling points N per frame and head."),
    click.option("--num-subclips", type=int, help="Sub-clips B (default T / 4)."),
    click.option("--ms-points", type=int, help="D-MS-A points per scale and head (8; 4 is faster)."),
    click.option("--fusion-ratio", type=float,
                 help="Mixer fusion: channel MLP hidden width / embed_dim (0.5)."),
    click.option("--fusion-proj/--no-fusion-proj", default=None,
                 help="Mixer fusion: a linear layer after the branch mean (on)."),
    click.option("--attn-weights", type=click.Choice(ATTN_WEIGHTS),
                 help="D-ST-A weights from the motion cue or the query-key dot product."),
    click.option("--motion-tokens/--no-motion-tokens", default=None,
                 help="Ours: the per-patch displacement added to each token's embedding."),
    click.option("--motion-token-features/--no-motion-token-features", default=None,
                 help="Ours: the cue's appearance part in the motion tokens too (off)."),
    click.option("--cue-values/--no-cue-values", default=None,
                 help="Ours: D-ST-A's values carry the motion cue."),
    click.option("--pool", type=click.Choice(POOLS),
                 help="Ours (motion): tokens weighted by their motion before the head."),
    click.option("--pool-max/--no-pool-max", default=None,
                 help="Ours: the per-channel max over tokens added to the pooled mean."),
    click.option("--time-embed-init", type=click.Choice(TIME_EMBED_INITS),
                 help="Ours (sincos): the time embedding starts as sines of the frame index."),
    click.option("--paper-faithful", is_flag=True, default=None,
                 help="All of our additions off: the paper's model (docs/design.md §6)."),
)
MODEL_KEYS = ("num_frames", "img_size", "cue", "attention", "fusion", "num_points",
              "num_subclips", "ms_points", "fusion_ratio", "fusion_proj", "attn_weights",
              "motion_tokens", "motion_token_features", "cue_values", "pool", "pool_max",
              "time_embed_init")


def model_options(command):
    for option in reversed(MODEL_OPTIONS):
        command = option(command)
    return command


def model_overrides(params: dict) -> dict:
    """The model keywords given on the command line (the rest keep the named model's)."""
    given = {key: params[key] for key in MODEL_KEYS if params.get(key) is not None}
    return {**PAPER_FAITHFUL, **given} if params.get("paper_faithful") else given

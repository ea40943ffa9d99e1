"""`ModelConfig`: everything that decides a model's architecture, saved with every checkpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from dvt_prep.errors import InputError

CUES = ("md_rgbr", "avgp", "rgbd", "tvl1", "none")
DVT_ATTENTIONS = ("dst", "dms", "dst_dms")
BASELINE_ATTENTIONS = ("joint", "divided", "space")
POOLS = ("mean", "motion")
FUSIONS = ("mixer", "mixer_pair", "mlp", "sum")
ATTN_WEIGHTS = ("motion", "dot")  # D-ST-A: weights from the motion cue, or query-key
TIME_EMBED_INITS = ("normal", "sincos")
FRAMES_PER_SUBCLIP = 4  # the default T' (docs/design.md §6): cost linear in T
# Our additions to the paper's model, all off: its D-ST-A and mean pooling (docs/design.md
# section 6). `time_embed_init` is the paper's ("normal") by default already.
# What the models did before these fields existed: a checkpoint saved without one of them is
# rebuilt as it was trained.
LEGACY_FIELDS = dict(motion_tokens=False, motion_token_features=True, cue_values=True,
                     pool="mean", pool_max=False, time_embed_init="normal", ms_points=8,
                     fusion_ratio=0.5, fusion_proj=True)
PAPER_FAITHFUL = dict(motion_tokens=False, cue_values=False, pool="mean", pool_max=False,
                      time_embed_init="normal")


@dataclass
class ModelConfig:
    attention: str = "dst_dms"  # dst | dms | dst_dms (DVT) or joint | divided | space
    num_classes: int = 400
    num_frames: int = 16
    img_size: int = 224
    patch_size: int = 16
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    cue: str = "md_rgbr"
    fusion: str = "mixer"  # mixer | mixer_pair | mlp | sum (docs/design.md §6)
    num_points: int = 8
    num_subclips: int | None = None  # None: T / 4 sub-clips of 4 frames
    num_scales: int = 3
    ms_points: int = 8  # D-MS-A points per head and scale (Deformable DETR has 4: faster)
    fusion_ratio: float = 0.5  # mixer fusion: the channel MLP's hidden width / embed_dim
    fusion_proj: bool = True  # mixer fusion: a linear layer after the branch mean
    attn_weights: str = "motion"
    cue_dim: int | None = None  # width of the motion cue embedding m; None: embed_dim // 4
    drop_rate: float = 0.0  # dropout before the head
    motion_tokens: bool = True  # ours: the per-patch cue also added to each token's embedding
    motion_token_features: bool = False  # the cue's appearance part in the motion tokens too
    cue_values: bool = True  # ours: D-ST-A's values carry the motion cue (Shaw et al. style)
    pool: str = "motion"  # mean | motion (ours: tokens weighted by their motion before the head)
    pool_max: bool = True  # ours: the per-channel max over tokens added to the pooled mean
    time_embed_init: str = "normal"  # normal (std 0.02) | sincos (ours, off: frame order loud)

    def __post_init__(self) -> None:
        self.validate()

    @property
    def is_dvt(self) -> bool:
        return self.attention in DVT_ATTENTIONS

    @property
    def frames_per_subclip(self) -> int:
        if self.num_subclips is None:
            return min(FRAMES_PER_SUBCLIP, self.num_frames)
        return self.num_frames // self.num_subclips

    @property
    def motion_cue_dim(self) -> int:
        # m feeds only the offset and weight projections of each D-ST-A, and it exists for every
        # (query, frame of its sub-clip) pair: a quarter of the width keeps it cheap.
        return self.cue_dim or max(8, self.embed_dim // 4)

    @property
    def grid(self) -> tuple[int, int]:
        side = self.img_size // self.patch_size
        return side, side

    def validate(self) -> None:
        """Raise InputError (one line) for a value no model can be built from."""
        def bad(message: str) -> None:
            raise InputError(f"model config: {message}")

        if self.attention not in DVT_ATTENTIONS + BASELINE_ATTENTIONS:
            bad(f"unknown attention {self.attention!r}; choose from "
                f"{', '.join(DVT_ATTENTIONS + BASELINE_ATTENTIONS)}")
        if self.cue not in CUES:
            bad(f"unknown cue {self.cue!r}; choose from {', '.join(CUES)}")
        if not self.is_dvt and self.cue != "none":
            bad(f"the {self.attention} baseline takes cue='none' only, got {self.cue!r}")
        if self.fusion not in FUSIONS:
            bad(f"fusion must be one of {', '.join(FUSIONS)}, got {self.fusion!r}")
        if self.pool not in POOLS:
            bad(f"pool must be one of {', '.join(POOLS)}, got {self.pool!r}")
        if self.time_embed_init not in TIME_EMBED_INITS:
            bad(f"time_embed_init must be one of {', '.join(TIME_EMBED_INITS)}, got "
                f"{self.time_embed_init!r}")
        if self.attn_weights not in ATTN_WEIGHTS:
            bad(f"attn_weights must be one of {', '.join(ATTN_WEIGHTS)}, got "
                f"{self.attn_weights!r}")
        if self.img_size % self.patch_size:
            bad(f"img_size {self.img_size} is not a multiple of the patch size {self.patch_size}")
        if self.embed_dim % self.num_heads:
            bad(f"embed_dim {self.embed_dim} does not divide into {self.num_heads} heads")
        if self.num_points < 1 or self.num_scales < 1 or self.ms_points < 1:
            bad("num_points, ms_points and num_scales must be at least 1")
        if not 0 < self.fusion_ratio <= 4:
            bad(f"fusion_ratio must be in (0, 4], got {self.fusion_ratio}")
        subclips = self.num_subclips
        if subclips is not None and (subclips < 1 or self.num_frames % subclips):
            bad(f"num_frames {self.num_frames} is not divisible by num_subclips {subclips}")
        if subclips is None and self.num_frames % self.frames_per_subclip:
            bad(f"num_frames {self.num_frames} is not a multiple of {FRAMES_PER_SUBCLIP} "
                "(the default sub-clip length); give num_subclips")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_saved(cls, values: dict) -> ModelConfig:
        """The config saved with a checkpoint; fields it predates take their legacy values."""
        known = {f.name for f in fields(cls)}
        return cls(**{**LEGACY_FIELDS, **{k: v for k, v in values.items() if k in known}})

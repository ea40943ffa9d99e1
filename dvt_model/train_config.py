"""`TrainConfig`: every option of `dvt train`, from flags or YAML, saved with every checkpoint."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields

import yaml

from dvt_model.config import CUES
from dvt_model.factory import model_config
from dvt_prep.errors import InputError


@dataclass
class TrainConfig:
    """One training run's settings, saved in its checkpoints. ModelConfig, PrepSettings and
    EncodeSettings validate when built; this one is built empty and filled from a file, flags
    and a checkpoint, so its `validate()` runs when training starts (`train()`)."""

    store: list[str] = field(default_factory=list)  # one or many stores
    labels: str = ""  # training labels (any format of dvt_model.data.labels)
    out: str = "runs/dvt"
    val_labels: str | None = None  # evaluated after every epoch (centre clip); picks "best"
    val_store: list[str] | None = None  # default: the training stores
    model: str = "dvt_tiny"
    cue: str = "md_rgbr"
    model_options: dict = field(default_factory=dict)  # ablation keywords of docs/design.md §8
    num_frames: int | None = None  # default: the model's
    img_size: int | None = None
    frame_stride: int = 1
    crop_scale: tuple[float, float] = (0.25, 1.0)  # random resized crop, area fraction
    flip: bool | None = None  # None: mirror under the flip label map; True: mirror every class;
    # False: never (dvt_model.data.flip_map)
    epochs: int = 10
    batch_size: int = 8
    lr: float = 5e-4
    min_lr: float = 1e-6
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    clip_grad: float = 1.0
    label_smoothing: float = 0.1
    num_workers: int = 2
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    amp: bool = True  # bf16 autocast on CUDA (never on the CPU)
    grad_checkpointing: bool = False  # recompute each block in backward: far less memory
    max_steps: int | None = None  # stop (and checkpoint) after this many optimiser steps
    save_every_steps: int | None = None  # extra mid-epoch checkpoints
    skip_missing: bool = False  # drop videos without labels and labels without videos
    quiet: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.store, (str, os.PathLike)):
            self.store = [os.fspath(self.store)]
        if isinstance(self.val_store, (str, os.PathLike)):
            self.val_store = [os.fspath(self.val_store)]
        self.crop_scale = tuple(self.crop_scale)

    def validate(self) -> None:
        """One clear line for a value that cannot train, before anything is built."""
        if not self.store:
            raise InputError("train: give --store (a store made by `dvt prep`)")
        if not self.labels:
            raise InputError("train: give --labels (`video_id,label` CSV, Kinetics CSV or SSv2 "
                             "JSON)")
        if self.cue not in CUES:
            raise InputError(f"train: unknown cue {self.cue!r}; choose from {', '.join(CUES)}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise InputError(f"train: {name} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise InputError(f"train: lr must be positive, got {self.lr}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise InputError(f"train: device must be auto, cpu or cuda, got {self.device!r}")
        self.model_config(num_classes=1)  # raises for bad model keywords

    def model_config(self, num_classes: int):
        overrides = {k: v for k, v in (("num_frames", self.num_frames),
                                       ("img_size", self.img_size)) if v is not None}
        return model_config(self.model, num_classes=num_classes, cue=self.cue,
                            **overrides, **self.model_options)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(f"unknown training option(s) {', '.join(unknown)}; options: "
                             f"{', '.join(sorted(known))}")
        return cls(**values)

    @classmethod
    def from_yaml(cls, path: str, **overrides) -> TrainConfig:
        """Options from a YAML file, then the flags given on the command line on top."""
        try:
            with open(path, encoding="utf-8") as handle:
                values = yaml.safe_load(handle) or {}
        except (OSError, yaml.YAMLError) as error:
            raise InputError(f"{path}: cannot read the config ({error})") from None
        if not isinstance(values, dict):
            raise InputError(f"{path}: the config must be a mapping of option: value")
        return cls.from_dict({**values, **overrides})

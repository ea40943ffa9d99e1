"""Streaming clips of cached cues for training and evaluation (docs/design.md §7)."""

from dvt_model.data.dataset import DATASET_CUES, VideoClipDataset, collate, read_clip
from dvt_model.data.labels import UNLABELLED, Labels, kinetics_video_id, read_labels

__all__ = ["DATASET_CUES", "UNLABELLED", "Labels", "VideoClipDataset", "collate",
           "kinetics_video_id", "read_clip", "read_labels"]

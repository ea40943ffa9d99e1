"""dvt_model: the Deformable Video Transformer, its baselines, the clip dataset, training."""

from dvt_model.config import CUES, ModelConfig
from dvt_model.factory import create_model, list_models, model_config

__all__ = ["CUES", "ModelConfig", "VideoTransformer", "create_model", "list_models",
           "model_config"]


def __getattr__(name: str):
    if name == "VideoTransformer":  # imports torch: only when asked for
        from dvt_model.model import VideoTransformer

        return VideoTransformer
    raise AttributeError(f"module 'dvt_model' has no attribute {name!r}")

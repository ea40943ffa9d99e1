"""dvt_model: the Deformable Video Transformer, its baselines, the clip dataset, training."""

from dvt_model.config import CUES, ModelConfig
from dvt_model.factory import create_model, list_models, model_config
from dvt_model.model import VideoTransformer

__all__ = ["CUES", "ModelConfig", "VideoTransformer", "create_model", "list_models",
           "model_config"]

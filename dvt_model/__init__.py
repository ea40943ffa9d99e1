"""dvt_model: the Deformable Video Transformer (to come)."""

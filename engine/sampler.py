"""The engine's sampler is the model room's one sampler (``models.sampling``): the
player's controls applied to the model's logits. Kept as the engine's import path."""
from models.sampling import ControlledSampler

__all__ = ["ControlledSampler"]

"""Temporary: the one sampler is ``models.sampling.ControlledSampler``. Kept only while
engine/generator.py (being changed elsewhere) and its test still import it from here;
import it from models.sampling, and delete this file once they do."""
from models.sampling import ControlledSampler

__all__ = ["ControlledSampler"]

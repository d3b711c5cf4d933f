"""The pitch tracker's WAV input: any PCM/float WAV as mono float32, with one clear error
for a bad file. Reading and writing live in engine.wav (the one WAV home); this mixes
the channels down."""

from __future__ import annotations

import os

import numpy as np

from engine.wav import read_wav as _read_frames
from engine.wav import write_wav

__all__ = ["read_wav", "write_wav"]


def read_wav(path: str | os.PathLike, notices: list[str] | None = None) -> tuple[np.ndarray, int]:
    """-> (audio (N,) float32, mono mix; sample rate). Raises FileNotFoundError
    for a missing file and ValueError (one line) for anything unreadable; ``notices``
    gets a line for a truncated file (engine.wav.read_wav)."""
    x, sr = _read_frames(path, notices)
    # +inf and -inf in one frame mix to NaN, silently: the tracker zeroes and counts it
    with np.errstate(invalid="ignore"):
        mono = x[:, 0] if x.shape[1] == 1 else x.mean(axis=1)
    return np.ascontiguousarray(mono, np.float32), sr

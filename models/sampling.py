"""The plain sampler: ``models.contract.Sampler`` without the player's controls.

``liveband eval`` and tests draw with it; the engine's ``ControlledSampler`` applies the
same temperature shares plus harmony-follow, density and a fixed key.
"""
from __future__ import annotations

import numpy as np

from models.contract import CHORD_TEMPERATURE_SHARE, PITCH_TEMPERATURE_SHARE, Sampler
from models.tokens import CHORD, MELODY, NOTE_BASE, VOCAB_SIZES


def make_sampler(temperature: float = 0.9, seed: int = 0, pitch_temperature: float | None = None,
                 chord_temperature: float | None = None) -> Sampler:
    """sampler(stream, logits) -> token; temperature 0 = argmax; fixed seed = fixed output.
    Note streams draw the pitch of an onset at ``pitch_temperature`` (default
    ``temperature * PITCH_TEMPERATURE_SHARE``) keeping the onset probability of
    ``temperature``; the chord stream is drawn at ``chord_temperature`` (default
    ``temperature * CHORD_TEMPERATURE_SHARE``)."""
    rng = np.random.default_rng(seed)
    pt = temperature * PITCH_TEMPERATURE_SHARE if pitch_temperature is None else pitch_temperature
    ct = temperature * CHORD_TEMPERATURE_SHARE if chord_temperature is None else chord_temperature

    def sample(stream: int, logits: np.ndarray) -> int:
        z = np.asarray(logits, dtype=np.float64)[: VOCAB_SIZES[stream]]
        if temperature <= 0:
            return int(np.argmax(z))
        p = _softmax(z, ct if stream == CHORD and ct > 0 else temperature)
        if stream != CHORD and stream != MELODY and pt > 0 and len(z) > NOTE_BASE:
            on = p[NOTE_BASE:].sum()
            p[NOTE_BASE:] = on * _softmax(z[NOTE_BASE:], pt)
        return int(rng.choice(len(p), p=p / p.sum()))

    return sample


def greedy(stream: int, logits: np.ndarray) -> int:
    """The most likely token (NaN never wins): priming, benches, temperature 0."""
    return int(np.argmax(np.nan_to_num(logits, nan=-np.inf)))


def _softmax(z: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(z / T) over the finite entries (-inf stays 0)."""
    z = z / temperature
    z = z - z[np.isfinite(z)].max()
    p = np.exp(z)
    return p / p.sum()

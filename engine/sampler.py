"""The engine's sampler: the player's controls applied to the model's logits.

``ControlledSampler`` is the ``models.contract.Sampler`` the generator hands to
``Accompanist.advance``. Per call (one stream's logits at one position) it applies

- harmony-follow (0 free .. 1 strict): a bonus to notes and chords whose pitch classes
  the player has been singing lately (a decaying pitch-class profile of the melody) and,
  for note streams, to notes of the chord the band chose last;
- density (0 sparse .. 1 busy): shifts note streams between new onsets and HOLD/REST;
- temperature ("creativity"): divides the logits before sampling;

then draws from a seeded ``numpy.random.Generator``, so a seed gives the same band.

Thread: only the generator worker calls it (``set_controls``/``observe_melody`` too).
"""
from __future__ import annotations

import math

import numpy as np

from models.tokens import (CHORD, CHORD_BASE, CHORD_VOCAB, HOLD, MAX_VOCAB, MELODY, NOTE_BASE, NOTE_VOCAB, REST,
                           chord_pitch_classes, is_note_on, token_pitch)

# Log-probability bonus at full strength (harmony_follow = 1) for a fully matching
# pitch class; large enough to dominate a small model's doubt, small enough that a
# confident model can still pass a note outside the profile.
HARMONY_GAIN = 5.0
# Logit shift between onsets and holds/rests from density 0 to 1.
DENSITY_GAIN = 3.0
# Melody pitch-class memory: per-step decay (0.93 ** 16 ~ a third left after a bar).
PROFILE_DECAY = 0.93


def _pitch_class_tables() -> tuple[np.ndarray, np.ndarray]:
    """(MAX_VOCAB, 12) pitch-class membership for note tokens and for chord tokens."""
    notes = np.zeros((MAX_VOCAB, 12), np.float32)
    for tok in range(NOTE_BASE, NOTE_VOCAB):
        notes[tok, (tok - NOTE_BASE) % 12] = 1.0
    chords = np.zeros((MAX_VOCAB, 12), np.float32)
    for tok in range(CHORD_BASE, CHORD_VOCAB):
        pcs = chord_pitch_classes(tok)
        for pc in pcs:
            chords[tok, pc] = 1.0 / len(pcs)
    return notes, chords


_NOTE_PC, _CHORD_PC = _pitch_class_tables()
_ONSET_MASK = np.zeros(MAX_VOCAB, np.float32)
_ONSET_MASK[NOTE_BASE:NOTE_VOCAB] = 1.0


class ControlledSampler:
    def __init__(self, seed: int = 0, temperature: float = 0.9, density: float = 0.5,
                 harmony_follow: float = 0.5) -> None:
        self.rng = np.random.default_rng(seed)
        self.set_controls(temperature, density, harmony_follow)
        self.profile = np.zeros(12, np.float32)   # decaying melody pitch-class weights
        self._melody_pitch: int | None = None
        self.chord_pcs = np.zeros(12, np.float32)  # pitch classes of the band's last chord
        self._scratch = np.empty(MAX_VOCAB, np.float64)

    def set_controls(self, temperature: float, density: float, harmony_follow: float) -> None:
        if not 0.05 <= temperature <= 2.0 or not math.isfinite(temperature):
            raise ValueError(f"temperature must be 0.05-2.0, got {temperature}")
        if not 0.0 <= density <= 1.0:
            raise ValueError(f"density must be 0-1, got {density}")
        if not 0.0 <= harmony_follow <= 1.0:
            raise ValueError(f"harmony_follow must be 0-1, got {harmony_follow}")
        self.temperature = float(temperature)
        self.density = float(density)
        self.harmony_follow = float(harmony_follow)

    def observe_melody(self, token: int) -> None:
        """Feed the melody token the model just heard (once per step)."""
        self.profile *= PROFILE_DECAY
        if is_note_on(token):
            self._melody_pitch = token_pitch(token)
            self.profile[self._melody_pitch % 12] += 1.0
        elif token == HOLD and self._melody_pitch is not None:
            self.profile[self._melody_pitch % 12] += 0.25
        elif token == REST:
            self._melody_pitch = None

    def __call__(self, stream: int, logits: np.ndarray) -> int:
        """stream: index into models.tokens.STREAMS; logits: (V,) float32 with V that
        stream's vocabulary size (or MAX_VOCAB, ids outside the vocabulary at -inf)."""
        V = logits.shape[0]
        x = self._scratch[:V]
        np.copyto(x, logits, casting="unsafe")
        hf = self.harmony_follow
        peak = float(self.profile.max())
        # a pitch class heard at least half as much as the most-heard one counts fully
        melody_w = np.minimum(self.profile / (0.5 * peak), 1.0) if peak > 0 else self.profile
        if stream == CHORD:
            if hf > 0 and peak > 0:
                x += HARMONY_GAIN * hf * (_CHORD_PC[:V] @ melody_w)
        elif stream != MELODY:
            if hf > 0:
                w = 0.6 * melody_w + 0.4 * self.chord_pcs
                x += HARMONY_GAIN * hf * (_NOTE_PC[:V] @ w)
            x += DENSITY_GAIN * (self.density - 0.5) * _ONSET_MASK[:V]
        tok = self._draw(x, logits)
        if stream == CHORD:
            self.chord_pcs[:] = 0.0
            for pc in chord_pitch_classes(tok):
                self.chord_pcs[pc] = 1.0
        return tok

    def _draw(self, x: np.ndarray, raw: np.ndarray) -> int:
        finite = np.isfinite(x)
        if not finite.any():
            # a broken logits row (all -inf / NaN): fall back to the raw argmax
            # rather than crash the band
            r = np.nan_to_num(raw, nan=-np.inf)
            return int(np.argmax(r)) if np.isfinite(r).any() else REST
        x = np.where(finite, x, -np.inf) / self.temperature
        x -= x.max()
        p = np.exp(x)
        c = np.cumsum(p)
        u = self.rng.random() * c[-1]
        return int(min(np.searchsorted(c, u, side="right"), len(c) - 1))

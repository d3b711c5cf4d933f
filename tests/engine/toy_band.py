"""A tiny rule-based Accompanist that satisfies models.contract for pure-logic engine
tests (no torch, no weights). It still routes every stream through the engine's sampler
with logits, so sampler controls and seeds matter exactly as with the real model.
It keeps a fixed-size state, like the real model's bounded cache."""

from __future__ import annotations

import numpy as np

from models.tokens import ALTO, BASS, CHORD, HOLD, MAX_VOCAB, REST, TENOR, chord_token, is_note_on, note_on, token_pitch


class ToyBand:
    lookahead = 1

    def __init__(self) -> None:
        self.heard: list[int] = []  # melody tokens received (tests read this)
        self.keep_history = True
        self._logits = np.full(MAX_VOCAB, -np.inf, np.float32)

    def reset(self, style: str, meter: str) -> None:
        self.style, self.meter = style, meter
        self.t = 0
        self.root = 0
        self.heard.clear()

    def _pick(self, sampler, stream: int, favourite: int, others: tuple[int, ...]) -> int:
        x = self._logits
        x.fill(-np.inf)
        for o in others:
            x[o] = 0.0
        x[favourite] = 3.0
        return sampler(stream, x)

    def advance(self, melody_token: int, step_in_bar: int, sampler) -> np.ndarray:
        if self.keep_history:
            self.heard.append(int(melody_token))
        if is_note_on(melody_token):
            self.root = token_pitch(melody_token) % 12
        chord = chord_token(self.root, "maj")
        c = self._pick(sampler, CHORD, chord, (chord_token((self.root + 5) % 12, "maj"),))
        onset = step_in_bar % 4 == 0
        b = self._pick(sampler, BASS, note_on(36 + self.root) if onset else HOLD, (REST, HOLD, note_on(43 + self.root)))
        te = self._pick(sampler, TENOR, note_on(55 + (self.root + 4) % 12) if onset else HOLD, (HOLD, REST))
        al = self._pick(
            sampler, ALTO, note_on(60 + (self.root + 7) % 12) if step_in_bar % 8 == 0 else HOLD, (HOLD, REST)
        )
        self.t += 1
        return np.array([c, b, te, al], np.int64)


def band_for_tests(seed: int = 0):
    """The debug model's accompanist when the model room provides it, else ToyBand.

    The real generator path is the same either way; the debug model adds real
    transformer steps over a fixed-size cache."""
    try:
        from models.runtime import debug_model
    except ImportError:
        return ToyBand()
    from engine.backends import limit_cpu_threads

    limit_cpu_threads(1)  # what open_accompanist does for a CPU backend
    return debug_model(seed).accompanist(seed)

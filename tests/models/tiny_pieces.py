"""Small synthetic pieces for the model tests (pure numpy; no corpus needed)."""

from __future__ import annotations

import numpy as np

from models.data import Piece
from models.tokens import CHORD, HOLD, MELODY, NOTE_BASE, NUM_STREAMS, REST, bar_steps, chord_token


def random_piece(T: int = 64, seed: int = 0, style: str = "pop", meter: str = "4/4", name: str = "synthetic") -> Piece:
    """A musically plausible-ish random piece: a I-IV-V-I loop with chord tones in the
    voices and a stepwise melody, every stream using onset / hold / rest."""
    rng = np.random.default_rng(seed)
    bar = bar_steps(meter)
    tokens = np.zeros((T, NUM_STREAMS), np.int16)
    roots = [0, 5, 7, 0]
    for t in range(T):
        root = roots[(t // bar) % 4]
        tokens[t, CHORD] = chord_token(root, "maj")
        for s, octave in ((2, 36), (3, 48), (4, 60)):
            if t % 4 == 0:
                tokens[t, s] = NOTE_BASE + octave + root + int(rng.choice([0, 4, 7]))
            else:
                tokens[t, s] = HOLD if rng.random() < 0.8 else REST
        if t % 2 == 0 or t == 0:
            tokens[t, MELODY] = NOTE_BASE + 72 + int(rng.integers(-5, 6))
        else:
            tokens[t, MELODY] = HOLD if rng.random() < 0.7 else REST
    sib = (np.arange(T) % bar).astype(np.int8)
    return Piece(name, style, meter, tokens, sib)


def random_corpus(n: int = 6, T: int = 96) -> dict:
    styles = ("pop", "folk", "chorale")
    pieces = [random_piece(T, seed=i, style=styles[i % 3], name=f"synthetic/{i}") for i in range(n)]
    return {"train": pieces[:-2], "valid": pieces[-2:]}

"""The band anticipates a passage it has heard before (models.recall through the sampler):
with the real checkpoint and the real engine render, the second time through a tune the
band's chord changes as the melody's note arrives (the note is in the band as it starts),
where without recall the band finds the new chord only after hearing the note."""

from __future__ import annotations

import numpy as np
import pytest

import models.sampling as sampling  # the sampler fits itself to a model with recall_steps (patched below)
from liveband.listening import hear
from liveband.paths import find_soundfont
from models.data.piece import Piece
from models.listen import harmony_counts
from models.runtime import DEFAULT_CHECKPOINT, load_model
from models.tokens import CHORD, CHORD_NONE, HOLD, MELODY, NOTE_BASE, NUM_STREAMS, REST

PASS = 128  # steps in one time through the tune (8 bars of 4/4)
# quarter notes (4 steps; 0 = hold the last one): the chords are C F G C Am F G C and
# every new chord starts on a note the previous chord does not have
TUNE = [
    64,
    67,
    64,
    60,
    69,
    65,
    69,
    72,
    71,
    74,
    71,
    67,
    72,
    0,
    67,
    64,
    69,
    72,
    76,
    72,
    65,
    69,
    72,
    69,
    67,
    71,
    74,
    71,
    72,
    0,
    0,
    0,
]


def _melody() -> list[int]:
    one: list[int] = []
    for q in TUNE:
        one += ([NOTE_BASE + q] if q else [HOLD]) + [HOLD] * 3
    one[-2:] = [REST, REST]  # a breath before the tune comes round again
    return one * 2


def _piece() -> Piece:
    mel = _melody()
    tok = np.full((len(mel), NUM_STREAMS), REST, np.int16)
    tok[:, MELODY] = mel
    tok[:, CHORD] = CHORD_NONE
    return Piece("tune/2x", "pop", "4/4", tok, (np.arange(len(mel)) % 16).astype(np.int8))


@pytest.fixture(scope="module")
def model():
    return load_model(DEFAULT_CHECKPOINT, device="cpu")


# the steps of pass 2 where a new chord starts on a note the last chord lacks (bars 2, 3, 5, 6, 7)
CHANGES = [PASS + 16 * b for b in (1, 2, 4, 5, 6)]


def _on_time(model, piece: Piece, seed: int) -> int:
    """How many of CHANGES' melody notes the band sounds as they start."""
    heard = hear(piece, model.accompanist(seed), find_soundfont(None), seed)
    mel = [n for n in heard.melody if n.start in CHANGES]
    assert len(mel) == len(CHANGES)
    return harmony_counts(mel, heard.band)["now"][0]


def test_the_second_time_through_the_band_changes_chord_with_the_melody(model, monkeypatch):
    piece = _piece()
    with_recall = sum(_on_time(model, piece, seed) for seed in (0, 1))
    monkeypatch.setattr(sampling, "recall_steps", lambda accompanist: None)
    without = sum(_on_time(model, piece, seed) for seed in (0, 1))
    assert with_recall >= 8, (with_recall, without)  # of 10
    assert with_recall >= without + 4, (with_recall, without)

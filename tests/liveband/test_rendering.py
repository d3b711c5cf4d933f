"""liveband.rendering: which model a render of a file plays by default."""

import dataclasses

from engine.melody_file import Melody, MelodyNote
from liveband.rendering import open_band
from models.runtime import DEFAULT_CHECKPOINT, OFFLINE_CHECKPOINT, default_offline_checkpoint, load_model


def test_a_render_plays_the_shipped_offline_teacher_unless_a_checkpoint_is_named():
    melody = Melody(tuple(MelodyNote(b, b + 1, 60 + b % 5) for b in range(8)), 100.0, "4/4", "4/4", "melody")
    assert default_offline_checkpoint() == (OFFLINE_CHECKPOINT if OFFLINE_CHECKPOINT.is_file() else DEFAULT_CHECKPOINT)
    _, acc, _ = open_band(melody, "torch-cpu", say=lambda m: None)
    assert acc.lookahead == load_model(default_offline_checkpoint()).pattern.lookahead
    _, live, _ = open_band(melody, "torch-cpu", str(DEFAULT_CHECKPOINT), say=lambda m: None)
    assert live.lookahead == 1


def test_the_shipped_teacher_hears_the_melody_a_beat_ahead():
    if OFFLINE_CHECKPOINT.is_file():
        lm = load_model(OFFLINE_CHECKPOINT)
        assert lm.pattern.lookahead == -4 and not lm.pattern.online
        live = load_model(DEFAULT_CHECKPOINT).config
        assert dataclasses.replace(lm.config, pattern=live.pattern) == live  # the live model's architecture

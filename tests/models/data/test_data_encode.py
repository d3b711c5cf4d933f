"""Stream encoding, the monophonic rule, the voice reduction and chord labels, on hand examples."""

from __future__ import annotations

import numpy as np
import pytest

from models.data.encode import (
    cut_same_pitch,
    harte_to_token,
    identify_chord,
    monophonic,
    notes_to_stream,
    reduce_accompaniment,
    stream_to_notes,
)
from models.tokens import CHORD_NONE, HOLD, NOTE_BASE, REST, chord_token


def mask(*pcs: int) -> int:
    return sum(1 << p for p in pcs)


def test_stream_round_trip_keeps_restruck_notes_apart():
    notes = [(60, 0, 2), (60, 2, 3), (62, 5, 8)]
    tok = notes_to_stream(notes, 10)
    assert tok.tolist() == [NOTE_BASE + 60, HOLD, NOTE_BASE + 60, REST, REST, NOTE_BASE + 62, HOLD, HOLD, REST, REST]
    assert stream_to_notes(tok) == notes


def test_stray_hold_after_rest_decodes_as_silence():
    tok = np.array([REST, HOLD, NOTE_BASE + 50, HOLD, REST, HOLD])
    assert stream_to_notes(tok) == [(50, 2, 4)]


def test_later_onset_cuts_earlier_note_and_same_onset_keeps_highest():
    notes = [(60, 0, 8), (64, 4, 6), (55, 10, 12), (67, 10, 11)]
    assert monophonic(notes) == [(60, 0, 4), (64, 4, 6), (67, 10, 11)]


def test_same_pitch_overlap_is_cut_in_polyphony():
    assert cut_same_pitch([(60, 0, 8), (60, 4, 6), (64, 0, 8)]) == [(60, 0, 4), (64, 0, 8), (60, 4, 6)]


def test_reduction_bass_lowest_alto_tenor_below_melody():
    melody = [(72, 0, 4)]
    acc = [(48, 0, 8), (60, 0, 8), (64, 0, 8), (76, 0, 8)]  # 76 above the melody while it sounds
    red = reduce_accompaniment(acc, melody, 8)
    assert red["bass"] == [(48, 0, 8)]
    # steps 0-3: 76 is above the melody; steps 4-7 the melody rests so 76 becomes the alto
    assert red["alto"] == [(64, 0, 4), (76, 4, 8)]
    assert red["tenor"] == [(60, 0, 4), (64, 4, 8)]


def test_reduction_new_onset_when_selection_moves_to_a_sounding_note():
    acc = [(40, 0, 2), (47, 0, 4)]
    red = reduce_accompaniment(acc, [], 4)
    assert red["bass"] == [(40, 0, 2), (47, 2, 4)]
    assert red["alto"] == [(47, 0, 2)]


@pytest.mark.parametrize(
    "label,root,quality",
    [
        ("C:maj", 0, "maj"),
        ("A:min/b3", 9, "min"),
        ("G:sus4(b7)", 7, "sus4"),
        ("Bb:maj6", 10, "6"),
        ("F#:hdim7", 6, "hdim7"),
        ("Db:minmaj7", 1, "min"),
        ("E:7/b7", 4, "7"),
        ("Cb:maj7", 11, "maj7"),
    ],
)
def test_harte_labels(label, root, quality):
    assert harte_to_token(label) == chord_token(root, quality)


def test_harte_no_chord_and_bad_root():
    assert harte_to_token("N") == CHORD_NONE
    with pytest.raises(ValueError):
        harte_to_token("H:maj")


def test_identify_chord_exact_and_bass_tiebreak():
    assert identify_chord(mask(7, 11, 2), 7) == chord_token(7, "maj")
    assert identify_chord(mask(2, 6, 9, 0), 2) == chord_token(2, "7")
    # {C, E, G, A} is C6 or Am7: the bass decides
    assert identify_chord(mask(0, 4, 7, 9), 9) == chord_token(9, "min7")
    assert identify_chord(mask(0, 4, 7, 9), 0) == chord_token(0, "6")
    assert identify_chord(0, -1) == CHORD_NONE
    # a bare fifth reads as the major triad on its lower note
    assert identify_chord(mask(2, 9), 2) == chord_token(2, "maj")

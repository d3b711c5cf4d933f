"""Listening measures on tiny hand-made examples (pure logic; the engine-rendered path is
tested in tests/liveband/test_listening.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.data.piece import Piece
from models.listen import (
    Note,
    RecordingAccompanist,
    ReplayAccompanist,
    beats_to_recover,
    chord_lengths,
    excerpt_start,
    harmony_counts,
    length_entropy,
    melody_in_chord,
    notes_from_tokens,
    per_beat_melody_in_chord,
    perturb_excerpt,
    song_mean,
    sounding_pitches,
)
from models.rules import RuleAccompanist
from models.sampling import make_sampler
from models.tokens import CHORD_NONE, CHORD_UNKNOWN, HOLD, MELODY, NOTE_BASE, NUM_STREAMS, REST, chord_token

C, G, AM = chord_token(0, "maj"), chord_token(7, "maj"), chord_token(9, "min")


def on(p: int) -> int:
    return NOTE_BASE + p


def test_sounding_pitches_and_notes_follow_onset_hold_rest():
    mel = np.array([REST, on(60), HOLD, on(62), REST, HOLD, on(64), HOLD])
    assert sounding_pitches(mel).tolist() == [-1, 60, 60, 62, -1, -1, 64, 64]
    assert notes_from_tokens(mel) == [Note(1, 3, 60), Note(3, 4, 62), Note(6, 8, 64)]


def test_melody_in_chord_counts_frames_where_both_sound():
    # C-E held over C (2 in), D over C (out), E over N (not counted), G held over G (2 in),
    # rest over G (not counted), A over unknown (not counted)
    mel = np.array([on(60), HOLD, on(62), on(64), on(67), HOLD, REST, on(69)])
    ch = np.array([C, C, C, CHORD_NONE, G, G, G, CHORD_UNKNOWN])
    assert melody_in_chord(mel, ch) == (4, 5)
    assert per_beat_melody_in_chord(mel, ch, 2).tolist() == [[2, 3], [2, 2]]


def test_song_mean_averages_per_song_not_per_frame():
    assert song_mean([(1, 1), (1, 3), (0, 0)]) == round((1 + 1 / 3) / 2, 4)
    assert song_mean([(0, 0)]) is None


def test_harmony_now_and_late_and_clash_on_a_band_that_answers_on_the_onset():
    # melody: C at step 0 (1 beat), D at step 4 (1 beat)
    melody = [Note(0, 4, 60), Note(4, 8, 62)]
    # band plays the melody's pitch class on each onset, one beat each: now = 1;
    # one beat after C's onset the band plays D (C's pc not sounding), after D's onset
    # nothing sounds: late = 0
    band = [Note(0, 4, 48), Note(4, 8, 50)]
    assert harmony_counts(melody, band) == {"now": (2, 2), "late": (0, 2), "clash": (0, 2)}
    # a band a beat behind: now 0, late 1
    late_band = [Note(4, 8, 48), Note(8, 12, 50)]
    assert harmony_counts(melody, late_band) == {"now": (0, 2), "late": (2, 2), "clash": (0, 1)}
    # a held pad of C and D's pitch classes: both now and late for C, now for D
    pad = [Note(0, 8, 48), Note(0, 8, 62)]
    assert harmony_counts(melody, pad) == {"now": (2, 2), "late": (1, 2), "clash": (0, 2)}


def test_clash_counts_semitones_and_major_sevenths_under_the_sounding_melody_note():
    melody = [Note(0, 8, 60)]  # C held two beats
    band = [
        Note(0, 2, 61),  # C# over C: a semitone, clash
        Note(2, 4, 71),  # B over C: a major 7th (pc interval 11), clash
        Note(4, 6, 64),  # E: consonant
        Note(6, 8, 66),  # F#: a tritone, not counted as a clash
        Note(8, 10, 61),
    ]  # after the melody ends: not counted
    assert harmony_counts(melody, band)["clash"] == (2, 4)
    assert harmony_counts(melody, [])["clash"] == (0, 0)
    assert harmony_counts([], band) == {"now": (0, 0), "late": (0, 0), "clash": (0, 0)}


def test_chord_lengths_and_entropy():
    ch = np.array([C, C, C, C, G, G, CHORD_NONE, G, G, AM, AM, AM, AM, CHORD_UNKNOWN])
    assert chord_lengths(ch) == [4, 2, 2, 4]
    # lengths {4: 2, 2: 2}: two equally likely values
    assert length_entropy(chord_lengths(ch)) == round(math.log(2), 4)
    assert length_entropy([4, 4, 4]) == 0.0
    assert length_entropy([]) is None


def _piece(mel: np.ndarray, sib: np.ndarray, chords: np.ndarray | None = None) -> Piece:
    tok = np.full((len(mel), NUM_STREAMS), REST, np.int16)
    tok[:, MELODY] = mel
    tok[:, 1] = C if chords is None else chords
    return Piece("t/1", "pop", "4/4", tok, sib.astype(np.int8))


def test_perturb_excerpt_starts_on_the_downbeat_before_the_melody_and_shifts_from_beat_17():
    n = 6 + 256
    mel = np.full(n, REST)
    mel[9::4] = on(60)  # first note at step 9, inside the bar starting at step 6
    sib = (np.arange(n) + 10) % 16  # step 6 is a downbeat
    p = _piece(mel, sib)
    assert excerpt_start(p) == 6
    ex = perturb_excerpt(p, 6)
    assert len(ex) == 256 and ex.step_in_bar[0] == 0
    m = ex.tokens[:, MELODY]
    assert set(m[:64][m[:64] >= NOTE_BASE].tolist()) == {on(60)}
    assert set(m[64:][m[64:] >= NOTE_BASE].tolist()) == {on(66)}
    assert perturb_excerpt(_piece(mel[:200], sib[:200]), 6) is None  # too short
    assert perturb_excerpt(_piece(np.full(n, REST), sib), 6) is None  # no melody
    high = mel.copy()
    high[high >= NOTE_BASE] = on(125)
    assert perturb_excerpt(_piece(high, sib), 6) is None  # leaves 0..127


def test_beats_to_recover_counts_the_jump_beat_as_one():
    pre = [0.8] * 16
    assert beats_to_recover(pre + [0.1, 0.5, 0.75, 0.9] + [0.8] * 44) == 3  # 0.75 >= 0.72
    assert beats_to_recover(pre + [0.8] * 48) == 1
    assert beats_to_recover(pre + [0.1] * 48) is None
    assert beats_to_recover([None] * 16 + [0.5] * 48) is None  # no pre-jump level
    # the level is the 8 beats before the jump, not the cold start
    assert beats_to_recover([0.0] * 8 + [1.0] * 8 + [0.85, 0.95]) == 2


def test_replay_plays_its_frames_then_rests_and_checks_their_shape():
    frames = np.array([[C, on(48), on(64), on(67)], [C, HOLD, HOLD, HOLD]])
    acc = ReplayAccompanist(frames)
    acc.reset("pop", "4/4")
    got = [acc.advance(on(72), 0, make_sampler(0.0, 0)).tolist() for _ in range(3)]
    assert got == [frames[0].tolist(), frames[1].tolist(), [CHORD_NONE, REST, REST, REST]]
    acc.reset("pop", "4/4")
    assert acc.advance(REST, 0, make_sampler(0.0, 0)).tolist() == frames[0].tolist()
    with pytest.raises(ValueError, match=r"\(T, 4\)"):
        ReplayAccompanist(np.zeros((3, 5)))


def test_recording_keeps_what_the_inner_accompanist_played_since_reset():
    rec = RecordingAccompanist(RuleAccompanist())
    ref = RuleAccompanist()
    for acc in (rec, ref):
        acc.reset("pop", "4/4")
    rec.advance(REST, 0, make_sampler(0.0, 0))
    rec.reset("pop", "4/4")  # a reset forgets (the engine's warm-up step)
    mel = [on(60), HOLD, on(64), HOLD, on(67), HOLD, HOLD, HOLD]
    want = [ref.advance(m, t % 16, make_sampler(0.0, 0)).tolist() for t, m in enumerate(mel)]
    for t, m in enumerate(mel):
        rec.advance(m, t % 16, make_sampler(0.0, 0))
    assert rec.recorded().tolist() == want and rec.lookahead == ref.lookahead

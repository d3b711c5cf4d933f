"""The rule-based accompanist: key finding, triad choice, voicing, online causality."""

from __future__ import annotations

import numpy as np

from models.rules import RuleAccompanist, choose_triad, estimate_key, voicing
from models.tokens import CHORD_NONE, HOLD, NOTE_BASE, REST, chord_of_token, chord_pitch_classes


def hist_of(pitches):
    h = np.zeros(12)
    for p in pitches:
        h[p % 12] += 1
    return h


def test_key_of_scales():
    # tonic-heavy C major melody
    assert estimate_key(hist_of([60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 60, 60])) == (0, "maj")
    # A harmonic minor, with the raised seventh G#
    assert estimate_key(hist_of([69, 71, 72, 74, 76, 77, 80, 81, 76, 72, 69, 69])) == (9, "min")
    assert estimate_key(np.zeros(12)) is None


def test_triad_covering_the_melody_and_ties():
    w = hist_of([62, 65, 69])
    assert choose_triad(w, (0, "maj"), None) == (2, "min")
    w = hist_of([67, 71])  # G and B: G major and E minor both cover them
    assert choose_triad(w, (0, "maj"), None) == (7, "maj")
    assert choose_triad(w, (0, "maj"), (4, "min")) == (4, "min")
    # in A minor the dominant is major (harmonic minor): E G# B
    assert choose_triad(hist_of([68, 71]), (9, "min"), None) == (4, "maj")


def test_voicing_ranges():
    assert voicing(0, "maj") == (48, 52, 55)
    assert voicing(7, "maj") == (43, 59, 62)
    assert voicing(9, "min") == (45, 60, 64)
    assert voicing(11, "dim") == (47, 62, 65)


def c_major_melody(beats=32):
    tune = [60, 64, 67, 72, 65, 69, 72, 77, 67, 71, 74, 79, 60, 64, 67, 72]
    toks = []
    for b in range(beats):
        toks += [NOTE_BASE + tune[b % len(tune)], HOLD, HOLD, REST]
    return np.array(toks)


def run(acc, melody, sib):
    acc.reset("pop", "4/4")
    out = []
    for t in range(len(melody)):
        out.append(acc.advance(int(melody[t - acc.lookahead]) if t >= acc.lookahead else REST, int(sib[t]), None))
    return np.array(out)


def test_block_chords_on_beats_from_the_key():
    mel = c_major_melody()
    sib = np.arange(len(mel)) % 16
    out = run(RuleAccompanist(), mel, sib)
    # before any melody is heard: silence
    assert out[0].tolist() == [CHORD_NONE, REST, REST, REST]
    played = out[4:]
    assert ((played[:, 1:] >= NOTE_BASE) == (sib[4:, None] % 4 == 0)).all()  # onsets on beats only
    assert (played[sib[4:] % 4 != 0, 1:] == HOLD).all()
    for row in played[sib[4:] % 4 == 0]:
        root, quality = chord_of_token(int(row[0]))
        assert quality in ("maj", "min", "dim")
        assert {(int(x) - NOTE_BASE) % 12 for x in row[1:]} == set(chord_pitch_classes(int(row[0])))
        assert {0, 2, 4, 5, 7, 9, 11} >= set(chord_pitch_classes(int(row[0])))
        assert (int(row[1]) - NOTE_BASE) % 12 == root


def test_causal_future_melody_cannot_change_the_past():
    mel = c_major_melody()
    sib = np.arange(len(mel)) % 16
    acc = RuleAccompanist(lookahead=2)
    base = run(acc, mel, sib)
    m = 40
    other = mel.copy()
    other[m:] = np.where(other[m:] >= NOTE_BASE, other[m:] + 6, other[m:])  # tritone away
    pert = run(acc, other, sib)
    np.testing.assert_array_equal(pert[: m + 2], base[: m + 2])
    assert (pert[m + 2 :] != base[m + 2 :]).any()


def test_key_follows_a_modulation():
    acc = RuleAccompanist(key_half_life_beats=8)
    mel = c_major_melody(64)
    run(acc, mel, np.arange(len(mel)) % 16)
    assert acc.key == (0, "maj")
    up = np.where(mel >= NOTE_BASE, mel + 6, mel)
    run(acc, np.concatenate([mel, up]), np.arange(2 * len(mel)) % 16)
    assert acc.key == (6, "maj")

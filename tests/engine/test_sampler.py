"""The engine's sampler: pitch drawn sharper than the strike, and a fixed key obeyed."""
import numpy as np

from engine.sampler import ControlledSampler
from models.tokens import BASS, CHORD, HOLD, NOTE_BASE, VOCAB_SIZES, chord_token


def bass_logits() -> np.ndarray:
    x = np.full(VOCAB_SIZES[BASS], -2.0, np.float32)
    x[HOLD] = 0.5
    x[NOTE_BASE + 40] = 1.0                   # the likely pitch (E2)
    x[NOTE_BASE + 41:NOTE_BASE + 60] = 0.0    # a long tail of plausible ones
    return x


def test_pitches_are_drawn_sharper_than_the_strike_and_the_rhythm_keeps_its_rate():
    s = ControlledSampler(seed=0, temperature=0.9, density=0.5, harmony_follow=0.0)
    draws = np.array([s(BASS, bass_logits()) for _ in range(4000)])
    onsets = draws[draws >= NOTE_BASE]
    # onset probability at T = 0.9 with no sharpening: the tail's mass counts fully
    z = bass_logits().astype(np.float64) / 0.9
    p = np.exp(z - z.max())
    p /= p.sum()
    assert abs(len(onsets) / len(draws) - p[NOTE_BASE:].sum()) < 0.03
    # pitch at T/3: the likely pitch wins far more often than softmax(z / 0.9) would give it
    plain = p[NOTE_BASE + 40] / p[NOTE_BASE:].sum()
    assert np.mean(onsets == NOTE_BASE + 40) > plain + 0.3


def test_a_fixed_key_steers_notes_and_chords_into_its_scale():
    scale = frozenset({6, 8, 10, 11, 1, 3, 5})                     # F# major
    logits = np.zeros(VOCAB_SIZES[BASS], np.float32)
    chords = np.zeros(VOCAB_SIZES[CHORD], np.float32)
    s = ControlledSampler(seed=1, temperature=1.0, density=1.0, harmony_follow=0.0)
    free = [s(BASS, logits) for _ in range(2000)]
    s.set_key(scale)
    fixed = [s(BASS, logits) for _ in range(2000)]
    in_key = lambda toks: np.mean([(t - NOTE_BASE) % 12 in scale for t in toks if t >= NOTE_BASE])  # noqa: E731
    assert in_key(free) < 0.7 and in_key(fixed) > 0.95
    c_major, fs_major = chord_token(0, "maj"), chord_token(6, "maj")
    picks = [s(CHORD, chords) for _ in range(3000)]
    assert picks.count(fs_major) > 5 * max(1, picks.count(c_major))
    s.set_key(None)
    assert in_key([s(BASS, logits) for _ in range(2000)]) < 0.7      # free again


def test_harmony_follow_changes_which_pitches_not_how_often_the_band_strikes():
    logits = bass_logits()
    rates, shares = {}, {}
    for hf in (0.0, 1.0):
        s = ControlledSampler(seed=4, temperature=0.9, density=0.5, harmony_follow=hf)
        for _ in range(8):
            s.observe_melody(NOTE_BASE + 67)          # the player sings G
        draws = np.array([s(BASS, logits) for _ in range(4000)])
        onsets = draws[draws >= NOTE_BASE]
        rates[hf] = len(onsets) / len(draws)
        shares[hf] = np.mean((onsets - NOTE_BASE) % 12 == 7)
    assert abs(rates[1.0] - rates[0.0]) < 0.03, rates
    assert shares[1.0] > shares[0.0] + 0.3, shares

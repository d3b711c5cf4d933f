"""The rule-based accompanist: the floor every learned model is compared against.

Per beat (4 sixteenths, starting where ``step_in_bar % 4 == 0``) it picks one diatonic
triad of the key estimated from the melody heard so far, and plays it as a block chord
on the beat: bass = the root (E2..Eb3), tenor/alto = third and fifth (E3..G4), held to
the next beat. It is online exactly like the model: the frame for time t sees the
melody only up to ``t - lookahead``.

- Key: Krumhansl-Kessler profiles correlated with a pitch-class histogram of the melody
  heard so far, each heard step adding 1 to its pitch class; older steps fade with a
  half-life of ``key_half_life_beats`` so the key follows a modulation.
- Triad: the diatonic triad (major key: I ii iii IV V vi vii°; minor: i ii° III iv V VI
  VII, the V major as in harmonic minor) whose tones cover most of the melody heard in
  the last beat (``window`` steps up to t - lookahead), minus the steps it leaves out;
  on a tie the chord already playing stays, then the order tonic, dominant,
  subdominant, the rest.
- Before any melody is heard it rests (chord stream CHORD_NONE).

``models.contract.Accompanist``: the engine can use it like the model.
Thread: one worker thread per instance.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from models.contract import Sampler
from models.tokens import CHORD_NONE, HOLD, NOTE_BASE, REST, STEPS_PER_BEAT, chord_token

# Krumhansl & Kessler (1982) probe-tone profiles, index 0 = tonic.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])

MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10, 11)  # natural minor plus the leading tone
# (degree offset, quality) in preference order for ties: I, V, IV, vi, ii, iii, vii°
MAJOR_TRIADS = ((0, "maj"), (7, "maj"), (5, "maj"), (9, "min"), (2, "min"), (4, "min"), (11, "dim"))
MINOR_TRIADS = ((0, "min"), (7, "maj"), (5, "min"), (8, "maj"), (3, "maj"), (10, "maj"), (2, "dim"))
TRIAD_INTERVALS = {"maj": (0, 4, 7), "min": (0, 3, 7), "dim": (0, 3, 6)}

BASS_LOW = 40  # E2: the bass root sits in E2..Eb3
VOICE_LOW = 52  # E3: third (and fifth above it) from here


def _zscore(x: np.ndarray) -> np.ndarray:
    z: np.ndarray = (x - x.mean(axis=-1, keepdims=True)) / x.std(axis=-1, keepdims=True)
    return z


# (24, 12): rows 0-11 major keys on tonic 0..11, rows 12-23 minor keys, z-scored so that
# a dot product with a z-scored histogram / 12 is the Pearson correlation.
_KEY_PROFILES = _zscore(
    np.stack([np.roll(MAJOR_PROFILE, k) for k in range(12)] + [np.roll(MINOR_PROFILE, k) for k in range(12)])
)


def estimate_key(hist: np.ndarray) -> tuple[int, str] | None:
    """(12,) pitch-class weights -> (tonic pitch class, "maj"|"min") by Krumhansl-Kessler
    correlation; None when the histogram is empty or flat."""
    hist = np.asarray(hist, dtype=np.float64)
    if hist.sum() <= 0 or np.ptp(hist) <= 1e-12 * hist.max():
        return None
    k = int(np.argmax(_KEY_PROFILES @ _zscore(hist)))
    return (k % 12, "maj" if k < 12 else "min")


def scale_pitch_classes(tonic: int, mode: str) -> frozenset[int]:
    """Pitch classes counted as "in key" (minor includes the raised seventh)."""
    return frozenset((tonic + i) % 12 for i in (MAJOR_SCALE if mode == "maj" else MINOR_SCALE))


def diatonic_triads(tonic: int, mode: str) -> list[tuple[int, str]]:
    """(root pitch class, quality) of the key's triads, in tie-break preference order."""
    return [((tonic + off) % 12, q) for off, q in (MAJOR_TRIADS if mode == "maj" else MINOR_TRIADS)]


def choose_triad(weights: np.ndarray, key: tuple[int, str], current: tuple[int, str] | None) -> tuple[int, str]:
    """The key's triad covering most melody weight (12,) (covered minus uncovered); ties keep
    ``current``, then follow the preference order of ``diatonic_triads``."""
    best, best_score = None, -np.inf
    cands = diatonic_triads(*key)
    if current in cands:
        cands = [current] + [c for c in cands if c != current]
    for root, q in cands:
        tones = [(root + i) % 12 for i in TRIAD_INTERVALS[q]]
        covered = float(weights[tones].sum())
        score = covered - (float(weights.sum()) - covered)
        if score > best_score + 1e-9:
            best, best_score = (root, q), score
    return best  # type: ignore[return-value]  # a key has triads and finite weights pick one


def voicing(root: int, quality: str) -> tuple[int, int, int]:
    """(bass, tenor, alto) MIDI pitches of a triad: root low, then third and the fifth above it."""
    iv = TRIAD_INTERVALS[quality]
    bass = BASS_LOW + (root - BASS_LOW) % 12
    third = VOICE_LOW + ((root + iv[1]) - VOICE_LOW) % 12
    fifth = third + ((root + iv[2]) - (root + iv[1])) % 12
    return bass, third, fifth


class RuleAccompanist:
    """Diatonic triads per beat from the key of the melody so far (see module docstring)."""

    def __init__(self, lookahead: int = 1, key_half_life_beats: float = 16.0, window: int = STEPS_PER_BEAT):
        if lookahead < 1 or window < 1 or key_half_life_beats <= 0:
            raise ValueError("lookahead and window must be >= 1, key_half_life_beats > 0")
        self.lookahead = lookahead
        self.window = window
        self._decay = 0.5 ** (1.0 / (key_half_life_beats * STEPS_PER_BEAT))
        self.reset("pop", "4/4")

    def reset(self, style: str, meter: str) -> None:
        self._hist = np.zeros(12)
        self._recent: deque[int] = deque(maxlen=self.window)
        self._pitch = -1  # melody pitch sounding at the last heard step
        self._chord: tuple[int, str] | None = None
        self._t = 0

    @property
    def key(self) -> tuple[int, str] | None:
        """The key estimated from the melody heard so far."""
        return estimate_key(self._hist)

    def _hear(self, token: int) -> None:
        if token >= NOTE_BASE:
            self._pitch = token - NOTE_BASE
        elif token != HOLD:
            self._pitch = -1
        self._hist *= self._decay
        if self._pitch >= 0:
            self._hist[self._pitch % 12] += 1.0
        self._recent.append(self._pitch)

    def advance(self, melody_token: int, step_in_bar: int, sampler: Sampler | None = None) -> np.ndarray:
        """melody token of time t - lookahead, metric position of t -> (chord, bass, tenor, alto)."""
        if self._t - self.lookahead >= 0:
            self._hear(int(melody_token))
        self._t += 1
        if step_in_bar % STEPS_PER_BEAT == 0:
            key = estimate_key(self._hist)
            weights = np.zeros(12)
            for p in self._recent:
                if p >= 0:
                    weights[p % 12] += 1.0
            if key is not None and weights.sum() > 0:
                self._chord = choose_triad(weights, key, self._chord)
            if self._chord is not None:
                b, t, a = voicing(*self._chord)
                return np.array(
                    [chord_token(*self._chord), NOTE_BASE + b, NOTE_BASE + t, NOTE_BASE + a], dtype=np.int64
                )
        if self._chord is None:
            return np.array([CHORD_NONE, REST, REST, REST], dtype=np.int64)
        return np.array([chord_token(*self._chord), HOLD, HOLD, HOLD], dtype=np.int64)

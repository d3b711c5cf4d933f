"""Key estimation from a pitch-class profile (Krumhansl-Kessler profiles, correlation).

Pure logic: ``estimate_key(weights)`` with weights (12,) (e.g. note durations per pitch
class over the last bars) -> "C major" / "A minor", or "" when there is no evidence;
``parse_key`` reads a key the player fixes ("D minor", "Bb", "F#m") and
``key_pitch_classes`` gives its scale.
"""
from __future__ import annotations

import numpy as np

from models.rules import scale_pitch_classes
from models.tokens import PITCH_NAMES

_SPELLINGS = {"C": 0, "B#": 0, "C#": 1, "Db": 1, "D": 2, "D#": 3, "Eb": 3, "E": 4, "Fb": 4, "E#": 5, "F": 5,
              "F#": 6, "Gb": 6, "G": 7, "G#": 8, "Ab": 8, "A": 9, "A#": 10, "Bb": 10, "B": 11, "Cb": 11}
_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def estimate_key(weights: np.ndarray) -> str:
    """weights: (12,) non-negative pitch-class weights -> key name ('' if all zero)."""
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (12,) or not np.isfinite(w).all() or w.sum() <= 0 or np.ptp(w) == 0:
        return ""
    best, name = -2.0, ""
    for root in range(12):
        for profile, mode in ((_MAJOR, "major"), (_MINOR, "minor")):
            r = float(np.corrcoef(w, np.roll(profile, root))[0, 1])
            if r > best:
                best, name = r, f"{PITCH_NAMES[root]} {mode}"
    return name


def parse_key(name: str) -> tuple[int, str]:
    """"D minor" / "Dm" / "d min" / "Bb" / "F# major" -> (tonic pitch class, "major"|"minor").
    Raises ValueError naming the text when it is not a key."""
    text = str(name).strip()
    parts = text.replace("-", " ").split()
    if not parts:
        raise ValueError(f"not a key: {name!r} (expected e.g. 'D minor' or 'Bb major')")
    tonic, rest = parts[0], " ".join(parts[1:]).lower()
    if len(tonic) >= 2 and tonic[-1] == "m" and tonic[:-1].capitalize() in _SPELLINGS and not rest:
        tonic, rest = tonic[:-1], "minor"
    tonic = tonic[0].upper() + tonic[1:]
    mode = {"": "major", "major": "major", "maj": "major", "minor": "minor", "min": "minor"}.get(rest)
    if tonic not in _SPELLINGS or mode is None:
        raise ValueError(f"not a key: {name!r} (expected e.g. 'D minor' or 'Bb major')")
    return _SPELLINGS[tonic], mode


def key_name(tonic: int, mode: str) -> str:
    """(tonic, mode) -> the canonical name, as ``estimate_key`` writes it."""
    return f"{PITCH_NAMES[tonic % 12]} {mode}"


def key_pitch_classes(tonic: int, mode: str) -> frozenset[int]:
    """The pitch classes in the key (minor includes the raised seventh), as the rule-based
    band counts them."""
    return scale_pitch_classes(tonic, "maj" if mode == "major" else "min")


def snap_to_scale(pitch: int, scale: frozenset[int] | None) -> int:
    """The nearest MIDI pitch whose class is in ``scale``; the pitch itself when there is
    no scale. A tie goes up: hummed notes sag more often than they overshoot, so the
    note meant is more often the one above."""
    if not scale or pitch % 12 in scale:
        return pitch
    for d in (1, 2, 3):
        for q in (pitch + d, pitch - d):
            if q % 12 in scale and 0 <= q <= 127:
                return q
    return pitch

"""Key estimation from a pitch-class profile (Krumhansl-Kessler profiles, correlation).

Pure logic: ``estimate_key(weights)`` with weights (12,) (e.g. note durations per pitch
class over the last bars) -> "C major" / "A minor", or "" when there is no evidence;
``parse_key`` reads a key the player fixes ("D minor", "Bb", "F#m") and
``key_pitch_classes`` gives its scale.
"""

from __future__ import annotations

import numpy as np

from models.rules import estimate_key as rules_estimate_key
from models.rules import scale_pitch_classes
from models.tokens import pitch_class_name

_SPELLINGS = {
    "C": 0,
    "B#": 0,
    "C#": 1,
    "Db": 1,
    "D": 2,
    "D#": 3,
    "Eb": 3,
    "E": 4,
    "Fb": 4,
    "E#": 5,
    "F": 5,
    "F#": 6,
    "Gb": 6,
    "G": 7,
    "G#": 8,
    "Ab": 8,
    "A": 9,
    "A#": 10,
    "Bb": 10,
    "B": 11,
    "Cb": 11,
}


def estimate_key(weights: np.ndarray) -> str:
    """weights: (12,) non-negative pitch-class weights -> key name ('' without evidence).
    The Krumhansl-Kessler correlation is the rule-based band's (``models.rules``)."""
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (12,) or not np.isfinite(w).all():
        return ""
    key = rules_estimate_key(w)
    return "" if key is None else key_name(key[0], "major" if key[1] == "maj" else "minor")


def parse_key(name: str) -> tuple[int, str]:
    """ "D minor" / "Dm" / "d min" / "Bb" / "F# major" -> (tonic pitch class, "major"|"minor").
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
    """(tonic, mode) -> the canonical name, as ``estimate_key`` writes it: the tonic
    spelled as its key signature writes it (G# minor, Db major)."""
    return f"{pitch_class_name(tonic, (tonic, mode))} {mode}"


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

"""The token vocabulary shared by the model, the data loaders and the engine.

A *frame* is one 16th-note step. It holds one token per stream, in this order:

    STREAMS = ("melody", "chord", "bass", "tenor", "alto")

- note streams (melody, bass, tenor, alto) distinguish onset, hold and rest:
  ``REST``, ``HOLD`` (the previous note sounds on), ``note_on(pitch)``.
- the chord stream carries the chord label sounding at that step:
  ``CHORD_UNKNOWN`` (the corpus has no labels, e.g. JSB; never a training
  target), ``CHORD_NONE`` ("N", no chord), or ``chord_token(root, quality)``.
- ``PAD`` marks "no token here" (before a stream starts under a delay pattern,
  or padding in a batch). It is never a target.

Per-frame conditioning (``meta``) is separate from the streams:
``(style_id, metric_id)`` where ``metric_id = meter_id * MAX_BAR_STEPS + step_in_bar``.
"""

from __future__ import annotations

from typing import Final

STREAMS: Final = ("melody", "chord", "bass", "tenor", "alto")
MELODY, CHORD, BASS, TENOR, ALTO = range(5)
NUM_STREAMS: Final = len(STREAMS)
ACCOMP_STREAMS: Final = (CHORD, BASS, TENOR, ALTO)
NOTE_STREAMS: Final = (MELODY, BASS, TENOR, ALTO)

PAD: Final = 0
# note streams
REST: Final = 1
HOLD: Final = 2
NOTE_BASE: Final = 3
NOTE_VOCAB: Final = NOTE_BASE + 128
# chord stream
CHORD_UNKNOWN: Final = 1
CHORD_NONE: Final = 2
CHORD_BASE: Final = 3
QUALITIES: Final = ("maj", "min", "7", "maj7", "min7", "dim", "aug", "sus4", "sus2", "hdim7", "dim7", "6")
CHORD_VOCAB: Final = CHORD_BASE + 12 * len(QUALITIES)

VOCAB_SIZES: Final = (NOTE_VOCAB, CHORD_VOCAB, NOTE_VOCAB, NOTE_VOCAB, NOTE_VOCAB)
MAX_VOCAB: Final = max(VOCAB_SIZES)

# Pitch classes of each quality, relative to the root (used by renderers, evaluation and
# the rule-based accompanist).
QUALITY_INTERVALS: Final = {
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "7": (0, 4, 7, 10),
    "maj7": (0, 4, 7, 11),
    "min7": (0, 3, 7, 10),
    "dim": (0, 3, 6),
    "aug": (0, 4, 8),
    "sus4": (0, 5, 7),
    "sus2": (0, 2, 7),
    "hdim7": (0, 3, 6, 10),
    "dim7": (0, 3, 6, 9),
    "6": (0, 4, 7, 9),
}
PITCH_NAMES: Final = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
# a letter's pitch class, before its accidental
NATURAL_PCS: Final = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}

STYLES: Final = ("pop", "folk", "chorale")
METERS: Final = ("4/4", "3/4", "6/8")
STEPS_PER_BEAT: Final = 4  # 16th-note grid; a "beat" is a quarter note
MAX_BAR_STEPS: Final = 16
METRIC_VOCAB: Final = len(METERS) * MAX_BAR_STEPS


def note_name(pitch: int) -> str:
    """Scientific pitch name of a MIDI note: 60 -> "C4", 54 -> "F#3"."""
    return f"{PITCH_NAMES[pitch % 12]}{pitch // 12 - 1}"


def note_on(pitch: int) -> int:
    if not 0 <= pitch < 128:
        raise ValueError(f"MIDI pitch out of range: {pitch}")
    return NOTE_BASE + pitch


def is_note_on(token: int) -> bool:
    return token >= NOTE_BASE


def token_pitch(token: int) -> int:
    """MIDI pitch of a note-on token."""
    if token < NOTE_BASE:
        raise ValueError(f"token {token} is not a note-on")
    return token - NOTE_BASE


def chord_token(root: int, quality: str) -> int:
    return CHORD_BASE + (root % 12) * len(QUALITIES) + QUALITIES.index(quality)


def chord_of_token(token: int) -> tuple[int, str] | None:
    """(root pitch class, quality) of a chord token; None for no/unknown chord."""
    if token < CHORD_BASE:
        return None
    root, q = divmod(token - CHORD_BASE, len(QUALITIES))
    return root, QUALITIES[q]


SHARP_NAMES: Final = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
FLAT_NAMES: Final = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
# tonic pitch classes of the keys written with sharps (the rest but C major / A minor
# with flats), as musicians usually write them: Db major not C#, G# minor not Ab
_SHARP_KEYS: Final = {
    "major": frozenset({7, 2, 9, 4, 11, 6}),  # G D A E B F#
    "minor": frozenset({4, 11, 6, 1, 8}),
}  # E B F# C# G#


def pitch_class_name(pc: int, key: tuple[int, str] | None = None) -> str:
    """A pitch class spelled in ``key`` ((tonic, "major"|"minor")): sharps in a sharp
    key (G# in C# minor), flats in a flat key (Ab in F minor), ``PITCH_NAMES`` in C major,
    A minor or without a key."""
    pc %= 12
    if key is None:
        return PITCH_NAMES[pc]
    tonic, mode = key[0] % 12, key[1]
    if (mode == "major" and tonic == 0) or (mode == "minor" and tonic == 9):
        return PITCH_NAMES[pc]
    return SHARP_NAMES[pc] if tonic in _SHARP_KEYS.get(mode, frozenset()) else FLAT_NAMES[pc]


def chord_name(token: int, key: tuple[int, str] | None = None) -> str:
    """The chord's name, its root spelled in ``key`` when one is given (G#m in C# minor)."""
    rq = chord_of_token(token)
    if rq is None:
        return "N.C." if token == CHORD_NONE else ""
    root, quality = rq
    suffix = {"maj": "", "min": "m", "hdim7": "m7b5"}.get(quality, quality)
    return pitch_class_name(root, key) + suffix


def chord_pitch_classes(token: int) -> frozenset[int]:
    rq = chord_of_token(token)
    if rq is None:
        return frozenset()
    root, quality = rq
    return frozenset((root + i) % 12 for i in QUALITY_INTERVALS[quality])


def meter_parts(meter: str) -> tuple[int, int]:
    """A meter's (numerator, denominator): (6, 8) for "6/8"."""
    num, den = (int(x) for x in meter.split("/"))
    return num, den


def bar_steps(meter: str) -> int:
    """16th steps in one bar of ``meter``."""
    num, den = meter_parts(meter)
    return num * 16 // den


def metric_id(meter: str, step_in_bar: int) -> int:
    return METERS.index(meter) * MAX_BAR_STEPS + (step_in_bar % bar_steps(meter))


def style_id(style: str) -> int:
    try:
        return STYLES.index(style)
    except ValueError:
        raise ValueError(f"unknown style {style!r}; choose one of {', '.join(STYLES)}") from None

"""Exact conversion between quantised notes and stream tokens, and the voice reduction.

Everything here works on the 16th grid. A quantised note is ``(pitch, start, end)`` in
steps, ``end`` exclusive, ``end > start``.

Note streams (melody, bass, tenor, alto) are monophonic: one token per step, ``REST``,
``HOLD`` or ``note_on(pitch)``. Encoding a list of non-overlapping notes and decoding the
tokens gives the same list back, exactly (a re-struck note of equal pitch stays two notes,
because the second one starts with a fresh note-on).

How sources become monophonic streams (the *reduction*, same for every corpus):

- melody: when two melody notes overlap, the later onset wins and cuts the earlier one;
  of notes starting on the same step the highest pitch wins (``monophonic``).
- accompaniment (POP909 PIANO track, Nottingham chord track) -> bass, tenor, alto
  (``reduce_accompaniment``): at each step take the accompaniment notes sounding there
  (two notes of the same pitch: the later onset cuts the earlier);
  bass = the lowest of them; alto = the highest of the rest that is below the melody
  pitch sounding at that step (any height when the melody rests); tenor = the next
  highest below alto. A stream's note lasts while the *same source note* stays selected,
  so a stream shows a new onset when the selection moves to another note, even one that
  was already sounding (e.g. the lowest note ends and the one above becomes the bass).
  Piano sustain pedal is ignored (the written note lengths are used).
- the chord stream holds a label per step: from annotations (POP909, ``harte_to_token``)
  or read off the block-chord pitch classes (Nottingham, ``identify_chord``).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from models.data.piece import Piece
from models.tokens import (
    ALTO,
    BASS,
    CHORD,
    CHORD_NONE,
    CHORD_UNKNOWN,
    HOLD,
    MELODY,
    NATURAL_PCS,
    NOTE_BASE,
    NUM_STREAMS,
    QUALITIES,
    QUALITY_INTERVALS,
    REST,
    STREAMS,
    TENOR,
    chord_token,
)

Note = tuple[int, int, int]  # (pitch, start_step, end_step), end exclusive
NOTE_STREAM_NAMES = tuple(STREAMS[i] for i in (MELODY, BASS, TENOR, ALTO))


# --------------------------------------------------------------------------- streams
def clean_notes(notes: list[Note], num_steps: int | None = None) -> list[Note]:
    """Clip notes to [0, num_steps), give zero-length notes one step, drop what falls outside."""
    out = []
    for p, s, e in notes:
        if e <= s:
            e = s + 1
        if s < 0:
            continue  # starts before the grid: its onset is unknown
        if num_steps is not None:
            if s >= num_steps:
                continue
            e = min(e, num_steps)
        out.append((int(p), int(s), int(e)))
    return out


def monophonic(notes: list[Note]) -> list[Note]:
    """One note at a time: a later onset cuts the sounding note; same-step onsets keep the highest pitch.

    Input notes must already have ``end > start``. Output is sorted by start, non-overlapping.
    """
    by_start: dict[int, Note] = {}
    for n in notes:
        cur = by_start.get(n[1])
        if cur is None or n[0] > cur[0]:
            by_start[n[1]] = n
    starts = sorted(by_start)
    out = []
    for i, s in enumerate(starts):
        p, _, e = by_start[s]
        if i + 1 < len(starts):
            e = min(e, starts[i + 1])
        out.append((p, s, e))
    return out


def cut_same_pitch(notes: list[Note]) -> list[Note]:
    """Polyphonic notes where two notes of one pitch never overlap (the later onset cuts)."""
    by_pitch: dict[int, list[Note]] = {}
    for n in notes:
        by_pitch.setdefault(n[0], []).append(n)
    out = []
    for group in by_pitch.values():
        out.extend(monophonic(group))
    out.sort(key=lambda n: (n[1], n[0]))
    return out


def notes_to_stream(notes: list[Note], num_steps: int) -> np.ndarray:
    """Non-overlapping notes -> (num_steps,) int16 tokens (REST / HOLD / note_on)."""
    tok = np.full(num_steps, REST, dtype=np.int16)
    for p, s, e in notes:
        if not 0 <= p < 128:
            raise ValueError(f"MIDI pitch out of range: {p}")
        tok[s] = NOTE_BASE + p
        tok[s + 1 : e] = HOLD
    return tok


def stream_to_notes(tokens: np.ndarray) -> list[Note]:
    """(T,) note-stream tokens -> notes. A HOLD with no note sounding is read as a rest."""
    tok = np.asarray(tokens)
    notes = []
    onsets = np.flatnonzero(tok >= NOTE_BASE)
    not_hold = np.flatnonzero(tok != HOLD)
    for s in onsets:
        k = np.searchsorted(not_hold, s, side="right")
        e = int(not_hold[k]) if k < len(not_hold) else len(tok)
        notes.append((int(tok[s]) - NOTE_BASE, int(s), e))
    return notes


def _runs_of_ids(sel: np.ndarray, pitch_of: np.ndarray) -> list[Note]:
    """(T,) selected source-note ids (-1 = none) -> notes spanning runs of one id."""
    t = len(sel)
    if t == 0:
        return []
    change = np.ones(t, dtype=bool)
    change[1:] = sel[1:] != sel[:-1]
    starts = np.flatnonzero(change)
    ends = np.append(starts[1:], t)
    return [(int(pitch_of[sel[s]]), int(s), int(e)) for s, e in zip(starts, ends) if sel[s] >= 0]


def sounding_pitch(notes: list[Note], num_steps: int) -> np.ndarray:
    """(num_steps,) int: pitch of the (monophonic) notes sounding at each step, -1 where none."""
    out = np.full(num_steps, -1, dtype=np.int64)
    for p, s, e in notes:
        out[s:e] = p
    return out


def reduce_accompaniment(notes: list[Note], melody: list[Note], num_steps: int) -> dict[str, list[Note]]:
    """Polyphonic accompaniment -> monophonic bass, tenor, alto (see the module docstring).

    notes: accompaniment notes (clean, may overlap); melody: the melody stream's notes.
    Returns {"bass": [...], "tenor": [...], "alto": [...]}.
    """
    notes = cut_same_pitch(notes)
    empty: dict[str, list[Note]] = {"bass": [], "tenor": [], "alto": []}
    if not notes or num_steps == 0:
        return empty
    ids = np.full((num_steps, 128), -1, dtype=np.int64)
    for i, (p, s, e) in enumerate(notes):
        ids[s:e, p] = i
    pitch_of = np.array([n[0] for n in notes], dtype=np.int64)
    rows = np.arange(num_steps)
    sounding = ids >= 0

    def pick(mask: np.ndarray, lowest: bool) -> tuple[np.ndarray, np.ndarray]:
        has = mask.any(axis=1)
        col = np.argmax(mask, axis=1) if lowest else 127 - np.argmax(mask[:, ::-1], axis=1)
        return np.where(has, ids[rows, col], -1), np.where(has, col, -1)

    bass_sel, bass_col = pick(sounding, lowest=True)
    rest = sounding.copy()
    rest[rows[bass_col >= 0], bass_col[bass_col >= 0]] = False
    mel = sounding_pitch(melody, num_steps)
    below = (np.arange(128)[None, :] < mel[:, None]) | (mel[:, None] < 0)
    rest &= below
    alto_sel, alto_col = pick(rest, lowest=False)
    rest[rows[alto_col >= 0], alto_col[alto_col >= 0]] = False
    tenor_sel, _ = pick(rest, lowest=False)
    return {
        "bass": _runs_of_ids(bass_sel, pitch_of),
        "tenor": _runs_of_ids(tenor_sel, pitch_of),
        "alto": _runs_of_ids(alto_sel, pitch_of),
    }


# --------------------------------------------------------------------------- chords

# Harte shorthand -> our quality. Qualities we lack map to the nearest triad/seventh that
# keeps the third: maj6 -> 6, min6 / minmaj7 -> min, sus4(b7) (7sus4) -> sus4, 9 -> 7,
# maj9 -> maj7, min9 -> min7, 11/13 -> 7. An inversion ("/3", "/b7") is dropped: the bass
# stream carries the bass note. Anything else falls back to min if it starts with "min",
# else maj.
HARTE_QUALITY = {
    "": "maj",
    "maj": "maj",
    "min": "min",
    "7": "7",
    "maj7": "maj7",
    "min7": "min7",
    "dim": "dim",
    "aug": "aug",
    "sus4": "sus4",
    "sus2": "sus2",
    "hdim7": "hdim7",
    "dim7": "dim7",
    "maj6": "6",
    "6": "6",
    "min6": "min",
    "minmaj7": "min",
    "sus4(b7)": "sus4",
    "9": "7",
    "maj9": "maj7",
    "min9": "min7",
    "11": "7",
    "13": "7",
    "5": "maj",
    "1": "maj",
}


def parse_root(name: str) -> int:
    """'C', 'F#', 'Bb', 'Cb' -> pitch class. Raises ValueError."""
    if not name or name[0].upper() not in NATURAL_PCS:
        raise ValueError(f"bad chord root {name!r}")
    pc = NATURAL_PCS[name[0].upper()]
    for ch in name[1:]:
        if ch == "#":
            pc += 1
        elif ch == "b":
            pc -= 1
        else:
            raise ValueError(f"bad chord root {name!r}")
    return pc % 12


def harte_to_token(label: str) -> int:
    """A Harte chord label ('C:maj7', 'A:min/b3', 'G:sus4(b7)', 'N') -> chord-stream token."""
    label = label.strip()
    if label in ("N", "X", ""):
        return CHORD_NONE
    root_s, _, qual = label.partition(":")
    qual = qual.split("/")[0]
    root = parse_root(root_s)
    q = HARTE_QUALITY.get(qual)
    if q is None:
        base = qual.split("(")[0]
        q = HARTE_QUALITY.get(base, "min" if base.startswith("min") else "maj")
    return chord_token(root, q)


_TEMPLATES = [
    (root, qi, sum(1 << ((root + i) % 12) for i in QUALITY_INTERVALS[q]))
    for root in range(12)
    for qi, q in enumerate(QUALITIES)
]


@lru_cache(maxsize=8192)
def identify_chord(pc_mask: int, bass_pc: int) -> int:
    """Chord token for a set of pitch classes (bit mask, bit i = pc i) and the bass pitch class.

    An exact template match wins; between equal matches (C6 = Am7) the one rooted on the
    bass wins. Otherwise the template with most shared and fewest missing/extra notes.
    Empty set -> CHORD_NONE.
    """
    if pc_mask == 0:
        return CHORD_NONE
    best, best_score = None, -1e9
    for root, qi, tmask in _TEMPLATES:
        common = bin(pc_mask & tmask).count("1")
        miss = bin(tmask & ~pc_mask).count("1")
        extra = bin(pc_mask & ~tmask).count("1")
        score = 2 * common - miss - extra + (0.5 if root == bass_pc else 0.0) - 0.001 * qi
        if score > best_score:
            best, best_score = (root, qi), score
    assert best is not None  # every template scores above the start
    return chord_token(best[0], QUALITIES[best[1]])


def chords_from_notes(notes: list[Note], num_steps: int) -> np.ndarray:
    """(num_steps,) int16 chord tokens read off block-chord notes sounding at each step."""
    mask = np.zeros(num_steps, dtype=np.int64)
    low = np.full(num_steps, 128, dtype=np.int64)
    for p, s, e in notes:
        mask[s:e] |= 1 << (p % 12)
        low[s:e] = np.minimum(low[s:e], p)
    out = np.empty(num_steps, dtype=np.int16)
    for t in range(num_steps):
        out[t] = identify_chord(int(mask[t]), int(low[t] % 12) if low[t] < 128 else -1)
    return out


# --------------------------------------------------------------------------- pieces
def encode_piece(
    name: str, style: str, meter: str, step_in_bar: np.ndarray, notes: dict[str, list[Note]], chords: np.ndarray | None
) -> Piece:
    """Quantised, reduced notes per note stream (+ chord tokens (T,) or None = unknown) -> Piece.

    T = len(step_in_bar). Each stream's notes must be non-overlapping and inside [0, T).
    """
    num_steps = len(step_in_bar)
    tokens = np.empty((num_steps, NUM_STREAMS), dtype=np.int16)
    for s_name in NOTE_STREAM_NAMES:
        tokens[:, STREAMS.index(s_name)] = notes_to_stream(notes.get(s_name, []), num_steps)
    tokens[:, CHORD] = CHORD_UNKNOWN if chords is None else chords
    return Piece(name=name, style=style, meter=meter, tokens=tokens, step_in_bar=np.asarray(step_in_bar, dtype=np.int8))


def decode_piece(piece: Piece) -> dict[str, list[Note]]:
    """Piece -> {stream name: [(pitch, start_step, end_step), ...]} for the four note streams."""
    return {name: stream_to_notes(piece.tokens[:, STREAMS.index(name)]) for name in NOTE_STREAM_NAMES}


def decode_chords(piece: Piece) -> list[tuple[int, int, int]]:
    """Chord stream -> [(chord token, start_step, end_step)] runs of one label (unknown omitted)."""
    col = piece.tokens[:, CHORD]
    out: list[tuple[int, int, int]] = []
    t = len(col)
    if t == 0:
        return out
    change = np.ones(t, dtype=bool)
    change[1:] = col[1:] != col[:-1]
    starts = np.flatnonzero(change)
    ends = np.append(starts[1:], t)
    for s, e in zip(starts, ends):
        if col[s] != CHORD_UNKNOWN:
            out.append((int(col[s]), int(s), int(e)))
    return out


class QuantisedSong:
    """A song after quantisation and voice reduction, before tokens.

    notes: {stream name: non-overlapping notes} for the four note streams;
    chords: (T,) int16 chord tokens or None (corpus has no labels);
    step_in_bar: (T,) int metric position of each step.
    ``to_piece()`` encodes it; ``decode_piece(song.to_piece()) == song.notes`` exactly.
    """

    __slots__ = ("name", "style", "meter", "step_in_bar", "notes", "chords")

    def __init__(
        self,
        name: str,
        style: str,
        meter: str,
        step_in_bar: np.ndarray,
        notes: dict[str, list[Note]],
        chords: np.ndarray | None,
    ) -> None:
        self.name, self.style, self.meter = name, style, meter
        self.step_in_bar, self.notes, self.chords = step_in_bar, notes, chords

    @property
    def num_steps(self) -> int:
        return len(self.step_in_bar)

    def to_piece(self) -> Piece:
        return encode_piece(self.name, self.style, self.meter, self.step_in_bar, self.notes, self.chords)

"""Listening measures: does the band's harmony meet the melody on time?

Pure functions over the 16th grid (times are in 16th steps; a beat is a quarter note,
``STEPS_PER_BEAT`` steps). They take what any accompanist produced, so the same code
measures the live model, an offline render, the rule-based floor and the songs' own
human parts. ``liveband.listening`` feeds them the note events the engine renders.

- ``melody_in_chord`` (ReaLchords' measure): per frame where the melody sounds (onset or
  held) and a chord is labelled, is the melody's pitch class a tone of the chord.
  ReaLchords averages it per song, then over songs (``song_mean``).
- ``harmony_counts``: ``now`` = melody onsets whose pitch class sounds in the band at
  the onset (a band note struck on the onset counts); ``late`` = the same one beat after
  the onset; ``clash`` = band onsets a semitone or a major 7th (pitch-class interval
  1 or 11) from the melody note sounding there, out of band onsets under a sounding
  melody note.
- ``chord_lengths`` / ``length_entropy``: ReaLchords' rhythm-diversity measure, the
  entropy (nats) of the distribution of chord lengths (runs of one chord label).
- the perturbation protocol (``perturb_excerpt``, ``per_beat_melody_in_chord``,
  ``beats_to_recover``): the melody of a 64-beat excerpt jumps ``shift`` semitones at
  beat 17; the per-beat melody-in-chord curve shows how long the band takes to follow.

Also two ``models.contract.Accompanist`` adapters the engine can render: one that
replays given frames (a human part, an offline render) and one that records what
another accompanist generates.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable, NamedTuple, Sequence

import numpy as np

from models.contract import Accompanist, Sampler
from models.data.piece import Piece
from models.tokens import (
    CHORD_BASE,
    CHORD_NONE,
    HOLD,
    MELODY,
    NOTE_BASE,
    REST,
    STEPS_PER_BEAT,
    chord_pitch_classes,
)

EXCERPT_BEATS = 64  # ReaLchords' perturbation excerpts
JUMP_BEAT = 17  # the melody jumps at the start of this beat (1-based)
PRE_JUMP_BEATS = 8  # the pre-jump level: these beats just before the jump
RECOVER_SHARE = 0.9  # recovered: a beat back at >= this share of the pre-jump level


class Note(NamedTuple):
    start: float  # 16th steps
    end: float  # exclusive
    pitch: int


# --------------------------------------------------------------------------- grid
def sounding_pitches(melody: np.ndarray) -> np.ndarray:
    """(T,) melody tokens -> (T,) MIDI pitch sounding at each frame, -1 where silent."""
    out = np.full(len(melody), -1, np.int64)
    cur = -1
    for t, x in enumerate(np.asarray(melody, dtype=np.int64)):
        if x >= NOTE_BASE:
            cur = int(x) - NOTE_BASE
        elif x != HOLD:
            cur = -1
        out[t] = cur
    return out


def notes_from_tokens(melody: np.ndarray) -> list[Note]:
    """Note-stream tokens (REST / HOLD / note-on) -> notes in steps; a HOLD after a rest is silent."""
    notes: list[Note] = []
    start, pitch = -1, -1
    toks = np.asarray(melody, dtype=np.int64)
    for t, x in enumerate(toks):
        if x == HOLD and pitch >= 0:
            continue
        if pitch >= 0:
            notes.append(Note(start, t, pitch))
        start, pitch = (t, int(x) - NOTE_BASE) if x >= NOTE_BASE else (-1, -1)
    if pitch >= 0:
        notes.append(Note(start, len(toks), pitch))
    return notes


def melody_in_chord(melody: np.ndarray, chords: np.ndarray) -> tuple[int, int]:
    """(frames whose sounding melody pitch class is in the chord, frames where a melody
    note sounds and a real chord is labelled). N / unknown chords are not counted."""
    pitch = sounding_pitches(melody)
    chords = np.asarray(chords, dtype=np.int64)
    n = min(len(pitch), len(chords))
    hits = total = 0
    for t in range(n):
        c = int(chords[t])
        if pitch[t] < 0 or c < CHORD_BASE:
            continue
        total += 1
        hits += (int(pitch[t]) % 12) in chord_pitch_classes(c)
    return hits, total


def per_beat_melody_in_chord(melody: np.ndarray, chords: np.ndarray, beats: int) -> np.ndarray:
    """(beats, 2) int: per beat from frame 0, (frames in chord, frames counted)."""
    out = np.zeros((beats, 2), np.int64)
    for b in range(beats):
        sl = slice(b * STEPS_PER_BEAT, (b + 1) * STEPS_PER_BEAT)
        out[b] = melody_in_chord(np.asarray(melody)[sl], np.asarray(chords)[sl])
    return out


def song_mean(pairs: Iterable[tuple[int, int]]) -> float | None:
    """Mean over songs of each song's hits / total (songs with nothing counted skipped)."""
    rs = [h / n for h, n in pairs if n]
    return round(float(np.mean(rs)), 4) if rs else None


# --------------------------------------------------------------------------- notes
def _sounding(notes: Sequence[Note]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not notes:
        z = np.zeros(0)
        return z, z, np.zeros(0, np.int64)
    a = np.asarray(notes, dtype=np.float64)
    return a[:, 0], a[:, 1], a[:, 2].astype(np.int64) % 12


def pcs_at(starts: np.ndarray, ends: np.ndarray, pcs: np.ndarray, t: float) -> set[int]:
    """Pitch classes of the notes sounding at ``t`` (start <= t < end)."""
    return set(pcs[(starts <= t) & (ends > t)].tolist())


def harmony_counts(
    melody: Sequence[Note], band: Sequence[Note], late_steps: float = STEPS_PER_BEAT
) -> dict[str, tuple[int, int]]:
    """{"now": (hits, melody onsets), "late": (hits, melody onsets), "clash": (clashes,
    band onsets under a melody note)} for one song; see the module docstring."""
    bs, be, bp = _sounding(band)
    ms, me, mp = _sounding(melody)
    now = late = 0
    for s, pc in zip(ms, mp):
        now += int(pc) in pcs_at(bs, be, bp, s)
        late += int(pc) in pcs_at(bs, be, bp, s + late_steps)
    clash = under = 0
    for s, pc in zip(bs, bp):
        heard = (ms <= s) & (me > s)
        if not heard.any():
            continue
        mel_pc = int(mp[np.nonzero(heard)[0][-1]])  # monophonic; the latest onset wins
        under += 1
        clash += (int(pc) - mel_pc) % 12 in (1, 11)
    return {"now": (now, len(ms)), "late": (late, len(ms)), "clash": (clash, under)}


# --------------------------------------------------------------------------- chord rhythm
def chord_lengths(chords: np.ndarray) -> list[int]:
    """Lengths in frames of the runs of one real chord label (N / unknown end a run)."""
    out: list[int] = []
    run, prev = 0, -1
    for c in np.asarray(chords, dtype=np.int64):
        c = int(c)
        if c == prev and c >= CHORD_BASE:
            run += 1
            continue
        if run:
            out.append(run)
        run, prev = (1, c) if c >= CHORD_BASE else (0, -1)
    if run:
        out.append(run)
    return out


def length_entropy(lengths: Iterable[int]) -> float | None:
    """Entropy in nats of the distribution of the given chord lengths (None if empty)."""
    counts = np.array(list(Counter(lengths).values()), dtype=np.float64)
    if not counts.size:
        return None
    p = counts / counts.sum()
    return round(float(-(p * np.log(p)).sum()) + 0.0, 4)


# --------------------------------------------------------------------------- perturbation
def excerpt_start(piece: Piece, beats: int = EXCERPT_BEATS) -> int | None:
    """The downbeat at or before the melody's first note where a ``beats``-beat excerpt
    starts; None if the song is too short or the melody never starts."""
    onsets = np.nonzero(piece.tokens[:, MELODY] >= NOTE_BASE)[0]
    if not onsets.size:
        return None
    t = int(onsets[0])
    while t > 0 and piece.step_in_bar[t] != 0:
        t -= 1
    return t if t + beats * STEPS_PER_BEAT <= len(piece) else None


def perturb_excerpt(piece: Piece, shift: int, beats: int = EXCERPT_BEATS, jump_beat: int = JUMP_BEAT) -> Piece | None:
    """A ``beats``-beat excerpt of ``piece`` whose melody notes from beat ``jump_beat`` on
    are transposed by ``shift`` semitones (a note held across the jump keeps its pitch);
    None if the song is too short or a pitch would leave 0..127."""
    t0 = excerpt_start(piece, beats)
    if t0 is None:
        return None
    tok = piece.tokens[t0 : t0 + beats * STEPS_PER_BEAT].astype(np.int64)
    j = (jump_beat - 1) * STEPS_PER_BEAT
    mel = tok[:, MELODY]
    on = np.zeros(len(mel), bool)
    on[j:] = mel[j:] >= NOTE_BASE
    p = mel[on] - NOTE_BASE + shift
    if p.size and (p.min() < 0 or p.max() > 127):
        return None
    mel[on] = p + NOTE_BASE
    return Piece(
        f"{piece.name}@{shift:+d}",
        piece.style,
        piece.meter,
        tok.astype(np.int16),
        piece.step_in_bar[t0 : t0 + len(tok)].copy(),
    )


def beats_to_recover(
    curve: Sequence[float | None],
    jump_beat: int = JUMP_BEAT,
    pre_beats: int = PRE_JUMP_BEATS,
    share: float = RECOVER_SHARE,
) -> int | None:
    """Counting the jump's own beat as 1, the first beat at or after the jump whose value is
    >= ``share`` x the mean of the ``pre_beats`` beats before it; None if none does (or
    there is no pre-jump level)."""
    j = jump_beat - 1
    pre = [x for x in curve[max(0, j - pre_beats) : j] if x is not None]
    if not pre:
        return None
    level = share * float(np.mean(pre))
    for k, x in enumerate(curve[j:]):
        if x is not None and x >= level:
            return k + 1
    return None


# --------------------------------------------------------------------------- adapters
class ReplayAccompanist:
    """Plays given frames (chord, bass, tenor, alto) whatever the melody: the human part or
    an offline render rendered by the engine exactly as a live model's frames are. Past the
    end it rests (no chord)."""

    lookahead = 1

    def __init__(self, frames: np.ndarray) -> None:
        f = np.asarray(frames, dtype=np.int64)
        if f.ndim != 2 or f.shape[1] != 4:
            raise ValueError(f"frames must be (T, 4) (chord, bass, tenor, alto), got {f.shape}")
        self.frames = f
        self._t = 0

    def reset(self, style: str, meter: str) -> None:
        self._t = 0

    def advance(self, melody_token: int, step_in_bar: int, sampler: Sampler) -> np.ndarray:
        t, self._t = self._t, self._t + 1
        if t < len(self.frames):
            frame: np.ndarray = self.frames[t].copy()
            return frame
        return np.array([CHORD_NONE, REST, REST, REST], np.int64)


class RecordingAccompanist:
    """Wraps an Accompanist and keeps every frame it produced since the last reset."""

    def __init__(self, inner: Accompanist) -> None:
        self.inner = inner
        self.lookahead = int(inner.lookahead)
        self.pattern = getattr(inner, "pattern", None)  # the engine reads when each cell is drawn
        self.frames: list[np.ndarray] = []

    def reset(self, style: str, meter: str) -> None:
        self.frames = []
        self.inner.reset(style, meter)

    def advance(self, melody_token: int, step_in_bar: int, sampler: Sampler) -> np.ndarray:
        out = np.asarray(self.inner.advance(melody_token, step_in_bar, sampler), dtype=np.int64)
        self.frames.append(out.copy())
        return out

    def prime_melody(self, tokens: Sequence[int]) -> None:
        """Forwarded to an offline accompanist (see ``models.contract.prime_melody``)."""
        self.inner.prime_melody(tokens)  # type: ignore[attr-defined]

    def recorded(self) -> np.ndarray:
        return np.array(self.frames, dtype=np.int64).reshape(-1, 4)


def ratio(hits: float, total: float) -> float | None:
    return round(float(hits) / float(total), 4) if total else None


__all__ = [
    "Note",
    "sounding_pitches",
    "notes_from_tokens",
    "melody_in_chord",
    "per_beat_melody_in_chord",
    "song_mean",
    "harmony_counts",
    "chord_lengths",
    "length_entropy",
    "excerpt_start",
    "perturb_excerpt",
    "beats_to_recover",
    "ReplayAccompanist",
    "RecordingAccompanist",
    "ratio",
]

"""Reading a melody from a MIDI file, and fitting it into the model's pitch range.

Positions are kept in quarter-note beats (not seconds), so the engine can play the
melody at the file's tempo or at any tempo the user asks for.

Which track is the melody: a track named ``MELODY`` (any case, as in POP909) wins;
otherwise the highest-pitched track that is mostly monophonic (at most 20% of its
notes overlap another note), ignoring the drum channel; otherwise the highest track.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.clock import METERS

# The pitch span the model is trained on (melodies of the corpora, transposed over
# 12 keys). An accompanist may declare its own ``melody_range``.
DEFAULT_MELODY_RANGE = (52, 93)


class MelodyFileError(ValueError):
    """The file cannot give a melody; the message is one line for the user."""


@dataclass(frozen=True)
class MelodyNote:
    start: float  # quarter-note beats from the start of the file
    end: float
    pitch: int
    velocity: int = 90


@dataclass(frozen=True)
class Melody:
    notes: tuple[MelodyNote, ...]
    tempo: float | None  # BPM of the file's first tempo (None: file has none)
    meter: str | None  # "4/4" / "3/4" / "6/8" / "12/8" when the file says so and we support it
    source_meter: str | None  # the file's own time signature, e.g. "5/4"
    track: str  # name (or index) of the track taken
    tempo_changes: int = 0  # later tempo changes the engine ignores

    @property
    def end_beat(self) -> float:
        return max((n.end for n in self.notes), default=0.0)


def _track_notes(track, tpb: int) -> list[tuple[float, float, int, int, int]]:
    """(start, end, pitch, velocity, channel) in beats for one mido track."""
    notes = []
    open_: dict[tuple[int, int], tuple[int, int]] = {}
    tick = 0
    for msg in track:
        tick += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            key = (msg.channel, msg.note)
            if key in open_:  # re-struck without a release: end the old one here
                t0, vel = open_.pop(key)
                notes.append((t0 / tpb, tick / tpb, msg.note, vel, msg.channel))
            open_[key] = (tick, msg.velocity)
        elif msg.type == "note_off" or (msg.type == "note_on" and msg.velocity == 0):
            key = (msg.channel, msg.note)
            if key in open_:
                t0, vel = open_.pop(key)
                notes.append((t0 / tpb, tick / tpb, msg.note, vel, msg.channel))
    for (ch, pitch), (t0, vel) in open_.items():  # never released: end at the track's end
        notes.append((t0 / tpb, max(tick, t0 + tpb // 4) / tpb, pitch, vel, ch))
    notes.sort()
    return notes


def _overlap_ratio(notes) -> float:
    if len(notes) < 2:
        return 0.0
    overlaps = sum(1 for a, b in zip(notes, notes[1:]) if b[0] < a[1] - 1e-6)
    return overlaps / (len(notes) - 1)


def _monophonic(notes: list[tuple[float, float, int, int, int]]) -> list[MelodyNote]:
    """The melody of a track's notes (sorted by start): a note ends where the next one
    starts, and of notes starting together the highest is kept (the tune usually sits on
    top). One pass: linear in the notes, as a file may hold tens of thousands."""
    mono_notes: list[MelodyNote] = []
    later = 0  # the first note starting after this one (the starts are sorted: it only moves on)
    for i, (s, e, p, v, _) in enumerate(notes):
        later = max(later, i + 1)
        while later < len(notes) and notes[later][0] <= s + 1e-9:
            later += 1
        if later < len(notes):
            e = min(e, notes[later][0])
        if mono_notes and abs(mono_notes[-1].start - s) < 1e-9:
            if p <= mono_notes[-1].pitch:
                continue
            mono_notes.pop()
        if e > s:
            mono_notes.append(MelodyNote(s, e, p, v))
    return mono_notes


def read_melody_midi(path: str | Path) -> Melody:
    """The melody of a MIDI file. MelodyFileError (one line) for a corrupt or note-less file."""
    import mido

    path = Path(path)
    if not path.is_file():
        raise MelodyFileError(f"{path}: no such file")
    try:
        mid = mido.MidiFile(str(path))
    except Exception as exc:  # mido raises many types (OSError, EOFError, ValueError, KeyError)
        raise MelodyFileError(f"{path}: not a readable MIDI file ({type(exc).__name__}: {exc})") from None
    if mid.type == 2:
        raise MelodyFileError(f"{path}: MIDI type 2 (independent sequences) is not supported")
    tpb = mid.ticks_per_beat
    if tpb < 0:  # mido reads the header's division as signed: negative is SMPTE frames
        raise MelodyFileError(
            f"{path}: SMPTE time division (frames per second) is not supported; save the file with ticks per beat"
        )
    if tpb == 0:
        raise MelodyFileError(f"{path}: the MIDI header gives 0 ticks per beat (a damaged file)")
    tempos: list[tuple[int, float]] = []
    sigs: list[tuple[int, str]] = []
    candidates = []
    for idx, track in enumerate(mid.tracks):
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "set_tempo":
                # 0 us a beat (a damaged file) read as the shortest, 1 us: an absurd tempo,
                # folded into the band's range with a note like any other (band_timing)
                tempos.append((tick, mido.tempo2bpm(max(msg.tempo, 1))))
            elif msg.type == "time_signature":
                sigs.append((tick, f"{msg.numerator}/{msg.denominator}"))
        notes = [n for n in _track_notes(track, tpb) if n[4] != 9]
        if notes:
            candidates.append((idx, track.name or f"track {idx}", notes))
    if not candidates:
        raise MelodyFileError(f"{path}: the file has no notes to accompany")
    named = [c for c in candidates if c[1].strip().upper() == "MELODY"]
    if named:
        chosen = named[0]
    else:
        mono = [c for c in candidates if _overlap_ratio(c[2]) <= 0.2]
        pool = mono or candidates
        chosen = max(pool, key=lambda c: float(np.mean([n[2] for n in c[2]])))
    notes = chosen[2]
    mono_notes = _monophonic(notes)
    if not mono_notes:  # every note was zero-length
        raise MelodyFileError(f"{path}: the file has no notes to accompany")
    tempos.sort()
    sigs.sort()
    tempo = tempos[0][1] if tempos else None
    src_meter = sigs[0][1] if sigs else None
    meter = src_meter if src_meter in METERS else ({"2/4": "4/4", "2/2": "4/4"}.get(src_meter or ""))
    changes = len({round(b, 3) for _, b in tempos}) - 1 if tempos else 0
    return Melody(tuple(mono_notes), tempo, meter, src_meter, chosen[1], max(0, changes))


def fit_to_range(melody: Melody, pitch_range: tuple[int, int] = DEFAULT_MELODY_RANGE) -> tuple[Melody, int]:
    """Transpose by whole octaves so that as many notes as possible lie in ``pitch_range``
    (inclusive); among equals, the smallest shift. Returns (melody, semitones moved)."""
    lo, hi = pitch_range
    pitches = np.array([n.pitch for n in melody.notes])
    if pitches.size == 0 or (pitches.min() >= lo and pitches.max() <= hi):
        return melody, 0
    best = min(range(-5, 6), key=lambda k: (int(((pitches + 12 * k < lo) | (pitches + 12 * k > hi)).sum()), abs(k)))
    shift = 12 * best
    if shift == 0:
        return melody, 0
    notes = tuple(MelodyNote(n.start, n.end, min(127, max(0, n.pitch + shift)), n.velocity) for n in melody.notes)
    return Melody(notes, melody.tempo, melody.meter, melody.source_meter, melody.track, melody.tempo_changes), shift

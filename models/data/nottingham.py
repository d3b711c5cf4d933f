"""Nottingham loader: melody (MIDI track 0) vs block chords (track 1).

``MIDI/X.mid`` files: two unnamed tracks, time-signature meta event, bars start at tick 0.
Ticks convert to 16th steps exactly (``tick * 4 / ticks_per_quarter``; the rare triplet
tick snaps to the nearest step). Bass/tenor/alto come from the chord notes through the
common reduction (``encode.reduce_accompaniment``); the chord label at each step is read
off the pitch classes sounding in the chord track (``encode.chords_from_notes``).

Meters: 4/4 and 2/2 -> "4/4"; 2/4 -> "4/4" with 8-step bars (its downbeats are 4/4
downbeats and half-bars); 3/4 -> "3/4"; 6/8 -> "6/8". Others (9/8, 3/2, 6/4, a change of
meter inside the tune) are skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from models.data.encode import QuantisedSong, chords_from_notes, clean_notes, monophonic, reduce_accompaniment
from models.data.piece import LoadResult
from models.data.pop909 import SongError

STYLE = "folk"
# (numerator, denominator) -> (meter token, steps per bar)
METER_MAP = {(4, 4): ("4/4", 16), (2, 2): ("4/4", 16), (2, 4): ("4/4", 8), (3, 4): ("3/4", 12), (6, 8): ("6/8", 12)}


def _notes(track: Any, tpq: int) -> list[tuple[int, int, int]]:
    a = track.notes.numpy()
    on = np.floor(a["time"] * 4 / tpq + 0.5).astype(np.int64)
    off = np.floor((a["time"] + a["duration"]) * 4 / tpq + 0.5).astype(np.int64)
    return clean_notes(list(zip(a["pitch"].tolist(), on.tolist(), off.tolist())))


def quantise_song(path: str | Path, name: str | None = None) -> QuantisedSong:
    """One Nottingham-format MIDI file -> its quantised, reduced notes. Raises SongError."""
    import symusic

    path = Path(path)
    name = name or f"nottingham/{path.stem}"
    try:
        score: Any = symusic.Score(str(path))  # symusic's stubs lack its attributes
    except Exception as exc:  # symusic raises ValueError/RuntimeError for broken files
        raise SongError(f"corrupt MIDI: {path.name}: {exc}") from None
    sigs = {(ts.numerator, ts.denominator) for ts in score.time_signatures} or {(4, 4)}
    if len(sigs) > 1:
        raise SongError(f"unsupported meter: changes inside the tune ({sorted(sigs)})")
    sig = sigs.pop()
    if sig not in METER_MAP:
        raise SongError(f"unsupported meter: {sig[0]}/{sig[1]}")
    meter, bar = METER_MAP[sig]
    tracks = [t for t in score.tracks if len(t.notes)]
    if len(tracks) < 2:
        raise SongError(f"no chord track in {path.name} (need melody + chords tracks)")
    tpq = score.ticks_per_quarter
    melody = monophonic(_notes(tracks[0], tpq))
    chords = _notes(tracks[1], tpq)
    if not melody:
        raise SongError(f"empty melody track in {path.name}")
    num_steps = max(e for _, _, e in melody + chords)
    notes = {"melody": melody, **reduce_accompaniment(chords, melody, num_steps)}
    step_in_bar = (np.arange(num_steps) % bar).astype(np.int8)
    return QuantisedSong(name, STYLE, meter, step_in_bar, notes, chords_from_notes(chords, num_steps))


def midi_files(folder: str | Path) -> list[Path]:
    """The two-track tune files of a Nottingham-format folder (``folder/MIDI/*.mid`` or ``folder/*.mid``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"Nottingham folder not found: {folder}")
    if (folder / "MIDI").is_dir():
        folder = folder / "MIDI"
    files = sorted(folder.glob("*.mid"))
    if not files:
        raise FileNotFoundError(f"no Nottingham MIDI files (*.mid) in {folder}")
    return files


def load_nottingham(folder: str | Path, limit: int | None = None) -> LoadResult:
    """Load every tune of a Nottingham-format folder; bad tunes are skipped and counted."""
    result = LoadResult()
    files = midi_files(folder)
    if limit is not None:
        files = files[:limit]
    for f in files:
        try:
            result.pieces.append(quantise_song(f).to_piece())
        except ValueError as exc:
            result.skipped.append((f"nottingham/{f.stem}", str(exc)))
    return result

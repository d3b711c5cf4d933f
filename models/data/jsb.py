"""JSB chorales loader (``Jsb16thSeparated.json`` format).

The file is ``{"train": [...], "valid": [...], ...}``; a chorale is a list of 16th steps,
each ``[soprano, alto, tenor, bass]`` MIDI pitches, ``-1`` = silent. Soprano -> melody,
alto -> alto, tenor -> tenor, bass -> bass; the chord stream is CHORD_UNKNOWN (never a
target). The JSON cannot tell a held note from a re-struck one, so equal consecutive
pitches in a voice are one held note (HOLD tokens); the HOLD/onset choice is therefore
fully determined by the data, which matters when comparing likelihoods with papers that
model pitches per step. Meter is 4/4 with step 0 on a downbeat.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from models.data.encode import Note, QuantisedSong
from models.data.piece import LoadResult

STYLE = "chorale"
VOICES = {"melody": 0, "alto": 1, "tenor": 2, "bass": 3}  # stream -> column in a JSON step


def voice_notes(column: np.ndarray) -> list[Note]:
    """(T,) pitches (-1 silent) -> notes: runs of one pitch are one held note."""
    notes = []
    t = len(column)
    start = 0
    for i in range(1, t + 1):
        if i == t or column[i] != column[start]:
            if column[start] >= 0:
                notes.append((int(column[start]), start, i))
            start = i
    return notes


def quantise_chorale(steps: list[Any], name: str) -> QuantisedSong:
    """One chorale (list of [S, A, T, B] steps) -> quantised notes. Raises ValueError."""
    arr = np.asarray(steps)
    if arr.ndim != 2 or arr.shape[1] != 4 or len(arr) == 0:
        raise ValueError(f"{name}: a chorale must be a non-empty list of [S, A, T, B] steps")
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.equal(np.mod(arr, 1), 0)):
            raise ValueError(f"{name}: pitches must be integers")
        arr = arr.astype(np.int64)
    if arr.min() < -1 or arr.max() > 127:
        raise ValueError(f"{name}: pitch outside -1..127")
    notes = {stream: voice_notes(arr[:, col]) for stream, col in VOICES.items()}
    step_in_bar = (np.arange(len(arr)) % 16).astype(np.int8)
    return QuantisedSong(name, STYLE, "4/4", step_in_bar, notes, None)


def read_split(json_path: str | Path, split: str) -> list[Any]:
    """The list of chorales of one split. Raises FileNotFoundError / ValueError with one clear line."""
    path = Path(json_path)
    if not path.is_file():
        raise FileNotFoundError(f"JSB file not found: {path}")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a Jsb16thSeparated-format JSON file ({exc})") from None
    if not isinstance(data, dict) or split not in data:
        have = ", ".join(data) if isinstance(data, dict) else "none"
        raise ValueError(f"{path}: no split {split!r} (splits: {have})")
    songs: list[Any] = data[split]
    return songs


def load_jsb(json_path: str | Path, split: str, limit: int | None = None) -> LoadResult:
    """Load one split; names are "jsb/<split>/<index>". Bad chorales are skipped and counted."""
    result = LoadResult()
    chorales = read_split(json_path, split)
    if limit is not None:
        chorales = chorales[:limit]
    for i, steps in enumerate(chorales):
        name = f"jsb/{split}/{i}"
        try:
            result.pieces.append(quantise_chorale(steps, name).to_piece())
        except (ValueError, TypeError) as exc:
            result.skipped.append((name, str(exc)))
    return result

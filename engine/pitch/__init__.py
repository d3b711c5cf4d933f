"""Hum to band: pitch tracking (CREPE, PESTO), note segmentation.

Notes come out as ``engine.quantiser.MelodyEvent``, the one event type every melody
source produces. ``transcribe_wav`` turns a hummed/sung file into notes; ``HumTracker`` does the
same live, block by block (``engine.mic_input.MicInput`` runs it on the microphone).
Heavy modules (torch, onnxruntime) load only when a tracker is built.
"""

from __future__ import annotations

import os
from typing import Callable


def transcribe_wav(
    path: str | os.PathLike,
    tracker: str = "pesto",
    key: int | None = None,
    scale: str = "major",
    notices: list[str] | None = None,
    progress: Callable[[float, float], None] | None = None,
) -> list[tuple[int, float, float, int]]:
    """A hummed/sung WAV -> notes (pitch, start s, end s, velocity), unquantised.

    Runs the live HumTracker over the file (the same code path as the microphone), and
    names each note by the median pitch over its whole length (the live path must
    commit to a pitch early; a file need not). Raises ValueError for an unreadable file.
    ``notices``: a list that receives each distinct hint the tracker gave on the way
    (NaN/inf samples, clipping, talking), as the microphone's notice would show them,
    after the reader's (a truncated file).
    ``progress``: called with (seconds of audio done, seconds in the file) about once per
    second of audio, and once at the end.
    """
    import numpy as np

    from engine.pitch.live import HumTracker
    from engine.pitch.segmenter import snap
    from engine.pitch.wavio import read_wav

    audio, sr = read_wav(path, notices)
    ht = HumTracker(tracker, input_rate=sr)
    if key is not None:
        ht.with_segmenter(key=key, scale=scale)
    block = max(1, sr // 50)
    for n, i in enumerate(range(0, len(audio), block)):
        ht.feed(audio[i : i + block])
        if notices is not None:
            _note(notices, ht.notice())
        if progress is not None and n % 50 == 49:
            progress(min(i + block, len(audio)) / sr, len(audio) / sr)
    # flush the resampler and tracker window with a little silence, then close notes
    ht.feed(np.zeros(sr // 5, np.float32))
    ht.finish()
    if notices is not None:
        _note(notices, ht.notice())
    notes = []
    for pitch, start, end, vel, median in ht.notes():
        p = snap(median, key, scale) if abs(median - pitch) >= 0.5 else pitch
        notes.append((int(p), max(0.0, start), max(0.0, end), int(vel)))
    if progress is not None:
        progress(len(audio) / sr, len(audio) / sr)
    return notes


def _note(notices: list[str], msg: str | None) -> None:
    """Add a hint once; a newer count of the same kind replaces the older one."""
    if not msg:
        return
    kind = "".join(c for c in msg if not c.isdigit())
    for i, m in enumerate(notices):
        if "".join(c for c in m if not c.isdigit()) == kind:
            notices[i] = msg
            return
    notices.append(msg)


def __getattr__(name: str):
    # HumTracker pulls in numpy, scipy and (when built) a model: load on use
    if name == "HumTracker":
        from engine.pitch.live import HumTracker

        return HumTracker
    raise AttributeError(name)


__all__ = ["MelodyEvent", "transcribe_wav", "HumTracker"]

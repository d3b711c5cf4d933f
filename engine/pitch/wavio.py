"""Read any PCM/float WAV into mono float32, with one clear error for a bad file."""
from __future__ import annotations

import os
import warnings

import numpy as np


def read_wav(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """-> (audio (N,) float32, mono mix; sample rate). Raises FileNotFoundError
    for a missing file and ValueError (one line) for anything unreadable."""
    from scipy.io import wavfile

    p = os.fspath(path)
    if not os.path.isfile(p):
        raise FileNotFoundError(f"no such file: {p}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # scipy warns about unknown chunks
            sr, data = wavfile.read(p, mmap=False)
    except Exception as exc:
        raise ValueError(f"cannot read {p} as a WAV file ({exc})") from None
    if data.size == 0:
        raise ValueError(f"{p} contains no audio")
    if sr < 4000 or sr > 384000:
        raise ValueError(f"{p}: unsupported sample rate {sr} Hz")
    if data.dtype == np.uint8:
        x = (data.astype(np.float32) - 128.0) / 128.0
    elif np.issubdtype(data.dtype, np.integer):
        x = data.astype(np.float32) / float(-np.iinfo(data.dtype).min)
    else:
        x = data.astype(np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1)
    # NaN/inf samples of a float WAV stay: HumTracker zeroes and counts them, so the
    # user hears about them (``transcribe_wav(notices=...)``)
    return np.ascontiguousarray(x, np.float32), int(sr)


def write_wav(path: str | os.PathLike, audio: np.ndarray, sample_rate: int) -> None:
    """Write (N,) or (N, channels) float audio in -1..1 as a 16-bit PCM WAV (clipped)."""
    import wave

    x = np.asarray(audio, np.float32)
    channels = 1 if x.ndim == 1 else int(x.shape[1])
    with wave.open(os.fspath(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())

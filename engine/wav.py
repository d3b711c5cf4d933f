"""WAV files, in one place: a streaming PCM writer (renders, stems, takes), a header
repair for a take cut short, and a reader for any PCM/float WAV.

``WavWriter`` appends float blocks as 16- or 24-bit PCM and never holds the audio:
a long render or a take streams to disk. ``flush`` patches the header to the length
written so far and fsyncs, so a recording that crashes keeps a valid file of everything
flushed (``repair_wav`` fixes one whose header lags its data). Float audio becomes PCM by
one rule: clipped to the largest code, scaled by 2^(bits-1), rounded; NaN becomes 0.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from engine.errors import first_line

HEADER_BYTES = 44


def _header(sample_rate: int, channels: int, bits: int, data_bytes: int) -> bytes:
    block_align = channels * bits // 8
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<IHHIIHH", 16, 1, channels, sample_rate, sample_rate * block_align, block_align, bits)
        + b"data"
        + struct.pack("<I", data_bytes)
    )


def pcm_bytes(x: np.ndarray, bits: int = 16) -> bytes:
    """Float audio in -1..1 as little-endian PCM of ``bits`` (16 or 24)."""
    full = float(1 << (bits - 1))
    v = np.round(np.nan_to_num(np.clip(x, -1.0, (full - 1) / full)) * full)
    if bits == 16:
        return v.astype("<i2").tobytes()
    if bits == 24:
        return v.astype("<i4").reshape(-1).view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    raise ValueError(f"{bits}-bit PCM is not supported (16 or 24)")


class WavWriter:
    """A PCM WAV written block by block. The header says the length at the last
    ``flush`` or ``close``. Thread: one."""

    def __init__(self, path: str | os.PathLike, sample_rate: int, channels: int = 2, bits: int = 16) -> None:
        if bits not in (16, 24):
            raise ValueError(f"{bits}-bit PCM is not supported (16 or 24)")
        self.path = Path(path)
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self.bits = bits
        self.frames = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "wb")
        self._f.write(_header(self.sample_rate, self.channels, bits, 0))

    def write(self, frames: np.ndarray) -> None:
        """frames: (n, channels) float in -1..1."""
        if frames.shape[0] == 0:
            return
        self._f.write(pcm_bytes(frames, self.bits))
        self.frames += frames.shape[0]

    def _patch_header(self) -> None:
        self._f.flush()
        pos = self._f.tell()
        self._f.seek(0)
        self._f.write(_header(self.sample_rate, self.channels, self.bits, self.frames * self.channels * self.bits // 8))
        self._f.seek(pos)
        self._f.flush()

    def flush(self) -> None:
        """Make the file on disk a valid WAV of everything written so far (fsynced)."""
        self._patch_header()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        if not self._f.closed:
            self._patch_header()
            self._f.close()


def write_wav(path: str | os.PathLike, audio: np.ndarray, sample_rate: int, bits: int = 16) -> None:
    """Write (N,) or (N, channels) float audio in -1..1 as one PCM WAV."""
    x = np.asarray(audio, np.float32)
    x = x[:, None] if x.ndim == 1 else x
    w = WavWriter(path, sample_rate, channels=x.shape[1], bits=bits)
    try:
        w.write(x)
    finally:
        w.close()


def repair_wav(path: str | os.PathLike, shown: str | os.PathLike | None = None) -> int:
    """Make a WAV's header match the PCM actually on disk (after a crash between a write
    and the next flush). Returns the number of frames. Only for files ``WavWriter``
    wrote (a 44-byte header, 16- or 24-bit PCM); ValueError (one line naming ``shown``,
    default ``path``: a copy's caller names the original) for anything else."""
    path = Path(path)
    shown = path if shown is None else shown
    with open(path, "r+b") as f:
        head = f.read(HEADER_BYTES)
        if len(head) < HEADER_BYTES or head[:4] != b"RIFF" or head[8:12] != b"WAVE" or head[36:40] != b"data":
            raise ValueError(f"{shown}: not a LiveBand WAV recording")
        channels, rate = struct.unpack("<HI", head[22:28])
        bits = struct.unpack("<H", head[34:36])[0]
        if channels < 1 or bits not in (16, 24):  # a damaged header: no frame size to cut to
            raise ValueError(f"{shown}: not a LiveBand WAV recording (header: {channels} channels, {bits} bits)")
        frame_bytes = channels * bits // 8
        size = path.stat().st_size - HEADER_BYTES
        size -= size % frame_bytes
        f.seek(0)
        f.write(_header(rate, channels, bits, size))
        f.truncate(HEADER_BYTES + size)
    return size // frame_bytes


@dataclass(frozen=True)
class _DataChunk:
    """Where a RIFF/RIFX WAV's audio is, as its header says and as the file holds it."""

    size_at: int  # offset of the data chunk's 4-byte size field
    claimed: int  # bytes the header promises
    there: int  # bytes in the file after the size field
    align: int  # bytes per frame
    rate: int

    @property
    def whole(self) -> int:
        """Bytes of the whole frames that are there (a partial last frame dropped)."""
        return min(self.claimed, self.there) // self.align * self.align


def _data_chunk(f: BinaryIO, file_size: int) -> _DataChunk | None:
    """Check a WAV's chunk layout and find its audio. ValueError (the reason, no file
    name) for a layout no reader can make sense of; None for RF64 (left to scipy)."""
    head = f.read(12)
    if not head:
        raise ValueError("an empty file")
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX", b"RF64") or head[8:12] != b"WAVE":
        raise ValueError("no RIFF/WAVE header")
    if head[:4] == b"RF64":
        return None
    end = "<" if head[:4] == b"RIFF" else ">"
    fmt = None
    pos = 12
    while pos + 8 <= file_size:
        f.seek(pos)
        cid, size = struct.unpack(end + "4sI", f.read(8))
        if cid == b"fmt ":
            body = f.read(16)
            if size < 16 or len(body) < 16:
                raise ValueError("its format chunk is cut short")
            fmt = struct.unpack(end + "HHIIHH", body)
        elif cid == b"data":
            if fmt is None:
                raise ValueError("no format chunk before the audio")
            _, channels, rate, _, align, bits = fmt
            # a frame must hold every channel's sample: 0 channels, or a 12-bit sample in
            # one byte, is a damaged header with no frame size to read the audio by
            if channels < 1 or bits < 1 or align < channels * -(-bits // 8):
                raise ValueError(f"a damaged format header: {channels} channels, {bits} bits, {align}-byte frames")
            return _DataChunk(pos + 4, size, file_size - pos - 8, align, rate)
        pos += 8 + size + (size & 1)
    raise ValueError("no audio data chunk" if fmt is not None else "no format chunk")


def _cut_to_frames(f: BinaryIO, chunk: _DataChunk) -> io.BytesIO:
    """The file as its header should have said: the data chunk cut to the whole frames
    there (a truncated file, a partial last frame), nothing after it."""
    f.seek(0)
    head = bytearray(f.read(chunk.size_at + 4))
    end = "<" if head[:4] == b"RIFF" else ">"
    head[chunk.size_at :] = struct.pack(end + "I", chunk.whole)
    head[4:8] = struct.pack(end + "I", len(head) + chunk.whole - 8)
    return io.BytesIO(bytes(head) + f.read(chunk.whole))


def _span(seconds: float) -> str:
    if seconds >= 5400:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds:.2f} s" if seconds < 1 else f"{seconds:.1f} s"


def _truncated(name: str, chunk: _DataChunk) -> str:
    per_s = max(1, chunk.rate * chunk.align)
    return (
        f"{name} is truncated: its header promises {_span(chunk.claimed / per_s)} of audio, "
        f"the file holds {_span(chunk.whole / per_s)}; read what is there"
    )


def read_wav(path: str | os.PathLike, notices: list[str] | None = None) -> tuple[np.ndarray, int]:
    """-> (audio (frames, channels) float32 in -1..1, sample rate) of any PCM or float
    WAV (a float WAV's finite samples clipped to -1..1; NaN and inf kept).
    FileNotFoundError for a missing file, IsADirectoryError for a folder, ValueError (one
    line naming the file) for anything unreadable. A truncated file (its header promises
    more audio than is there) is read as far as it goes and ``notices`` gets a line
    saying so."""
    from scipy.io import wavfile

    p = os.fspath(path)
    if os.path.isdir(p):
        raise IsADirectoryError(f"{p} is a folder, not a WAV file")
    if not os.path.isfile(p):
        raise FileNotFoundError(f"no such file: {p}")
    with open(p, "rb") as f:
        try:
            chunk = _data_chunk(f, os.fstat(f.fileno()).st_size)
        except ValueError as exc:
            raise ValueError(f"not a readable WAV: {p} ({exc})") from None
        source: str | io.BytesIO = p
        if chunk is not None and chunk.whole != chunk.claimed:
            # scipy trusts the header: give it the frames that are there
            source = _cut_to_frames(f, chunk)
            if chunk.claimed > chunk.there and chunk.whole and notices is not None:
                notices.append(_truncated(Path(p).name, chunk))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy warns about unknown chunks
            sr, data = wavfile.read(source, mmap=False)
    except ValueError as exc:  # scipy's own words: an unsupported encoding, a bad field
        raise ValueError(f"not a readable WAV: {p} ({first_line(exc)})") from None
    except Exception:  # a library's internals (a name error, a division by zero) are no message
        raise ValueError(f"not a readable WAV: {p} (a damaged or unsupported header)") from None
    if data.size == 0:
        raise ValueError(f"{p} contains no audio")
    if sr < 4000 or sr > 384000:
        raise ValueError(f"{p}: unsupported sample rate {sr} Hz")
    if data.dtype == np.uint8:
        x = (data.astype(np.float32) - 128.0) / 128.0
    elif np.issubdtype(data.dtype, np.integer):
        x = data.astype(np.float32) / float(-np.iinfo(data.dtype).min)
    else:
        # finite samples past full scale (a float WAV may hold 1e300) are clipped to it:
        # in range for whoever mixes or scales them next, and cast to float32 without an
        # overflow warning. NaN/inf samples stay: the pitch tracker zeroes and counts
        # them, so the user hears about them
        with np.errstate(invalid="ignore"):
            x = np.where(np.isfinite(data), np.clip(data, -1.0, 1.0), data).astype(np.float32)
    return np.ascontiguousarray(x.reshape(x.shape[0], -1)), int(sr)

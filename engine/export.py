"""Export for a DAW: per-part stems beside the mix, and the mix's loudness.

A stem is one part rendered alone: the render's events on that part's channel, played
by a fresh ``Synth`` (same SoundFont, sample rate and gain as the mix) through a fresh
``Mixer`` (same block size, same master gain and limiter settings). FluidSynth is linear
in its voices and its reverb, and each synth starts at frame 0, so its 64-frame event
periods fall where the mix's did; but FluidSynth starts a voice with a gain ramp that
depends on the voice slot it gets, so the first periods of some notes differ from one
synth playing every part (docs/engine.md, "Offline render", has by how much). So that the
stems add up to the mix exactly (to the WAVs' 16/24-bit steps), with stems the mix
written is their sum.

Loudness: the mix's integrated loudness (EBU R128 / ITU-R BS.1770 via ``pyloudnorm``)
is brought to a target by one gain, lowered where needed so that no sample of the mix or
of any stem goes over a ceiling (a sample-peak stand-in for true peak): the gain is
reduced, nothing is clipped. The stems get the same gain, so they still add up to the
mix.

Temporary stem audio is raw float32 (interleaved stereo) in a file beside the outputs,
read back through ``numpy.memmap``: a long render's stems never sit in memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from engine import parts as P
from engine.events import NOTE_ON, EventQueue
from engine.mixer import Mixer
from engine.synth import Synth
from engine.wav import WavWriter, read_wav

DEFAULT_LUFS = -16.0
CEILING_DBFS = -1.0
# frames per read/write while scaling files (bounded memory for any length)
_CHUNK = 1 << 16


def stem_parts(events: Iterable[tuple[int, int, int, int, int]]) -> list[P.Part]:
    """The parts that play at least one note in ``events``, in the band's order."""
    playing = {ch for _, kind, ch, _, vel in events if kind == NOTE_ON and vel > 0}
    return [p for p in P.ALL_PARTS if p.channel in playing]


def render_stem(
    events: list[tuple[int, int, int, int, int]],
    part: P.Part,
    frames: int,
    soundfont: str | Path,
    raw_path: str | Path,
    *,
    sample_rate: int = 48000,
    block: int = 4096,
    synth_gain: float = 0.5,
) -> float:
    """Render ``part``'s events (those on its channel) alone into ``raw_path`` as float32
    stereo frames; returns the stem's sample peak. Thread: the caller's."""
    mine = [ev for ev in sorted(events, key=lambda e: e[0]) if ev[2] == part.channel]
    synth = Synth(soundfont, sample_rate, gain=synth_gain)
    peak = 0.0
    try:
        mixer = Mixer(synth, sample_rate, block)
        q = EventQueue(8192)
        mixer.add_queue(q)
        buf = np.zeros((block, 2), np.float32)
        i = 0
        with open(raw_path, "wb") as f:
            while mixer.clock < frames:
                now = mixer.clock
                n = min(block, frames - now)
                # this block's events only: the queue is bounded
                while i < len(mine) and mine[i][0] < now + n:
                    q.push(*mine[i])
                    i += 1
                view = buf[:n]
                mixer.process(view)
                peak = max(peak, float(np.abs(view).max()) if n else 0.0)
                f.write(view.tobytes())
    finally:
        synth.close()
    return peak


def integrated_loudness(audio: np.ndarray, sample_rate: int) -> float:
    """EBU R128 integrated loudness (LUFS) of float audio (frames, channels); -inf for
    silence or audio shorter than one 400 ms gating block."""
    import pyloudnorm

    if audio.shape[0] < int(0.4 * sample_rate) + 1:
        return -math.inf
    return float(pyloudnorm.Meter(sample_rate).integrated_loudness(audio))


@dataclass(frozen=True)
class Loudness:
    """What normalisation did: measured and resulting loudness, the gain applied, and
    how many dB the peak ceiling held the gain under the target's."""

    measured_lufs: float
    lufs: float
    gain_db: float
    held_back_db: float = 0.0


def loudness_gain(
    measured_lufs: float, target_lufs: float, peak: float, ceiling_dbfs: float = CEILING_DBFS
) -> Loudness:
    """The one gain that brings ``measured_lufs`` to ``target_lufs``, lowered so that
    ``peak`` (the largest sample of the mix and its stems) stays under the ceiling."""
    if not math.isfinite(measured_lufs) or peak <= 0.0:
        return Loudness(measured_lufs, measured_lufs, 0.0)
    want = target_lufs - measured_lufs
    most = ceiling_dbfs - 20.0 * math.log10(peak)
    gain = min(want, most)
    return Loudness(measured_lufs, measured_lufs + gain, gain, max(0.0, want - gain))


def write_scaled(raw_path: str | Path, out_path: str | Path, gain_db: float, sample_rate: int, bits: int = 24) -> None:
    """The float32 stereo frames in ``raw_path``, times ``gain_db``, as a PCM WAV."""
    g = np.float32(10.0 ** (gain_db / 20.0))
    raw = (
        np.memmap(raw_path, np.float32, "r").reshape(-1, 2)
        if Path(raw_path).stat().st_size
        else np.zeros((0, 2), np.float32)
    )
    w = WavWriter(out_path, sample_rate, bits=bits)
    try:
        for s in range(0, raw.shape[0], _CHUNK):
            w.write(raw[s : s + _CHUNK] * g)
    finally:
        w.close()
        del raw


def export_stems_and_loudness(
    mix_wav: Path,
    mix_out: Path,
    stems: dict[str, tuple[Path, Path]],
    events: list[tuple[int, int, int, int, int]],
    frames: int,
    soundfont: str | Path,
    *,
    sample_rate: int,
    block: int,
    synth_gain: float,
    target_lufs: float | None,
    progress: Callable[[str], None] | None = None,
) -> Loudness | None:
    """Render the stems named in ``stems`` (part name -> (raw temporary, final WAV)) and
    write the mix to ``mix_out`` (not ``mix_wav``): the rendered one in ``mix_wav``, or with
    stems their sum.
    With ``target_lufs`` the mix is normalised and every stem gets the same gain; without,
    a sum of stems over the ceiling is turned down to it (nothing clips). Returns what
    normalisation did (None when off)."""
    peak = 0.0
    for name, (raw, _) in stems.items():
        if progress is not None:
            progress(name)
        peak = max(
            peak,
            render_stem(
                events,
                P.part(name),
                frames,
                soundfont,
                raw,
                sample_rate=sample_rate,
                block=block,
                synth_gain=synth_gain,
            ),
        )
    if stems:
        sr = sample_rate
        mix = np.zeros((frames, 2), np.float32)
        for raw, _ in stems.values():
            mix += np.memmap(raw, np.float32, "r").reshape(-1, 2)[:frames]
    else:
        mix, sr = read_wav(mix_wav)
    peak = max(peak, float(np.abs(mix).max()) if mix.size else 0.0)
    result = None
    gain_db = 0.0
    if target_lufs is not None:
        result = loudness_gain(integrated_loudness(mix, sr), target_lufs, peak)
        gain_db = result.gain_db
    elif peak > 10.0 ** (CEILING_DBFS / 20.0):
        gain_db = CEILING_DBFS - 20.0 * math.log10(peak)
    g = np.float32(10.0 ** (gain_db / 20.0))
    w = WavWriter(mix_out, sr, bits=16)
    try:
        for s in range(0, mix.shape[0], _CHUNK):
            w.write(mix[s : s + _CHUNK] * g)
    finally:
        w.close()
    for name, (raw, final) in stems.items():
        write_scaled(raw, final, gain_db, sample_rate, 24)
    return result

"""The metronome: a click on every beat of a grid on the audio clock (accent on each bar's
first beat), which the mixer adds after the recorder's tap: the click is for the player,
so takes do not hold it.

A new grid can be set ahead of its origin: before it, the previous grid keeps clicking, so
a tempo change is announced in time. The C mixer (engine/native/callback.c) clicks with
the same arithmetic from the same samples; the Python mixer body calls ``add``.

Thread contract: ``set`` is "Thread: any": the grid is one tuple (a reader never sees half
an update), copied into the arrays the C side reads under a sequence number that is odd
while the values change (C keeps its last consistent copy meanwhile). ``add`` is "Thread:
audio" (or render offline): it allocates no numpy buffers.
"""

from __future__ import annotations

import math

import numpy as np

from engine import native as _nat

# (on, origin sample, samples per beat, beats per bar, gain, beat-in-bar at the origin,
# the previous grid (origin, samples per beat, beats per bar, first beat) or None)
Grid = tuple[bool, float, float, int, float, int, tuple[float, float, int, int] | None]
CLICK_S = 0.03  # each click's length
DECAY_S = 0.006  # its envelope's time constant


class Metronome:
    """The click of one mixer: its grid, its two click sounds and a scratch block."""

    def __init__(self, sample_rate: int, max_block: int, ints: np.ndarray, dbls: np.ndarray) -> None:
        """``ints``/``dbls``: the mixer's arrays shared with the C side (engine.native)."""
        self.sample_rate = int(sample_rate)
        self._ints = ints
        self._dbls = dbls
        self.grid: Grid = (False, 0.0, float(self.sample_rate), 4, 0.5, 0, None)
        t = np.arange(int(CLICK_S * self.sample_rate), dtype=np.float32) / self.sample_rate
        env = np.exp(-t / DECAY_S).astype(np.float32)
        self.click_hi = (np.sin(2 * np.pi * 1760.0 * t) * env).astype(np.float32)  # a bar's first beat
        self.click_lo = (np.sin(2 * np.pi * 1320.0 * t) * env * 0.7).astype(np.float32)
        self.buf = np.zeros(max_block, dtype=np.float32)
        self._write()

    def set(
        self,
        on: bool,
        origin: float = 0.0,
        samples_per_beat: float | None = None,
        beats_per_bar: int = 4,
        gain: float = 0.5,
        first_beat: int = 0,
    ) -> None:
        """Click every beat from sample ``origin`` on (accent on each bar's first beat;
        ``first_beat`` is the beat-in-bar of the beat at ``origin``). Before ``origin`` the
        previous grid keeps clicking, so a tempo change can be announced ahead of time."""
        spb = float(samples_per_beat or self.sample_rate)
        if spb <= 0:
            raise ValueError("samples_per_beat must be positive")
        old = self.grid
        prev = (old[1], old[2], old[3], old[5]) if old[0] and old[1] < origin else None
        self.grid = (bool(on), float(origin), spb, max(1, int(beats_per_bar)), float(gain), int(first_beat), prev)
        self._write()

    def _write(self) -> None:
        on, origin, spb, bpb, gain, first, prev = self.grid
        vals = [float(on), origin, spb, float(bpb), gain, float(first), float(prev is not None)]
        vals += [float(x) for x in prev] if prev is not None else [0.0] * 4
        # odd while the values change: the C side keeps its last consistent copy meanwhile
        self._ints[_nat.I_METRO_SEQ] += 1
        self._dbls[_nat.D_M_ON : _nat.D_M_ON + len(vals)] = vals
        self._ints[_nat.I_METRO_SEQ] += 1

    def add(self, out: np.ndarray, clock: int, frames: int, grid: Grid) -> None:
        """Add ``grid``'s clicks (the one read at the block's start) sounding within
        ``out`` (whose frame 0 is sample ``clock``). Thread: audio."""
        _, origin, spb, bpb, gain, first, prev = grid
        t_end = clock + frames
        if prev is not None and clock < origin:
            p_origin, p_spb, p_bpb, p_first = prev
            self._add_grid(out, clock, min(t_end, int(round(origin))), clock, p_origin, p_spb, p_bpb, p_first, gain)
        self._add_grid(out, max(clock, int(round(origin))), t_end, clock, origin, spb, bpb, first, gain)

    def _add_grid(
        self,
        out: np.ndarray,
        lo: int,
        hi: int,
        clock: int,
        origin: float,
        spb: float,
        bpb: int,
        first: int,
        gain: float,
    ) -> None:
        """Add the clicks of beats starting in [origin, hi) that sound within [lo, hi)
        into ``out`` (whose frame 0 is sample ``clock``)."""
        if hi <= lo:
            return
        L = self.click_hi.shape[0]
        k = max(0, math.ceil((lo - L - origin) / spb))
        while True:
            beat = int(round(origin + k * spb))
            if beat >= hi:
                break
            a = max(beat, lo)
            b = min(beat + L, hi)
            if b > a:
                click = self.click_hi if (k + first) % bpb == 0 else self.click_lo
                seg = self.buf[: b - a]
                np.multiply(click[a - beat : b - beat], gain, out=seg)
                dst = out[a - clock : b - clock]
                dst[:, 0] += seg
                dst[:, 1] += seg
            k += 1

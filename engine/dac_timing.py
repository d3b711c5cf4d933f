"""When the output stream's samples reach the DAC, and the fixed player latency, from
per-block timing rows.

The audio callback (C or Python) writes one row per block into a ``TimingRing``: where
the block starts on the audio clock, when its callback ran, when PortAudio says its first
frame reaches the DAC (both on ``time.monotonic``'s clock), its lead (how far ahead of
the DAC its *next* frame is when its callback runs) and whether PortAudio reported an
output underflow. Everything else here is pure: ``dac_line`` and ``LatencyEstimator`` are
fed ``Rows`` and the current time; they read no clock and touch no stream.

- The DAC line: DAC time of sample ``s`` = ``s / rate + dac_line(...)``. A single block's
  DAC time can be ms off the line the sink plays on (PulseAudio moves one now and then);
  the sink's line itself moves N/rate per block and drifts with the sink's clock
  (~500 ppm on the null sink), stepping only when it inserts silence. So the line is a
  median over recent blocks.
- The player latency: the LEAD_QUANTILE percentile of recent leads, measured against
  that line, plus a margin, so a player's event stamped ``latency`` after its arrival is
  nearly always still to be rendered. Blocks near a disruption (an xrun, a step of the
  line) are left out: the stream re-buffers for seconds after one, with longer leads.
  It goes up at once; it comes down only once the lower value has held, since a delay
  moving back and forth is itself jitter. docs/ holds the measurements behind the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.native import TIMING_RING

ARRIVAL_WARMUP = 64  # blocks a (re)opened stream plays before its timing is used
ARRIVAL_MARGIN_S = 0.0003  # beyond the lead quantile: a callback that runs meanwhile
LEAD_QUANTILE = 99.0  # percent of recent blocks whose lead the player latency covers
LATENCY_RECHECK_S = 1.0  # the owner re-measures the latency this often
MAX_PLAYER_LATENCY_S = 0.25  # beyond this the DAC times are not believed
LATENCY_SETTLE_S = 3.0  # a new stream's first seconds (PulseAudio stalls, refills)
LINE_BLOCKS = 64  # blocks whose median DAC offset is the stream's DAC line
LINE_RECENT = 8  # the last blocks that show a step of the line at once
GUARD_BEFORE_S = 0.5  # leads this close to a disruption (xrun, DAC line jump) ...
GUARD_AFTER_S = 10.0  # ... do not set the player latency (a stream re-buffers
# for 5-10 s after an xrun with ~1 ms longer leads)
LINE_JUMP_S = 0.002  # a DAC line that moves this much from one chunk to the next
LINE_STEP_S = 0.0005  # ... or this much beyond its drift (the sink's clock runs
# ~500 ppm off ours: 0.17 ms per 64 blocks of 256 frames)
LATENCY_LOWER_BY_S = 0.0003  # the player latency comes down by at least this ...
LATENCY_LOWER_AFTER_S = 10.0  # ... once the lower value has held this long
LATENCY_YOUNG_S = 20.0  # a stream this new still settles (its leads shrink for
LATENCY_LOWER_YOUNG_S = 2.0  # ~10 s): its latency comes down after this instead


@dataclass(frozen=True)
class Rows:
    """Per-block timing rows, oldest first: element i of each array is block i."""

    clock: np.ndarray  # int64: the block's first sample on the audio clock
    time: np.ndarray  # float64: time.monotonic() when its callback ran
    dac: np.ndarray  # float64: when its first frame reaches the DAC (monotonic clock)
    lead: np.ndarray  # float64: seconds its next frame is ahead of the DAC at the callback
    entry: np.ndarray  # float64: PortAudio's call time minus ours (GIL wait + a constant)
    xrun: np.ndarray  # bool: PortAudio reported an output underflow

    def __len__(self) -> int:
        return int(self.clock.size)

    def __getitem__(self, sel: slice | np.ndarray) -> Rows:
        return Rows(self.clock[sel], self.time[sel], self.dac[sel], self.lead[sel], self.entry[sel], self.xrun[sel])

    def offsets(self, rate: int) -> np.ndarray:
        """Each block's DAC time minus its clock / rate: on the DAC line, a constant."""
        return self.dac - self.clock / rate


class TimingRing:
    """The last TIMING_RING blocks' rows, written by the audio callback (the C one writes
    the same arrays through their addresses) and read by anyone.

    ``count`` is the int64 array and index where the number of rows written lives (the
    C callback's output state); a reader takes the count first, then the rows below it."""

    def __init__(self, count: np.ndarray, index: int) -> None:
        self._count, self._index = count, index
        self.clock = np.full(TIMING_RING, -1, dtype=np.int64)
        self.time = np.zeros(TIMING_RING, dtype=np.float64)
        self.dac = np.zeros(TIMING_RING, dtype=np.float64)
        self.lead = np.zeros(TIMING_RING, dtype=np.float64)
        self.entry = np.zeros(TIMING_RING, dtype=np.float64)
        self.xrun = np.zeros(TIMING_RING, dtype=bool)

    @property
    def n(self) -> int:
        """Rows written since the ring was made. Thread: any."""
        return int(self._count[self._index])

    def push(self, clock: int, t: float, dac: float, lead: float, entry: float, xrun: bool) -> None:
        """Append one block's row. Thread: the audio callback (one writer)."""
        n = int(self._count[self._index])
        i = n & (TIMING_RING - 1)
        self.clock[i], self.time[i], self.dac[i] = clock, t, dac
        self.lead[i], self.entry[i], self.xrun[i] = lead, entry, xrun
        self._count[self._index] = n + 1

    def rows(self, lo: int, hi: int) -> Rows:
        """Copies of blocks ``lo`` to ``hi - 1`` (those still in the ring), oldest first."""
        idx = np.arange(max(lo, hi - TIMING_RING, 0), hi) & (TIMING_RING - 1)
        return Rows(self.clock[idx], self.time[idx], self.dac[idx], self.lead[idx], self.entry[idx], self.xrun[idx])

    def block_at(self, sample: int) -> tuple[int, float, float] | None:
        """(block start sample, callback time, DAC time of its first frame) of the block
        that rendered ``sample``, if it is still in the ring."""
        r = self.rows(0, self.n)
        hit = np.flatnonzero((r.clock >= 0) & (r.clock <= sample))
        if hit.size == 0:
            return None
        j = hit[np.argmax(r.clock[hit])]
        return int(r.clock[j]), float(r.time[j]), float(r.dac[j])

    def first_block_after(self, t: float) -> tuple[int, float, float] | None:
        """The first block whose callback ran at or after monotonic time ``t``:
        (block start sample, callback time, DAC time)."""
        r = self.rows(0, self.n)
        hit = np.flatnonzero((r.time >= t) & (r.clock >= 0))
        if hit.size == 0:
            return None
        j = hit[np.argmin(r.time[hit])]
        return int(r.clock[j]), float(r.time[j]), float(r.dac[j])


def dac_line(rows: Rows, rate: int) -> float:
    """The DAC offset of the stream's line from its last LINE_BLOCKS rows (at least one):
    their median offset, over those after the latest xrun once there are LINE_RECENT of
    them; the last LINE_RECENT alone when they moved off it by over LINE_JUMP_S / 2
    (PulseAudio put silence in without an xrun: the line stepped under half a window ago)."""
    rows = rows[-LINE_BLOCKS:]
    k = len(rows)
    xr = np.flatnonzero(rows.xrun)
    if xr.size and k - 1 - xr[-1] >= LINE_RECENT:
        rows = rows[int(xr[-1]) + 1 :]
    offs = rows.offsets(rate)
    off = float(np.median(offs))
    recent = float(np.median(offs[-LINE_RECENT:]))
    return recent if abs(recent - off) > LINE_JUMP_S / 2 else off


class LatencyEstimator:
    """The measured player latency of one stream (see the module docstring).

    ``update(rows, rate, now)`` measures from the stream's rows since it opened and
    returns the latency it holds (None while there is nothing to go by). ``value``,
    ``checked_at`` (``now`` of the last update that measured), ``disruptions`` (callback
    times of the xruns and line steps it remembers, beyond the ring: the guard outlasts
    it) and ``left_out`` (blocks the last update left out) are for reading.
    Thread: one owner calls ``update``; anyone reads ``value``."""

    def __init__(self, opened_at: float = 0.0) -> None:
        self.reset(opened_at)

    def reset(self, opened_at: float) -> None:
        """A (re)opened stream, opened at monotonic time ``opened_at``: forget everything."""
        self.opened_at = opened_at
        self.value: float | None = None
        self.checked_at = 0.0
        self.settled = False  # value was measured on a settled stream
        self.lower_since: float | None = None  # since when a lower latency has been measured
        self.disruptions: tuple[float, ...] = ()
        self.left_out = 0

    def update(self, rows: Rows, rate: int, now: float) -> float | None:
        """Measure from ``rows`` (this stream's, oldest first, at least ARRIVAL_WARMUP).
        None when the measured lead is outside (0, MAX_PLAYER_LATENCY_S): a host API whose
        DAC times mean nothing (some report 0) gets no arrival timing."""
        k = len(rows)
        off = rows.offsets(rate)
        t = rows.time
        # Each block's lead measured against the DAC line (the median offset of its chunk
        # of LINE_BLOCKS blocks), not its own DAC time, so one odd block does not count.
        line = np.empty_like(off)
        for a in range(0, k, LINE_BLOCKS):
            line[a : a + LINE_BLOCKS] = np.median(off[a : a + LINE_BLOCKS])
        lead = rows.lead - (off - line)
        # A block off its chunk's line by over LINE_JUMP_S / 2 is on the far side of a step
        # inside the chunk (its lead against that line would be off by the step) or a
        # stream still settling: left out.
        on_line = np.abs(off - line) <= LINE_JUMP_S / 2
        keep = on_line.copy()
        # A step of the line: from one chunk to the next it moved over LINE_JUMP_S, or over
        # LINE_STEP_S beyond the drift of the sink's clock (the median step).
        steps = np.diff(line[::LINE_BLOCKS])
        if steps.size >= 3:
            steps = np.where(np.abs(steps) > LINE_JUMP_S, steps, steps - np.median(steps))
        jumps = (np.flatnonzero(np.abs(steps) > LINE_STEP_S) + 1) * LINE_BLOCKS
        # Disruptions are remembered beyond the ring (5.5 s of 256-frame blocks; the guard
        # lasts GUARD_AFTER_S).
        seen = t[np.concatenate((np.flatnonzero(rows.xrun), jumps))]
        self.disruptions = tuple(
            sorted({float(d) for d in (*self.disruptions, *seen) if d >= now - GUARD_AFTER_S - 2 * LATENCY_RECHECK_S})
        )
        for d in self.disruptions:
            keep &= ~((t >= d - GUARD_BEFORE_S) & (t <= d + GUARD_AFTER_S))
        settled = now - self.opened_at >= LATENCY_SETTLE_S
        if settled:
            keep &= t >= self.opened_at + LATENCY_SETTLE_S  # a new stream's first seconds never count
        self.left_out = int(k - keep.sum())
        lat = self.value
        if keep.sum() < ARRIVAL_WARMUP:
            if lat is not None and self.settled:
                self.checked_at = now  # nothing undisturbed to go by: keep the value
                return lat
            # A stream just (re)started: what it has, but only the blocks on their line (a
            # new PulseAudio stream's first blocks sit ~220 ms off the line it plays on).
            keep = on_line
            if keep.sum() < ARRIVAL_WARMUP:
                self.checked_at = now
                return lat
        measured = float(np.percentile(lead[keep], LEAD_QUANTILE)) + ARRIVAL_MARGIN_S
        if not 0.0 < measured < MAX_PLAYER_LATENCY_S:
            return None
        if lat is None or not self.settled or measured > lat:
            # up at once (fewer late notes); and the first value from a settled stream
            # replaces whatever the first seconds gave
            lat, self.lower_since = measured, None
            self.settled = settled
        elif measured < lat - LATENCY_LOWER_BY_S:
            if self.lower_since is None:
                self.lower_since = now
            elif now - self.lower_since >= (
                LATENCY_LOWER_YOUNG_S if now - self.opened_at < LATENCY_YOUNG_S else LATENCY_LOWER_AFTER_S
            ):
                lat, self.lower_since = measured, None
        else:
            self.lower_since = None
        self.value, self.checked_at = lat, now
        return lat

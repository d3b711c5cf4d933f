"""The live audio output: a PortAudio stream whose callback renders the Mixer.

- The callback is C (engine/native/callback.c, ``lb_pa_callback``) whenever the mixer runs
  its C body (``Mixer.native``): PortAudio calls it directly, it never takes the GIL, so
  no Python thread (generator, pitch tracker, UI, garbage collector) can delay a block.
  It writes the same per-block timing rows as the Python callback into the same arrays.
  Otherwise (no C library: ``Mixer.native_why`` says why) the Python callback
  ``_callback`` calls ``Mixer.process``.
- The callback only renders and counts (xruns from ``status.output_underflow``, errors
  turned into silence so PortAudio never aborts the stream).
- While the stream runs, the garbage collector is frozen and disabled (a full
  collection can stall the callback for tens of ms) and the GIL switch interval is
  shortened so a busy Python thread hands the GIL to the callback within ~0.5 ms
  instead of 5 ms. Both are restored on ``stop``.
- ``watch()`` (called by the owner every ~0.5 s) detects a device or server that went
  away (the callback stops arriving, or the stream finished), closes the stream, and
  re-opens it when the device is back. The mixer, its clock and any recording go on.
- A sample rate the device refuses is negotiated (``negotiate_rate``) before the synth
  is built, so the synth always runs at the stream's rate.
- Player events get a time on the audio clock when they arrive (``arrival_time``, the
  mixer's timebase): the sample that reaches the DAC a fixed ``player_latency`` after the
  arrival. That replaces "the start of the next block", whose delay varied by a whole
  block (and more: PulseAudio calls back in bursts), with one that varies by well under
  a millisecond. PortAudio's DAC times are the reference, put on the monotonic clock
  with PortAudio's own call time (not our entry time, which includes the GIL wait) and
  taken as a line (``dac_offset``: a median over recent blocks): on the PulseAudio null
  sink that line moves by N/rate per block to within ~0.1 ms, while the callback times
  themselves wander by several ms.

Thread: everything except the callback is called from one owner thread (UI/main or the
session's housekeeping thread). ``last_block_time`` / ``last_block_clock`` are written by
the callback and read by anyone (MIDI out uses them to place events in wall time).
"""
from __future__ import annotations

import ctypes
import gc
import math
import os
import sys
import threading
import time

import numpy as np

from engine import native as _nat
from engine.events import IMMEDIATE

PREFERRED_RATES = (48000, 44100, 96000, 88200, 32000, 22050)
# PortAudio's device list and stream table are process-global and not thread-safe: a
# re-scan (terminate + initialize) while another thread opens a stream or queries the
# devices corrupts its heap. Every PortAudio call made from this module holds this lock.
PA_LOCK = threading.RLock()
TIMING_RING = 1024
ARRIVAL_WARMUP = 64          # blocks a (re)opened stream plays before its timing is used
ARRIVAL_MARGIN_S = 0.0003    # beyond the lead quantile: a callback that runs meanwhile
LEAD_QUANTILE = 99.0         # percent of recent blocks whose lead the player latency covers
LATENCY_RECHECK_S = 1.0
MAX_PLAYER_LATENCY_S = 0.25  # beyond this the DAC times are not believed
LATENCY_SETTLE_S = 3.0       # a new stream's first seconds (PulseAudio stalls, refills)
CONV_BUCKET = 256            # blocks per bucket of the PortAudio-to-monotonic clock minimum
LINE_BLOCKS = 64             # blocks whose median DAC offset is the stream's DAC line
GUARD_BEFORE_S = 0.5         # leads this close to a disruption (xrun, DAC line jump) ...
GUARD_AFTER_S = 10.0         # ... do not set the player latency (a stream re-buffers
                             # for 5-10 s after an xrun: leads ~1 ms longer, measured)
LINE_JUMP_S = 0.002          # a DAC line that moves this much from one chunk to the next
LINE_STEP_S = 0.0005         # ... or this much beyond its drift (the sink's clock runs
                             # ~500 ppm off ours: 0.17 ms per 64 blocks of 256 frames)
LATENCY_LOWER_BY_S = 0.0003  # the player latency comes down by at least this ...
LATENCY_LOWER_AFTER_S = 10.0  # ... once the lower value has held this long
LATENCY_YOUNG_S = 20.0       # a stream this new still settles (its leads shrink for
LATENCY_LOWER_YOUNG_S = 2.0  # ~10 s): its latency comes down after this instead
SLOW_START_S = 0.002         # a callback this late into Python waited for the GIL
LINE_REFRESH_S = 0.02        # refresh_line() recomputes the DAC line this often ...
LINE_FRESH_S = 0.1           # ... and a stamp uses a line this young without recomputing
GC_PERIOD_S = 0.5            # collect_garbage(): the young generations this often ...
GC_FREEZE_ABOVE = 5000       # ... unless this many new objects wait (a load): frozen instead


# Audio-server client threads started inside PortAudio that carry the stream's data
# (libpulse's threaded mainloop; JACK's client threads are real-time already).
IO_THREAD_NAMES = ("threaded-ml",)


def _thread_ids() -> set[int]:
    try:
        return {int(t) for t in os.listdir("/proc/self/task")}
    except OSError:          # not Linux
        return set()


def _thread_name(tid: int) -> str:
    try:
        with open(f"/proc/self/task/{tid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


class AudioUnavailable(RuntimeError):
    """No usable output device (message says what is missing and how to fix it)."""


def _sd():
    try:
        import sounddevice as sd
    except OSError as exc:   # PortAudio missing
        raise AudioUnavailable(f"PortAudio is not available ({exc}); install it with "
                               "'sudo apt-get install libportaudio2'") from None
    return sd


def refresh_devices() -> None:
    """Re-scan PortAudio's device list (a server that started or stopped since)."""
    from engine.midi_io import quiet_stderr   # libjack/ALSA complain on stderr while probing

    sd = _sd()
    with PA_LOCK, quiet_stderr():
        try:
            sd._terminate()
        except Exception:
            pass
        sd._initialize()


def output_devices() -> list[str]:
    sd = _sd()
    try:
        with PA_LOCK:
            return [d["name"] for d in sd.query_devices() if d["max_output_channels"] >= 2]
    except Exception:
        return []


def input_devices() -> list[str]:
    sd = _sd()
    try:
        with PA_LOCK:
            return [d["name"] for d in sd.query_devices() if d["max_input_channels"] >= 1]
    except Exception:
        return []


def negotiate_rate(device, preferred: int) -> int:
    """The preferred rate if the device takes it, else its default rate, else the first
    common rate it accepts. AudioUnavailable when there is no output device at all."""
    with PA_LOCK:
        return _negotiate_rate(device, preferred)


def _negotiate_rate(device, preferred: int) -> int:
    sd = _sd()
    try:
        info = sd.query_devices(device, "output")
    except Exception as exc:
        if device is not None:
            raise AudioUnavailable(f"audio output {device!r} not found ({exc}); choose one of: "
                                   f"{', '.join(output_devices()) or 'none'}") from None
        raise AudioUnavailable(
            "no audio output device (no sound card and no audio server found); start "
            "PulseAudio/PipeWire or JACK, or plug in a sound card"
        ) from None
    candidates = [preferred, int(info["default_samplerate"]), *PREFERRED_RATES]
    for rate in dict.fromkeys(candidates):
        try:
            sd.check_output_settings(device=device, samplerate=rate, channels=2, dtype="float32")
            return int(rate)
        except Exception:
            continue
    raise AudioUnavailable(f"output device {info['name']!r} accepts none of the rates {PREFERRED_RATES}")


def _out_int(i: int):
    return property(lambda self: int(self._oi[i]), lambda self, v: self._oi.__setitem__(i, v))


def _out_dbl(i: int):
    return property(lambda self: float(self._od[i]), lambda self, v: self._od.__setitem__(i, v))


class AudioOut:
    """Owns the output stream for one Mixer."""

    # Written by the callback (C or Python), read by anyone: engine.native's O_* / OD_*.
    _blk_n = _out_int(_nat.O_BLK_N)
    _conv_n = _out_int(_nat.O_CONV_N)
    last_block_clock = _out_int(_nat.O_LAST_BLOCK_CLOCK)   # mixer.clock at the start of the last block
    rt_priority = _out_int(_nat.O_RT_PRIO)                 # 0: leave the callback thread's scheduling alone
    _conv_prev = _out_dbl(_nat.OD_CONV_PREV)      # PortAudio clock -> monotonic: min of the last bucket
    _conv_cur = _out_dbl(_nat.OD_CONV_CUR)        # ... and of the current one
    last_block_time = _out_dbl(_nat.OD_LAST_BLOCK_TIME)    # time.monotonic() at the last callback
    last_output_dac_offset = _out_dbl(_nat.OD_LAST_DAC_OFFSET)   # seconds from callback to DAC of its 1st frame

    @property
    def realtime(self) -> bool | None:
        """Whether the callback thread got SCHED_FIFO (None until the first callback)."""
        v = int(self._oi[_nat.O_REALTIME])
        return None if v < 0 else bool(v)

    @realtime.setter
    def realtime(self, v: bool | None) -> None:
        self._oi[_nat.O_REALTIME] = -1 if v is None else int(bool(v))

    def __init__(self, mixer, *, device=None, blocksize: int = 256, latency="low",
                 stall_s: float = 2.0, switch_interval: float = 0.0005, rt_priority: int = 70,
                 player_latency: float | None = None, player_channel: int | None = None) -> None:
        if blocksize > mixer.max_block:
            raise ValueError(f"blocksize {blocksize} exceeds the mixer's max block {mixer.max_block}")
        self.mixer = mixer
        self._oi = np.zeros(_nat.O_N_INTS, dtype=np.int64)
        self._od = np.zeros(_nat.OD_N_DBLS, dtype=np.float64)
        self._od[_nat.OD_RATE] = mixer.sample_rate
        self.device = device
        self.blocksize = int(blocksize)
        self.latency_hint = latency
        self.stall_s = stall_s
        self.switch_interval = switch_interval
        self.stream = None
        self.callback_errors = 0
        self.restarts = 0
        self.lost: str | None = None          # why the device is gone (None: fine)
        self._conv_prev = math.inf
        self._conv_cur = math.inf
        self._blocks_at_check = -1
        self._check_time = 0.0
        self._gc_was_enabled = True
        self._gc_held = False
        self._gc_last = 0.0
        self._old_switch = sys.getswitchinterval()
        self._wanted = False
        # Per-block timing ring (written by the callback, read by anyone): where each
        # block starts on the audio clock, when its callback ran, and when PortAudio says
        # its first frame reaches the DAC (both on time.monotonic's clock).
        self._blk_clock = np.full(TIMING_RING, -1, dtype=np.int64)
        self._blk_time = np.zeros(TIMING_RING, dtype=np.float64)
        self._blk_dac = np.zeros(TIMING_RING, dtype=np.float64)
        self._blk_n = 0
        self.rt_priority = rt_priority
        self.realtime = None
        self._rt_thread = None
        self.io_threads_realtime = 0           # server client threads raised (see _make_io_realtime)
        # How far ahead of the DAC each block's *next* frame is when its callback runs:
        # an event can only be rendered from there on, so the fixed player latency must
        # be at least the largest of these (see arrival_time).
        self._blk_lead = np.zeros(TIMING_RING, dtype=np.float64)
        self._blk_entry = np.zeros(TIMING_RING, dtype=np.float64)
        self._blk_xrun = np.zeros(TIMING_RING, dtype=bool)     # PortAudio said output underflow
        self._native = None                   # engine.native.OutState for the C callback
        if mixer.native:
            st = _nat.OutState()
            a = _nat.addr
            st.m = mixer.native_state_address()
            st.ints, st.dbls = a(self._oi), a(self._od)
            st.blk_clock, st.blk_time, st.blk_dac = a(self._blk_clock), a(self._blk_time), a(self._blk_dac)
            st.blk_lead, st.blk_entry, st.blk_xrun = a(self._blk_lead), a(self._blk_entry), a(self._blk_xrun)
            self._native = st
        self._n_at_open = 0
        self._lat: float | None = None        # measured player latency of this stream
        self._lower_since: float | None = None  # since when a lower latency has been measured
        self._lat_settled = False              # _lat was measured on a settled stream
        self.latency_blocks_left_out = 0       # blocks near disruptions at the last check
        self._disruptions: tuple[float, ...] = ()   # callback times of recent xruns / line jumps
        # (blocks, dac_offset(), time.monotonic() when computed): one tuple, one store
        self._line_cache: tuple[int, float | None, float] = (-1, None, 0.0)
        self.last_stamp_time = 0.0             # time.monotonic() of the last arrival_time stamp
        # Diagnostics (the bench): called from the callback as hook(now, seconds) when a
        # callback started running Python over SLOW_START_S after PortAudio called it
        # (a GIL wait). It runs inside the callback: only for measuring.
        self.slow_start_hook = None
        self._opened_at = 0.0
        self._lat_checked = 0.0
        if player_latency is not None and not player_latency > 0:
            raise ValueError(f"player latency must be positive seconds, got {player_latency}")
        self.player_latency_fixed = player_latency
        if player_channel is None:
            from engine.parts import MELODY
            player_channel = MELODY.channel
        self.player_channel = player_channel
        mixer.set_timebase(self.arrival_time)

    # -- the callback (Thread: audio) -----------------------------------------
    def _callback(self, outdata: np.ndarray, frames: int, time_info, status) -> None:
        mixer = self.mixer
        if self._rt_thread != threading.get_ident():
            self._make_realtime()
        now = self.last_block_time = time.monotonic()
        self.last_block_clock = mixer.clock
        try:
            pa_now = time_info.currentTime
            dac = time_info.outputBufferDacTime - pa_now
            # PortAudio's time just before it called us minus ours once Python runs:
            # a constant (its clock is CLOCK_REALTIME here) plus however long the callback
            # waited for the GIL. The DAC time goes onto the monotonic clock with that
            # constant alone (the smallest such difference of the last 256-512 blocks),
            # not by adding ``dac`` to our own entry time: that carried each callback's
            # GIL wait (up to 25 ms measured) into its DAC time, which then scattered by
            # as much around the line the sink plays on, moving stamps and measurements.
            entry = now - pa_now
            if entry < self._conv_cur:
                self._conv_cur = entry
            self._conv_n += 1
            if self._conv_n >= CONV_BUCKET or entry - self._conv_prev > 1.0:
                # a new bucket (so a clock that slews is followed); a clock step resets
                self._conv_prev = self._conv_cur if entry - self._conv_prev <= 1.0 else entry
                self._conv_cur, self._conv_n = entry, 0
            conv = min(self._conv_prev, self._conv_cur)
            hook = self.slow_start_hook
            if hook is not None and entry - conv > SLOW_START_S:
                hook(now, entry - conv)
            dac_abs = time_info.outputBufferDacTime + conv
            self.last_output_dac_offset = dac_abs - now
            i = self._blk_n & (TIMING_RING - 1)
            self._blk_clock[i] = self.last_block_clock
            self._blk_time[i] = now
            self._blk_dac[i] = dac_abs
            self._blk_lead[i] = dac + frames / mixer.sample_rate
            self._blk_entry[i] = entry
            underflow = bool(status.output_underflow)
            self._blk_xrun[i] = underflow
            self._blk_n += 1
            mb = mixer.max_block
            if frames <= mb:
                mixer.process(outdata, underflow)
            else:                      # a host that ignores the block size: render in pieces
                for s in range(0, frames, mb):
                    mixer.process(outdata[s:min(frames, s + mb)], underflow and s == 0)
        except Exception:
            self.callback_errors += 1
            outdata.fill(0.0)

    def _make_realtime(self) -> None:
        """Once per callback thread: ask for SCHED_FIFO so other busy processes cannot
        preempt the callback (needs root, CAP_SYS_NICE or an rtprio limit; without it the
        thread keeps its normal priority and ``realtime`` says so)."""
        self._rt_thread = threading.get_ident()
        if self.rt_priority <= 0 or not hasattr(os, "sched_setscheduler"):
            self.realtime = False
            return
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(self.rt_priority))
            self.realtime = True
        except (OSError, ValueError):
            self.realtime = False

    def _make_io_realtime(self, before: set[int]) -> int:
        """Give the audio server's client threads that opening the stream started (the
        PulseAudio client's ``threaded-ml`` mainloop) SCHED_FIFO just below the callback.

        Why: with PulseAudio (and PipeWire's pulse layer) PortAudio's callback thread only
        writes into the client library; that library's mainloop thread moves the data to
        the server and wakes the callback thread for the next block. At normal priority a
        busy neighbour delays it by 10-50 ms: measured, 5 of 6 xruns in a 180 s soak came
        after a 14-56 ms gap between callbacks with no delay in our own callback.
        Returns how many threads were raised. Thread: owner."""
        if self.rt_priority <= 1 or not hasattr(os, "sched_setscheduler"):
            return 0
        raised = 0
        for tid in _thread_ids() - before:
            if _thread_name(tid) not in IO_THREAD_NAMES:
                continue
            try:
                os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(self.rt_priority - 1))
                raised += 1
            except (OSError, ValueError):
                pass
        return raised

    # -- timing (Thread: any) ----------------------------------------------------
    def block_at(self, sample: int) -> tuple[int, float, float] | None:
        """(block start sample, callback time, DAC time of its first frame) for the
        block that rendered ``sample``, if it is still in the timing ring."""
        n = self._blk_n
        best = None
        for j in range(max(0, n - TIMING_RING), n):
            i = j & (TIMING_RING - 1)
            c = int(self._blk_clock[i])
            if 0 <= c <= sample and (best is None or c > best[0]):
                best = (c, float(self._blk_time[i]), float(self._blk_dac[i]))
        return best

    def first_block_after(self, t: float) -> tuple[int, float, float] | None:
        """The first block whose callback ran at or after monotonic time ``t``:
        (block start sample, callback time, DAC time)."""
        n = self._blk_n
        best = None
        for j in range(max(0, n - TIMING_RING), n):
            i = j & (TIMING_RING - 1)
            bt = float(self._blk_time[i])
            if bt >= t and self._blk_clock[i] >= 0 and (best is None or bt < best[1]):
                best = (int(self._blk_clock[i]), bt, float(self._blk_dac[i]))
        return best

    def player_latency(self) -> float | None:
        """Seconds from a player event's arrival to its first frame at the DAC (None until
        the stream has played ARRIVAL_WARMUP blocks). Thread: any.

        The fixed value given, else measured: the LEAD_QUANTILE percentile of the recent
        blocks' leads (how far ahead of the DAC line the callback renders) plus a margin,
        so an event's sample is nearly always still to be rendered when it arrives; one
        that is not plays at the start of the next block, late by no more than that
        callback's lead beyond the latency (a fraction of a ms for a block just past the
        quantile), and is counted by the mixer. Hence holding the value through the
        ~1 ms longer leads after an xrun costs less jitter than raising it for them.
        Blocks near a disruption (an xrun, a jump of the DAC line) are left out. The value
        is re-checked every second; once the stream has settled (LATENCY_SETTLE_S: a new
        PulseAudio stream stalls and refills in bursts at first) it goes up at once but
        comes down only after the lower value has held for LATENCY_LOWER_AFTER_S
        (LATENCY_LOWER_YOUNG_S in the stream's first LATENCY_YOUNG_S, while its leads
        still shrink: measured 19.2 -> 18.6 ms over its first ~10 s). (It used
        to only ever grow: measured over 120 s, one 14 ms jump of the line raised it from
        19.2 to 22.0 ms for good, and the 600 s soak ended at 25.6 ms, most of its 11 ms
        jitter.)
        """
        n = self._blk_n
        k = min(n - self._n_at_open, TIMING_RING)
        if self.stream is None or k < ARRIVAL_WARMUP:
            return None
        if self.player_latency_fixed is not None:
            return self.player_latency_fixed
        now = time.monotonic()
        lat = self._lat
        if lat is not None and now - self._lat_checked < LATENCY_RECHECK_S:
            return lat
        idx = np.arange(n - k, n) & (TIMING_RING - 1)
        off = self._blk_dac[idx] - self._blk_clock[idx] / self.mixer.sample_rate
        t = self._blk_time[idx]
        # Each block's lead measured against the DAC line (the median offset of its chunk
        # of LINE_BLOCKS blocks), not its own DAC time, so one odd block does not count.
        line = np.empty_like(off)
        for a in range(0, k, LINE_BLOCKS):
            line[a:a + LINE_BLOCKS] = np.median(off[a:a + LINE_BLOCKS])
        lead = self._blk_lead[idx] - (off - line)
        # Blocks around a disruption are the stream recovering (refill bursts, leads a few
        # ms longer for seconds): leaving them in would raise the delay after each one.
        # A disruption: an xrun, or the DAC line jumping (PulseAudio inserting silence
        # without reporting an underrun; measured: +14 ms at once, then 5 s of leads 3 ms
        # longer).
        # A block off its chunk's line by over LINE_JUMP_S / 2 is on the far side of a step
        # inside the chunk (its lead against that line would be off by the step: 37 ms
        # seen after a burst of xruns) or a stream still settling: left out too.
        on_line = np.abs(off - line) <= LINE_JUMP_S / 2
        keep = on_line.copy()
        # A step of the line: from one chunk to the next it moved over LINE_JUMP_S, or over
        # LINE_STEP_S beyond the drift of the sink's clock (the median step). Measured: the
        # line stepped 0.7 ms later without an xrun and the leads were ~0.9 ms longer for
        # 3 s; taken in, they raised the latency by 0.75 ms for 17 s (jitter 1.01 ms).
        steps = np.diff(line[::LINE_BLOCKS])
        if steps.size >= 3:
            steps = np.where(np.abs(steps) > LINE_JUMP_S, steps, steps - np.median(steps))
        jumps = (np.flatnonzero(np.abs(steps) > LINE_STEP_S) + 1) * LINE_BLOCKS
        # Remembered beyond the ring: it holds 5.5 s of 256-frame blocks, the guard lasts
        # 10 s, and a disruption that had left the ring let the re-buffering stream's
        # leads in (measured: 18.7 -> 21.9 ms for 16 s, from 6 s after an xrun).
        seen = t[np.concatenate((np.flatnonzero(self._blk_xrun[idx]), jumps))]
        self._disruptions = tuple(sorted({float(d) for d in (*self._disruptions, *seen)
                                          if d >= now - GUARD_AFTER_S - 2 * LATENCY_RECHECK_S}))
        for d in self._disruptions:
            keep &= ~((t >= d - GUARD_BEFORE_S) & (t <= d + GUARD_AFTER_S))
        settled = now - self._opened_at >= LATENCY_SETTLE_S
        if settled:
            # a new stream's first seconds (stalls, refills: leads of 200 ms measured) never count
            keep &= t >= self._opened_at + LATENCY_SETTLE_S
        self.latency_blocks_left_out = int(k - keep.sum())
        if keep.sum() < ARRIVAL_WARMUP:
            if lat is not None and self._lat_settled:
                self._lat_checked = now      # nothing undisturbed to go by: keep the value
                return lat
            # A stream just (re)started: what it has, but only the blocks on their line.
            # (It took every block: a new PulseAudio stream's first few blocks sit ~220 ms
            # off the line it then plays on, and one such block, its lead "corrected" by
            # that, set a 228 ms player latency for the stream's first seconds.)
            keep = on_line
            if keep.sum() < ARRIVAL_WARMUP:
                self._lat_checked = now
                return lat
        measured = float(np.percentile(lead[keep], LEAD_QUANTILE)) + ARRIVAL_MARGIN_S
        if not 0.0 < measured < MAX_PLAYER_LATENCY_S:
            # a host API whose DAC times mean nothing (some report 0): no arrival timing
            return None
        if lat is None or not self._lat_settled or measured > lat:
            # up at once (fewer late notes); and the first value from a settled stream
            # replaces whatever the first seconds gave
            lat, self._lower_since = measured, None
            self._lat_settled = settled
        elif measured < lat - LATENCY_LOWER_BY_S:
            # down only once it has stayed lower for LATENCY_LOWER_AFTER_S: the delay
            # moving back and forth would itself be jitter
            if self._lower_since is None:
                self._lower_since = now
            elif now - self._lower_since >= (LATENCY_LOWER_YOUNG_S if now - self._opened_at < LATENCY_YOUNG_S
                                             else LATENCY_LOWER_AFTER_S):
                lat, self._lower_since = measured, None
        else:
            self._lower_since = None
        self._lat, self._lat_checked = lat, now
        return lat

    def dac_offset(self) -> float | None:
        """The stream's DAC line: DAC time of sample ``s`` = ``s / rate + dac_offset()``.
        The median over the last LINE_BLOCKS blocks (those after the latest xrun, once
        there are 8 of them; the last 8 alone when they moved off it by more than
        LINE_JUMP_S / 2) of each block's DAC time minus its clock / rate. None before the
        stream has timing. Thread: any.

        Why not the last block's DAC time, as before: that value carried its callback's
        GIL wait (now fixed in the callback), and PulseAudio still moves a single block's
        now and then; the sink itself plays on a line that moves N/rate per block (and
        ~500 ppm faster than the monotonic clock on the null sink), stepping only when it
        inserts silence."""
        n = self._blk_n
        cached_n, cached, _ = self._line_cache
        if n == cached_n:
            return cached
        computed_at = time.monotonic()
        k = min(n - self._n_at_open, LINE_BLOCKS)
        if self.stream is None or k <= 0:
            return None
        idx = np.arange(n - k, n) & (TIMING_RING - 1)
        xr = np.flatnonzero(self._blk_xrun[idx])
        if xr.size and k - 1 - xr[-1] >= 8:
            idx = idx[xr[-1] + 1:]
        offs = self._blk_dac[idx] - self._blk_clock[idx] / self.mixer.sample_rate
        off = float(np.median(offs))
        recent = float(np.median(offs[-8:]))
        if abs(recent - off) > LINE_JUMP_S / 2:
            # the line stepped (PulseAudio put silence in without an xrun: measured +3.7
            # ms) less than half a window ago: the last 8 blocks are on the new line
            off = recent
        self._line_cache = (n, off, computed_at)   # one store: readers see all three
        return off

    def refresh_line(self) -> None:
        """Recompute the DAC line if it is over LINE_REFRESH_S old, so that a player's
        stamp finds it ready. Thread: one helper that runs every few ms (the session's
        dispatcher), never a player's.

        Why: computing it inside ``arrival_time`` (numpy medians, 35-100 us) put that work
        between the stamp's clock read and its push, the window in which the player's
        thread can be made to drop the GIL; it then waited 1-5 ms to win it back, the
        callback covering the stamp ran meanwhile, and the note played late (16 of 624
        probe notes in one 600 s soak: its 1.35 ms jitter)."""
        if time.monotonic() - self._line_cache[2] >= LINE_REFRESH_S:
            self.dac_offset()

    def arrival_time(self, arrived: float | None = None) -> int:
        """The audio-clock sample at which an event that reached LiveBand at monotonic
        time ``arrived`` (None: now) should sound: the one that reaches the DAC
        ``player_latency()`` after it, on the stream's DAC line (``dac_offset``).
        IMMEDIATE (the next block) while there is no stream timing.
        Thread: any event producer (the mixer's timebase).

        The note is timed from ``arrived``, read by the key or MIDI handler first thing,
        so the Python from there to here does not move it (a forced GIL switch in that
        path cost ~0.15 ms in half the probe notes of a 600 s soak). From here to the push
        only arithmetic runs: the latency and the line are read as another thread left
        them (``watch`` re-checks the latency every second, ``refresh_line`` the line
        every LINE_REFRESH_S). Computing them here put numpy between the clock read and
        the push, where the player's thread could lose the GIL for ms and the callback
        covering the stamp run first: a late note (16 of 624 in one soak)."""
        now = time.monotonic()
        if arrived is None or arrived > now:
            arrived = now
        lat = self._lat
        if lat is None or self.player_latency_fixed is not None or now - self._lat_checked > 2 * LATENCY_RECHECK_S:
            # nobody re-checked it lately (no owner calling watch()): here, then
            lat = self.player_latency()
        if lat is None:
            return IMMEDIATE
        _, off, computed_at = self._line_cache
        if off is None or now - computed_at > LINE_FRESH_S:
            off = self.dac_offset()          # nobody refreshed it: compute it here
            if off is None:
                return IMMEDIATE
        self.last_stamp_time = arrived
        rate = self.mixer.sample_rate
        if now >= off + self.mixer.clock / rate:
            # Everything rendered has already played: the stream is starved or stalled
            # and the line no longer says where the DAC is.
            return IMMEDIATE
        return int(math.ceil((arrived + lat - off) * rate))

    # -- lifecycle (Thread: owner) ---------------------------------------------
    @property
    def sample_rate(self) -> int:
        return self.mixer.sample_rate

    @property
    def latency_ms(self) -> float:
        s = self.stream
        try:
            return float(s.latency) * 1000.0 if s is not None else 0.0
        except Exception:
            return 0.0

    @property
    def active(self) -> bool:
        s = self.stream
        return bool(s is not None and s.active)

    def start(self) -> None:
        """Open and start the stream. AudioUnavailable with a readable reason on failure."""
        self._wanted = True
        if self.player_channel >= 0 and self.stream is None:
            self.mixer.enable_player_phases(self.player_channel)
        self.mixer.set_live(self._native is not None)
        try:
            self._open()
        except AudioUnavailable:
            self._wanted = False
            self.mixer.set_live(False)
            raise
        self._hold_gc()          # a full collection now (the stream only plays silence yet)

    def _open(self) -> None:
        sd = _sd()
        before = _thread_ids()
        try:
            PA_LOCK.acquire()
            if self._native is not None:
                # PortAudio calls lb_pa_callback itself, with our state as its user data
                # (sounddevice takes a C function pointer when nothing wraps it)
                self._native.rt_known = 0
                stream = sd._StreamBase(kind="output", samplerate=self.sample_rate, blocksize=self.blocksize,
                                        device=self.device, channels=2, dtype="float32",
                                        latency=self.latency_hint, callback=_nat.callback_address(),
                                        userdata=sd._ffi.cast("void *", ctypes.addressof(self._native)),
                                        wrap_callback=None)
            else:
                stream = sd.OutputStream(samplerate=self.sample_rate, blocksize=self.blocksize, device=self.device,
                                         channels=2, dtype="float32", latency=self.latency_hint,
                                         callback=self._callback)
            stream.start()
        except Exception as exc:
            raise AudioUnavailable(f"cannot open audio output {self.device or '(default)'} at "
                                   f"{self.sample_rate} Hz, {self.blocksize} frames: {exc}") from None
        finally:
            PA_LOCK.release()
        self.stream = stream
        self.io_threads_realtime = self._make_io_realtime(before)
        self._n_at_open = self._blk_n
        self._opened_at = time.monotonic()
        self._lat = None
        self._lower_since = None
        self._lat_settled = False
        self._disruptions = ()
        self._conv_prev = self._conv_cur = math.inf
        self._conv_n = 0
        self._line_cache = (-1, None, 0.0)
        self.lost = None
        self._blocks_at_check = -1
        self._check_time = time.monotonic()

    def _close_stream(self) -> None:
        s, self.stream = self.stream, None
        if s is None:
            return
        with PA_LOCK:
            try:
                s.abort()
            except Exception:
                pass
            try:
                s.close()
            except Exception:
                pass

    def stop(self) -> None:
        self._wanted = False
        self._close_stream()
        self.mixer.set_live(False)
        self._release_gc()

    def _hold_gc(self) -> None:
        self._gc_was_enabled = gc.isenabled()
        gc.collect()
        gc.freeze()          # what exists now is never scanned again while we play
        gc.disable()
        self._gc_held, self._gc_last = True, time.monotonic()
        self._old_switch = sys.getswitchinterval()
        sys.setswitchinterval(self.switch_interval)

    def _release_gc(self) -> None:
        self._gc_held = False
        sys.setswitchinterval(self._old_switch)
        gc.unfreeze()
        if self._gc_was_enabled:
            gc.enable()

    def collect_garbage(self) -> None:
        """While this stream holds automatic collection off: collect generations 0 and 1
        every GC_PERIOD_S, which takes well under a block. A burst of new objects (a model
        or tracker loading) is frozen instead: scanning it would hold the GIL for far
        longer than a block. Cyclic garbage that outlived a young collection waits in
        generation 2 until the stream stops. Thread: owner, never the callback."""
        if not self._gc_held:
            return
        now = time.monotonic()
        if now - self._gc_last < GC_PERIOD_S:
            return
        self._gc_last = now
        young = gc.get_count()[0]
        if young > GC_FREEZE_ABOVE:
            gc.freeze()
        elif young > 0:
            gc.collect(1)

    def watch(self) -> str | None:
        """Check the stream's health; restart it when its device is back. Returns a
        notice when something changed ("audio device lost: ...", "audio restored"), else
        None. Thread: owner, every ~0.5 s."""
        if not self._wanted:
            return None
        now = time.monotonic()
        if self.stream is not None:
            self.player_latency()        # its once-a-second re-check, here rather than in a stamp
            blocks = self.mixer.blocks
            stalled = blocks == self._blocks_at_check and now - self._check_time >= self.stall_s
            if blocks != self._blocks_at_check:
                self._blocks_at_check, self._check_time = blocks, now
            try:
                active = self.stream.active
            except Exception:            # PortAudio itself was torn down under us
                active = False
            if not active or stalled:
                self._close_stream()
                self.lost = ("audio output stopped (device unplugged or audio server gone); "
                             "LiveBand keeps recording what it has and retries every second")
                return "audio device lost: " + self.lost
            return None
        # Stream gone: try to reopen the same device every second. No PortAudio re-scan
        # here: that would close every other stream of the process (the microphone) and
        # the device entry (e.g. ALSA "default" -> PulseAudio) outlives its server.
        if now - self._check_time < 1.0:
            return None
        self._check_time = now
        try:
            self._open()
        except Exception:
            return None
        self.restarts += 1
        return "audio restored"

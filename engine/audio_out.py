"""The live audio output: a PortAudio stream whose callback renders the Mixer.

- The callback is C (engine/native/callback.c, ``lb_pa_callback``) whenever the mixer runs
  its C body (``Mixer.native``): PortAudio calls it directly, it never takes the GIL, so
  no Python thread (generator, pitch tracker, UI, garbage collector) can delay a block.
  Otherwise (no C library: ``Mixer.native_why`` says why) the Python callback
  ``_callback`` below does the same. Either only renders and counts: xruns from
  ``status.output_underflow``, errors turned into silence so PortAudio never aborts the
  stream, and one row of block timing (``engine.dac_timing.TimingRing``) per block.
- While the stream runs, the garbage collector is frozen and disabled (a full
  collection can stall a Python callback for tens of ms; ``collect_garbage`` does the
  young generations outside it) and the GIL switch interval is shortened so a busy
  Python thread hands the GIL over within ~0.5 ms instead of 5 ms. Both are restored on
  ``stop``.
- ``watch()`` (called by the owner every ~0.5 s) detects a device or server that went
  away (the callback stops arriving, or the stream finished), closes the stream, and
  re-opens it when the device is back. The mixer, its clock and any recording go on.
- A stream is closed on a daemon "reaper" thread (``_reap``): PortAudio's abort waits
  for a frozen server (SIGSTOPped, or starved) for as long as it stays frozen, and the
  owner calls us under the session lock. ``stop`` waits CLOSE_WAIT_S for it, a lost
  stream not at all; either way we go on as if it were gone, and no stream opens until
  every reaper is done (``streams_closing``).
- Player events get a time on the audio clock when they arrive (``arrival_time``, the
  mixer's timebase): the sample that reaches the DAC a fixed ``player_latency`` after the
  arrival, on the stream's DAC line (engine.dac_timing; docs/live.md has the
  measurements). That replaces "the start of the next block", whose delay varies by a
  whole block.

Devices, rates and thread priorities are engine.audio_devices'.

Thread: everything except the callback is called from one owner thread (UI/main or the
session's housekeeping thread). ``last_block_time`` / ``last_block_clock`` are written by
the callback and read by anyone (MIDI out uses them to place events in wall time).
"""

from __future__ import annotations

import ctypes
import gc
import math
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from engine import native as _nat
from engine.audio_devices import PA_LOCK, AudioUnavailable, make_io_realtime, make_realtime, sounddevice, thread_ids
from engine.dac_timing import ARRIVAL_WARMUP, LATENCY_RECHECK_S, LINE_BLOCKS, LatencyEstimator, TimingRing, dac_line
from engine.events import IMMEDIATE
from engine.native import TIMING_RING

if TYPE_CHECKING:
    from engine.mixer import Mixer

__all__ = ["AudioOut"]

CONV_BUCKET = 256  # blocks per bucket of the PortAudio-to-monotonic clock minimum
SLOW_START_S = 0.002  # a callback this late into Python waited for the GIL
LINE_REFRESH_S = 0.02  # refresh_line() recomputes the DAC line this often ...
LINE_FRESH_S = 0.1  # ... and a stamp uses a line this young without recomputing
GC_PERIOD_S = 0.5  # collect_garbage(): the young generations this often ...
GC_FREEZE_ABOVE = 5000  # ... unless this many new objects wait (a load): frozen instead
CLOSE_WAIT_S = 0.5  # stop()/an open wait this long for a close; a server that does not
# answer by then leaves the stream to its reaper (a healthy close takes a few ms)

_reapers: set[threading.Thread] = set()  # reapers still inside PortAudio
_reapers_lock = threading.Lock()  # guards the set only, never held over a PortAudio call


def _reap(stream: Any, keep: object) -> threading.Thread:
    """Abort and close ``stream`` on a daemon thread, which returns whenever PortAudio
    does. ``keep`` (the AudioOut whose memory the callback reads) stays alive until then.

    The abort (where a frozen PulseAudio holds us) runs without PA_LOCK, so that other
    PortAudio users (the microphone, device lists) need not wait with it: it only touches
    this stream's own state. The close unlinks the stream from PortAudio's global list, so
    it takes the lock as usual, though a frozen JACK (ALSA's jack plugin) holds us there:
    a stream on that server could not close meanwhile anyway."""

    def run(_keep: object) -> None:
        try:
            try:
                stream.abort()
            except Exception:
                pass
            with PA_LOCK:
                try:
                    stream.close()
                except Exception:
                    pass
        finally:
            with _reapers_lock:
                _reapers.discard(thread)

    thread = threading.Thread(target=run, args=(keep,), name="liveband-audio-reaper", daemon=True)
    with _reapers_lock:
        _reapers.add(thread)
    thread.start()
    return thread


def streams_closing(wait: float = 0.0) -> bool:
    """Whether a closed stream is still inside PortAudio (its server frozen), after
    waiting up to ``wait`` seconds for it. Opening another stream meanwhile would block on
    the same server (JACK: the client all streams share), and a device re-scan would
    close the stream under its reaper. Thread: any."""
    end = time.monotonic() + wait
    while True:
        with _reapers_lock:
            pending = next(iter(_reapers), None)
        if pending is None:
            return False
        left = end - time.monotonic()
        if left <= 0:
            return True
        pending.join(left)


class AudioOut:
    """Owns the output stream for one Mixer."""

    # Written by the callback (C or Python), read by anyone: engine.native's O_* / OD_*.
    _conv_n = _nat.int_field("_oi", _nat.O_CONV_N)
    last_block_clock = _nat.int_field("_oi", _nat.O_LAST_BLOCK_CLOCK)  # mixer.clock at the start of the last block
    rt_priority = _nat.int_field("_oi", _nat.O_RT_PRIO)  # 0: leave the callback thread's scheduling alone
    _conv_prev = _nat.dbl_field("_od", _nat.OD_CONV_PREV)  # PortAudio clock -> monotonic: min of the last bucket
    _conv_cur = _nat.dbl_field("_od", _nat.OD_CONV_CUR)  # ... and of the current one
    last_block_time = _nat.dbl_field("_od", _nat.OD_LAST_BLOCK_TIME)  # time.monotonic() at the last callback
    last_output_dac_offset = _nat.dbl_field(
        "_od", _nat.OD_LAST_DAC_OFFSET
    )  # seconds from callback to DAC of its 1st frame

    @property
    def realtime(self) -> bool | None:
        """Whether the callback thread got SCHED_FIFO (None until the first callback)."""
        v = int(self._oi[_nat.O_REALTIME])
        return None if v < 0 else bool(v)

    @realtime.setter
    def realtime(self, v: bool | None) -> None:
        self._oi[_nat.O_REALTIME] = -1 if v is None else int(bool(v))

    def __init__(
        self,
        mixer: Mixer,
        *,
        device: str | int | None = None,
        blocksize: int = 256,
        latency: str | float = "low",
        stall_s: float = 2.0,
        switch_interval: float = 0.0005,
        rt_priority: int = 70,
        player_latency: float | None = None,
        player_channel: int | None = None,
    ) -> None:
        if blocksize > mixer.max_block:
            raise ValueError(f"blocksize {blocksize} exceeds the mixer's max block {mixer.max_block}")
        if player_latency is not None and not player_latency > 0:
            raise ValueError(f"player latency must be positive seconds, got {player_latency}")
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
        self.lost: str | None = None  # why the device is gone (None: fine)
        self._conv_prev = math.inf
        self._conv_cur = math.inf
        self._blocks_at_check = -1
        self._check_time = 0.0
        self._gc_was_enabled = True
        self._gc_held = False
        self._gc_last = 0.0
        self._old_switch = sys.getswitchinterval()
        self._wanted = False
        # Per-block timing (written by the callback, read by anyone; see engine.dac_timing).
        self.timing = TimingRing(self._oi, _nat.O_BLK_N)
        self.rt_priority = rt_priority
        self.realtime = None
        self._rt_thread: int | None = None
        self.io_threads_realtime = 0  # server client threads raised to SCHED_FIFO
        self._native = None  # engine.native.OutState for the C callback
        if mixer.native:
            st = _nat.OutState()
            a, r = _nat.addr, self.timing
            st.m = mixer.native_state_address()
            st.ints, st.dbls = a(self._oi), a(self._od)
            st.blk_clock, st.blk_time, st.blk_dac = a(r.clock), a(r.time), a(r.dac)
            st.blk_lead, st.blk_entry, st.blk_xrun = a(r.lead), a(r.entry), a(r.xrun)
            self._native = st
        self._n_at_open = 0  # timing rows written before this stream opened
        self.estimator = LatencyEstimator()  # the player latency of the open stream
        # (blocks, dac_offset(), time.monotonic() when computed): one tuple, one store
        self._line_cache: tuple[int, float | None, float] = (-1, None, 0.0)
        self.last_stamp_time = 0.0  # time.monotonic() of the last arrival_time stamp
        # Diagnostics (the bench): called from the callback as hook(now, seconds) when a
        # callback started running Python over SLOW_START_S after PortAudio called it
        # (a GIL wait). It runs inside the callback: only for measuring.
        self.slow_start_hook: Callable[[float, float], None] | None = None
        self.player_latency_fixed = player_latency
        if player_channel is None:
            from engine.parts import MELODY

            player_channel = MELODY.channel
        self.player_channel = player_channel
        mixer.set_timebase(self.arrival_time)

    # -- the callback (Thread: audio) -----------------------------------------
    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        mixer = self.mixer
        if self._rt_thread != threading.get_ident():
            self._rt_thread = threading.get_ident()
            self.realtime = make_realtime(self.rt_priority)
        now = self.last_block_time = time.monotonic()
        self.last_block_clock = mixer.clock
        try:
            pa_now = time_info.currentTime
            dac = time_info.outputBufferDacTime - pa_now
            # PortAudio's time just before it called us minus ours once Python runs: a
            # constant (its clock is CLOCK_REALTIME here) plus however long the callback
            # waited for the GIL. The DAC time goes onto the monotonic clock with that
            # constant alone (the smallest such difference of the last 256-512 blocks),
            # not with our own entry time, which would carry each callback's GIL wait.
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
            underflow = bool(status.output_underflow)
            self.timing.push(self.last_block_clock, now, dac_abs, dac + frames / mixer.sample_rate, entry, underflow)
            mb = mixer.max_block
            if frames <= mb:
                mixer.process(outdata, underflow)
            else:  # a host that ignores the block size: render in pieces
                for s in range(0, frames, mb):
                    mixer.process(outdata[s : min(frames, s + mb)], underflow and s == 0)
        except Exception:
            self.callback_errors += 1
            outdata.fill(0.0)

    # -- timing (Thread: any) ----------------------------------------------------
    @property
    def opened_at(self) -> float:
        """time.monotonic() when the stream was last (re)opened (0.0: never)."""
        return self.estimator.opened_at

    def block_at(self, sample: int) -> tuple[int, float, float] | None:
        """(block start sample, callback time, DAC time of its first frame) for the
        block that rendered ``sample``, if it is still in the timing ring."""
        return self.timing.block_at(sample)

    def first_block_after(self, t: float) -> tuple[int, float, float] | None:
        """The first block whose callback ran at or after monotonic time ``t``:
        (block start sample, callback time, DAC time)."""
        return self.timing.first_block_after(t)

    def player_latency(self) -> float | None:
        """Seconds from a player event's arrival to its first frame at the DAC (None until
        the stream has played ARRIVAL_WARMUP blocks): the fixed value given, else the
        one engine.dac_timing.LatencyEstimator measures from this stream's blocks,
        re-measured at most every LATENCY_RECHECK_S. Thread: any."""
        n = self.timing.n
        if self.stream is None or min(n - self._n_at_open, TIMING_RING) < ARRIVAL_WARMUP:
            return None
        if self.player_latency_fixed is not None:
            return self.player_latency_fixed
        now = time.monotonic()
        est = self.estimator
        lat = est.value
        if lat is not None and now - est.checked_at < LATENCY_RECHECK_S:
            return lat
        return est.update(self.timing.rows(self._n_at_open, n), self.mixer.sample_rate, now)

    def dac_offset(self) -> float | None:
        """The stream's DAC line: DAC time of sample ``s`` = ``s / rate + dac_offset()``
        (engine.dac_timing.dac_line over this stream's last blocks). None before the
        stream has timing. Thread: any."""
        n = self.timing.n
        cached_n, cached, _ = self._line_cache
        if n == cached_n:
            return cached
        computed_at = time.monotonic()
        if self.stream is None or n - self._n_at_open <= 0:
            return None
        off = dac_line(self.timing.rows(max(self._n_at_open, n - LINE_BLOCKS), n), self.mixer.sample_rate)
        self._line_cache = (n, off, computed_at)  # one store: readers see all three
        return off

    def refresh_line(self) -> None:
        """Recompute the DAC line if it is over LINE_REFRESH_S old, so that a player's
        stamp finds it ready. Thread: one helper that runs every few ms (the session's
        dispatcher), never a player's: numpy between a stamp's clock read and its push
        is a window in which the player's thread can lose the GIL for ms, and the note
        then plays late."""
        if time.monotonic() - self._line_cache[2] >= LINE_REFRESH_S:
            self.dac_offset()

    def arrival_time(self, arrived: float | None = None) -> int:
        """The audio-clock sample at which an event that reached LiveBand at monotonic
        time ``arrived`` (None: now) should sound: the one that reaches the DAC
        ``player_latency()`` after it, on the stream's DAC line (``dac_offset``).
        IMMEDIATE (the next block) while there is no stream timing.
        Thread: any event producer (the mixer's timebase).

        The note is timed from ``arrived``, read by the key or MIDI handler first thing,
        so the Python from there to here does not move it. From here to the push only
        arithmetic runs: the latency and the line are read as another thread left them
        (``watch`` re-checks the latency every second, ``refresh_line`` the line every
        LINE_REFRESH_S); they are computed here only when nobody did lately."""
        now = time.monotonic()
        if arrived is None or arrived > now:
            arrived = now
        est = self.estimator
        lat = est.value
        if lat is None or self.player_latency_fixed is not None or now - est.checked_at > 2 * LATENCY_RECHECK_S:
            lat = self.player_latency()
        if lat is None:
            return IMMEDIATE
        _, off, computed_at = self._line_cache
        if off is None or now - computed_at > LINE_FRESH_S:
            off = self.dac_offset()
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
        rate: int = self.mixer.sample_rate
        return rate

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
        if not self._gc_held:  # (held already when taken over from a stream it replaces)
            self._hold_gc()  # a full collection now (the stream only plays silence yet)

    def _open(self) -> None:
        if streams_closing(CLOSE_WAIT_S):
            raise AudioUnavailable(
                "the last audio stream is still closing: the audio server does not answer (frozen or overloaded)"
            )
        sd = sounddevice()
        before = thread_ids()
        try:
            PA_LOCK.acquire()
            if self._native is not None:
                # PortAudio calls lb_pa_callback itself, with our state as its user data
                # (sounddevice takes a C function pointer when nothing wraps it)
                self._native.rt_known = 0
                stream = sd._StreamBase(
                    kind="output",
                    samplerate=self.sample_rate,
                    blocksize=self.blocksize,
                    device=self.device,
                    channels=2,
                    dtype="float32",
                    latency=self.latency_hint,
                    callback=_nat.callback_address(),
                    userdata=sd._ffi.cast("void *", ctypes.addressof(self._native)),
                    wrap_callback=None,
                )
            else:
                stream = sd.OutputStream(
                    samplerate=self.sample_rate,
                    blocksize=self.blocksize,
                    device=self.device,
                    channels=2,
                    dtype="float32",
                    latency=self.latency_hint,
                    callback=self._callback,
                )
            stream.start()
        except Exception as exc:
            raise AudioUnavailable(
                f"cannot open audio output {self.device or '(default)'} at "
                f"{self.sample_rate} Hz, {self.blocksize} frames: {exc}"
            ) from None
        finally:
            PA_LOCK.release()
        self.stream = stream
        self.io_threads_realtime = make_io_realtime(before, self.rt_priority - 1)  # just below the callback
        self._n_at_open = self.timing.n
        self.estimator.reset(opened_at=time.monotonic())
        self._conv_prev = self._conv_cur = math.inf
        self._conv_n = 0
        self._line_cache = (-1, None, 0.0)
        self.lost = None
        self._blocks_at_check = -1
        self._check_time = time.monotonic()

    def _close_stream(self, wait: float) -> None:
        """Hand the stream to a reaper and wait up to ``wait`` s for it to be closed."""
        s, self.stream = self.stream, None
        if s is not None:
            _reap(s, self).join(wait)

    def stop(self) -> None:
        self._wanted = False
        self._close_stream(CLOSE_WAIT_S)
        self.mixer.set_live(False)
        self._release_gc()

    def hand_over(self, new: AudioOut) -> None:
        """Stop this stream for ``new`` (the same mixer on another device or block size),
        which the caller starts next: the collector stays held between the two, since
        releasing it and holding it again is a full collection that keeps the GIL for
        ~0.2 s (a frozen UI; a silent block with the Python callback). Should ``new`` not
        start, its ``stop`` releases the collector as this one would have."""
        self._wanted = False
        self._close_stream(CLOSE_WAIT_S)
        self.mixer.set_live(False)
        if self._gc_held:
            new._gc_was_enabled, new._old_switch, new._gc_last = self._gc_was_enabled, self._old_switch, self._gc_last
            new._gc_held, self._gc_held = True, False

    def _hold_gc(self) -> None:
        self._gc_was_enabled = gc.isenabled()
        gc.collect()
        gc.freeze()  # what exists now is never scanned again while we play
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

    def settle_garbage(self) -> None:
        """A load has just finished (the model, the tracker): freeze what it made now,
        without scanning it, so that objects made from here on are young and the next
        ``collect_garbage`` frees them; left to the periodic check, the load's tail and
        whatever the player's code made in the same half second would be frozen together
        and never freed while the stream plays. Thread: owner, never the callback."""
        if self._gc_held:
            gc.freeze()
            self._gc_last = time.monotonic()

    def watch(self) -> str | None:
        """Check the stream's health; restart it when its device is back. Returns a
        notice when something changed ("audio device lost: ...", "audio restored"), else
        None. Thread: owner, every ~0.5 s."""
        if not self._wanted:
            return None
        now = time.monotonic()
        if self.stream is not None:
            self.player_latency()  # its once-a-second re-check, here rather than in a stamp
            blocks = self.mixer.blocks
            stalled = blocks == self._blocks_at_check and now - self._check_time >= self.stall_s
            if blocks != self._blocks_at_check:
                self._blocks_at_check, self._check_time = blocks, now
            try:
                active = self.stream.active
            except Exception:  # PortAudio itself was torn down under us
                active = False
            if not active or stalled:
                self._close_stream(0.0)  # not waited for: the server may be frozen
                self.lost = (
                    "audio output stopped (device unplugged, audio server gone or not answering); "
                    "LiveBand keeps recording what it has and retries every second"
                )
                return "audio device lost: " + self.lost
            return None
        # Stream gone: try to reopen the same device every second, once the old stream's
        # close has returned (streams_closing). No PortAudio re-scan here: that would close
        # every other stream of the process (the microphone) and the device entry (e.g.
        # ALSA "default" -> PulseAudio) outlives its server.
        if now - self._check_time < 1.0 or streams_closing():
            return None
        self._check_time = now
        try:
            self._open()
        except Exception:
            return None
        self.restarts += 1
        return "audio restored"

"""The body of the audio callback: timed events -> SoundFont synth -> mix -> limiter.

``Mixer.process(out)`` renders one block. It is the same code live (called from the
sounddevice callback, the clock is the device's sample counter) and offline (called in
a loop by the renderer, the clock is simulated), so what tests render is what players
hear.

Per block it
1. applies pending control changes (part volume / mute as CC7, programs) that other
   threads requested through setters (setters only store values and bump a version;
   the audio thread applies them: no locks),
2. pops every event due before the block's end from each registered ``EventQueue``,
3. renders the synth in segments split at the events' sample offsets, so an event at
   offset k is heard from sample k (sample-accurate, not block-quantised),
4. applies master gain and a peak limiter (gain ramps within the block; a final clamp
   guarantees |x| <= ceiling even on a transient faster than the ramp),
5. hands the finished mix to an optional recorder tap, adds the metronome click (the
   click is for the player, so it is not recorded), counts its own work time, and
   advances ``clock``.

Where it runs: in C (engine/native/callback.c, ``lb_process``; engine.mixer_native links
it) whenever that library loads and the synth is engine.synth.Synth: live, PortAudio calls
the C callback directly (engine.audio_out), so no Python thread holding the GIL can delay a block; offline,
``process`` calls the same C function. The Python body (engine.mixer_body) is the
fallback for other synths or when the library cannot be built; it calls FluidSynth
through engine.synth's GIL-holding bindings (``Synth.gil_holding``: ctypes PYFUNCTYPE,
which keeps the GIL while in C, where a CFUNCTYPE call would release it and then wait
to win it back from whichever thread took it, possibly preempted, at every call). Both share one state:
counters, controls and the metronome live in numpy arrays the C side reads and writes
(``_ints``, ``_dbls``, the per-channel arrays), queues and the tap are published to it as
descriptor tables that stay alive. The click itself is engine.metronome's.

It counts the xruns the audio stream reports (``xruns``), and apart those beside sound
(``audible_xruns``: the player's dropout counter; an idle stream's gaps are silence).

Thread contract: ``process`` runs on one thread (audio live, render offline). It
allocates no numpy buffers (only Python scalars/views), does no I/O, no logging, and
takes no lock. Every ``set_*`` method is "Thread: any" (a plain attribute/element store
that the GIL makes atomic). ``add_queue`` happens before the stream starts (or is
published as a new tuple, which is atomic). Statistics readers are "Thread: any".
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from engine import native as _nat
from engine.events import EVENT_DTYPE, IMMEDIATE, EventQueue
from engine.metronome import Metronome
from engine.mixer_body import NUM_CHANNELS, PLAYER_PHASES, PLAYER_VOICES, SYNTH_PERIOD, WORK_RING, MixerBody
from engine.mixer_native import NativeLink, open_native
from engine.ring import AudioRing
from engine.tap_bridge import TapBridge

__all__ = ["Mixer"]


def _callback_synth(synth, hold_gil: bool):
    """The synth interface the Python body calls: engine.synth's GIL-holding bindings
    when possible, else the object itself (any Synth-like object works)."""
    if hold_gil:
        try:
            return synth.gil_holding()
        except Exception:  # another synth class, or a closed one
            pass
    return synth


class Mixer(MixerBody):
    """Sample-accurate event-driven mixer around one ``engine.synth.Synth``.

    ``out`` blocks are float32 arrays of shape (frames, 2), C-contiguous, with
    frames <= ``max_block``.
    """

    # Shared with the C callback (engine.native's I_* / D_* indices).
    clock = _nat.int_field("_ints", _nat.I_CLOCK)  # master clock: samples rendered so far
    blocks = _nat.int_field("_ints", _nat.I_BLOCKS)
    xruns = _nat.int_field("_ints", _nat.I_XRUNS)
    audible_xruns = _nat.int_field("_ints", _nat.I_AUDIBLE_XRUNS)  # xruns beside sound (what the listener hears)
    nonfinite_blocks = _nat.int_field("_ints", _nat.I_NONFINITE)  # blocks of NaN/inf audio replaced by silence
    late_events = _nat.int_field("_ints", _nat.I_LATE)  # events that arrived after their time
    events_applied = _nat.int_field("_ints", _nat.I_APPLIED)
    _ctl_version = _nat.int_field("_ints", _nat.I_CTL_VERSION)
    _ctl_applied = _nat.int_field("_ints", _nat.I_CTL_APPLIED)
    _reset_requested = _nat.int_field("_ints", _nat.I_RESET)
    _player_ch = _nat.int_field("_ints", _nat.I_PLAYER_CH)
    dropped_notes = _nat.int_field("_ints", _nat.I_DROPPED)  # player notes a flood left unplayed
    peak = _nat.dbl_field("_dbls", _nat.D_PEAK)  # peak |x| of the last block after limiting
    gain_reduction_db = _nat.dbl_field("_dbls", _nat.D_GR_DB)
    _gain = _nat.dbl_field("_dbls", _nat.D_GAIN)
    _master = _nat.dbl_field("_dbls", _nat.D_MASTER)
    _ceiling = _nat.dbl_field("_dbls", _nat.D_CEILING)
    _release = _nat.dbl_field("_dbls", _nat.D_RELEASE)

    def __init__(
        self,
        synth,
        sample_rate: int,
        max_block: int,
        *,
        events_per_block: int = 512,
        master_gain: float = 1.0,
        ceiling: float = 0.98,
        release_s: float = 0.25,
        hold_gil: bool = True,
        native: bool | None = None,
    ) -> None:
        """``native``: None (default) runs the C mixer when it loads and the synth is
        engine.synth.Synth; False forces the Python body; True raises when C is not
        possible."""
        if max_block <= 0:
            raise ValueError("max_block must be positive")
        if not 0.0 < ceiling <= 1.0:
            raise ValueError("limiter ceiling must be in (0, 1]")
        self._ints = np.zeros(_nat.N_INTS, dtype=np.int64)
        self._dbls = np.zeros(_nat.N_DBLS, dtype=np.float64)
        self.synth = synth
        self._hold_gil = hold_gil
        self._synth = _callback_synth(synth, hold_gil)  # what process() calls
        self.sample_rate = int(sample_rate)
        self.max_block = int(max_block)
        self._ints[_nat.I_MAX_BLOCK] = self.max_block
        self._ints[_nat.I_EV_CAP] = int(events_per_block)
        self._queues: tuple[EventQueue, ...] = ()
        self._events = np.zeros(events_per_block, dtype=EVENT_DTYPE)
        # Field views made once: reading ints from them allocates no arrays per block.
        self._ev_time = self._events["time"]
        self._ev_kind = self._events["kind"]
        self._ev_chan = self._events["channel"]
        self._ev_d1 = self._events["data1"]
        self._ev_d2 = self._events["data2"]
        self._log: EventQueue | None = None  # optional EventQueue receiving applied events
        self._tap = None  # optional object with write(block) (recorder)
        # Limiter state and scratch.
        self._master = float(master_gain)
        self._ceiling = float(ceiling)
        self._gain = 1.0
        self._release = math.exp(-1.0 / max(1e-3, release_s * self.sample_rate))
        self._ramp = np.arange(1, self.max_block + 1, dtype=np.float32) / self.max_block
        self._gbuf = np.zeros(self.max_block, dtype=np.float32)
        self._abs = np.zeros((self.max_block, 2), dtype=np.float32)
        # Per-channel volume / mute / program requested by other threads.
        self._vol = np.full(NUM_CHANNELS, 127, dtype=np.int16)  # user fader 0..127 (127 = unity)
        self._part_cc7 = np.full(NUM_CHANNELS, 100, dtype=np.int16)  # last CC7 the events asked for
        self._mute = np.zeros(NUM_CHANNELS, dtype=bool)
        self._prog = np.full(NUM_CHANNELS, -1, dtype=np.int16)  # -1: leave as is
        self._ctl_applied = -1
        self._applied_vol = np.full(NUM_CHANNELS, -1, dtype=np.int16)
        self._applied_prog = np.full(NUM_CHANNELS, -1, dtype=np.int16)
        self._metronome = Metronome(self.sample_rate, self.max_block, self._ints, self._dbls)
        # The player's phase set (see enable_player_phases): the extra synths, one scratch
        # block each, where each synth's 64-frame periods start relative to the clock
        # (index 0: the main synth, k + 1: extra k), and which synth holds each sounding
        # player pitch (0 none, 1 the main synth, k + 2 extra k).
        self._extra: tuple = ()
        self._extra_synths: tuple = ()
        self._player_ch = -1
        self._xbuf = np.zeros((PLAYER_PHASES, self.max_block, 2), dtype=np.float32)
        self._xpos = [0] * PLAYER_PHASES  # render position of each synth in the block
        self._phase = self._ints[_nat.I_PHASE0 : _nat.I_PHASE0 + PLAYER_PHASES + 1]
        self._phase[0] = int(getattr(synth, "frames_rendered", 0)) % SYNTH_PERIOD
        self._held = np.zeros(128, dtype=np.uint8)
        # each extra synth's latest period with a note start, and how many notes it starts there
        self._xper = self._ints[_nat.I_XPER0 : _nat.I_XPER0 + PLAYER_PHASES]
        self._xper[:] = -1
        self._xstarts = self._ints[_nat.I_XSTARTS0 : _nat.I_XSTARTS0 + PLAYER_PHASES]
        self._timebase: Callable[[float | None], int] | None = None  # the sample an event arriving now sounds at
        # Work-time ring (nanoseconds per block) and the block size each was measured on.
        self.work_ns = np.zeros(WORK_RING, dtype=np.int64)
        self.work_frames = np.zeros(WORK_RING, dtype=np.int32)
        self._bridge: TapBridge | None = None
        self._live = False
        self._native: NativeLink | None = None  # the C mixer (None: the Python body)
        self.native_why: str | None = "Python body requested"  # why not C (None: C runs)
        if native is not False:
            self._native, self.native_why = open_native(self)
            if self._native is None and native:
                raise RuntimeError(f"the C mixer is not available: {self.native_why}")

    @property
    def native(self) -> bool:
        """True when blocks are rendered by the C mixer (and, live, the C callback)."""
        return self._native is not None

    def native_state_address(self) -> int:
        """Address of the C mixer's state (engine.audio_out hands it to the C callback)."""
        if self._native is None:
            raise RuntimeError(f"the C mixer is not running: {self.native_why}")
        return self._native.address

    def set_live(self, live: bool) -> None:
        """A stream is about to call the C callback (True) or has stopped (False): a
        Python tap is then fed from its own thread. Thread: owner."""
        self._live = bool(live)
        b = self._bridge
        if b is not None:
            if live:
                b.start()
            else:
                b.stop()
                b.drain()

    def _publish_queues(self) -> None:
        if self._native is not None:
            self._native.set_queues(self._queues, self.blocks, self._live)

    # -- wiring (before start) -------------------------------------------------
    def add_queue(self, q: EventQueue) -> None:
        """Register an event source. Its IMMEDIATE pushes are stamped with
        ``arrival_time`` (a fixed delay after they arrive, once a live timebase is set).
        Thread: any (published as a new tuple)."""
        q.stamper = self.arrival_time
        if self._native is not None and len(self._queues) >= _nat.MAX_QUEUES:
            raise ValueError(f"at most {_nat.MAX_QUEUES} event queues per mixer")
        self._queues = self._queues + (q,)
        self._publish_queues()

    def set_timebase(self, fn) -> None:
        """``fn(arrived)`` returns the audio-clock sample an event that arrived at
        monotonic time ``arrived`` (None: now) should sound at,
        or IMMEDIATE when it cannot tell (engine.audio_out.AudioOut.arrival_time).
        Thread: owner (a plain attribute store)."""
        self._timebase = fn

    def arrival_time(self, arrived: float | None = None) -> int:
        """Where a player event that arrived at monotonic time ``arrived`` (None: now)
        goes on the audio clock (IMMEDIATE offline: the start of the next block).
        Thread: any event producer."""
        fn = self._timebase
        return IMMEDIATE if fn is None else fn(arrived)

    def enable_player_phases(self, channel: int, phases: int = PLAYER_PHASES) -> bool:
        """Play ``channel`` (the player's) on ``phases`` synths of its own whose 64-frame
        periods are spread evenly over a period, each note going to the one whose next
        period starts first among those with voices free.

        Why: FluidSynth starts a note only at its next period boundary, so one synth
        quantises a note's start to 64 frames (1.33 ms at 48 kHz) however finely the block
        is split. N shifted synths cut the wait to at most 64/N - 1 frames: with 4, 15
        frames (0.31 ms), which keeps the player's note-to-sound jitter well under 1 ms.
        An extra synth shares the SoundFont's samples through FluidSynth's sample cache
        and costs its idle render (the reverb) per block. The band keeps the main synth
        to itself (its events are on the step grid, already planned ahead).

        Why synths of its own, each limited to PLAYER_VOICES / phases voices: a flood of
        notes (a stuck or runaway controller, pedal down) then cannot take more than
        PLAYER_VOICES voices, nor steal the band's: FluidSynth steals within the player's
        synths (released voices first, then pedalled, then the oldest). A note goes to a
        later phase only when the sooner synths are full, so a chord is not cut short.
        Returns False when the synth cannot be duplicated (then the main synth plays the
        player, one phase, no limit). Thread: owner, while no stream runs (it builds synths).
        """
        if not 1 <= phases <= PLAYER_PHASES:
            raise ValueError(f"player phases must be 1-{PLAYER_PHASES}, got {phases}")
        if not self._extra:
            make = getattr(self.synth, "twin", None)
            if make is None:
                return False
            main_phase = int(self._phase[0])
            bufs = self._xbuf
            extra, twins, phase = [], [], [main_phase]
            for k in range(phases):
                twin = make(polyphony=PLAYER_VOICES // phases)
                # Pre-render silence so this synth's periods start k/N of a period after
                # the main synth's on the current clock; from now on all render every frame.
                shift = k * SYNTH_PERIOD // phases
                lead = (self.clock + main_phase + shift) % SYNTH_PERIOD
                if lead:
                    twin.render_into(bufs[k], 0, lead)
                phase.append((main_phase + shift) % SYNTH_PERIOD)
                extra.append(_callback_synth(twin, self._hold_gil))
                twins.append(twin)
            link = self._native
            if link is not None:
                for k, twin in enumerate(twins):
                    link.state.synths[k + 1] = twin.native_ref()
            # Re-send every channel's volume and program so the new synths match.
            self._applied_vol[:] = -1
            self._applied_prog[:] = -1
            self._held[:] = 0
            self._phase[: len(phase)] = phase
            self._extra = tuple(extra)
            self._extra_synths = tuple(twins)
            self._ints[_nat.I_NEXTRA] = len(twins)  # last: the C side then uses them
            self._ctl_version += 1
        self._player_ch = int(channel)
        return bool(self._extra)

    def remove_queue(self, q: EventQueue) -> None:
        self._queues = tuple(x for x in self._queues if x is not q)
        self._publish_queues()

    def set_event_log(self, q: EventQueue | None) -> None:
        """Every applied event is pushed here with its resolved sample time (for the
        recorder and MIDI out). The mixer is that queue's only producer."""
        self._log = q
        if self._native is not None:
            self._native.set_log(q, self.blocks, self._live)

    @property
    def tap(self):
        """The tap set by ``set_tap`` (None: none), so a probe put in front of it can pass
        each block on (e.g. the audio bench in front of a take's recorder). Thread: any."""
        return self._tap

    def set_tap(self, tap) -> None:
        """``tap.write(block, clock)`` receives each finished block and its first sample
        on the audio clock (before the metronome is added).
        It must not block or allocate (e.g. engine.ring.AudioRing). With the C mixer an
        AudioRing is written by the callback itself; any other tap gets the blocks through
        a ring and a thread (engine.tap_bridge): the same blocks, a few ms later."""
        link = self._native
        old = self._bridge
        if link is not None:
            bridge = None
            if tap is None:
                ref = None
            elif type(tap) is AudioRing:
                ref = tap.native_ref()
            else:
                bridge = TapBridge(tap, self.sample_rate, self.max_block)
                ref = bridge.ref
            link.set_tap(ref, (tap, bridge), self.blocks, self._live)
            self._bridge = bridge
            if bridge is not None and self._live:
                bridge.start()
            if old is not None:  # blocks already in its ring still reach the old tap
                old.stop()
                old.drain()
        self._tap = tap

    # -- controls (Thread: any) --------------------------------------------------
    def set_channel_volume(self, channel: int, volume: float) -> None:
        """User fader 0..1 on a MIDI channel (1 = the part's own level), applied at the
        next block as CC7 = the events' own CC7 x fader."""
        v = min(1.0, max(0.0, float(volume)))
        self._vol[channel] = int(round(v * 127))
        self._ctl_version += 1

    def set_channel_mute(self, channel: int, mute: bool) -> None:
        self._mute[channel] = bool(mute)
        self._ctl_version += 1

    def set_program(self, channel: int, program: int) -> None:
        if not 0 <= program < 128:
            raise ValueError(f"GM program must be 0-127, got {program}")
        self._prog[channel] = program
        self._ctl_version += 1

    def set_master_gain(self, gain: float) -> None:
        if not (gain >= 0.0 and math.isfinite(gain)):
            raise ValueError(f"master gain must be >= 0, got {gain}")
        self._master = float(gain)

    def set_metronome(
        self,
        on: bool,
        origin: float = 0.0,
        samples_per_beat: float | None = None,
        beats_per_bar: int = 4,
        gain: float = 0.5,
        first_beat: int = 0,
    ) -> None:
        """The player's click, not recorded: every beat from sample ``origin`` on, the
        previous grid until then (engine.metronome.Metronome.set)."""
        self._metronome.set(on, origin, samples_per_beat, beats_per_bar, gain, first_beat)

    def all_notes_off(self) -> None:
        """Silence every channel at the next block (sustain released first)."""
        self._reset_requested = 1

    # -- statistics (Thread: any) --------------------------------------------------
    def work_stats(self) -> dict:
        """p50/p99/max callback work time (ms) over the last WORK_RING blocks, and the
        same relative to each block's duration (load 1.0 = the whole budget)."""
        n = min(self.blocks, WORK_RING)
        if n == 0:
            return {
                "blocks": 0,
                "p50_ms": 0.0,
                "p99_ms": 0.0,
                "max_ms": 0.0,
                "p50_load": 0.0,
                "p99_load": 0.0,
                "max_load": 0.0,
            }
        w = self.work_ns[:n].astype(np.float64) / 1e6
        budget = self.work_frames[:n].astype(np.float64) * 1000.0 / self.sample_rate
        load = w / np.maximum(budget, 1e-9)
        return {
            "blocks": int(self.blocks),
            "p50_ms": float(np.percentile(w, 50)),
            "p99_ms": float(np.percentile(w, 99)),
            "max_ms": float(w.max()),
            "p50_load": float(np.percentile(load, 50)),
            "p99_load": float(np.percentile(load, 99)),
            "max_load": float(load.max()),
        }

    # -- the audio path --------------------------------------------------------
    def process(self, out: np.ndarray, xrun: bool = False) -> None:
        """Render one block into ``out`` (shape (frames, 2) float32 C-contiguous,
        frames <= max_block).

        Thread: audio (live, Python callback) or render (offline); one thread at a time.
        """
        if self._native is not None:
            if out.dtype != np.float32 or not out.flags.c_contiguous or out.ndim != 2 or out.shape[1] != 2:
                raise ValueError("mixer blocks must be C-contiguous float32 (frames, 2)")
            if out.shape[0] > self.max_block:
                raise ValueError(f"block of {out.shape[0]} frames exceeds max_block {self.max_block}")
            self._native.process(out, xrun)
            b = self._bridge
            if b is not None and b._thread is None:
                b.drain()
            return
        self._process_py(out, xrun)

    # -- offline convenience ---------------------------------------------------
    def render(self, frames: int, block: int | None = None) -> np.ndarray:
        """Run ``process`` over ``frames`` samples in blocks (offline only: allocates
        the result). Returns (frames, 2) float32."""
        block = block or self.max_block
        result = np.zeros((frames, 2), dtype=np.float32)
        buf = np.zeros((self.max_block, 2), dtype=np.float32)
        done = 0
        while done < frames:
            n = min(block, frames - done)
            view = buf[:n]
            self.process(view)
            result[done : done + n] = view
            done += n
        return result

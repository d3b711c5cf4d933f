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

Where it runs: in C (engine/native/callback.c, ``lb_process``) whenever that library
loads and the synth is engine.synth.Synth: live, PortAudio calls the C callback directly
(engine.audio_out), so no Python thread holding the GIL can delay a block; offline,
``process`` calls the same C function. The Python body below (``_process_py``) is the
fallback for other synths or when the library cannot be built. Both share one state:
counters, controls and the metronome live in numpy arrays the C side reads and writes
(``_ints``, ``_dbls``, the per-channel arrays), queues and the tap are published to it as
descriptor tables that stay alive.

It counts the xruns the audio stream reports (``xruns``), and apart those beside sound
(``audible_xruns``: the player's dropout counter; an idle stream's gaps are silence).

Thread contract: ``process`` runs on one thread (audio live, render offline). It
allocates no numpy buffers (only Python scalars/views), does no I/O, no logging, and
takes no lock. Every ``set_*`` method is "Thread: any" (a plain attribute/element store
that the GIL makes atomic). ``add_queue`` happens before the stream starts (or is
published as a new tuple, which is atomic). Statistics readers are "Thread: any".
"""
from __future__ import annotations

import ctypes
import math
import threading
import time

import numpy as np

from engine import native as _nat

from engine.events import (ALL_OFF, CC_ALL_NOTES_OFF, CONTROL, EVENT_DTYPE, IMMEDIATE, NOTE_OFF, NOTE_ON, PROGRAM,
                           EventQueue)

NUM_CHANNELS = 16


class _GilHoldingSynth:
    """The four FluidSynth calls the callback makes, bound as ``ctypes.PYFUNCTYPE``
    prototypes: unlike pyfluidsynth's CFUNCTYPE bindings they keep the GIL while in C.

    Why: a CFUNCTYPE call releases the GIL and must win it back afterwards. On a busy
    machine the thread that took it meanwhile (the model, the pitch tracker) may be
    preempted while holding it, and the real-time callback then waits for that thread
    to be scheduled again: several such hand-offs per block are what make the p99 of
    the callback's work time. Holding the GIL for the few hundred microseconds of
    rendering costs the other threads nothing they would notice.
    """

    def __init__(self, synth) -> None:
        import ctypes

        from engine.synth import fluidsynth_library

        lib = fluidsynth_library()
        c_int, c_void_p = ctypes.c_int, ctypes.c_void_p
        proto = ctypes.PYFUNCTYPE
        self._h = synth._synth.synth
        self._write = proto(c_int, c_void_p, c_int, c_void_p, c_int, c_int, c_void_p, c_int, c_int)(
            ("fluid_synth_write_float", lib))
        self._noteon = proto(c_int, c_void_p, c_int, c_int, c_int)(("fluid_synth_noteon", lib))
        self._noteoff = proto(c_int, c_void_p, c_int, c_int)(("fluid_synth_noteoff", lib))
        self._cc = proto(c_int, c_void_p, c_int, c_int, c_int)(("fluid_synth_cc", lib))
        self._voices = proto(c_int, c_void_p)(("fluid_synth_get_active_voice_count", lib))
        self.synth = synth

    def render_into(self, out: np.ndarray, start: int, stop: int) -> None:
        n = stop - start
        if n > 0:
            base = out.ctypes.data + start * 8
            self._write(self._h, n, base, 0, 2, base, 1, 2)
            self.synth.frames_rendered += n

    def note_on(self, channel: int, pitch: int, velocity: int) -> None:
        self._noteon(self._h, channel, pitch & 127, velocity & 127)

    def note_off(self, channel: int, pitch: int) -> None:
        self._noteoff(self._h, channel, pitch & 127)

    def control_change(self, channel: int, control: int, value: int) -> None:
        self._cc(self._h, channel, control & 127, value & 127)

    def set_program(self, channel: int, program: int) -> None:
        self.synth.set_program(channel, program)

    def active_voices(self) -> int:
        return self._voices(self._h)


def _native_functions():
    """FluidSynth's entry points for the C mixer, or None."""
    try:
        from engine.synth import native_functions
    except ImportError:
        return None
    return native_functions()


def _overrides_synth(synth) -> bool:
    """True when ``synth`` changes what the callback calls (a subclass's own render_into,
    note or control methods): C would bypass them, so such a synth plays through Python."""
    try:
        from engine.synth import Synth
    except ImportError:
        return True
    names = ("render_into", "note_on", "note_off", "control_change", "set_program", "active_voices", "twin")
    return not isinstance(synth, Synth) or any(getattr(type(synth), n) is not getattr(Synth, n) for n in names)


def _callback_synth(synth, hold_gil: bool):
    """The synth interface the callback uses: GIL-holding bindings for engine.synth.Synth
    when possible, else the object itself (any Synth-like object works)."""
    if hold_gil:
        try:
            if synth._synth is not None and synth._synth.synth:
                return _GilHoldingSynth(synth)
        except Exception:   # another synth class, or pyfluidsynth without these symbols
            pass
    return synth
CC_VOLUME, CC_SUSTAIN = 7, 64
# All sound off, reset all controllers, all notes off: a panic. FluidSynth keeps notes the
# pedal holds through CC123 and leaves reset voices sustained, so each lifts the pedal first.
PANIC_CCS = (120, 121, CC_ALL_NOTES_OFF)
SYNTH_PERIOD = 64            # FluidSynth applies events only at these frame boundaries
PLAYER_PHASES = 4            # synths for the player's channel, a quarter period apart
PLAYER_VOICES = 64           # the player's voices at most, over all its synths (floods)
STARTS_PER_PERIOD = 4        # player notes one synth starts per 64-frame period at most
POST_CHUNK = 224             # frames: 448 samples stay under numpy's 500-element GIL release
WORK_RING = 1 << 14          # durations kept for p50/p99 (about 87 s of 256-frame blocks)
BRIDGE_S = 2.0               # a Python tap's ring (see _TapBridge)
BRIDGE_POLL_S = 0.002


def _int_field(i: int):
    return property(lambda self: int(self._ints[i]), lambda self, v: self._ints.__setitem__(i, v))


def _dbl_field(i: int):
    return property(lambda self: float(self._dbls[i]), lambda self, v: self._dbls.__setitem__(i, v))


class _TapBridge:
    """A Python tap (any object with ``write(block, clock)``) behind the C callback: the
    callback writes the finished blocks into ``ring`` and this hands them on, from its own
    thread while a stream plays (``start``), else from ``drain`` after each block.
    The tap sees the same blocks at the same clock samples, a few ms later. (A tap over
    BRIDGE_S behind loses blocks, counted in ``ring.overflows``, and the clocks it is
    given are then early by what was lost: for measuring and tests, not recording.)"""

    def __init__(self, tap, sample_rate: int, max_block: int) -> None:
        from engine.ring import AudioRing

        self.tap = tap
        self.ring = AudioRing(int(BRIDGE_S * sample_rate))
        self.ref = self.ring.native_ref()
        self._buf = np.zeros((min(POST_CHUNK, max_block), 2), dtype=np.float32)
        self._next = -1               # clock of the next frame to hand on
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def drain(self) -> None:
        """Hand every frame in the ring to the tap. Thread: one at a time (the bridge's
        own thread, or the offline caller of ``process``)."""
        ring = self.ring
        while True:
            if self._next < 0:
                if ring.first_time < 0:
                    return
                self._next = ring.first_time
            n = ring.read_into(self._buf)
            if n == 0:
                return
            self.tap.write(self._buf[:n], self._next)
            self._next += n

    def _run(self) -> None:
        while not self._stop.wait(BRIDGE_POLL_S):
            self.drain()
        self.drain()

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="liveband-tap", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        t, self._thread = self._thread, None
        if t is not None:
            self._stop.set()
            t.join(timeout=2.0)
AUDIBLE = 1e-3               # -60 dBFS: a gap beside quieter output is not heard (callback.c too)


class Mixer:
    """Sample-accurate event-driven mixer around one ``engine.synth.Synth``.

    ``out`` blocks are float32 arrays of shape (frames, 2), C-contiguous, with
    frames <= ``max_block``.
    """

    # Shared with the C callback (engine.native's I_* / D_* indices).
    clock = _int_field(_nat.I_CLOCK)                 # master clock: samples rendered so far
    blocks = _int_field(_nat.I_BLOCKS)
    xruns = _int_field(_nat.I_XRUNS)
    audible_xruns = _int_field(_nat.I_AUDIBLE_XRUNS)   # xruns beside sound (what the listener hears)
    nonfinite_blocks = _int_field(_nat.I_NONFINITE)    # blocks of NaN/inf audio replaced by silence
    late_events = _int_field(_nat.I_LATE)            # events that arrived after their time
    events_applied = _int_field(_nat.I_APPLIED)
    _ctl_version = _int_field(_nat.I_CTL_VERSION)
    _ctl_applied = _int_field(_nat.I_CTL_APPLIED)
    _reset_requested = _int_field(_nat.I_RESET)
    _player_ch = _int_field(_nat.I_PLAYER_CH)
    dropped_notes = _int_field(_nat.I_DROPPED)       # player notes a flood left unplayed
    peak = _dbl_field(_nat.D_PEAK)                   # peak |x| of the last block after limiting
    gain_reduction_db = _dbl_field(_nat.D_GR_DB)
    _gain = _dbl_field(_nat.D_GAIN)
    _master = _dbl_field(_nat.D_MASTER)
    _ceiling = _dbl_field(_nat.D_CEILING)
    _release = _dbl_field(_nat.D_RELEASE)

    def __init__(self, synth, sample_rate: int, max_block: int, *, events_per_block: int = 512,
                 master_gain: float = 1.0, ceiling: float = 0.98, release_s: float = 0.25,
                 hold_gil: bool = True, native: bool | None = None) -> None:
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
        self._synth = _callback_synth(synth, hold_gil)   # what process() calls
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
        self._log = None                     # optional EventQueue receiving applied events
        self._tap = None                     # optional object with write(block) (recorder)
        # Limiter state and scratch.
        self._master = float(master_gain)
        self._ceiling = float(ceiling)
        self._gain = 1.0
        self._release = math.exp(-1.0 / max(1e-3, release_s * self.sample_rate))
        self._ramp = (np.arange(1, self.max_block + 1, dtype=np.float32) / self.max_block)
        self._gbuf = np.zeros(self.max_block, dtype=np.float32)
        self._abs = np.zeros((self.max_block, 2), dtype=np.float32)
        # Per-channel volume / mute / program requested by other threads.
        self._vol = np.full(NUM_CHANNELS, 127, dtype=np.int16)    # user fader 0..127 (127 = unity)
        self._part_cc7 = np.full(NUM_CHANNELS, 100, dtype=np.int16)   # last CC7 the events asked for
        self._mute = np.zeros(NUM_CHANNELS, dtype=bool)
        self._prog = np.full(NUM_CHANNELS, -1, dtype=np.int16)    # -1: leave as is
        self._ctl_applied = -1
        self._applied_vol = np.full(NUM_CHANNELS, -1, dtype=np.int16)
        self._applied_prog = np.full(NUM_CHANNELS, -1, dtype=np.int16)
        # Metronome: (on, origin sample, samples per beat, beats per bar, gain), one tuple
        # so a reader never sees half an update.
        self._metro = (False, 0.0, float(self.sample_rate), 4, 0.5, 0, None)
        click_len = int(0.03 * self.sample_rate)
        t = np.arange(click_len, dtype=np.float32) / self.sample_rate
        env = np.exp(-t / 0.006).astype(np.float32)
        self._click_hi = (np.sin(2 * np.pi * 1760.0 * t) * env).astype(np.float32)
        self._click_lo = (np.sin(2 * np.pi * 1320.0 * t) * env * 0.7).astype(np.float32)
        self._cbuf = np.zeros(self.max_block, dtype=np.float32)
        # The player's phase set (see enable_player_phases): the extra synths, one scratch
        # block each, where each synth's 64-frame periods start relative to the clock
        # (index 0: the main synth, k + 1: extra k), and which synth holds each sounding
        # player pitch (0 none, 1 the main synth, k + 2 extra k).
        self._extra: tuple = ()
        self._extra_synths: tuple = ()
        self._player_ch = -1
        self._xbuf = np.zeros((PLAYER_PHASES, self.max_block, 2), dtype=np.float32)
        self._xpos = [0] * PLAYER_PHASES      # render position of each synth in the block
        self._phase = self._ints[_nat.I_PHASE0:_nat.I_PHASE0 + PLAYER_PHASES + 1]
        self._phase[0] = int(getattr(synth, "frames_rendered", 0)) % SYNTH_PERIOD
        self._held = np.zeros(128, dtype=np.uint8)
        # each extra synth's latest period with a note start, and how many notes it starts there
        self._xper = self._ints[_nat.I_XPER0:_nat.I_XPER0 + PLAYER_PHASES]
        self._xper[:] = -1
        self._xstarts = self._ints[_nat.I_XSTARTS0:_nat.I_XSTARTS0 + PLAYER_PHASES]
        self._timebase = None        # callable: the sample an event arriving now sounds at
        # Work-time ring (nanoseconds per block) and the block size each was measured on.
        self.work_ns = np.zeros(WORK_RING, dtype=np.int64)
        self.work_frames = np.zeros(WORK_RING, dtype=np.int32)
        self._bridge: _TapBridge | None = None
        self._live = False
        self._native = None
        self.native_why: str | None = "Python body requested"   # why not C (None: C runs)
        self._lib = None
        # What is published to the C side now ("queues", "log", "tap"), and what was
        # replaced while a block may still be reading it: (mixer.blocks then, object)
        self._published: dict = {}
        self._retired: list = []
        self._write_metro()
        if native is not False:
            self._init_native(native)

    def _init_native(self, required: bool | None) -> None:
        lib = _nat.lib()
        why = _nat.unavailable
        fns = None
        if lib is not None:
            ref = getattr(self.synth, "native_ref", None)
            fns = _native_functions() if ref is not None and not _overrides_synth(self.synth) else None
            if fns is None:
                why = f"{type(self.synth).__name__} is not engine.synth.Synth's own FluidSynth"
        if lib is None or fns is None:
            self.native_why = why
            if required:
                raise RuntimeError(f"the C mixer is not available: {why}")
            return
        st = _nat.MixerState()
        st.write, st.noteon, st.noteoff, st.cc, st.progsel, st.voices = fns
        a = _nat.addr
        st.ints, st.dbls = a(self._ints), a(self._dbls)
        st.vol, st.part_cc7, st.mute, st.prog = a(self._vol), a(self._part_cc7), a(self._mute), a(self._prog)
        st.applied_vol, st.applied_prog, st.held = a(self._applied_vol), a(self._applied_prog), a(self._held)
        st.synths[0] = self.synth.native_ref()
        st.xbuf, st.ramp, st.gbuf = a(self._xbuf), a(self._ramp), a(self._gbuf)
        st.click_hi, st.click_lo, st.click_len = a(self._click_hi), a(self._click_lo), self._click_hi.shape[0]
        st.cbuf = a(self._cbuf)
        st.work_ns, st.work_frames, st.work_ring = a(self.work_ns), a(self.work_frames), WORK_RING
        self._native = st
        self.native_why = None
        self._native_addr = ctypes.addressof(st)
        self._lib = lib

    @property
    def native(self) -> bool:
        """True when blocks are rendered by the C mixer (and, live, the C callback)."""
        return self._native is not None

    def native_state_address(self) -> int:
        """Address of the C mixer's state (engine.audio_out hands it to the C callback)."""
        return self._native_addr

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
        st = self._native
        if st is None:
            return
        qs = self._queues
        if len(qs) > _nat.MAX_QUEUES:
            raise ValueError(f"at most {_nat.MAX_QUEUES} event queues per mixer, got {len(qs)}")
        table = _nat.QueueTable()
        table.n = len(qs)
        for i, q in enumerate(qs):
            table.q[i] = q.native_ref()
        self._publish("queues", (table, qs))
        st.qtable = ctypes.addressof(table)

    def _publish(self, what: str, keep) -> None:
        """Keep ``keep`` (the structures about to be handed to C, and what they point
        into) alive while published, and the one it replaces until no block can still be
        using it: the callback reads each pointer once at a block's start, so two blocks
        later (or with no stream running) the old one is free. Thread: owner."""
        old = self._published.get(what)
        self._published[what] = keep
        blocks = self.blocks
        if old is not None:
            self._retired.append((blocks, old))
        self._retired = [(b, o) for b, o in self._retired if self._live and blocks < b + 2]

    def _write_metro(self) -> None:
        on, origin, spb, bpb, gain, first, prev = self._metro
        vals = [float(on), origin, spb, float(bpb), gain, float(first), float(prev is not None)]
        vals += [float(x) for x in prev] if prev is not None else [0.0] * 4
        # odd while the values change: the C side keeps its last consistent copy meanwhile
        self._ints[_nat.I_METRO_SEQ] += 1
        self._dbls[_nat.D_M_ON:_nat.D_M_ON + len(vals)] = vals
        self._ints[_nat.I_METRO_SEQ] += 1

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
        frames (0.31 ms), which keeps the player's note-to-sound jitter well under 1 ms
        (two, as before, left 0-31 frames: 0.65 ms of the 1 ms budget). An extra synth
        shares the SoundFont's samples through FluidSynth's sample cache (+13 MB each,
        measured) and costs its idle render (the reverb) per block. The band keeps the
        main synth to itself (its events are on the step grid, already planned ahead).

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
            st = self._native
            if st is not None:
                for k, twin in enumerate(twins):
                    st.synths[k + 1] = twin.native_ref()
            # Re-send every channel's volume and program so the new synths match.
            self._applied_vol[:] = -1
            self._applied_prog[:] = -1
            self._held[:] = 0
            self._phase[:len(phase)] = phase
            self._extra = tuple(extra)
            self._extra_synths = tuple(twins)
            self._ints[_nat.I_NEXTRA] = len(twins)     # last: the C side then uses them
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
        st = self._native
        if st is not None:
            ref = q.native_ref() if q is not None else None
            self._publish("log", (ref, q))
            st.log = ctypes.addressof(ref) if ref is not None else None

    def set_tap(self, tap) -> None:
        """``tap.write(block, clock)`` receives each finished block and its first sample
        on the audio clock (before the metronome is added).
        It must not block or allocate (e.g. engine.ring.AudioRing). With the C mixer an
        AudioRing is written by the callback itself; any other tap gets the blocks through
        a ring and a thread (``_TapBridge``): the same blocks, a few ms later."""
        from engine.ring import AudioRing

        st = self._native
        old = self._bridge
        if st is not None:
            bridge = None
            if tap is None:
                ref = None
            elif type(tap) is AudioRing:
                ref = tap.native_ref()
            else:
                bridge = _TapBridge(tap, self.sample_rate, self.max_block)
                ref = bridge.ref
            self._publish("tap", (ref, tap, bridge))
            st.tap = ctypes.addressof(ref) if ref is not None else None
            self._bridge = bridge
            if bridge is not None and self._live:
                bridge.start()
            if old is not None:          # blocks already in its ring still reach the old tap
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

    def set_metronome(self, on: bool, origin: float = 0.0, samples_per_beat: float | None = None,
                      beats_per_bar: int = 4, gain: float = 0.5, first_beat: int = 0) -> None:
        """Click every beat from sample ``origin`` on (accent on each bar's first beat;
        ``first_beat`` is the beat-in-bar of the beat at ``origin``). Before ``origin`` the
        previous grid keeps clicking, so a tempo change can be announced ahead of time."""
        spb = float(samples_per_beat or self.sample_rate)
        if spb <= 0:
            raise ValueError("samples_per_beat must be positive")
        old = self._metro
        prev = (old[1], old[2], old[3], old[5]) if old[0] and old[1] < origin else None
        self._metro = (bool(on), float(origin), spb, max(1, int(beats_per_bar)), float(gain),
                       int(first_beat), prev)
        self._write_metro()

    def all_notes_off(self) -> None:
        """Silence every channel at the next block (sustain released first)."""
        self._reset_requested = 1

    # -- statistics (Thread: any) --------------------------------------------------
    def work_stats(self) -> dict:
        """p50/p99/max callback work time (ms) over the last WORK_RING blocks, and the
        same relative to each block's duration (load 1.0 = the whole budget)."""
        n = min(self.blocks, WORK_RING)
        if n == 0:
            return {"blocks": 0, "p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0,
                    "p50_load": 0.0, "p99_load": 0.0, "max_load": 0.0}
        w = self.work_ns[:n].astype(np.float64) / 1e6
        budget = self.work_frames[:n].astype(np.float64) * 1000.0 / self.sample_rate
        load = w / np.maximum(budget, 1e-9)
        return {"blocks": int(self.blocks), "p50_ms": float(np.percentile(w, 50)),
                "p99_ms": float(np.percentile(w, 99)), "max_ms": float(w.max()),
                "p50_load": float(np.percentile(load, 50)), "p99_load": float(np.percentile(load, 99)),
                "max_load": float(load.max())}

    # -- the audio path --------------------------------------------------------
    def _apply_controls(self) -> None:
        synths = (self._synth,) + self._extra
        if self._reset_requested:
            self._reset_requested = 0
            for synth in synths:
                for ch in range(NUM_CHANNELS):
                    synth.control_change(ch, CC_SUSTAIN, 0)
                    synth.control_change(ch, CC_ALL_NOTES_OFF, 0)
            self._held[:] = 0
        version = self._ctl_version
        if version == self._ctl_applied:
            return
        self._ctl_applied = version
        for ch in range(NUM_CHANNELS):
            v = 0 if self._mute[ch] else (int(self._part_cc7[ch]) * int(self._vol[ch])) // 127
            if v != self._applied_vol[ch]:
                self._applied_vol[ch] = v
                for synth in synths:
                    synth.control_change(ch, CC_VOLUME, v)
            p = int(self._prog[ch])
            if p >= 0 and p != self._applied_prog[ch]:
                self._applied_prog[ch] = p
                for synth in synths:
                    synth.set_program(ch, p)

    def _apply_event(self, synth, kind: int, ch: int, d1: int, d2: int) -> None:
        if kind == NOTE_ON:
            if d2 == 0:
                synth.note_off(ch, d1)
            else:
                synth.note_on(ch, d1, d2)
        elif kind == NOTE_OFF:
            synth.note_off(ch, d1)
        elif kind == CONTROL:
            if d1 == CC_VOLUME:
                # A part's own level is scaled by the user's fader and mute.
                self._part_cc7[ch] = d2
                v = 0 if self._mute[ch] else (d2 * int(self._vol[ch])) // 127
                self._applied_vol[ch] = v
                synth.control_change(ch, CC_VOLUME, v)
            else:
                if d1 in PANIC_CCS:
                    synth.control_change(ch, CC_SUSTAIN, 0)
                synth.control_change(ch, d1, d2)
        elif kind == PROGRAM:
            synth.set_program(ch, d1 & 127)
        elif kind == ALL_OFF:
            synth.control_change(ch, CC_SUSTAIN, 0)
            synth.control_change(ch, CC_ALL_NOTES_OFF, 0)

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
            self._lib.lb_process(self._native_addr, out.ctypes.data, out.shape[0], 1 if xrun else 0)
            b = self._bridge
            if b is not None and b._thread is None:
                b.drain()
            return
        self._process_py(out, xrun)

    def _process_py(self, out: np.ndarray, xrun: bool = False) -> None:
        t_start = time.perf_counter_ns()
        if xrun:
            self.xruns += 1
        before = self.peak           # the end of the last block, just before the gap
        frames = out.shape[0]
        clock = self.clock
        t_end = clock + frames
        if self._reset_requested or self._ctl_version != self._ctl_applied:
            self._apply_controls()
        synth = self._synth
        extra = self._extra
        pch = self._player_ch if extra else -1
        xpos = self._xpos            # frames of each extra synth rendered so far in this block
        for k in range(len(extra)):
            xpos[k] = 0

        # Pop and apply events in time order across queues: each queue is already
        # time-ordered, so a k-way merge over their heads keeps cross-queue order.
        pos = 0                     # frames rendered so far in this block
        ev = self._events
        cap = ev.shape[0]
        et, ek, ec, e1, e2 = self._ev_time, self._ev_kind, self._ev_chan, self._ev_d1, self._ev_d2
        log = self._log
        queues = self._queues
        if queues:
            # Pop each queue into its own slice of the scratch array, then merge.
            nq = len(queues)
            share = cap // nq
            starts = [0] * nq
            ends = [0] * nq
            for qi in range(nq):
                s = qi * share
                starts[qi] = s
                ends[qi] = s + queues[qi].pop_until(t_end, ev[s:s + share])
            while True:
                best = -1
                best_off = frames
                for qi in range(nq):
                    i = starts[qi]
                    if i < ends[qi]:
                        t = int(et[i])
                        off = 0 if t == IMMEDIATE else t - clock
                        if off < 0:
                            off = 0
                        if best < 0 or off < best_off:
                            best, best_off = qi, off
                if best < 0:
                    break
                i = starts[best]
                starts[best] = i + 1
                t = int(et[i])
                if t != IMMEDIATE and t < clock:
                    self.late_events += 1
                kind, ch, d1, d2 = int(ek[i]), int(ec[i]), int(e1[i]), int(e2[i])
                dropped = self.dropped_notes
                if ch == pch:
                    pos = self._player_event(out, best_off, clock + best_off, pos, kind, ch, d1, d2)
                else:
                    if best_off > pos:
                        synth.render_into(out, pos, best_off)
                        pos = best_off
                    self._apply_event(synth, kind, ch, d1, d2)
                self.events_applied += 1
                if log is not None and self.dropped_notes == dropped:   # a take holds what was heard
                    log.push(clock + best_off, kind, ch, d1, d2)
        if pos < frames:
            synth.render_into(out, pos, frames)
        xbuf = self._xbuf
        for k in range(len(extra)):
            if xpos[k] < frames:
                extra[k].render_into(xbuf[k], xpos[k], frames)

        # Post-processing in pieces of at most POST_CHUNK frames: numpy releases the GIL
        # inside any ufunc over more than 500 elements, and winning it back can mean
        # waiting for a descheduled thread (measured: a 512 ms callback at 256 frames).
        tap = self._tap
        metro = self._metro
        for s in range(0, frames, POST_CHUNK):
            e = min(frames, s + POST_CHUNK)
            piece = out[s:e]
            for k in range(len(extra)):
                np.add(piece, xbuf[k, s:e], out=piece)
            self._master_and_limit(piece, e - s)
            if xrun and s == 0 and (before >= AUDIBLE or self.peak >= AUDIBLE or metro[0]):
                self.audible_xruns += 1
            if tap is not None:
                tap.write(piece, clock + s)
            if metro[0]:
                self._click(piece, clock + s, e - s, metro)
                np.clip(piece, -1.0, 1.0, out=piece)

        self.clock = t_end
        k = self.blocks & (WORK_RING - 1)
        self.work_ns[k] = time.perf_counter_ns() - t_start
        self.work_frames[k] = frames
        self.blocks += 1

    def _player_event(self, out: np.ndarray, off: int, t: int, pos: int,
                      kind: int, ch: int, d1: int, d2: int) -> int:
        """Apply one event on the player's channel at block offset ``off`` (sample ``t``)
        to the phase set; returns the main synth's new render position (the extra
        synths' positions are in ``self._xpos``). Thread: audio."""
        held = self._held
        d1 &= 127
        if kind == NOTE_ON and d2 > 0:
            # The synth whose next period boundary comes first starts the note soonest;
            # a full one only when all are (FluidSynth then steals one of its voices).
            # (Only the player's own synths: index 0 of the phases is the band's.)
            # A synth starts at most STARTS_PER_PERIOD notes per period: FluidSynth cannot
            # steal a voice started in the same period (it then logs a warning from this
            # thread), and a flood's work per block stays bounded; beyond, notes drop.
            use, wait = 0, SYNTH_PERIOD              # among synths with two voices free
            full, full_wait = 0, SYNTH_PERIOD
            phase = self._phase
            extra = self._extra
            xper, xstarts = self._xper, self._xstarts
            limit = PLAYER_VOICES // len(extra) - 1
            for k in range(1, len(extra) + 1):
                w = (-(t + int(phase[k]))) % SYNTH_PERIOD
                if xper[k - 1] == (t + phase[k] + w) // SYNTH_PERIOD and xstarts[k - 1] >= STARTS_PER_PERIOD:
                    continue
                if extra[k - 1].active_voices() >= limit:
                    if w < full_wait:
                        full, full_wait = k + 1, w
                elif w < wait:
                    use, wait = k + 1, w
            if not use:
                use, wait = full, full_wait
            if not use:
                self.dropped_notes += 1
                return pos
            per = (t + int(phase[use - 1]) + wait) // SYNTH_PERIOD
            if xper[use - 2] == per:
                xstarts[use - 2] += 1
            else:
                xper[use - 2], xstarts[use - 2] = per, 1
            old = int(held[d1])
            if old and old != use:       # the pitch still sounds on another synth: end it
                pos = self._on_synth(old, out, off, pos, NOTE_OFF, ch, d1, 0)
            held[d1] = use
            return self._on_synth(use, out, off, pos, kind, ch, d1, d2)
        if kind == NOTE_ON or kind == NOTE_OFF:
            which = int(held[d1]) or 1
            held[d1] = 0
            return self._on_synth(which, out, off, pos, kind, ch, d1, d2)
        # controllers, programs, all-off: every synth of the set
        if kind == ALL_OFF or (kind == CONTROL and d1 in PANIC_CCS and d1 != 121):
            held[:] = 0
        for which in range(1, len(self._extra) + 2):
            pos = self._on_synth(which, out, off, pos, kind, ch, d1, d2)
        return pos

    def _on_synth(self, which: int, out: np.ndarray, off: int, pos: int,
                  kind: int, ch: int, d1: int, d2: int) -> int:
        """Render synth ``which`` (1: main, k + 2: extra k) up to ``off``, then apply the
        event to it. Returns the main synth's render position. Thread: audio."""
        if which == 1:
            if off > pos:
                self._synth.render_into(out, pos, off)
                pos = off
            self._apply_event(self._synth, kind, ch, d1, d2)
            return pos
        k = which - 2
        synth = self._extra[k]
        xpos = self._xpos
        if off > xpos[k]:
            synth.render_into(self._xbuf[k], xpos[k], off)
            xpos[k] = off
        self._apply_event(synth, kind, ch, d1, d2)
        return pos

    def _master_and_limit(self, out: np.ndarray, frames: int) -> None:
        """Master gain, then a peak limiter: instant attack ramped over the block,
        exponential release, and a final clamp at the ceiling. Non-finite audio
        (a broken SoundFont sample) is replaced by silence rather than passed on."""
        if self._master != 1.0:
            np.multiply(out, self._master, out=out)
        a = self._abs[:frames]
        np.abs(out, out=a)
        peak = float(a.max()) if frames else 0.0
        if not math.isfinite(peak):
            out.fill(0.0)
            peak = 0.0
            self.nonfinite_blocks += 1
        ceiling = self._ceiling
        target = 1.0 if peak <= ceiling else ceiling / peak
        g0 = self._gain
        if target < g0:
            g1 = target                                   # attack: reach it by block end
        else:
            g1 = target + (g0 - target) * self._release ** frames   # release
        if g0 != 1.0 or g1 != 1.0:
            g = self._gbuf[:frames]
            self._ramp_into(g, frames, g0, g1)
            np.multiply(out, g[:, None], out=out)
        # The ramp can lag a transient inside the block; the clamp makes the bound hard.
        if peak * max(g0, g1) > ceiling:
            np.clip(out, -ceiling, ceiling, out=out)
        self._gain = g1
        self.gain_reduction_db = -20.0 * math.log10(max(min(g1, 1.0), 1e-6))
        self.peak = min(peak * max(g0, g1), ceiling) if peak > 0 else 0.0

    def _ramp_into(self, g: np.ndarray, frames: int, g0: float, g1: float) -> None:
        # ramp[:frames] holds (j+1)/max_block; rescale to (j+1)/frames then map to g0..g1.
        np.multiply(self._ramp[:frames], (g1 - g0) * self.max_block / frames, out=g)
        np.add(g, g0, out=g)

    def _click(self, out: np.ndarray, clock: int, frames: int, metro) -> None:
        _, origin, spb, bpb, gain, first, prev = metro
        t_end = clock + frames
        if prev is not None and clock < origin:
            p_origin, p_spb, p_bpb, p_first = prev
            self._click_grid(out, clock, min(t_end, int(round(origin))), clock, p_origin, p_spb,
                             p_bpb, p_first, gain)
        self._click_grid(out, max(clock, int(round(origin))), t_end, clock, origin, spb, bpb, first, gain)

    def _click_grid(self, out: np.ndarray, lo: int, hi: int, clock: int, origin: float, spb: float,
                    bpb: int, first: int, gain: float) -> None:
        """Add the clicks of beats starting in [origin, hi) that sound within [lo, hi)
        into ``out`` (whose frame 0 is sample ``clock``)."""
        if hi <= lo:
            return
        L = self._click_hi.shape[0]
        k = max(0, math.ceil((lo - L - origin) / spb))
        while True:
            beat = int(round(origin + k * spb))
            if beat >= hi:
                break
            a = max(beat, lo)
            b = min(beat + L, hi)
            if b > a:
                click = self._click_hi if (k + first) % bpb == 0 else self._click_lo
                seg = self._cbuf[:b - a]
                np.multiply(click[a - beat:b - beat], gain, out=seg)
                dst = out[a - clock:b - clock]
                dst[:, 0] += seg
                dst[:, 1] += seg
            k += 1

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
            result[done:done + n] = view
            done += n
        return result

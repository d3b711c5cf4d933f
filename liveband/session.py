"""The live session: wires inputs, the engine and the outputs together for the UI.

```
computer keyboard (UI) --key_event--> key queue ---------\\
MIDI controller (rtmidi thread) --NoteFilter--> MIDI queue -+--> Mixer (audio callback)
StreamingGenerator (worker) --PartRenderer--> band queue --/        |  event log
   ^ melody events (audio-clock samples)                            v
   +---- keyboard / MIDI / microphone pitch tracker        dispatcher thread
                                                           --> recorder (WAV + MIDI), MIDI out
```

Everything the session owns is an attribute of the instance (no globals): one synth,
one mixer whose sample counter is the master clock, one audio stream, optional MIDI in
and out, one generator per play/stop, one recording ("take") per play/stop.

Threads: the UI calls every method from its own thread, except ``snapshot`` and ``roll``
which any thread may call. The session runs two helper threads of its own: the
*dispatcher* (every 2 ms: applied events -> recorder and MIDI out, MIDI clock) and the
*housekeeper* (every 0.25 s: audio device watchdog, MIDI hot-plug, metronome grid,
CPU meter, key estimate). Neither ever touches the audio callback's data except through
the lock-free queues. A third, the *control* thread, runs what MIDI asks for (a MIDI
clock's start/stop, MIDI-learned buttons and knobs: liveband.midilearn) as the UI would.

Missing hardware is not an error: without an audio device or MIDI ports the session
still constructs, ``snapshot().notices`` says what is missing and how to fix it, and
``render_file`` works offline.
"""
from __future__ import annotations

import collections
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from engine import parts as P
from engine.audio_out import (AudioOut, AudioUnavailable, input_devices, negotiate_rate, output_devices,
                              refresh_devices)
from engine.clock import Clock, beat_steps, check_tempo
from engine.errors import first_line
from engine.events import (ALL_OFF, CONTROL, EVENT_DTYPE, IMMEDIATE, NOTE_OFF, NOTE_ON, PROGRAM,
                           EventQueue)
from engine.keyfind import estimate_key, key_pitch_classes, parse_key, snap_to_scale
from engine.midi_io import (ComputerKeyboard, KeyNote, MidiInput, MidiOutput, NoteFilter, PortWatcher,  # noqa: F401
                            VirtualMidiInput)
from engine.mixer import Mixer
from engine.sync import SYNC_MODES, BeatLock, MidiClockIn, start_point
from engine.recorder import Recorder, export_session as _export_session, list_sessions as _list_sessions
from engine.recorder import delete_session as _delete_session, rename_session as _rename_session
from engine.recorder import new_session_folder
from engine.styles import style_names
from engine.synth import SoundFontError, Synth
from liveband.config import AudioConfig, EngineConfig
from liveband.midilearn import BINDINGS_FILE, ControlThread, MidiLearn, session_targets
from liveband.paths import find_soundfont, sessions_dir, user_config_dir
from models.tokens import METERS, chord_name

# the band's parts and the player's own ("melody"): each a mixer strip
PART_NAMES = ("bass", "keys", "pad", "drums", "melody")
INPUT_MODES = ("keyboard", "midi", "mic")
MAX_BLOCK = 4096
EVENT_SECONDS = 30.0      # a happening stays among the notices this long
CONFIRM_SECONDS = 4.0     # a confirmation ("take saved") this long
START_LEAD_S = 0.25          # the first (count-in) step starts this far after play()
VIRTUAL_IN_NAME = "LiveBand in"
VIRTUAL_OUT_NAME = "LiveBand band"


class SessionError(ValueError):
    """A problem the user must fix before a session can exist (e.g. a broken SoundFont)."""


@dataclass(frozen=True)
class PartState:
    mute: bool
    solo: bool
    volume: float
    program: int
    through: bool = True     # the player's part: sounded here (off when a hardware synth plays it)


@dataclass(frozen=True)
class SessionSnapshot:
    """Cheap, immutable, built for the UI timer. Thread: any."""
    playing: bool
    counting_in: bool
    tempo: float
    meter: str
    style: str
    input_mode: str
    step: float
    chord: str
    key: str
    input_level_db: float
    hummed_pitch: float | None
    audio_latency_ms: float
    xruns: int
    lead_ms: float
    late_steps: int
    cpu_percent: float
    backend: str
    recording: bool
    notices: tuple[str, ...]
    parts: dict[str, PartState]
    confirmation: str = ""       # a brief success to show for a moment ("take saved"), not a problem


class _Roll:
    """Notes for the piano roll, in steps, from every thread that makes notes.

    ``push`` has the EventSink signature so the PartRenderer can feed it directly (the
    generator thread); the session feeds the player's notes. A short lock protects the
    lists (never taken by the audio thread)."""

    CHANNEL_PART = {p.channel: p.name for p in P.ALL_PARTS}

    def __init__(self, maxlen: int = 4096) -> None:
        self._lock = threading.Lock()
        self._notes: collections.deque = collections.deque(maxlen=maxlen)   # [part, pitch, start, end]
        self._open: dict[tuple[int, int], list] = {}
        self.clock: Clock | None = None
        self._pc = np.zeros(12)           # pitch-class weights for the key estimate

    def reset(self, clock: Clock | None) -> None:
        with self._lock:
            self._notes.clear()
            self._open.clear()
            self.clock = clock
            self._pc[:] = 0

    def push(self, time: int, kind: int, channel: int, data1: int = 0, data2: int = 0) -> bool:
        clock = self.clock
        if clock is None or kind not in (NOTE_ON, NOTE_OFF, ALL_OFF):
            return True
        part = self.CHANNEL_PART.get(channel)
        if part is None:
            return True
        step = clock.sample_to_steps(int(time)) if time != IMMEDIATE else None
        if step is None:
            return True
        with self._lock:
            if kind == ALL_OFF:
                for key in [k for k in self._open if k[0] == channel]:
                    self._open.pop(key)[3] = step
                return True
            key = (channel, data1)
            note = self._open.pop(key, None)
            if note is not None:
                note[3] = step
                if channel != P.DRUMS.channel:
                    self._pc[note[1] % 12] += max(0.0, step - note[2]) * (2.0 if part == "melody" else 1.0)
            if kind == NOTE_ON and data2 > 0:
                note = [part, int(data1), step, None]
                self._notes.append(note)
                self._open[key] = note
        return True

    def notes_since(self, since_step: float, now_step: float) -> list[tuple[str, int, float, float, bool]]:
        with self._lock:
            out = []
            for part, pitch, start, end in self._notes:
                e = end if end is not None else max(now_step, start)
                if e >= since_step:
                    out.append((part, pitch, start, e, start > now_step))
            return out

    def pitch_classes(self, decay: float = 0.97) -> np.ndarray:
        with self._lock:
            w = self._pc.copy()
            self._pc *= decay
        return w


class Session:
    """The live instrument. See the module docstring for the wiring and threads."""

    def __init__(self, engine_config: EngineConfig | None = None, audio_config: AudioConfig | None = None,
                 soundfont: str | None = None, *, accompanist=None, start_audio: bool = True) -> None:
        self._cfg = engine_config or EngineConfig()
        self._audio_cfg = audio_config or AudioConfig()
        self._lock = threading.RLock()               # UI-side state; never taken by audio
        self._load_lock = threading.Lock()           # model loading (background or play)
        self._problems: dict[str, str] = {}          # lasting problems, by topic
        self._events: collections.deque[tuple[float, str]] = collections.deque(maxlen=4)   # recent happenings
        self._notices: tuple[tuple[float | None, str], ...] = ()   # (when, text); None: a lasting problem
        self._confirmation: tuple[float, str] = (0.0, "")
        try:
            self._soundfont = find_soundfont(soundfont)
        except FileNotFoundError as exc:
            raise SessionError(str(exc)) from None

        rate = self._audio_cfg.sample_rate
        try:
            rate = negotiate_rate(self._audio_cfg.output_device, rate)
        except AudioUnavailable as exc:
            self._problem("audio", str(exc))
        try:
            self._synth = Synth(self._soundfont, sample_rate=rate)
        except (SoundFontError, OSError) as exc:
            raise SessionError(f"SoundFont {self._soundfont} failed to load: {exc}") from None
        except RuntimeError as exc:           # FluidSynth missing
            raise SessionError(str(exc)) from None
        self.sample_rate = rate
        self._mixer = Mixer(self._synth, rate, max(MAX_BLOCK, self._audio_cfg.blocksize))
        self._key_q = EventQueue(1024)               # producer: UI thread
        self._midi_q = EventQueue(1024)              # producer: rtmidi thread
        for q in (self._key_q, self._midi_q):
            self._mixer.add_queue(q)
        self._log_q = EventQueue(1 << 15)            # producer: audio (applied events)
        self._mixer.set_event_log(self._log_q)
        self._parts = {name: PartState(False, False, 1.0, P.part(name).program) for name in PART_NAMES}
        for p in P.ALL_PARTS:
            if p.channel != P.DRUMS.channel:
                self._mixer.set_program(p.channel, p.program)
        self._metronome = False
        self._master = 0.8
        self._mixer.set_master_gain(self._master)

        # the band (built per play)
        self._accompanist = accompanist
        self._backend = "none"
        self._gen = None
        self._clock: Clock | None = None
        self._band_q: EventQueue | None = None
        self._renderer = None
        self._playing = False
        self._roll = _Roll()
        self._band_listeners: list = []
        self._metro_segments = None
        self._taps: collections.deque[float] = collections.deque(maxlen=8)

        # input
        self._input_mode = "keyboard"
        self.keyboard = ComputerKeyboard()
        self._midi_in: MidiInput | None = None
        self._midi_in_wanted: str | None = None
        self._midi_channel: int | None = None
        # tempo sync (engine.sync): the MIDI input's clock is always listened to, followed
        # only in "midi clock" mode; its start/stop run on the control thread, never rtmidi's
        self._sync_mode = "internal"
        self._clock_in = MidiClockIn(on_transport=self._clock_transport)
        self._link = None
        self._beat_lock: BeatLock | None = None
        self._control = ControlThread(on_error=self._happened)
        # MIDI learn: bound CCs/notes are taken off the MIDI input before the notes
        self._targets: dict | None = None
        self._learn = MidiLearn(user_config_dir() / BINDINGS_FILE, self._control, self._learn_targets, self._happened)
        self._ports = PortWatcher()
        self._mic = None
        self._mic_starting = False
        self.pitch_tracker = "pesto"
        self._hummed: float | None = None
        self._level_db = -120.0
        # a fixed key's scale (set_key): hummed notes snap to it; raw -> snapped pitch of
        # the hummed notes sounding, so a note-off matches its note-on if the key changes
        self._snap_scale: frozenset[int] | None = None
        self._hum_open: dict[int, int] = {}

        # output
        self._midi_out: MidiOutput | None = None
        self._midi_clock = False
        self._clock_tick = 0
        self._clock_started = False
        self._pending_ctl: collections.deque = collections.deque()   # (kind, ch, d1, d2) for MIDI out
        self._pending_raw: collections.deque = collections.deque()   # 'start'/'stop'
        self._recording = True
        self._recorder: Recorder | None = None

        # meters
        self._cpu = 0.0
        self._key = ""

        self._audio = AudioOut(self._mixer, device=self._audio_cfg.output_device,
                               blocksize=self._audio_cfg.blocksize, latency=self._audio_cfg.latency)
        if not self._mixer.native:
            self._problem("callback", f"audio callback: using the Python fallback ({self._mixer.native_why}); "
                                      "busy Python threads can delay blocks")
        if start_audio and "audio" not in self._problems:
            self._start_audio()
        elif not start_audio:
            self._problem("audio", "audio output not started (offline session)")
        self._scan_midi(initial=True)

        self._stop_threads = threading.Event()
        self._closed = False       # set under self._lock by close(): no stream may open after
        self._dispatcher = threading.Thread(target=self._dispatch_loop, name="liveband-dispatch", daemon=True)
        self._housekeeper = threading.Thread(target=self._housekeeping_loop, name="liveband-house", daemon=True)
        self._dispatcher.start()
        self._housekeeper.start()
        # Load the model now (importing torch and reading weights take seconds), so
        # play() starts the band at once.
        self._loader = threading.Thread(target=self._load_accompanist, name="liveband-load", daemon=True)
        self._loader.start()
        # The pitch tracker too, after the model: a switch to Hum then only opens the
        # microphone, and nothing heavy runs while the band is already playing.
        self._ready_tracker = None
        self._tracker_loader = threading.Thread(target=self._preload_tracker, name="liveband-tracker",
                                                daemon=True)
        self._tracker_loader.start()

    # -- notices ---------------------------------------------------------------------
    def _problem(self, topic: str, message: str | None) -> None:
        with self._lock:
            if message is None:
                self._problems.pop(topic, None)
            else:
                self._problems[topic] = message
            self._publish_notices()

    def _happened(self, message: str) -> None:
        """Something the player should hear of; it leaves the notices after EVENT_SECONDS
        (a problem stays until it is solved)."""
        with self._lock:
            self._events.append((time.monotonic(), message))
            self._publish_notices()

    def _confirm(self, message: str) -> None:
        """A success ("take saved"): shown briefly as a confirmation, not as a notice."""
        self._confirmation = (time.monotonic(), message)

    def _publish_notices(self) -> None:
        # one tuple, replaced whole: snapshot() reads it from any thread without the lock
        self._notices = tuple((None, m) for m in self._problems.values()) + tuple(self._events)

    def _current_notices(self) -> tuple[str, ...]:
        now = time.monotonic()
        return tuple(m for t, m in self._notices if t is None or now - t < EVENT_SECONDS)

    def _current_confirmation(self) -> str:
        t, message = self._confirmation
        return message if message and time.monotonic() - t < CONFIRM_SECONDS else ""

    # -- audio -----------------------------------------------------------------------
    def _start_audio(self) -> None:
        try:
            self._audio.start()
            self._problem("audio", None)
        except AudioUnavailable as exc:
            self._problem("audio", f"{exc}. Start PulseAudio/PipeWire or JACK, "
                                   "or choose another output in the Setup tab")

    def _retry_audio(self) -> None:
        """No device at start: try the default output again (a server that came up
        later), keeping the session's sample rate. Thread: housekeeper."""
        with self._lock:
            if self._closed:
                return
            try:
                if self._mic is None:      # a re-scan would also close an open input stream
                    refresh_devices()
                if negotiate_rate(None, self.sample_rate) != self.sample_rate:
                    return
                self._audio.start()
            except AudioUnavailable:
                return
            self._problem("audio", None)
            self._confirm("audio output started")

    def audio_devices(self) -> dict:
        return {"inputs": input_devices(), "outputs": output_devices()}

    def set_audio_devices(self, output=None, input=None, blocksize=None) -> None:
        """Re-open the output on another device and/or block size. Thread: UI."""
        cfg = self._audio_cfg
        kw = {}
        if output is not None:
            kw["output_device"] = output
        if input is not None:
            kw["input_device"] = input
        if blocksize is not None:
            kw["blocksize"] = int(blocksize)
        from dataclasses import replace
        new = replace(cfg, **kw)          # validates (ValueError for a bad block size)
        with self._lock:
            if self._closed:
                return
            self._audio.stop()
            try:
                rate = negotiate_rate(new.output_device, self.sample_rate)
            except AudioUnavailable as exc:
                self._audio_cfg = new
                self._problem("audio", str(exc))
                return
            if rate != self.sample_rate:
                self._problem("audio", f"{new.output_device} runs at {rate} Hz but the session at "
                                       f"{self.sample_rate} Hz; restart LiveBand to switch rates")
                self._audio = AudioOut(self._mixer, device=cfg.output_device, blocksize=cfg.blocksize,
                                       latency=cfg.latency)
                self._start_audio()
                return
            self._audio_cfg = new
            self._audio = AudioOut(self._mixer, device=new.output_device, blocksize=new.blocksize,
                                   latency=new.latency)
            self._start_audio()
            if self._mic is not None:
                self._stop_mic()
                self._start_mic()

    # -- MIDI ------------------------------------------------------------------------
    def midi_ports(self) -> dict:
        return {"inputs": sorted(self._ports.inputs), "outputs": sorted(self._ports.outputs)}

    def _scan_midi(self, initial: bool = False) -> None:
        appeared, vanished = self._ports.poll()
        if not self._ports.inputs and not self._ports.outputs:
            self._problem("midi", f"{self._ports.note}. The computer keyboard plays instead "
                                  "(keys Z to M, sharps on S D G H J; on-screen keys)")
        else:
            self._problem("midi", None)
        if initial:
            return
        for name in sorted(appeared):
            if name == self._midi_in_wanted and self._midi_in is None:
                try:
                    self._open_input(name)
                    self._confirm(f"MIDI input {name!r} is back")
                except OSError:
                    pass
            elif not name.startswith("LiveBand"):
                self._happened(f"MIDI input {name!r} appeared")
        cur = self._midi_in
        if cur is not None and not isinstance(cur, VirtualMidiInput) and cur.name in vanished:
            cur.close()
            self._midi_in = None
            self._happened(f"MIDI input {cur.name!r} vanished; the session goes on "
                           "(it reconnects when the device returns)")

    def _open_input(self, name: str) -> None:
        filt = NoteFilter(self._midi_note, self._midi_control, self._midi_channel,
                          on_realtime=self._clock_in.feed, intercept=self._learn.handle)
        self._learn.set_controller(name)
        if name == VIRTUAL_IN_NAME:
            self._midi_in = VirtualMidiInput(VIRTUAL_IN_NAME, filt)
        else:
            self._midi_in = MidiInput(name, filt)

    def open_midi_input(self, name: str | None, channel: int | None = None) -> None:
        """Open a controller by name (``"LiveBand in"``: a virtual port other programs
        connect to); None closes it. ``channel`` 0-15 listens to one channel only.
        OSError with a readable message when the port does not exist. Thread: UI."""
        with self._lock:
            if self._midi_in is not None:
                self._midi_in.close()
                self._midi_in = None
            self._midi_in_wanted = name
            self._midi_channel = channel
            if name is None:
                return
            self._open_input(name)
            if self._sync_mode == "midi clock":
                self._problem("sync", None)
            if self._input_mode == "keyboard":
                self._input_mode = "midi"

    def open_midi_output(self, name: str | None, virtual: bool = True) -> None:
        """Send the band (each part on its channel) to a MIDI port: a virtual port
        (default name "LiveBand band") or an existing port; None closes it. Thread: UI."""
        with self._lock:
            old, self._midi_out = self._midi_out, None
            if old is not None:
                time.sleep(0.005)          # let the dispatcher finish a send in flight
                old.close()
            if name is None and not virtual:
                return
            if name is None:
                name = VIRTUAL_OUT_NAME
            self._midi_out = MidiOutput(name, virtual=virtual)
            for part in P.BAND_PARTS:      # tell the receiver which instruments to use
                if part.channel != P.DRUMS.channel:
                    self._pending_ctl.append((PROGRAM, part.channel, self._parts[part.name].program, 0))

    # -- tempo sync ----------------------------------------------------------------------
    def set_sync(self, mode: str) -> None:
        """Whose tempo the band plays to: "internal", "midi clock" (the MIDI input's clock;
        its start/stop start and stop the band) or "link" (Ableton Link: joins at once;
        the band locks to Link's bar phase from the next play). SessionError when Link
        cannot start. Thread: UI."""
        if mode not in SYNC_MODES:
            raise ValueError(f"sync must be one of {', '.join(SYNC_MODES)}, got {mode!r}")
        with self._lock:
            if mode == "link" and self._link is None:
                from engine.sync import LinkSync
                try:
                    self._link = LinkSync(self._cfg.tempo, self._bar_quarters())
                except Exception as exc:
                    raise SessionError(f"Ableton Link unavailable: {first_line(exc)}") from None
            elif mode != "link" and self._link is not None:
                link, self._link = self._link, None
                link.close()
            if self._beat_lock is not None:
                self._beat_lock.enabled = False      # the band keeps its tempo until the next play
            self._sync_mode = mode
            self._problem("sync", "MIDI clock sync: no MIDI input open; choose the device that sends "
                                  "the clock in the settings" if mode == "midi clock" and self._midi_in is None
                          else None)

    @property
    def sync_mode(self) -> str:
        return self._sync_mode

    def set_sync_delay(self, ms: float) -> None:
        """How late the MIDI clock arrives (0-100 ms; a DAW's "MIDI clock sync delay"):
        the band plays that much earlier than the clock as received. Thread: UI."""
        v = float(ms)
        if not 0.0 <= v <= 100.0:
            raise ValueError(f"MIDI clock delay must be 0-100 ms, got {ms}")
        self._clock_in.delay_s = v / 1000.0

    def _sync_source(self):
        return {"midi clock": self._clock_in, "link": self._link}.get(self._sync_mode)

    def _bar_quarters(self) -> float:
        from models.tokens import bar_steps
        return bar_steps(self._cfg.meter) / 4.0

    def _clock_transport(self, kind: str) -> None:
        """MIDI start/stop/continue. Thread: rtmidi's (only hands it on)."""
        if self._sync_mode == "midi clock":
            self._control.submit(lambda: self._follow_transport(kind))

    def _follow_transport(self, kind: str) -> None:
        """Thread: control."""
        if kind == "stop":
            self.stop()
            return
        if kind == "start" or not self._playing:
            self._clock_in.wait_tempo(2.0)      # a start usually comes before its first ticks
            self.stop()                         # a start while playing: from the top
            self.play()

    def _sample_at(self, t: float) -> int:
        """The audio-clock sample heard at monotonic time ``t`` (the stream's DAC line;
        without stream timing, the sample being rendered now plus the wait)."""
        off = self._audio.dac_offset() if self._audio.stream is not None else None
        if off is not None:
            return int(round((t - off) * self.sample_rate))
        return self._audio_now() + int(round((t - time.monotonic()) * self.sample_rate))

    def _synced_clock(self, cfg: EngineConfig) -> tuple[Clock | None, BeatLock | None]:
        """A band clock whose step 0 sits on a bar line of the sync source and whose first
        beat is the first one the band can make; (None, None) when playing on its own."""
        src = self._sync_source()
        if src is None:
            return None, None
        if self._link is not None:
            self._link.set_quantum(self._bar_quarters())
        joined = start_point(src, self._bar_quarters(), beat_steps(cfg.meter), time.monotonic() + START_LEAD_S)
        if joined is None:
            self._happened(f"no {self._sync_mode} tempo yet: the band plays at its own tempo")
            return None, None
        offset, first = joined
        bpm = min(240.0, max(40.0, float(src.tempo)))
        clock = Clock(self.sample_rate, bpm, cfg.meter, 0, start_sample=self._sample_at(src.time_at(first / 4 + offset)),
                      first_step=first)
        return clock, BeatLock(src, clock, self._sample_at, offset)

    # -- MIDI learn -----------------------------------------------------------------------
    def _learn_targets(self) -> dict:
        if self._targets is None:
            self._targets = session_targets(self)
        return self._targets

    def midi_learn(self, target: str | None) -> None:
        """Bind the next CC or note from the open MIDI input to ``target`` (a name from
        ``midi_targets()``: "play_stop", "record", "tap_tempo", "density", ...); None
        cancels. ValueError for an unknown target. Thread: UI."""
        self._learn.arm(target)

    def midi_targets(self) -> list[str]:
        return list(self._learn_targets())

    @property
    def midi_learning(self) -> str | None:
        """The target waiting for a control to be moved, or None."""
        return self._learn.armed

    def midi_bindings(self) -> list:
        """The open controller's bindings (liveband.midilearn.Binding). Thread: any."""
        return self._learn.bindings()

    def clear_binding(self, target: str | None = None) -> int:
        """Forget the open controller's bindings of ``target`` (None: all); how many."""
        return self._learn.clear(target)

    @property
    def recording_enabled(self) -> bool:
        return self._recording

    def set_midi_clock(self, on: bool) -> None:
        """MIDI clock (24 ppqn) and start/stop on the MIDI output. Thread: UI."""
        self._midi_clock = bool(on)

    def _player_note(self, q: EventQueue, pitch: int, on: bool, velocity: int, arrived: float) -> None:
        """A note from the player that reached LiveBand at monotonic time ``arrived``:
        sound it a fixed delay after that and tell the band. Thread: the queue's producer
        (UI for keys, rtmidi's thread for MIDI)."""
        ch = P.MELODY.channel
        q.push(IMMEDIATE, NOTE_ON if on else NOTE_OFF, ch, pitch, velocity if on else 0, arrived)
        # the sample it sounds at: the arrival stamp at the fixed player delay when the
        # stream has a timebase, else the start of the next block
        t = q.last_time if q.last_time != IMMEDIATE else self._mixer.clock
        gen = self._gen
        if gen is not None:
            gen.melody_event(t, pitch, on)
        self._roll.push(t, NOTE_ON if on else NOTE_OFF, ch, pitch, velocity if on else 0)

    def _midi_note(self, pitch: int, on: bool, velocity: int, arrived: float) -> None:
        self._player_note(self._midi_q, pitch, on, velocity, arrived)

    def _midi_control(self, control: int, value: int, arrived: float) -> None:
        self._midi_q.push(IMMEDIATE, CONTROL, P.MELODY.channel, control, value, arrived)

    def key_event(self, pitch: int, down: bool, velocity: int = 100) -> None:
        """A computer-keyboard or on-screen key. Thread: UI."""
        arrived = time.monotonic()        # first: the note is timed from here
        if not 0 <= int(pitch) < 128:
            raise ValueError(f"MIDI pitch out of range: {pitch}")
        self._player_note(self._key_q, int(pitch), bool(down), max(1, min(127, int(velocity))), arrived)

    # -- microphone ------------------------------------------------------------------
    def set_input_mode(self, mode: str) -> None:
        if mode not in INPUT_MODES:
            raise ValueError(f"input mode must be one of {', '.join(INPUT_MODES)}, got {mode!r}")
        with self._lock:
            if mode != "mic" and self._mic is not None:
                self._stop_mic()
            self._input_mode = mode
            self._problem("input", None)
            if mode == "mic":
                self._start_mic()
            elif mode == "midi" and self._midi_in is None:
                self._problem("input", "MIDI mode: no controller open; choose one in the Setup tab "
                                       "(or connect a program to the 'LiveBand in' port)")

    def _start_mic(self) -> None:
        """Open the microphone and its pitch tracker on a helper thread (loading the
        tracker takes seconds); notices say what went wrong."""
        if self._mic is not None or self._mic_starting:
            return
        self._mic_starting = True
        self._problem("input", "microphone starting (loading the pitch tracker)...")

        def start() -> None:
            try:
                from engine.mic_input import MicInput
                self._tracker_loader.join()
                ready = self._ready_tracker
                tracker = ready if ready is not None and ready.name == self.pitch_tracker else self.pitch_tracker
                mic = MicInput(self._mic_note, self._audio, device=self._audio_cfg.input_device,
                               sample_rate=self.sample_rate, tracker=tracker,
                               gain_db=self._audio_cfg.input_gain_db)
            except Exception as exc:   # no input device, tracker weights missing...
                msg = first_line(exc)
                self._problem("input", f"microphone unavailable ({msg}); use the keyboard or MIDI, "
                                       "or choose another input device")
            else:
                if self._input_mode == "mic" and not self._stop_threads.is_set():
                    self._mic = mic
                    self._problem("input", None)
                else:
                    mic.close()
            finally:
                self._mic_starting = False

        threading.Thread(target=start, name="liveband-mic-start", daemon=True).start()

    def _preload_tracker(self) -> None:
        """Load and warm the pitch tracker (seconds of imports and a first slow call) in
        the background after the model; on failure the mic's own start says why.
        Thread: liveband-tracker."""
        self._loader.join()
        if self._stop_threads.is_set():
            return
        try:
            from engine.pitch.tracker import HOP, make_tracker
            tracker = make_tracker(self.pitch_tracker)
            for _ in range(3):
                tracker.process(np.zeros(HOP, np.float32))
            tracker.reset()
        except Exception:
            return
        self._ready_tracker = tracker

    def set_input_gain(self, gain_db: float) -> None:
        """The microphone's gain in dB (-40..+40), applied at once if it is open. Thread: UI."""
        from dataclasses import replace

        new = replace(self._audio_cfg, input_gain_db=float(gain_db))   # validates
        with self._lock:
            self._audio_cfg = new
            mic = self._mic
        if mic is not None:
            mic.set_gain(new.input_gain_db)

    @property
    def input_gain_db(self) -> float:
        return self._audio_cfg.input_gain_db

    def _stop_mic(self) -> None:
        mic, self._mic = self._mic, None
        if mic is not None:
            try:
                mic.close()
            except Exception:
                pass
        self._hummed = None

    def _mic_note(self, time_sample: int, pitch: int, on: bool) -> None:
        """A hummed note from the pitch tracker (audio-clock sample). Thread: pitch worker."""
        pitch = int(pitch)
        if on:
            snapped = snap_to_scale(pitch, self._snap_scale)
            self._hum_open[pitch] = snapped
            pitch = snapped
        else:
            pitch = self._hum_open.pop(pitch, pitch)
        gen = self._gen
        if gen is not None:
            gen.melody_event(int(time_sample), int(pitch), bool(on))
        kind = NOTE_ON if on else NOTE_OFF
        self._roll.push(int(time_sample), kind, P.MELODY.channel, int(pitch), 90 if on else 0)
        rec = self._recorder
        if rec is not None:
            rec.add_event(int(time_sample), kind, P.MELODY.channel, int(pitch), 90 if on else 0)

    # -- transport -------------------------------------------------------------------
    def prepare(self, timeout: float | None = None) -> bool:
        """Wait until the band is ready to play (model imported, loaded and traced; then
        the pitch tracker, so a switch to Hum is instant too; that takes seconds and
        starts in the background when the session opens), so that ``play`` then starts
        at once. True when ready; False if ``timeout`` ran out.
        Thread: any (the UI calls it on a worker thread, never on its own)."""
        end = None if timeout is None else time.monotonic() + timeout
        for loader in (self._loader, self._tracker_loader):
            loader.join(None if end is None else max(0.0, end - time.monotonic()))
        return not (self._loader.is_alive() or self._tracker_loader.is_alive())

    def _load_accompanist(self):
        """The model on the configured backend; when it cannot load (no trained
        checkpoint yet, a corrupt one), the rule-based band plays and a notice says why."""
        with self._load_lock:
            return self._load_accompanist_locked()

    def _load_accompanist_locked(self):
        if self._accompanist is not None:
            return self._accompanist
        from engine.backends import open_accompanist
        try:
            acc, used = open_accompanist(self._cfg.backend, self._cfg.checkpoint,
                                         notify=lambda m: self._problem("backend", m))
            if int(acc.lookahead) < 1:     # engine.generator refuses it live; say so here
                raise ValueError(f"{self._cfg.checkpoint} hears the melody ahead of time, so it is "
                                 "for offline render only")
            self._problem("model", None)
        except Exception as exc:
            reason = first_line(exc)
            try:
                from models.rules import RuleAccompanist
                acc, used = RuleAccompanist(), "rules"
                self._problem("model", f"accompaniment model unavailable ({reason}); "
                                       "the rule-based band plays instead")
            except Exception:
                self._problem("model", f"no accompaniment model ({reason}); you can still play, "
                                       "the band stays silent")
                return None
        self._accompanist = acc
        self._backend = used
        return acc

    def play(self) -> None:
        """Start the band (after the count-in) and a new recorded take. Thread: UI."""
        from engine.generator import StreamingGenerator
        from engine.quantiser import Quantiser
        from engine.renderer import PartRenderer
        from engine.sampler import ControlledSampler

        self._loader.join()            # the model loads in the background from __init__
        with self._lock:
            if self._playing:
                return
            cfg = self._cfg
            acc = self._load_accompanist()
            start = self._mixer.clock + int(START_LEAD_S * self.sample_rate)
            clock, beat_lock = self._synced_clock(cfg)
            if clock is None:
                clock = Clock(self.sample_rate, cfg.tempo, cfg.meter, cfg.count_in_bars, start_sample=start)
            self._beat_lock = beat_lock
            self._clock = clock
            self._roll.reset(clock)
            band_q = EventQueue(1 << 14)
            renderer = PartRenderer([band_q, self._roll, *self._band_listeners], cfg.style, cfg.meter, seed=cfg.seed,
                                    density=cfg.density, feel=cfg.feel,
                                    # the player's own choices; the style's programs otherwise
                                    programs={n: s.program for n, s in self._parts.items()
                                              if s.program != P.part(n).program})
            for name, st in self._parts.items():
                if st.mute:
                    renderer.muted.add(name)
                if st.solo:
                    renderer.soloed.add(name)
            gen = None
            if acc is not None:
                gen = StreamingGenerator(acc, clock, renderer, style=cfg.style,
                                         sampler=ControlledSampler(cfg.seed, cfg.temperature, cfg.density,
                                                                   cfg.harmony_follow),
                                         quantiser=Quantiser(clock), chunk_steps=cfg.chunk_steps,
                                         lead_ms=cfg.lead_ms,
                                         clock_source=lambda: self._mixer.clock, backend=self._backend,
                                         step_observer=None if beat_lock is None else beat_lock.on_step)
            self._band_q = band_q
            self._renderer = renderer
            self._mixer.add_queue(band_q)
            if self._recording:
                self._start_take()
            self._metro_segments = None
            self._update_metronome()
            if gen is not None:
                if cfg.key is not None:
                    gen.set_key(key_pitch_classes(*parse_key(cfg.key)))
                gen.start()
            else:
                # no model: still count in, so the player hears the tempo
                for k in range(clock.first_step, 0):
                    renderer.count_in(k, clock.step_time(k))
            self._gen = gen
            self._playing = True
            self._clock_tick = 0
            self._clock_started = False

    def stop(self) -> None:
        """Stop the band; everything sounding is released; the take is finalised."""
        with self._lock:
            if not self._playing:
                return
            gen, self._gen = self._gen, None
            if gen is not None:
                gen.stop()
                if gen.error is not None:
                    self._problem("model", f"the band stopped: {gen.error}")
            band_q, self._band_q = self._band_q, None
            if band_q is not None:
                self._mixer.remove_queue(band_q)      # drop what was committed ahead
            self._mixer.all_notes_off()
            self._mixer.set_metronome(False)
            self._playing = False
            self._beat_lock = None
            out = self._midi_out
            if out is not None and self._midi_clock:
                self._pending_raw.append("stop")
            if out is not None:
                for part in P.BAND_PARTS:
                    self._pending_ctl.append((ALL_OFF, part.channel, 0, 0))
            time.sleep(0.05)   # let the all-off reach the log before the take closes
            self._stop_take()

    # -- recording -------------------------------------------------------------------
    def set_recording(self, on: bool) -> None:
        """Record takes (from play to stop) into the sessions folder. Turning it on while
        playing starts a take at once. Thread: UI."""
        with self._lock:
            self._recording = bool(on)
            if on and self._playing and self._recorder is None:
                self._start_take()
            elif not on:
                self._stop_take()

    def _start_take(self) -> None:
        if not self._audio.active:     # nothing renders without a stream: the take would be empty
            self._problem("recording", "not recording: no audio output is playing "
                                       "(choose an output in the Setup tab, then press Play again)")
            return
        cfg = self._cfg
        try:
            folder = new_session_folder(sessions_dir())
            rec = Recorder(folder, self.sample_rate,
                           meta={"tempo": cfg.tempo, "meter": cfg.meter, "style": cfg.style,
                                 "input": self._input_mode, "key": self._key or "",
                                 "soundfont": str(self._soundfont), "backend": self._backend},
                           track_names=self._take_track_names())
            clock = self._clock
            rec.set_tempo(clock.step_time(clock.first_step) if clock else self._mixer.clock, cfg.tempo)
            rec.start()
        except OSError as exc:
            self._problem("recording", f"cannot record into {sessions_dir()}: {exc}")
            return
        self._problem("recording", None)
        self._recorder = rec
        # Channel programs at the take's start, so the MIDI file plays with the right sounds.
        t0 = self._mixer.clock
        for part in P.ALL_PARTS:
            if part.channel != P.DRUMS.channel:
                prog = self._parts[part.name].program if part.name in self._parts else part.program
                rec.add_event(t0, PROGRAM, part.channel, prog, 0)
        self._mixer.set_tap(rec.ring)

    def _take_track_names(self) -> dict[int, str]:
        """A take's MIDI track names: the part and the instrument it plays now, as the
        render's MIDI names them ("Bass (Fingered Bass)"; the melody plain "Melody")."""
        from engine.gm import instrument_name

        renderer = self._renderer
        playing = dict(renderer.programs) if renderer is not None else {}    # the style's, the player's
        names = {}
        for p in P.ALL_PARTS:
            st = self._parts.get(p.name)
            prog = playing.get(p.name, st.program if st is not None else p.program)
            drums = p.channel == P.DRUMS.channel
            names[p.channel] = ("Melody" if p is P.MELODY else
                                f"{p.name.capitalize()} ({instrument_name(prog if not drums else 0, drums)})")
        return names

    def _stop_take(self) -> None:
        rec, self._recorder = self._recorder, None
        self._mixer.set_tap(None)
        if rec is not None:
            if self._key:
                rec.set_meta("key", self._key)     # the key the band heard by the end of the take
            time.sleep(0.01)
            rec.stop()
            if rec.error:
                self._problem("recording", rec.error)
            self._confirm(f"take saved: {rec.folder.name} (Sessions tab)")

    def list_sessions(self) -> list[dict]:
        return _list_sessions(sessions_dir())

    def export_session(self, name: str, dest: str) -> list[str]:
        return _export_session(sessions_dir(), name, dest)

    def rename_session(self, old: str, new: str) -> str:
        """Rename a recorded take (not the one being recorded); the new name. Thread: UI."""
        self._refuse_current_take(old)
        return _rename_session(sessions_dir(), old, new).name

    def delete_session(self, name: str) -> None:
        """Delete a recorded take (not the one being recorded). Thread: UI."""
        self._refuse_current_take(name)
        _delete_session(sessions_dir(), name)

    def _refuse_current_take(self, name: str) -> None:
        rec = self._recorder
        if rec is not None and rec.folder.name == name:
            raise SessionError(f"{name} is being recorded; stop first")

    # -- band controls -----------------------------------------------------------------
    def set_tempo(self, bpm: float) -> None:
        bpm = check_tempo(bpm)
        with self._lock:
            self._cfg = self._cfg.with_(tempo=bpm)
            if self._gen is not None and self._beat_lock is None:
                self._gen.set_tempo(bpm)
            if self._link is not None:
                self._link.set_tempo(bpm)       # to every peer; the band follows Link

    def tap_tempo(self) -> float:
        """Tap on the beat; after two taps the tempo follows the median interval.
        Returns the tempo now in effect. Thread: UI."""
        now = time.monotonic()
        if self._taps and now - self._taps[-1] > 2.0:
            self._taps.clear()
        self._taps.append(now)
        if len(self._taps) >= 2:
            iv = sorted(b - a for a, b in zip(self._taps, list(self._taps)[1:]))
            bpm = 60.0 / iv[len(iv) // 2]
            self.set_tempo(min(240.0, max(40.0, bpm)))
        return self._cfg.tempo

    def set_meter(self, meter: str) -> None:
        """A new meter applies from the next play (the grid cannot change under the band)."""
        if meter not in METERS:
            raise ValueError(f"meter must be one of {', '.join(METERS)}, got {meter!r}")
        with self._lock:
            self._cfg = self._cfg.with_(meter=meter)
            if self._playing:
                self._happened(f"meter {meter} applies from the next play")

    def set_style(self, style: str) -> None:
        if style not in style_names():
            raise ValueError(f"style must be one of {', '.join(style_names())}, got {style!r}")
        with self._lock:
            self._cfg = self._cfg.with_(style=style)
            if self._gen is not None:
                self._gen.set_style(style)

    def set_key(self, key: str | None) -> None:
        """Fix the key ("D minor", "Bb major", "F#m"), or None to follow the playing.
        A fixed key keeps the band's notes and chords in its scale (from the next step it
        commits), snaps hummed notes to the scale and is what the snapshot reports.
        Raises SessionError for text that is not a key. Thread: UI."""
        try:
            cfg = self._cfg.with_(key=key)
        except ValueError as exc:
            raise SessionError(str(exc)) from None
        with self._lock:
            self._cfg = cfg
            self._snap_scale = None if cfg.key is None else key_pitch_classes(*parse_key(cfg.key))
            self._key = cfg.key or estimate_key(self._roll.pitch_classes())
            if self._gen is not None:
                self._gen.set_key(self._snap_scale)

    def _set_controls(self, **kw) -> None:
        with self._lock:
            self._cfg = self._cfg.with_(**kw)     # validates
            if self._gen is not None:
                c = self._cfg
                self._gen.set_controls(c.temperature, c.density, c.harmony_follow)

    def set_temperature(self, t: float) -> None:
        self._set_controls(temperature=float(t))

    def set_density(self, d: float) -> None:
        self._set_controls(density=float(d))

    def set_harmony_follow(self, h: float) -> None:
        self._set_controls(harmony_follow=float(h))

    def set_part(self, part: str, *, mute=None, solo=None, volume=None, program=None, through=None) -> None:
        """A mixer strip: the band's parts and the player's own ("melody"; ``through``
        False: its notes still reach the band, MIDI out and takes, but LiveBand does not
        sound them, for a player on a hardware synth). Thread: UI."""
        if part not in PART_NAMES:
            raise ValueError(f"unknown part {part!r}; choose one of {', '.join(PART_NAMES)}")
        if through is not None and part != "melody":
            raise ValueError("only your own part (melody) has a through switch")
        with self._lock:
            st = self._parts[part]
            if volume is not None and not (0.0 <= float(volume) <= 1.0):
                raise ValueError(f"volume must be 0-1, got {volume}")
            if program is not None and not 0 <= int(program) < 128:
                raise ValueError(f"GM program must be 0-127, got {program}")
            st = PartState(st.mute if mute is None else bool(mute), st.solo if solo is None else bool(solo),
                           st.volume if volume is None else float(volume),
                           st.program if program is None else int(program),
                           st.through if through is None else bool(through))
            self._parts = {**self._parts, part: st}
            ch = P.part(part).channel
            if volume is not None:
                self._mixer.set_channel_volume(ch, st.volume)
            if program is not None and ch != P.DRUMS.channel:
                self._mixer.set_program(ch, st.program)
                if self._renderer is not None:
                    self._renderer.programs[part] = st.program
                self._pending_ctl.append((PROGRAM, ch, st.program, 0))
                rec = self._recorder
                if rec is not None:
                    rec.add_event(self._mixer.clock, PROGRAM, ch, st.program, 0)
            if mute is not None or solo is not None or through is not None:
                soloed = {n for n, s in self._parts.items() if s.solo}
                for name, s in self._parts.items():
                    silent = s.mute or (bool(soloed) and name not in soloed) or not s.through
                    self._mixer.set_channel_mute(P.part(name).channel, silent)
                if self._gen is not None:
                    if mute is not None:
                        self._gen.set_mute(part, st.mute)
                    if solo is not None:
                        self._gen.set_solo(part, st.solo)

    @property
    def engine_config(self) -> EngineConfig:
        """The band's settings now (tempo, meter, style, fixed key, knobs, feel). Thread: any."""
        return self._cfg

    @property
    def master_volume(self) -> float:
        return self._master

    def set_feel(self, *, swing: float | None = None, fills: str | None = None, time_feel: str | None = None,
                 humanise: float = 0.0) -> None:
        """The drummer's feel from the next play (None: the style's). ValueError naming the
        value. Thread: UI."""
        with self._lock:
            self._cfg = self._cfg.with_(swing=swing, fills=fills, time_feel=time_feel, humanise=float(humanise))

    def set_master_volume(self, v: float) -> None:
        if not 0.0 <= float(v) <= 1.0:
            raise ValueError(f"master volume must be 0-1, got {v}")
        self._master = float(v)
        self._mixer.set_master_gain(self._master)

    def set_metronome(self, on: bool) -> None:
        with self._lock:
            self._metronome = bool(on)
            self._metro_segments = None
            self._update_metronome()

    def set_count_in(self, bars: int) -> None:
        with self._lock:
            self._cfg = self._cfg.with_(count_in_bars=int(bars))

    def _update_metronome(self) -> None:
        """Follow the clock's tempo map (a tempo change is announced ahead; the mixer
        keeps the old grid until the change's origin)."""
        clock = self._clock
        if not (self._metronome and self._playing and clock is not None):
            if not (self._metronome and self._playing):
                self._mixer.set_metronome(False)
            return
        segs = clock.segments
        if segs is self._metro_segments:
            return
        self._metro_segments = segs
        seg = segs[-1]
        bs = beat_steps(clock.meter)
        per_bar = max(1, clock.bar_steps // bs)
        bar_line = clock.first_step - clock.first_step % clock.bar_steps   # a synced band starts mid-bar
        first_beat = ((seg.step - bar_line) // bs) % per_bar
        self._mixer.set_metronome(True, origin=seg.sample, samples_per_beat=seg.samples_per_step * bs,
                                  beats_per_bar=per_bar, first_beat=first_beat)

    # -- helper threads ----------------------------------------------------------------
    def _dispatch_loop(self) -> None:
        """Applied events -> recorder and MIDI out; MIDI clock; the audio stream's DAC line.
        Thread: dispatcher."""
        buf = np.zeros(2048, EVENT_DTYPE)
        band_channels = {p.channel for p in P.BAND_PARTS}
        held: collections.deque = collections.deque()
        while not self._stop_threads.wait(0.002):
            try:
                # the DAC line, kept fresh here so a player's stamp never computes it
                self._audio.refresh_line()
                n = self._log_q.pop_until(1 << 62, buf)
                rec = self._recorder
                out = self._midi_out
                for i in range(n):
                    t, kind, ch, d1, d2 = (int(buf[i]["time"]), int(buf[i]["kind"]), int(buf[i]["channel"]),
                                           int(buf[i]["data1"]), int(buf[i]["data2"]))
                    if rec is not None:
                        rec.add_event(t, kind, ch, d1, d2)
                    if out is not None and ch in band_channels:
                        held.append((t, kind, ch, d1, d2))
                if out is None:
                    held.clear()
                    self._pending_ctl.clear()
                    self._pending_raw.clear()
                    continue
                while self._pending_raw:
                    out.send_raw(self._pending_raw.popleft())
                while self._pending_ctl:
                    out.send_event(*self._pending_ctl.popleft())
                now_sample = self._audio_now()
                while held and held[0][0] <= now_sample:
                    out.send_event(*held.popleft()[1:])
                if self._midi_clock and self._playing:
                    self._send_midi_clock(out, now_sample)
            except Exception as exc:          # keep dispatching; say what happened
                self._happened(f"MIDI/recording dispatch error: {exc}")
                time.sleep(0.1)

    def _audio_now(self) -> int:
        """The audio-clock sample being rendered now, interpolated between callbacks
        (events are released at the pace they were rendered, not in block bursts)."""
        a = self._audio
        if a.stream is None or a.last_block_time == 0.0:
            return self._mixer.clock
        dt = time.monotonic() - a.last_block_time
        est = a.last_block_clock + int(dt * self.sample_rate)
        return min(est, self._mixer.clock)

    def _send_midi_clock(self, out: MidiOutput, now_sample: int) -> None:
        clock = self._clock
        if clock is None:
            return
        zero = clock.step_time(0)
        if now_sample < zero:
            return
        if not self._clock_started:
            out.send_raw("start")
            self._clock_started = True
        while True:
            t = clock.beat_to_sample(self._clock_tick / 24.0)
            if t > now_sample:
                break
            out.send_raw("clock")
            self._clock_tick += 1

    def _housekeeping_loop(self) -> None:
        """Watchdogs and meters, every 0.25 s. Thread: housekeeper."""
        import psutil
        proc = psutil.Process()
        proc.cpu_percent(None)
        tick = 0
        while not self._stop_threads.wait(0.25):
            tick += 1
            try:
                with self._lock:     # never reopens a stream that close() is shutting
                    note = None if self._closed else self._audio.watch()
                    if not self._closed:
                        self._audio.collect_garbage()    # automatic gc is off while it plays
                if note is not None:
                    if note.startswith("audio device lost"):
                        self._problem("audio", note)
                    else:
                        self._problem("audio", None)
                        self._happened(note)
                if tick % 12 == 0 and not self._audio._wanted and "audio" in self._problems \
                        and self._audio_cfg.output_device is None:
                    self._retry_audio()
                if tick % 4 == 0:
                    self._scan_midi()
                    self._cpu = proc.cpu_percent(None)
                    self._key = self._cfg.key or estimate_key(self._roll.pitch_classes())
                with self._lock:
                    self._update_metronome()
                    gen = self._gen
                    if gen is not None and gen.error is not None:
                        self._problem("model", f"the band stopped: {gen.error}")
                rec = self._recorder
                if rec is not None and rec.error:
                    self._problem("recording", rec.error)
                mic = self._mic
                if mic is not None:
                    self._level_db = float(mic.level_db)
                    self._hummed = mic.pitch
                    # an error, else a hint (clipping, NaN/inf, talking); None clears the last one
                    self._problem("input", mic.notice())
            except Exception as exc:
                self._happened(f"housekeeping error: {exc}")

    # -- views (Thread: any) -----------------------------------------------------------
    def _heard_step(self) -> float:
        clock = self._clock
        if clock is None:
            return 0.0
        lat = int(self._audio.latency_ms * self.sample_rate / 1000.0)
        return clock.sample_to_steps(max(clock.step_time(clock.first_step), self._audio_now() - lat))

    def _chord_at(self, step: float) -> str:
        gen = self._gen
        if gen is None:
            return ""
        name = ""
        try:
            key = parse_key(self._key) if self._key else None    # chords spelled in the key shown
        except ValueError:
            key = None
        for frame in list(gen.recent):
            if frame[0] <= step:
                name = chord_name(int(frame[1]), key)
            else:
                break
        return name

    def snapshot(self) -> SessionSnapshot:
        playing = self._playing
        clock = self._clock
        step = self._heard_step() if playing else 0.0
        gen = self._gen
        m = gen.metrics() if gen is not None else None
        tempo = clock.tempo_at_step(int(math.floor(step))) if (playing and clock is not None) else self._cfg.tempo
        src = self._sync_source()
        if src is not None and src.tempo is not None:
            tempo = src.tempo                   # the followed tempo, not the lock's per-beat steering
        return SessionSnapshot(
            playing=playing, counting_in=bool(playing and step < 0), tempo=float(tempo),
            meter=self._cfg.meter, style=self._cfg.style, input_mode=self._input_mode,
            step=float(step), chord=self._chord_at(step) if playing else "", key=self._key,
            input_level_db=float(self._level_db), hummed_pitch=self._hummed,
            audio_latency_ms=self._audio.latency_ms, xruns=int(self._mixer.audible_xruns),
            lead_ms=float(m.lead_ms_last) if m else 0.0, late_steps=int(m.late_steps) if m else 0,
            cpu_percent=float(self._cpu), backend=self._backend,
            recording=self._recorder is not None, notices=self._current_notices(), parts=dict(self._parts),
            confirmation=self._current_confirmation())

    def roll(self, since_step: float) -> list[tuple[str, int, float, float, bool]]:
        """Notes (part incl. "melody", pitch, start_step, end_step, planned) that end at or
        after ``since_step``; planned = committed by the band but not heard yet."""
        if self._clock is None:
            return []
        return self._roll.notes_since(since_step, self._heard_step())

    # -- offline ---------------------------------------------------------------------
    def render_file(self, path: str, out_wav: str, midi_out: str | None = None,
                    progress: Callable[[float], None] | None = None, *, stems: bool = False,
                    loudness: float | None = -16.0) -> None:
        """Accompany a melody file (.mid, or a hummed .wav) offline with the session's band
        settings, by the `render` command's rules (liveband.rendering): the file's tempo
        and meter, the command's default backend, the mix at ``loudness`` LUFS (None: as
        rendered), ``stems``: each part beside it (OUT.bass.wav, ...; engine.export). Each
        file is written beside its name and renamed into place when all succeeded.
        ``progress(fraction)`` is called from this (the caller's) thread."""
        from engine.offline import RenderSettings, render_melody
        from liveband.commands.render import Outputs, load_melody, mix_synth_gain, stem_paths
        from liveband.rendering import band_timing, open_band

        src = Path(path)
        if not src.is_file():
            raise FileNotFoundError(f"melody file not found: {src}")
        melody = load_melody(src)
        tempo, meter = band_timing(melody, say=self._happened)
        c = self._cfg
        melody, acc, backend = open_band(melody, checkpoint=c.checkpoint, say=self._happened)
        settings = RenderSettings(style=c.style, tempo=tempo, meter=meter, temperature=c.temperature,
                                  density=c.density, harmony_follow=c.harmony_follow, seed=c.seed,
                                  sample_rate=self.sample_rate,
                                  programs={n: s.program for n, s in self._parts.items()},
                                  muted=tuple(n for n, s in self._parts.items() if s.mute))
        cb = None if progress is None else (lambda done, total: progress(done / max(1, total)))
        out = Path(out_wav)
        outputs = Outputs()
        try:
            wav_tmp = outputs.temp_for(out, keep=loudness is None and not stems)
            result = render_melody(melody, acc, settings, self._soundfont, wav_tmp, backend=backend, progress=cb)
            if stems or loudness is not None:
                from engine.export import export_stems_and_loudness, stem_parts

                finals = stem_paths(out)
                files = {p.name: (outputs.temp_for(finals[p.name], keep=False), outputs.temp_for(finals[p.name]))
                         for p in (stem_parts(result.events) if stems else ())}
                export_stems_and_loudness(wav_tmp, outputs.temp_for(out), files, result.events, result.frames,
                                          self._soundfont, sample_rate=settings.sample_rate, block=settings.block,
                                          synth_gain=mix_synth_gain(render_melody), target_lufs=loudness)
            if midi_out is not None:
                from engine.midi_export import write_midi
                write_midi(outputs.temp_for(Path(midi_out)), result.events, result.clock)
            outputs.commit()
        finally:
            outputs.discard()

    # -- lifecycle -------------------------------------------------------------------
    def close(self) -> None:
        """Stop everything and release devices (the take in progress is finalised)."""
        try:
            self.stop()
        finally:
            # the audio callback renders the synth: its stream must be shut, and stay
            # shut, before the synth is freed (a stream reopened meanwhile by the
            # watchdog or a device change crashed inside FluidSynth)
            with self._lock:
                self._closed = True
                self._audio.stop()
            self._stop_threads.set()
            for t in (self._dispatcher, self._housekeeper):
                if t.is_alive():
                    t.join(timeout=2)
            # A session closed while its model still loads must not leave that thread
            # inside torch at interpreter exit (C++ aborts: "terminate called ...").
            for loader in (self._loader, self._tracker_loader):
                if loader.is_alive():
                    loader.join(timeout=60)
            self._stop_mic()
            self._audio.stop()
            if self._midi_in is not None:
                self._midi_in.close()
                self._midi_in = None
            if self._midi_out is not None:
                self._midi_out.close()
                self._midi_out = None
            self._ports.close()
            self._control.close()
            if self._link is not None:
                self._link.close()
                self._link = None
            self._synth.close()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def add_band_listener(self, sink) -> None:
        """``sink.push(time, kind, channel, data1, data2)`` receives every event the band
        commits, from the next play() on, on the generator thread (for monitors, tests)."""
        self._band_listeners.append(sink)

    # -- for benches and tests (Thread: any) ---------------------------------------------
    @property
    def mixer(self) -> Mixer:
        return self._mixer

    @property
    def audio(self) -> AudioOut:
        return self._audio

    @property
    def generator(self):
        return self._gen

    @property
    def recorder(self) -> Recorder | None:
        return self._recorder

    @property
    def clock(self) -> Clock | None:
        return self._clock

"""What the player plays into: the computer keyboard, MIDI controllers (ports, hot-plug,
channel filter, MIDI learn's interception) and the microphone with its pitch tracker; and
where each note goes: sounded (the player's queues into the mixer), told to the band's
generator, drawn on the piano roll, and (hummed notes) recorded.

Thread: UI for the setters (under the session lock); notes arrive on the UI thread (keys),
rtmidi's thread (MIDI) and the pitch worker (mic); ``poll``/``meter``: housekeeper."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Callable

import numpy as np

from engine import parts as P
from engine.errors import first_line
from engine.events import CONTROL, IMMEDIATE, NOTE_OFF, NOTE_ON, EventQueue
from engine.keyfind import snap_to_scale
from engine.midi_io import MidiInput, NoteFilter, VirtualMidiInput
from engine.midi_ports import PortWatcher
from engine.mixer import Mixer
from engine.recorder import Recorder
from liveband.config import DEFAULT_INPUT_MODE
from liveband.midilearn import MidiLearn
from liveband.session_audio import SessionAudio
from liveband.session_notices import Notices
from liveband.session_roll import Roll
from liveband.session_sync import TempoSync
from liveband.session_types import INPUT_MODES, VIRTUAL_IN_NAME

if TYPE_CHECKING:
    from engine.generator import StreamingGenerator
    from engine.mic_input import MicInput
    from engine.pitch.tracker import PitchTracker

NO_MIDI_HINT = "The computer keyboard plays instead (keys Z to M, sharps on S D G H J; on-screen keys)"


class Inputs:
    def __init__(
        self,
        lock: threading.RLock,
        notices: Notices,
        mixer: Mixer,
        audio: SessionAudio,
        roll: Roll,
        sync: TempoSync,
        learn: MidiLearn,
        generator: Callable[[], StreamingGenerator | None],
        recorder: Callable[[], Recorder | None],
        model_loader: threading.Thread,
        closing: threading.Event,
    ) -> None:
        """``generator()``: the playing band's generator (None when stopped);
        ``recorder()``: the take recording now; the tracker preloads after
        ``model_loader``; nothing opens once ``closing`` is set."""
        self._lock = lock
        self._notices = notices
        self._mixer = mixer
        self._audio = audio
        self._roll = roll
        self._sync = sync
        self.learn = learn
        self._generator = generator
        self._recorder = recorder
        self._model_loader = model_loader
        self._closing = closing
        self.key_q = EventQueue(1024)  # producer: UI thread
        self.midi_q = EventQueue(1024)  # producer: rtmidi thread
        for q in (self.key_q, self.midi_q):
            mixer.add_queue(q)
        self.mode = DEFAULT_INPUT_MODE
        self.midi_in: MidiInput | None = None
        self._midi_filter: NoteFilter | None = None  # midi_in's: what its player holds
        self._midi_in_wanted: str | None = None
        self._midi_channel: int | None = None
        self.ports = PortWatcher()
        self.mic: MicInput | None = None
        self.mic_starting = False
        self._mic_settled = threading.Event()  # no microphone start under way
        self._mic_settled.set()
        self.pitch_tracker = "pesto"
        self.ready_tracker: PitchTracker | None = None
        self.hummed: float | None = None
        self.level_db = -120.0
        # a fixed key's scale (set_key): hummed notes snap to it; raw -> snapped pitch of
        # the hummed notes sounding, so a note-off matches its note-on if the key changes
        self.snap_scale: frozenset[int] | None = None
        # arranger mode (liveband.session_steering): takes the chord keys below the split
        self.chord_keys: Callable[[int, int, bool], bool] | None = None
        self._hum_open: dict[int, tuple[int, int]] = {}  # hummed pitch -> (snapped, on time)
        # The pitch tracker loads after the model: a switch to Hum then only opens the
        # microphone, and nothing heavy runs while the band is already playing.
        self.tracker_loader = threading.Thread(target=self._preload_tracker, name="liveband-tracker", daemon=True)

    # -- MIDI ports ----------------------------------------------------------------------
    def ports_now(self) -> dict:
        return {"inputs": sorted(self.ports.inputs), "outputs": sorted(self.ports.outputs)}

    def poll(self, initial: bool = False) -> None:
        """MIDI hot-plug: the wanted input reopens when it returns, a vanished one closes
        (the session goes on). Thread: housekeeper (and the constructor)."""
        appeared, vanished = self.ports.poll()
        if not self.ports.inputs and not self.ports.outputs:
            self._notices.problem("midi", f"{self.ports.note}. {NO_MIDI_HINT}")
        else:
            self._notices.problem("midi", None)
        if initial:
            return
        for name in sorted(appeared):
            if name == self._midi_in_wanted and self.midi_in is None:
                try:
                    self._open(name)
                    self._notices.confirm(f"MIDI input {name!r} is back")
                except OSError:
                    pass
            elif not name.startswith("LiveBand"):
                self._notices.happened(f"MIDI input {name!r} appeared")
        cur = self.midi_in
        if cur is not None and not isinstance(cur, VirtualMidiInput) and cur.name in vanished:
            self._close_midi()
            self._notices.happened(
                f"MIDI input {cur.name!r} vanished; the session goes on (it reconnects when the device returns)"
            )

    def _open(self, name: str) -> None:
        filt = NoteFilter(
            self._midi_note,
            self._midi_control,
            self._midi_channel,
            on_realtime=self._sync.clock_in.feed,
            intercept=self.learn.handle,
        )
        self.learn.set_controller(name)
        if name == VIRTUAL_IN_NAME:
            self.midi_in = VirtualMidiInput(VIRTUAL_IN_NAME, filt)
        else:
            self.midi_in = MidiInput(name, filt)
        self._midi_filter = filt

    def _close_midi(self) -> None:
        """Close the MIDI input; the notes its player still holds (keys down, the pedal's)
        end now, as its note-offs would: in the synth, for the band, on the roll and in the
        take. Thread: UI (under the session lock) or housekeeper (the input vanished)."""
        cur, filt = self.midi_in, self._midi_filter
        self.midi_in = self._midi_filter = None
        if cur is not None:
            cur.close()
        if filt is not None:
            filt.release_all()

    def open_midi(self, name: str | None, channel: int | None = None) -> None:
        with self._lock:
            self._close_midi()
            self._midi_in_wanted = name
            self._midi_channel = channel
            if name is None:
                return
            self._open(name)
            self._sync.input_opened()
            if self.mode == "keyboard":
                self.mode = "midi"

    # -- notes ---------------------------------------------------------------------------
    def _player_note(self, q: EventQueue, pitch: int, on: bool, velocity: int, arrived: float) -> None:
        """A note from the player that reached LiveBand at monotonic time ``arrived``:
        sound it a fixed delay after that and tell the band. Thread: the queue's producer
        (UI for keys, rtmidi's thread for MIDI)."""
        ch = P.MELODY.channel
        q.push(IMMEDIATE, NOTE_ON if on else NOTE_OFF, ch, pitch, velocity if on else 0, arrived)
        # the sample it sounds at: the arrival stamp at the fixed player delay when the
        # stream has a timebase, else the start of the next block
        t = q.last_time if q.last_time != IMMEDIATE else self._mixer.clock
        chord_keys = self.chord_keys
        gen = self._generator()
        if chord_keys is not None and chord_keys(t, pitch, on):
            pass  # a chord key: the band's chord, not melody
        elif gen is not None:
            gen.melody_event(t, pitch, on)
        self._roll.push(t, NOTE_ON if on else NOTE_OFF, ch, pitch, velocity if on else 0)

    def _midi_note(self, pitch: int, on: bool, velocity: int, arrived: float) -> None:
        self._player_note(self.midi_q, pitch, on, velocity, arrived)

    def _midi_control(self, control: int, value: int, arrived: float) -> None:
        self.midi_q.push(IMMEDIATE, CONTROL, P.MELODY.channel, control, value, arrived)

    def key_event(self, pitch: int, down: bool, velocity: int = 100) -> None:
        arrived = time.monotonic()  # first: the note is timed from here
        if not 0 <= int(pitch) < 128:
            raise ValueError(f"MIDI pitch out of range: {pitch}")
        self._player_note(self.key_q, int(pitch), bool(down), max(1, min(127, int(velocity))), arrived)

    def mic_note(self, time_sample: int, pitch: int, on: bool) -> None:
        """A hummed note from the pitch tracker (audio-clock sample). Thread: pitch worker."""
        pitch = int(pitch)
        taken_back = False
        if on:
            snapped = snap_to_scale(pitch, self.snap_scale)
            self._hum_open[pitch] = (snapped, int(time_sample))
            pitch = snapped
        else:
            pitch, on_at = self._hum_open.pop(pitch, (pitch, None))
            # ended where it began: a note the tracker took back (engine.pitch.segmenter)
            taken_back = on_at == int(time_sample)
        gen = self._generator()
        if gen is not None:
            # a take-back struck out before the band's model hears its step: no ghost note
            gen.melody_event(int(time_sample), int(pitch), bool(on), take_back=taken_back)
        kind = NOTE_ON if on else NOTE_OFF
        if taken_back:
            self._roll.take_back(P.MELODY.channel, int(pitch))
        else:
            self._roll.push(int(time_sample), kind, P.MELODY.channel, int(pitch), 90 if on else 0)
        rec = self._recorder()
        if rec is not None:
            rec.add_event(int(time_sample), kind, P.MELODY.channel, int(pitch), 90 if on else 0)

    # -- input mode and the microphone ---------------------------------------------------
    def set_mode(self, mode: str) -> None:
        if mode not in INPUT_MODES:
            raise ValueError(f"input mode must be one of {', '.join(INPUT_MODES)}, got {mode!r}")
        with self._lock:
            if mode != "mic" and self.mic is not None:
                self.stop_mic()
            self.mode = mode
            self._notices.problem("input", None)
            if mode == "mic":
                self.start_mic()
            elif mode == "midi" and self.midi_in is None:
                self._notices.problem(
                    "input",
                    "MIDI mode: no controller open; choose one in the Setup tab "
                    "(or connect a program to the 'LiveBand in' port)",
                )

    def start_mic(self) -> None:
        """Open the microphone and its pitch tracker on a helper thread (loading the
        tracker takes seconds); notices say what went wrong."""
        if self.mic is not None or self.mic_starting:
            return
        self.mic_starting = True
        self._mic_settled.clear()
        self._notices.problem("input", "microphone starting (loading the pitch tracker)...")
        threading.Thread(target=self._open_mic, name="liveband-mic-start", daemon=True).start()

    def _open_mic(self) -> None:
        try:
            from engine.mic_input import MicInput

            self.tracker_loader.join()
            ready = self.ready_tracker
            tracker = ready if ready is not None and ready.name == self.pitch_tracker else self.pitch_tracker
            cfg = self._audio.config
            mic = MicInput(
                self.mic_note,
                self._audio.out,
                device=cfg.input_device,
                sample_rate=self._audio.sample_rate,
                tracker=tracker,
                gain_db=cfg.input_gain_db,
            )
        except Exception as exc:  # no input device, tracker weights missing...
            self._notices.problem(
                "input",
                f"microphone unavailable ({first_line(exc)}); use the keyboard or MIDI, or choose another input device",
            )
        else:
            if self.mode == "mic" and not self._closing.is_set():
                self.mic = mic
                self._notices.problem("input", None)
            else:
                mic.close()
        finally:
            self.mic_starting = False
            self._mic_settled.set()

    def wait_mic(self, timeout: float | None = None) -> bool:
        """Wait until a microphone start (``set_mode("mic")``) has finished, opened or
        failed (the notices say why); True when the microphone is open. Thread: any."""
        self._mic_settled.wait(timeout)
        return self.mic is not None

    def _preload_tracker(self) -> None:
        """Load and warm the pitch tracker (seconds of imports and a first slow call) in
        the background after the model; on failure the mic's own start says why.
        Thread: liveband-tracker."""
        self._model_loader.join()
        if self._closing.is_set():
            return
        try:
            from engine.pitch.tracker import HOP, make_tracker

            tracker = make_tracker(self.pitch_tracker)
            for _ in range(3):
                tracker.process(np.zeros(HOP, np.float32))
            tracker.reset()
        except Exception:
            return
        self.ready_tracker = tracker

    def set_gain(self, gain_db: float) -> None:
        mic = self.mic
        if mic is not None:
            mic.set_gain(gain_db)

    def stop_mic(self) -> None:
        mic, self.mic = self.mic, None
        if mic is not None:
            try:
                mic.close()
            except Exception:
                pass
        self.hummed = None

    def meter(self) -> None:
        """The microphone's level, pitch and notice for the snapshot. Thread: housekeeper."""
        mic = self.mic
        if mic is not None:
            self.level_db = float(mic.level_db)
            self.hummed = mic.pitch
            # an error, else a hint (clipping, NaN/inf, talking); None clears the last one
            self._notices.problem("input", mic.notice())

    def close(self) -> None:
        self.stop_mic()
        self._close_midi()
        self.ports.close()

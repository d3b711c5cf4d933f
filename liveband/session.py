"""The live session: the one object the UI and the CLI talk to. A facade over its parts:

```
computer keyboard (UI) --key_event--> key queue ---------\\
MIDI controller (rtmidi thread) --NoteFilter--> MIDI queue -+--> Mixer (audio callback)
StreamingGenerator (worker) --PartRenderer--> band queue --/        |  event log
   ^ melody events (audio-clock samples)                            v
   +---- keyboard / MIDI / microphone pitch tracker        dispatcher thread
                                                           --> recorder (WAV + MIDI), MIDI out
```

- liveband.session_audio: the output device (open, retry, switch) and the audio clock;
- liveband.session_inputs: keyboard, MIDI ports and hot-plug, note routing, microphone;
- liveband.session_band: the model, generator, the band's play/stop and controls;
- liveband.session_sync: MIDI clock / Ableton Link tempo sync;
- liveband.session_outputs: the dispatcher: applied events -> take and MIDI out, MIDI clock;
- liveband.session_takes: recorded takes; liveband.session_notices: what the player is told;
- liveband.session_roll: the piano roll's notes and the chord shown; session_render: offline;
- liveband.session_transport: play, stop, readiness, and a followed MIDI clock's or Link's;
- liveband.session_parts: all of these built, started and closed in order (no globals).

Threads: the UI calls every method from its own thread, except ``snapshot`` and ``roll``
which any thread may call. The session runs helper threads of its own: the *dispatcher*
(session_outputs, every 2 ms) and the *housekeeper* (every 0.25 s: audio device watchdog,
MIDI hot-plug, metronome grid, CPU meter, key estimate). Neither touches the audio
callback's data except through the lock-free queues. The *control* thread runs what MIDI
asks for (a MIDI clock's start/stop, MIDI-learned buttons and knobs: liveband.midilearn)
as the UI would. The model and the pitch tracker load on threads of their own.

Missing hardware is not an error: without an audio device or MIDI ports the session
still constructs, ``snapshot().notices`` says what is missing and how to fix it, and
``render_file`` works offline.
"""

from __future__ import annotations

from typing import Callable

from engine.audio_out import AudioOut
from engine.clock import Clock
from engine.mixer import Mixer
from engine.recorder import Recorder
from liveband.config import DEFAULT_LUFS, AudioConfig, EngineConfig
from liveband.midilearn import ControlThread, session_targets
from liveband.session_inputs import Inputs
from liveband.session_parts import Parts
from liveband.session_roll import RollNote
from liveband.session_steering import FormState, Steering
from liveband.session_sync import TempoSync
from liveband.session_types import (
    INPUT_MODES,
    PART_NAMES,
    VIRTUAL_IN_NAME,
    VIRTUAL_OUT_NAME,
    PartState,
    SessionError,
    SessionSnapshot,
)

__all__ = [
    "Session",
    "SessionSnapshot",
    "PartState",
    "SessionError",
    "PART_NAMES",
    "INPUT_MODES",
    "VIRTUAL_IN_NAME",
    "VIRTUAL_OUT_NAME",
]


class Session:
    """The live instrument. See the module docstring for the wiring and threads."""

    def __init__(
        self,
        engine_config: EngineConfig | None = None,
        audio_config: AudioConfig | None = None,
        soundfont: str | None = None,
        *,
        accompanist=None,
        start_audio: bool = True,
    ) -> None:
        self._targets: dict | None = None
        self._p = Parts(
            engine_config or EngineConfig(), audio_config or AudioConfig(), soundfont, accompanist, self._learn_targets
        )
        self.sample_rate = self._p.sample_rate
        self._closed = False
        self._p.start(start_audio)

    # -- audio (Thread: UI) ------------------------------------------------------------
    def audio_devices(self) -> dict:
        return self._p.audio.devices()

    def set_audio_devices(self, output=None, input=None, blocksize=None) -> None:
        """Re-open the output on another device and/or block size. Thread: UI."""
        with self._p.lock:
            if self._p.audio.switch(output, input, blocksize) and self._p.inputs.mic is not None:
                self._p.inputs.stop_mic()
                self._p.inputs.start_mic()

    def set_input_gain(self, gain_db: float) -> None:
        """The microphone's gain in dB (-40..+40), applied at once if it is open. Thread: UI."""
        self._p.inputs.set_gain(self._p.audio.set_input_gain(gain_db))

    @property
    def input_gain_db(self) -> float:
        return self._p.audio.config.input_gain_db

    # -- inputs (Thread: UI) -------------------------------------------------------------
    def midi_ports(self) -> dict:
        return self._p.inputs.ports_now()

    def open_midi_input(self, name: str | None, channel: int | None = None) -> None:
        """Open a controller by name (``"LiveBand in"``: a virtual port other programs
        connect to); None closes it. ``channel`` 0-15 listens to one channel only.
        OSError with a readable message when the port does not exist. Thread: UI."""
        self._p.inputs.open_midi(name, channel)

    def key_event(self, pitch: int, down: bool, velocity: int = 100) -> None:
        """A computer-keyboard or on-screen key. Thread: UI."""
        self._p.inputs.key_event(pitch, down, velocity)

    def set_input_mode(self, mode: str) -> None:
        self._p.inputs.set_mode(mode)

    @property
    def pitch_tracker(self) -> str:
        """The microphone's pitch tracker by name ("pesto", "crepe"), from its next start."""
        return self._p.inputs.pitch_tracker

    @pitch_tracker.setter
    def pitch_tracker(self, name: str) -> None:
        self._p.inputs.pitch_tracker = name

    # -- outputs -------------------------------------------------------------------------
    def open_midi_output(self, name: str | None, virtual: bool = True) -> None:
        """Send the band (each part on its channel) to a MIDI port: a virtual port
        (default name "LiveBand band") or an existing port; None closes it. Thread: UI."""
        with self._p.lock:
            self._p.outputs.open(name, virtual, self._p.band.channel_programs())

    def set_midi_clock(self, on: bool) -> None:
        """MIDI clock (24 ppqn) and start/stop on the MIDI output. Thread: UI."""
        self._p.outputs.midi_clock = bool(on)

    @property
    def midi_clock(self) -> bool:
        """Whether MIDI clock and start/stop go to the MIDI output."""
        return self._p.outputs.midi_clock

    # -- tempo sync (Thread: UI) ---------------------------------------------------------
    def set_sync(self, mode: str) -> None:
        """Whose tempo the band plays to: "internal", "midi clock" (the MIDI input's clock;
        its start/stop start and stop the band) or "link" (Ableton Link: joins at once;
        the band locks to Link's bar phase from the next play). SessionError when Link
        cannot start. Thread: UI."""
        cfg = self._p.band.cfg
        self._p.sync.set_mode(mode, cfg.tempo, cfg.meter, self._p.inputs.midi_in is not None)

    @property
    def sync_mode(self) -> str:
        return self._p.sync.mode

    def set_sync_delay(self, ms: float) -> None:
        """How late the MIDI clock arrives (0-100 ms; a DAW's "MIDI clock sync delay"):
        the band plays that much earlier than the clock as received. Thread: UI."""
        self._p.sync.set_delay(ms)

    # -- MIDI learn (Thread: UI) ---------------------------------------------------------
    def _learn_targets(self) -> dict:
        if self._targets is None:
            self._targets = session_targets(self)
        return self._targets

    def midi_learn(self, target: str | None) -> None:
        """Bind the next CC or note from the open MIDI input to ``target`` (a name from
        ``midi_targets()``: "play_stop", "record", "tap_tempo", "density", ...); None
        cancels. ValueError for an unknown target. Thread: UI."""
        self._p.inputs.learn.arm(target)

    def midi_targets(self) -> list[str]:
        return list(self._learn_targets())

    @property
    def midi_learning(self) -> str | None:
        """The target waiting for a control to be moved, or None."""
        return self._p.inputs.learn.armed

    def midi_bindings(self) -> list:
        """The open controller's bindings (liveband.midilearn.Binding). Thread: any."""
        return self._p.inputs.learn.bindings()

    def clear_binding(self, target: str | None = None) -> int:
        """Forget the open controller's bindings of ``target`` (None: all); how many."""
        return self._p.inputs.learn.clear(target)

    # -- transport and takes (Thread: UI) ------------------------------------------------
    def prepare(self, timeout: float | None = None) -> bool:
        """Wait until the band is ready to play (model imported, loaded and traced; then
        the pitch tracker, so a switch to Hum is instant too; that takes seconds and
        starts in the background when the session opens), so that ``play`` then starts
        at once. True when ready; False if ``timeout`` ran out.
        Thread: any (the UI calls it on a worker thread, never on its own)."""
        return self._p.transport.prepare(timeout)

    def play(self) -> None:
        """Start the band (after the count-in) and a new recorded take; with Link, the
        other apps' transport too. Thread: UI."""
        self._p.transport.play()

    def stop(self) -> None:
        """Stop the band; everything sounding is released; the take is finalised; with
        Link, the other apps stop too."""
        self._p.transport.stop()

    # -- harmony: arranger, chart, locked form (liveband.session_steering; Thread: UI) ------
    def set_arranger(self, on: bool, split: int | None = None) -> None:
        """Arranger mode: notes below ``split`` (a MIDI note, default 54 = F#3) are chords the
        band plays from the next step; the rest stay the melody."""
        self._p.steering.set_arranger(on, split)

    def load_chart(self, path: str):
        """Loop a chord chart file from the next bar line (ChartError: one line naming the
        file and line; the chart playing stays)."""
        return self._p.steering.load_chart(path)

    def set_chart_text(self, text: str, name: str = "chart"):
        """A chart as text (typed, or from a preset); "" clears it."""
        return self._p.steering.set_chart_text(text, name)

    def chart_text(self) -> str:
        """The chart the session has, as its text ("" none): what a preset keeps."""
        return self._p.steering.chart_text()

    def save_chart(self, path: str, locked: bool = False) -> str:
        """Write the chart (``locked``: the locked form) as plain text."""
        return str(self._p.steering.save_chart(path, locked))

    def clear_chart(self) -> None:
        self._p.steering.clear_chart()

    def chart_sections(self) -> list[str]:
        return self._p.steering.sections()

    def loop_section(self, name: str | None) -> None:
        """Loop one section of the chart from the next bar line (None: all of it)."""
        self._p.steering.loop_section(name)

    def lock_form(self, bars: int) -> None:
        """Loop the chords of the band's last ``bars`` bars (2, 4, 8) from the next bar line."""
        self._p.steering.lock(bars)

    def unlock_form(self) -> None:
        self._p.steering.unlock()

    def set_tempo_ramp(self, bpm: float | None, every: int = 1) -> None:
        """Practice: +``bpm`` each ``every`` times round a looped chart or form (None: off)."""
        self._p.steering.set_tempo_ramp(bpm, every)

    def form_state(self) -> FormState:
        """Bar, form bar, section, loop and what drives the chords. Thread: any."""
        return self._p.views.form_state()

    @property
    def steering(self) -> Steering:
        return self._p.steering

    def set_recording(self, on: bool) -> None:
        """Record takes (from play to stop) into the sessions folder. Turning it on while
        playing starts a take at once. Thread: UI."""
        self._p.band.set_recording(on)

    @property
    def recording_enabled(self) -> bool:
        return self._p.takes.enabled

    def list_sessions(self) -> list[dict]:
        return self._p.takes.list_all()

    def export_session(self, name: str, dest: str) -> list[str]:
        return self._p.takes.export(name, dest)

    def rename_session(self, old: str, new: str) -> str:
        """Rename a recorded take (not the one being recorded); the new name. Thread: UI."""
        return self._p.takes.rename(old, new)

    def delete_session(self, name: str) -> None:
        """Delete a recorded take (not the one being recorded). Thread: UI."""
        self._p.takes.delete(name)

    # -- band controls (Thread: UI) ------------------------------------------------------
    def set_tempo(self, bpm: float) -> None:
        self._p.band.set_tempo(bpm)

    def tap_tempo(self) -> float:
        """Tap on the beat; after two taps the tempo follows the median interval.
        Returns the tempo now in effect. Thread: UI."""
        return self._p.band.tap()

    def set_meter(self, meter: str) -> None:
        """A new meter applies from the next play (the grid cannot change under the band)."""
        self._p.band.set_meter(meter)

    def set_style(self, style: str) -> None:
        self._p.band.set_style(style)

    def set_key(self, key: str | None) -> None:
        """Fix the key ("D minor", "Bb major", "F#m"), or None to follow the playing.
        A fixed key keeps the band's notes and chords in its scale (from the next step it
        commits), snaps hummed notes to the scale and is what the snapshot reports.
        Raises SessionError for text that is not a key. Thread: UI."""
        with self._p.lock:
            self._p.inputs.snap_scale = self._p.band.set_key(key)

    def set_temperature(self, t: float) -> None:
        self._p.band.set_controls(temperature=float(t))

    def set_density(self, d: float) -> None:
        self._p.band.set_controls(density=float(d))

    def set_harmony_follow(self, h: float) -> None:
        self._p.band.set_controls(harmony_follow=float(h))

    def set_part(self, part: str, *, mute=None, solo=None, volume=None, program=None, through=None) -> None:
        """A mixer strip: the band's parts and the player's own ("melody"; ``through``
        False: its notes still reach the band, MIDI out and takes, but LiveBand does not
        sound them, for a player on a hardware synth). Thread: UI."""
        self._p.band.set_part(part, mute=mute, solo=solo, volume=volume, program=program, through=through)

    @property
    def engine_config(self) -> EngineConfig:
        """The band's settings now (tempo, meter, style, fixed key, knobs, feel). Thread: any."""
        return self._p.band.cfg

    @property
    def master_volume(self) -> float:
        return self._p.band.master

    def set_feel(
        self,
        *,
        swing: float | None = None,
        fills: str | None = None,
        time_feel: str | None = None,
        humanise: float = 0.0,
    ) -> None:
        """The band's feel (None: the style's), from its next step while it plays, and for
        the next play. ValueError naming the value. Thread: UI."""
        self._p.band.set_feel(swing=swing, fills=fills, time_feel=time_feel, humanise=float(humanise))

    def set_master_volume(self, v: float) -> None:
        self._p.band.set_master_volume(v)

    @property
    def metronome(self) -> bool:
        """Whether the click sounds while the band plays."""
        return self._p.band.metronome

    def set_metronome(self, on: bool) -> None:
        self._p.band.set_metronome(on)

    def set_count_in(self, bars: int) -> None:
        self._p.band.set_config(count_in_bars=int(bars))

    def add_band_listener(self, sink) -> None:
        """``sink.push(time, kind, channel, data1, data2)`` receives every event the band
        commits, from the next play() on, on the generator thread (for monitors, tests)."""
        self._p.band.listeners.append(sink)

    # -- views (Thread: any; liveband.session_views) --------------------------------------
    def snapshot(self) -> SessionSnapshot:
        return self._p.views.snapshot()

    def roll(self, since_step: float) -> list[RollNote]:
        """Notes (part incl. "melody", pitch, start_step, end_step, planned, tentative)
        that end at or after ``since_step``; planned = committed by the band but not heard
        yet; tentative = the band's plan a beat past what it committed (never sounded)."""
        return self._p.views.roll(since_step)

    # -- offline -------------------------------------------------------------------------
    def render_file(
        self,
        path: str,
        out_wav: str,
        midi_out: str | None = None,
        progress: Callable[[float], None] | None = None,
        *,
        stems: bool = False,
        loudness: float | None = DEFAULT_LUFS,
    ) -> None:
        """Accompany a melody file (.mid, or a hummed .wav) offline with the session's band
        settings (its feel and loaded chart included), by the `render` command's rules
        (liveband.rendering): the file's tempo and meter, the command's default backend,
        the mix at ``loudness`` LUFS (None: as rendered), ``stems``: each part beside it
        (OUT.bass.wav, ...; engine.export). Each file is written beside its name and
        renamed into place when all succeeded.
        ``progress(fraction)`` is called from this (the caller's) thread."""
        from liveband.session_render import render_file

        render_file(
            path,
            out_wav,
            midi_out,
            progress,
            cfg=self._p.band.cfg,
            parts=self._p.band.parts,
            sample_rate=self.sample_rate,
            soundfont=self._p.soundfont,
            say=self._p.notices.happened,
            stems=stems,
            loudness=loudness,
            chart=self._p.steering.chart,
        )

    # -- lifecycle -----------------------------------------------------------------------
    def close(self) -> list[str]:
        """Stop everything and release devices (the take in progress is finalised) ->
        what the player must still be told, who may see no notice any more (a take the
        full disk kept from saving, and where its audio went). A second call does
        nothing."""
        with self._p.lock:
            if self._closed:
                return []
            self._closed = True
        try:
            self.stop()
        finally:
            told = self._p.close()
        return told

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- for benches and tests (Thread: any) ---------------------------------------------
    @property
    def mixer(self) -> Mixer:
        return self._p.mixer

    @property
    def audio(self) -> AudioOut:
        return self._p.audio.out

    @property
    def generator(self):
        return self._p.band.gen

    @property
    def recorder(self) -> Recorder | None:
        return self._p.takes.recorder

    @property
    def clock(self) -> Clock | None:
        return self._p.band.clock

    @property
    def inputs(self) -> Inputs:
        """The keyboard/MIDI/microphone part (its ``mic``, ``midi_in``, ``key_q``, ``learn``)."""
        return self._p.inputs

    @property
    def sync(self) -> TempoSync:
        """The tempo-sync part (its ``link``, ``beat_lock``, ``clock_in``)."""
        return self._p.sync

    @property
    def control(self) -> ControlThread:
        return self._p.control

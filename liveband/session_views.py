"""What the UI reads of a session, built from its parts on any thread: the snapshot, the
piano roll's notes and the band's place in its form; and the *housekeeper* thread that
keeps the watchdogs running and the meters these views read fresh (every 0.25 s: audio
device watchdog, MIDI hot-plug, metronome grid, CPU meter, mic meters)."""

from __future__ import annotations

import math
import threading

from engine.mixer import Mixer
from liveband.session_audio import SessionAudio
from liveband.session_band import Band
from liveband.session_inputs import Inputs
from liveband.session_notices import Notices
from liveband.session_roll import Roll, RollNote, chord_at, plan_notes
from liveband.session_steering import FormState, Steering
from liveband.session_sync import TempoSync
from liveband.session_takes import Takes
from liveband.session_types import SessionSnapshot

HOUSEKEEPING_S = 0.25


class Views:
    """Thread: any (each value is read once; nothing here takes the session lock)."""

    def __init__(
        self,
        band: Band,
        sync: TempoSync,
        inputs: Inputs,
        audio: SessionAudio,
        mixer: Mixer,
        takes: Takes,
        notices: Notices,
        roll: Roll,
        steering: Steering,
    ) -> None:
        self._band, self._sync, self._inputs, self._audio = band, sync, inputs, audio
        self._mixer, self._takes, self._notices, self._roll, self._steering = mixer, takes, notices, roll, steering
        self.cpu_percent = 0.0  # the process's, kept by the housekeeper

    def heard_step(self) -> float:
        """The band's step leaving the speakers now (0 before the band has a clock)."""
        clock = self._band.clock
        if clock is None:
            return 0.0
        return clock.sample_to_steps(max(clock.step_time(clock.first_step), self._audio.heard()))

    def snapshot(self) -> SessionSnapshot:
        band = self._band
        playing = band.playing
        clock = band.clock
        step = self.heard_step() if playing else 0.0
        gen = band.gen
        m = gen.metrics() if gen is not None else None
        tempo = clock.tempo_at_step(int(math.floor(step))) if (playing and clock is not None) else band.cfg.tempo
        src = self._sync.source()
        if src is not None and src.tempo is not None:
            tempo = src.tempo  # the followed tempo, not the lock's per-beat steering
        inputs = self._inputs
        form = self._steering.state(step if playing else -1.0)
        return SessionSnapshot(
            playing=playing,
            counting_in=bool(playing and step < 0),
            tempo=float(tempo),
            meter=band.cfg.meter,
            style=band.cfg.style,
            input_mode=inputs.mode,
            step=float(step),
            chord=chord_at(list(gen.recent), step, band.key) if playing and gen else "",
            key=band.key,
            input_level_db=float(inputs.level_db),
            hummed_pitch=inputs.hummed,
            audio_latency_ms=self._audio.out.latency_ms,
            xruns=int(self._mixer.audible_xruns),
            lead_ms=float(m.lead_ms_last) if m else 0.0,
            late_steps=int(m.late_steps) if m else 0,
            cpu_percent=float(self.cpu_percent),
            backend=band.backend,
            recording=self._takes.recorder is not None,
            notices=self._notices.current(),
            parts=dict(band.parts),
            confirmation=self._notices.confirmation(),
            bar=form.bar,
            section=form.section,
        )

    def roll(self, since_step: float) -> list[RollNote]:
        """The notes heard and committed, then the band's tentative plan while it plays."""
        band = self._band
        if band.clock is None:
            return []
        gen = band.gen
        plan: list[RollNote] = plan_notes(gen.plan, gen.next_step) if band.playing and gen is not None else []
        return self._roll.notes_since(since_step, self.heard_step()) + plan

    def form_state(self) -> FormState:
        return self._steering.state(self.heard_step() if self._band.playing else -1.0)


class Housekeeper:
    """Watchdogs and meters, every HOUSEKEEPING_S until ``closing`` is set."""

    def __init__(
        self,
        audio: SessionAudio,
        inputs: Inputs,
        band: Band,
        takes: Takes,
        notices: Notices,
        views: Views,
        closing: threading.Event,
    ) -> None:
        self._audio, self._inputs, self._band, self._takes = audio, inputs, band, takes
        self._notices, self._views, self._closing = notices, views, closing
        self._thread = threading.Thread(target=self._loop, name="liveband-house", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        import psutil

        proc = psutil.Process()
        proc.cpu_percent(None)
        tick = 0
        while not self._closing.wait(HOUSEKEEPING_S):
            tick += 1
            try:
                self._audio.watch(tick, rescan_ok=self._inputs.mic is None)
                if tick % 4 == 0:
                    self._inputs.poll()
                    self._views.cpu_percent = proc.cpu_percent(None)
                self._band.check()
                self._takes.check()
                self._inputs.meter()
            except Exception as exc:
                self._notices.happened(f"housekeeping error: {exc}")

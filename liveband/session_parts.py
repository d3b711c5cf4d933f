"""What a live session is made of: its parts built in dependency order, their threads
started, and all of it closed in the one safe order (the audio stream shut, and kept shut,
before the synth it renders is freed). liveband.session.Session is the API over them.

Everything is an attribute of the instance (no globals): one synth, one mixer whose
sample counter is the master clock, one audio stream, and the parts of liveband.session's
docstring, which each get only the others they use."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable

from engine.mixer import Mixer
from engine.synth import SoundFontError, Synth
from liveband.config import AudioConfig, EngineConfig
from liveband.midilearn import BINDINGS_FILE, ControlThread, MidiLearn
from liveband.paths import find_soundfont, user_config_dir
from liveband.session_audio import SessionAudio, open_rate
from liveband.session_band import Band
from liveband.session_inputs import Inputs
from liveband.session_notices import Notices
from liveband.session_outputs import Outputs
from liveband.session_roll import Roll
from liveband.session_steering import Steering
from liveband.session_sync import TempoSync
from liveband.session_takes import Takes
from liveband.session_transport import Transport
from liveband.session_types import SessionError
from liveband.session_views import Housekeeper, Views

MAX_BLOCK = 4096
LOADER_JOIN_S = 60.0  # a closing session waits this long for a model still loading


class Parts:
    def __init__(
        self,
        engine_config: EngineConfig,
        audio_config: AudioConfig,
        soundfont: str | None,
        accompanist: Any,
        learn_targets: Callable[[], dict],
    ) -> None:
        """SessionError (one line) when the SoundFont or FluidSynth cannot load.
        ``learn_targets()``: what MIDI learn can bind (liveband.midilearn.session_targets)."""
        self.lock = lock = threading.RLock()  # UI-side state; never taken by audio
        self.notices = notices = Notices()
        try:
            self.soundfont: Path = find_soundfont(soundfont)
        except FileNotFoundError as exc:
            raise SessionError(str(exc)) from None
        self.sample_rate = rate = open_rate(audio_config, notices)
        try:
            self.synth = Synth(self.soundfont, sample_rate=rate)
        except (SoundFontError, OSError) as exc:
            raise SessionError(f"SoundFont {self.soundfont} failed to load: {exc}") from None
        except RuntimeError as exc:  # FluidSynth missing
            raise SessionError(str(exc)) from None
        self.mixer = mixer = Mixer(self.synth, rate, max(MAX_BLOCK, audio_config.blocksize))
        self.closing = threading.Event()
        self.audio = audio = SessionAudio(mixer, audio_config, rate, lock, notices)
        self.roll = roll = Roll()
        self.control = ControlThread(on_error=notices.happened)
        self.sync = sync = TempoSync(lock, notices, self.control, audio, lambda kind: self.transport.follow(kind))
        self.outputs = outputs = Outputs(
            mixer,
            audio,
            notices,
            recorder=lambda: self.takes.recorder,
            band_clock=lambda: self.band.clock if self.band.playing else None,
        )
        self.takes = takes = Takes(mixer, audio, notices, rate, settle=outputs.settle)
        self.band = band = Band(
            engine_config,
            lock,
            mixer,
            rate,
            notices,
            roll,
            sync,
            takes,
            outputs,
            accompanist,
            take_meta=lambda: {"input": self.inputs.mode, "soundfont": str(self.soundfont)},
        )
        # MIDI learn: bound CCs/notes are taken off the MIDI input before the notes
        learn = MidiLearn(user_config_dir() / BINDINGS_FILE, self.control, learn_targets, notices.happened)
        self.inputs = inputs = Inputs(
            lock,
            notices,
            mixer,
            audio,
            roll,
            sync,
            learn,
            generator=lambda: band.gen,
            recorder=lambda: takes.recorder,
            model_loader=band.loader,
            closing=self.closing,
        )
        self.steering = steering = Steering(lock)
        band.steering = steering
        inputs.chord_keys = steering.note
        self.views = Views(band, sync, inputs, audio, mixer, takes, notices, roll, steering)
        self.house = Housekeeper(audio, inputs, band, takes, notices, self.views, self.closing)
        self.transport = Transport(lock, band, sync, audio, inputs.tracker_loader)

    def start(self, start_audio: bool) -> None:
        """The audio stream (unless ``start_audio`` is False: an offline session), the
        MIDI ports there are, and the session's threads: dispatcher, housekeeper, loaders."""
        notices = self.notices
        if not self.mixer.native:
            notices.problem(
                "callback",
                f"audio callback: using the Python fallback ({self.mixer.native_why}); "
                "busy Python threads can delay blocks",
            )
        if start_audio and not notices.has("audio"):
            self.audio.start()
        elif not start_audio:
            notices.problem("audio", "audio output not started (offline session)")
        self.inputs.poll(initial=True)
        self.outputs.start()
        self.house.start()
        self.band.loader.start()
        self.inputs.tracker_loader.start()

    def close(self) -> list[str]:
        """Release every device and thread, the band already stopped -> what the player
        must still be told (a take's audio put elsewhere)."""
        # the audio callback renders the synth: its stream must be shut, and stay
        # shut, before the synth is freed (a stream reopened meanwhile by the
        # watchdog or a device change crashed inside FluidSynth)
        self.audio.close()
        self.closing.set()
        self.outputs.close()
        self.house.join(timeout=2)
        told = self.takes.close()
        # A session closed while its model still loads must not leave that thread
        # inside torch at interpreter exit (C++ aborts: "terminate called ...").
        for loader in (self.band.loader, self.inputs.tracker_loader):
            if loader.is_alive():
                loader.join(timeout=LOADER_JOIN_S)
        self.inputs.close()
        self.audio.out.stop()
        self.control.close()
        self.sync.close()
        self.synth.close()
        return told

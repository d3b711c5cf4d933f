"""Where the player's notes go (liveband.session_inputs): a key sounds through its queue,
reaches the band's generator and the roll; a hummed note snaps to a fixed key's scale and
its note-off matches its note-on even when the key changes in between; input modes."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from engine import parts as P
from engine.clock import Clock
from engine.events import EVENT_DTYPE, NOTE_OFF, NOTE_ON
from engine.keyfind import key_pitch_classes, parse_key
from engine.mixer import Mixer
from engine.synth import Synth
from liveband.config import AudioConfig
from liveband.midilearn import ControlThread, MidiLearn
from liveband.session_audio import SessionAudio
from liveband.session_inputs import Inputs
from liveband.session_notices import Notices
from liveband.session_roll import Roll
from liveband.session_sync import TempoSync


class Band:
    def __init__(self) -> None:
        self.heard: list[tuple[int, int, bool]] = []
        self.taken_back: list[bool] = []  # per event: was it a take-back

    def melody_event(self, t: int, pitch: int, on: bool, take_back: bool = False) -> None:
        self.heard.append((t, pitch, on))
        self.taken_back.append(take_back)


class Take:
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def add_event(self, *ev) -> None:
        self.events.append(ev)


@pytest.fixture()
def rig(soundfont, liveband_home):
    synth = Synth(soundfont, sample_rate=48000)
    mixer = Mixer(synth, 48000, 1024)
    notices = Notices()
    lock = threading.RLock()
    audio = SessionAudio(mixer, AudioConfig(), 48000, lock, notices)  # no stream
    control = ControlThread()
    sync = TempoSync(lock, notices, control, audio, transport=lambda kind: None)
    learn = MidiLearn(liveband_home / "bindings.json", control, dict)
    roll = Roll()
    roll.reset(Clock(48000, 120.0, "4/4", 0, start_sample=0))
    band, take = Band(), Take()
    inputs = Inputs(
        lock,
        notices,
        mixer,
        audio,
        roll,
        sync,
        learn,
        generator=lambda: band,
        recorder=lambda: take,
        model_loader=threading.Thread(target=lambda: None),
        closing=threading.Event(),
    )
    yield inputs, band, take, roll, notices
    inputs.close()
    control.close()
    synth.close()


def test_a_key_sounds_through_its_queue_and_reaches_the_band_and_the_roll(rig):
    inputs, band, _, roll, _ = rig
    inputs.key_event(64, True, velocity=200)  # velocity kept to MIDI's range
    inputs.key_event(64, False)
    buf = np.zeros(8, EVENT_DTYPE)
    n = inputs.key_q.pop_until(1 << 62, buf)
    assert [(int(e["kind"]), int(e["channel"]), int(e["data1"]), int(e["data2"])) for e in buf[:n]] == [
        (NOTE_ON, P.MELODY.channel, 64, 127),
        (NOTE_OFF, P.MELODY.channel, 64, 0),
    ]
    assert [(p, on) for _t, p, on in band.heard] == [(64, True), (64, False)]
    assert [(part, pitch) for part, pitch, *_ in roll.notes_since(-1e9, 1e9)] == [("melody", 64)]
    with pytest.raises(ValueError, match="out of range"):
        inputs.key_event(128, True)


def test_a_hummed_note_snaps_to_the_fixed_key_and_its_off_matches_after_a_key_change(rig):
    inputs, band, take, _, _ = rig
    inputs.snap_scale = key_pitch_classes(*parse_key("C major"))
    inputs.mic_note(4800, 61, True)  # C#: not in C major, a tie goes up to D
    inputs.snap_scale = None  # the key is followed again
    inputs.mic_note(9600, 61, False)
    assert band.heard == [(4800, 62, True), (9600, 62, False)]
    assert [(e[1], e[3]) for e in take.events] == [(NOTE_ON, 62), (NOTE_OFF, 62)]


def test_a_hummed_note_the_tracker_takes_back_is_not_drawn_but_the_band_is_told(rig):
    # the tracker announced C#, then replaced it with D from the same onset
    inputs, band, _, roll, _ = rig
    inputs.mic_note(4800, 61, True)
    inputs.mic_note(4800, 61, False)
    inputs.mic_note(4800, 62, True)
    inputs.mic_note(9600, 62, False)
    assert band.heard == [(4800, 61, True), (4800, 61, False), (4800, 62, True), (9600, 62, False)]
    assert band.taken_back == [False, True, False, False]  # the band can strike it out
    assert [(part, pitch) for part, pitch, *_ in roll.notes_since(-1e9, 1e9)] == [("melody", 62)]


def test_midi_mode_without_a_controller_says_how_to_open_one(rig):
    inputs, _, _, _, notices = rig
    inputs.set_mode("midi")
    assert inputs.mode == "midi"
    assert any(n.startswith("MIDI mode: no controller open") for n in notices.current())
    inputs.set_mode("keyboard")
    assert not notices.has("input")
    with pytest.raises(ValueError, match="input mode must be one of"):
        inputs.set_mode("theremin")

"""Where the player's notes go (liveband.session_inputs): a key sounds through its queue,
reaches the band's generator and the roll; a hummed note snaps to a fixed key's scale and
its note-off matches its note-on even when the key changes in between; input modes."""

from __future__ import annotations

import collections
import threading

import mido
import numpy as np
import pytest
from waiting import wait_for

from engine import parts as P
from engine.clock import Clock
from engine.events import CONTROL, EVENT_DTYPE, NOTE_OFF, NOTE_ON
from engine.keyfind import key_pitch_classes, parse_key
from engine.mixer import Mixer
from engine.synth import Synth
from liveband.config import AudioConfig, EngineConfig
from liveband.midilearn import ControlThread, MidiLearn
from liveband.session import Session
from liveband.session_audio import SessionAudio
from liveband.session_inputs import Inputs
from liveband.session_notices import Notices
from liveband.session_roll import Roll
from liveband.session_sync import TempoSync
from liveband.session_types import VIRTUAL_IN_NAME


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


class Keys:
    """A MIDI keyboard: its own JACK MIDI client with an output port, ``name`` as LiveBand
    lists it among its inputs."""

    def __init__(self) -> None:
        import rtmidi

        from engine.midi_ports import scan

        self.out = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name="test keys")
        self.out.open_virtual_port("keys")
        listed = lambda: [n for n in scan()[0] if "test keys" in n]  # noqa: E731
        assert wait_for(listed, 10)
        self.name = listed()[0]

    def send(self, *message: int) -> None:
        self.out.send_message(list(message))

    def close(self) -> None:
        self.out.close_port()
        self.out.delete()


@pytest.mark.parametrize("then", [None, VIRTUAL_IN_NAME])
def test_closing_the_midi_input_ends_the_notes_its_player_holds(jack_server, rig, then):
    """A key down and one the pedal holds when the player closes the MIDI input (or
    switches to another): the synth's queue, the band and the roll get both note-offs, as
    if the keys had come up, and the pedal comes up."""
    inputs, band, _, roll, _ = rig
    keys = Keys()
    try:
        inputs.open_midi(keys.name)
        keys.send(0xB0, 64, 127)  # pedal down
        keys.send(0x90, 60, 100)
        keys.send(0x90, 64, 100)
        keys.send(0x80, 64, 0)  # held by the pedal
        assert wait_for(lambda: [(p, on) for _t, p, on in band.heard] == [(60, True), (64, True)], 5), band.heard
        inputs.open_midi(then)
    finally:
        keys.close()
    assert [(p, on) for _t, p, on in band.heard] == [(60, True), (64, True), (60, False), (64, False)]
    assert [end < 1e9 for _part, _p, _start, end, *_ in roll.notes_since(-1e9, 1e9)] == [True, True]
    buf = np.zeros(16, EVENT_DTYPE)
    n = inputs.midi_q.pop_until(1 << 62, buf)
    sent = [(int(e["kind"]), int(e["data1"]), int(e["data2"])) for e in buf[:n]]
    assert sent[-3:] == [(CONTROL, 64, 0), (NOTE_OFF, 60, 0), (NOTE_OFF, 64, 0)]


class Levels:
    """The mix's peak over its last 16 blocks, in front of the take's tap."""

    def __init__(self, mixer: Mixer) -> None:
        self.next = mixer.tap
        self.peaks: collections.deque = collections.deque(maxlen=16)
        mixer.set_tap(self)

    def write(self, block: np.ndarray, clock: int) -> bool:
        self.peaks.append(float(np.abs(block).max()))
        return self.next.write(block, clock) if self.next is not None else True

    def peak(self) -> float:
        return max(self.peaks, default=0.0)


@pytest.mark.timeout(120)
def test_a_controller_unplugged_while_a_key_is_held_ends_the_note_everywhere(jack_server, liveband_home):
    """The keyboard's JACK client goes away with a key down (no note-off ever comes): the
    organ stops sounding, and on the roll and in the take the note ends before the next
    one the player plays (on the computer keyboard)."""
    from models.rules import RuleAccompanist

    cfg = EngineConfig(tempo=120.0, count_in_bars=0)
    with Session(cfg, AudioConfig(blocksize=256), accompanist=RuleAccompanist()) as s:
        assert s.audio.active, s.snapshot().notices
        for part in ("bass", "keys", "pad", "drums"):
            s.set_part(part, mute=True)
        s.set_part("melody", program=19)  # a church organ: a stuck note never fades
        keys = Keys()
        try:
            assert wait_for(lambda: keys.name in s.midi_ports()["inputs"], 5)  # the hot-plug watch saw it
            s.open_midi_input(keys.name)
            s.play()
            take = s.recorder.folder
            mix = Levels(s.mixer)
            keys.send(0x90, 60, 100)
            assert wait_for(lambda: mix.peak() > 0.01, 5), mix.peaks
        finally:
            keys.close()  # unplugged
        assert wait_for(lambda: any("vanished" in n for n in s.snapshot().notices), 5), s.snapshot().notices
        assert wait_for(lambda: mix.peak() < 1e-3, 5), mix.peaks
        s.key_event(72, True)
        assert wait_for(lambda: 72 in [p for part, p, *_ in s.roll(-1000) if part == "melody"], 5)
        s.key_event(72, False)
        roll = {p: (start, end) for part, p, start, end, *_ in s.roll(-1000) if part == "melody"}
        s.stop()
    assert roll[60][1] <= roll[72][0], roll
    melody = [tr for tr in mido.MidiFile(str(take / "session.mid")).tracks if tr.name == "Melody"][0]
    notes = [(m.note, m.type == "note_on" and m.velocity > 0) for m in melody if m.type in ("note_on", "note_off")]
    assert notes == [(60, True), (60, False), (72, True), (72, False)], notes

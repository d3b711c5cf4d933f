"""MIDI learn through the real MIDI input path: a controller (its own JACK MIDI client)
plays into the session's virtual input on a real JACK server; learned controls drive
the transport and the knobs, a foot switch starts and stops the band, and the bindings
come back in a new session."""

from __future__ import annotations

import time

import pytest

from liveband.config import AudioConfig, EngineConfig
from liveband.session import VIRTUAL_IN_NAME, Session


class Controller:
    def __init__(self, port_part: str) -> None:
        import rtmidi

        self.out = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name="knob box")
        deadline = time.monotonic() + 10
        while not [n for n in self.out.get_ports() if port_part in n]:
            assert time.monotonic() < deadline, self.out.get_ports()
            time.sleep(0.1)
        self.out.open_port([i for i, n in enumerate(self.out.get_ports()) if port_part in n][0])

    def cc(self, number: int, value: int, channel: int = 0) -> None:
        self.out.send_message([0xB0 | channel, number, value])

    def note(self, pitch: int, velocity: int, channel: int = 0) -> None:
        self.out.send_message([0x90 | channel, pitch, velocity])

    def close(self) -> None:
        self.out.close_port()
        self.out.delete()


@pytest.mark.timeout(180)
def test_learned_controls_drive_the_band_over_jack_and_persist(jack_session, wait_for, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    with jack_session(tempo=120.0, count_in_bars=0, midi_in=True) as s:
        box = Controller(VIRTUAL_IN_NAME)
        try:
            s.midi_learn("play_stop")
            assert s.midi_learning == "play_stop"
            box.cc(80, 127)  # the move that is learned
            assert wait_for(lambda: s.midi_learning is None and s.midi_bindings(), 3.0)
            box.cc(80, 0)
            assert not s.snapshot().playing  # learning did not press it
            box.cc(80, 127)
            assert wait_for(lambda: s.snapshot().playing, 5.0), s.snapshot().notices
            box.cc(80, 0)
            s.midi_learn("density")
            box.cc(21, 64)
            assert wait_for(lambda: len(s.midi_bindings()) == 2, 3.0)
            for v in (0, 127, 32):
                box.cc(21, v)
                assert wait_for(lambda: abs(s.engine_config.density - v / 127.0) < 1e-9, 3.0), (
                    v,
                    s.engine_config.density,
                )
            # the band itself gets the knob (the generator's sampler)
            assert wait_for(lambda: abs(s.generator.sampler.density - 32 / 127.0) < 1e-9, 3.0)
            # a foot switch (sustain pedal CC64) learned onto play/stop stops and starts the band,
            # and is no longer the player's sustain pedal
            s.midi_learn("play_stop")
            box.cc(64, 127)
            assert wait_for(lambda: any(b.number == 64 for b in s.midi_bindings()), 3.0)
            assert [b.number for b in s.midi_bindings() if b.target == "play_stop"] == [64]
            box.cc(64, 0)
            box.cc(64, 127)
            assert wait_for(lambda: not s.snapshot().playing, 5.0)
            box.cc(64, 0)
            box.cc(64, 127)
            assert wait_for(lambda: s.snapshot().playing, 5.0)
            assert not s.inputs.midi_in.port.callback.sustain
            box.cc(64, 0)
            box.cc(80, 127)  # CC 80 was rebound: passes on, does nothing
            time.sleep(0.3)
            assert s.snapshot().playing
            # a learned note: tap tempo on a pad, not played as melody
            s.midi_learn("tap_tempo")
            box.note(40, 100, channel=9)
            assert wait_for(lambda: any(b.target == "tap_tempo" for b in s.midi_bindings()), 3.0)
            assert [p for part, p, *_ in s.roll(-1000) if part == "melody"] == []
        finally:
            box.close()
        s.stop()
        bound = sorted((b.type, b.number, b.target) for b in s.midi_bindings())
    assert bound == [("cc", 21, "density"), ("cc", 64, "play_stop"), ("note", 40, "tap_tempo")]
    with Session(EngineConfig(), AudioConfig(blocksize=256)) as s2:
        s2.open_midi_input(VIRTUAL_IN_NAME)
        assert sorted((b.type, b.number, b.target) for b in s2.midi_bindings()) == bound
    assert (tmp_path / "config" / "LiveBand" / "midi_bindings.json").is_file()

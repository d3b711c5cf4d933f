"""Whose tempo the band follows (liveband.session_sync), without a source playing: the
modes, the MIDI clock delay, the bar length Link is told, and what the player is told."""

from __future__ import annotations

import threading

import pytest

from engine.mixer import Mixer
from engine.synth import Synth
from liveband.config import AudioConfig, EngineConfig
from liveband.midilearn import ControlThread
from liveband.session_audio import SessionAudio
from liveband.session_notices import Notices
from liveband.session_sync import TempoSync, bar_quarters


@pytest.fixture()
def sync(soundfont):
    synth = Synth(soundfont, sample_rate=48000)
    notices = Notices()
    lock = threading.RLock()
    audio = SessionAudio(Mixer(synth, 48000, 1024), AudioConfig(), 48000, lock, notices)
    control = ControlThread()
    yield TempoSync(lock, notices, control, audio, transport=lambda kind: None), notices
    control.close()
    synth.close()


def test_a_bar_in_quarter_notes_for_link():
    assert bar_quarters("4/4") == 4.0 and bar_quarters("3/4") == 3.0 and bar_quarters("6/8") == 3.0


def test_playing_on_its_own_there_is_no_source_and_no_synced_clock(sync):
    s, _ = sync
    assert s.mode == "internal" and s.source() is None
    assert s.synced_clock(EngineConfig(), 48000) == (None, None)


def test_midi_clock_without_an_input_says_so_until_one_opens(sync):
    s, notices = sync
    s.set_mode("midi clock", 120.0, "4/4", midi_input_open=False)
    assert s.source() is s.clock_in
    assert any(n.startswith("MIDI clock sync: no MIDI input open") for n in notices.current())
    s.input_opened()
    assert not notices.has("sync")


def test_no_clock_heard_yet_the_band_plays_at_its_own_tempo_and_says_so(sync):
    s, notices = sync
    s.set_mode("midi clock", 120.0, "4/4", midi_input_open=True)
    assert s.synced_clock(EngineConfig(), 48000) == (None, None)
    assert "no midi clock tempo yet: the band plays at its own tempo" in notices.current()


def test_bad_modes_and_delays_are_refused_naming_the_value(sync):
    s, _ = sync
    with pytest.raises(ValueError, match="sync must be one of"):
        s.set_mode("tape", 120.0, "4/4", True)
    with pytest.raises(ValueError, match="0-100 ms, got 101"):
        s.set_delay(101)
    s.set_delay(2.9)
    assert abs(s.clock_in.delay_s - 0.0029) < 1e-12

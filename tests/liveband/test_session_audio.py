"""The session's output device (liveband.session_audio) without a stream: the audio clock
falls back to the mixer's counter, a device that does not exist is a notice (not an
error) naming it, and the microphone gain is validated before it is kept."""

from __future__ import annotations

import threading
import time

import pytest

from engine.mixer import Mixer
from engine.synth import Synth
from liveband.config import AudioConfig
from liveband.session_audio import SessionAudio
from liveband.session_notices import Notices


@pytest.fixture()
def audio(soundfont):
    synth = Synth(soundfont, sample_rate=48000)
    mixer = Mixer(synth, 48000, 1024)
    notices = Notices()
    yield SessionAudio(mixer, AudioConfig(), 48000, threading.RLock(), notices), mixer, notices
    synth.close()


def test_without_a_stream_the_clock_is_the_mixers_and_a_later_time_is_further_on(audio):
    a, mixer, _ = audio
    assert a.now() == mixer.clock == 0
    assert a.heard() <= a.now()
    later = a.sample_at(time.monotonic() + 0.5)
    assert abs(later - 24000) <= 480  # half a second at 48 kHz, within 10 ms
    assert not a.active and not a.wanted


def test_switching_to_a_device_that_does_not_exist_says_so_and_keeps_the_choice(audio):
    a, _, notices = audio
    assert a.switch(output="No Such Card") is False
    assert any("No Such Card" in n for n in notices.current()), notices.current()
    assert a.config.output_device == "No Such Card" and not a.active


def test_a_bad_block_size_is_refused_before_anything_closes(audio):
    a, _, notices = audio
    with pytest.raises(ValueError):
        a.switch(blocksize=3)
    assert a.config.blocksize == AudioConfig().blocksize and notices.current() == ()


def test_the_microphone_gain_is_validated_and_kept(audio):
    a, _, _ = audio
    assert a.set_input_gain(-12.5) == -12.5 and a.config.input_gain_db == -12.5
    with pytest.raises(ValueError, match="input gain"):
        a.set_input_gain(41.0)
    assert a.config.input_gain_db == -12.5


def test_a_closed_device_never_switches_again(audio):
    a, _, notices = audio
    a.close()
    assert a.switch(output="No Such Card") is False and a.config.output_device is None
    assert notices.current() == ()
